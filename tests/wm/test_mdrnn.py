"""M, the MDN-RNN: sizes, the mixture and done losses, temperature sampling, restarts, and learning."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal
from torch.testing import assert_close

from wm.models.mdrnn import (
    MDRNN,
    MDRNNConfig,
    MixtureParams,
    carracing_config,
    done_loss,
    doom_config,
    mixture_nll,
    sample_next_z,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Run these tiny models on one thread: on a busy 2-core machine, torch's 2-thread intra-op
    parallelism makes them ~100x slower (threads spin-waiting on each other), not faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SMALL = MDRNNConfig(z_size=3, action_size=2, hidden_size=8, num_mixtures=2, with_done=False)
SMALL_DOOM = MDRNNConfig(z_size=3, action_size=1, hidden_size=8, num_mixtures=2, with_done=True)


def random_params(shape: tuple[int, ...], generator: torch.Generator, dtype=torch.float64) -> MixtureParams:
    """Random mixtures of ``shape`` (..., z, K) with normalised log weights."""
    logits = torch.randn(shape, generator=generator, dtype=dtype) * 2
    mu = torch.randn(shape, generator=generator, dtype=dtype) * 2
    logsigma = torch.randn(shape, generator=generator, dtype=dtype) * 0.5
    return MixtureParams(torch.log_softmax(logits, dim=-1), mu, logsigma)


def random_sequence(cfg: MDRNNConfig, batch: int, steps: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, steps, cfg.z_size, generator=g)
    action = torch.rand(batch, steps, cfg.action_size, generator=g) * 2 - 1
    return z, action


def make_model(cfg: MDRNNConfig, seed: int = 0) -> MDRNN:
    torch.manual_seed(seed)
    return MDRNN(cfg).eval()


def assert_outputs_close(a, b) -> None:
    """Compare two (MixtureParams, done_logit, state) triples."""
    for x, y in zip(a[0], b[0], strict=True):
        assert_close(x, y)
    if a[1] is None or b[1] is None:
        assert a[1] is None and b[1] is None
    else:
        assert_close(a[1], b[1])
    assert_close(a[2][0], b[2][0])
    assert_close(a[2][1], b[2][1])


# ---- sizes ----


@pytest.mark.parametrize(
    "cfg, tf_count",
    [(carracing_config(), 422_368), (doom_config(), 1_678_785)],
    ids=["carracing", "doom"],
)
def test_parameter_counts(cfg: MDRNNConfig, tf_count: int) -> None:
    # PyTorch's LSTM keeps two bias vectors (b_ih, b_hh) where TF's keeps one: +4 x hidden units,
    # so 422,368 + 1,024 = 423,392 (CarRacing) and 1,678,785 + 2,048 = 1,680,833 (Doom).
    model = MDRNN(cfg)
    count = sum(p.numel() for p in model.parameters())
    assert count == tf_count + 4 * cfg.hidden_size
    assert count == {256: 423_392, 512: 1_680_833}[cfg.hidden_size]


def test_config_sizes() -> None:
    assert (carracing_config().input_size, carracing_config().output_size) == (35, 480)
    assert (doom_config().input_size, doom_config().output_size) == (66, 961)
    with pytest.raises(ValueError):
        MDRNNConfig(z_size=0, action_size=1, hidden_size=4)


def test_output_shapes() -> None:
    z, action = random_sequence(SMALL_DOOM, batch=2, steps=5)
    params, done_logit, (h, c) = make_model(SMALL_DOOM)(z, action, torch.zeros(2, 5))
    for p in params:
        assert p.shape == (2, 5, 3, 2)
    assert_close(params.logpi.exp().sum(-1), torch.ones(2, 5, 3))
    assert done_logit is not None and done_logit.shape == (2, 5)
    assert h.shape == c.shape == (1, 2, 8)


def test_input_checks() -> None:
    z, action = random_sequence(SMALL_DOOM, batch=2, steps=5)
    with pytest.raises(ValueError, match="restart"):
        make_model(SMALL_DOOM)(z, action)  # Doom's M needs its restart flags
    with pytest.raises(ValueError, match="restart"):
        make_model(SMALL)(*random_sequence(SMALL, 2, 5), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="action"):
        make_model(SMALL_DOOM)(z, action[:, :4], torch.zeros(2, 5))


# ---- losses ----


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (3, 7, 2, 3), (5, 6, 2)])
def test_mixture_nll_matches_torch_distributions(shape: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(1)
    params = random_params(shape, g)
    target = torch.randn(shape[:-1], generator=g, dtype=torch.float64) * 3
    mixture = MixtureSameFamily(Categorical(logits=params.logpi), Normal(params.mu, params.logsigma.exp()))
    assert_close(mixture_nll(params, target), -mixture.log_prob(target).mean())


def test_mixture_nll_is_finite_for_extreme_values() -> None:
    g = torch.Generator().manual_seed(2)
    params = random_params((2, 3, 4, 5), g, dtype=torch.float32)
    params = params._replace(logsigma=torch.full_like(params.mu, -10.0))
    target = params.mu[..., 0] + 1e3  # 1e3 away from every mean at sigma = e^-10
    # The naive form underflows: every pi_k * N(...) is 0, and -log 0 = inf.
    sigma = params.logsigma.exp()
    density = params.logpi.exp() * torch.exp(-0.5 * ((target.unsqueeze(-1) - params.mu) / sigma) ** 2)
    naive = -torch.log((density / (sigma * math.sqrt(2 * math.pi))).sum(-1)).mean()
    assert torch.isinf(naive)
    loss = mixture_nll(params, target)
    assert torch.isfinite(loss)
    p64 = MixtureParams(*(p.double() for p in params))
    assert_close(loss.double(), mixture_nll(p64, target.double()), rtol=1e-5, atol=0)


def test_mixture_nll_mask_averages_kept_steps_only() -> None:
    g = torch.Generator().manual_seed(3)
    params = random_params((3, 6, 4, 5), g)
    target = torch.randn(3, 6, 4, generator=g, dtype=torch.float64)
    mask = torch.rand(3, 6, generator=g) > 0.4
    target[~mask] = torch.inf  # padding must not leak into the loss
    kept = mixture_nll(MixtureParams(*(p[mask] for p in params)), target[mask])
    assert_close(mixture_nll(params, target, mask=mask), kept)


def test_done_loss_matches_weighted_bce() -> None:
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(4, 9, generator=g) * 3
    done = (torch.rand(4, 9, generator=g) < 0.2).float()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, done, pos_weight=torch.tensor(10.0)
    )
    assert_close(done_loss(logits, done), expected)
    # The original's form: (1 + done * 9) * bce, averaged.
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, done, reduction="none")
    assert_close(done_loss(logits, done), ((1 + 9 * done) * bce).mean())
    mask = torch.rand(4, 9, generator=g) > 0.5
    assert_close(done_loss(logits, done, mask=mask), ((1 + 9 * done) * bce)[mask].mean())


# ---- sampling ----


def test_sample_at_tiny_tau_is_the_most_likely_mean() -> None:
    g = torch.Generator().manual_seed(5)
    params = random_params((64, 8, 5), g, dtype=torch.float32)
    # Lift each top component by 1: a log-weight gap >= 1 is a factor e^10000 at tau = 1e-4.
    logits = params.logpi + torch.nn.functional.one_hot(params.logpi.argmax(-1), 5)
    params = params._replace(logpi=torch.log_softmax(logits, -1))
    z = sample_next_z(params, tau=1e-4, generator=torch.Generator().manual_seed(0))
    best = params.logpi.argmax(-1, keepdim=True)
    best_mu = params.mu.gather(-1, best).squeeze(-1)
    best_sigma = params.logsigma.gather(-1, best).squeeze(-1).exp()
    assert z.shape == (64, 8)
    # sigma * sqrt(1e-4) * |eps| with |eps| < 6
    assert ((z - best_mu).abs() <= 6 * best_sigma * 1e-2).all()


def test_sample_spread_grows_with_tau() -> None:
    n = 20_000
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, -2.0])
    mu = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
    params = MixtureParams(
        torch.log_softmax(logits, -1).expand(n, 1, 5),
        mu.expand(n, 1, 5),
        torch.full((n, 1, 5), math.log(0.5)),
    )
    g = torch.Generator().manual_seed(6)
    spreads = [sample_next_z(params, tau, generator=g).std().item() for tau in (0.5, 1.0, 1.5)]
    assert spreads[0] < spreads[1] < spreads[2]


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan")])
def test_sample_rejects_nonpositive_tau(tau: float) -> None:
    params = random_params((2, 3, 5), torch.Generator().manual_seed(7))
    with pytest.raises(ValueError, match="tau"):
        sample_next_z(params, tau)


def test_seeded_sampling_is_reproducible() -> None:
    params = random_params((4, 6, 5), torch.Generator().manual_seed(8))

    def draw(seed: int) -> torch.Tensor:
        return sample_next_z(params, 1.15, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(1), draw(1))
    assert not torch.equal(draw(1), draw(2))


# ---- recurrence and restarts ----


@pytest.mark.parametrize("cfg", [SMALL, SMALL_DOOM], ids=["carracing-like", "doom-like"])
def test_step_by_step_equals_forward(cfg: MDRNNConfig) -> None:
    batch, steps = 3, 7
    model = make_model(cfg)
    z, action = random_sequence(cfg, batch, steps)
    restart = None
    if cfg.with_done:
        restart = torch.zeros(batch, steps)
        restart[:, 0] = 1
        restart[0, 3] = restart[2, 5] = 1  # episodes starting inside the stream
    state = tuple(0.5 * torch.randn(1, batch, cfg.hidden_size) for _ in range(2))
    with torch.no_grad():
        whole = model(z, action, restart, state)
        outputs, dones = [], []
        for t in range(steps):
            params, done, state = model.step(
                z[:, t], action[:, t], state, None if restart is None else restart[:, t]
            )
            outputs.append(params)
            dones.append(done)
    stacked = MixtureParams(*(torch.stack(parts, dim=1) for parts in zip(*outputs, strict=True)))
    assert stacked.mu.shape == (batch, steps, cfg.z_size, cfg.num_mixtures)
    assert_outputs_close(whole, (stacked, None if restart is None else torch.stack(dones, 1), state))


def test_restart_zeroes_the_state_of_that_row_only() -> None:
    batch, steps, t0 = 3, 10, 4
    model = make_model(SMALL_DOOM)
    z, action = random_sequence(SMALL_DOOM, batch, steps)
    state = tuple(torch.randn(1, batch, 8) for _ in range(2))
    no_restart = torch.zeros(batch, steps)
    restart = no_restart.clone()
    restart[0, t0] = 1
    with torch.no_grad():
        params, done, (h, c) = model(z, action, restart, state)
        base_params, base_done, (base_h, base_c) = model(z, action, no_restart, state)  # one LSTM call
        fresh_params, fresh_done, (fresh_h, fresh_c) = model(z[:1, t0:], action[:1, t0:], restart[:1, t0:])
    # Row 0 from t0 on is a fresh sequence: its state really was zeroed.
    for p, fresh in zip(params, fresh_params, strict=True):
        assert_close(p[:1, t0:], fresh)
    assert_close(done[:1, t0:], fresh_done)
    assert_close((h[:, :1], c[:, :1]), (fresh_h, fresh_c))
    # ... and before t0 it is unchanged.
    for p, base in zip(params, base_params, strict=True):
        assert_close(p[:1, :t0], base[:1, :t0])
    # The other rows, run in segments, equal the single-call path.
    for p, base in zip(params, base_params, strict=True):
        assert_close(p[1:], base[1:])
    assert_close(done[1:], base_done[1:])
    assert_close((h[:, 1:], c[:, 1:]), (base_h[:, 1:], base_c[:, 1:]))


def test_restart_at_the_first_step_drops_the_given_state() -> None:
    model = make_model(SMALL_DOOM)
    z, action = random_sequence(SMALL_DOOM, 2, 6)
    restart = torch.zeros(2, 6)
    restart[:, 0] = 1
    state = tuple(torch.randn(1, 2, 8) for _ in range(2))
    with torch.no_grad():
        assert_outputs_close(model(z, action, restart, state), model(z, action, restart))
        # ... while without the flag the given state matters.
        restart[1, 0] = 0
        carried = model(z, action, restart, state)
    assert not torch.allclose(carried[0].mu[1], model(z, action, torch.ones(2, 6))[0].mu[1])


def test_state_carries_across_chunks() -> None:
    # Doom's M trains on long streams cut into batches, carrying the state from one to the next.
    model = make_model(SMALL_DOOM)
    z, action = random_sequence(SMALL_DOOM, 2, 12)
    restart = torch.zeros(2, 12)
    restart[:, 0] = 1
    restart[1, 7] = 1
    with torch.no_grad():
        whole = model(z, action, restart)
        first = model(z[:, :5], action[:, :5], restart[:, :5])
        second = model(z[:, 5:], action[:, 5:], restart[:, 5:], first[2])
    joined = MixtureParams(*(torch.cat(parts, 1) for parts in zip(first[0], second[0], strict=True)))
    assert_outputs_close(whole, (joined, torch.cat([first[1], second[1]], 1), second[2]))


# ---- learning ----


def test_learns_simple_dynamics() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    cfg = MDRNNConfig(z_size=4, action_size=2, hidden_size=32, num_mixtures=5)
    batch, steps = 16, 20
    effect = torch.randn(2, 4, generator=g) * 0.3
    action = torch.rand(batch, steps, 2, generator=g) * 2 - 1
    z = [torch.randn(batch, 4, generator=g)]
    for t in range(steps):
        z.append(0.9 * z[-1] + action[:, t] @ effect + 0.05 * torch.randn(batch, 4, generator=g))
    z = torch.stack(z, dim=1)  # (B, T + 1, 4)

    model = MDRNN(cfg)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        params, _, _ = model(z[:, :-1], action)
        loss = mixture_nll(params, z[:, 1:])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert math.isfinite(losses[-1])
    assert losses[-1] < losses[0] - 1.0, (losses[0], losses[-1])


def test_advance_gives_the_same_state_as_step():
    for config in (MDRNNConfig(z_size=3, action_size=1, hidden_size=8, with_done=True),
                   MDRNNConfig(z_size=3, action_size=2, hidden_size=8)):
        model = MDRNN(config)
        state = (torch.randn(1, 2, 8), torch.randn(1, 2, 8))
        z, a = torch.randn(2, 3), torch.randn(2, config.action_size)
        restart = torch.tensor([1.0, 0.0]) if config.with_done else None
        _, _, expected = model.step(z, a, state, restart)
        got = model.advance(z, a, state, restart)
        assert torch.allclose(got[0], expected[0]) and torch.allclose(got[1], expected[1])
