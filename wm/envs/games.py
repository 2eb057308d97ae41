"""The paper's two environments behind gymnasium's ``Env``, with 64x64x3 uint8 frames.

Both take a controller output in [-1, 1]^d as their action and map it to the game's own controls, so
C, M and the random policies all speak one action space. Both run headless: no X server, no window.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from PIL import Image

from wm.core.errors import WMError
from wm.envs.engine_watchdog import EngineWatchdog

# pygame (CarRacing's renderer) needs no screen with the dummy video driver.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

FRAME_SIZE = 64
FRAME_SHAPE = (FRAME_SIZE, FRAME_SIZE, 3)

CARRACING_KEEP_ROWS = 84  # rows 84..95 of CarRacing's 96x96 frame are the HUD bar
# Doom is rendered at 160x120 and V sees rows 0:100. take_cover.cfg draws no HUD (render_hud = false)
# and the scenario no weapon, so rows 100:120 hold only floor and, in the last tics before a hit,
# the bottom of the fireball (docs/environments.md: the Doom game's settings). The original's rows
# 0:400 of 480 cut gym-doom's status bar.
DOOM_RESOLUTION = (160, 120)
DOOM_KEEP_ROWS = 100
DOOM_MOVE_THRESHOLD = 1.0 / 3.0
# ViZDoom's skill levels, 1 ("I'm too young to die") to 5 ("Nightmare!"). Unset, the game is the
# scenario as ViZDoom ships it: take_cover.cfg says doom_skill = 4 (the tests read it there).
DOOM_SKILLS = (1, 2, 3, 4, 5)
DOOM_SCENARIO_SKILL = 4


def preprocess(frame: np.ndarray, keep_rows: int) -> np.ndarray:
    """Crop the top ``keep_rows`` rows and resize (antialiased bilinear) to 64x64x3 uint8."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 frame, got {frame.shape} {frame.dtype}")
    image = Image.fromarray(np.ascontiguousarray(frame[:keep_rows]))
    return np.array(image.resize((FRAME_SIZE, FRAME_SIZE), Image.BILINEAR), dtype=np.uint8)  # writable


def carracing_action(a: np.ndarray) -> np.ndarray:
    """Controller output in [-1, 1]^3 -> (steer, gas, brake), as the original maps it."""
    a = np.clip(np.asarray(a, dtype=np.float64).reshape(3), -1.0, 1.0)
    return np.array([a[0], (a[1] + 1.0) / 2.0, np.clip(a[2], 0.0, 1.0)], dtype=np.float32)


def doom_buttons(a: np.ndarray | float) -> list[int]:
    """Controller output in [-1, 1] -> [MOVE_LEFT, MOVE_RIGHT] by the +-1/3 thresholds."""
    value = float(np.asarray(a, dtype=np.float64).reshape(-1)[0])
    if value < -DOOM_MOVE_THRESHOLD:
        return [1, 0]
    if value > DOOM_MOVE_THRESHOLD:
        return [0, 1]
    return [0, 0]


class _FrameEnv(gym.Env):
    """Shared shape of both envs: 64x64x3 uint8 frames, actions in [-1, 1]^d, a step cap."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, action_dim: int, max_steps: int):
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        self.max_steps = max_steps
        self.observation_space = gym.spaces.Box(0, 255, FRAME_SHAPE, np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self.render_mode = "rgb_array"
        self._steps = 0
        self._game: Any = None
        self.raw_frame: np.ndarray | None = None  # the game's full-size frame, for videos

    def _start_episode(self, seed: int | None) -> int:
        """Reset the step count and gymnasium's RNG; returns the game seed (drawn if not given)."""
        super().reset(seed=seed)
        self._steps = 0
        return int(self.np_random.integers(2**31)) if seed is None else int(seed) % 2**31

    def render(self) -> np.ndarray | None:
        return self.raw_frame

    def close(self) -> None:
        if self._game is not None:
            self._game.close()
            self._game = None


