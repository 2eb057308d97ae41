"""A real ``mpirun -n 2`` extraction of both environments: files, same data as one process, resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from es.launch import mpirun_command
from tests.conftest import ROOT, stage_env
from wm.data.record import episode_path, list_episodes, read_episode

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("env, steps", [("doom", 40), ("carracing", 25)])
def test_mpirun_two_ranks_extracts_the_same_data_and_resumes(tmp_path, run_stage, env, steps):
    args = ["--env", env, "--episodes", "3", "--max-steps", str(steps), "--log-every", "0"]
    mpi_run, solo_run = tmp_path / "mpi", tmp_path / "solo"
    # (doom under mpirun as a cluster job starts it; carracing by --np, which starts that mpirun itself)
    launch = {"ranks": 2} if env == "doom" else {}
    done = run_stage("extract", "--run", str(mpi_run), *args, *([] if launch else ["--np", "2"]), **launch)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(2 ranks)" in done.stdout and "on 2 ranks" in done.stdout
    assert "3/3 episodes" in done.stdout  # rank 0 heard of every rank's episodes
    paths = list_episodes(mpi_run / "record")
    assert len(paths) == 3
    for i, path in enumerate(paths):
        ep = read_episode(path, expect={"env": env, "index": i})
        assert 1 <= len(ep) <= steps

    # The data do not depend on the number of ranks.
    assert run_stage("extract", "--run", str(solo_run), *args).returncode == 0
    for i in range(3):
        a = read_episode(episode_path(mpi_run / "record", i))
        b = read_episode(episode_path(solo_run / "record", i))
        assert np.array_equal(a.obs, b.obs) and np.array_equal(a.reward, b.reward)

    # Remove one episode, corrupt another: the re-run remakes exactly those two.
    paths[0].unlink()
    paths[2].write_bytes(b"garbage")
    again = run_stage("extract", "--run", str(mpi_run), *args, ranks=2)
    assert again.returncode == 0, again.stdout + again.stderr
    summary = json.loads((mpi_run / "record" / "summary.json").read_text())
    assert (summary["kept"], summary["made"], summary["remade"], summary["ranks"]) == (1, 1, 1, 2)
    remade = read_episode(episode_path(mpi_run / "record", 0))
    assert np.array_equal(remade.obs, read_episode(episode_path(solo_run / "record", 0)).obs)


def test_mpirun_bad_flag_is_one_line_and_every_rank_exits(tmp_path, run_stage):
    done = run_stage("extract", "--run", str(tmp_path / "r"), "--episodes", "0", ranks=2, timeout=90)
    assert done.returncode != 0
    assert done.stderr.count("--episodes must be at least 1") == 1


def test_mpirun_bad_run_directory_is_one_line_without_an_abort(tmp_path, run_stage):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "record").write_text("a file where the episodes should go")
    done = run_stage("extract", "--run", str(tmp_path / "r"), "--episodes", "2", ranks=2, timeout=90)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "exists and is not a directory" in errors[0]
    assert "MPI_ABORT" not in done.stderr and "Traceback" not in done.stderr


def test_interrupting_mpirun_leaves_only_complete_files_and_the_next_run_continues(tmp_path, run_stage):
    run = tmp_path / "run"
    command = [*mpirun_command(2), sys.executable, "-m", "wm.extract", "--run", str(run),
               "--episodes", "60", "--env", "doom"]
    proc = subprocess.Popen(command, cwd=ROOT, env=stage_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list_episodes(run / "record")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) != 0
    written = list_episodes(run / "record")
    assert 3 <= len(written) < 60
    for path in written:  # nothing half-written under a final name (a rank killed by mpirun while
        read_episode(path)  # it cleaned up may leave a hidden temporary file, removed next run)
    again = run_stage("extract", "--run", str(run), "--episodes", str(len(written) + 2), ranks=2)
    assert again.returncode == 0, again.stderr
    assert f"{len(written)} kept, 2 made" in again.stdout
    assert not list((run / "record").glob(".*.tmp"))
