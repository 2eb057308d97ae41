"""The one interface every evolution strategy has: ask, tell, result, state_dict / load_state_dict.

A strategy MAXIMISES a fitness. One generation is ``solutions = s.ask()`` (popsize x num_params),
evaluating each row, then ``s.tell(fitness)``. What the base class does for every algorithm, so that
none of them can get it wrong on its own:

- non-finite fitness is replaced by the generation's worst finite value before any update, and
  counted (:attr:`Strategy.nonfinite_count`, :attr:`Result.nonfinite_count`);
- weight decay, an L2 penalty ``weight_decay * mean(params ** 2)`` subtracted from a fitness, acts
  where each algorithm says (:attr:`Strategy.decay_shaped_fitness`): on the rank-shaped fitness for
  the gradient strategies (PEPG, OpenES, SNES: as estool's OpenES and PEPG, where ranks lie in
  [-0.5, 0.5] so that 0.01 is a real regulariser whatever the scale of the returns), on the raw
  fitness for CMA-ES and the GA (as estool's wrappers of them; with returns in the hundreds it then
  barely changes the order of the candidates);
- the best candidate ever told is tracked on the RAW fitness (what a worker measured, without the
  weight-decay penalty), since that is the score a user asks for;
- all randomness comes from one ``numpy.random.Generator`` per strategy, seeded from ``seed``, and
  its state is part of :meth:`Strategy.state_dict`, so a run resumed from a state dict continues
  bit for bit.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from es.fitness import replace_nonfinite, weight_decay_penalty


@dataclass(frozen=True, eq=False)
class Result:
    """Where a strategy stands. Arrays are copies: changing them changes nothing in the strategy."""

    best_params: np.ndarray  # best candidate ever told (x0 before the first tell)
    best_fitness: float  # its raw fitness (-inf before the first finite one)
    mean: np.ndarray  # the distribution's centre: the parameters to evaluate as "the" solution
    sigma_rms: float  # root mean square of the per-parameter step sizes (or the scalar one)
    generation: int  # tells so far
    nonfinite_count: int  # NaN/inf fitness values replaced so far


# -- option checks shared by the strategies: a bad option is a ValueError naming it --
def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; a ValueError naming the option otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, low: float, high: float = np.inf, low_open: bool = True) -> float:
    """``value`` as a float within (low, high] (or [low, high] when ``low_open`` is False)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    above = number > low if low_open else number >= low
    if not (above and number <= high and np.isfinite(number)):
        upper = f" and <= {high}" if np.isfinite(high) else ""
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}{upper}, got {value!r}")
    return number


# Far above any ES run (the paper's 64; thousands at most), far below what stalls: pycma spends
# minutes building its tables for a population of 1e9 before it fails.
MAX_POPSIZE = 100_000
MAX_POPULATION_BYTES = 8 * 2**30  # one population of float64 candidates must fit in memory


