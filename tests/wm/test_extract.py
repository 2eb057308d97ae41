"""The extraction stage as one process: data, resume, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, stage_env
from wm.data.record import episode_path, list_episodes, read_episode
from wm.data.rundir import locked
from wm.stages.extract import episode_seeds

DOOM_QUICK = ["--env", "doom", "--max-steps", "60", "--seed", "3"]


def summary(run: Path) -> dict:
    return json.loads((run / "record" / "summary.json").read_text())


def test_episode_seeds_depend_on_seed_and_index_only():
    a_seed, a_rng = episode_seeds(0, 5)
    b_seed, b_rng = episode_seeds(0, 5)
    assert a_seed == b_seed and a_rng.random() == b_rng.random()
    assert episode_seeds(0, 6)[0] != a_seed
    assert episode_seeds(1, 5)[0] != a_seed


def test_extract_writes_valid_episodes_and_resumes(tmp_path, run_stage):
    run = tmp_path / "run"
    done = run_stage("extract", "--run", str(run), "--episodes", "4", *DOOM_QUICK)
    assert done.returncode == 0, done.stderr
    assert "4 made" in done.stdout
    paths = list_episodes(run / "record")
    assert [p.name for p in paths] == [f"episode_{i:06d}.npz" for i in range(4)]
    for i, path in enumerate(paths):
        ep = read_episode(path)
        assert ep.meta["index"] == i and ep.meta["env"] == "doom" and ep.meta["policy"] == "hold"
        assert ep.action.shape == (len(ep), 1) and len(ep) <= 60
    assert summary(run)["episodes"] == 4

    # Damage one file, delete another, then run the same command again.
    first = read_episode(paths[0])
    paths[1].write_bytes(paths[1].read_bytes()[:500])
    paths[2].unlink()
    mtime3 = paths[3].stat().st_mtime_ns
    again = run_stage("extract", "--run", str(run), "--episodes", "4", *DOOM_QUICK)
    assert again.returncode == 0, again.stderr
    s = summary(run)
    assert (s["kept"], s["made"], s["remade"]) == (2, 1, 1)
    assert "2 kept, 1 made, 1 remade" in again.stdout
    assert paths[3].stat().st_mtime_ns == mtime3  # a valid file is left alone
    redone = read_episode(paths[0])
    assert np.array_equal(first.obs, redone.obs)
    assert all(read_episode(p).meta["index"] == i for i, p in enumerate(paths))


def test_same_command_same_data(tmp_path, run_stage):
    for name in ("a", "b"):
        done = run_stage("extract", "--run", str(tmp_path / name), "--episodes", "2", *DOOM_QUICK)
        assert done.returncode == 0, done.stderr
    for i in range(2):
        a = read_episode(episode_path(tmp_path / "a" / "record", i))
        b = read_episode(episode_path(tmp_path / "b" / "record", i))
        assert np.array_equal(a.obs, b.obs) and np.array_equal(a.action, b.action)


def test_changing_data_fields_is_refused(tmp_path, run_stage):
    run = str(tmp_path / "run")
    assert run_stage("extract", "--run", run, "--episodes", "1", *DOOM_QUICK).returncode == 0
    changed = run_stage("extract", "--run", run, "--episodes", "1", *DOOM_QUICK, "--policy", "uniform")
    assert changed.returncode != 0
    assert "policy" in changed.stderr and "config.json" in changed.stderr
    other_env = run_stage("extract", "--run", run, "--episodes", "1", "--env", "carracing")
    assert other_env.returncode != 0 and "env" in other_env.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "pong"], "invalid choice"),
        (["--policy", "smart"], "invalid choice"),
        (["--episodes", "0"], "--episodes must be at least 1"),
        (["--episodes", "-3"], "--episodes must be at least 1"),
        (["--max-steps", "0"], "--max-steps must be at least 1"),
        (["--episodes", "two"], "invalid int value"),
        (["--log-every", "-1"], "--log-every must be a non-negative number"),
        (["--log-every", "nan"], "--log-every must be a non-negative number"),
        (["--seed", "-1"], "--seed must be non-negative"),
    ],
)
def test_bad_flags_give_one_clear_line(tmp_path, run_stage, args, message):
    done = run_stage("extract", "--run", str(tmp_path / "run"), *args)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_run_path_that_is_a_file(tmp_path, run_stage):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    done = run_stage("extract", "--run", str(target), "--episodes", "1", *DOOM_QUICK)
    assert done.returncode != 0
    assert "exists and is not a directory" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert target.read_text() == "not a directory"
    below = run_stage("extract", "--run", str(target / "run"), "--episodes", "1", *DOOM_QUICK)
    assert below.returncode != 0 and "Traceback" not in below.stderr


def test_unwritable_run_directory(tmp_path, run_stage):
    # As root, permissions do not stop writes; a path under /proc cannot be created by anyone.
    done = run_stage("extract", "--run", "/proc/wm-test-run", "--episodes", "1", *DOOM_QUICK)
    assert done.returncode != 0
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr


def test_ctrl_c_leaves_no_partial_file_and_the_next_run_continues(tmp_path, run_stage):
    run = tmp_path / "run"
    args = ["-m", "wm.extract", "--run", str(run), "--episodes", "40", "--env", "doom"]
    # A new session, so that SIGINT goes to the whole process group (the ViZDoom engine included),
    # as a Ctrl-C in a terminal does.
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=stage_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(list_episodes(run / "record")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again" in err and "Traceback" not in err
    written = list_episodes(run / "record")
    assert 2 <= len(written) < 40
    assert not list((run / "record").glob(".*.tmp"))
    for path in written:
        read_episode(path)  # every file under a final name is complete

    # The next run keeps what was written and makes the rest (short episodes to keep it quick).
    again = run_stage("extract", "--run", str(run), "--episodes", str(len(written) + 2))
    assert again.returncode == 0, again.stderr
    assert summary(run)["kept"] == len(written) and summary(run)["made"] == 2


def test_a_plain_rerun_continues_with_the_runs_settings(tmp_path, run_stage):
    run = str(tmp_path / "run")
    first = run_stage("extract", "--run", run, "--preset", "quick", "--episodes", "2", *DOOM_QUICK)
    assert first.returncode == 0, first.stderr
    plain = run_stage("extract", "--run", run)  # not the default preset: the run's own settings
    assert plain.returncode == 0, plain.stderr
    assert "2 episodes kept, 0 to make" in plain.stdout
    more = run_stage("extract", "--run", run, "--episodes", "3")
    assert more.returncode == 0, more.stderr
    s = summary(tmp_path / "run")
    assert (s["episodes"], s["kept"], s["made"], s["max_steps"], s["seed"]) == (3, 2, 1, 60, 3)


def test_a_second_job_on_the_same_run_is_refused(tmp_path, run_stage):
    record = tmp_path / "run" / "record"
    record.mkdir(parents=True)
    with locked(record):
        done = run_stage("extract", "--run", str(tmp_path / "run"), "--episodes", "1", *DOOM_QUICK)
    assert done.returncode != 0
    assert "in use by another job" in done.stderr and "Traceback" not in done.stderr
    assert list_episodes(record) == []


@pytest.mark.parametrize(
    "config", ['{"stages": [], "env": "doom"}', '{"stages": {"extract": 3}}', "{not json"]
)
def test_a_broken_config_json_is_one_line(tmp_path, run_stage, config):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(config)
    done = run_stage("extract", "--run", str(tmp_path / "run"), "--episodes", "1", *DOOM_QUICK)
    assert done.returncode != 0
    assert "config.json" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert (tmp_path / "run" / "config.json").read_text() == config  # left as it was


def test_an_episode_path_that_is_a_directory_is_one_line(tmp_path, run_stage):
    episode_path(tmp_path / "run" / "record", 0).mkdir(parents=True)
    done = run_stage("extract", "--run", str(tmp_path / "run"), "--episodes", "1", *DOOM_QUICK)
    assert done.returncode != 0
    assert "is not a regular file" in done.stderr and "Traceback" not in done.stderr


def test_srun_without_mpi_is_refused(tmp_path, run_stage):
    done = run_stage("extract", "--run", str(tmp_path / "run"), "--episodes", "1", *DOOM_QUICK,
                     env={"SLURM_STEP_NUM_TASKS": "4"})
    assert done.returncode != 0
    assert "srun started 4 tasks without MPI" in done.stderr
    assert not (tmp_path / "run").exists()
