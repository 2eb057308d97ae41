"""The two real environments and the pure functions that map frames and actions for them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import pytest

from wm.envs.games import (
    CARRACING_KEEP_ROWS,
    DOOM_KEEP_ROWS,
    DOOM_MOVE_THRESHOLD,
    ENV_NAMES,
    FRAME_SHAPE,
    CarRacingEnv,
    DoomTakeCoverEnv,
    carracing_action,
    doom_buttons,
    make_env,
    preprocess,
)

# CarRacing opens on a ~50-frame zoom-in; compare tracks after it.
CARRACING_ZOOM_STEPS = 60
DOOM_MAX_TICS = 2100


def fixed_actions(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, dim)).astype(np.float32)


def rollout(env, seed: int, actions: np.ndarray):
    """Reset with ``seed`` and play ``actions`` until they run out or the episode ends."""
    obs, _ = env.reset(seed=seed)
    frames, rewards, ends = [obs], [], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        frames.append(obs)
        rewards.append(reward)
        ends.append((terminated, truncated))
        if terminated or truncated:
            break
    return np.stack(frames), rewards, ends


def fresh_rollout(name: str, seed: int, actions: np.ndarray, max_steps: int | None = None):
    env = make_env(name, max_steps)
    try:
        return rollout(env, seed, actions)
    finally:
        env.close()


def assert_frame(env, frame) -> None:
    assert isinstance(frame, np.ndarray)
    assert frame.shape == FRAME_SHAPE
    assert frame.dtype == np.uint8
    assert env.observation_space.contains(frame)


# ---------------------------------------------------------------- preprocess


@pytest.mark.parametrize(("height", "width", "keep_rows"), [(96, 96, CARRACING_KEEP_ROWS),
                                                           (120, 160, DOOM_KEEP_ROWS)])
def test_preprocess_shape_and_dtype(height, width, keep_rows):
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = preprocess(frame, keep_rows)
    assert out.shape == FRAME_SHAPE
    assert out.dtype == np.uint8


@pytest.mark.parametrize(("height", "width", "keep_rows"), [(96, 96, CARRACING_KEEP_ROWS),
                                                           (120, 160, DOOM_KEEP_ROWS)])
def test_preprocess_crop_drops_the_bottom_rows(height, width, keep_rows):
    frame = np.zeros((height, width, 3), np.uint8)
    frame[keep_rows:] = 255  # the part that must be cropped away
    assert np.all(preprocess(frame, keep_rows) == 0)
    # ... and the row just above the cut is kept: one white row there shows in the output.
    frame[keep_rows - 1] = 255
    assert preprocess(frame, keep_rows).max() > 0


def test_preprocess_keeps_the_content_of_the_top_rows():
    frame = np.zeros((96, 96, 3), np.uint8)
    frame[: CARRACING_KEEP_ROWS // 2, :, 0] = 200  # top half of the kept part red
    out = preprocess(frame, CARRACING_KEEP_ROWS)
    assert np.all(out[:20, :, 0] == 200)
    assert np.all(out[44:, :, 0] == 0)
    assert np.all(out[..., 1:] == 0)


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((96, 96), np.uint8),  # no channel axis
        np.zeros((96, 96, 4), np.uint8),  # RGBA
        np.zeros((96, 96, 3), np.float32),  # wrong dtype
        np.zeros((2, 96, 96, 3), np.uint8),  # a batch
    ],
)
def test_preprocess_rejects_wrong_input(frame):
    with pytest.raises(ValueError):
        preprocess(frame, CARRACING_KEEP_ROWS)


# ---------------------------------------------------------------- action mappings


@pytest.mark.parametrize(
    ("a", "expected"),
    [
        ([0.0, 0.0, 0.0], [0.0, 0.5, 0.0]),
        ([-0.5, -1.0, -0.7], [-0.5, 0.0, 0.0]),  # brake below 0 is no brake
        ([0.3, 1.0, 0.25], [0.3, 1.0, 0.25]),
        ([1.0, 0.5, 1.0], [1.0, 0.75, 1.0]),
        ([2.0, -3.0, 5.0], [1.0, 0.0, 1.0]),  # out of range is clipped first
        ([-7.0, 4.0, -2.0], [-1.0, 1.0, 0.0]),
    ],
)
def test_carracing_action_mapping(a, expected):
    out = carracing_action(np.array(a, np.float32))
    assert out.shape == (3,)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_carracing_action_accepts_lists_and_column_shapes():
    np.testing.assert_allclose(carracing_action([[0.2], [0.0], [0.4]]), [0.2, 0.5, 0.4], atol=1e-7)


@pytest.mark.parametrize(
    ("value", "buttons"),
    [
        (-1.0, [1, 0]),
        (-0.5, [1, 0]),
        (-DOOM_MOVE_THRESHOLD - 1e-6, [1, 0]),
        (-DOOM_MOVE_THRESHOLD + 1e-6, [0, 0]),
        (-DOOM_MOVE_THRESHOLD, [0, 0]),  # the thresholds themselves: no move, as in the original
        (0.0, [0, 0]),
        (DOOM_MOVE_THRESHOLD, [0, 0]),
        (DOOM_MOVE_THRESHOLD - 1e-6, [0, 0]),
        (DOOM_MOVE_THRESHOLD + 1e-6, [0, 1]),
        (0.5, [0, 1]),
        (1.0, [0, 1]),
    ],
)
def test_doom_buttons_thresholds(value, buttons):
    assert doom_buttons(value) == buttons
    assert doom_buttons(np.array([value])) == buttons  # a (1,) action vector, as the policies give


@pytest.mark.parametrize(("value", "buttons"), [(-0.34, [1, 0]), (-0.33, [0, 0]), (0.33, [0, 0]),
                                                (0.34, [0, 1])])
def test_doom_buttons_float32_actions(value, buttons):
    assert doom_buttons(np.array([value], np.float32)) == buttons


def test_doom_threshold_is_one_third():
    assert DOOM_MOVE_THRESHOLD == pytest.approx(1 / 3)


# ---------------------------------------------------------------- the real envs


@pytest.mark.parametrize(("name", "cls", "dim"), [("carracing", CarRacingEnv, 3),
                                                  ("doom", DoomTakeCoverEnv, 1)])
def test_env_spaces_reset_and_step(name, cls, dim):
    env = make_env(name, max_steps=10)
    try:
        assert isinstance(env, cls)
        assert env.action_space.shape == (dim,)
        assert env.action_space.low.min() == -1.0 and env.action_space.high.max() == 1.0
        assert env.observation_space.shape == FRAME_SHAPE
        assert env.observation_space.dtype == np.uint8
        obs, info = env.reset(seed=1)
        assert_frame(env, obs)
        assert isinstance(info, dict)
        for action in fixed_actions(3, dim):
            obs, reward, terminated, truncated, _ = env.step(action)
            assert_frame(env, obs)
            assert isinstance(reward, float)
            assert terminated is False and truncated is False
        raw = env.render()
        assert raw.ndim == 3 and raw.shape[2] == 3 and raw.shape[0] > FRAME_SHAPE[0]
    finally:
        env.close()


def test_make_env_uses_the_env_cap_by_default():
    env = make_env("doom")
    try:
        assert env.max_steps == DOOM_MAX_TICS
    finally:
        env.close()


def test_make_env_rejects_unknown_name():
    assert set(ENV_NAMES) == {"carracing", "doom"}
    with pytest.raises(ValueError, match="pong"):
        make_env("pong")


def test_env_rejects_zero_step_cap():
    with pytest.raises(ValueError):
        DoomTakeCoverEnv(max_steps=0)


@pytest.mark.parametrize(("name", "dim"), [("carracing", 3), ("doom", 1)])
def test_step_cap_truncates(name, dim):
    frames, _, ends = fresh_rollout(name, 3, fixed_actions(20, dim), max_steps=5)
    assert len(ends) == 5
    assert ends[:4] == [(False, False)] * 4
    assert ends[4] == (False, True)
    assert len(frames) == 6


def test_step_cap_restarts_on_reset():
    env = make_env("doom", max_steps=3)
    try:
        for seed in (1, 2):
            _, _, ends = rollout(env, seed, np.zeros((10, 1), np.float32))
            assert ends == [(False, False), (False, False), (False, True)]
    finally:
        env.close()


def test_carracing_is_deterministic_per_seed():
    actions = fixed_actions(CARRACING_ZOOM_STEPS, 3)
    frames_a, rewards_a, _ = fresh_rollout("carracing", 7, actions)
    frames_b, rewards_b, _ = fresh_rollout("carracing", 7, actions)
    frames_c, _, _ = fresh_rollout("carracing", 8, actions)
    assert len(frames_a) == CARRACING_ZOOM_STEPS + 1
    np.testing.assert_array_equal(frames_a, frames_b)
    assert rewards_a == rewards_b
    # Past the zoom-in, another seed's track looks different.
    assert not np.array_equal(frames_a[-1], frames_c[-1])


def test_doom_is_deterministic_per_seed():
    actions = fixed_actions(DOOM_MAX_TICS, 1)
    frames_a, rewards_a, ends_a = fresh_rollout("doom", 3, actions)
    frames_b, rewards_b, ends_b = fresh_rollout("doom", 3, actions)
    frames_c, _, _ = fresh_rollout("doom", 4, actions)
    np.testing.assert_array_equal(frames_a, frames_b)
    assert rewards_a == rewards_b
    assert ends_a == ends_b
    n = min(len(frames_a), len(frames_c))
    assert not np.array_equal(frames_a[:n], frames_c[:n])


def test_doom_standing_still_dies_with_one_reward_per_tic():
    frames, rewards, ends = fresh_rollout("doom", 0, np.zeros((DOOM_MAX_TICS, 1), np.float32))
    assert ends[-1] == (True, False), "standing still should get the player killed, not time out"
    assert len(ends) < DOOM_MAX_TICS
    assert all(end == (False, False) for end in ends[:-1])
    assert rewards == [1.0] * len(rewards)
    # After death the last frame stands in for the missing one.
    np.testing.assert_array_equal(frames[-1], frames[-2])


def test_doom_engines_started_together_leave_the_working_directory_alone(tmp_path):
    # Two ranks starting ViZDoom at once in one directory used to race on ./_vizdoom/ (one crashed).
    code = ("from wm.envs.games import make_env; e = make_env('doom'); e.reset(seed=1); e.step([0.0]); "
            "e.close()")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert list(tmp_path.iterdir()) == []
