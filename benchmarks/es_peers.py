"""The project's ES strategies against the ES libraries people would otherwise pick, at equal budgets.

    python -m venv .venv-peers && .venv-peers/bin/pip install torch==2.13.0 -e '.[peers]'
    .venv-peers/bin/python benchmarks/es_peers.py [--dims 100 1088] [--functions sphere rastrigin]
        [--generations 200] [--popsize 64] [--seeds 5] [--only ours:pepg evotorch:pgpe ...]

The peer libraries (pycma, evotorch, nevergrad) are the ``peers`` extra, installed for this benchmark
only, never for the project: a separate environment as above keeps the project's own lean. A peer
that is not installed is left out with one line saying so.

Every contender minimises the same shifted function (``f(x) = g(x - s)``, ``s`` ~ U(-1, 1) per seed
and dimension, as ``benchmarks/es_functions.py``), starts at x0 = 0 with step size 0.1, and gets the
same budget: ``generations x popsize`` evaluations in generations of ``popsize``. The value is the
best ``f`` of any candidate evaluated (lower is better; the optimum is 0), median [min - max] over
seeds. The time is that of ask + tell per generation in milliseconds, mean and max over all
generations and seeds, the function's own time excluded (numpy or torch, one thread).

The contenders and their settings (the libraries' defaults where they have one):
- ``ours:*``: the project's strategies through ``es.strategies.make_strategy`` with their defaults.
- ``pycma:cma``: ``cma.CMAEvolutionStrategy``, the population size set, nothing else.
- ``evotorch:pgpe``: PGPE with ClipUp, centred ranks, symmetric sampling; its centre learning rate is
  the one our PEPG picks (``0.05 * sigma * sqrt(n)``), ``max_speed`` twice that (evotorch's advice),
  stdev learning rate 0.1. ``evotorch:snes`` and ``evotorch:cmaes``: their defaults.
- ``nevergrad:DiagonalCMA`` (separable CMA, the family that fits 1,088 dimensions) with
  ``num_workers = popsize`` so it asks a whole generation before each tell.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from es_functions import FUNCTIONS, shift_of  # noqa: E402

from es.strategies import make_strategy  # noqa: E402

SIGMA = 0.1
Function = Callable[[np.ndarray], np.ndarray]


class Contender:
    """One generation at a time: ``ask()`` a (popsize, dim) array, ``tell(values)`` to minimise."""

    def ask(self) -> np.ndarray:
        raise NotImplementedError

    def tell(self, values: np.ndarray) -> None:
        raise NotImplementedError


class Ours(Contender):
    def __init__(self, name: str, dim: int, popsize: int, seed: int):
        self.strategy = make_strategy(name, dim, popsize, seed, sigma_init=SIGMA)

    def ask(self) -> np.ndarray:
        return self.strategy.ask()

    def tell(self, values: np.ndarray) -> None:
        self.strategy.tell(-values)  # (the project's strategies maximise)


class PyCMA(Contender):
    def __init__(self, name: str, dim: int, popsize: int, seed: int):
        import cma

        self.es = cma.CMAEvolutionStrategy(np.zeros(dim), SIGMA,
                                           {"popsize": popsize, "seed": seed + 1, "verbose": -9})

    def ask(self) -> np.ndarray:
        self.asked = self.es.ask()
        return np.asarray(self.asked)

    def tell(self, values: np.ndarray) -> None:
        self.es.tell(self.asked, values.tolist())


class EvoTorch(Contender):
    """evotorch's searchers run their own loop (``step()`` evaluates the population): the function is
    handed the population as asked, returns the values given by :meth:`tell`, and is timed apart."""

    def __init__(self, name: str, dim: int, popsize: int, seed: int):
        import logging
        import warnings

        import torch
        from evotorch import Problem
        from evotorch.algorithms import CMAES, PGPE, SNES

        logging.getLogger("evotorch").setLevel(logging.WARNING)  # (one INFO line per problem made)
        warnings.filterwarnings("ignore", category=UserWarning, module="evotorch")
        self.torch = torch
        self.pending: np.ndarray | None = None
        self.values: np.ndarray | None = None
        problem = Problem("min", self._evaluate, solution_length=dim, initial_bounds=(-SIGMA, SIGMA),
                          dtype=torch.float64, vectorized=True, seed=seed)
        center = torch.zeros(dim, dtype=torch.float64)
        if name == "pgpe":
            rate = 0.05 * SIGMA * dim ** 0.5
            self.searcher = PGPE(problem, popsize=popsize, center_init=center, center_learning_rate=rate,
                                 stdev_learning_rate=0.1, stdev_init=SIGMA, optimizer="clipup",
                                 optimizer_config={"max_speed": 2 * rate}, ranking_method="centered")
        elif name == "snes":
            self.searcher = SNES(problem, popsize=popsize, center_init=center, stdev_init=SIGMA)
        elif name == "cmaes":
            self.searcher = CMAES(problem, popsize=popsize, center_init=center, stdev_init=SIGMA)
        else:
            raise SystemExit(f"unknown evotorch contender {name!r}")
        self.function: Function | None = None
        self.function_s = 0.0
        self.best = np.inf

    def _evaluate(self, x):
        started = time.perf_counter()
        values = self.function(x.numpy())  # type: ignore[misc]
        self.function_s += time.perf_counter() - started
        self.best = min(self.best, float(values.min()))
        return self.torch.as_tensor(values, dtype=x.dtype)


class Nevergrad(Contender):
    def __init__(self, name: str, dim: int, popsize: int, seed: int, budget: int):
        import nevergrad as ng

        parametrization = ng.p.Array(init=np.zeros(dim)).set_mutation(sigma=SIGMA)
        parametrization.random_state = np.random.RandomState(seed)
        self.opt = ng.optimizers.registry[name](parametrization=parametrization, budget=budget,
                                                num_workers=popsize)
        self.popsize = popsize

    def ask(self) -> np.ndarray:
        self.asked = [self.opt.ask() for _ in range(self.popsize)]
        return np.stack([c.value for c in self.asked])

    def tell(self, values: np.ndarray) -> None:
        for candidate, value in zip(self.asked, values, strict=True):
            self.opt.tell(candidate, float(value))


def run_one(label: str, function: Function, dim: int, seed: int, generations: int,
            popsize: int) -> tuple[float, list[float]]:
    """(best value found, ask+tell milliseconds of each generation)."""
    library, _, name = label.partition(":")
    shift = shift_of(dim, seed, 1.0)

    def shifted(x: np.ndarray) -> np.ndarray:
        return function(x - shift)

    times = []
    if library == "evotorch":
        contender = EvoTorch(name, dim, popsize, seed)
        contender.function = shifted
        for _ in range(generations):
            before, started = contender.function_s, time.perf_counter()
            contender.searcher.step()
            times.append(1000 * (time.perf_counter() - started - (contender.function_s - before)))
        return contender.best, times
    if library == "nevergrad":
        contender: Contender = Nevergrad(name, dim, popsize, seed, generations * popsize)
    elif library == "pycma":
        contender = PyCMA(name, dim, popsize, seed)
    else:
        contender = Ours(name, dim, popsize, seed)
    best = np.inf
    for _ in range(generations):
        started = time.perf_counter()
        x = contender.ask()
        spent = time.perf_counter() - started
        values = shifted(x)
        best = min(best, float(values.min()))
        started = time.perf_counter()
        contender.tell(values)
        times.append(1000 * (spent + time.perf_counter() - started))
    return best, times


LIBRARIES = {"ours": None, "pycma": "cma", "evotorch": "evotorch", "nevergrad": "nevergrad"}
DEFAULT = ["ours:pepg", "ours:openes", "ours:snes", "ours:cma", "pycma:cma", "evotorch:pgpe",
           "evotorch:snes", "evotorch:cmaes", "nevergrad:DiagonalCMA"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[100, 1088])
    parser.add_argument("--functions", nargs="+", default=["sphere", "rastrigin"], choices=list(FUNCTIONS))
    parser.add_argument("--only", nargs="+", default=DEFAULT, metavar="LIBRARY:NAME")
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    contenders = []
    for label in args.only:
        library = label.partition(":")[0]
        if library not in LIBRARIES:
            raise SystemExit(f"unknown library in {label!r}; choose among {', '.join(LIBRARIES)}")
        module = LIBRARIES[library]
        if module and importlib.util.find_spec(module) is None:
            print(f"# {label}: {module} is not installed (pip install -e '.[peers]'), left out")
            continue
        contenders.append(label)
    print(f"best value after {args.generations} generations x {args.popsize} (lower is better; median "
          f"[min - max] over {args.seeds} seeds); ask+tell ms per generation, mean / max")
    print(f"{'function':<10} {'dim':>5} | {'contender':<22} | {'median':>10} | {'min - max':>23} | "
          f"{'mean':>7} / {'max':>7}")
    for function_name in args.functions:
        for dim in args.dims:
            for label in contenders:
                runs = [run_one(label, FUNCTIONS[function_name], dim, seed, args.generations, args.popsize)
                        for seed in range(args.seeds)]
                best = np.array([r[0] for r in runs])
                ms = np.concatenate([r[1] for r in runs])
                print(f"{function_name:<10} {dim:>5} | {label:<22} | {np.median(best):>10.4g} | "
                      f"{best.min():>10.4g} - {best.max():<10.4g} | {ms.mean():7.1f} / {ms.max():7.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
