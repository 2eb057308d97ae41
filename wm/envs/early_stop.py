"""Ending a training episode once the car has clearly left the track (CarRacing), to save time.

CarRacing scores -0.1 a step and +1000/N for each of the track's N tiles the car first touches. A car
that has gone many steps without a new tile (off on the grass, spinning, driving back over tiles it
has visited, never pressing the gas) will, unless it finds its way back, score -0.1 for every step
left. :class:`OffTrackStop` ends such an episode after ``patience`` steps in a row without a positive
reward and adds exactly that: -0.1 x the steps left to the cap. Its return is then the full episode's
return whenever the car would not have come back, and the steps not played are the time saved.
``benchmarks/early_stop.py`` measures both on full episodes. Off in the paper preset; a training
option only (evaluations for scores play full episodes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import gymnasium as gym
import numpy as np


class ProgressClock:
    """Counts the steps since the last positive reward and says when ``patience`` is reached."""

    def __init__(self, patience: int):
        if patience < 1:
            raise ValueError(f"patience must be at least 1 step, got {patience}")
        self.patience = patience
        self.idle = 0

    def reset(self) -> None:
        self.idle = 0

    def expired(self, reward: float) -> bool:
        """Count one step with ``reward``; True once ``patience`` steps in a row scored nothing."""
        self.idle = 0 if reward > 0 else self.idle + 1
        return self.idle >= self.patience


class OffTrackStop(gym.Wrapper):
    """Truncates an episode after ``patience`` steps in a row without a positive reward, adding
    ``idle_reward`` for each step left to the env's ``max_steps``; ``info["early_stop"]`` then holds
    the number of steps skipped."""

    def __init__(self, env: gym.Env, patience: int, idle_reward: float):
        super().__init__(env)
        self.clock = ProgressClock(patience)
        self.idle_reward = idle_reward
        self.max_steps = int(env.max_steps)
        self._steps = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        self.clock.reset()
        self._steps = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        if self.clock.expired(reward) and not (terminated or truncated):
            skipped = max(self.max_steps - self._steps, 0)
            reward += self.idle_reward * skipped
            truncated, info = True, {**info, "early_stop": skipped}
        return obs, reward, terminated, truncated, info


def stopped_return(rewards: Iterable[float], patience: int, idle_reward: float,
                   max_steps: int) -> tuple[float, int]:
    """(return, steps played) that :class:`OffTrackStop` gives an episode of these per-step rewards
    (a whole episode, played without it)."""
    played = np.asarray(list(rewards), dtype=np.float64)
    clock, total = ProgressClock(patience), 0.0
    for steps, reward in enumerate(played, start=1):
        total += float(reward)
        if clock.expired(reward) and steps < len(played):  # (the wrapper leaves an ending step alone)
            return total + idle_reward * max(max_steps - steps, 0), steps
    return total, len(played)


def wrap(env: gym.Env, patience: int, idle_reward: float | None) -> gym.Env:
    """``env`` with :class:`OffTrackStop` when ``patience`` > 0; the env must score ``idle_reward``
    per step of no progress (None: it has no such reward, and no stop is possible)."""
    if patience <= 0:
        return env
    if idle_reward is None:
        raise ValueError("this env has no per-step reward for no progress to end an episode on")
    return OffTrackStop(env, patience, idle_reward)
