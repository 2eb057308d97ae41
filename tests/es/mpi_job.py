"""A small job for tests/es/test_mpi.py, run under mpirun: ``python -m tests.es.mpi_job MODE``."""

from __future__ import annotations

import json
import sys
import time

from es.mpi import Comm, WorkQueue, run_ranks


class JobError(Exception):
    """Stands for a user's mistake found on one rank."""


def job(mode: str, comm: Comm) -> None:
    if mode == "collectives":
        values = comm.allgather(comm.rank * 10)
        token = comm.bcast({"from": comm.rank})
        got = []
        for i in range(3):
            got += comm.report((comm.rank, i))
        if comm.is_root:
            while len(got) < 3 * comm.size:
                got += comm.collect()
                time.sleep(0.01)
        else:
            comm.flush_reports()
        comm.barrier()
        if comm.is_root:
            print(json.dumps({"size": comm.size, "values": values, "token": token,
                              "reports": sorted(got)}))
    elif mode == "queue":
        # Item 0 takes 1 s, the 30 others 0.02 s each: a rank that draws item 0 should do little else.
        queue = WorkQueue(comm, range(31))
        mine = []
        while (item := queue.next()) is not None:
            end = time.monotonic() + (1.0 if item == 0 else 0.02)
            while time.monotonic() < end:
                queue.serve()  # rank 0 answers the others while it works
                time.sleep(0.001)
            mine.append(item)
        while not queue.done():
            time.sleep(0.001)
        done = comm.allgather(mine)
        if comm.is_root:
            print(json.dumps({"per_rank": done}))
    elif mode == "crash":
        if comm.rank == 1:
            raise ZeroDivisionError("boom on purpose")
        comm.barrier()  # rank 0 would wait here forever if the job did not end
    elif mode == "clean":
        if comm.rank == 1:
            raise JobError("bad input found by rank 1")
        comm.barrier()
    elif mode == "idle":
        # Rank 0 waits in a barrier while rank 1 works; print rank 0's CPU use while waiting.
        start_cpu, start = time.process_time(), time.monotonic()
        if comm.rank == 1:
            time.sleep(2.0)
        comm.barrier()
        if comm.is_root:
            busy = (time.process_time() - start_cpu) / (time.monotonic() - start)
            print(json.dumps({"root_cpu_fraction": busy}))


if __name__ == "__main__":
    sys.exit(run_ranks(lambda comm: job(sys.argv[1], comm), clean_errors=(JobError,)))
