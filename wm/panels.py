"""Video frames made of captioned pictures side by side over action bars (for wm.render and the
dream video)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

CAPTION = 14  # pixels of the caption row over the pictures
BAR = 18  # pixels of each action bar under them
GAP = 4


def compose(panels: Sequence[tuple[str, np.ndarray]], height: int,
            bars: Sequence[tuple[str, float]] = (), note: str = "") -> Image.Image:
    """One frame: the (caption, uint8 picture) ``panels`` scaled to ``height`` side by side, then one
    line of ``note`` (e.g. the step), then one bar per (name, value in [-1, 1]) drawn from the centre."""
    images = []
    for _, picture in panels:
        image = Image.fromarray(picture)
        # Small pictures (V's 64x64) keep their pixels; large ones (the game's frame) are smoothed.
        method = Image.NEAREST if image.height < height else Image.BILINEAR
        images.append(image.resize((round(image.width * height / image.height), height), method))
    width = sum(i.width for i in images) + GAP * (len(images) - 1)
    rows = len(bars) + (1 if note else 0)
    canvas = Image.new("RGB", (width, CAPTION + height + rows * BAR), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for (caption, _), image in zip(panels, images, strict=True):
        canvas.paste(image, (x, CAPTION))
        draw.text((x + 2, 1), caption, fill=(0, 0, 0))
        x += image.width + GAP
    top = CAPTION + height
    if note:
        draw.text((4, top + 3), note, fill=(0, 0, 0))
        top += BAR
    centre, half = width // 2, max(width // 5, 8)
    for row, (name, value) in enumerate(bars):
        y = top + row * BAR
        a = float(np.clip(value, -1.0, 1.0)) if np.isfinite(value) else 0.0
        draw.rectangle([centre - half, y + 4, centre + half, y + BAR - 4], outline=(160, 160, 160))
        left, right = sorted([centre, centre + int(a * half)])
        draw.rectangle([left, y + 5, right, y + BAR - 5], fill=(200, 40, 40))
        draw.text((centre + half + 6, y + 3), f"{name} {a:+.2f}", fill=(0, 0, 0))
    return canvas
