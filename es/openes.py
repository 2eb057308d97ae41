"""OpenAI-ES (Salimans et al. 2017): isotropic Gaussian search, rank fitness, ClipUp or Adam on the mean.

estool's original behaviour: ``optimizer="adam", learning_rate=0.01, learning_rate_limit=0.001,
learning_rate_decay=0.9999`` (:data:`OpenES.ESTOOL`).
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


class OpenES(Strategy):
    """OpenAI's ES with a scalar sigma that decays to a floor.

    With antithetic sampling (the default) ``popsize`` must be even, and candidate ``i + popsize/2``
    mirrors candidate ``i``: the trainer's antithetic episode seeds pair the same candidates.

    The mean's optimiser and learning-rate schedule are PEPG's (:class:`es.pepg.PEPG`): ClipUp by
    default with a step of ``0.05 * sigma_init * sqrt(num_params)``, decaying by
    ``learning_rate_decay`` per generation to ``learning_rate_limit`` (None: a tenth of the start).
    Weight decay acts on the rank-shaped fitness, before it is normalised (as estool).
    """

    name = "openes"
    decay_shaped_fitness = True
    # estool's OpenES: Adam at a per-coordinate rate of 0.01, decaying very slowly to 0.001.
    ESTOOL = {"optimizer": "adam", "learning_rate": 0.01, "learning_rate_decay": 0.9999,
              "learning_rate_limit": 0.001}

    def __init__(
        self,
        num_params: int,
        popsize: int,
        seed: int,
        *,
        sigma_init: float = 0.1,
        sigma_decay: float = 0.999,
        sigma_limit: float = 0.01,
        optimizer: str = "clipup",
        learning_rate: float | None = None,
        learning_rate_decay: float = LEARNING_RATE_DECAY,
        learning_rate_limit: float | None = None,
        antithetic: bool = True,
        rank_fitness: bool = True,
        weight_decay: float = 0.01,
        x0: np.ndarray | None = None,
    ):
        options = {
            "sigma_init": check_float("sigma_init", sigma_init, 0.0),
            "sigma_decay": check_float("sigma_decay", sigma_decay, 0.0, 1.0),
            "sigma_limit": check_float("sigma_limit", sigma_limit, 0.0, low_open=False),
            **learning_rate_options(optimizer, learning_rate, learning_rate_decay, learning_rate_limit),
            "antithetic": check_bool("antithetic", antithetic),
            "rank_fitness": check_bool("rank_fitness", rank_fitness),
        }
        super().__init__(num_params, popsize, seed, weight_decay=weight_decay, x0=x0, options=options)
        if options["antithetic"] and self.popsize % 2:
            raise ValueError(f"openes with antithetic sampling needs an even popsize, got {self.popsize}")
        self.sigma_decay, self.sigma_limit = options["sigma_decay"], options["sigma_limit"]
        self.learning_rate_decay = options["learning_rate_decay"]
        self.learning_rate, self.learning_rate_limit = learning_rate_schedule(
            options, options["sigma_init"], self.num_params)
        self.antithetic, self.rank_fitness = options["antithetic"], options["rank_fitness"]
        self.mean = self.x0.copy()
        self.sigma = options["sigma_init"]
        self.optimizer = make_optimizer(options["optimizer"], self.num_params)
        self._eps: np.ndarray | None = None  # the asked standard-normal directions

    def _sample(self) -> np.ndarray:
        if self.antithetic:
            half = self.rng.standard_normal((self.popsize // 2, self.num_params))
            self._eps = np.concatenate([half, -half])
        else:
            self._eps = self.rng.standard_normal((self.popsize, self.num_params))
        return self.mean + self.sigma * self._eps

    def _update(self, solutions: np.ndarray, fitness: np.ndarray) -> None:
        reward = (centred_ranks(fitness) if self.rank_fitness else fitness) - self._penalty(solutions)
        spread = float(reward.std())
        # A flat generation carries no direction: a zero gradient (estool would divide by zero).
        if spread > 0:
            normalised = (reward - reward.mean()) / spread
            gradient = normalised @ self._eps / (self.popsize * self.sigma)
        else:
            gradient = np.zeros(self.num_params)
        self.mean = self.mean + self.optimizer.step(gradient, self.learning_rate)
        if self.sigma > self.sigma_limit:
            self.sigma *= self.sigma_decay
        if self.learning_rate > self.learning_rate_limit:
            self.learning_rate *= self.learning_rate_decay
        self._eps = None

    def _mean(self) -> np.ndarray:
        return self.mean

    def _sigma_rms(self) -> float:
        return float(self.sigma)

    def _algo_state(self) -> dict[str, Any]:
        return {
            "mean": self.mean.copy(),
            "sigma": self.sigma,
            "learning_rate": self.learning_rate,
            "optimizer": self.optimizer.state_dict(),
            "eps": None if self._eps is None else self._eps.copy(),
        }

    @classmethod
    def upgrade_state(cls, state: dict[str, Any]) -> dict[str, Any]:
        return upgrade_adam_state(state)

    def _load_algo_state(self, state: dict[str, Any]) -> None:
        self.mean = np.array(state["mean"], dtype=np.float64)
        self.sigma = float(state["sigma"])
        self.learning_rate = float(state["learning_rate"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._eps = None if state["eps"] is None else np.array(state["eps"], dtype=np.float64)
