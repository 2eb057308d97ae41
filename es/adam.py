"""Adam for gradient ascent on a strategy's mean (PEPG, OpenES), with its state for checkpoints."""

from __future__ import annotations

from typing import Any

import numpy as np


class Adam:
    """Adam (Kingma & Ba) that returns the step to ADD to the parameters for a gradient to ascend.

    ``beta1`` defaults to 0.99 as in estool's ES optimisers: ES gradient estimates are noisy, and a
    longer momentum averages more generations. The step size is passed on each call, so the caller's
    learning-rate schedule stays in the caller.
    """

    def __init__(self, num_params: int, beta1: float = 0.99, beta2: float = 0.999, epsilon: float = 1e-8):
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"Adam betas must lie in [0, 1), got beta1={beta1}, beta2={beta2}")
        if not epsilon > 0:
            raise ValueError(f"Adam epsilon must be > 0, got {epsilon}")
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.m = np.zeros(num_params)  # first moment (momentum)
        self.v = np.zeros(num_params)  # second moment
        self.t = 0  # steps taken, for the bias correction

    def step(self, gradient: np.ndarray, stepsize: float) -> np.ndarray:
        """Update the moments with ``gradient`` and return the ascent step."""
        gradient = np.asarray(gradient, dtype=np.float64)
        self.t += 1
        self.m = self.beta1 * self.m + (1.0 - self.beta1) * gradient
        self.v = self.beta2 * self.v + (1.0 - self.beta2) * gradient * gradient
        # Bias correction folded into the step size: the moments start at zero.
        a = stepsize * np.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        return a * self.m / (np.sqrt(self.v) + self.epsilon)

    def state_dict(self) -> dict[str, Any]:
        return {"m": self.m.copy(), "v": self.v.copy(), "t": self.t}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        m, v = np.asarray(state["m"], dtype=np.float64), np.asarray(state["v"], dtype=np.float64)
        if m.shape != self.m.shape or v.shape != self.v.shape:
            raise ValueError(f"Adam state for {m.size} parameters, this optimiser has {self.m.size}")
        self.m, self.v, self.t = m.copy(), v.copy(), int(state["t"])
