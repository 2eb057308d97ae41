"""PEPG: parameter-exploring policy gradients with per-parameter sigma (Sehnke et al. 2010).

In estool's spirit: symmetric (antithetic) sampling, an average baseline, rank fitness, an adaptive
per-parameter sigma with a bounded change per generation; the mean follows ClipUp by default (as
evotorch's PGPE), or estool's Adam.

estool's original behaviour: ``optimizer="adam", learning_rate=0.01, learning_rate_limit=0.01,
learning_rate_decay=0.9999`` (:data:`PEPG.ESTOOL`; that rate never decays, its floor being its start).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from es.base import Strategy, check_bool, check_float
from es.fitness import centred_ranks
from es.optimizers import (
    LEARNING_RATE_DECAY,
    learning_rate_options,
    learning_rate_schedule,
    make_optimizer,
    upgrade_adam_state,
)


class PEPG(Strategy):
    """PEPG with symmetric sampling. ``popsize`` counts every candidate and must be even.

    Candidate ``i`` is ``mean + eps_i`` and candidate ``i + popsize/2`` is ``mean - eps_i``, the same
    layout as the trainer's antithetic episode seeds (candidates i and i + pop/2 share seeds), so a
    mirrored pair is compared on the same episodes. Unlike estool, the mean itself is not one of the
    candidates: the trainer evaluates it on its own every few generations, and a spare slot would
    make popsize odd and break that pairing. The baseline is therefore the average fitness.

    The mean's optimiser (``optimizer``): ``"clipup"`` (default), ``"adam"`` or ``"sgd"``; see
    :mod:`es.optimizers`. ``learning_rate=None`` picks one that scales with the problem: ClipUp's step
    is ``0.05 * sigma_init * sqrt(num_params)`` (a length in parameter space), Adam's
    ``0.1 * sigma_init``, SGD's 10 (untuned beyond the sphere). The rate is multiplied by
    ``learning_rate_decay`` each generation while above ``learning_rate_limit`` (None: a tenth of
    the start).

    Weight decay acts on the rank-shaped fitness (as estool): each candidate's centred rank, in
    [-0.5, 0.5], loses ``weight_decay * mean(params ** 2)``. With ``rank_fitness=False`` it is
    subtracted from the raw fitness, as estool does too.
    """

    name = "pepg"
    decay_shaped_fitness = True
    # SGD's default rate: PEPG's gradient carries sigma (a step of ~rate * sigma per coordinate).
    SGD_RATE = 10.0
    # estool's PEPG: Adam at a fixed per-coordinate rate of 0.01.
    ESTOOL = {"optimizer": "adam", "learning_rate": 0.01, "learning_rate_decay": 0.9999,
              "learning_rate_limit": 0.01}

    def __init__(
        self,
        num_params: int,
        popsize: int,
        seed: int,
        *,
        sigma_init: float = 0.10,
        sigma_alpha: float = 0.20,
        sigma_decay: float = 0.999,
        sigma_limit: float = 0.01,
        sigma_max_change: float = 0.2,
        optimizer: str = "clipup",
        learning_rate: float | None = None,
        learning_rate_decay: float = LEARNING_RATE_DECAY,
        learning_rate_limit: float | None = None,
        rank_fitness: bool = True,
        weight_decay: float = 0.01,
        x0: np.ndarray | None = None,
    ):
        options = {
            "sigma_init": check_float("sigma_init", sigma_init, 0.0),
            "sigma_alpha": check_float("sigma_alpha", sigma_alpha, 0.0, low_open=False),
            "sigma_decay": check_float("sigma_decay", sigma_decay, 0.0, 1.0),
            "sigma_limit": check_float("sigma_limit", sigma_limit, 0.0, low_open=False),
            # Below 1, so a step can never make a sigma zero or negative.
            "sigma_max_change": check_float("sigma_max_change", sigma_max_change, 0.0, 0.999),
            **learning_rate_options(optimizer, learning_rate, learning_rate_decay, learning_rate_limit),
            "rank_fitness": check_bool("rank_fitness", rank_fitness),
        }
        super().__init__(num_params, popsize, seed, weight_decay=weight_decay, x0=x0, options=options)
        if self.popsize % 2:
            raise ValueError(f"pepg samples in mirrored pairs: popsize must be even, got {self.popsize}")
        self.sigma_alpha = options["sigma_alpha"]
        self.sigma_decay, self.sigma_limit = options["sigma_decay"], options["sigma_limit"]
        self.sigma_max_change = options["sigma_max_change"]
        self.learning_rate_decay = options["learning_rate_decay"]
        self.learning_rate, self.learning_rate_limit = learning_rate_schedule(
            options, options["sigma_init"], self.num_params, sgd_rate=self.SGD_RATE)
        self.rank_fitness = options["rank_fitness"]
        self.mean = self.x0.copy()
        self.sigma = np.full(self.num_params, options["sigma_init"])
        self.optimizer = make_optimizer(options["optimizer"], self.num_params)
        self._eps: np.ndarray | None = None  # the asked perturbations (already scaled by sigma)

    def _sample(self) -> np.ndarray:
        half = self.popsize // 2
        self._eps = self.rng.standard_normal((half, self.num_params)) * self.sigma
        return np.concatenate([self.mean + self._eps, self.mean - self._eps])

    def _update(self, solutions: np.ndarray, fitness: np.ndarray) -> None:
        eps, half = self._eps, self.popsize // 2
        reward = (centred_ranks(fitness) if self.rank_fitness else fitness) - self._penalty(solutions)
        plus, minus = reward[:half], reward[half:]
        baseline = reward.mean()

        # Mean: each mirrored pair's difference estimates the slope along its perturbation; the
        # baseline cancels within a pair. The optimiser sets the scale.
        gradient = 0.5 * (plus - minus) @ eps / half
        self.mean = self.mean + self.optimizer.step(gradient, self.learning_rate)

        # Sigma: widen along perturbations whose pair did better than average, narrow otherwise.
        scale = 1.0 if self.rank_fitness else float(reward.std())
        if self.sigma_alpha > 0 and scale > 0:
            score = (eps * eps - self.sigma * self.sigma) / self.sigma  # d log-density / d sigma
            advantage = 0.5 * (plus + minus) - baseline
            delta = advantage @ score / (2 * half * scale)
            limit = self.sigma_max_change * self.sigma
            self.sigma = self.sigma + np.clip(self.sigma_alpha * delta, -limit, limit)

        self.sigma = np.where(self.sigma > self.sigma_limit, self.sigma * self.sigma_decay, self.sigma)
        if self.learning_rate > self.learning_rate_limit:
            self.learning_rate *= self.learning_rate_decay
        self._eps = None

    def _mean(self) -> np.ndarray:
        return self.mean

    def _sigma_rms(self) -> float:
        return float(np.sqrt(np.mean(self.sigma * self.sigma)))

    def _algo_state(self) -> dict[str, Any]:
        return {
            "mean": self.mean.copy(),
            "sigma": self.sigma.copy(),
            "learning_rate": self.learning_rate,
            "optimizer": self.optimizer.state_dict(),
            "eps": None if self._eps is None else self._eps.copy(),
        }

    @classmethod
    def upgrade_state(cls, state: dict[str, Any]) -> dict[str, Any]:
        return upgrade_adam_state(state)

    def _load_algo_state(self, state: dict[str, Any]) -> None:
        self.mean = np.array(state["mean"], dtype=np.float64)
        self.sigma = np.array(state["sigma"], dtype=np.float64)
        self.learning_rate = float(state["learning_rate"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._eps = None if state["eps"] is None else np.array(state["eps"], dtype=np.float64)
