"""C: the original's parameter counts and layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wm.models.controller import LinearController, carracing_spec, doom_spec


def test_parameter_counts_match_the_original():
    assert carracing_spec().num_params == 867
    assert doom_spec().num_params == 1088
    assert carracing_spec().input_size == 288 and doom_spec().input_size == 1088


def test_layout_weights_row_major_then_bias():
    spec = carracing_spec(z_size=2, hidden_size=1)  # 3 inputs, 3 actions: 9 weights + 3 biases
    params = np.zeros(12)
    params[1 * 3 + 2] = 0.5  # action 1 from input 2
    params[9 + 0] = 0.25  # bias of action 0
    c = LinearController(spec, params)
    x = torch.tensor([[0.0, 0.0, 2.0]])
    assert torch.allclose(c.act(x), torch.tanh(torch.tensor([[0.25, 1.0, 0.0]])))


def test_doom_inputs_are_z_c_h_and_no_bias():
    spec = doom_spec(z_size=1, hidden_size=1)
    c = LinearController(spec, np.array([1.0, 10.0, 100.0]))
    features = c.features(torch.tensor([[1.0]]), h=torch.tensor([[3.0]]), c=torch.tensor([[2.0]]))
    assert features.tolist() == [[1.0, 2.0, 3.0]]
    assert c.act(torch.tensor([[0.0, 0.0, 0.0]])).item() == 0.0


def test_bad_parameter_vectors_are_refused():
    with pytest.raises(ValueError, match="has 867 parameters"):
        LinearController(carracing_spec(), np.zeros(866))
    with pytest.raises(ValueError, match="NaN"):
        LinearController(carracing_spec(), np.full(867, np.nan))


@pytest.fixture
def doom_agent(doom_m_run):
    """The full agent (trained V, small trained M) of the session's Doom run."""
    from wm.envs.rollout import WorldModelAgent
    from wm.models.weights import load_mdrnn, load_vae

    vae, _ = load_vae(doom_m_run)
    mdrnn, _ = load_mdrnn(doom_m_run)
    return WorldModelAgent(vae, mdrnn)


def test_the_agent_plays_a_real_doom_episode_with_trained_v_and_m(doom_agent):
    from wm.envs.games import make_env

    assert doom_agent.spec.num_params == (64 + 16 + 16) * 1
    env = make_env("doom", max_steps=50)
    params = np.random.default_rng(0).normal(0, 0.1, doom_agent.spec.num_params)
    a = doom_agent.run_episode(env, params, seed=3)
    b = doom_agent.run_episode(env, params, seed=3)
    env.close()
    assert a == b  # deterministic for a seed
    assert 1 <= a.steps <= 50 and a.total_reward == a.steps  # +1 per tic survived


def test_lockstep_agent_plays_every_job_once_and_one_slot_equals_one_episode(doom_agent):
    from wm.envs.games import make_env
    from wm.envs.rollout import LockstepAgent

    rng = np.random.default_rng(1)
    jobs = [(n, rng.normal(0, 0.5, doom_agent.spec.num_params), 10 + n) for n in range(5)]
    envs = [make_env("doom", max_steps=40) for _ in range(3)]
    try:
        single = {key: doom_agent.run_episode(envs[0], params, seed) for key, params, seed in jobs}
        one = dict(LockstepAgent(doom_agent, envs[:1]).run(_feeder(jobs)))
        three = dict(LockstepAgent(doom_agent, envs).run(_feeder(jobs)))
    finally:
        for env in envs:
            env.close()
    assert one == single  # one slot: exactly the one-episode agent
    assert sorted(three) == [0, 1, 2, 3, 4]  # every job played once, across 3 slots
    for result in three.values():
        assert 1 <= result.steps <= 40 and result.total_reward == result.steps


def _feeder(jobs):
    pending = iter(jobs)
    return lambda: next(pending, None)
