"""Watch an agent: one real-env episode as a GIF or MP4, the game's frame beside what V sees (the
64x64 input) and V's reconstruction of it, over the controller's actions and the step count.

    python -m wm.render --run agents/doom-small [--params best] [--seed 0] [--out episode.mp4]

Headless (no screen or X server needed).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wm.core import cli
from wm.core.cli import arg
from wm.core.errors import WMError
from wm.data.rundir import run_doom_skill, run_env
from wm.envs.games import ENVS
from wm.models.vae import to_frames
from wm.pictures.panels import action_bars, compose
from wm.pictures.video import video_format, write_video


@dataclass
class RenderConfig:
    """Render one episode of a run's agent in the real env to a GIF or MP4."""

    run: str | None = arg(None, "run directory (or an exported agent)", required=True)
    params: str = arg("best", "controller: best, current, or a JSON file with 'params'")
    seed: int = arg(0, "env seed of the episode")
    out: str = arg("", "video to write, .gif or .mp4 (default: RUN/videos/episode-seed<SEED>.gif)")
    every: int = arg(2, "keep every Nth step (smaller files); the video plays at the game's speed")
    max_steps: int = arg(0, "cap on steps (0: the env's own)")
    doom_skill: int | None = arg(None, "Doom: play at this ViZDoom skill (1 to 5) instead of the run's own")
    fps: float = arg(0.0, "the game's steps per second (0: the env's own; Doom 35, CarRacing 50)")
    panel: int = arg(128, "height in pixels of each picture")
    colors: int = arg(96, "colours of a GIF's palette (fewer: smaller files)")


# Over the three pictures of each video frame: the game's own frame, V's 64x64 input, V's reconstruction.
CAPTIONS = ("game", "V sees 64x64", "V decodes")


def video_frame(env: str, game: np.ndarray, frame: np.ndarray, reconstruction: np.ndarray,
                action: np.ndarray, step: int, panel: int) -> Image.Image:
    """One video frame: the game's frame, V's input and V's reconstruction, captioned (CAPTIONS),
    over the step and the action as the env plays it (Doom's left, stay or right; CarRacing's steer,
    gas, brake)."""
    return compose(list(zip(CAPTIONS, (game, frame, reconstruction), strict=True)), panel,
                   action_bars(env, action), f"step {step}")


@dataclass
class Recording:
    """One played episode: its video frames and, for every step, V's input and C's action."""

    env: str
    video: list[Image.Image] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # (64, 64, 3) uint8 per step
    actions: list[np.ndarray] = field(default_factory=list)  # (action_size,) per step
    total: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.frames)


def play(run: str, params_name: str, seed: int, max_steps: int = 0, every: int = 2,
         panel: int = 128, doom_skill: int | None = None, log_every: float = 0.0) -> Recording:
    """Play one real-env episode with the run's controller, drawing every ``every``-th step; in
    the run's own game unless ``doom_skill`` asks for another. ``log_every`` > 0: a progress line
    every so many seconds."""
    import time

    from wm.envs.games import make_env
    from wm.envs.rollout import WorldModelAgent
    from wm.models.weights import load_world_model
    from wm.stages.evaluate import load_controller

    env_name = run_env(run)
    if env_name is None:
        raise WMError(f"{run} is not a run directory (no config.json)")
    params = load_controller(run, params_name)
    vae, mdrnn = load_world_model(run)
    agent = WorldModelAgent(vae, mdrnn)
    if params.size != agent.spec.num_params:
        raise WMError(f"the controller has {params.size} parameters but this run's C needs "
                      f"{agent.spec.num_params}")
    env = make_env(env_name, max_steps or None, run_doom_skill(run, doom_skill))
    recording = Recording(env_name)
    started = last = time.monotonic()

    def on_step(frame: np.ndarray, z: torch.Tensor, action: np.ndarray) -> None:
        nonlocal last
        step = recording.steps
        if log_every > 0 and time.monotonic() - last >= log_every:
            last = time.monotonic()
            print(f"[render] step {step} | {len(recording.video)} frames drawn | "
                  f"{last - started:.0f}s", flush=True)
        recording.frames.append(frame)
        recording.actions.append(action.copy())
        if step % every == 0:
            reconstruction = to_frames(vae.decode(z))[0]
            raw = env.render()
            recording.video.append(video_frame(env_name, raw if raw is not None else frame, frame,
                                               reconstruction, action, step, panel))

    try:
        recording.total = agent.run_episode(env, params, seed, on_step).total_reward
    finally:
        env.close()
    return recording


def render(cfg: RenderConfig) -> tuple[Path, int]:
    """Play and write the video; returns its path and the episode's length."""
    out = Path(cfg.out) if cfg.out else Path(cfg.run) / "videos" / f"episode-seed{cfg.seed}.gif"
    video_format(out)  # a wrong suffix is refused before the episode is played
    print(f"[render] playing one episode (seed {cfg.seed}) with the controller {cfg.params}", flush=True)
    recording = play(cfg.run, cfg.params, cfg.seed, cfg.max_steps, cfg.every, cfg.panel, cfg.doom_skill,
                     log_every=10.0)
    print(f"[render] return {recording.total:.1f} in {recording.steps} steps; writing {len(recording.video)} "
          f"frames to {out}", flush=True)
    fps = (cfg.fps or ENVS[recording.env].fps) / cfg.every
    write_video(out, recording.video, fps, cfg.colors)
    return out, recording.steps


def main(argv: list[str] | None = None) -> int:
    def parse() -> RenderConfig:
        cfg, _ = cli.parse(RenderConfig, argv, "python -m wm.render", __doc__ or "")
        if cfg.seed < 0 or cfg.every < 1 or cfg.max_steps < 0 or not 0 <= cfg.fps < math.inf or \
                cfg.panel < 16 or not 2 <= cfg.colors <= 256:
            raise WMError("--seed must be >= 0, --every >= 1, --max-steps >= 0, --fps a number >= 0, "
                          "--panel >= 16 and --colors 2 to 256")
        return cfg

    def run(cfg: RenderConfig) -> None:
        out, steps = render(cfg)
        print(f"[render] {steps} steps -> {out} ({out.stat().st_size / 2**20:.1f} MiB)", flush=True)

    return cli.run_stage("render", parse, run)


if __name__ == "__main__":
    sys.exit(main())
