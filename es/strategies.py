"""Make a strategy by name: ``make_strategy("cma" | "pepg" | "openes" | "snes" | "ga", ...)``.

Example (maximising ``fitness_of``)::

    strategy = make_strategy("pepg", num_params=867, popsize=64, seed=0, sigma_init=0.1)
    for _ in range(generations):
        solutions = strategy.ask()
        strategy.tell(np.array([fitness_of(x) for x in solutions]))
    params = strategy.result().mean
"""

from __future__ import annotations

import inspect
from typing import Any

from es.base import Result, Strategy
from es.cmaes import CMAES
from es.ga import SimpleGA
from es.openes import OpenES
from es.pepg import PEPG
from es.snes import SNES

__all__ = ["STRATEGIES", "Result", "Strategy", "make_strategy", "strategy_from_state", "strategy_options"]

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (CMAES, PEPG, OpenES, SNES, SimpleGA)}


def strategy_options(name: str) -> dict[str, Any]:
    """The options ``name`` accepts, with their defaults."""
    cls = _strategy_class(name)
    return {
        p.name: p.default
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def make_strategy(name: str, num_params: int, popsize: int, seed: int, **options: Any) -> Strategy:
    """A new strategy; a ValueError names an unknown strategy or option, or a bad value."""
    cls = _strategy_class(name)
    unknown = sorted(set(options) - set(strategy_options(name)))
    if unknown:
        raise ValueError(f"unknown option(s) for {name!r}: {', '.join(unknown)}; "
                         f"it takes: {', '.join(strategy_options(name))}")
    return cls(num_params, popsize, seed, **options)


def strategy_from_state(state: dict[str, Any]) -> Strategy:
    """The strategy a :meth:`Strategy.state_dict` came from, continuing where it stopped."""
    state = _strategy_class(state["strategy"]).upgrade_state(state)
    strategy = make_strategy(state["strategy"], state["num_params"], state["popsize"], state["seed"],
                             **state["options"])
    strategy.load_state_dict(state)
    return strategy


def _strategy_class(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
