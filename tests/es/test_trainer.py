"""The ES trainer: the same numbers with or without MPI and across resumes, faults that end the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from es.checkpoint import Checkpoints
from es.launch import mpirun_command
from es.strategies import strategy_from_state
from tests.conftest import ROOT, run_python, stage_env

pytestmark = pytest.mark.slow


def job(out, optimizer: str, generations: int, *extra: str, ranks: int = 1, mpirun: str | None = None):
    return run_python(["-m", "tests.es.es_job", str(out), optimizer, str(generations), *extra],
                      ranks=ranks, timeout=120, mpirun=mpirun)


def checkpoint(out) -> dict:
    return Checkpoints(out / "checkpoint.npz").load()


def final(out) -> dict:
    data = checkpoint(out)
    strategy = strategy_from_state(data["strategy"])
    history = [r["fitness_mean"] for r in data["trainer"]["history"]]
    return {"mean": strategy.result().mean, "history": history, "best": data["trainer"]["best_eval_score"],
            "ask": strategy.ask()}


def assert_same(a: dict, b: dict) -> None:
    assert np.array_equal(a["mean"], b["mean"]) and np.array_equal(a["ask"], b["ask"])
    assert a["history"] == b["history"] and a["best"] == b["best"]


@pytest.mark.parametrize("optimizer", ["cma", "pepg", "openes", "snes", "ga"])
def test_resume_is_bit_for_bit_the_run_that_never_stopped(tmp_path, optimizer):
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    whole.mkdir(), halves.mkdir()
    assert job(whole, optimizer, 6).returncode == 0
    assert job(halves, optimizer, 3).returncode == 0
    done = job(halves, optimizer, 6)  # the same command with more generations continues
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["generation"] == 6
    assert_same(final(whole), final(halves))
    history = final(whole)["history"]
    assert history[-1] > history[0]  # and it optimises


@pytest.mark.parametrize("optimizer", ["cma", "pepg", "openes", "snes", "ga"])
def test_mpi_gives_the_same_numbers_as_one_process_and_resumes(tmp_path, optimizer):
    solo, mpi, resumed = tmp_path / "solo", tmp_path / "mpi", tmp_path / "resumed"
    for d in (solo, mpi, resumed):
        d.mkdir()
    assert job(solo, optimizer, 6).returncode == 0
    done = job(mpi, optimizer, 6, ranks=3)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ranks"] == 3
    assert job(resumed, optimizer, 3, ranks=3).returncode == 0
    assert job(resumed, optimizer, 6, ranks=2).returncode == 0  # resumed on another number of ranks
    assert_same(final(solo), final(mpi))
    assert_same(final(solo), final(resumed))


def test_mpich_gives_the_same_numbers_as_open_mpi_and_one_process(tmp_path, mpich_mpiexec):
    solo, openmpi, mpich = tmp_path / "solo", tmp_path / "openmpi", tmp_path / "mpich"
    for d in (solo, openmpi, mpich):
        d.mkdir()
    assert job(solo, "cma", 4).returncode == 0
    assert job(openmpi, "cma", 4, ranks=3).returncode == 0
    done = job(mpich, "cma", 4, ranks=3, mpirun=mpich_mpiexec)  # MPICH's Hydra launcher and library
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ranks"] == 3
    assert_same(final(solo), final(mpich))
    assert_same(final(openmpi), final(mpich))


def test_a_launcher_of_another_mpi_is_refused_with_one_clear_message(tmp_path, mpich_mpiexec):
    # MPICH's mpiexec, but mpi4py left to load the environment's Open MPI: each rank alone.
    command = [mpich_mpiexec, "-n", "2", sys.executable, "-m", "tests.es.es_job", str(tmp_path), "cma", "2"]
    done = subprocess.run(command, cwd=ROOT, env=stage_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "the launcher started 2 processes but mpi4py sees a world of 1" in done.stderr
    assert "MPI4PY_MPIABI=mpich" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "checkpoint.npz").exists()


def test_a_checkpoint_from_other_settings_is_refused_unless_forced(tmp_path):
    assert job(tmp_path, "cma", 2).returncode == 0
    refused = job(tmp_path, "cma", 4, "--problem", "other", ranks=2)
    assert refused.returncode != 0
    assert refused.stderr.count("error:") == 1 and "problem: 'sphere' -> 'other'" in refused.stderr
    assert "MPI_ABORT" not in refused.stderr
    assert job(tmp_path, "cma", 4, "--problem", "other", "--force").returncode == 0
    # Not even --force turns the strategy into another one (it would silently keep the old one).
    reshaped = job(tmp_path, "cma", 6, "--popsize", "10", "--force")
    assert reshaped.returncode != 0 and "holds a strategy with name cma, popsize 8" in reshaped.stderr


def test_a_failing_worker_ends_the_job_with_its_traceback(tmp_path):
    done = job(tmp_path, "cma", 3, "--crash", ranks=3)
    assert done.returncode != 0
    assert "RuntimeError: worker failed on purpose" in done.stderr
    assert "[rank 1]" in done.stderr or "[rank 2]" in done.stderr


def start_job(out, generations: int, ranks: int) -> subprocess.Popen:
    command = [*mpirun_command(ranks), sys.executable, "-m", "tests.es.es_job", str(out), "cma",
               str(generations)]
    return subprocess.Popen(command, cwd=ROOT, env=stage_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_generation(out, at_least: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if (checkpoint(out) or {"trainer": {"generation": 0}})["trainer"]["generation"] >= at_least:
                return
        except ValueError:
            pass
        time.sleep(0.05)
    raise AssertionError("the job did not reach the generation")


def test_sigterm_stops_every_rank_and_the_run_resumes_from_its_checkpoint(tmp_path):
    stopped, whole = tmp_path / "stopped", tmp_path / "whole"
    stopped.mkdir(), whole.mkdir()
    proc = start_job(stopped, 100_000, ranks=3)
    wait_for_generation(stopped, 3, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)  # every rank ends promptly
    assert proc.returncode != 0
    reached = checkpoint(stopped)["trainer"]["generation"]
    assert reached >= 3
    assert job(stopped, "cma", reached + 2, ranks=3).returncode == 0
    assert job(whole, "cma", reached + 2).returncode == 0
    assert_same(final(stopped), final(whole))


def test_sigterm_to_the_master_alone_ends_the_job(tmp_path):
    proc = start_job(tmp_path, 100_000, ranks=3)
    wait_for_generation(tmp_path, 2, proc)
    master = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if _rank_of(pid) == "0"]
    assert master, "no rank 0 process found"
    os.kill(master[0], signal.SIGTERM)
    proc.communicate(timeout=30)  # the workers wait for tasks: they must not hang the job
    assert proc.returncode != 0
    assert checkpoint(tmp_path)["trainer"]["generation"] >= 2


def test_a_worker_killed_with_sigkill_ends_the_job_with_the_checkpoint_intact(tmp_path):
    proc = start_job(tmp_path, 100_000, ranks=3)
    wait_for_generation(tmp_path, 2, proc)
    workers = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
               if _rank_of(pid) == "1"]
    assert workers, "no rank 1 process found"
    os.kill(workers[0], signal.SIGKILL)
    start = time.monotonic()
    proc.communicate(timeout=60)
    assert proc.returncode != 0 and time.monotonic() - start < 30
    data = checkpoint(tmp_path)
    assert data["trainer"]["generation"] >= 2
    assert strategy_from_state(data["strategy"]).result().generation == data["trainer"]["generation"]


def _rank_of(pid: int) -> str | None:
    """The Open MPI rank of a process of this test's job, from its environment."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"tests.es.es_job" not in f.read():
                return None
    except OSError:
        return None
    rank = env.get(b"OMPI_COMM_WORLD_RANK")
    return rank.decode() if rank else None
