"""The ES engine refuses a population no machine can hold, at once and before allocating it."""

from __future__ import annotations

import time

import pytest

from es.base import MAX_POPSIZE
from es.strategies import make_strategy

NAMES = ["cma", "pepg", "openes", "snes", "ga"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("num_params, popsize, message", [
    (96, 10**9, "popsize must be at most 100,000"),  # (pycma stalled for minutes on this one)
    (10**7, 1000, "needs 74.5 GiB"),
])
def test_an_impossible_population_is_refused_at_once(name, num_params, popsize, message):
    started = time.monotonic()
    with pytest.raises(ValueError, match=message):
        make_strategy(name, num_params=num_params, popsize=popsize, seed=0)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("name", NAMES)
def test_the_largest_population_allowed_is_made(name):
    strategy = make_strategy(name, num_params=3, popsize=MAX_POPSIZE, seed=0)
    assert strategy.ask().shape == (MAX_POPSIZE, 3)
