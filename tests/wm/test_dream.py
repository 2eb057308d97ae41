"""The dream: gymnasium's checker, batched == one at a time, the rules of a dream step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from wm.core.errors import WMError
from wm.envs.dream import DreamBatch, DreamEnv, DreamEvaluate, load_initial_latents
from wm.models.controller import LinearController, spec_for
from wm.models.mdrnn import MDRNN, MDRNNConfig

Z, H = 8, 16


def doom_m(seed: int = 0, done_bias: float = -2.0) -> MDRNN:
    """A small random Doom-shaped M whose done head fires now and then."""
    torch.manual_seed(seed)
    m = MDRNN(MDRNNConfig(z_size=Z, action_size=1, hidden_size=H, num_mixtures=3, with_done=True)).eval()
    with torch.no_grad():
        m.head.bias[0] = done_bias
        m.head.weight[0] *= 8.0  # a done logit that swings with the state: episodes of varied length
    return m


def latents(n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, Z)).astype(np.float32), np.full((n, Z), -8.0, np.float32)  # sigma 0.018


def play(env: DreamEnv, params: np.ndarray, seed: int) -> tuple[float, list[np.ndarray]]:
    spec = spec_for(env.dream.z_size, env.dream.hidden_size, 1, True)
    controller = LinearController(spec, params)
    obs, _ = env.reset(seed=seed)
    total, observations, done = 0.0, [obs], False
    while not done:
        action = controller.act(torch.from_numpy(obs)[None])[0].numpy()
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        observations.append(obs)
        done = terminated or truncated
    return total, observations


def test_the_dream_env_passes_gymnasiums_checker():
    env = DreamEnv(doom_m(), *latents(), tau=1.15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (unbounded observations: z and c have no bounds)
        check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (Z + 2 * H,)
    assert env.action_space.shape == (1,)


def test_observation_is_z_c_h_reward_is_one_per_step_and_state_starts_at_zero():
    env = DreamEnv(doom_m(), *latents(), tau=1.0)
    obs, _ = env.reset(seed=3)
    assert np.all(obs[Z:] == 0)  # c and h of a fresh episode
    mu, logvar = latents()
    # the first z is one of the recorded first latents, sampled within its small sigma
    assert np.min(np.abs(mu - obs[:Z]).max(axis=1)) < 0.1
    obs, reward, terminated, truncated, _ = env.step(np.array([0.5], np.float32))
    assert reward == 1.0 and np.any(obs[Z:] != 0)


def test_batched_dream_equals_one_episode_at_a_time_for_the_same_seeds():
    m, (mu, logvar) = doom_m(), latents()
    spec = spec_for(Z, H, 1, True)
    rng = np.random.default_rng(1)
    params = [rng.normal(0, 0.5, spec.num_params) for _ in range(10)]
    seeds = [100 + i for i in range(10)]
    env = DreamEnv(m, mu, logvar, tau=1.15, max_steps=300)
    alone = [play(env, p, s)[0] for p, s in zip(params, seeds, strict=True)]
    assert len(set(alone)) > 3, alone  # episodes of varied length: the test can tell them apart
    # 4 slots for 10 jobs: finished episodes leave the batch and slots are reused mid-flight
    evaluator = DreamEvaluate(DreamBatch(m, mu, logvar, tau=1.15, slots=4, max_steps=300), spec)
    jobs = iter([(i, p, s) for i, (p, s) in enumerate(zip(params, seeds, strict=True))])
    batched = dict(evaluator.run(lambda: next(jobs, None)))
    assert [batched[i][0] for i in range(10)] == alone
    assert [batched[i][1] for i in range(10)] == [int(a) for a in alone]


def test_same_seed_same_dream_other_seed_other_dream():
    env = DreamEnv(doom_m(), *latents(), tau=1.15, max_steps=50)
    params = np.full(Z + 2 * H, 0.05)
    _, first = play(env, params, 7)
    _, again = play(env, params, 7)
    _, other = play(env, params, 8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])


def test_episodes_end_at_the_step_cap_when_m_never_predicts_death():
    env = DreamEnv(doom_m(done_bias=-50.0), *latents(), tau=1.0, max_steps=20)
    env.reset(seed=0)
    for _ in range(20):
        _, _, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
    assert truncated and not terminated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(1, np.float32))


def test_m_predicting_death_ends_the_episode_at_once():
    env = DreamEnv(doom_m(done_bias=50.0), *latents(), tau=1.0)
    env.reset(seed=0)
    _, reward, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
    assert terminated and not truncated and reward == 1.0


def test_a_higher_temperature_gives_more_varied_dreams():
    m, (mu, logvar) = doom_m(done_bias=-50.0), latents()

    def spread(tau: float) -> float:
        batch = DreamBatch(m, mu, logvar, tau=tau, slots=64)
        for slot in range(64):
            batch.reset(slot, 5)  # the same start everywhere...
        for slot in range(64):
            batch._rngs[slot] = np.random.default_rng(slot)  # ...different noise per slot
            batch._refill(slot)
        rows = np.arange(64)
        for _ in range(5):
            batch.step(rows, torch.zeros(64, 1))
        return float(batch.z.std(dim=0).mean())

    assert spread(0.1) < spread(1.0) < spread(1.5)


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan")])
def test_a_temperature_at_or_below_zero_is_refused(tau):
    with pytest.raises(WMError, match="temperature must be > 0"):
        DreamEnv(doom_m(), *latents(), tau=tau)


def test_a_carracing_m_cannot_dream_doom():
    m = MDRNN(MDRNNConfig(z_size=Z, action_size=3, hidden_size=H, num_mixtures=3, with_done=False))
    with pytest.raises(WMError, match="CarRacing"):
        DreamEnv(m, *latents())


def test_initial_latents_come_from_the_series(doom_series_run, tmp_path):
    mu, logvar = load_initial_latents(doom_series_run)
    assert mu.shape == (6, 64) and logvar.shape == (6, 64)
    with pytest.raises(WMError, match="wm.series"):
        load_initial_latents(tmp_path)
    (tmp_path / "series").mkdir()
    (tmp_path / "series" / "initial_z.npz").write_bytes(b"not a zip")
    with pytest.raises(WMError, match="unreadable"):
        load_initial_latents(tmp_path)


def test_the_dream_of_a_trained_run(doom_m_run):
    env = DreamEnv.from_run(doom_m_run, tau=1.15, max_steps=30)
    total, observations = play(env, np.zeros(64 + 2 * 16), 0)
    assert 1 <= total <= 30 and observations[0].shape == (64 + 32,)
