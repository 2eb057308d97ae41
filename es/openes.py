"""OpenAI-ES (Salimans et al. 2017): isotropic Gaussian search, rank fitness, Adam on the mean."""

from __future__ import annotations

from typing import Any

import numpy as np

from es.adam import Adam
from es.base import Strategy, check_bool, check_float
from es.fitness import centred_ranks


class OpenES(Strategy):
    """OpenAI's ES with a scalar sigma that decays to a floor.

    With antithetic sampling (the default) ``popsize`` must be even, and candidate ``i + popsize/2``
    mirrors candidate ``i``: the trainer's antithetic episode seeds pair the same candidates.
    """

    name = "openes"

    def __init__(
        self,
        num_params: int,
        popsize: int,
        seed: int,
        *,
        sigma_init: float = 0.1,
        sigma_decay: float = 0.999,
        sigma_limit: float = 0.01,
        learning_rate: float = 0.01,
        learning_rate_decay: float = 0.9999,
        learning_rate_limit: float = 0.001,
        antithetic: bool = True,
        rank_fitness: bool = True,
        weight_decay: float = 0.01,
        x0: np.ndarray | None = None,
    ):
        options = {
            "sigma_init": check_float("sigma_init", sigma_init, 0.0),
            "sigma_decay": check_float("sigma_decay", sigma_decay, 0.0, 1.0),
            "sigma_limit": check_float("sigma_limit", sigma_limit, 0.0, low_open=False),
            "learning_rate": check_float("learning_rate", learning_rate, 0.0),
            "learning_rate_decay": check_float("learning_rate_decay", learning_rate_decay, 0.0, 1.0),
            "learning_rate_limit": check_float("learning_rate_limit", learning_rate_limit, 0.0,
                                               low_open=False),
            "antithetic": check_bool("antithetic", antithetic),
            "rank_fitness": check_bool("rank_fitness", rank_fitness),
        }
        super().__init__(num_params, popsize, seed, weight_decay=weight_decay, x0=x0, options=options)
        if options["antithetic"] and self.popsize % 2:
            raise ValueError(f"openes with antithetic sampling needs an even popsize, got {self.popsize}")
        self.sigma_decay, self.sigma_limit = options["sigma_decay"], options["sigma_limit"]
        self.learning_rate_decay = options["learning_rate_decay"]
        self.learning_rate_limit = options["learning_rate_limit"]
        self.antithetic, self.rank_fitness = options["antithetic"], options["rank_fitness"]
        self.mean = self.x0.copy()
        self.sigma = options["sigma_init"]
        self.learning_rate = options["learning_rate"]
        self.adam = Adam(self.num_params)
        self._eps: np.ndarray | None = None  # the asked standard-normal directions

    def _sample(self) -> np.ndarray:
        if self.antithetic:
            half = self.rng.standard_normal((self.popsize // 2, self.num_params))
            self._eps = np.concatenate([half, -half])
        else:
            self._eps = self.rng.standard_normal((self.popsize, self.num_params))
        return self.mean + self.sigma * self._eps

    def _update(self, solutions: np.ndarray, fitness: np.ndarray) -> None:
        reward = centred_ranks(fitness) if self.rank_fitness else fitness
        spread = float(reward.std())
        # A flat generation carries no direction: a zero gradient (estool would divide by zero).
        if spread > 0:
            normalised = (reward - reward.mean()) / spread
            gradient = normalised @ self._eps / (self.popsize * self.sigma)
        else:
            gradient = np.zeros(self.num_params)
        self.mean = self.mean + self.adam.step(gradient, self.learning_rate)
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
            "adam": self.adam.state_dict(),
            "eps": None if self._eps is None else self._eps.copy(),
        }

    def _load_algo_state(self, state: dict[str, Any]) -> None:
        self.mean = np.array(state["mean"], dtype=np.float64)
        self.sigma = float(state["sigma"])
        self.learning_rate = float(state["learning_rate"])
        self.adam.load_state_dict(state["adam"])
        self._eps = None if state["eps"] is None else np.array(state["eps"], dtype=np.float64)