class CarRacingEnv(_FrameEnv):
    """gymnasium CarRacing-v3: continuous actions, no domain randomisation, 1000-step cap."""

    def __init__(self, max_steps: int = 1000):
        super().__init__(action_dim=3, max_steps=max_steps)
        self._game = self._new_game()

    def _new_game(self) -> Any:
        """gymnasium's game (wm.envs.fast_carracing swaps in one that draws its frames more cheaply)."""
        from gymnasium.envs.box2d.car_racing import CarRacing

        # The class itself, not gym.make: the step cap is ours, and no checker wraps every step.
        return CarRacing(continuous=True, domain_randomize=False)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        frame, info = self._game.reset(seed=self._start_episode(seed))
        self.raw_frame = frame
        return preprocess(frame, CARRACING_KEEP_ROWS), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        frame, reward, terminated, truncated, info = self._game.step(carracing_action(action))
        self._steps += 1
        self.raw_frame = frame
        truncated = bool(truncated or (not terminated and self._steps >= self.max_steps))
        return preprocess(frame, CARRACING_KEEP_ROWS), float(reward), bool(terminated), truncated, info


@contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """Ignore SIGINT while ViZDoom starts its engine process, which inherits the ignoring.

    A Ctrl-C in a terminal goes to the whole process group. Without this, the engine may die before
    Python sees the interrupt, and the step fails with the engine's "exited unexpectedly" instead of
    a clean interrupt. With it, only Python is interrupted, and it closes the game.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _working_directory(path: str) -> Iterator[None]:
    """Run the block in ``path`` (so a child process started there inherits it), then go back."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _shared_memory(game: Any) -> list[str]:
    """The engine's files in /dev/shm (10 MiB, which only a clean close removes), named after its
    instance id (which ViZDoom tells from 1.3.1 on; before, none are found)."""
    instance = getattr(game, "get_instance_id", None)
    return glob.glob(f"/dev/shm/ViZDoom*{glob.escape(instance())}") if instance else []


class DoomTakeCoverEnv(_FrameEnv):
    """ViZDoom's own TakeCover scenario: dodge fireballs; +1 per tic survived; 2100-tic cap.

    ``skill`` (1 to 5) overrides the scenario's difficulty; None keeps take_cover.cfg's, so that a
    run made before the setting existed plays the same game.
    """

    def __init__(self, max_steps: int = 2100, skill: int | None = None):
        super().__init__(action_dim=1, max_steps=max_steps)
        import vizdoom as vzd

        # (an engine killed between calls is "unexpected exit"; one killed during a call, "crash")
        self._engine_died = (vzd.ViZDoomUnexpectedExitException, vzd.ViZDoomErrorException)
        # ViZDoom writes a settings file, by default into the working directory: give it a private dir.
        self._settings_dir = tempfile.mkdtemp(prefix="wm-vizdoom-")
        game = vzd.DoomGame()
        game.load_config(os.path.join(vzd.scenarios_path, "take_cover.cfg"))
        if skill is not None:
            game.set_doom_skill(skill)
        self.skill = game.get_doom_skill()  # the skill played (the cfg's when not set)
        game.set_window_visible(False)
        game.set_doom_config_path(os.path.join(self._settings_dir, "vizdoom.ini"))
        game.set_mode(vzd.Mode.PLAYER)
        game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
        game.set_screen_format(vzd.ScreenFormat.RGB24)
        game.set_episode_timeout(0)  # no game-side timeout: the cap is ours, reported as truncated
        # Started before the engine, which then never outlives this process, however it ends.
        self._watchdog = EngineWatchdog(self._settings_dir)
        # The engine also makes ./_vizdoom/ in its working directory (two ranks starting at once in
        # one directory race on it, and the loser crashes): start it in the private directory.
        with _ctrl_c_ignored(), _working_directory(self._settings_dir):
            game.init()
        self._game = game
        self._watchdog.remove_too(_shared_memory(game))
        self._last = np.zeros(FRAME_SHAPE, np.uint8)

    def _frame(self) -> np.ndarray:
        self.raw_frame = self._game.get_state().screen_buffer
        return preprocess(self.raw_frame, DOOM_KEEP_ROWS)

    @contextmanager
    def _engine(self) -> Iterator[None]:
        """Calls into the engine process: its death becomes one clear error, not a traceback."""
        try:
            yield
        except self._engine_died as err:
            raise WMError(f"the ViZDoom engine process exited unexpectedly ({err})") from err

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        game_seed = self._start_episode(seed)
        with self._engine():
            self._game.set_seed(game_seed)
            self._game.new_episode()
            self._last = self._frame()
        return self._last, {}

    def step(self, action: np.ndarray | float) -> tuple[np.ndarray, float, bool, bool, dict]:
        with self._engine():
            reward = self._game.make_action(doom_buttons(action))  # one tic, as the original
            self._steps += 1
            terminated = self._game.is_episode_finished()
            if not terminated:
                self._last = self._frame()
        # After death the game has no frame; the last one stands in (it is never recorded).
        truncated = not terminated and self._steps >= self.max_steps
        return self._last, float(reward), bool(terminated), bool(truncated), {}

    def close(self) -> None:
        self._watchdog.stop()  # (the game closes its engine itself)
        super().close()
        shutil.rmtree(self._settings_dir, ignore_errors=True)


