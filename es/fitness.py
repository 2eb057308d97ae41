"""Fitness shaping shared by the strategies: non-finite values, weight decay, centred ranks.

Every strategy maximises. What reaches an update is always finite: a NaN or inf fitness (a crashed
rollout, an overflow) would otherwise poison a mean, a covariance or a rank and with it every later
generation.
"""

from __future__ import annotations

import numpy as np

# Stands in for every candidate's fitness when a whole generation is non-finite: low enough to lose
# against any real fitness, finite so that arithmetic on it (weight decay, ranks) stays finite.
ALL_NONFINITE_FITNESS = -1e300


def replace_nonfinite(fitness: np.ndarray) -> tuple[np.ndarray, int]:
    """``fitness`` with every NaN/inf replaced by the worst finite value, and how many there were.

    +inf is replaced too: no real rollout scores infinity, so it is a failure, not a success. If no
    value is finite, all become :data:`ALL_NONFINITE_FITNESS`.
    """
    fitness = np.asarray(fitness, dtype=np.float64)
    finite = np.isfinite(fitness)
    count = int(fitness.size - np.count_nonzero(finite))
    if count == 0:
        return fitness.copy(), 0
    worst = fitness[finite].min() if count < fitness.size else ALL_NONFINITE_FITNESS
    return np.where(finite, fitness, worst), count


def weight_decay_penalty(solutions: np.ndarray, weight_decay: float) -> np.ndarray:
    """The L2 penalty of each candidate (row): ``weight_decay * mean(params ** 2)``, to SUBTRACT.

    Subtracting it from a fitness that is maximised penalises large weights. (The original CMA-ES
    wrapper added it, which rewarded them.)
    """
    solutions = np.asarray(solutions, dtype=np.float64)
    return weight_decay * np.mean(solutions * solutions, axis=1)


def centred_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values`` scaled to [-0.5, 0.5]: lowest -> -0.5, highest -> 0.5, order kept.

    Ties share the mean of their ranks, so equal fitnesses carry no spurious preference (with
    arbitrary tie-breaking, a flat fitness would still push the mean around). The values must be
    finite. A single value gets rank 0.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    n = values.size
    if n < 2:
        return np.zeros(n)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # rank of the first of each group of equal values
    ranks = (first + (counts - 1) / 2.0)[inverse.ravel()]
    return ranks / (n - 1) - 0.5
