"""SNES: separable natural evolution strategies (Schaul, Glasmachers & Schmidhuber 2011; Wierstra et
al. 2014, "Natural Evolution Strategies", JMLR 15, algorithm 6).

A Gaussian with a diagonal covariance: mean ``mu`` and one ``sigma`` per parameter. Each generation
draws ``s_k ~ N(0, I)``, evaluates ``z_k = mu + sigma * s_k``, gives the candidates the standard NES
utilities by rank (``u_k`` from ``max(0, ln(popsize/2 + 1) - ln k)``, normalised to sum to one,
minus ``1/popsize``: the best get the most, the worse half share a small negative weight) and follows
the natural gradient::

    mu    += eta_mu * sigma * sum_k u_k s_k
    sigma *= exp(eta_sigma / 2 * sum_k u_k (s_k^2 - 1))

with the standard rates ``eta_mu = 1`` and ``eta_sigma = (3 + ln n) / (5 sqrt n)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from es.base import Strategy, check_float
from es.fitness import centred_ranks


def nes_utilities(fitness: np.ndarray) -> np.ndarray:
    """The NES utility of each candidate (higher fitness, higher utility); equal fitnesses share the
    mean of their utilities, so a tie carries no spurious preference. They sum to zero."""
    fitness = np.asarray(fitness, dtype=np.float64)
    n = fitness.size
    raw = np.maximum(0.0, math.log(n / 2 + 1) - np.log(np.arange(1, n + 1)))
    by_rank = raw / raw.sum() - 1.0 / n  # best first
    utilities = np.empty(n)
    utilities[np.argsort(-fitness, kind="stable")] = by_rank
    _, inverse, counts = np.unique(fitness, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    return (np.bincount(inverse, weights=utilities) / counts)[inverse]


class SNES(Strategy):
    """Separable NES with the standard utilities and learning rates.

    ``learning_rate`` is ``eta_mu`` (1 by default); ``sigma_learning_rate`` is ``eta_sigma`` (None:
    ``(3 + ln n) / (5 sqrt n)``, 0.069 at n = 1088). Weight decay acts on the shaped fitness, as for
    PEPG and OpenES: each candidate's centred rank (in [-0.5, 0.5]) loses ``weight_decay *
    mean(params ** 2)`` before the utilities are given by rank, so the penalty can reorder candidates
    whose fitness is close (or equal) but never outweighs a clear difference.
    """

    name = "snes"
    decay_shaped_fitness = True

    def __init__(
        self,
        num_params: int,
        popsize: int,
        seed: int,
        *,
        sigma_init: float = 0.1,
        learning_rate: float = 1.0,
        sigma_learning_rate: float | None = None,
        weight_decay: float = 0.01,
        x0: np.ndarray | None = None,
    ):
        options = {
            "sigma_init": check_float("sigma_init", sigma_init, 0.0),
            "learning_rate": check_float("learning_rate", learning_rate, 0.0),
            "sigma_learning_rate": None if sigma_learning_rate is None else check_float(
                "sigma_learning_rate", sigma_learning_rate, 0.0, low_open=False),
        }
        super().__init__(num_params, popsize, seed, weight_decay=weight_decay, x0=x0, options=options)
        self.learning_rate = options["learning_rate"]
        n = self.num_params
        self.sigma_learning_rate = (options["sigma_learning_rate"] if sigma_learning_rate is not None
                                    else (3.0 + math.log(n)) / (5.0 * math.sqrt(n)))
        self.mean = self.x0.copy()
        self.sigma = np.full(n, options["sigma_init"])
        self._s: np.ndarray | None = None  # the asked standard-normal directions

    def _sample(self) -> np.ndarray:
        self._s = self.rng.standard_normal((self.popsize, self.num_params))
        return self.mean + self.sigma * self._s

    def _update(self, solutions: np.ndarray, fitness: np.ndarray) -> None:
        s = self._s
        # Weight decay in the units of PEPG's and OpenES's: centred ranks in [-0.5, 0.5].
        utilities = nes_utilities(centred_ranks(fitness) - self._penalty(solutions))
        gradient_mean = utilities @ s
        gradient_sigma = utilities @ (s * s - 1.0)
        self.mean = self.mean + self.learning_rate * self.sigma * gradient_mean
        self.sigma = self.sigma * np.exp(0.5 * self.sigma_learning_rate * gradient_sigma)
        self._s = None

    def _mean(self) -> np.ndarray:
        return self.mean

    def _sigma_rms(self) -> float:
        return float(np.sqrt(np.mean(self.sigma * self.sigma)))

    def _algo_state(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "sigma": self.sigma.copy(),
                "s": None if self._s is None else self._s.copy()}

    def _load_algo_state(self, state: dict[str, Any]) -> None:
        self.mean = np.array(state["mean"], dtype=np.float64)
        self.sigma = np.array(state["sigma"], dtype=np.float64)
        self._s = None if state["s"] is None else np.array(state["s"], dtype=np.float64)
