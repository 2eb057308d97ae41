"""wm.evaluate on a tiny real Doom run: real game, dream, random baseline, MPI, bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.wm.conftest import files_of
from wm.pictures.results import write_results
from wm.stages import evaluate
from wm.stages.evaluate import evaluation_seeds


@pytest.fixture
def es_run(doom_es_run):
    return doom_es_run


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_real_game_evaluation_writes_summary_and_per_episode_csv(es_run, capsys):
    assert evaluate.main(["--run", str(es_run), "--episodes", "3", "--max-steps", "40"]) == 0
    summary = json.loads((es_run / "eval" / "real.json").read_text())
    rows = read_csv(es_run / "eval" / "real.csv")
    returns = [float(r["return"]) for r in rows]
    assert [int(r["seed"]) for r in rows] == evaluation_seeds(0, 3) == summary["seeds"]
    assert summary["mean"] == pytest.approx(np.mean(returns))
    assert summary["std"] == pytest.approx(np.std(returns))
    assert summary["min"] == min(returns) and summary["max"] == max(returns)
    assert summary["where"] == "real" and all(1 <= int(r["steps"]) <= 40 for r in rows)
    out = capsys.readouterr().out
    assert f"mean {summary['mean']:.1f}" in out
    assert f"[evaluate] {summary['episodes']}/{summary['episodes']} episodes |" in out  # (progress lines)


def test_evaluation_seeds_are_fresh_and_given_seeds_are_played(es_run):
    from es.trainer import ESSettings, episode_seed, eval_seed

    settings = ESSettings(generations=1)
    training = {episode_seed(settings, 4, g, c, e) for g in range(3) for c in range(4) for e in range(2)}
    training |= {eval_seed(settings, g, e) for g in range(3) for e in range(4)}
    assert not training & set(evaluation_seeds(0, 100))
    assert evaluate.main(["--run", str(es_run), "--seeds", "5,6", "--max-steps", "20",
                          "--name", "given"]) == 0
    assert [r["seed"] for r in read_csv(es_run / "eval" / "given.csv")] == ["5", "6"]


def test_random_baseline_and_dream_over_mpi(es_run, run_stage):
    done = run_stage("evaluate", "--run", str(es_run), "--params", "random", "--episodes", "4", ranks=3)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 playing rank(s)" in done.stdout
    random = json.loads((es_run / "eval" / "random.json").read_text())
    assert random["episodes"] == 4 and random["mean"] > 50  # the random policy survives a while
    assert evaluate.main(["--run", str(es_run), "--dream", "--temperature", "1.3", "--episodes", "3",
                          "--max-steps", "25"]) == 0
    dream = json.loads((es_run / "eval" / "dream-tau1.3.json").read_text())
    assert dream["where"] == "dream" and dream["temperature"] == 1.3 and dream["max"] <= 25


def test_np_starts_local_processes_that_score_like_one_process(es_run, run_stage):
    done = run_stage("evaluate", "--run", str(es_run), "--np", "2", "--episodes", "4", "--max-steps", "25",
                     "--name", "np2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 playing rank(s)" in done.stdout
    assert evaluate.main(["--run", str(es_run), "--episodes", "4", "--max-steps", "25", "--name", "one"]) == 0
    parallel, alone = (json.loads((es_run / "eval" / f"{n}.json").read_text()) for n in ("np2", "one"))
    assert parallel["ranks"] == 3 and alone["ranks"] == 1
    assert parallel["returns"] == alone["returns"] and parallel["seeds"] == alone["seeds"]


def test_current_params_and_results_file(es_run):
    assert evaluate.main(["--run", str(es_run), "--params", "current", "--episodes", "2", "--max-steps",
                          "20"]) == 0
    assert (es_run / "eval" / "real-current.json").is_file()
    results = write_results(es_run)
    text = (es_run / "results.md").read_text()
    for name, score in results["scores"].items():
        assert name in text and f"{score['mean']:.1f} +- {score['std']:.1f}" in text
    assert results["seconds"]["train"] > 0 and results["paper"]["solved"] == 750


@pytest.mark.parametrize("flags, message", [
    (["--episodes", "0"], "--episodes must be 1 to 1,000,000, got 0"),
    (["--temperature", "0", "--dream"], "--temperature must be a number > 0"),
    (["--seeds", "1,x"], "--seeds must be comma-separated integers"),
    (["--np", "-1"], "--np must be >= 0"),
])
def test_bad_flags_are_one_line(es_run, flags, message, capsys):
    assert evaluate.main(["--run", str(es_run), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["../es/best", "es/best", ".best", "..", ""])
def test_an_output_name_that_is_not_a_plain_file_name_is_refused(es_run, name, capsys):
    before = files_of(es_run)
    assert evaluate.main(["--run", str(es_run), "--episodes", "1", "--name", name]) == 2
    err = capsys.readouterr().err
    assert "--name must be a plain file name" in err and len(err.strip().splitlines()) == 1
    assert files_of(es_run) == before  # (es/best.json above all)


def test_missing_or_wrong_controllers_are_one_line(es_run, doom_m_run, carracing_series_run, tmp_path,
                                                   capsys):
    assert evaluate.main(["--run", str(doom_m_run), "--episodes", "1"]) == 1
    assert "run `python -m wm.train" in capsys.readouterr().err
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"params": [0.0] * 10}))
    assert evaluate.main(["--run", str(es_run), "--params", str(wrong), "--episodes", "1"]) == 1
    assert "needs 96" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{")
    assert evaluate.main(["--run", str(es_run), "--params", str(tmp_path / "broken.json")]) == 1
    assert "not a controller file" in capsys.readouterr().err
    assert evaluate.main(["--run", str(carracing_series_run), "--dream", "--params", "random"]) == 1
    assert "--dream needs the Doom TakeCover pipeline" in capsys.readouterr().err
    assert evaluate.main(["--run", str(tmp_path / "nothing"), "--params", "random"]) == 1
    assert "not a run directory" in capsys.readouterr().err


def test_a_dream_without_initial_latents_is_one_line_from_rank_0(es_run, copy_run, run_stage):
    run = copy_run(es_run)
    (run / "series" / "initial_z.npz").unlink()
    for stage, extra in (("evaluate", ["--episodes", "2"]), ("train", ["--preset", "tiny", "--out", "es2"])):
        done = run_stage(stage, "--run", str(run), "--dream", *extra, ranks=3)
        assert done.returncode != 0
        errors = [line for line in done.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1 and "run `python -m wm.series" in errors[0], done.stderr
        assert "Traceback" not in done.stderr and "[rank" not in done.stderr
