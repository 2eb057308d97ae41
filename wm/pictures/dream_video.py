"""M's dream beside the real episode it started from: the dream starts from V's latent of the
episode's first frame and is driven by the same actions, M sampling each next latent at
temperature tau; V decodes both. Where the two drift apart shows what M has (not) learned."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from wm.models.mdrnn import MDRNN, sample_next_z
from wm.models.vae import ConvVAE, to_frames, to_tensor
from wm.pictures.panels import Bar, action_bars, compose


@torch.inference_mode()
def dream_beside(vae: ConvVAE, mdrnn: MDRNN, frames: Sequence[np.ndarray], actions: Sequence[np.ndarray],
                 tau: float, seed: int = 0, every: int = 2, panel: int = 128,
                 action_names: Sequence[str] = (),
                 env: str | None = None) -> tuple[list[Image.Image], int | None]:
    """Video frames [real | V decodes real | M dreams] for every ``every``-th step of the episode, and
    the step at which M predicted death (Doom's M; None if it never did or cannot). After that the
    dream panel holds its last frame. Under them the actions: as ``env`` plays them (Doom's left, stay
    or right; CarRacing's steer, gas, brake) when given, else the controller's values by ``action_names``."""

    def bars(action: np.ndarray) -> list[Bar]:
        if env is not None:
            return action_bars(env, action)
        return [Bar(name, float(v)) for name, v in zip(action_names, np.reshape(action, -1), strict=True)]

    vae, mdrnn = vae.eval(), mdrnn.eval()
    generator = torch.Generator().manual_seed(seed)
    kept = list(range(0, len(frames), every))
    decoded_real = np.concatenate([
        to_frames(vae.decode(vae.encode(to_tensor(np.stack([frames[i] for i in kept[k : k + 256]])))[0]))
        for k in range(0, len(kept), 256)
    ])
    with_done = mdrnn.config.with_done
    z = vae.encode(to_tensor(frames[0][None]))[0]
    state = mdrnn.initial_state(1)
    restart = torch.ones(1) if with_done else None
    death, p_death, dream = None, 0.0, to_frames(vae.decode(z))[0]
    video = []
    for t in range(len(frames)):
        if t % every == 0:
            if death is None:
                dream = to_frames(vae.decode(z))[0]
            note = f"step {t}"
            if with_done:
                note += f"   M: p(death) {p_death:.2f}" if death is None else f"   M: died at step {death}"
            video.append(compose([("real", frames[t]), ("V decodes", decoded_real[t // every]),
                                  (f"M dreams, tau {tau:g}", dream)], panel, bars(actions[t]), note))
        if death is not None:
            continue
        action = torch.as_tensor(np.asarray(actions[t], dtype=np.float32)).reshape(1, -1).clamp(-1, 1)
        params, done_logit, state = mdrnn.step(z, action, state, restart)
        restart = torch.zeros(1) if with_done else None
        z = sample_next_z(params, tau, generator)
        if done_logit is not None:
            p_death = float(torch.sigmoid(done_logit[0]))
            if p_death > 0.5:
                death = t + 1
    return video, death
