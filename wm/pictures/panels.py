"""Video frames made of captioned pictures side by side over action bars (for wm.render and the
dream video)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CAPTION = 14  # pixels of the caption row over the pictures
BAR = 18  # pixels of each action bar under them
GAP = 4


@dataclass(frozen=True)
class Bar:
    """One action bar: ``value`` drawn from 0 (or from ``low`` if 0 is outside) within [low, high],
    ``name`` left of it, ``text`` (default: the value) right of it, a tick at each of ``marks``."""

    name: str
    value: float
    low: float = -1.0
    high: float = 1.0
    text: str = ""
    marks: tuple[float, ...] = ()


def action_bars(env: str, action: np.ndarray | Sequence[float]) -> list[Bar]:
    """The env's own meaning of a controller output in [-1, 1]^d, as wm.envs.games maps it: Doom's move
    (left below -1/3, right above 1/3, else stay), CarRacing's steer in [-1, 1], gas and brake in [0, 1]."""
    from wm.envs.games import DOOM_MOVE_THRESHOLD, ENVS, carracing_action, doom_buttons

    a = np.asarray(action, dtype=np.float64).reshape(-1)
    if env == "doom":
        left, right = doom_buttons(a)
        move = "left" if left else "right" if right else "stay"
        return [Bar("move", float(a[0]), text=f"{move} ({a[0]:+.2f})",
                    marks=(-DOOM_MOVE_THRESHOLD, DOOM_MOVE_THRESHOLD))]
    if env == "carracing":
        steer, gas, brake = (float(v) for v in carracing_action(a))
        return [Bar("steer", steer, -1.0, 1.0, f"{steer:+.2f}"), Bar("gas", gas, 0.0, 1.0, f"{gas:.2f}"),
                Bar("brake", brake, 0.0, 1.0, f"{brake:.2f}")]
    return [Bar(name, float(v)) for name, v in zip(ENVS[env].action_names, a, strict=True)]


def _fit(draw: ImageDraw.ImageDraw, text: str, width: float) -> str:
    """``text``, cut to ``width`` pixels (ending in '..') if longer."""
    if draw.textlength(text) <= width:
        return text
    while text and draw.textlength(text + "..") > width:
        text = text[:-1]
    return text + ".." if text else ""


def compose(panels: Sequence[tuple[str, np.ndarray]], height: int,
            bars: Sequence[Bar | tuple[str, float]] = (), note: str = "") -> Image.Image:
    """One frame: the (caption, uint8 picture) ``panels`` scaled to ``height`` side by side, each
    captioned over it, then one line of ``note`` (e.g. the step), then one row per bar (a ``Bar``, or
    (name, value in [-1, 1]))."""
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
        draw.text((x + 2, 1), _fit(draw, caption, image.width - 2), fill=(0, 0, 0))
        x += image.width + GAP
    top = CAPTION + height
    if note:
        draw.text((4, top + 3), note, fill=(0, 0, 0))
        top += BAR
    centre, half = width // 2, max(width // 5, 8)
    x0, x1 = centre - half, centre + half
    for row, bar in enumerate(bars):
        if not isinstance(bar, Bar):
            bar = Bar(*bar)
        y = top + row * BAR

        def at(v: float, bar: Bar = bar) -> int:
            return round(x0 + (v - bar.low) / (bar.high - bar.low) * (x1 - x0))

        value = float(np.clip(bar.value if np.isfinite(bar.value) else 0.0, bar.low, bar.high))
        origin = float(np.clip(0.0, bar.low, bar.high))
        draw.rectangle([x0, y + 4, x1, y + BAR - 4], outline=(160, 160, 160))
        left, right = sorted([at(origin), at(value)])
        draw.rectangle([left, y + 5, right, y + BAR - 5], fill=(200, 40, 40))
        for mark in bar.marks:
            draw.line([at(mark), y + 2, at(mark), y + BAR - 2], fill=(60, 60, 60))
        draw.text((x1 + 6, y + 3), bar.text or f"{value:+.2f}", fill=(0, 0, 0))
        name = _fit(draw, bar.name, x0 - 6)
        draw.text((x0 - 4 - draw.textlength(name), y + 3), name, fill=(0, 0, 0))
    return canvas
