"""Pictures written without a screen: frame grids as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from wm.data.files import atomic_write


def grid(rows: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Stack rows of uint8 frames (each row (N, H, W, 3)) into one picture with white gaps."""
    n, h, w, _ = rows[0].shape
    out = np.full((len(rows) * (h + gap) - gap, n * (w + gap) - gap, 3), 255, np.uint8)
    for r, frames in enumerate(rows):
        for c, frame in enumerate(frames):
            out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = frame
    return out


def labelled(picture: np.ndarray, rows: Sequence[str], columns: Sequence[str] = (), gap: int = 2,
             header: int = 14) -> np.ndarray:
    """``picture`` (a :func:`grid` of equal cells split by ``gap``) with a white margin on the left
    naming each row (its label centred on the row) and, if ``columns``, a line of ``header`` pixels
    over it naming each column."""
    h, w, _ = picture.shape
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    margin = round(max(draw.textlength(label) for label in rows)) + 8
    top = header if columns else 0
    image = Image.new("RGB", (margin + w, top + h), (255, 255, 255))
    image.paste(Image.fromarray(picture), (margin, top))
    draw = ImageDraw.Draw(image)
    cell_h = (h + gap) / len(rows)
    for r, label in enumerate(rows):
        draw.text((margin - 4, top + r * cell_h + (cell_h - gap) / 2), label, fill=(0, 0, 0), anchor="rm")
    cell_w = (w + gap) / max(len(columns), 1)
    for c, label in enumerate(columns):
        draw.text((margin + c * cell_w + (cell_w - gap) / 2, header / 2), label, fill=(0, 0, 0), anchor="mm")
    return np.asarray(image).copy()


def save_png(path: Path, picture: np.ndarray, scale: int = 2) -> Path:
    """Write an (H, W, 3) uint8 picture as PNG, enlarged ``scale`` times (nearest neighbour); returns
    ``path``."""
    image = Image.fromarray(picture)
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    atomic_write(path, lambda f: image.save(f, format="PNG"))
    return path
