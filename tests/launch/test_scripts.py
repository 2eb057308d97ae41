"""The launch scripts as a user runs them: bash, the project's venv, a real mpirun."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, stage_env

pytestmark = pytest.mark.slow


def bash(script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 600):
    # WM_VENV: the environment running the tests, so the scripts do not build another one.
    full_env = {**stage_env(), "WM_VENV": sys.prefix, **(env or {})}
    return subprocess.run(["bash", script, *args], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def test_quickstart_runs_the_pipeline_on_the_quick_preset(tmp_path):
    run = tmp_path / "quick"
    done = bash("launch/quickstart.bash", "--episodes", "2", "--max-steps", "30",
                env={"RUN": str(run), "NP": "2",
                     "TRAIN_ARGS": "--max-steps 10 --popsize 4 --num-episode 1 --eval-episodes 2"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 MPI ranks" in done.stdout and "[extract] done" in done.stdout
    summary = json.loads((run / "record" / "summary.json").read_text())
    assert (summary["env"], summary["episodes"], summary["ranks"]) == ("doom", 2, 2)
    for weights in ("vae/vae.pt", "rnn/rnn.pt", "series/initial_z.npz", "es/best.json"):
        assert (run / weights).is_file(), weights
    assert "[quickstart] done" in done.stdout


def test_extract_bash_passes_its_arguments_to_every_rank(tmp_path):
    done = bash("extract.bash", "--run", str(tmp_path / "r"), "--env", "carracing", "--episodes", "2",
                "--max-steps", "10", env={"NP": "2"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "on 2 ranks" in done.stdout
    assert len(list(Path(tmp_path / "r" / "record").glob("episode_*.npz"))) == 2


def test_a_missing_mpirun_stops_the_script_with_one_line(tmp_path):
    done = bash("extract.bash", "--run", str(tmp_path / "r"), "--episodes", "1",
                env={"WM_MPIRUN": "/nonexistent/mpirun"})
    assert done.returncode != 0
    assert "no mpirun found at /nonexistent/mpirun" in done.stderr
    assert not (tmp_path / "r").exists()  # the stage never ran, not even as one process


def test_gce_train_bash_runs_the_trainer_over_mpi(tmp_path):
    done = bash("gce_train.bash", "--run", str(tmp_path / "none"), "--generations", "1",
                env={"NP": "2"})
    assert done.returncode != 0  # no V or M in an empty run: one line from rank 0, every rank ends
    assert done.stderr.count("error:") == 1 and "run `python -m wm." in done.stderr
