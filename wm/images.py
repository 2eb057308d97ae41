"""Pictures written without a screen: frame grids as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wm.files import atomic_write


def grid(rows: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Stack rows of uint8 frames (each row (N, H, W, 3)) into one picture with white gaps."""
    n, h, w, _ = rows[0].shape
    out = np.full((len(rows) * (h + gap) - gap, n * (w + gap) - gap, 3), 255, np.uint8)
    for r, frames in enumerate(rows):
        for c, frame in enumerate(frames):
            out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = frame
    return out


def save_png(path: Path, picture: np.ndarray, scale: int = 2) -> Path:
    """Write an (H, W, 3) uint8 picture as PNG, enlarged ``scale`` times (nearest neighbour); returns
    ``path``."""
    image = Image.fromarray(picture)
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    atomic_write(path, lambda f: image.save(f, format="PNG"))
    return path
