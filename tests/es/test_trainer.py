"""The ES trainer: the same numbers with or without MPI and across resumes, faults that end the job."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from es.strategies import strategy_from_state
from tests.conftest import run_python

pytestmark = pytest.mark.slow


def job(out, optimizer: str, generations: int, *extra: str, ranks: int = 1):
    return run_python(["-m", "tests.es.es_job", str(out), optimizer, str(generations), *extra],
                      ranks=ranks, timeout=120)


def final(out) -> dict:
    data = pickle.loads((out / "checkpoint.pkl").read_bytes())
    strategy = strategy_from_state(data["strategy"])
    history = [r["fitness_mean"] for r in data["trainer"]["history"]]
    return {"mean": strategy.result().mean, "history": history, "best": data["trainer"]["best_eval_score"],
            "ask": strategy.ask()}


def assert_same(a: dict, b: dict) -> None:
    assert np.array_equal(a["mean"], b["mean"]) and np.array_equal(a["ask"], b["ask"])
    assert a["history"] == b["history"] and a["best"] == b["best"]


@pytest.mark.parametrize("optimizer", ["cma", "pepg", "openes", "ga"])
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


def test_mpi_gives_the_same_numbers_as_one_process_and_resumes(tmp_path):
    solo, mpi, resumed = tmp_path / "solo", tmp_path / "mpi", tmp_path / "resumed"
    for d in (solo, mpi, resumed):
        d.mkdir()
    assert job(solo, "pepg", 6).returncode == 0
    done = job(mpi, "pepg", 6, ranks=3)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ranks"] == 3
    assert job(resumed, "pepg", 3, ranks=3).returncode == 0
    assert job(resumed, "pepg", 6, ranks=2).returncode == 0  # resumed on another number of ranks
    assert_same(final(solo), final(mpi))
    assert_same(final(solo), final(resumed))


def test_a_checkpoint_from_other_settings_is_refused_unless_forced(tmp_path):
    assert job(tmp_path, "cma", 2).returncode == 0
    refused = job(tmp_path, "cma", 4, "--popsize", "10", ranks=2)
    assert refused.returncode != 0
    assert refused.stderr.count("error:") == 1 and "popsize: 8 -> 10" in refused.stderr
    assert "MPI_ABORT" not in refused.stderr
    assert job(tmp_path, "cma", 4, "--popsize", "10", "--force").returncode == 0


def test_a_failing_worker_ends_the_job_with_its_traceback(tmp_path):
    done = job(tmp_path, "cma", 3, "--crash", ranks=3)
    assert done.returncode != 0
    assert "RuntimeError: worker failed on purpose" in done.stderr
    assert "[rank 1]" in done.stderr or "[rank 2]" in done.stderr
