"""Gradient-ascent optimisers for a strategy's mean (PEPG, OpenES): ClipUp, Adam, SGD with momentum.

Each returns the step to ADD to the parameters for a gradient to ascend, takes the step size on each
call (the caller's learning-rate schedule stays in the caller) and has its state for checkpoints.

- ``clipup`` (Toklu et al. 2020, "ClipUp: a simple and powerful optimizer for distribution-based
  policy evolution"): the gradient is normalised to unit length, so a step's size is the learning
  rate whatever the fitness scale; momentum 0.9 accumulates the steps into a velocity whose length is
  clipped at ``max_speed``. The paper recommends a max speed of twice the step size (evotorch's
  default too), which this class keeps as the learning rate decays. Since the step is a length in
  parameter space, its sensible size grows with sigma and with the square root of the number of
  parameters (the distance of a sample from the mean): see :func:`default_learning_rate`.
- ``adam``: estool's Adam (beta1 0.99), a per-coordinate step of about the learning rate.
- ``sgd``: estool's SGD, momentum 0.9 as an exponential average of the gradient. Its rate is in the
  units of each strategy's gradient and is not scaled with the problem: tune it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from es.adam import Adam
from es.base import check_float

OPTIMIZERS = ("clipup", "adam", "sgd")

# ClipUp's step as a fraction of sigma * sqrt(num_params), the distance of a sample from the mean.
# Measured on shifted sphere and Rastrigin at 100 and 1088 parameters (benchmarks/es_functions.py).
CLIPUP_STEP = 0.05
# Adam's and SGD's per-coordinate rate as a fraction of sigma: estool's 0.01 at its sigma of 0.1.
ADAM_STEP = 0.1


def check_optimizer(value: Any) -> str:
    if value not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {value!r}")
    return str(value)


def default_learning_rate(optimizer: str, sigma_init: float, num_params: int,
                          sgd_rate: float | None = None) -> float:
    """The starting learning rate when none is given: ClipUp's scales with sigma * sqrt(n), Adam's
    (a per-coordinate step) with sigma; SGD's depends on the units of the strategy's gradient, so the
    strategy says it (``sgd_rate``; by default Adam's)."""
    if optimizer == "clipup":
        return CLIPUP_STEP * sigma_init * math.sqrt(num_params)
    if optimizer == "sgd" and sgd_rate is not None:
        return sgd_rate
    return ADAM_STEP * sigma_init


class ClipUp:
    """ClipUp: ``v = momentum * v + stepsize * g / |g|``, ``|v|`` clipped at ``max_speed_ratio *
    stepsize``; the step is ``v``. A zero gradient adds nothing (momentum still carries ``v``)."""

    def __init__(self, num_params: int, momentum: float = 0.9, max_speed_ratio: float = 2.0):
        if not (0.0 <= momentum < 1.0) or not max_speed_ratio > 0:
            raise ValueError(f"ClipUp needs momentum in [0, 1) and max_speed_ratio > 0, got "
                             f"{momentum}, {max_speed_ratio}")
        self.momentum, self.max_speed_ratio = float(momentum), float(max_speed_ratio)
        self.velocity = np.zeros(num_params)

    def step(self, gradient: np.ndarray, stepsize: float) -> np.ndarray:
        gradient = np.asarray(gradient, dtype=np.float64)
        norm = float(np.linalg.norm(gradient))
        direction = gradient / norm if norm > 0 else np.zeros_like(gradient)
        velocity = self.momentum * self.velocity + stepsize * direction
        speed, max_speed = float(np.linalg.norm(velocity)), self.max_speed_ratio * stepsize
        if speed > max_speed:
            velocity = velocity * (max_speed / speed)
        self.velocity = velocity
        return velocity.copy()

    def state_dict(self) -> dict[str, Any]:
        return {"velocity": self.velocity.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        velocity = np.asarray(state["velocity"], dtype=np.float64)
        if velocity.shape != self.velocity.shape:
            raise ValueError(f"ClipUp state for {velocity.size} parameters, this one has "
                             f"{self.velocity.size}")
        self.velocity = velocity.copy()


class SGD:
    """estool's SGD: ``v = momentum * v + (1 - momentum) * g``; the step is ``stepsize * v``."""

    def __init__(self, num_params: int, momentum: float = 0.9):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"SGD momentum must lie in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.velocity = np.zeros(num_params)

    def step(self, gradient: np.ndarray, stepsize: float) -> np.ndarray:
        gradient = np.asarray(gradient, dtype=np.float64)
        self.velocity = self.momentum * self.velocity + (1.0 - self.momentum) * gradient
        return stepsize * self.velocity

    def state_dict(self) -> dict[str, Any]:
        return {"velocity": self.velocity.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        velocity = np.asarray(state["velocity"], dtype=np.float64)
        if velocity.shape != self.velocity.shape:
            raise ValueError(f"SGD state for {velocity.size} parameters, this one has {self.velocity.size}")
        self.velocity = velocity.copy()


def make_optimizer(name: str, num_params: int) -> ClipUp | Adam | SGD:
    return {"clipup": ClipUp, "adam": Adam, "sgd": SGD}[check_optimizer(name)](num_params)


# The learning-rate schedule of PEPG and OpenES when not given: multiplied by LEARNING_RATE_DECAY
# each generation down to LEARNING_RATE_FLOOR times the starting rate.
LEARNING_RATE_DECAY = 0.995
LEARNING_RATE_FLOOR = 0.1


def learning_rate_options(optimizer: Any, learning_rate: Any, learning_rate_decay: Any,
                          learning_rate_limit: Any) -> dict[str, Any]:
    """The checked optimiser options (None for a rate or limit means: the default, see
    :func:`learning_rate_schedule`)."""
    return {
        "optimizer": check_optimizer(optimizer),
        "learning_rate": None if learning_rate is None else check_float("learning_rate", learning_rate, 0.0),
        "learning_rate_decay": check_float("learning_rate_decay", learning_rate_decay, 0.0, 1.0),
        "learning_rate_limit": None if learning_rate_limit is None else check_float(
            "learning_rate_limit", learning_rate_limit, 0.0, low_open=False),
    }


def learning_rate_schedule(options: dict[str, Any], sigma_init: float, num_params: int,
                           sgd_rate: float | None = None) -> tuple[float, float]:
    """(starting rate, floor): the given ones, or :func:`default_learning_rate` and
    LEARNING_RATE_FLOOR times it."""
    start = options["learning_rate"]
    if start is None:
        start = default_learning_rate(options["optimizer"], sigma_init, num_params, sgd_rate)
    floor = options["learning_rate_limit"]
    return start, (LEARNING_RATE_FLOOR * start if floor is None else floor)


def upgrade_adam_state(state: dict[str, Any]) -> dict[str, Any]:
    """A PEPG/OpenES state dict from before the optimiser option: it ran Adam with the rates it
    holds. (Its weight decay acted on the raw fitness; continued, it acts on the shaped one.)"""
    if "optimizer" in state.get("options", {}):
        return state
    algorithm = dict(state["algorithm"])
    algorithm["optimizer"] = algorithm.pop("adam")
    return {**state, "options": {**state["options"], "optimizer": "adam"}, "algorithm": algorithm}
