"""M, the MDN-RNN of World Models: an LSTM whose output parameterises, per latent dimension, a
mixture of 1-D Gaussians over the next z (and, for Doom, a logit for "the episode ends here").

Faithful to the original TF models (``rnn.py`` for CarRacing, ``doomrnn.py`` for Doom): one LSTM
layer without layer norm or dropout, one linear output layer laid out as
``[done logit (Doom only), then per latent dimension (logmix x K, mu x K, logsigma x K)]``, mixture
weights normalised with a log-softmax, the loss the mean negative log-likelihood over every batch,
time and latent entry. Step order, as in the original: the controller acts on (z_t, h_t), then
h_{t+1} = LSTM([z_t, a_t]).

Shapes: sequences are batch-first, ``z`` (B, T, z_size), ``action`` (B, T, action_size), ``restart``
(B, T); the recurrent state is ``(h, c)`` with each (1, B, hidden_size), as ``nn.LSTM`` keeps it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LSTMState = tuple[Tensor, Tensor]  # (h, c), each (1, B, hidden_size)

# TF's LSTM cells add a constant 1.0 to the forget gate's pre-activation (forget_bias=1.0), which
# PyTorch's LSTM has no notion of; we start PyTorch's forget-gate bias 1.0 higher instead, so a
# fresh M forgets as slowly as the original's did at initialisation.
TF_FORGET_BIAS = 1.0
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class MDRNNConfig:
    """Sizes of M. ``with_done`` (Doom) adds a restart-flag input and a done-logit output."""

    z_size: int
    action_size: int
    hidden_size: int
    num_mixtures: int = 5
    with_done: bool = False

    def __post_init__(self) -> None:
        for name in ("z_size", "action_size", "hidden_size", "num_mixtures"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def input_size(self) -> int:
        """LSTM input width: z and action, plus the restart flag for Doom."""
        return self.z_size + self.action_size + int(self.with_done)

    @property
    def output_size(self) -> int:
        """Output layer width: (logmix, mu, logsigma) x K per latent dimension, plus the done logit."""
        return 3 * self.num_mixtures * self.z_size + int(self.with_done)


def carracing_config() -> MDRNNConfig:
    """The CarRacing M: z 32, action 3, LSTM 256, 5 mixtures, no done output."""
    return MDRNNConfig(z_size=32, action_size=3, hidden_size=256, num_mixtures=5, with_done=False)


def doom_config() -> MDRNNConfig:
    """The Doom M: z 64, action 1, LSTM 512, 5 mixtures, restart flag in and done logit out."""
    return MDRNNConfig(z_size=64, action_size=1, hidden_size=512, num_mixtures=5, with_done=True)


class MixtureParams(NamedTuple):
    """Per-latent-dimension Gaussian mixtures, each tensor (..., z_size, num_mixtures).

    ``logpi`` is already normalised (log-softmax over the last dimension); sigma = exp(logsigma).
    """

    logpi: Tensor
    mu: Tensor
    logsigma: Tensor


class MDRNN(nn.Module):
    """LSTM + linear mixture-density head.

    Parameters: PyTorch's LSTM has two bias vectors (b_ih and b_hh) where TF's has one, i.e.
    4 * hidden_size more parameters than the original: CarRacing 422,368 + 4 * 256 = 423,392, Doom
    1,678,785 + 4 * 512 = 1,680,833. The two biases are only ever summed, so the models compute the
    same family of functions.
    """

    def __init__(self, config: MDRNNConfig):
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(config.input_size, config.hidden_size, batch_first=True)
        self.head = nn.Linear(config.hidden_size, config.output_size)
        h = config.hidden_size
        with torch.no_grad():
            # PyTorch orders the gates (input, forget, cell, output).
            self.lstm.bias_hh_l0[h : 2 * h] += TF_FORGET_BIAS

    def initial_state(self, batch_size: int) -> LSTMState:
        """Zero (h, c) for ``batch_size`` sequences, on the module's device and dtype."""
        weight = self.lstm.weight_hh_l0
        shape = (1, batch_size, self.config.hidden_size)
        return weight.new_zeros(shape), weight.new_zeros(shape)

    def forward(
        self,
        z: Tensor,
        action: Tensor,
        restart: Tensor | None = None,
        state: LSTMState | None = None,
    ) -> tuple[MixtureParams, Tensor | None, LSTMState]:
        """Run M over whole sequences with teacher forcing.

        ``z`` (B, T, z_size), ``action`` (B, T, action_size); for Doom ``restart`` (B, T), 1 where an
        episode starts: (h, c) of that row is zeroed before the step is processed, and the flag is
        also an input. ``state`` defaults to zeros. Returns the mixture over z_{t+1} for every step
        (each (B, T, z_size, K)), the done logits (B, T) or None, and the state after the last step.
        """
        x, flags = self._inputs(z, action, restart)
        batch, steps = x.shape[:2]
        if state is None:
            state = self.initial_state(batch)
        h, c = state
        if flags is None:
            out, (h, c) = self.lstm(x, (h, c))
        else:
            # The original zeroes (h, c) step by step inside one unrolled graph. One nn.LSTM call
            # per stretch between restarts computes the same thing far faster: split the time axis
            # wherever any row restarts, and zero the restarting rows at each split. With no
            # restart after t=0 (CarRacing-like data, single episodes) this is a single call.
            # Measured on Doom batches of 100 x 500 (~130 stretches): within 2-4% of one call over
            # the window, and faster than the other exact ways tried (a one-loop LSTM with its own
            # backward, packed sequences, padding episodes to aligned starts; BENCHMARKS.md).
            splits = (torch.nonzero(flags[:, 1:].any(dim=0)).flatten() + 1).tolist()
            outputs = []
            for start, end in pairwise([0, *splits, steps]):
                reset = flags[:, start].view(1, batch, 1)
                # torch.where, not a multiplication: a NaN/inf in a finished episode's state must
                # not leak into the next one.
                h = torch.where(reset, torch.zeros_like(h), h)
                c = torch.where(reset, torch.zeros_like(c), c)
                out, (h, c) = self.lstm(x[:, start:end], (h, c))
                outputs.append(out)
            out = torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]
        params, done_logit = self._head(out)
        return params, done_logit, (h, c)

    def step(
        self,
        z: Tensor,
        action: Tensor,
        state: LSTMState,
        restart: Tensor | None = None,
    ) -> tuple[MixtureParams, Tensor | None, LSTMState]:
        """One time step for a batch of rollouts (dreams, controllers).

        ``z`` (B, z_size), ``action`` (B, action_size), ``restart`` (B,) for Doom. Returns the
        mixture (each (B, z_size, K)), the done logit (B,) or None, and the new state.
        """
        h, c = self.advance(z, action, state, restart)
        params, done_logit = self._head(h[0].unsqueeze(1))
        params = MixtureParams(*(p.squeeze(1) for p in params))
        return params, None if done_logit is None else done_logit.squeeze(1), (h, c)

    def advance(
        self, z: Tensor, action: Tensor, state: LSTMState, restart: Tensor | None = None
    ) -> LSTMState:
        """Only the new state after one step (B, ...): what a controller in the real env needs,
        without the mixture head's cost."""
        x, flags = self._inputs(z.unsqueeze(1), action.unsqueeze(1),
                                None if restart is None else restart.unsqueeze(1))
        h, c = state[0][0], state[1][0]
        if flags is not None:
            reset = flags[:, 0].view(-1, 1)
            h = torch.where(reset, torch.zeros_like(h), h)
            c = torch.where(reset, torch.zeros_like(c), c)
        # The single-step LSTM cell: the same arithmetic as nn.LSTM over one step (to ~1e-7), at a
        # fraction of its per-call overhead (0.19 vs 0.92 ms at batch 1 here).
        lstm = self.lstm
        h, c = torch.lstm_cell(x[:, 0], (h, c), lstm.weight_ih_l0, lstm.weight_hh_l0,
                               lstm.bias_ih_l0, lstm.bias_hh_l0)
        return h.unsqueeze(0), c.unsqueeze(0)

    def _inputs(self, z: Tensor, action: Tensor, restart: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Check shapes; return the LSTM input (B, T, input_size) and the restart mask (B, T) or None."""
        cfg = self.config
        if z.dim() != 3 or z.shape[-1] != cfg.z_size:
            raise ValueError(f"z must be (B, T, {cfg.z_size}), got {tuple(z.shape)}")
        if action.shape != (*z.shape[:2], cfg.action_size):
            raise ValueError(f"action must be (B, T, {cfg.action_size}) like z, got {tuple(action.shape)}")
        if not cfg.with_done:
            if restart is not None:
                raise ValueError("restart is an input of with_done (Doom) models only")
            return torch.cat([z, action], dim=-1), None
        if restart is None:
            # No silent default: a dream's first step must say restart=1, as the original's does.
            raise ValueError("a with_done (Doom) model needs the restart flags, (B, T)")
        if restart.shape != z.shape[:2]:
            raise ValueError(f"restart must be (B, T) like z, got {tuple(restart.shape)}")
        flags = restart > 0.5  # the original's test, so float flags work too
        x = torch.cat([z, action, flags.to(z.dtype).unsqueeze(-1)], dim=-1)
        return x, flags

    def raw_head(self, h: Tensor) -> tuple[MixtureParams, Tensor | None]:
        """The head on states (..., hidden) without the log-softmax: unnormalised mixture logits,
        for sampling (what a dream needs each step; the normalisation would only cost time)."""
        cfg = self.config
        y = self.head(h)
        done_logit = None
        if cfg.with_done:
            done_logit, y = y[..., 0], y[..., 1:]
        y = y.reshape(*y.shape[:-1], cfg.z_size, 3 * cfg.num_mixtures)
        logits, mu, logsigma = y.chunk(3, dim=-1)
        return MixtureParams(logits, mu, logsigma), done_logit

    def death_probability(self, h: Tensor) -> Tensor:
        """sigmoid of the done logit on states (..., hidden): the done row of the head alone, so a
        real-env rollout can watch M's foresight of death at the cost of one dot product a step."""
        if not self.config.with_done:
            raise ValueError("this M has no done head")
        return torch.sigmoid(F.linear(h, self.head.weight[:1], self.head.bias[:1])[..., 0])

    def _head(self, out: Tensor) -> tuple[MixtureParams, Tensor | None]:
        """LSTM outputs (B, T, hidden) -> mixture parameters and done logit, in the original layout."""
        (logits, mu, logsigma), done_logit = self.raw_head(out)
        return MixtureParams(F.log_softmax(logits, dim=-1), mu, logsigma), done_logit


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``values``, or over the entries where ``mask`` is true (0 if none is)."""
    if mask is None:
        return values.mean()
    if mask.shape != values.shape:
        raise ValueError(f"mask must be {tuple(values.shape)}, got {tuple(mask.shape)}")
    mask = mask.bool()
    # where, not values * mask: an inf in a padded step must not turn the loss into NaN. clamp: an
    # all-masked batch gives a zero loss rather than NaN.
    total = torch.where(mask, values, torch.zeros_like(values)).sum()
    return total / mask.sum().clamp_min(1).to(values.dtype)


def mixture_nll(params: MixtureParams, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean over batch, time and latent dims of -log sum_k pi_k N(target; mu_k, sigma_k).

    ``params`` each (..., z_size, K), ``target`` (..., z_size). Computed in log space with
    logsumexp, so it stays finite where pi_k * N(...) underflows to 0 (tiny sigma, far targets).
    ``mask`` (...) (e.g. (B, T)) restricts the mean to the steps where it is true; every latent
    dimension of a kept step counts.
    """
    if target.shape != params.mu.shape[:-1]:
        raise ValueError(f"target must be {tuple(params.mu.shape[:-1])}, got {tuple(target.shape)}")
    # (target - mu) * exp(-logsigma) rather than / exp(logsigma): same value, no division by 0.
    scaled = (target.unsqueeze(-1) - params.mu) * torch.exp(-params.logsigma)
    log_normal = -0.5 * scaled.square() - params.logsigma - _LOG_SQRT_2PI
    nll = -torch.logsumexp(params.logpi + log_normal, dim=-1)  # (..., z_size)
    return _masked_mean(nll.mean(dim=-1), mask)


def done_loss(
    done_logit: Tensor, done: Tensor, pos_weight: float = 10.0, mask: Tensor | None = None
) -> Tensor:
    """Binary cross-entropy with logits, positives weighted ``pos_weight`` (x10 in the original Doom M).

    Done steps are rare (one per episode), so without the weight M learns to never predict one.
    For 0/1 targets this equals the original's ``(1 + done * (w - 1)) * bce``. Mean over all entries,
    or over those where ``mask`` is true.
    """
    weight = torch.as_tensor(pos_weight, dtype=done_logit.dtype, device=done_logit.device)
    losses = F.binary_cross_entropy_with_logits(
        done_logit, done.to(done_logit.dtype), pos_weight=weight, reduction="none"
    )
    return _masked_mean(losses, mask)


def sample_next_z(
    params_at_step: MixtureParams, tau: float, generator: torch.Generator | None = None
) -> Tensor:
    """Sample z_{t+1} (B, z_size) from one step's mixtures (each (B, z_size, K)) at temperature tau.

    ``generator`` makes the draw reproducible (it must live on the tensors' device). See
    :func:`sample_with_noise` for the rule.
    """
    mu = params_at_step.mu
    shape = mu.shape[:-1]
    uniform = torch.rand(shape, generator=generator, dtype=mu.dtype, device=mu.device)
    normal = torch.randn(shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return sample_with_noise(params_at_step, tau, uniform, normal)


def sample_with_noise(params_at_step: MixtureParams, tau: float, uniform: Tensor, normal: Tensor) -> Tensor:
    """z_{t+1} (B, z_size) from one step's mixtures and given noise: ``uniform`` in [0, 1) and
    ``normal`` N(0, 1), each (B, z_size). ``logpi`` may be unnormalised log weights.

    As the original: the mixture logits are divided by tau before the softmax, one component is drawn
    per latent dimension (here by inverting the cumulative weights at ``uniform``), and
    z = mu + sigma * eps * sqrt(tau). tau -> 0 gives the mean of the most likely component; tau > 1
    makes dreams harder (more uncertain). Taking the noise as input lets each dream episode draw
    from its own stream, whatever other episodes share its batch.
    """
    if not tau > 0:  # also rejects NaN
        raise ValueError(f"tau must be > 0, got {tau}")
    logpi, mu, logsigma = params_at_step
    # softmax(logpi / tau) without normalising (so logpi may be unnormalised too): the drawn index
    # is where the cumulative weights pass uniform * their total. (torch.softmax over a last
    # dimension of 5 is slow on CPU; this is ~3x faster in a batched dream.)
    weights = torch.exp((logpi - logpi.amax(dim=-1, keepdim=True)) / tau)
    cumulative = weights.cumsum(dim=-1)
    threshold = uniform.unsqueeze(-1) * cumulative[..., -1:]
    index = (cumulative < threshold).sum(dim=-1, keepdim=True)
    index = index.clamp_(max=logpi.shape[-1] - 1)  # (rounding)
    chosen_mu = mu.gather(-1, index).squeeze(-1)
    chosen_sigma = logsigma.gather(-1, index).squeeze(-1).exp()
    return chosen_mu + chosen_sigma * normal * math.sqrt(tau)
