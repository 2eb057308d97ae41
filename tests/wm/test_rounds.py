"""Iterative training (wm.pipeline --rounds): the rounds' steps, and two rounds end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from es.checkpoint import CHECKPOINT_NAME, Checkpoints
from tests.conftest import run_python, stage_env
from wm.core.errors import WMError
from wm.data.record import read_episode
from wm.data.recordset import data_set, round_dir
from wm.models.controller import params_digest
from wm.models.training import load_weights
from wm.orchestration.pipeline import PipelineConfig, run_stages
from wm.orchestration.rounds import RoundSettings, round_stages, run_rounds
from wm.orchestration.rounds import main as rounds_main
from wm.pictures.results import round_lines, round_rows


def test_the_steps_of_a_round_and_where_rounds_are_refused(tmp_path, capsys):
    cfg = PipelineConfig(run=str(tmp_path / "r"), env="doom", preset="tiny", np=2, eval_episodes=3, rounds=2)
    settings = RoundSettings.of(cfg)
    assert settings.rounds == 2 and settings.episodes == 2 and settings.round_weight == 4
    steps = round_stages(cfg, settings, 2, 2)
    assert [s.name for s in steps] == [f"round 2 {n}" for n in
                                      ("play", "series", "rnn", "train", "evaluate", "random")]
    assert [s.ranks for s in steps] == [2, 0, 0, 3, 3, 3]
    assert not any(s.done() for s in steps)
    play, _, rnn, train, evaluate, _ = (s.args for s in steps)
    assert play[play.index("--params") + 1].endswith("es-round-1/best.json")
    assert rnn[rnn.index("--epochs") + 1] == "3" and "--grown-data" in rnn  # tiny: 1 epoch, +1 a round
    assert train[train.index("--out") + 1] == "es-round-2" and "--init-params" in train
    assert evaluate[evaluate.index("--name") + 1] == "real-round-2"
    small = PipelineConfig(run="r", env="doom", preset="small")
    assert RoundSettings.of(small).rounds == 3 and RoundSettings.of(
        PipelineConfig(run="r", env="doom", preset="small", rounds=0)).rounds == 0
    with pytest.raises(WMError, match="needs M's dream"):
        RoundSettings.of(PipelineConfig(run="r", env="carracing", preset="tiny", rounds=1))
    with pytest.raises(WMError, match="doom quick preset trains C in the real game"):
        RoundSettings.of(PipelineConfig(run="r", env="doom", preset="quick", rounds=1))
    assert RoundSettings.of(PipelineConfig(run="r", env="doom", preset="quick")).rounds == 0
    # (Slurm's last job of a round marks it complete only when every step is)
    mark = ["--run", str(tmp_path / "r"), "--preset", "tiny", "--eval-episodes", "3", "--rounds", "2"]
    assert rounds_main([*mark, "--mark", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: round 1 is not complete: round 1 play, ") and len(err.splitlines()) == 1


def test_each_round_is_a_row_of_results(tmp_path):
    run = tmp_path / "run"
    figures = {"episodes": 2, "deaths": 2, "foreseen": 1, "foreseen_fraction": 0.5, "far_steps": 100,
               "false_alarm_rate": 0.01}
    scores = {"real": {"mean": 500.0, "std": 50.0, "episodes": 2, "foresight": figures},
              "random": {"foresight": figures},
              "real-round-1": {"mean": 800.0, "std": 80.0, "episodes": 2, "foresight": None}}
    for directory, score in (("es", 1900.0), ("es-round-1", 1200.0)):
        (run / directory).mkdir(parents=True)
        (run / directory / "best.json").write_text(json.dumps({"score": score, "params": [0.0]}))
    rows = round_rows(run, scores)
    assert [(r["round"], r["real"], r["dream"]) for r in rows] == [(0, 500.0, 1900.0), (1, 800.0, 1200.0)]
    assert rows[0]["ratio"] == 3.8 and rows[1]["random_foresight"] is None
    table = "\n".join(round_lines({"rounds": rows}))
    assert "| 0 | **500.0 +- 50.0** (2) | 1900.0 | 3.80x | 1/2 (50%), 1.00% | 1/2 (50%), 1.00% |" in table
    assert "| 1 | **800.0 +- 80.0** (2) | 1200.0 | 1.50x | - | - |" in table
    assert round_rows(run, {"real": scores["real"]}) == []  # (no rounds: no table)


@pytest.mark.slow
def test_two_rounds_of_iterative_training_end_to_end_with_mpirun(tmp_path, monkeypatch, capfd):
    run = tmp_path / "run"
    command = ["-m", "wm.pipeline", "--run", str(run), "--preset", "tiny", "--np", "1", "--eval-episodes",
               "2", "--rounds", "2"]
    done = run_python(command, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "round 2: real-game score" in done.stdout

    # (a) each round's real episodes, of the previous round's best controller, in the data set
    episodes = data_set(run)
    assert [e.round for e in episodes] == [0] * 4 + [1] * 2 + [2] * 2
    meta = read_episode(round_dir(run, 2) / "episode_000001.npz").meta
    assert meta["policy"] == "controller" and meta["round"] == 2 and meta["sigma"] == 0.1
    # (b, c) encoded by the same V; M continued on the grown set, one more epoch a round
    series = json.loads((run / "series" / "summary.json").read_text())
    assert series["episodes"] == 8 and series["rounds"] == [1, 2]
    info = load_weights(run / "rnn" / "rnn.pt", "rnn")["info"]
    assert info["epochs"] == 3 and info["rounds"] == [1, 2] and info["vae"] == series["vae"]
    # (d) each round's ES in its own directory, starting from the previous round's best
    start = json.loads((run / "es-round-1" / "best.json").read_text())["params"]
    state = Checkpoints(run / "es-round-2" / CHECKPOINT_NAME).load()
    assert np.array_equal(state["strategy"]["options"]["x0"], start)
    # (e) evaluated in the real game, the random policy under the new M; all in results.md
    results = json.loads((run / "results.json").read_text())
    assert [row["round"] for row in results["rounds"]] == [0, 1, 2]
    assert all(row["random_foresight"]["episodes"] == 2 for row in results["rounds"])
    assert "## Iterative training" in (run / "results.md").read_text()
    assert "## Iterative training" in (run / "report.md").read_text()
    # (f) the run's controller is the newest round's: the headline, "best", the export
    newest = json.loads((run / "es-round-2" / "best.json").read_text())
    assert results["final"] == "real-round-2" and "eval/real-round-2" in (run / "results.md").read_text()
    assert json.loads((run / "eval" / "real-round-2.json").read_text())["controller"] == params_digest(
        newest["params"])
    exported = run_python(["-m", "wm.export", "--run", str(run), "--out", str(tmp_path / "agent")])
    assert exported.returncode == 0, exported.stderr
    assert json.loads((tmp_path / "agent" / "es" / "best.json").read_text())["params"] == newest["params"]

    # Under Slurm the round's last job writes the mark, once every step is complete.
    (run / "rounds" / "round-02.json").unlink()
    assert rounds_main(["--run", str(run), "--preset", "tiny", "--eval-episodes", "2", "--rounds", "2",
                        "--mark", "2"]) == 0
    assert json.loads((run / "rounds" / "round-02.json").read_text())["complete"] is True

    # Resumable mid-round: a step whose outputs are gone is made again, complete rounds are skipped
    # (the rounds alone, in this process: the pipeline's own stages and report are tested elsewhere).
    (run / "rounds" / "round-02.json").unlink()
    (run / "eval" / "random-round-2.json").unlink()
    for name, value in stage_env().items():
        monkeypatch.setenv(name, value)
    cfg = PipelineConfig(run=str(run), env="doom", preset="tiny", np=1, eval_episodes=2, rounds=2)
    assert run_rounds(cfg, 1, run_stages) == 0
    out = capfd.readouterr().out
    assert "[pipeline] round 1: already complete, skipped" in out
    for step in ("play", "series", "rnn", "train", "evaluate"):
        assert f"[pipeline] round 2 {step}: already complete, skipped" in out
    assert "[pipeline] round 2 random: " in out and (run / "rounds" / "round-02.json").is_file()
