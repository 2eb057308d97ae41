"""The launch scripts as a user runs them: bash, the project's venv, a real mpirun."""

from __future__ import annotations

import json
import re
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


def run_pipeline(script: str, run: Path, episodes: int) -> tuple[str, dict]:
    """Run an experiment's script on the tiny preset with 2 MPI workers; check every stage ran and
    both evaluations played ``episodes`` real episodes; returns its output and results.json."""
    done = bash(script, "--preset", "tiny", "--run", str(run), "--np", "2", "--eval-episodes", str(episodes))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for stage in ("extract", "vae", "series", "rnn", "train", "evaluate", "random"):
        assert f"[pipeline] {stage}: " in out, stage
    assert "mpirun" in out and "-n 2" in out and "-n 3" in out  # extraction on 2 ranks; ES on 2 + master
    results = json.loads((run / "results.json").read_text())
    real, random = results["scores"]["real"], results["scores"]["random"]
    assert real["episodes"] == random["episodes"] == episodes and real["where"] == "real"
    return out, results


def test_doom_bash_runs_the_whole_experiment_and_quickstart_reruns_it_skipping_every_stage(tmp_path):
    run = tmp_path / "doom"
    out, results = run_pipeline("launch/doom.bash", run, episodes=3)
    assert "in M's dream at temperature 1.15" in out
    real, random = results["scores"]["real"], results["scores"]["random"]
    assert real["mean"] > 0 and random["mean"] > 0
    assert set(results["seconds"]) >= {"extract", "vae", "series", "rnn", "train", "evaluate", "random"}
    assert all(results["seconds"][s] is not None for s in ("extract", "vae", "rnn", "train", "evaluate"))
    assert results["config"]["train"]["dream"] is True
    text = (run / "results.md").read_text()
    assert f"{real['mean']:.1f} +- {real['std']:.1f}" in text and "1092" in text
    assert f"real-game score {real['mean']:.1f}" in out and "vs random policy" in out
    # The report with its pictures ends the job.
    report = (run / "report.md").read_text()
    pictures = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert {"report/training.png", "report/episode.gif", "report/vae_reconstructions.png"} <= set(pictures)
    assert all((run / p).is_file() for p in pictures) and "report.md" in out
    # Every stage's outputs are complete: a re-run skips them all and writes the same scores.
    # The re-run goes through launch/quickstart.bash (the README's main job: doom.bash with its
    # PRESET, RUN and NP), so one pipeline run tests both scripts (PRESET tiny: the quick preset
    # takes minutes; the tiny one shows the script is wired the same way).
    again = bash("launch/quickstart.bash", "--eval-episodes", "3",
                 env={"RUN": str(run), "NP": "2", "PRESET": "tiny"})
    assert again.returncode == 0, again.stdout + again.stderr
    assert "[pipeline] doom, preset tiny" in again.stdout and "vs random policy" in again.stdout
    assert again.stdout.count("already complete, skipped") == 7
    assert json.loads((run / "results.json").read_text())["scores"] == results["scores"]


def test_carracing_bash_runs_the_whole_experiment_in_the_real_env(tmp_path):
    run = tmp_path / "car"
    out, results = run_pipeline("launch/carracing.bash", run, episodes=2)
    assert "in the real carracing env" in out  # C trained in the game over MPI
    assert results["env"] == "carracing" and results["paper"]["solved"] == 900
    assert "906" in (run / "results.md").read_text()
    report = (run / "report.md").read_text()
    assert "report/training.png" in report and "report/dream-tau1.gif" in report and "threshold 900" in report
    assert results["config"]["train"]["off_track_stop"] == 20  # (the tiny preset exercises the early stop)
    assert "ended after 20 steps without a new track tile" in report
    # The projection for the paper preset reads this run's measurements.
    done = subprocess.run([sys.executable, "benchmarks/carracing_projection.py", "--run", str(run),
                           "--measured-cores", "2"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "| 1 x 64 |" in done.stdout and "| 4 x 64 |" in done.stdout and "10,000,000 frames" in done.stdout
    assert "Amdahl's law fitted to 2" in done.stdout  # V, series, M: the measured efficiency, not a guess
    # One efficiency for all three: 1.0 is linear scaling (64x on 64 cores); above 1 is refused.
    linear = subprocess.run([sys.executable, "benchmarks/carracing_projection.py", "--run", str(run),
                             "--measured-cores", "2", "--torch-efficiency", "1"], cwd=ROOT,
                            capture_output=True, text=True)
    assert linear.returncode == 0 and "vae 1.00 (x64.0 on 64 cores)" in linear.stdout, linear.stderr
    wrong = subprocess.run([sys.executable, "benchmarks/carracing_projection.py", "--run", str(run),
                            "--torch-efficiency", "1.5"], cwd=ROOT, capture_output=True, text=True)
    assert wrong.returncode == 2 and "--torch-efficiency 1.5: a fraction in (0, 1]" in wrong.stderr


def test_a_preset_that_does_not_exist_is_refused_in_one_line(tmp_path):
    done = bash("launch/doom.bash", "--preset", "huge", "--run", str(tmp_path / "r"))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "invalid choice: 'huge'" in errors[0]
    assert not (tmp_path / "r").exists()


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
