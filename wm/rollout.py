"""Episodes of the full agent (V encodes, C acts on [z, (c,) h], M remembers) in a real env.

The step order is the original's: the action comes from (z_t, h_t); then h_{t+1} = M(z_t, a_t). V and
M are frozen, on CPU, in inference mode; one agent serves many controllers (ES candidates).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    def run_episode(self, env: gym.Env, params: np.ndarray, seed: int) -> EpisodeResult:
        """Play one episode with the controller ``params``; returns its return and length."""
        controller = LinearController(self.spec, params)
        frame, _ = env.reset(seed=seed)
        h, c = self.mdrnn.initial_state(1)
        restart = torch.ones(1) if self.mdrnn.config.with_done else None
        total, steps, done = 0.0, 0, False
        while not done:
            z, _ = self.vae.encode(to_tensor(frame[None]))
            action = controller.act(controller.features(z, h[0], c[0]))
            frame, reward, terminated, truncated, _ = env.step(action[0].numpy())
            h, c = self.mdrnn.advance(z, action, (h, c), restart)
            if restart is not None:
                restart = torch.zeros(1)
            total += float(reward)
            steps += 1
            done = terminated or truncated
        return EpisodeResult(total, steps)
