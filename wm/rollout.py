"""Episodes of the full agent (V encodes, C acts on [z, (c,) h], M remembers) in a real env.

The step order is the original's: the action comes from (z_t, h_t); then h_{t+1} = M(z_t, a_t). V and
M are frozen, on CPU, in inference mode; one agent serves many controllers (ES candidates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from wm.controller import LinearController, spec_for
from wm.mdrnn import MDRNN
from wm.vae import ConvVAE, to_tensor


@dataclass
class EpisodeResult:
    """What one episode of the agent scored."""

    total_reward: float
    steps: int


class WorldModelAgent:
    """V + M + a controller, acting on one env's frames."""

    def __init__(self, vae: ConvVAE, mdrnn: MDRNN):
        self.vae, self.mdrnn = vae.eval(), mdrnn.eval()
        cfg = mdrnn.config
        self.spec = spec_for(cfg.z_size, cfg.hidden_size, cfg.action_size, cfg.with_done)

    @torch.inference_mode()
    def run_episode(self, env: gym.Env, params: np.ndarray, seed: int,
                    on_step: Callable[[np.ndarray, torch.Tensor, np.ndarray], None] | None = None,
                    ) -> EpisodeResult:
        """Play one episode with the controller ``params``; returns its return and length.
        ``on_step(frame, z, action)`` sees every step before the env takes it (for videos)."""
        controller = LinearController(self.spec, params)
        frame, _ = env.reset(seed=seed)
        h, c = self.mdrnn.initial_state(1)
        restart = torch.ones(1) if self.mdrnn.config.with_done else None
        total, steps, done = 0.0, 0, False
        while not done:
            z, _ = self.vae.encode(to_tensor(frame[None]))
            action = controller.act(controller.features(z, h[0], c[0]))
            if on_step is not None:
                on_step(frame, z, action[0].numpy())
            frame, reward, terminated, truncated, _ = env.step(action[0].numpy())
            h, c = self.mdrnn.advance(z, action, (h, c), restart)
            if restart is not None:
                restart = torch.zeros(1)
            total += float(reward)
            steps += 1
            done = terminated or truncated
        return EpisodeResult(total, steps)


Job = tuple[Any, np.ndarray, int]  # (key, controller parameters, env seed)


class LockstepAgent:
    """Plays several episodes at once, one per env, stepping them together so that V and M run
    batched (V's encoder costs ~1.3 ms per frame alone but ~0.4 ms in a batch of 8). A slot whose
    episode ends takes the next job at once. Batched convolutions round differently from single
    ones, so returns depend slightly on which episodes share a batch: use one env per worker where
    runs must reproduce bit for bit."""

    def __init__(self, agent: WorldModelAgent, envs: list[gym.Env]):
        self.agent, self.envs = agent, envs

    @torch.inference_mode()
    def run(self, next_job: Callable[[], Job | None]) -> Iterator[tuple[Any, EpisodeResult]]:
        """Play jobs until ``next_job`` returns None; yields (key, result) as episodes end."""
        agent, k = self.agent, len(self.envs)
        with_done = agent.mdrnn.config.with_done
        h, c = agent.mdrnn.initial_state(k)
        frames: list[np.ndarray | None] = [None] * k
        controllers: list[LinearController | None] = [None] * k
        keys: list[Any] = [None] * k
        totals, steps = [0.0] * k, [0] * k
        first = torch.zeros(k, dtype=torch.bool)
        active = [False] * k
        exhausted = False

        def start(i: int) -> None:
            nonlocal exhausted
            job = None if exhausted else next_job()
            if job is None:
                exhausted, active[i] = True, False
                return
            keys[i], params, seed = job
            controllers[i] = LinearController(agent.spec, params)
            frames[i], _ = self.envs[i].reset(seed=seed)
            h[:, i], c[:, i] = 0.0, 0.0
            totals[i], steps[i], first[i], active[i] = 0.0, 0, True, True

        for i in range(k):
            start(i)
        while any(active):
            rows = [i for i in range(k) if active[i]]
            z, _ = agent.vae.encode(to_tensor(np.stack([frames[i] for i in rows])))
            actions = torch.cat([
                controllers[i].act(controllers[i].features(z[j : j + 1], h[0, i : i + 1], c[0, i : i + 1]))
                for j, i in enumerate(rows)
            ])
            restart = first[rows].float() if with_done else None
            new_h, new_c = agent.mdrnn.advance(z, actions, (h[:, rows], c[:, rows]), restart)
            h[:, rows], c[:, rows] = new_h, new_c
            first[rows] = False
            for j, i in enumerate(rows):
                frames[i], reward, terminated, truncated, _ = self.envs[i].step(actions[j].numpy())
                totals[i] += float(reward)
                steps[i] += 1
                if terminated or truncated:
                    yield keys[i], EpisodeResult(totals[i], steps[i])
                    start(i)
