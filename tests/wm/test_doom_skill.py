"""--doom-skill: ViZDoom's difficulty is a setting of the run's game, kept for the whole run."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from wm.core.config import EXTRACT_DATA_FIELDS, TrainConfig
from wm.data.record import list_episodes, read_episode
from wm.data.rundir import CONFIG_NAME, save_stage_config
from wm.envs.games import DOOM_SCENARIO_SKILL, make_env
from wm.envs.policies import make_policy
from wm.orchestration import pipeline
from wm.stages import evaluate, extract, train
from wm.stages.evaluate import RandomEvaluate, evaluation_seeds

TINY = ["--episodes", "1", "--max-steps", "20", "--log-every", "100"]


def survival(skill: int | None, seeds: list[int], cap: int) -> list[int]:
    """Steps the random data policy survives on each seed (what wm.evaluate --params random plays)."""
    env = make_env("doom", cap, skill)
    try:
        play = RandomEvaluate(env, make_policy("hold", 1))
        return [play(np.zeros(1), seed)[1] for seed in seeds]
    finally:
        env.close()


def saved_run(path: Path, env: str = "doom", **values) -> str:
    """A run directory whose config.json holds an extract entry (nothing extracted)."""
    path.mkdir(parents=True)
    policy = "hold" if env == "doom" else "brownian"
    entry = {"env": env, "episodes": 1, "policy": policy, "max_steps": 20, "seed": 0, **values}
    save_stage_config(path, "extract", entry, EXTRACT_DATA_FIELDS)
    return str(path)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_the_default_skill_is_take_cover_cfgs():
    """Unset, the game is the scenario as ViZDoom ships it; the constant must say what the cfg says."""
    import vizdoom

    cfg = (Path(vizdoom.scenarios_path) / "take_cover.cfg").read_text()
    assert int(re.search(r"^doom_skill\s*=\s*(\d)", cfg, re.M).group(1)) == DOOM_SCENARIO_SKILL
    for skill, played in ((None, DOOM_SCENARIO_SKILL), (2, 2)):
        env = make_env("doom", 10, skill)
        assert env.skill == played  # what the engine reports
        env.close()


def test_the_skill_changes_the_game_and_unset_is_the_cfgs_own():
    seeds = evaluation_seeds(0, 3)
    easiest, hardest = survival(1, seeds, 300), survival(5, seeds, 300)
    assert min(easiest) > max(hardest), (easiest, hardest)  # (deterministic: seeded engine and policy)
    assert survival(None, seeds[:2], 300) == survival(DOOM_SCENARIO_SKILL, seeds[:2], 300)


def test_the_skill_is_part_of_the_runs_identity(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert extract.main(["--run", run, "--doom-skill", "5", *TINY]) == 0
    config = json.loads((tmp_path / "run" / CONFIG_NAME).read_text())
    assert config["stages"]["extract"]["doom_skill"] == 5
    assert read_episode(list_episodes(tmp_path / "run" / "record")[0]).meta["doom_skill"] == 5
    capsys.readouterr()
    assert extract.main(["--run", run, "--doom-skill", "3", *TINY]) != 0
    assert "doom-skill=5" in one_line_error(capsys)
    assert json.loads((tmp_path / "run" / CONFIG_NAME).read_text()) == config
    assert extract.main(["--run", run]) == 0  # the same command again: the run's own skill
    assert "1 episodes kept, 0 to make" in capsys.readouterr().out


def test_evaluation_plays_the_runs_skill_unless_asked(tmp_path):
    """The random baseline of a skill-5 run dies early; asked for skill 1, it reaches the cap."""
    run = str(tmp_path / "run")
    assert extract.main(["--run", run, "--doom-skill", "5", *TINY]) == 0
    common = ["--run", run, "--params", "random", "--episodes", "3", "--max-steps", "300"]
    assert evaluate.main(common) == 0
    assert evaluate.main([*common, "--doom-skill", "1"]) == 0
    own = json.loads((tmp_path / "run" / "eval" / "random.json").read_text())
    easy = json.loads((tmp_path / "run" / "eval" / "random-skill1.json").read_text())
    assert (own["doom_skill"], easy["doom_skill"]) == (5, 1)
    assert own["returns"] == survival(5, own["seeds"], 300) and easy["max"] == easy["min"] == 300


def test_training_checkpoints_carry_the_runs_skill(tmp_path, monkeypatch):
    """A checkpoint made in one game is not continued in another (only set skills are named, so
    checkpoints made before the setting existed still continue)."""
    monkeypatch.setattr(train, "controller_spec", lambda run: SimpleNamespace(num_params=3))
    monkeypatch.setattr(train, "world_model_digests", lambda run: ("v", "r"))
    for skill in (None, 5):
        run = saved_run(tmp_path / str(skill), doom_skill=skill)
        identity = train.run_identity(TrainConfig(run=run, env="doom", popsize=4))
        assert identity.get("doom_skill", "unset") == (skill or "unset")


@pytest.mark.parametrize("argv", [
    ["--env", "carracing", "--doom-skill", "3"],
    ["--env", "doom", "--doom-skill", "6"],
    ["--env", "doom", "--doom-skill", "0"],
])
def test_extraction_refuses_a_skill_the_game_has_not(tmp_path, argv, capsys):
    assert extract.main(["--run", str(tmp_path / "run"), *argv, *TINY]) == 2
    assert "--doom-skill" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_a_carracing_run_refuses_the_skill_everywhere(tmp_path, capsys):
    run = saved_run(tmp_path / "run", "carracing")
    assert evaluate.main(["--run", run, "--params", "random", "--doom-skill", "2"]) == 1
    assert "--doom-skill" in one_line_error(capsys)
    assert not (tmp_path / "run" / "eval" / "random-skill2.json").exists()
    assert pipeline.main(["--run", run, "--env", "carracing", "--doom-skill", "2"]) == 2
    assert "--doom-skill" in one_line_error(capsys)


def test_the_dream_has_no_skill(tmp_path, capsys):
    run = saved_run(tmp_path / "run")
    assert evaluate.main(["--run", run, "--dream", "--doom-skill", "2"]) == 1
    assert "dream" in one_line_error(capsys)


def test_the_pipeline_sets_the_skill_where_the_data_is_made(tmp_path):
    """Only extraction is told; every later stage plays the run's own (from its config.json), and
    data made at another skill is not taken as complete (extraction then refuses the change)."""
    cfg = pipeline.PipelineConfig(run=str(tmp_path), env="doom", preset="tiny", doom_skill=5)
    todo = {stage.name: stage for stage in pipeline.stages(cfg)}
    assert todo["extract"].args[-2:] == ["--doom-skill", "5"]
    assert not any("--doom-skill" in stage.args for name, stage in todo.items() if name != "extract")
    os.makedirs(tmp_path / "record")
    summary = {"episodes": 4, "env": "doom", "doom_skill": None}
    (tmp_path / "record" / "summary.json").write_text(json.dumps(summary))
    assert not todo["extract"].done()
    (tmp_path / "record" / "summary.json").write_text(json.dumps({**summary, "doom_skill": 5}))
    assert todo["extract"].done()
