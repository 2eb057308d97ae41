"""The fast CarRacing against gymnasium's: the same game, frames within a stated bound.

Training may run on wm.envs.fast_carracing; scores are the official env's. These tests keep the two from
drifting apart silently: same seed, same actions, then identical rewards and endings, and 64x64
frames (what V sees) close pixel by pixel.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import pytest

from wm.core.config import EvaluateConfig, ExtractConfig
from wm.core.errors import WMError
from wm.data.record import episode_path, read_episode
from wm.envs import games as envs
from wm.envs.fast_carracing import FastCarRacingEnv
from wm.envs.games import FRAME_SHAPE, CarRacingEnv, make_env
from wm.envs.policies import make_policy
from wm.orchestration import pipeline
from wm.orchestration.pipeline import PipelineConfig, stages
from wm.pictures.results import paired_comparison, paired_lines
from wm.stages import evaluate, rnn_train, train
from wm.stages.extract import _expected_meta

STEPS = 300  # the cap here, so that truncation is compared too; includes the opening zoom-in
SEEDS = (0, 1)
# Measured over seeds 0-5 with the brownian policy (300 steps each): mean |difference| 0.27-0.37/255,
# 99th percentile 8-11/255, worst single frame's mean 0.88-1.11/255. Bounds ~1.6-2x those.
MEAN_BOUND = 0.6
P99_BOUND = 16
WORST_FRAME_BOUND = 2.0


def play_both(seed: int) -> tuple[np.ndarray, list[tuple], list[tuple]]:
    """Play one brownian action sequence on both envs: (|frame differences|, outcomes, outcomes)."""
    official, fast = CarRacingEnv(max_steps=STEPS), FastCarRacingEnv(max_steps=STEPS)
    policy = make_policy("brownian", 3)
    policy.reset(np.random.default_rng(seed))
    frame_a, _ = official.reset(seed=seed)
    frame_b, _ = fast.reset(seed=seed)
    diffs, outcomes_a, outcomes_b = [np.abs(frame_a.astype(np.int16) - frame_b)], [], []
    while True:
        action = policy.act()
        frame_a, *outcome_a = official.step(action)
        frame_b, *outcome_b = fast.step(action)
        assert frame_b.shape == FRAME_SHAPE and frame_b.dtype == np.uint8
        diffs.append(np.abs(frame_a.astype(np.int16) - frame_b))
        outcomes_a.append(tuple(outcome_a[:3]))
        outcomes_b.append(tuple(outcome_b[:3]))
        if outcome_a[1] or outcome_a[2] or outcome_b[1] or outcome_b[2]:
            break
    official.close()
    fast.close()
    return np.stack(diffs), outcomes_a, outcomes_b


@pytest.fixture(scope="module", params=SEEDS)
def played(request) -> tuple[np.ndarray, list[tuple], list[tuple]]:
    return play_both(request.param)


def test_same_rewards_and_endings(played):
    _, outcomes_a, outcomes_b = played
    assert outcomes_b == outcomes_a  # (reward, terminated, truncated) step by step, exactly
    assert outcomes_a[-1][2] or outcomes_a[-1][1]


def test_frames_within_bound(played):
    diffs, _, _ = played
    per_frame = diffs.reshape(len(diffs), -1).mean(axis=1)
    assert diffs.mean() < MEAN_BOUND, f"mean |difference| {diffs.mean():.3f}/255"
    assert np.percentile(diffs, 99) <= P99_BOUND, f"99th percentile {np.percentile(diffs, 99)}/255"
    assert per_frame.max() < WORST_FRAME_BOUND, f"worst frame's mean {per_frame.max():.3f}/255"


def test_a_wrong_picture_fails_the_bound():
    """The bound has teeth: frames of one track a few steps apart already break it."""
    env = FastCarRacingEnv()
    env.reset(seed=0)
    frames = [env.step(np.array([0.0, 1.0, 0.0], np.float32))[0].astype(np.int16) for _ in range(70)]
    env.close()
    assert np.abs(frames[-1] - frames[-6]).mean() > MEAN_BOUND


def test_make_env_gives_the_fast_env_for_carracing_only():
    env = make_env("carracing", 20, fast=True)
    assert isinstance(env, FastCarRacingEnv) and env.max_steps == 20
    env.close()
    assert type(make_env("carracing")) is CarRacingEnv  # (the official env unless asked)
    with pytest.raises(WMError, match="--fast-env"):
        make_env("doom", fast=True)


def test_official_episodes_made_before_the_option_still_match():
    """Episode files made before --fast-env existed hold no ``fast_env``: they must not be remade."""
    official = _expected_meta(ExtractConfig(run="r", env="carracing", episodes=1, policy="brownian",
                                            max_steps=10))
    assert official["fast_env"] is None  # (what meta.get("fast_env") gives for an old file)
    fast = _expected_meta(ExtractConfig(run="r", env="carracing", episodes=1, policy="brownian",
                                        max_steps=10, fast_env=True))
    assert fast["fast_env"] is True


def test_fast_extraction_is_part_of_the_data_set(tmp_path, run_stage):
    run = tmp_path / "run"
    args = ["--run", str(run), "--env", "carracing", "--episodes", "1", "--max-steps", "10"]
    assert run_stage("extract", *args, "--fast-env").returncode == 0
    assert json.loads((run / "config.json").read_text())["stages"]["extract"]["fast_env"] is True
    assert read_episode(episode_path(run / "record", 0)).meta["fast_env"] is True
    official = run_stage("extract", *args, "--no-fast-env")
    assert official.returncode != 0 and "fast-env" in official.stderr
    doom = run_stage("extract", "--run", str(tmp_path / "doom"), "--env", "doom", "--episodes", "1",
                     "--fast-env")
    assert doom.returncode != 0 and "Traceback" not in doom.stderr
    assert len(doom.stderr.strip().splitlines()) == 1 and "--fast-env" in doom.stderr


def test_fast_training_is_part_of_the_checkpoint_and_evaluation_stays_official(
        carracing_series_run, copy_run, capsys, monkeypatch):
    run = copy_run(carracing_series_run)
    assert rnn_train.main(["--run", str(run), "--epochs", "1", "--steps-per-epoch", "1", "--hidden-size", "8",
                           "--batch-size", "2", "--seq-len", "10", "--threads", "1", "--log-every", "0"]) == 0
    quick = ["--run", str(run), "--preset", "quick", "--max-steps", "5", "--popsize", "2",
             "--num-episode", "1", "--eval-every", "0"]
    assert train.main([*quick, "--generations", "1", "--fast-env"]) == 0
    capsys.readouterr()
    assert train.main([*quick, "--generations", "2", "--no-fast-env"]) != 0
    assert "fast_env" in capsys.readouterr().err
    # wm.evaluate scores on the official env even for a run trained on the fast one.
    made = []
    monkeypatch.setattr(envs, "make_env", lambda *a, **k: made.append((a, k)) or make_env(*a, **k))
    evaluate.make_evaluator(EvaluateConfig(run=str(run)), "carracing")
    assert made and not any(k.get("fast", a[3] if len(a) > 3 else False) for a, k in made)
    # ... and --fast-env plays the same controller on the fast env over the same tracks: the paired
    # comparison of the two is in results.md.
    monkeypatch.undo()
    both = ["--run", str(run), "--params", "current", "--episodes", "3", "--max-steps", "20"]
    assert evaluate.main([*both, "--name", "real"]) == 0
    assert evaluate.main([*both, "--fast-env"]) == 0
    fast = json.loads((run / "eval" / "real-current-fast.json").read_text())
    official = json.loads((run / "eval" / "real.json").read_text())
    assert fast["fast_env"] is True and fast["seeds"] == official["seeds"]
    (run / "eval" / "real-current-fast.json").rename(run / "eval" / "real-fast.json")
    paired = paired_comparison(run)
    assert paired["episodes"] == 3 and paired["fast_mean"] == fast["mean"]
    assert "## Fast env against the official one" in "\n".join(paired_lines({"paired": paired}))


def test_the_paired_comparison_says_whether_the_envs_agree_within_noise(tmp_path):
    (tmp_path / "eval").mkdir()

    def played(name: str, returns: list[float], seeds: list[int] | None = None) -> None:
        summary = {"params": "best", "controller": "abc", "seeds": seeds or [1, 2, 3, 4],
                   "returns": returns, "mean": sum(returns) / len(returns)}
        (tmp_path / "eval" / f"{name}.json").write_text(json.dumps(summary))

    played("real", [800.0, 700.0, 900.0, 850.0])
    played("real-fast", [805.0, 690.0, 910.0, 845.0])  # differences +5 -10 +10 -5: mean 0
    same = paired_comparison(tmp_path)
    assert same["diff_mean"] == 0.0 and same["agree"]
    assert "agree within noise" in paired_lines({"paired": same})[2]
    played("real-fast", [850.0, 760.0, 940.0, 905.0])  # +50 +60 +40 +55: far beyond its noise
    assert not paired_comparison(tmp_path)["agree"]
    played("real-fast", [850.0, 760.0, 940.0, 905.0], seeds=[9, 9, 9, 9])  # other tracks: no pairs
    assert paired_comparison(tmp_path) is None


def test_the_pipeline_extracts_and_trains_fast_and_evaluates_official(tmp_path, capsys):
    cfg = PipelineConfig(run=str(tmp_path / "r"), env="carracing", preset="tiny", np=1, eval_episodes=3,
                         fast_env=True)
    fast = {s.name for s in stages(cfg) if "--fast-env" in s.args}
    assert fast == {"extract", "train", "evaluate-fast"}  # (evaluate and random: the official env)
    assert not any("--fast-env" in s.args for s in stages(PipelineConfig(run=str(tmp_path / "r"),
                                                                         env="carracing", preset="tiny")))
    assert pipeline.main(["--run", str(tmp_path / "d"), "--env", "doom", "--fast-env"]) == 2
    err = capsys.readouterr().err
    assert "--fast-env" in err and len(err.strip().splitlines()) == 1


def test_the_quick_preset_trains_fast_and_scores_fewer_official_tracks():
    from wm.core import cli
    from wm.orchestration.pipeline import pipeline_preset

    def parsed(*flags: str) -> PipelineConfig:
        return cli.parse(PipelineConfig, ["--run", "r", *flags], "p", "", pipeline_preset)[0]

    quick = parsed("--env", "carracing", "--preset", "quick")
    assert quick.fast_env and quick.eval_episodes == 20
    assert not parsed("--env", "carracing", "--preset", "quick", "--no-fast-env").fast_env
    assert parsed("--env", "carracing", "--preset", "quick", "--eval-episodes", "100").eval_episodes == 100
    small = parsed("--env", "carracing")  # (small trains on the fast env too, scored on 100 tracks)
    assert small.fast_env and small.eval_episodes == 100
    assert not parsed("--env", "carracing", "--no-fast-env").fast_env
    assert not parsed("--env", "doom").fast_env
    assert parsed("--preset", "quick").eval_episodes == 100  # (Doom's quick: 100 episodes)
