"""The random data-collection policies: range, dtype, hold lengths, smoothness, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from wm.envs.policies import (
    POLICY_NAMES,
    BrownianPolicy,
    HoldPolicy,
    UniformPolicy,
    make_policy,
)

STEPS = 2000


def actions_of(policy, steps: int = STEPS, seed: int = 0) -> np.ndarray:
    policy.reset(np.random.default_rng(seed))
    return np.stack([policy.act() for _ in range(steps)])


def run_lengths(actions: np.ndarray) -> list[int]:
    """Lengths of the runs of equal consecutive actions."""
    lengths, current = [], 1
    for prev, cur in zip(actions[:-1], actions[1:], strict=True):
        if np.array_equal(prev, cur):
            current += 1
        else:
            lengths.append(current)
            current = 1
    lengths.append(current)
    return lengths


def mean_abs_change(actions: np.ndarray) -> float:
    return float(np.abs(np.diff(actions, axis=0)).mean())


@pytest.mark.parametrize("name", POLICY_NAMES)
@pytest.mark.parametrize("dim", [1, 3])
def test_actions_are_float32_in_range(name, dim):
    policy = make_policy(name, dim)
    policy.reset(np.random.default_rng(1))
    for _ in range(STEPS // 4):
        action = policy.act()
        assert action.shape == (dim,)
        assert action.dtype == np.float32
        assert np.all(action >= -1.0) and np.all(action <= 1.0)


@pytest.mark.parametrize("dim", [1, 3])
def test_hold_policy_holds_each_action_1_to_10_steps(dim):
    actions = actions_of(HoldPolicy(dim))
    lengths = run_lengths(actions)
    assert sum(lengths) == STEPS
    assert min(lengths) >= 1 and max(lengths) <= 10
    assert 1 in lengths and 10 in lengths
    # Uniform over 1..10: about STEPS / 5.5 holds, and each length turns up.
    assert set(lengths[:-1]) == set(range(1, 11))
    assert abs(len(lengths) - STEPS / 5.5) < STEPS / 5.5 * 0.2


def test_hold_policy_returns_copies():
    policy = HoldPolicy(2)
    policy.reset(np.random.default_rng(0))
    for _ in range(100):
        action = policy.act()
        assert np.all(np.abs(action) <= 1.0)
        action[:] = 5.0  # a caller scribbling on its action must not change the held one


def test_reset_drops_the_current_hold():
    for seed in range(5):
        used = HoldPolicy(1)
        actions_of(used, steps=1, seed=99)  # leaves a hold half done
        np.testing.assert_array_equal(actions_of(used, steps=20, seed=seed),
                                      actions_of(HoldPolicy(1), steps=20, seed=seed))


@pytest.mark.parametrize("dim", [1, 3])
def test_brownian_policy_is_smooth(dim):
    brownian = actions_of(BrownianPolicy(dim))
    uniform = actions_of(UniformPolicy(dim))
    assert np.all(np.abs(brownian) <= 1.0)
    # A uniform action changes by 2/3 on average; the random walk by about sqrt(1/50) * 0.8.
    assert mean_abs_change(uniform) > 0.5
    assert mean_abs_change(brownian) < 0.15
    assert mean_abs_change(brownian) < mean_abs_change(uniform) / 4
    # ... yet it moves: it is not stuck at one value or one bound.
    assert brownian.std(axis=0).min() > 0.1


def test_uniform_policy_changes_every_step():
    actions = actions_of(UniformPolicy(2))
    assert run_lengths(actions) == [1] * STEPS


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_same_seed_same_sequence(name):
    a = actions_of(make_policy(name, 3), steps=200, seed=5)
    b = actions_of(make_policy(name, 3), steps=200, seed=5)
    c = actions_of(make_policy(name, 3), steps=200, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_make_policy():
    assert set(POLICY_NAMES) == {"hold", "brownian", "uniform"}
    for name, cls in (("hold", HoldPolicy), ("brownian", BrownianPolicy), ("uniform", UniformPolicy)):
        policy = make_policy(name, 3)
        assert isinstance(policy, cls)
        assert policy.action_dim == 3
    with pytest.raises(ValueError, match="random"):
        make_policy("random", 3)
