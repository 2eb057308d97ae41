"""Watch an agent: one real-env episode rendered to a GIF, the game's frame beside what V sees (the
64x64 input) and V's reconstruction of it, with the controller's action and the step count.

    python -m wm.render --run agents/doom-small [--params best] [--seed 0] [--out episode.gif]

Headless (no screen or X server needed).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from wm import cli
from wm.cli import arg
from wm.errors import WMError
from wm.files import atomic_write
from wm.rundir import run_env

PANEL = 128  # pixels of each square panel
BAR = 22  # pixels of the action bar under the panels


@dataclass
class RenderConfig:
    """Render one episode of a run's agent in the real env to a GIF."""

    run: str | None = arg(None, "run directory (or an exported agent)", required=True)
    params: str = arg("best", "controller: best, current, or a JSON file with 'params'")
    seed: int = arg(0, "env seed of the episode")
    out: str = arg("", "GIF to write (default: RUN/videos/episode-seed<SEED>.gif)")
    every: int = arg(2, "keep every Nth step (smaller files); the GIF plays at the game's speed")
    max_steps: int = arg(0, "cap on steps (0: the env's own)")
    fps: float = arg(35.0, "the game's steps per second (Doom: 35 tics/s; CarRacing: 50)")
    panel: int = arg(128, "height in pixels of each picture")
    colors: int = arg(96, "colours of the GIF's palette (fewer: smaller files)")


def compose(raw: np.ndarray | None, seen: np.ndarray, reconstruction: np.ndarray, action: np.ndarray,
            step: int, panel: int = PANEL) -> Image.Image:
    """One GIF frame: [game | V's input | V's reconstruction] over an action bar."""
    game = Image.fromarray(raw if raw is not None else seen)
    game = game.resize((round(game.width * panel / game.height), panel), Image.BILINEAR)
    width = game.width + 2 * panel + 8
    canvas = Image.new("RGB", (width, panel + BAR), (255, 255, 255))
    canvas.paste(game, (0, 0))
    for i, frame in enumerate((seen, reconstruction)):
        canvas.paste(Image.fromarray(frame).resize((panel, panel), Image.NEAREST),
                     (game.width + 4 + i * (panel + 4), 0))
    draw = ImageDraw.Draw(canvas)
    # The first action in [-1, 1] as a bar from the centre (Doom: left < -1/3 < none < 1/3 < right).
    centre, half = width // 2, width // 4
    a = float(np.clip(action[0], -1, 1))
    draw.rectangle([centre - half, panel + 6, centre + half, panel + BAR - 6], outline=(160, 160, 160))
    left, right = sorted([centre, centre + int(a * half)])
    draw.rectangle([left, panel + 7, right, panel + BAR - 7], fill=(200, 40, 40))
    draw.text((4, panel + 5), f"step {step}", fill=(0, 0, 0))
    draw.text((centre + half + 6, panel + 5), f"a {a:+.2f}", fill=(0, 0, 0))
    return canvas


def render(cfg: RenderConfig) -> tuple[Path, int]:
    """Play and write the GIF; returns its path and the episode's length."""
    from wm.envs import make_env
    from wm.evaluate import load_controller
    from wm.models import load_mdrnn, load_vae
    from wm.rollout import WorldModelAgent

    env_name = run_env(cfg.run)
    if env_name is None:
        raise WMError(f"{cfg.run} is not a run directory (no config.json)")
    params = load_controller(cfg.run, cfg.params)
    vae, _ = load_vae(cfg.run)
    mdrnn, _ = load_mdrnn(cfg.run)
    agent = WorldModelAgent(vae, mdrnn)
    if params.size != agent.spec.num_params:
        raise WMError(f"the controller has {params.size} parameters but this run's C needs "
                      f"{agent.spec.num_params}")
    env = make_env(env_name, cfg.max_steps or None)
    frames: list[Image.Image] = []
    count = 0

    def on_step(frame: np.ndarray, z: torch.Tensor, action: np.ndarray) -> None:
        nonlocal count
        if count % cfg.every == 0:
            reconstruction = vae.decode(z)[0].permute(1, 2, 0).mul(255).round().byte().numpy()
            frames.append(compose(env.render(), frame, reconstruction, action, count, cfg.panel))
        count += 1

    try:
        result = agent.run_episode(env, params, cfg.seed, on_step)
    finally:
        env.close()
    out = Path(cfg.out) if cfg.out else Path(cfg.run) / "videos" / f"episode-seed{cfg.seed}.gif"
    out.parent.mkdir(parents=True, exist_ok=True)
    # One shared palette without dithering: dithered frames differ pixel by pixel and GIF's
    # compression, which codes runs and repeats, then grows the file ~5x.
    palette = frames[len(frames) // 2].quantize(colors=cfg.colors, method=Image.Quantize.MEDIANCUT)
    frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    duration = round(1000 * cfg.every / cfg.fps)
    atomic_write(out, lambda f: frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:],
                                                duration=duration, loop=0, optimize=True))
    return out, result.steps


def main(argv: list[str] | None = None) -> int:
    def parse() -> RenderConfig:
        cfg, _ = cli.parse(RenderConfig, argv, "python -m wm.render", __doc__ or "")
        if cfg.every < 1 or cfg.max_steps < 0 or not cfg.fps > 0 or cfg.panel < 16 or \
                not 2 <= cfg.colors <= 256:
            raise WMError("--every must be >= 1, --max-steps >= 0, --fps > 0, --panel >= 16 and "
                          "--colors 2 to 256")
        return cfg

    def run(cfg: RenderConfig) -> None:
        out, steps = render(cfg)
        print(f"[render] {steps} steps -> {out} ({out.stat().st_size / 2**20:.1f} MiB)", flush=True)

    return cli.run_stage("render", parse, run)


if __name__ == "__main__":
    sys.exit(main())
