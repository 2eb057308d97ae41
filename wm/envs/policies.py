"""Random policies for collecting data, all acting in the controller's space [-1, 1]^d."""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np


class Policy(Protocol):
    """A source of actions for one episode at a time."""

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode, drawing all randomness from ``rng``."""

    def act(self) -> np.ndarray:
        """The next action, float32 of shape (action_dim,) in [-1, 1]."""


class HoldPolicy:
    """The original Doom policy: a uniform action held for 1 to 10 steps, then a new one."""

    def __init__(self, action_dim: int, max_hold: int = 10):
        self.action_dim, self.max_hold = action_dim, max_hold
        self.reset(np.random.default_rng(0))

    def reset(self, rng: np.random.Generator) -> None:
        self._rng, self._left = rng, 0
        self._action = np.zeros(self.action_dim, np.float32)

    def act(self) -> np.ndarray:
        if self._left == 0:
            self._action = self._rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)
            self._left = int(self._rng.integers(1, self.max_hold + 1))
        self._left -= 1
        return self._action.copy()


class BrownianPolicy:
    """Smooth random actions: a clipped random walk, a += sqrt(dt) * N(0, 1) (ctallec's port)."""

    def __init__(self, action_dim: int, dt: float = 1.0 / 50.0):
        self.action_dim, self.scale = action_dim, math.sqrt(dt)
        self.reset(np.random.default_rng(0))

    def reset(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._action = rng.uniform(-1.0, 1.0, self.action_dim)

    def act(self) -> np.ndarray:
        action = self._action.astype(np.float32)
        step = self.scale * self._rng.standard_normal(self.action_dim)
        self._action = np.clip(self._action + step, -1.0, 1.0)
        return action


class UniformPolicy:
    """A new uniform action every step."""

    def __init__(self, action_dim: int):
        self.action_dim = action_dim
        self.reset(np.random.default_rng(0))

    def reset(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def act(self) -> np.ndarray:
        return self._rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)


POLICIES: dict[str, type[HoldPolicy | BrownianPolicy | UniformPolicy]] = {
    "hold": HoldPolicy,
    "brownian": BrownianPolicy,
    "uniform": UniformPolicy,
}
POLICY_NAMES = list(POLICIES)


def make_policy(name: str, action_dim: int) -> Policy:
    """A random policy by name, for actions of ``action_dim`` dimensions."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICY_NAMES)}")
    return POLICIES[name](action_dim)
