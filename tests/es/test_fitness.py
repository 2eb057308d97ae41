"""Fitness shaping helpers and Adam."""

from __future__ import annotations

import numpy as np
import pytest

from es.adam import Adam
from es.fitness import ALL_NONFINITE_FITNESS, centred_ranks, replace_nonfinite, weight_decay_penalty


def test_centred_ranks_span_and_order():
    values = np.random.default_rng(0).normal(size=50) * 1e6
    ranks = centred_ranks(values)
    assert ranks.min() == -0.5 and ranks.max() == 0.5
    order = np.argsort(values)
    assert np.all(np.diff(ranks[order]) > 0)  # strictly increasing with the values
    assert ranks[np.argmax(values)] == 0.5 and ranks[np.argmin(values)] == -0.5
    assert abs(ranks.sum()) < 1e-12


def test_centred_ranks_small_and_ties():
    np.testing.assert_array_equal(centred_ranks(np.array([3.0, 1.0, 2.0])), [0.5, -0.5, 0.0])
    np.testing.assert_array_equal(centred_ranks(np.array([5.0, 5.0, 5.0, 5.0])), np.zeros(4))
    # the two 1.0s share ranks 0 and 1 -> 0.5 -> 0.5/3 - 0.5
    ranks = centred_ranks(np.array([1.0, 7.0, 1.0, 9.0]))
    assert ranks[0] == ranks[2] and ranks[0] < ranks[1] < ranks[3]
    assert np.all((ranks >= -0.5) & (ranks <= 0.5))
    assert centred_ranks(np.array([4.0])).tolist() == [0.0]


def test_replace_nonfinite_uses_worst_finite():
    clean, count = replace_nonfinite(np.array([1.0, np.nan, -2.0, np.inf, -np.inf, 3.0]))
    assert count == 3
    np.testing.assert_array_equal(clean, [1.0, -2.0, -2.0, -2.0, -2.0, 3.0])
    clean, count = replace_nonfinite(np.array([np.nan, np.inf]))
    assert count == 2 and np.all(clean == ALL_NONFINITE_FITNESS)
    clean, count = replace_nonfinite(np.array([1.0, 2.0]))
    assert count == 0 and clean.tolist() == [1.0, 2.0]


def test_weight_decay_penalty_grows_with_weights():
    solutions = np.array([[0.0, 0.0], [1.0, -1.0], [3.0, 1.0]])
    penalty = weight_decay_penalty(solutions, 0.01)
    np.testing.assert_allclose(penalty, [0.0, 0.01, 0.05])


def test_adam_ascends_and_round_trips():
    target = np.array([1.0, -2.0, 0.5])
    x, adam = np.zeros(3), Adam(3)
    for _ in range(2000):
        x = x + adam.step(-(x - target), 0.01)  # gradient of -|x - target|^2 / 2
    np.testing.assert_allclose(x, target, atol=0.05)
    copy = Adam(3)
    copy.load_state_dict(adam.state_dict())
    gradient = np.array([0.3, -0.1, 0.2])
    np.testing.assert_array_equal(copy.step(gradient, 0.01), adam.step(gradient, 0.01))
    with pytest.raises(ValueError):
        Adam(4).load_state_dict(adam.state_dict())
