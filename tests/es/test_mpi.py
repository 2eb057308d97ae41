"""Rank handling under a real mpirun: collectives, failures that end every rank, idle waiting."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from es.mpi import launcher_rank_size
from tests.conftest import ROOT, run_python, stage_env

pytestmark = pytest.mark.slow


def job(mode: str, ranks: int = 2, timeout: float = 60):
    return run_python(["-m", "tests.es.mpi_job", mode], ranks=ranks, timeout=timeout)


def test_one_process_without_mpirun():
    done = job("collectives", ranks=1)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out == {"size": 1, "values": [0], "token": {"from": 0}, "reports": [[0, 0], [0, 1], [0, 2]]}


def test_collectives_and_reports_over_three_ranks():
    done = job("collectives", ranks=3)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["size"] == 3 and out["values"] == [0, 10, 20] and out["token"] == {"from": 0}
    assert out["reports"] == [[r, i] for r in range(3) for i in range(3)]


@pytest.mark.parametrize("ranks", [1, 3])
def test_work_queue_hands_out_every_item_once_to_whoever_is_free(ranks):
    done = job("queue", ranks=ranks)
    assert done.returncode == 0, done.stderr
    per_rank = json.loads(done.stdout)["per_rank"]
    assert sorted(i for items in per_rank for i in items) == list(range(31))
    if ranks > 1:
        # The rank busy with the 1 s item did few others; a fixed split would give it a third.
        busy = next(items for items in per_rank if 0 in items)
        assert len(busy) <= 4, per_rank
        assert all(len(items) >= 8 for items in per_rank if 0 not in items), per_rank


def test_a_crash_on_one_rank_ends_every_rank_with_its_traceback():
    done = job("crash")  # the timeout turns a hang into a failure
    assert done.returncode != 0
    assert "[rank 1] ZeroDivisionError: boom on purpose" in done.stderr
    assert "[rank 1] Traceback" in done.stderr


def test_a_clean_error_on_one_rank_is_one_line_and_ends_the_job():
    done = job("clean")
    assert done.returncode != 0
    assert "[rank 1] error: bad input found by rank 1" in done.stderr
    assert "Traceback" not in done.stderr


def test_waiting_rank_does_not_spin_a_core():
    done = job("idle")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["root_cpu_fraction"] < 0.2


def test_launcher_world_larger_than_mpi_world_is_reported():
    # PMI_* say "rank 0 of 2" but no launcher started the process, so MPI sees a world of 1: what
    # happens when mpi4py is linked against another MPI than the mpirun that started it.
    env = dict(stage_env(), PMI_RANK="0", PMI_SIZE="2")
    assert launcher_rank_size_from(env) == (0, 2)
    done = subprocess.run([sys.executable, "-m", "tests.es.mpi_job", "collectives"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "the launcher started 2 processes but mpi4py sees a world of 1" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def launcher_rank_size_from(env: dict[str, str]):
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return launcher_rank_size()
    finally:
        os.environ.clear()
        os.environ.update(saved)
