"""A simple genetic algorithm: elites breed children by uniform crossover plus Gaussian noise."""

from __future__ import annotations

from typing import Any

import numpy as np

from es.base import Strategy, check_bool, check_float


class SimpleGA(Strategy):
    """Truncation selection of ``elite_ratio * popsize`` elites (at least one).

    Each child is a uniform crossover of two elites drawn at random (each parameter from either
    parent with probability 1/2) plus N(0, sigma^2) noise. With ``forget_best=True`` (this project's
    default; estool's ``SimpleGA`` defaults to False) the elites are chosen among the newest
    generation only, so a lucky score does not keep its place forever; with ``forget_best=False``
    the previous elites, with their recorded fitness, compete with the new children, so the best
    candidate ever seen is always an elite. ``result().mean`` is the current best elite: the
    parameters to evaluate.

    Why True here (benchmarks/es_functions.py, population 64, 200 generations, 5 seeds): on
    noise-free shifted sphere and Rastrigin, False is 1.05-1.6x better (100-D sphere 1.54 vs 2.46,
    100-D Rastrigin 298 vs 438); but this project's fitness is a few noisy episode returns, and with
    noise comparable to the differences between candidates a remembered lucky score holds an elite
    place forever: with noise SD 10 on the 100-D sphere, the final elite is 1.25x better with True
    (26 vs 33). Where the noise is small against the differences (1088-D, far from the optimum),
    False still wins. Pass ``forget_best=False`` for deterministic fitness.
    """

    name = "ga"

    def __init__(
        self,
        num_params: int,
        popsize: int,
        seed: int,
        *,
        sigma_init: float = 0.1,
        sigma_decay: float = 0.999,
        sigma_limit: float = 0.01,
        elite_ratio: float = 0.1,
        forget_best: bool = True,
        weight_decay: float = 0.01,
        x0: np.ndarray | None = None,
    ):
        options = {
            "sigma_init": check_float("sigma_init", sigma_init, 0.0),
            "sigma_decay": check_float("sigma_decay", sigma_decay, 0.0, 1.0),
            "sigma_limit": check_float("sigma_limit", sigma_limit, 0.0, low_open=False),
            "elite_ratio": check_float("elite_ratio", elite_ratio, 0.0, 1.0),
            "forget_best": check_bool("forget_best", forget_best),
        }
        super().__init__(num_params, popsize, seed, weight_decay=weight_decay, x0=x0, options=options)
        self.sigma_decay, self.sigma_limit = options["sigma_decay"], options["sigma_limit"]
        self.forget_best = options["forget_best"]
        self.num_elites = max(1, int(self.popsize * options["elite_ratio"]))
        self.sigma = options["sigma_init"]
        # Before the first tell every elite is x0, so the first generation is x0 plus noise.
        self.elite_params = np.tile(self.x0, (self.num_elites, 1))
        self.elite_fitness = np.full(self.num_elites, -np.inf)
        self.evaluated = False  # whether the elites have been chosen from told candidates

    def _sample(self) -> np.ndarray:
        noise = self.rng.standard_normal((self.popsize, self.num_params)) * self.sigma
        parents = self.rng.integers(0, self.num_elites, size=(self.popsize, 2))
        from_second = self.rng.random((self.popsize, self.num_params)) < 0.5
        children = np.where(from_second, self.elite_params[parents[:, 1]], self.elite_params[parents[:, 0]])
        return children + noise

    def _update(self, solutions: np.ndarray, fitness: np.ndarray) -> None:
        if self.forget_best or not self.evaluated:
            pool_params, pool_fitness = solutions, fitness
        else:
            pool_params = np.concatenate([solutions, self.elite_params])
            pool_fitness = np.concatenate([fitness, self.elite_fitness])
        # Stable sort of the negated fitness: among equals, the earlier (newer) candidate wins.
        best = np.argsort(-pool_fitness, kind="stable")[: self.num_elites]
        self.elite_params = pool_params[best].copy()
        self.elite_fitness = pool_fitness[best].copy()
        self.evaluated = True
        if self.sigma > self.sigma_limit:
            self.sigma *= self.sigma_decay

    def _mean(self) -> np.ndarray:
        return self.elite_params[0]

    def _sigma_rms(self) -> float:
        return float(self.sigma)

    def _algo_state(self) -> dict[str, Any]:
        return {
            "sigma": self.sigma,
            "elite_params": self.elite_params.copy(),
            "elite_fitness": self.elite_fitness.copy(),
            "evaluated": self.evaluated,
        }

    def _load_algo_state(self, state: dict[str, Any]) -> None:
        self.sigma = float(state["sigma"])
        self.elite_params = np.array(state["elite_params"], dtype=np.float64)
        self.elite_fitness = np.array(state["elite_fitness"], dtype=np.float64)
        self.evaluated = bool(state["evaluated"])
