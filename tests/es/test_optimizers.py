"""ClipUp / Adam / SGD on the mean, learning-rate schedules, estool's options, SNES, where weight
decay acts, old state dicts, and CMA-ES producing pycma's own populations."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

from es import statefile
from es.adam import Adam
from es.openes import OpenES
from es.optimizers import SGD, ClipUp, default_learning_rate, make_optimizer
from es.pepg import PEPG
from es.snes import nes_utilities
from es.strategies import make_strategy, strategy_from_state
from tests.conftest import ROOT


def sphere(solutions: np.ndarray) -> np.ndarray:
    return -np.sum((solutions - 0.5) ** 2, axis=1)


def run(strategy, generations: int, function=sphere) -> None:
    for _ in range(generations):
        strategy.tell(function(strategy.ask()))


# -- the optimisers --
def test_clipup_steps_by_the_learning_rate_and_clips_its_speed():
    clipup = ClipUp(3)
    first = clipup.step(np.array([30.0, 40.0, 0.0]), 0.1)  # normalised: the scale does not matter
    np.testing.assert_allclose(first, [0.06, 0.08, 0.0])
    for _ in range(100):  # momentum 0.9 would reach 10x the step; the speed is capped at 2x
        step = clipup.step(np.array([1.0, 0.0, 0.0]), 0.1)
    assert np.linalg.norm(step) == pytest.approx(0.2)
    np.testing.assert_allclose(step / np.linalg.norm(step), [1.0, 0.0, 0.0], atol=1e-3)
    coast = clipup.step(np.zeros(3), 0.1)  # a zero gradient adds nothing; momentum carries on
    np.testing.assert_allclose(coast, 0.9 * step)


def test_sgd_is_estools_momentum_average():
    sgd = SGD(2)
    np.testing.assert_allclose(sgd.step(np.array([1.0, -2.0]), 0.5), [0.05, -0.1])
    second = 0.5 * (0.9 * 0.1 + 0.1) * np.array([1.0, -2.0])
    np.testing.assert_allclose(sgd.step(np.array([1.0, -2.0]), 0.5), second)


@pytest.mark.parametrize("name, kind", [("clipup", ClipUp), ("adam", Adam), ("sgd", SGD)])
def test_optimizer_state_round_trips(name, kind):
    rng = np.random.default_rng(0)
    a, b = make_optimizer(name, 4), make_optimizer(name, 4)
    assert isinstance(a, kind)
    for _ in range(3):
        a.step(rng.standard_normal(4), 0.1)
    b.load_state_dict(statefile.loads(statefile.dumps(a.state_dict())))
    g = rng.standard_normal(4)
    assert np.array_equal(a.step(g, 0.1), b.step(g, 0.1))
    with pytest.raises(ValueError, match="parameters"):
        make_optimizer(name, 5).load_state_dict(a.state_dict())


def test_default_learning_rates_scale_with_the_problem():
    assert default_learning_rate("clipup", 0.1, 1088) == pytest.approx(0.05 * 0.1 * math.sqrt(1088))
    assert default_learning_rate("clipup", 0.2, 100) == pytest.approx(
        2 * default_learning_rate("clipup", 0.1, 100))
    assert default_learning_rate("adam", 0.1, 1088) == pytest.approx(0.01)  # estool's at its sigma
    pepg = make_strategy("pepg", 400, 8, 0, sigma_init=0.2)
    assert pepg.learning_rate == pytest.approx(0.05 * 0.2 * 20) and pepg.learning_rate_limit == pytest.approx(
        0.1 * pepg.learning_rate)


@pytest.mark.parametrize("name", ["pepg", "openes"])
def test_the_default_learning_rate_decays_to_its_floor(name):
    strategy = make_strategy(name, 10, 8, 0)
    start = strategy.learning_rate
    run(strategy, 100)
    assert strategy.learning_rate == pytest.approx(start * 0.995**100)
    run(strategy, 500)
    assert start * 0.1 * 0.995 <= strategy.learning_rate <= start * 0.1


@pytest.mark.parametrize("cls", [PEPG, OpenES])
def test_estools_options_give_estools_optimiser(cls):
    strategy = make_strategy(cls.name, 10, 8, 0, **cls.ESTOOL)
    assert isinstance(strategy.optimizer, Adam) and strategy.learning_rate == 0.01
    run(strategy, 20)
    # PEPG's estool rate never decays (its floor is its start); OpenES's decays very slowly
    assert strategy.learning_rate == (0.01 if cls is PEPG else pytest.approx(0.01 * 0.9999**20))


@pytest.mark.parametrize("name", ["pepg", "openes"])
@pytest.mark.parametrize("optimizer", ["clipup", "adam", "sgd"])
def test_every_optimizer_resumes_bit_for_bit_and_improves(name, optimizer):
    straight = make_strategy(name, 6, 8, 3, optimizer=optimizer)
    run(straight, 6)
    first = make_strategy(name, 6, 8, 3, optimizer=optimizer)
    run(first, 3)
    second = strategy_from_state(statefile.loads(statefile.dumps(first.state_dict())))
    run(second, 3)
    assert np.array_equal(straight.ask(), second.ask())
    assert np.array_equal(straight.result().mean, second.result().mean)
    assert straight.learning_rate == second.learning_rate
    strategy = make_strategy(name, 6, 16, 3, optimizer=optimizer, weight_decay=0.0)
    start = sphere(strategy.result().mean[None])[0]
    run(strategy, 150)
    assert sphere(strategy.result().mean[None])[0] > 0.5 * start  # closes at least half the gap


@pytest.mark.parametrize("name", ["pepg", "openes"])
def test_a_state_from_before_the_optimizer_option_continues_as_adam(name):
    """Checkpoints written before ClipUp had no ``optimizer`` option and kept Adam under "adam"."""
    cls = PEPG if name == "pepg" else OpenES
    straight = make_strategy(name, 6, 8, 3, **cls.ESTOOL)
    run(straight, 3)
    old = straight.state_dict()
    del old["options"]["optimizer"]
    old["algorithm"]["adam"] = old["algorithm"].pop("optimizer")
    resumed = strategy_from_state(statefile.loads(statefile.dumps(old)))
    assert resumed.options["optimizer"] == "adam"
    run(straight, 2)
    run(resumed, 2)
    assert np.array_equal(straight.ask(), resumed.ask())


# -- weight decay --
@pytest.mark.parametrize("name, on_ranks", [("pepg", True), ("openes", True), ("cma", False), ("ga", False)])
def test_weight_decay_acts_on_the_shaped_fitness_where_it_says(name, on_ranks):
    """Returns in the hundreds: a penalty of 0.01 * mean(x^2) changes no order of the raw fitness,
    so it changes nothing where it acts on the raw fitness, and the update where it acts on ranks."""
    def mean_after(weight_decay):
        strategy = make_strategy(name, 5, 8, 1, weight_decay=weight_decay, x0=np.full(5, 2.0))
        run(strategy, 3, lambda x: 100.0 * sphere(x))
        return strategy.result().mean

    assert np.array_equal(mean_after(0.0), mean_after(0.01)) != on_ranks


def test_snes_weight_decay_reorders_only_close_candidates():
    """SNES subtracts the penalty from centred ranks before giving utilities by rank: it breaks ties
    (so a flat fitness shrinks the weights: test_strategies) but does not outweigh a clear difference."""
    def mean_after(weight_decay, function):
        strategy = make_strategy("snes", 5, 8, 1, weight_decay=weight_decay, x0=np.full(5, 2.0))
        run(strategy, 3, function)
        return strategy.result().mean

    clear = lambda x: 100.0 * sphere(x)  # noqa: E731
    assert np.array_equal(mean_after(0.0, clear), mean_after(0.01, clear))
    tied = lambda x: np.round(sphere(x))  # noqa: E731
    assert not np.array_equal(mean_after(0.0, tied), mean_after(0.01, tied))


# -- SNES --
def test_nes_utilities():
    u = nes_utilities(np.array([3.0, 1.0, 2.0, 0.0]))
    assert u.sum() == pytest.approx(0.0) and list(np.argsort(-u)) == [0, 2, 1, 3]
    raw = np.maximum(0.0, np.log(3.0) - np.log([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_allclose(np.sort(u)[::-1], raw / raw.sum() - 0.25)
    tied = nes_utilities(np.array([1.0, 5.0, 5.0, 0.0]))
    assert tied[1] == tied[2] and tied.sum() == pytest.approx(0.0)
    np.testing.assert_allclose(nes_utilities(np.zeros(6)), 0.0, atol=1e-15)


def test_snes_standard_rates_and_one_step_by_hand():
    n = 1088
    expected = (3 + math.log(n)) / (5 * math.sqrt(n))
    assert make_strategy("snes", n, 8, 0).sigma_learning_rate == pytest.approx(expected)
    strategy = make_strategy("snes", 3, 6, 0, weight_decay=0.0)
    solutions = strategy.ask()
    s = (solutions - 0.0) / 0.1
    fitness = sphere(solutions)
    u = nes_utilities(fitness)  # (centred ranks keep the order, so the same utilities)
    eta = (3 + math.log(3)) / (5 * math.sqrt(3))
    strategy.tell(fitness)
    np.testing.assert_allclose(strategy.mean, 0.1 * (u @ s))
    np.testing.assert_allclose(strategy.sigma, 0.1 * np.exp(0.5 * eta * (u @ (s * s - 1))))


# -- CMA-ES is pycma --
def test_cma_asks_what_pycma_asks():
    """With the same random draws and no weight decay, our CMA-ES and pycma produce the same
    populations bit for bit (the fitness pycma sees is the negated one, as pycma minimises)."""
    import cma

    from es.cmaes import GeneratorNormal

    ours = make_strategy("cma", 12, 10, 4, weight_decay=0.0, x0=np.full(12, 0.3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = cma.CMAEvolutionStrategy(np.full(12, 0.3), 0.1, {
            "popsize": 10, "randn": GeneratorNormal(np.random.default_rng(4)), "seed": np.nan,
            "verbose": -9, "verb_disp": 0, "verb_log": 0, "verb_time": False})
    for _ in range(30):
        a, b = ours.ask(), np.array(theirs.ask())
        assert np.array_equal(a, b)
        ours.tell(sphere(a))
        theirs.tell(list(b), list(-sphere(b)))
    assert np.array_equal(ours.result().mean, theirs.mean)


def test_the_function_benchmark_runs():
    done = subprocess.run([sys.executable, "benchmarks/es_functions.py", "--dims", "8", "--generations", "3",
                           "--seeds", "2", "--popsize", "8", "--strategies", "pepg", "snes", "openes@adam",
                           "--option", "openes@adam:optimizer=adam", "--functions", "sphere", "rastrigin"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1].strip() for line in done.stdout.splitlines()[2:]]
    assert rows == ["pepg", "snes", "openes@adam"] * 2
