"""CMA-ES through pycma (the ``cma`` package), silent, seeded and resumable bit for bit."""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import numpy as np

from es.base import Strategy, check_float


def _cma() -> Any:
    """Import pycma on first use: it is slow to import and warns when matplotlib is missing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import cma
    return cma


class GeneratorNormal:
    """pycma's ``randn(lam, n)`` drawing from a numpy Generator.

    pycma samples from ``np.random.randn`` (the global RNG) by default, whose state its pickle does
    not hold, so a resumed run would sample differently. Handing it this object instead makes it
    draw from the strategy's own Generator. A class rather than a lambda so that pickle can save it
    along with the pycma object.
    """

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def __call__(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape)


class CMAES(Strategy):
    """CMA-ES (pycma) maximising the fitness; ``popsize`` candidates per generation.

    pycma minimises, so it is told the negated (weight-decayed) fitness. Its console output and
    its ``outcmaes/`` log files are switched off, and its own seeding of the global NumPy RNG is
    disabled (``seed=nan``): all its random numbers come from :class:`GeneratorNormal`.
    """

    name = "cma"

    def __init__(
        self,
        num_params: int,
        popsize: int,
        seed: int,
        *,
        sigma_init: float = 0.1,
        weight_decay: float = 0.01,
        x0: np.ndarray | None = None,
    ):
        sigma_init = check_float("sigma_init", sigma_init, 0.0)
        super().__init__(num_params, popsize, seed, weight_decay=weight_decay, x0=x0,
                         options={"sigma_init": sigma_init})
        self.sigma_init = sigma_init
        cma_options = {
            "popsize": self.popsize,
            "randn": GeneratorNormal(self.rng),
            "seed": np.nan,  # "do nothing": never touch the global RNG
            "verbose": -9,
            "verb_disp": 0,
            "verb_log": 0,
            "verb_time": False,
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. pycma's notes on a 1-D problem
            self._es = _cma().CMAEvolutionStrategy(self.x0.copy(), sigma_init, cma_options)

    def _sample(self) -> np.ndarray:
        return np.array(self._es.ask(), dtype=np.float64)

    def _update(self, solutions: np.ndarray, fitness: np.ndarray) -> None:
        self._es.tell(list(solutions), list(-fitness))

    def _mean(self) -> np.ndarray:
        return self._es.mean

    def _sigma_rms(self) -> float:
        return float(np.sqrt(np.mean(np.square(self._es.stds))))

    def _algo_state(self) -> dict[str, Any]:
        # The pycma object pickles whole (covariance, paths, counters). Its GeneratorNormal pickles
        # a copy of the Generator; on load it is pointed back at this strategy's own Generator,
        # whose state the base class restores, so there is one stream of random numbers.
        return {"es": pickle.dumps(self._es, protocol=pickle.HIGHEST_PROTOCOL)}

    def _load_algo_state(self, state: dict[str, Any]) -> None:
        es = pickle.loads(state["es"])
        randn = es.opts["randn"]
        if not isinstance(randn, GeneratorNormal):
            raise ValueError("CMA-ES state does not sample from a GeneratorNormal; not made by this class")
        randn.rng = self.rng
        self._es = es
