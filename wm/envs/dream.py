"""The dream: Doom TakeCover as M hallucinates it, for training C without the game.

Each step the controller's action a_t (from z_t, c_t, h_t, as in the real game) and z_t go through
M; the new state gives the mixture over z_{t+1}, sampled at temperature tau, and the done logit: the
episode ends when M's probability of death is above 0.5, or at the step cap (2100, as the game).
Reward is +1 per step survived. Episodes start from a recorded first frame's latent, sampled from
its (mu, sigma) as the original did. The action reaches M as the controller gave it, in [-1, 1]: M
learned the game's left / none / right thresholds (+-1/3) from the recorded actions, which are the
raw values the real env maps the same way.

:class:`DreamBatch` steps many episodes (of many controllers) together in one tensor, finished ones
dropped from the batch; :class:`DreamEnv` is one episode of it behind gymnasium's ``Env``;
:class:`DreamEvaluate` plays ES jobs with it. Every episode draws its noise from its own seed, so an
episode plays the same whether it runs alone or beside others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from wm.core.errors import WMError
from wm.models.controller import ControllerSpec, spec_for, stack_controllers
from wm.models.mdrnn import MDRNN, sample_with_noise

DOOM_MAX_STEPS = 2100
NOISE_BLOCK = 64  # steps of noise drawn at a time from an episode's generator


def initial_latents_path(run: str | Path) -> Path:
    return Path(run) / "series" / "initial_z.npz"


def load_initial_latents(run: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) of every recorded episode's first frame, each (N, z_size), from the series."""
    path = initial_latents_path(run)
    if not path.is_file():
        # (wm.series writes them; if an earlier stage is missing, it says which)
        raise WMError(f"no initial latents at {path}: run `python -m wm.series --run {run}` first")
    try:
        with np.load(path, allow_pickle=False) as data:
            mu, logvar = data["mu"].astype(np.float32), data["logvar"].astype(np.float32)
    except (OSError, ValueError, KeyError) as err:
        raise WMError(f"{path} is unreadable ({err}): run `python -m wm.series --run {run}` again") from err
    if mu.ndim != 2 or mu.shape != logvar.shape or len(mu) == 0 or not np.isfinite(mu).all():
        raise WMError(f"{path} holds no valid latents: run `python -m wm.series --run {run}` again")
    return mu, logvar


def check_dream_model(mdrnn: MDRNN, z_size: int) -> None:
    """One clear error for an M that cannot dream Doom (CarRacing's has no done head)."""
    if not mdrnn.config.with_done:
        raise WMError("this M has no done head (it comes from a CarRacing run): the dream needs the Doom "
                      "TakeCover pipeline's M (--env doom)")
    if z_size != mdrnn.config.z_size:
        raise WMError(f"the initial latents have {z_size} dimensions but M expects {mdrnn.config.z_size}: "
                      "they come from different runs")


def check_dream_inputs(run: str | Path) -> None:
    """On rank 0, before any worker starts: one clear error when the run cannot dream (no M, a
    CarRacing M, no initial latents), rather than one per worker."""
    from wm.models.weights import rnn_weights

    config = rnn_weights(run)["config"]
    mu, _ = load_initial_latents(run)
    if not config.get("with_done"):
        raise WMError("this run's M has no done head (it comes from a CarRacing run): the dream needs "
                      "the Doom TakeCover pipeline's M (--env doom)")
    if mu.shape[1] != config["z_size"]:
        raise WMError(f"the initial latents have {mu.shape[1]} dimensions but M expects {config['z_size']}: "
                      f"run `python -m wm.series --run {run}` again")


