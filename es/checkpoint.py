"""The ES trainer's checkpoint file, which loading can never make run code; and the one-off
conversion of the pickle checkpoints older versions wrote.

A checkpoint is a :mod:`es.statefile` (JSON tree + raw arrays in one ``.npz``) holding the
strategy's state dict (its RNG state included), the trainer's state and history, the settings and
the run's identity. pycma's part is a pickle stream read only through :mod:`es.restricted_pickle`.

Older versions wrote ``checkpoint.pkl`` with ``pickle``: such a file is refused, never loaded
silently. To continue a run from one you trust::

    python -m es.checkpoint convert RUN/es/checkpoint.pkl     # writes RUN/es/checkpoint.npz

The conversion, too, unpickles only the names an ES checkpoint holds (pycma's classes, NumPy arrays
and random generators), so a tampered file is refused rather than run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from es import restricted_pickle, statefile

CHECKPOINT_FORMAT = "es-checkpoint-2"
CHECKPOINT_NAME = "checkpoint.npz"
LEGACY_NAME = "checkpoint.pkl"


Writer = Callable[[Path, Callable[[BinaryIO], None]], None]  # (path, write(f)): e.g. an atomic write


class Checkpoints:
    """One checkpoint file: everything the trainer needs to continue. ``write`` writes a file so
    that no half-written one stands under its name (e.g. to a temporary name, then renamed)."""

    def __init__(self, path: Path, write: Writer | None = None):
        self.path, self._write = Path(path), write

    def save(self, strategy_state: dict[str, Any], trainer: dict[str, Any], settings: dict[str, Any],
             identity: dict[str, Any]) -> None:
        """Write the checkpoint (through the writer given)."""
        if self._write is None:
            raise RuntimeError("these Checkpoints were opened for reading only")
        tree = {"format": CHECKPOINT_FORMAT, "strategy": strategy_state, "trainer": trainer,
                "settings": settings, "identity": identity}
        self._write(self.path, lambda f: statefile.write(f, tree))

    def load(self) -> dict[str, Any] | None:
        """The checkpoint's contents, or None when there is none yet; a ValueError (one line) for a
        file that is not a checkpoint of this program, or an old pickle one."""
        legacy = self.path.with_name(LEGACY_NAME)
        if not self.path.exists():
            if legacy.exists():
                raise ValueError(
                    f"{legacy} is a pickle checkpoint of an older version, which is not loaded because "
                    f"unpickling a file can run code; if you trust it, convert it with `python -m "
                    f"es.checkpoint convert {legacy}` and run again, or start over with --fresh")
            return None
        try:
            data = statefile.loads(self.path.read_bytes(), what=str(self.path))
        except OSError as err:
            raise ValueError(f"{self.path}: cannot read the checkpoint ({err.strerror})") from None
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{self.path}: not an ES checkpoint of this program")
        parts = ("strategy", "trainer", "settings", "identity")
        missing = [k for k in parts if not isinstance(data.get(k), dict)]
        if missing:
            raise ValueError(f"{self.path}: an incomplete checkpoint (no {', '.join(missing)})")
        return data


# -- the pickle checkpoints of older versions --
# Names their pickles hold besides pycma's: NumPy arrays and scalars, the strategies' Generator
# (rebuilt from its bit generator's state) and the sampler that drew from it.
_LEGACY_ALLOWED = restricted_pickle.CMA_ALLOWED | frozenset(
    {(f"numpy.{core}.{module}", name) for core in ("core", "_core") for module, name in
     (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))}
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.random._pickle", "__generator_ctor"),
       ("numpy.random._pickle", "__bit_generator_ctor"), ("numpy.random._pcg64", "PCG64"),
       ("numpy.random.bit_generator", "SeedSequence"),
       ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"), ("es.cmaes", "GeneratorNormal")}
)


def convert_legacy(source: Path, target: Path, write: Writer) -> int:
    """Rewrite an old pickle checkpoint in today's format; returns its generation."""
    from es.cmaes import GeneratorNormal, pycma_state
    from es.strategies import strategy_from_state

    data = restricted_pickle.loads(source.read_bytes(), [], allowed=_LEGACY_ALLOWED)
    if not isinstance(data, dict) or data.get("format") != "es-checkpoint-1":
        raise ValueError(f"{source}: not a pickle checkpoint of this program")
    strategy = data["strategy"]
    if strategy["strategy"] == "cma":
        # Then pycma's object was pickled whole, inside (with a copy of the Generator, which the
        # strategy's own state holds too): store it as today's strategies do.
        es = restricted_pickle.loads(strategy["algorithm"]["es"], [], allowed=_LEGACY_ALLOWED)
        if not isinstance(es.opts.get("randn"), GeneratorNormal):
            raise ValueError(f"{source}: its CMA-ES state was not made by this program")
        strategy = {**strategy, "algorithm": pycma_state(es)}
    strategy = strategy_from_state(strategy).state_dict()  # checks that it loads
    Checkpoints(target, write).save(strategy, data["trainer"], data["settings"], data["identity"])
    return int(data["trainer"]["generation"])


def _write_new(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file that must not exist yet; removed again if writing fails (O_EXCL: no race)."""
    with open(path, "xb") as f:  # (fails before creating anything if the file exists)
        try:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m es.checkpoint", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="rewrite an old checkpoint.pkl as checkpoint.npz beside it")
    convert.add_argument("source", type=Path, help="the old checkpoint.pkl")
    args = parser.parse_args(argv)
    target = args.source.with_name(CHECKPOINT_NAME)
    try:
        if target.exists():
            raise ValueError(f"{target} exists already; move it away first if the old file should replace it")
        generation = convert_legacy(args.source, target, _write_new)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError,
            restricted_pickle.pickle.UnpicklingError) as err:
        print(f"error: {args.source}: cannot convert ({' '.join(str(err).split())})", file=sys.stderr)
        return 1
    print(f"wrote {target} (generation {generation}); {args.source} is kept and no longer read")
    return 0


if __name__ == "__main__":
    sys.exit(main())
