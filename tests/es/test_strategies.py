"""The ask/tell interface of every strategy: shapes, results, bad input, NaN, weight decay, resume."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from es import statefile
from es.base import Result
from es.strategies import STRATEGIES, make_strategy, strategy_from_state, strategy_options

NAMES = ["cma", "pepg", "openes", "snes", "ga"]
ROOT = Path(__file__).resolve().parents[2]


def sphere(solutions: np.ndarray) -> np.ndarray:
    return -np.sum((solutions - 0.5) ** 2, axis=1)


def test_all_names_registered():
    assert sorted(STRATEGIES) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_ask_tell_shapes_and_result(name):
    strategy = make_strategy(name, num_params=7, popsize=8, seed=1)
    solutions = strategy.ask()
    assert solutions.shape == (8, 7) and solutions.dtype == np.float64
    fitness = sphere(solutions)
    strategy.tell(fitness)
    result = strategy.result()
    assert isinstance(result, Result)
    assert result.generation == 1 and result.nonfinite_count == 0
    # best is tracked on the raw fitness, not the weight-decayed one
    assert result.best_fitness == fitness.max()
    np.testing.assert_array_equal(result.best_params, solutions[np.argmax(fitness)])
    assert result.mean.shape == (7,) and np.all(np.isfinite(result.mean))
    assert result.sigma_rms > 0
    # results are copies
    result.mean[:] = 1e9
    assert strategy.result().mean[0] != 1e9


@pytest.mark.parametrize("name", NAMES)
def test_defaults_before_first_tell(name):
    x0 = np.linspace(-1, 1, 6)
    strategy = make_strategy(name, 6, 8, 0, x0=x0)
    result = strategy.result()
    assert result.best_fitness == -np.inf and result.generation == 0
    np.testing.assert_array_equal(result.mean, x0)
    np.testing.assert_array_equal(result.best_params, x0)
    assert result.sigma_rms == pytest.approx(0.1, rel=1e-3)  # pycma: ~1e-5 off at the start


def test_reference_defaults():
    pepg = strategy_options("pepg")
    assert (pepg["sigma_init"], pepg["sigma_alpha"], pepg["sigma_decay"], pepg["sigma_limit"]) == (
        0.10, 0.20, 0.999, 0.01)
    assert (pepg["sigma_max_change"], pepg["optimizer"], pepg["learning_rate"], pepg["learning_rate_decay"],
            pepg["learning_rate_limit"], pepg["weight_decay"]) == (0.2, "clipup", None, 0.995, None, 0.01)
    openes = strategy_options("openes")
    assert (openes["sigma_init"], openes["sigma_decay"], openes["sigma_limit"], openes["optimizer"],
            openes["learning_rate"], openes["learning_rate_decay"], openes["learning_rate_limit"]) == (
        0.1, 0.999, 0.01, "clipup", None, 0.995, None)
    snes = strategy_options("snes")
    assert (snes["sigma_init"], snes["learning_rate"], snes["sigma_learning_rate"], snes["weight_decay"]) == (
        0.1, 1.0, None, 0.01)
    ga = strategy_options("ga")
    assert (ga["sigma_init"], ga["sigma_decay"], ga["sigma_limit"], ga["elite_ratio"]) == (
        0.1, 0.999, 0.01, 0.1)
    cma = strategy_options("cma")
    assert (cma["sigma_init"], cma["weight_decay"]) == (0.1, 0.01)


@pytest.mark.parametrize(
    ("name", "kwargs", "options", "message"),
    [
        ("nope", {}, {}, "unknown strategy"),
        ("cma", {}, {"sigma": 0.1}, "unknown option"),
        ("pepg", {}, {"optimizer": "rmsprop"}, "optimizer"),
        ("openes", {}, {"learning_rate_limit": -1.0}, "learning_rate_limit"),
        ("snes", {}, {"sigma_init": 0.0}, "sigma_init"),
        ("snes", {}, {"learning_rate": 0.0}, "learning_rate"),
        ("snes", {}, {"sigma_learning_rate": -0.1}, "sigma_learning_rate"),
        ("pepg", {"popsize": 1}, {}, "popsize"),
        ("cma", {"popsize": 1}, {}, "popsize"),
        ("openes", {}, {"sigma_init": 0.0}, "sigma_init"),
        ("cma", {}, {"sigma_init": -0.1}, "sigma_init"),
        ("ga", {}, {"sigma_init": float("nan")}, "sigma_init"),
        ("pepg", {"popsize": 7}, {}, "even"),
        ("openes", {"popsize": 7}, {}, "even"),
        ("pepg", {}, {"weight_decay": -0.01}, "weight_decay"),
        ("pepg", {}, {"sigma_decay": 1.5}, "sigma_decay"),
        ("pepg", {}, {"sigma_max_change": 1.0}, "sigma_max_change"),
        ("openes", {}, {"learning_rate": 0}, "learning_rate"),
        ("ga", {}, {"elite_ratio": 0.0}, "elite_ratio"),
        ("ga", {}, {"forget_best": "yes"}, "forget_best"),
        ("cma", {"num_params": 0}, {}, "num_params"),
        ("ga", {}, {"x0": np.zeros(3)}, "x0"),
        ("cma", {"seed": -1}, {}, "seed"),
    ],
)
def test_bad_arguments_raise_value_error(name, kwargs, options, message):
    args = {"num_params": 5, "popsize": 8, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_strategy(name, **args, **options)


def test_odd_popsize_allowed_where_no_mirrors():
    for name, options in (("openes", {"antithetic": False}), ("ga", {}), ("cma", {}), ("snes", {})):
        strategy = make_strategy(name, 4, 7, 0, **options)
        assert strategy.ask().shape == (7, 4)


@pytest.mark.parametrize("name", NAMES)
def test_tell_checks_its_input(name):
    strategy = make_strategy(name, 4, 8, 0)
    with pytest.raises(RuntimeError, match="ask"):
        strategy.tell(np.zeros(8))
    strategy.ask()
    with pytest.raises(ValueError, match="shape"):
        strategy.tell(np.zeros(7))


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_fitness_is_counted_and_never_reaches_the_update(name, monkeypatch):
    strategy = make_strategy(name, 6, 8, 3, weight_decay=0.0)
    seen = []
    update = strategy._update

    def spy(solutions, fitness):
        seen.append(fitness.copy())
        update(solutions, fitness)

    monkeypatch.setattr(strategy, "_update", spy)
    bad = {1: [0], 2: [2, 5, 7], 4: list(range(8))}  # generation -> candidates that fail
    for generation in range(6):
        solutions = strategy.ask()
        fitness = sphere(solutions)
        finite_worst = np.delete(fitness, bad.get(generation, [])).min() if generation != 4 else None
        for k, i in enumerate(bad.get(generation, [])):
            fitness[i] = (np.nan, np.inf, -np.inf)[k % 3]
        strategy.tell(fitness)
        assert np.all(np.isfinite(seen[-1]))
        if finite_worst is not None:
            for i in bad.get(generation, []):
                assert seen[-1][i] == finite_worst
    result = strategy.result()
    assert result.nonfinite_count == strategy.nonfinite_count == 1 + 3 + 8
    assert np.all(np.isfinite(result.mean)) and np.isfinite(result.sigma_rms)
    assert np.isfinite(result.best_fitness) and np.all(np.isfinite(strategy.ask()))


@pytest.mark.parametrize("name", NAMES)
def test_weight_decay_shrinks_weights_under_flat_fitness(name):
    """With no signal from the fitness, only the penalty acts: it must pull weights towards 0."""
    x0 = np.ones(8)
    norms = {}
    for weight_decay in (0.0, 0.01):
        strategy = make_strategy(name, 8, 16, 5, weight_decay=weight_decay, x0=x0)
        for _ in range(60):
            strategy.ask()
            strategy.tell(np.zeros(16))
        norms[weight_decay] = np.linalg.norm(strategy.result().mean)
    assert norms[0.01] < 0.9 * np.linalg.norm(x0)
    assert norms[0.01] < 0.9 * norms[0.0]


def _fitness_with_failures(solutions: np.ndarray, generation: int) -> np.ndarray:
    fitness = sphere(solutions)
    if generation == 1:
        fitness[0] = np.nan  # resume must also carry the count of failures
    return fitness


def _run(strategy, generations: int, first: int, asks: list) -> None:
    for generation in range(first, first + generations):
        solutions = strategy.ask()
        asks.append(solutions)
        strategy.tell(_fitness_with_failures(solutions, generation))


def _assert_same_result(a: Result, b: Result) -> None:
    assert np.array_equal(a.best_params, b.best_params) and np.array_equal(a.mean, b.mean)
    assert (a.best_fitness, a.sigma_rms, a.generation, a.nonfinite_count) == (
        b.best_fitness, b.sigma_rms, b.generation, b.nonfinite_count)


@pytest.mark.parametrize("name", NAMES)
def test_resume_is_bit_for_bit(name):
    options = {"x0": np.full(6, 0.2)}
    straight = make_strategy(name, 6, 8, 11, **options)
    straight_asks: list = []
    _run(straight, 6, 0, straight_asks)

    first = make_strategy(name, 6, 8, 11, **options)
    resumed_asks: list = []
    _run(first, 3, 0, resumed_asks)
    state = statefile.loads(statefile.dumps(first.state_dict()))
    del first
    second = make_strategy(name, 6, 8, 11, **options)
    second.load_state_dict(state)
    _run(second, 3, 3, resumed_asks)

    for a, b in zip(straight_asks, resumed_asks, strict=True):
        assert np.array_equal(a, b)
    _assert_same_result(straight.result(), second.result())
    assert second.result().nonfinite_count == 1
    assert np.array_equal(straight.ask(), second.ask())


@pytest.mark.parametrize("name", NAMES)
def test_resume_between_ask_and_tell(name):
    """A checkpoint taken after ask() and before tell() continues the same generation."""
    a = make_strategy(name, 5, 8, 2)
    _run(a, 2, 0, [])
    solutions = a.ask()
    b = strategy_from_state(statefile.loads(statefile.dumps(a.state_dict())))
    fitness = sphere(solutions)
    a.tell(fitness)
    b.tell(fitness)
    _assert_same_result(a.result(), b.result())
    assert np.array_equal(a.ask(), b.ask())


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_is_a_snapshot(name):
    strategy = make_strategy(name, 5, 8, 2)
    _run(strategy, 1, 0, [])
    state = strategy.state_dict()
    frozen = statefile.dumps(state)
    _run(strategy, 2, 1, [])
    assert statefile.dumps(state) == frozen


def test_load_state_dict_refuses_another_config():
    state = make_strategy("pepg", 5, 8, 0).state_dict()
    with pytest.raises(ValueError, match="strategy"):
        make_strategy("openes", 5, 8, 0).load_state_dict(state)
    with pytest.raises(ValueError, match="popsize"):
        make_strategy("pepg", 5, 10, 0).load_state_dict(state)
    with pytest.raises(ValueError, match="sigma_init"):
        make_strategy("pepg", 5, 8, 0, sigma_init=0.2).load_state_dict(state)
    with pytest.raises(ValueError, match="x0"):
        make_strategy("pepg", 5, 8, 0, x0=np.ones(5)).load_state_dict(state)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_asks_other_seed_other_asks(name):
    def asks(seed):
        strategy = make_strategy(name, 5, 8, seed)
        out = []
        for _ in range(3):
            out.append(strategy.ask())
            strategy.tell(sphere(out[-1]))
        return np.stack(out)

    assert np.array_equal(asks(4), asks(4))
    assert not np.array_equal(asks(4), asks(5))


def test_cma_is_silent_and_leaves_no_files(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    global_rng = np.random.get_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any pycma warning fails the test
        strategy = make_strategy("cma", 10, 16, 0)
        for _ in range(30):
            strategy.tell(sphere(strategy.ask()))
        strategy.load_state_dict(statefile.loads(statefile.dumps(strategy.state_dict())))
        for _ in range(3):  # flat fitness too: pycma has warnings for it
            strategy.ask()
            strategy.tell(np.zeros(16))
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert list(tmp_path.iterdir()) == []
    # pycma did not seed or draw from the global NumPy RNG
    after = np.random.get_state()
    assert after[2] == global_rng[2] and np.array_equal(after[1], global_rng[1])


def test_ga_forget_best():
    """forget_best=True: elites come from the newest generation only; False: the best survive."""

    def elite_fitness_after(forget_best: bool) -> list[float]:
        strategy = make_strategy("ga", 3, 10, 0, forget_best=forget_best, weight_decay=0.0)
        history = []
        for fitness in (np.arange(10.0), np.arange(10.0) - 100.0):
            strategy.ask()
            strategy.tell(fitness)
            history.append(float(strategy.elite_fitness[0]))
        return history

    assert elite_fitness_after(forget_best=True) == [9.0, -91.0]
    assert elite_fitness_after(forget_best=False) == [9.0, 9.0]


_FIRST_HALF = """
import sys
import numpy as np
from es import statefile
from es.strategies import make_strategy
states = {}
for name in sys.argv[2:]:
    strategy = make_strategy(name, 6, 8, 11)
    for generation in range(3):
        solutions = strategy.ask()
        strategy.tell(-np.sum((solutions - 0.5) ** 2, axis=1))
    strategy.ask()  # left pending: the checkpoint falls between ask and tell
    states[name] = strategy.state_dict()
with open(sys.argv[1], "wb") as file:
    file.write(statefile.dumps(states))
"""


def test_resume_in_another_process(tmp_path):
    """A checkpoint resumes in a fresh interpreter with another hash seed (pycma keys its archive of
    sent solutions by ``hash(bytes)``, which differs between processes)."""
    path = tmp_path / "states.npz"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", _FIRST_HALF, str(path), *NAMES], check=True, env=env,
                   cwd=tmp_path, timeout=120)
    states = statefile.loads(path.read_bytes())
    for name in NAMES:
        straight = make_strategy(name, 6, 8, 11)
        for _ in range(6):
            solutions = straight.ask()
            straight.tell(sphere(solutions))
        resumed = strategy_from_state(states[name])
        resumed.tell(sphere(resumed._pending))  # the pending generation, as asked before the stop
        for _ in range(2):
            solutions = resumed.ask()
            resumed.tell(sphere(solutions))
        _assert_same_result(straight.result(), resumed.result())
        assert np.array_equal(straight.ask(), resumed.ask()), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["states.npz"]  # no pycma files
