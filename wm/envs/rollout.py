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

from wm.envs.foresight import EpisodeForesight, as_details, episode_foresight
from wm.models.controller import LinearController, spec_for
from wm.models.mdrnn import MDRNN
from wm.models.vae import ConvVAE, to_tensor


@dataclass
class EpisodeResult:
    """What one episode of the agent scored, and how M foresaw its end (Doom's M only)."""

    total_reward: float
    steps: int
    foresight: EpisodeForesight | None = None

    def outcome(self) -> tuple[float, int, dict[str, Any] | None]:
        """(return, steps, foresight as plain values): what an ES evaluator reports of an episode."""
        return self.total_reward, self.steps, None if self.foresight is None else as_details(self.foresight)


# A policy acting on the agent's view: (z, h, c) of one step -> the action (1, action_size), float32.
Act = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class WorldModelAgent:
    """V + M + a controller, acting on one env's frames."""

    def __init__(self, vae: ConvVAE, mdrnn: MDRNN):
        self.vae, self.mdrnn = vae.eval(), mdrnn.eval()
        cfg = mdrnn.config
        self.spec = spec_for(cfg.z_size, cfg.hidden_size, cfg.action_size, cfg.with_done)

    def run_episode(self, env: gym.Env, params: np.ndarray, seed: int,
                    on_step: Callable[[np.ndarray, torch.Tensor, np.ndarray], None] | None = None,
                    ) -> EpisodeResult:
        """Play one episode with the controller ``params``; returns its return and length.
        ``on_step(frame, z, action)`` sees every step before the env takes it (for videos)."""
        controller = LinearController(self.spec, params)
        return self.play(env, lambda z, h, c: controller.act(controller.features(z, h, c)), seed, on_step)

    @torch.inference_mode()
    def play(self, env: gym.Env, act: Act, seed: int,
             on_step: Callable[[np.ndarray, torch.Tensor, np.ndarray], None] | None = None) -> EpisodeResult:
        """Play one episode with any policy on the agent's view (V and M run either way, so a policy
        that ignores them, the random one, is seen through M too)."""
        frame, _ = env.reset(seed=seed)
        h, c = self.mdrnn.initial_state(1)
        with_done = self.mdrnn.config.with_done
        restart = torch.ones(1) if with_done else None
        total, steps, done, terminated = 0.0, 0, False, False
        death: list[float] = []  # M's probability that each step ended the episode
        while not done:
            z, _ = self.vae.encode(to_tensor(frame[None]))
            action = act(z, h[0], c[0])
            if on_step is not None:
                on_step(frame, z, action[0].numpy())
            frame, reward, terminated, truncated, _ = env.step(action[0].numpy())
            h, c = self.mdrnn.advance(z, action, (h, c), restart)
            if with_done:
                restart = torch.zeros(1)
                death.append(float(self.mdrnn.death_probability(h[0])[0]))
            total += float(reward)
            steps += 1
            done = terminated or truncated
        return EpisodeResult(total, steps, episode_foresight(death, terminated) if with_done else None)


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
        death: list[list[float]] = [[] for _ in range(k)]  # M's death probability after each step
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
            death[i] = []

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
            p = agent.mdrnn.death_probability(new_h[0]).tolist() if with_done else []
            for j, i in enumerate(rows):
                frames[i], reward, terminated, truncated, _ = self.envs[i].step(actions[j].numpy())
                totals[i] += float(reward)
                steps[i] += 1
                if with_done:
                    death[i].append(p[j])
                if terminated or truncated:
                    seen = episode_foresight(death[i], terminated) if with_done else None
                    yield keys[i], EpisodeResult(totals[i], steps[i], seen)
                    start(i)
