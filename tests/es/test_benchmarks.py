"""Each strategy, with its default options, clearly improves on standard benchmark functions.

Fitness is maximised, so each function is negated. Budgets are fixed and seeds too; the required
improvement is the fraction of the starting gap to the optimum (0) that must be closed by the best
fitness found: ``1 - best / start``. The margins sit well below what the seeds reach (noted beside
them) yet far above what aimless sampling gives.
"""

from __future__ import annotations

import numpy as np
import pytest

from es.strategies import make_strategy


def sphere(x: np.ndarray) -> np.ndarray:
    """Optimum 0 at x = 0.5 everywhere; the start, 0, is 0.25 * dim away."""
    return -np.sum((x - 0.5) ** 2, axis=1)


def rosenbrock(x: np.ndarray) -> np.ndarray:
    """Optimum 0 at x = 1 at the end of a curved valley; 9 at the start (dim 10)."""
    return -np.sum(100.0 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1.0 - x[:, :-1]) ** 2, axis=1)


def rastrigin(x: np.ndarray) -> np.ndarray:
    """Optimum 0 at x = 0 among a grid of local optima; started at 2.5 (on a ridge): 262.5."""
    return -(10.0 * x.shape[1] + np.sum(x * x - 10.0 * np.cos(2.0 * np.pi * x), axis=1))


PROBLEMS = {
    # name: (function, dim, start point, popsize, generations)
    "sphere": (sphere, 20, 0.0, 16, 200),
    "rosenbrock": (rosenbrock, 10, 0.0, 32, 1000),
    "rastrigin": (rastrigin, 10, 2.5, 32, 300),
}

# Fraction of the gap to close; beside each, what seeds 0-4 reached when the margins were set.
REQUIRED = {
    ("cma", "sphere"): 0.999,  # 1.000 all
    ("pepg", "sphere"): 0.95,  # 0.999 all (estool's Adam options: 0.987-0.994)
    ("openes", "sphere"): 0.95,  # 0.991-0.994 (Adam: 0.983-0.988)
    ("snes", "sphere"): 0.99,  # 1.000 all
    ("ga", "sphere"): 0.95,  # 0.975-0.983
    ("cma", "rosenbrock"): 0.99,  # 1.000 all
    ("pepg", "rosenbrock"): 0.9,  # 1.000 all (Adam: 0.995-1.000)
    # ClipUp's rate decays to a tenth by generation ~460 of the 1000: slower along the curved valley
    # than estool's Adam at a near-fixed rate (0.661-0.789).
    ("openes", "rosenbrock"): 0.45,  # 0.524-0.549
    ("snes", "rosenbrock"): 0.45,  # 0.564-0.606
    ("ga", "rosenbrock"): 0.5,  # 0.535-0.812
    # With the default sigma (0.1, a tenth of the ripples' spacing) Rastrigin tests descent on a
    # rugged landscape: dropping straight into the nearest local optima (x = 2 or 3) closes 66-85%.
    ("cma", "rastrigin"): 0.75,  # 0.810-0.856
    ("pepg", "rastrigin"): 0.75,  # 0.829-0.848
    ("openes", "rastrigin"): 0.75,  # 0.827-0.844
    ("snes", "rastrigin"): 0.7,  # 0.773-0.848
    ("ga", "rastrigin"): 0.7,  # 0.748-0.843
}


def optimise(name: str, problem: str, seed: int = 0, **options) -> tuple[float, float, float]:
    """(fitness at the start, best fitness found, fitness of the final mean)."""
    function, dim, start, popsize, generations = PROBLEMS[problem]
    x0 = np.full(dim, start)
    strategy = make_strategy(name, dim, popsize, seed, x0=x0, **options)
    for _ in range(generations):
        solutions = strategy.ask()
        strategy.tell(function(solutions))
    result = strategy.result()
    return float(function(x0[None])[0]), result.best_fitness, float(function(result.mean[None])[0])


@pytest.mark.parametrize(("name", "problem"), list(REQUIRED))
def test_improves_clearly(name, problem):
    start, best, at_mean = optimise(name, problem)
    closed = 1.0 - best / start
    assert closed > REQUIRED[name, problem], (
        f"{name} on {problem}: start {start:.4g}, best {best:.4g}, mean {at_mean:.4g}"
    )
    # the distribution's centre has moved with it, not just one lucky sample
    assert 1.0 - at_mean / start > 0.5 * REQUIRED[name, problem]


def test_cma_with_a_wide_sigma_searches_globally():
    """A sigma as wide as the ripples lets CMA-ES see past them, to near the global optimum
    (seeds 0-4 reach -1.0 to -7.0 from -262.5; the nearest local optima alone give about -40)."""
    start, best, _ = optimise("cma", "rastrigin", sigma_init=1.0)
    assert best > -10.0, f"start {start:.4g}, best {best:.4g}"