class DreamBatch:
    """``slots`` dream episodes stepped together. Start one with :meth:`reset` (slot, seed), step
    the active ones with :meth:`step`; a slot is free again once its episode ends."""

    def __init__(self, mdrnn: MDRNN, initial_mu: np.ndarray, initial_logvar: np.ndarray, tau: float,
                 slots: int, max_steps: int = DOOM_MAX_STEPS):
        if not tau > 0:
            raise WMError(f"the temperature must be > 0, got {tau}")
        if slots < 1 or max_steps < 1:
            raise WMError(f"slots and max_steps must be at least 1, got {slots} and {max_steps}")
        check_dream_model(mdrnn, initial_mu.shape[1])
        self.mdrnn, self.tau, self.slots, self.max_steps = mdrnn.eval(), float(tau), slots, max_steps
        cfg = mdrnn.config
        self.z_size, self.hidden_size, self.action_size = cfg.z_size, cfg.hidden_size, cfg.action_size
        self.initial_mu, self.initial_sigma = initial_mu, np.exp(initial_logvar / 2.0)
        self.z = torch.zeros(slots, cfg.z_size)
        self.h = torch.zeros(slots, cfg.hidden_size)
        self.c = torch.zeros(slots, cfg.hidden_size)
        self.first = torch.zeros(slots, dtype=torch.bool)
        self.steps = np.zeros(slots, dtype=np.int64)
        self.active = np.zeros(slots, dtype=bool)
        # Each slot's next NOISE_BLOCK steps of (uniform, normal) noise from its episode's generator.
        self._rngs: list[np.random.Generator | None] = [None] * slots
        self._uniform = torch.zeros(slots, NOISE_BLOCK, cfg.z_size)
        self._normal = torch.zeros(slots, NOISE_BLOCK, cfg.z_size)

    def reset(self, slot: int, seed: int) -> None:
        """Start an episode in ``slot`` from the recorded first latent and noise of ``seed``."""
        rng = np.random.default_rng(seed)
        k = int(rng.integers(len(self.initial_mu)))
        eps = rng.standard_normal(self.z_size).astype(np.float32)
        self.z[slot] = torch.from_numpy(self.initial_mu[k] + self.initial_sigma[k] * eps)
        self.h[slot], self.c[slot] = 0.0, 0.0
        self.first[slot] = True
        self.steps[slot], self.active[slot] = 0, True
        self._rngs[slot] = rng
        self._refill(slot)

    def _refill(self, slot: int) -> None:
        rng = self._rngs[slot]
        shape = (NOISE_BLOCK, self.z_size)
        self._uniform[slot] = torch.from_numpy(rng.random(shape, dtype=np.float32))
        self._normal[slot] = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))

    def features(self, rows: torch.Tensor | slice) -> torch.Tensor:
        """C's inputs [z, c, h] (n, z + 2 hidden) of the given slots."""
        return torch.cat([self.z[rows], self.c[rows], self.h[rows]], dim=1)

    @torch.inference_mode()
    def step(self, rows: np.ndarray, actions: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Advance the active slots ``rows`` by one step with ``actions`` (n, action_size); returns
        (terminated, truncated) per row. Reward is 1 per step."""
        all_rows = len(rows) == self.slots
        index: torch.Tensor | slice = slice(None) if all_rows else torch.from_numpy(rows)
        actions = actions.clamp(-1.0, 1.0)
        h, c = self.mdrnn.advance(self.z[index], actions,
                                  (self.h[index].unsqueeze(0), self.c[index].unsqueeze(0)),
                                  self.first[index].float())
        params, done_logit = self.mdrnn.raw_head(h[0])
        offsets = self.steps[rows] % NOISE_BLOCK
        pick = (torch.from_numpy(rows), torch.from_numpy(offsets))
        z = sample_with_noise(params, self.tau, self._uniform[pick], self._normal[pick])
        self.z[index], self.h[index], self.c[index] = z, h[0], c[0]
        self.first[index] = False
        self.steps[rows] += 1
        for slot in rows[self.steps[rows] % NOISE_BLOCK == 0]:
            self._refill(int(slot))
        terminated = (done_logit > 0).numpy()  # sigmoid(logit) > 0.5
        truncated = ~terminated & (self.steps[rows] >= self.max_steps)
        self.active[rows[terminated | truncated]] = False
        return terminated, truncated


class DreamEnv(gym.Env):
    """One dream episode at a time behind gymnasium's API: observation [z, c, h] (float32, what
    Doom's controller reads), action in [-1, 1], reward +1 per step."""

    metadata = {"render_modes": []}

    def __init__(self, mdrnn: MDRNN, initial_mu: np.ndarray, initial_logvar: np.ndarray,
                 tau: float = 1.15, max_steps: int = DOOM_MAX_STEPS):
        self.dream = DreamBatch(mdrnn, initial_mu, initial_logvar, tau, slots=1, max_steps=max_steps)
        size = self.dream.z_size + 2 * self.dream.hidden_size
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.dream.action_size,), np.float32)

    @classmethod
    def from_run(cls, run: str | Path, tau: float = 1.15, max_steps: int = DOOM_MAX_STEPS) -> DreamEnv:
        """The dream of a run's trained M, started from its recorded first frames."""
        from wm.models.weights import load_mdrnn

        mdrnn, _ = load_mdrnn(run)
        mu, logvar = load_initial_latents(run)
        return cls(mdrnn, mu, logvar, tau, max_steps)

    def _observation(self) -> np.ndarray:
        return self.dream.features(slice(0, 1))[0].numpy().copy()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        # Unseeded resets continue the env's own generator (seeded by the first seeded reset).
        episode_seed = seed if seed is not None else int(self.np_random.integers(2**31))
        self.dream.reset(0, episode_seed)
        return self._observation(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.dream.active[0]:
            raise RuntimeError("the episode has ended: call reset()")
        a = torch.as_tensor(np.asarray(action, dtype=np.float32).reshape(1, -1))
        terminated, truncated = self.dream.step(np.zeros(1, dtype=np.int64), a)
        return self._observation(), 1.0, bool(terminated[0]), bool(truncated[0]), {}


Job = tuple[Any, np.ndarray, int]  # (key, controller parameters, episode seed)


class DreamEvaluate:
    """The ES trainer's batch evaluator in the dream: up to ``slots`` episodes at once, each with
    its own controller; a slot takes the next job as soon as its episode ends."""

    def __init__(self, dream: DreamBatch, spec: ControllerSpec):
        if spec.input_size != dream.z_size + 2 * dream.hidden_size:
            raise WMError(f"a controller with {spec.input_size} inputs cannot act in this dream")
        self.dream, self.spec, self.slots = dream, spec, dream.slots

    @classmethod
    def from_run(cls, run: str | Path, tau: float, slots: int,
                 max_steps: int = DOOM_MAX_STEPS) -> DreamEvaluate:
        from wm.models.weights import load_mdrnn

        mdrnn, _ = load_mdrnn(run)
        mu, logvar = load_initial_latents(run)
        cfg = mdrnn.config
        spec = spec_for(cfg.z_size, cfg.hidden_size, cfg.action_size, cfg.with_done)
        return cls(DreamBatch(mdrnn, mu, logvar, tau, slots, max_steps), spec)

    @torch.inference_mode()
    def run(self, next_job: Callable[[], Job | None]) -> Iterator[tuple[Any, tuple[float, int]]]:
        """Play jobs until ``next_job`` returns None; yields (key, (return, steps)) as episodes end."""
        dream, spec = self.dream, self.spec
        weights = torch.zeros(self.slots, spec.action_size, spec.input_size)
        bias = torch.zeros(self.slots, spec.action_size)
        keys: list[Any] = [None] * self.slots
        exhausted = False

        def start(slot: int) -> None:
            nonlocal exhausted
            job = None if exhausted else next_job()
            if job is None:
                exhausted = True
                return
            keys[slot], params, seed = job
            weights[slot], bias[slot] = stack_controllers(spec, [params])
            dream.reset(slot, seed)

        for slot in range(self.slots):
            start(slot)
        while dream.active.any():
            rows = np.flatnonzero(dream.active)
            index = torch.from_numpy(rows)
            x = dream.features(index)
            y = torch.bmm(weights[index], x.unsqueeze(-1)).squeeze(-1)
            actions = torch.tanh(y + bias[index] if spec.bias else y)
            terminated, truncated = dream.step(rows, actions)
            for slot in rows[terminated | truncated]:
                yield keys[slot], (float(dream.steps[slot]), int(dream.steps[slot]))
                start(int(slot))
