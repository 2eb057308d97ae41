"""The experiment on a real Slurm: a single-node cluster started by the test on this machine runs
the tiny pipeline submitted by wm.submit; the ES job is requeued in the middle twice (an `scontrol
requeue`, then the time-limit path: USR1 to the batch script) and still ends exactly where an
uninterrupted run ends."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from es.checkpoint import Checkpoints
from es.strategies import strategy_from_state
from tests.conftest import ROOT, stage_env
from tests.launch.slurm_cluster import SlurmCluster, SlurmUnavailable

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

GENERATIONS = 9


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reasons = []
    for _ in range(2):  # a second try with fresh ports and directories before giving up
        cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
        try:
            cluster.start()
            break
        except SlurmUnavailable as err:
            cluster.stop()
            reasons.append(str(err))
    else:
        pytest.skip(" / ".join(reasons))
    try:
        yield cluster
    finally:
        cluster.stop()


def client_env(cluster: SlurmCluster) -> dict[str, str]:
    return {**stage_env(), "SLURM_CONF": str(cluster.conf), "PATH": cluster.env["PATH"]}


def wait_for(condition, timeout: float, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            queue = cluster.run("squeue").stdout
            raise AssertionError(f"timed out waiting for {what}; queue:\n{queue}")
        time.sleep(0.5)


def generations_done(run: Path) -> int:
    try:
        with open(run / "es" / "history.csv", newline="") as f:
            return len(list(csv.DictReader(f)))
    except OSError:
        return 0


def final_state(run: Path) -> tuple[np.ndarray, list[dict]]:
    data = Checkpoints(run / "es" / "checkpoint.npz").load()
    mean = np.asarray(strategy_from_state(data["strategy"]).result().mean)
    keep = ("generation", "fitness_mean", "fitness_min", "fitness_max", "sigma_rms", "eval_score")
    return mean, [{k: row[k] for k in keep} for row in data["trainer"]["history"]]


def test_a_submitted_pipeline_survives_two_requeues_of_its_es_job(cluster, tmp_path):
    run = tmp_path / "run"
    submitted = subprocess.run(
        [sys.executable, "-m", "wm.submit", "--run", str(run), "--env", "doom", "--preset", "tiny",
         "--ntasks", "3", "--eval-episodes", "2", "--time", "10:00",
         "--train-args", f"--generations {GENERATIONS}"],
        cwd=ROOT, env=client_env(cluster), capture_output=True, text=True, timeout=120)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    ids = json.loads((run / "slurm" / "jobs.json").read_text())
    assert set(ids) == {"extract", "vae", "series", "rnn", "train", "evaluate", "random", "report"}
    assert f"[submit] train    job {ids['train']} after {ids['rnn']}" in submitted.stdout
    train = ids["train"]

    # 1. An administrator's (or a preemption's) requeue in the middle of training.
    wait_for(lambda: generations_done(run) >= 3, 600, "3 generations", cluster)
    requeued = cluster.run("scontrol", "requeue", train)
    assert requeued.returncode == 0, requeued.stderr
    # 2. The time-limit path: Slurm's USR1 to the batch script, which stops the trainer and requeues.
    wait_for(lambda: cluster.job(train).get("Restarts") == "1" and cluster.job(train).get("JobState") ==
             "RUNNING" and generations_done(run) >= 6, 600, "the restarted job's 6th generation", cluster)
    signalled = cluster.run("scancel", "--batch", "--signal=USR1", train)
    assert signalled.returncode == 0, signalled.stderr
    wait_for(lambda: cluster.job(ids["report"]).get("JobState") in ("COMPLETED", "FAILED", "CANCELLED"),
             900, "the report job", cluster)

    log = next((run / "slurm").glob(f"wm-train-{train}.out")).read_text()
    states = {name: cluster.job(job).get("JobState") for name, job in ids.items()}
    assert set(states.values()) == {"COMPLETED"}, f"{states}\n{log}"
    assert cluster.job(train)["Restarts"] == "2"
    # One log across the three starts (--open-mode=append): each start resumed from the checkpoint.
    assert all(f"start {n}," in log for n in (1, 2, 3)), log
    assert log.count("[train] resuming from") == 2 and "time limit near" in log
    assert f"[train] done: {GENERATIONS} generations" in log
    assert (run / "report.md").is_file()
    # No GPU: V and M trained data-parallel on the job's 3 CPU ranks.
    for stage in ("vae", "rnn"):
        assert "x 3 ranks" in next((run / "slurm").glob(f"wm-{stage}-{ids[stage]}.out")).read_text()
    assert json.loads((run / "eval" / "real.json").read_text())["episodes"] == 2

    # The same training never interrupted, as one plain process: the same final state.
    reference = tmp_path / "reference"
    for part in ("config.json", "record", "vae", "series", "rnn"):
        source = run / part
        target = reference / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.write_bytes(source.read_bytes())
    alone = subprocess.run([sys.executable, "-m", "wm.train", "--run", str(reference), "--preset", "tiny",
                            "--generations", str(GENERATIONS)], cwd=ROOT, env=stage_env(),
                           capture_output=True, text=True, timeout=600)
    assert alone.returncode == 0, alone.stderr
    mean, history = final_state(run)
    reference_mean, reference_history = final_state(reference)
    assert [row["generation"] for row in history] == list(range(1, GENERATIONS + 1))
    assert history == reference_history
    assert np.array_equal(mean, reference_mean)


def test_a_bad_submission_is_one_line(cluster, tmp_path):
    done = subprocess.run([sys.executable, "-m", "wm.submit", "--run", str(tmp_path / "r"), "--ntasks", "3",
                           "--partition", "no-such-partition"], cwd=ROOT, env=client_env(cluster),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "sbatch refused the extract job" in done.stderr and len(done.stderr.strip().splitlines()) == 1