def check_population(popsize: int, num_params: int) -> None:
    """Refuse a population no machine can sample, before any strategy allocates one: a ValueError
    saying the bound, rather than minutes of stall and then an out-of-memory kill."""
    if popsize > MAX_POPSIZE:
        raise ValueError(f"popsize must be at most {MAX_POPSIZE:,}, got {popsize:,}")
    needed = popsize * num_params * 8
    if needed > MAX_POPULATION_BYTES:
        raise ValueError(f"a population of {popsize:,} x {num_params:,} parameters needs "
                         f"{needed / 2**30:,.1f} GiB (float64); it must fit in "
                         f"{MAX_POPULATION_BYTES // 2**30} GiB: lower popsize")


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool (numpy's too); a ValueError naming the option otherwise."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _same_option(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is not None and b is not None and np.array_equal(a, b)
    return bool(a == b)


class Strategy(ABC):
    """Base of every strategy: validation, fitness clean-up, best tracking, state and RNG."""

    name: ClassVar[str]
    # True: the base class hands the update the fitness without penalty, and the algorithm subtracts
    # :meth:`_penalty` from its shaped fitness; False: the base class subtracts it from the raw one.
    decay_shaped_fitness: ClassVar[bool] = False

    def __init__(
        self,
        num_params: int,
        popsize: int,
        seed: int,
        *,
        weight_decay: float,
        x0: np.ndarray | None,
        options: dict[str, Any],
    ):
        self.num_params = check_int("num_params", num_params, 1)
        self.popsize = check_int("popsize", popsize, 2)
        check_population(self.popsize, self.num_params)
        self.seed = check_int("seed", seed, 0)
        self.weight_decay = check_float("weight_decay", weight_decay, 0.0, low_open=False)
        if x0 is None:
            start = np.zeros(self.num_params)
        else:
            start = np.array(x0, dtype=np.float64)  # a copy: the caller's array stays theirs
            if start.shape != (self.num_params,) or not np.all(np.isfinite(start)):
                raise ValueError(f"x0 must be {self.num_params} finite numbers, got shape {start.shape}")
        self.x0 = start
        # Every constructor option, to refuse a state dict made under other options (it would not
        # continue the same run) and to rebuild a strategy from a state dict alone.
        self.options: dict[str, Any] = {
            **options, "weight_decay": self.weight_decay, "x0": None if x0 is None else start.copy()
        }
        self.rng = np.random.default_rng(self.seed)
        self.generation = 0
        self.nonfinite_count = 0
        self.best_fitness = -np.inf
        self.best_params = start.copy()
        self._pending: np.ndarray | None = None  # the last ask()'s solutions, until told

    def _penalty(self, solutions: np.ndarray) -> np.ndarray | float:
        """The weight-decay penalty of each candidate, for an algorithm that decays its shaped fitness."""
        return weight_decay_penalty(solutions, self.weight_decay) if self.weight_decay > 0 else 0.0

    # -- what each algorithm provides --
    @abstractmethod
    def _sample(self) -> np.ndarray:
        """A new population (popsize x num_params), drawing only from ``self.rng``."""

    @abstractmethod
    def _update(self, solutions: np.ndarray, fitness: np.ndarray) -> None:
        """Move the distribution given finite fitness (higher is better), weight-decayed unless
        :attr:`decay_shaped_fitness`."""

    @abstractmethod
    def _mean(self) -> np.ndarray:
        """The distribution's centre (not a copy)."""

    @abstractmethod
    def _sigma_rms(self) -> float:
        """Root mean square of the step sizes."""

    @abstractmethod
    def _algo_state(self) -> dict[str, Any]:
        """The algorithm's own state (copies), picklable."""

    @abstractmethod
    def _load_algo_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_algo_state` returned."""

    # -- the interface --
    def ask(self) -> np.ndarray:
        """A new population to evaluate: float64 array of shape (popsize, num_params).

        Each call draws a fresh population; :meth:`tell` refers to the latest one.
        """
        solutions = np.asarray(self._sample(), dtype=np.float64)
        if solutions.shape != (self.popsize, self.num_params):
            raise RuntimeError(f"{self.name} sampled shape {solutions.shape}, expected "
                               f"{(self.popsize, self.num_params)}")
        self._pending = solutions
        return solutions.copy()

    def tell(self, fitness: np.ndarray) -> None:
        """Update with the fitness (higher is better) of each row of the last :meth:`ask`."""
        if self._pending is None:
            raise RuntimeError("tell() needs a population from ask() first")
        raw = np.asarray(fitness, dtype=np.float64)
        if raw.shape != (self.popsize,):
            raise ValueError(f"fitness must have shape ({self.popsize},), got {raw.shape}")
        solutions = self._pending
        clean, count = replace_nonfinite(raw)
        self.nonfinite_count += count
        finite = np.isfinite(raw)
        if finite.any():
            i = int(np.argmax(np.where(finite, raw, -np.inf)))
            if raw[i] > self.best_fitness:
                self.best_fitness = float(raw[i])
                self.best_params = solutions[i].copy()
        if self.weight_decay > 0 and not self.decay_shaped_fitness:
            clean = clean - weight_decay_penalty(solutions, self.weight_decay)
        self._update(solutions, clean)
        self._pending = None
        self.generation += 1

    def result(self) -> Result:
        return Result(
            best_params=self.best_params.copy(),
            best_fitness=float(self.best_fitness),
            mean=np.array(self._mean(), dtype=np.float64),
            sigma_rms=float(self._sigma_rms()),
            generation=self.generation,
            nonfinite_count=self.nonfinite_count,
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit, as plain picklable values (copies)."""
        return {
            "strategy": self.name,
            "num_params": self.num_params,
            "popsize": self.popsize,
            "seed": self.seed,
            "options": copy.deepcopy(self.options),
            "generation": self.generation,
            "nonfinite_count": self.nonfinite_count,
            "best_fitness": float(self.best_fitness),
            "best_params": self.best_params.copy(),
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "pending": None if self._pending is None else self._pending.copy(),
            "algorithm": self._algo_state(),
        }

    @classmethod
    def upgrade_state(cls, state: dict[str, Any]) -> dict[str, Any]:
        """A state dict made by an older version of this strategy, in today's form (the same run:
        options it did not have yet get the values that reproduce what it did). Default: as is."""
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``; it must come from the same strategy with the same options."""
        state = self.upgrade_state(state)
        for key, mine in (("strategy", self.name), ("num_params", self.num_params),
                          ("popsize", self.popsize)):
            if state.get(key) != mine:
                raise ValueError(f"state is for {key}={state.get(key)!r}, this strategy has {mine!r}")
        theirs = state.get("options", {})
        differ = sorted(k for k in set(theirs) | set(self.options)
                        if k not in theirs or k not in self.options
                        or not _same_option(theirs[k], self.options[k]))
        if differ:
            raise ValueError(f"state was made with other {self.name} options: {', '.join(differ)}")
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.generation = int(state["generation"])
        self.nonfinite_count = int(state["nonfinite_count"])
        self.best_fitness = float(state["best_fitness"])
        self.best_params = np.array(state["best_params"], dtype=np.float64)
        pending = state["pending"]
        self._pending = None if pending is None else np.array(pending, dtype=np.float64)
        self._load_algo_state(state["algorithm"])
