"""Stage 2: train V, the ConvVAE, on every frame of RUN/record/, streamed from disk.

    python -m wm.vae_train --run runs/doom [--epochs 3] [--device auto]

Frames are read a few episodes at a time and shuffled across them, so memory does not grow with the
data set. After every epoch: a checkpoint (resumed by running the same command again), the weights
RUN/vae/vae.pt, and RUN/vae/reconstructions/epoch_NNN.png (real frames over their reconstructions).
Losses per step go to RUN/vae/metrics.csv and TensorBoard (RUN/vae/tensorboard). A corrupt episode
file stops training with its name (re-run wm.extract to remake it); the last checkpoint is kept.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wm.core.config import VAE_FIXED_FIELDS, VAETrainConfig, as_dict, parse_stage_config
from wm.core.errors import WMError
from wm.data.record import iter_frame_batches, read_episode
from wm.data.recordset import episode_files, frame_count
from wm.data.rundir import locked, make_stage_dir, start_stage
from wm.models.training import Training, save_weights, train
from wm.models.vae import ConvVAE, VAEConfig, to_frames, to_tensor, vae_loss
from wm.pictures.images import grid, save_png
from wm.stages import ddp

VAE_DIR = "vae"
WEIGHTS_NAME = "vae.pt"
PREVIEW_FRAMES = 8


def validate_config(cfg: VAETrainConfig) -> None:
    """One clear error for values no training can run with."""
    checks = [
        (cfg.epochs is not None and cfg.epochs >= 1, f"--epochs must be at least 1, got {cfg.epochs}"),
        (cfg.z_size is not None and cfg.z_size >= 1, f"--z-size must be at least 1, got {cfg.z_size}"),
        (cfg.batch_size >= 1, f"--batch-size must be at least 1, got {cfg.batch_size}"),
        (cfg.episodes is not None and cfg.episodes >= 0, f"--episodes must be >= 0, got {cfg.episodes}"),
        (math.isfinite(cfg.lr) and cfg.lr > 0, f"--lr must be a positive number, got {cfg.lr}"),
        (math.isfinite(cfg.kl_tolerance) and cfg.kl_tolerance >= 0,
         f"--kl-tolerance must be >= 0, got {cfg.kl_tolerance}"),
        (cfg.shuffle_episodes >= 1, f"--shuffle-episodes must be at least 1, got {cfg.shuffle_episodes}"),
        (cfg.threads >= 0, f"--threads must be >= 0, got {cfg.threads}"),
        (math.isfinite(cfg.log_every) and cfg.log_every >= 0,
         f"--log-every must be >= 0, got {cfg.log_every}"),
    ]
    for ok, message in checks:
        if not ok:
            raise WMError(message)


def preview_frames(paths: list[Path]) -> np.ndarray:
    """A fixed set of frames to reconstruct after every epoch: spread over the first episodes."""
    picked = []
    for path in paths[:PREVIEW_FRAMES]:
        obs = read_episode(path).obs
        picked.append(obs[len(obs) // 2])
    while len(picked) < PREVIEW_FRAMES:
        picked.append(picked[-1])
    return np.stack(picked)


class _GivenNoise(nn.Module):
    """V's forward with the reparameterisation noise given: data-parallel ranks draw the whole
    batch's noise, as one process does, and DistributedDataParallel runs a module's forward."""

    def __init__(self, vae: ConvVAE):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.vae.encode(x)
        z = mu + torch.exp(0.5 * logvar) * eps  # (as ConvVAE.forward, with eps for randn_like(mu))
        return self.vae.decode(z), mu, logvar


def train_vae(cfg: VAETrainConfig, ranks: ddp.Ranks | None = None) -> dict[str, Any]:
    """Train (or continue training) V on the run's episodes; returns a summary. With ``ranks`` of
    more than one, data-parallel (see :mod:`wm.stages.ddp`)."""
    ranks = ranks or ddp.Ranks()
    device = ranks.device(cfg.device, cfg.threads)
    paths = episode_files(cfg.run, rounds=False)  # (V learns the random policy's frames, then stays)
    if cfg.episodes:
        paths = paths[: cfg.episodes]
    # (reads episodes: a bad one is refused before --fresh moves anything)
    preview = ranks.on_writer(lambda: preview_frames(paths))
    out = ranks.on_writer(lambda: make_stage_dir(cfg.run, VAE_DIR))
    with ranks.writer_lock(lambda: locked(out)):
        ranks.on_writer(lambda: start_stage(cfg.run, "vae", out, as_dict(cfg), VAE_FIXED_FIELDS, cfg.fresh))
        torch.manual_seed(cfg.seed)
        model = ConvVAE(VAEConfig(cfg.z_size)).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        if ranks.active:
            ranks.start_torch(device)
            net = ranks.wrap(_GivenNoise(model), device)
        frames = frame_count(cfg.run)
        if frames and cfg.episodes:  # (an estimate, for the progress line)
            frames = frames * len(paths) // len(episode_files(cfg.run, rounds=False))
        shown = f"{frames:,}" if frames else "?"
        on = f" x {ranks.size} ranks" if ranks.active else ""
        ranks.say(f"[vae] {len(paths)} episodes, {shown} frames; z {cfg.z_size}, batch {cfg.batch_size}, "
                  f"{cfg.epochs} epochs on {device}{on}")

        def batches(epoch: int) -> Iterator[Any]:
            rng = np.random.default_rng([cfg.seed, epoch])  # the same order on every run
            if ranks.active:  # (the same batches, each rank holding its rows)
                return ddp.frame_batches(paths, cfg.batch_size, rng, cfg.shuffle_episodes, ranks)
            return iter_frame_batches(paths, cfg.batch_size, rng, cfg.shuffle_episodes)

        def step(frames: np.ndarray) -> dict[str, torch.Tensor]:
            x = to_tensor(frames, device)
            recon, mu, logvar = model(x)
            losses = vae_loss(recon, x, mu, logvar, cfg.kl_tolerance)
            optimizer.zero_grad(set_to_none=True)
            losses.total.backward()
            optimizer.step()
            return {"loss": losses.total.detach(), "reconstruction": losses.reconstruction.detach(),
                    "kl": losses.kl.detach()}

        def ranks_step(batch: tuple[np.ndarray, int]) -> dict[str, torch.Tensor]:
            """One step of the global batch: this rank's rows, DDP averaging the gradients."""
            frames, n = batch
            rows = ranks.rows(n)
            x = to_tensor(frames, device)
            recon, mu, logvar = net(x, ddp.global_noise(n, (cfg.z_size,), rows, device))
            losses = vae_loss(recon, x, mu, logvar, cfg.kl_tolerance)
            here = rows.stop - rows.start
            optimizer.zero_grad(set_to_none=True)
            ddp.weighted_loss(losses.total, ranks.weight(n), [recon, mu, logvar]).backward()
            optimizer.step()
            parts = [losses.reconstruction, losses.kl] if here else [torch.zeros(()), torch.zeros(())]
            reconstruction, kl = (ranks.sum([p * here for p in parts]) / n).float()
            return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}

        def end_of_epoch(epoch: int) -> None:
            save_weights(out / WEIGHTS_NAME, "vae", {"z_size": cfg.z_size}, model, epochs=epoch,
                         env=cfg.env)
            with torch.no_grad():
                mu, _ = model.encode(to_tensor(preview, device))
                recon = to_frames(model.decode(mu))
            (out / "reconstructions").mkdir(exist_ok=True)
            save_png(out / "reconstructions" / f"epoch_{epoch:03d}.png", grid([preview, recon]))

        summary = train(Training(
            name="vae", directory=out, model=model, optimizer=optimizer, epochs=cfg.epochs,
            batches=batches, step=ranks_step if ranks.active else step,
            samples=(lambda b: b[1]) if ranks.active else len,
            end_of_epoch=end_of_epoch if ranks.is_writer else lambda epoch: None, writes=ranks.is_writer,
            log_every=cfg.log_every, steps_per_epoch=math.ceil(frames / cfg.batch_size) if frames else None,
        ))
    ranks.say(f"[vae] weights: {out / WEIGHTS_NAME}; reconstructions: {out / 'reconstructions'}")
    return summary


def parse_config(argv: list[str] | None) -> VAETrainConfig:
    return parse_stage_config("vae", VAETrainConfig, argv, "python -m wm.vae_train", __doc__,
                              validate_config)


def main(argv: list[str] | None = None) -> int:
    return ddp.stage_main("wm.vae_train", "vae", argv, parse_config, train_vae)


if __name__ == "__main__":
    sys.exit(main())
