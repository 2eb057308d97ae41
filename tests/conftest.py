"""Shared test helpers: run a stage as a real process, alone or under a real mpirun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from es.launch import mpirun_command

ROOT = Path(__file__).resolve().parents[1]

# A suite started in the background by a non-interactive shell (`pytest &`, nohup) inherits SIGINT
# ignored, and so would every stage it starts: Ctrl-C tests would then see no interrupt. A Python
# handler here is reset to the default in each child at exec, so the children hear SIGINT again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


class Payload:
    """A pickled object whose unpickling creates ``marker``: the proof that a loader ran code from
    a file (tests plant it in every kind of file a stage loads)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def stage_env() -> dict[str, str]:
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", PYTHONPATH=str(ROOT))
    # A test may itself run under a launcher; the stage must not think it is one of its ranks.
    for var in list(env):
        if var.startswith(("OMPI_", "PMI_", "PMIX_")):
            del env[var]
    return env


def run_python(
    args: list[str], ranks: int = 1, timeout: float = 300, env: dict[str, str] | None = None,
    mpirun: str | None = None,
) -> subprocess.CompletedProcess:
    """``python ARGS`` as one process (ranks=1) or under ``mpirun -n RANKS`` (the environment's, or
    ``mpirun``); output captured."""
    command = [sys.executable, *args]
    if ranks > 1:
        command = [*mpirun_command(ranks, mpirun), *command]
    return subprocess.run(
        command, cwd=ROOT, env={**stage_env(), **(env or {})}, capture_output=True, text=True,
        timeout=timeout,
    )


@pytest.fixture
def run_stage():
    """Run ``python -m wm.<stage> ARGS`` and return the finished process."""

    def run(stage: str, *args: str, ranks: int = 1, timeout: float = 300, env: dict | None = None):
        return run_python(["-m", f"wm.{stage}", *args], ranks=ranks, timeout=timeout, env=env)

    return run


@pytest.fixture(scope="session")
def mpich_mpiexec(tmp_path_factory) -> str:
    """An MPICH mpiexec beside its libmpi.so.12: $WM_TEST_MPICH, else PyPI's mpich wheel installed
    into a temporary prefix (the project's environment keeps its Open MPI)."""
    given = os.environ.get("WM_TEST_MPICH")
    if given:
        return given
    prefix = tmp_path_factory.mktemp("mpich")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--prefix",
                           str(prefix), "mpich"], capture_output=True, text=True, timeout=600)
    mpiexec = prefix / "bin" / "mpiexec"
    if done.returncode != 0 or not mpiexec.is_file():
        pytest.skip(f"could not install PyPI's mpich wheel: {done.stderr.strip()[-300:]}")
    return str(mpiexec)
