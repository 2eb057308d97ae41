"""CMA-ES through pycma (the ``cma`` package), silent, seeded and resumable bit for bit."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from es import restricted_pickle
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
    draw from the strategy's own Generator, whose state the strategy stores itself.
    """

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def __call__(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape)


def pycma_state(es: Any) -> dict[str, Any]:
    """A pycma object as plain values: a pickle stream of pycma's own classes, its arrays stored raw
    beside it, and its GeneratorNormal left out (on load it is rebuilt around the strategy's own
    Generator, whose state the base class restores: one stream of random numbers)."""

    def external(obj: Any) -> str | None:
        return "randn" if isinstance(obj, GeneratorNormal) else None

    stream, arrays = restricted_pickle.dumps(es, external)
    # Copies, since pycma updates its arrays in place and a state dict is a snapshot; in the memory
    # order pickle would keep (Fortran for a Fortran-ordered array, such as the eigenvectors from
    # LAPACK), which the file keeps too: BLAS rounds differently for another layout.
    return {"pycma": _cma().__version__, "stream": stream, "arrays": [_snapshot(a) for a in arrays]}


def _snapshot(array: np.ndarray) -> np.ndarray:
    fortran = array.flags.f_contiguous and not array.flags.c_contiguous
    return np.array(array, order="F" if fortran else "C", copy=True)


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
        return pycma_state(self._es)

    def _load_algo_state(self, state: dict[str, Any]) -> None:
        def external(tag: Any) -> GeneratorNormal:
            if tag != "randn":
                raise restricted_pickle.RefusedPickle(f"refused an unknown reference {tag!r}")
            return GeneratorNormal(self.rng)

        try:
            es = restricted_pickle.loads(state["stream"], list(state["arrays"]), external=external)
        except (restricted_pickle.pickle.UnpicklingError, AttributeError, TypeError, EOFError) as err:
            versions = (f" (made with pycma {state.get('pycma')}, this is {_cma().__version__})"
                        if state.get("pycma") != _cma().__version__ else "")
            raise ValueError(f"CMA-ES state does not load{versions}: {err}") from None
        sampler = es.opts["randn"] if isinstance(es, _cma().CMAEvolutionStrategy) else None
        if not isinstance(sampler, GeneratorNormal):
            raise ValueError("CMA-ES state does not hold a pycma CMAEvolutionStrategy sampling from "
                             "this strategy's Generator; not made by this class")
        self._es = es
