"""The C training stage on a tiny real Doom run: outputs, resume, MPI, and bad input."""

from __future__ import annotations

import json
import os

import pytest

from wm.stages import rnn_train, train

# In the real game (the Doom presets train in the dream: tests of that say --dream).
QUICK = ["--preset", "quick", "--no-dream", "--max-steps", "15", "--popsize", "4", "--num-episode", "1",
         "--eval-every", "2", "--eval-episodes", "2"]


@pytest.fixture
def m_run(doom_m_run):
    """A Doom run up to M (shared by the session: tests that change it copy it first)."""
    return doom_m_run


def test_training_writes_history_checkpoint_and_best_and_continues(m_run, copy_run, capsys):
    run = copy_run(m_run)
    assert train.main(["--run", str(run), *QUICK, "--generations", "2"]) == 0
    out = run / "es"
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2]
    assert rows[0]["evaluations"] == 4 and rows[0]["steps_max"] <= 15
    assert rows[1]["eval_score"] is not None
    best = json.loads((out / "best.json").read_text())
    assert len(best["params"]) == 64 + 16 + 16 and best["generation"] == 2
    assert (out / "history.csv").read_text().count("\n") == 3
    assert train.main(["--run", str(run), "--generations", "3"]) == 0  # the run's settings, one more
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2, 3]
    assert "gen 3/3" in capsys.readouterr().out


def test_training_over_mpi(m_run, copy_run, run_stage):
    run = copy_run(m_run)
    done = run_stage("train", "--run", str(run), *QUICK, "--generations", "2", "--np", "2", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 evaluating rank(s)" in done.stdout and "gen 2/2" in done.stdout


def test_without_m_the_message_names_rnn_train(doom_series_run, copy_run, capsys):
    run = copy_run(doom_series_run)
    assert train.main(["--run", str(run), *QUICK, "--generations", "1"]) == 1
    err = capsys.readouterr().err
    assert "run `python -m wm.rnn_train" in err and "runs every stage still to run" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("flag, value", [("--generations", "0"), ("--popsize", "1"), ("--sigma-init", "0"),
                                         ("--eval-every", "-1")])
def test_bad_flags_are_one_line(m_run, flag, value, capsys):
    assert train.main(["--run", str(m_run), *QUICK, flag, value]) == 2
    err = capsys.readouterr().err
    assert flag in err and len(err.strip().splitlines()) == 1


def test_status_json_tells_a_scheduler_whether_to_requeue(m_run, copy_run):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT, stage_env

    run = copy_run(m_run)
    proc = subprocess.Popen([sys.executable, "-m", "wm.train", "--run", str(run), *QUICK, "--generations",
                             "1000"], cwd=ROOT, env=stage_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    history = run / "es" / "history.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (history.exists() and history.read_text().count("\n") >= 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    status = json.loads((run / "es" / "status.json").read_text())
    assert status["finished"] is False and status["state"] == "interrupted"
    done = history.read_text().count("\n")
    assert train.main(["--run", str(run), "--generations", str(done + 1)]) == 0
    status = json.loads((run / "es" / "status.json").read_text())
    assert status == {"finished": True, "state": "finished", "generation": done + 1,
                      "generations": done + 1}


def test_carracing_controller_trains_in_the_real_env(carracing_series_run, copy_run):
    run = copy_run(carracing_series_run)
    assert rnn_train.main(["--run", str(run), "--epochs", "1", "--steps-per-epoch", "1", "--hidden-size", "8",
                           "--batch-size", "2", "--seq-len", "10", "--threads", "1", "--log-every", "0"]) == 0
    assert train.main(["--run", str(run), "--preset", "quick", "--max-steps", "5", "--popsize", "2",
                       "--num-episode", "1", "--generations", "1", "--eval-every", "0"]) == 0
    row = json.loads((run / "es" / "history.jsonl").read_text())
    assert row["steps_max"] == 5 and row["evaluations"] == 2


def test_training_in_the_dream_over_mpi_records_it_and_resumes_only_at_the_same_temperature(
        m_run, copy_run, run_stage, capsys):
    run = copy_run(m_run)
    dream = [*QUICK, "--dream", "--temperature", "1.3", "--max-steps", "40"]
    done = run_stage("train", "--run", str(run), *dream, "--generations", "2", ranks=3, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "in M's dream at temperature 1.3" in done.stdout and "gen 2/2" in done.stdout
    rows = [json.loads(line) for line in (run / "es" / "history.jsonl").read_text().splitlines()]
    assert all(1 <= r["steps_max"] <= 40 for r in rows)
    assert json.loads((run / "config.json").read_text())["stages"]["train"]["dream"] is True
    assert train.main(["--run", str(run), *dream, "--temperature", "1.0", "--generations", "3"]) == 1
    assert "temperature: 1.3 -> 1.0" in capsys.readouterr().err


def test_dream_outputs_can_go_to_another_directory(m_run, copy_run):
    run = copy_run(m_run)
    assert train.main(["--run", str(run), *QUICK, "--dream", "--max-steps", "20", "--generations", "1",
                       "--out", "sweep/tau-1.0", "--temperature", "1.0"]) == 0
    assert (run / "sweep" / "tau-1.0" / "best.json").exists() is False  # (no evaluation at gen 1)
    assert (run / "sweep" / "tau-1.0" / "history.csv").is_file() and not (run / "es").exists()


@pytest.mark.parametrize("flags, message", [
    (["--dream", "--temperature", "0"], "--temperature must be a number > 0"),
    (["--dream", "--temperature", "-1"], "--temperature must be a number > 0"),
    (["--out", "../elsewhere"], "--out must be a directory inside the run"),
])
def test_bad_dream_flags_are_one_line(m_run, flags, message, capsys):
    assert train.main(["--run", str(m_run), *QUICK, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_carracing_run_cannot_train_in_the_doom_dream(carracing_series_run, capsys):
    assert train.main(["--run", str(carracing_series_run), *QUICK, "--dream"]) == 2
    assert "--dream needs the Doom TakeCover pipeline" in capsys.readouterr().err


def test_several_envs_per_worker(m_run, copy_run, run_stage):
    run = copy_run(m_run)
    done = run_stage("train", "--run", str(run), *QUICK, "--generations", "1", "--envs-per-worker", "3",
                     ranks=2, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    row = json.loads((run / "es" / "history.jsonl").read_text())
    assert row["evaluations"] == 4 and 0 < row["busy_fraction"] <= 1.01


def test_best_json_names_the_generation_whose_mean_scored_best(m_run, copy_run):
    run = copy_run(m_run)
    assert train.main(["--run", str(run), *QUICK, "--generations", "4", "--eval-every", "1"]) == 0
    rows = [json.loads(line) for line in (run / "es" / "history.jsonl").read_text().splitlines()]
    best = json.loads((run / "es" / "best.json").read_text())
    scores = [r["eval_score"] for r in rows]
    assert best["score"] == max(scores)
    assert best["generation"] == rows[scores.index(max(scores))]["generation"]
