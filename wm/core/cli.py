"""Command lines built from one dataclass of arguments, with a docstring-like help per field.

Each field becomes ``--field-name``. Values resolve in three layers: the dataclass default, then the
chosen preset, then what the user typed; :func:`parse` tells which fields the user typed so a stage can
tell "asked for" from "defaulted".
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from es.mpi import Comm, exit_code_after_root_reports, launcher_rank, run_ranks, usage_error
from wm.core.errors import WMError, machine_errors

T = TypeVar("T")


def arg(
    default: Any = None, help: str = "", *, choices: list[str] | None = None, required: bool = False
) -> Any:
    """A dataclass field that is also a command-line flag."""
    meta = {"help": help, "choices": choices, "required": required}
    return dataclasses.field(default=default, metadata=meta)


def _base_type(hint: Any) -> type:
    """``int | None`` -> int."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


class _Parser(argparse.ArgumentParser):
    """Under mpirun only rank 0 prints usage errors, so a bad flag gives one message, not N."""

    def error(self, message: str) -> typing.NoReturn:
        if launcher_rank() == 0:
            self.print_usage(sys.stderr)
            print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(exit_code_after_root_reports(2))


def build_parser(cls: type, prog: str, description: str) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        meta = f.metadata
        # SUPPRESS keeps untyped flags out of the namespace, so presets can fill them in.
        common: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
        help_text = meta.get("help", "")
        if f.default is not None and f.default is not dataclasses.MISSING:
            help_text += f" (default: {f.default})"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text, **common)
        else:
            parser.add_argument(
                flag, type=kind, choices=meta.get("choices"), required=meta.get("required", False),
                help=help_text, **common,
            )
    return parser


def parse(
    cls: Callable[..., T],
    argv: list[str] | None,
    prog: str,
    description: str,
    presets: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[T, set[str]]:
    """Parse ``argv`` into ``cls``; returns the config and the names of the fields the user typed.

    ``presets(typed)`` maps what the user typed to the preset's values for the other fields.
    """
    parser = build_parser(cls, prog, description)
    typed = vars(parser.parse_args(argv))
    values = dict(presets(typed)) if presets else {}
    values.update(typed)
    return cls(**values), set(typed)


def run_stage(name: str, parse: Callable[[], T], run: Callable[[T], Any]) -> int:
    """A one-process stage's ``main``: bad flags exit 2, a bad input or state (a full disk too) 1,
    Ctrl-C 130; each with one line. ``parse`` may raise :class:`WMError` for values no run can use."""
    try:
        cfg = parse()
    except WMError as err:
        return usage_error(err)
    try:
        with machine_errors():
            run(cfg)
    except WMError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"[{name}] interrupted; what was finished is kept: run the same command to continue",
              file=sys.stderr)
        return 130
    return 0


def check_np(np: int) -> None:
    """``--np``: at least 0, and not under a launcher that already started the ranks."""
    from es.mpi import launcher_rank_size

    if np < 0:
        raise WMError(f"--np must be >= 0, got {np}")
    if np and launcher_rank_size() is not None:
        raise WMError("--np starts its own mpirun: leave it out when an MPI launcher (mpirun, srun) "
                      "already started the ranks")


def run_local_ranks(module: str, argv: list[str], ranks: int) -> int:
    """``--np``: the same command under this environment's mpirun on ``ranks`` local processes, one
    thread each (they share the cores); returns mpirun's exit status."""
    import os
    import subprocess

    from es.launch import mpirun_command

    try:
        command = [*mpirun_command(ranks), sys.executable, "-m", module, *argv, "--np", "0"]
    except FileNotFoundError as err:
        print(f"error: --np: {err}", file=sys.stderr)
        return 1
    env = {**os.environ, **{k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    return subprocess.run(command, env=env).returncode


def run_mpi_stage(module: str, argv: list[str] | None, parse: Callable[[list[str]], Any],
                  run: Callable[[Any, Comm], Any], coordinator: bool) -> int:
    """The ``main`` of a stage that runs over MPI ranks: parse ``argv``; with ``--np N`` start the same
    command on N local processes (N + 1 when rank 0 only ``coordinator``s, as in the ES); else run
    on this process or the ranks of the launcher that started it."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = parse(argv)
        check_np(cfg.np)
    except WMError as err:
        return usage_error(err)
    if cfg.np:
        return run_local_ranks(module, argv, cfg.np + (1 if coordinator else 0))
    return run_rank_stage(lambda comm: run(cfg, comm))


def run_rank_stage(main: Callable[[Comm], Any]) -> int:
    """An MPI stage's ``main`` after parsing: :func:`es.mpi.run_ranks` with a bad input or state
    and the machine's faults (a full disk, a read-only directory) on any rank as one line."""

    def guarded(comm: Comm) -> None:
        with machine_errors():
            main(comm)

    return run_ranks(guarded, clean_errors=(WMError,))