def _fast_carracing(max_steps: int) -> _FrameEnv:
    """wm.envs.fast_carracing's env, imported only when asked for (it imports this module)."""
    from wm.envs.fast_carracing import FastCarRacingEnv

    return FastCarRacingEnv(max_steps)


@dataclass(frozen=True)
class EnvSpec:
    name: str
    action_dim: int
    max_steps: int
    make: Callable[..., _FrameEnv]  # (max_steps, skill=...): skill only where ``skills`` offers it
    action_names: tuple[str, ...]  # for pictures: what each action dimension does
    fps: float  # the game's steps per second, for videos that play at its speed
    # The reward of a step that scores nothing (CarRacing: -0.1): what wm.envs.early_stop adds for each
    # step it skips; None where an episode cannot be ended early that way (Doom).
    idle_reward: float | None = None
    skills: tuple[int, ...] = ()  # the difficulty levels the game offers (--doom-skill); () none
    # (max_steps) -> the same game, drawn more cheaply, for extraction and training (--fast-env);
    # None where there is none. Scores are always the official env's.
    make_fast: Callable[[int], _FrameEnv] | None = None


ENVS: dict[str, EnvSpec] = {
    "carracing": EnvSpec("carracing", 3, 1000, CarRacingEnv, ("steer", "gas", "brake"), 50.0, -0.1,
                           make_fast=_fast_carracing),
    # One value: left below -1/3, right above 1/3 (DOOM_MOVE_THRESHOLD); 35 tics per second.
    "doom": EnvSpec("doom", 1, 2100, DoomTakeCoverEnv, ("move",), 35.0, skills=DOOM_SKILLS),
}
ENV_NAMES = list(ENVS)


def check_skill(name: str, skill: int | None) -> None:
    """One clear line for a skill the env cannot play (None, the game's own, always can)."""
    if skill is None:
        return
    skills = ENVS[name].skills
    if not skills:
        raise WMError(f"--doom-skill sets Doom TakeCover's difficulty; this run is {name}, which has none")
    if skill not in skills:
        raise WMError(f"--doom-skill must be {skills[0]} to {skills[-1]} (ViZDoom's skill levels; the "
                      f"scenario's own is {DOOM_SCENARIO_SKILL}), got {skill}")


def check_fast(name: str, fast: bool) -> None:
    """One clear line for --fast-env on an env that has no fast version."""
    if fast and ENVS[name].make_fast is None:
        raise WMError(f"--fast-env plays CarRacing drawn by a cheaper renderer; this run is {name}, "
                      "which has none")


def make_env(name: str, max_steps: int | None = None, skill: int | None = None,
             fast: bool = False) -> _FrameEnv:
    """A fresh env by name; ``max_steps`` defaults to the env's own cap, ``skill`` (Doom) to the
    scenario's own difficulty; ``fast`` (CarRacing) draws the same game more cheaply, for training."""
    if name not in ENVS:
        raise ValueError(f"unknown env {name!r}; choose from {', '.join(ENV_NAMES)}")
    check_skill(name, skill)
    check_fast(name, fast)
    spec = ENVS[name]
    steps = spec.max_steps if max_steps is None else max_steps
    if fast:
        assert spec.make_fast is not None
        return spec.make_fast(steps)
    return spec.make(steps) if skill is None else spec.make(steps, skill=skill)
