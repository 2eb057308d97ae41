"""The off-track early stop: exact on episodes that never progress again, and only a training option."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wm.core.errors import WMError
from wm.envs.early_stop import OffTrackStop, ProgressClock, stopped_return, wrap
from wm.envs.games import ENVS, make_env
from wm.stages import rnn_train, train
from wm.stages.train import parse_config

IDLE = -0.1


def test_clock_counts_steps_since_the_last_positive_reward():
    clock = ProgressClock(3)
    assert [clock.expired(r) for r in [-0.1, -0.1, 3.0, -0.1, -0.1, -0.1]] == [
        False, False, False, False, False, True]
    clock.reset()
    assert not clock.expired(-0.1)


def test_clock_refuses_zero_patience():
    with pytest.raises(ValueError, match="patience"):
        ProgressClock(0)


def test_stopped_return_is_exact_when_nothing_more_is_scored():
    rewards = [5.0] + [3.0, IDLE] * 10 + [IDLE] * 79  # 100 steps, progress ends at step 20
    full = float(np.sum(rewards))
    ret, steps = stopped_return(rewards, patience=10, idle_reward=IDLE, max_steps=100)
    assert steps == 20 + 10
    assert ret == pytest.approx(full)


def test_stopped_return_differs_when_the_car_comes_back():
    rewards = [IDLE] * 30 + [10.0] + [IDLE] * 69
    ret, steps = stopped_return(rewards, patience=20, idle_reward=IDLE, max_steps=100)
    assert steps == 20
    assert ret == pytest.approx(IDLE * 100)  # the late tile is what the stop gives up
    # With more patience it waits for the tile, then stops 40 idle steps later, exactly.
    assert stopped_return(rewards, 40, IDLE, 100) == (pytest.approx(float(np.sum(rewards))), 71)


def test_stopped_return_leaves_an_episode_that_ends_at_its_last_step_alone():
    rewards = [IDLE] * 9 + [-100.0]  # left the playfield: the game's own end
    assert stopped_return(rewards, 10, IDLE, 1000) == (pytest.approx(-100.9), 10)


def play(env, action: np.ndarray, seed: int) -> tuple[float, int, dict]:
    env.reset(seed=seed)
    total, steps, done, info = 0.0, 0, False, {}
    while not done:
        _, reward, terminated, truncated, info = env.step(action)
        total, steps, done = total + reward, steps + 1, terminated or truncated
    return total, steps, info


def test_a_car_that_never_moves_scores_the_same_in_a_fraction_of_the_steps():
    still = np.array([0.0, -1.0, -1.0])  # no steering, no gas, no brake
    env = make_env("carracing", max_steps=300)
    full, full_steps, _ = play(env, still, seed=3)
    stopped, steps, info = play(OffTrackStop(env, patience=40, idle_reward=IDLE), still, seed=3)
    env.close()
    assert full_steps == 300
    assert steps < 60 and info["early_stop"] == 300 - steps
    assert stopped == pytest.approx(full, abs=1e-3)


def test_wrap_is_a_no_op_at_zero_and_refuses_an_env_without_an_idle_reward():
    env = object()
    assert wrap(env, 0, None) is env
    with pytest.raises(ValueError, match="no per-step reward"):
        wrap(env, 50, ENVS["doom"].idle_reward)


@pytest.mark.parametrize("args, message", [
    (["--env", "doom", "--off-track-stop", "50", "--no-dream"], "needs the real CarRacing env; this run is"),
    (["--env", "carracing", "--off-track-stop", "-1"], "must be >= 0"),
])
def test_train_refuses_an_impossible_off_track_stop(tmp_path, args, message):
    with pytest.raises(WMError, match=message):
        parse_config(["--run", str(tmp_path), "--preset", "tiny", *args])


def test_the_paper_preset_plays_whole_episodes(tmp_path):
    def preset(name: str) -> int:
        return parse_config(["--run", str(tmp_path), "--env", "carracing", "--preset", name]).off_track_stop

    assert preset("paper") == 0 and preset("small") > 0


def test_training_stops_idle_episodes_and_resumes_only_with_the_same_patience(carracing_series_run, copy_run,
                                                                                capsys):
    run = copy_run(carracing_series_run)
    assert rnn_train.main(["--run", str(run), "--epochs", "1", "--steps-per-epoch", "2", "--hidden-size",
                           "16", "--batch-size", "2", "--seq-len", "10", "--threads", "1", "--log-every",
                           "0"]) == 0
    flags = ["--run", str(run), "--preset", "quick", "--max-steps", "80", "--popsize", "4",
             "--num-episode", "1", "--eval-every", "0"]
    assert train.main([*flags, "--generations", "1", "--off-track-stop", "10"]) == 0
    row = json.loads((run / "es" / "history.jsonl").read_text().splitlines()[0])
    assert row["steps_mean"] < 80  # a car from a standstill reaches no new tile in 10 steps
    assert train.main([*flags, "--generations", "2"]) == 1  # the same checkpoint without the stop
    assert "off_track_stop: 10 -> None" in capsys.readouterr().err
