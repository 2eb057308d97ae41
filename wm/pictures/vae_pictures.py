"""What V learned, as pictures: real frames over their reconstructions, and a latent traversal
(one z dimension varied at a time from a real frame's latent, the rest held)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wm.models.vae import ConvVAE, to_frames, to_tensor
from wm.pictures.images import grid, labelled


def sample_frames(run: str | Path, count: int) -> np.ndarray:
    """``count`` frames (N, 64, 64, 3) spread over the run's recorded episodes and over time in each."""
    from wm.data.record import read_episode
    from wm.data.recordset import episode_files

    paths = episode_files(run)
    picks = np.linspace(0, len(paths) - 1, count).round().astype(int)
    frames = []
    for k, i in enumerate(picks):
        obs = read_episode(paths[i]).obs
        # Later and later in the episode from one pick to the next: starts, middles, ends.
        frames.append(obs[min(len(obs) - 1, int(len(obs) * (k + 0.5) / count))])
    return np.stack(frames)


RECONSTRUCTION_ROWS = ("real", "V's reconstruction")


def traversal_labels(dims: list[int], values: list[float]) -> tuple[list[str], list[str]]:
    """(row labels, column labels) of a latent traversal: ``z[d]`` per row, the value per column."""
    return [f"z[{d}]" for d in dims], [f"{v:+.3g}" if v else "0" for v in values]


@torch.inference_mode()
def reconstruction_grid(vae: ConvVAE, frames: np.ndarray, per_row: int = 8,
                        labels: bool = True) -> np.ndarray:
    """Rows of real frames, each over V's reconstruction of them (from the mean latent); ``labels``
    names each row ("real", "V's reconstruction") in a margin on the left."""
    mu, _ = vae.eval().encode(to_tensor(frames))
    reconstructions = to_frames(vae.decode(mu))
    rows = []
    for start in range(0, len(frames), per_row):
        rows += [frames[start : start + per_row], reconstructions[start : start + per_row]]
    if len(rows) > 2 and len(rows[-1]) < per_row:  # grid() needs full rows: drop a short last pair
        rows = rows[:-2]
    picture = grid(rows)
    return labelled(picture, RECONSTRUCTION_ROWS * (len(rows) // 2)) if labels else picture


@torch.inference_mode()
def latent_traversal(vae: ConvVAE, frames: np.ndarray, dims: int = 8, steps: int = 9,
                     span: float = 3.0, labels: bool = True) -> tuple[np.ndarray, list[int]]:
    """One row per z dimension: the first frame's latent with that dimension set to values from
    -``span`` to +``span``. The dimensions shown are those whose mean varies most over ``frames``
    (the ones V uses; a VAE leaves some near the prior). Returns the picture and the dimensions;
    ``labels`` names each row ``z[d]`` on the left and each column's value over the picture."""
    mu, _ = vae.eval().encode(to_tensor(frames))
    chosen = torch.argsort(mu.var(dim=0), descending=True)[:dims].tolist()
    values = torch.linspace(-span, span, steps)
    rows = []
    for d in chosen:
        z = mu[:1].repeat(steps, 1)
        z[:, d] = values
        rows.append(to_frames(vae.decode(z)))
    picture = grid(rows)
    if labels:
        picture = labelled(picture, *traversal_labels(chosen, values.tolist()))
    return picture, chosen
