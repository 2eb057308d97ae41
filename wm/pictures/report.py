"""A run's report: one page a person can open, with every picture and table of the run.

    python -m wm.report --run DIR [--temperature 1.15] [--seed S] [--video-format gif|mp4]

Draws into RUN/report/ and writes RUN/report.md, which embeds them:
- the ES training curves (fitness per generation and against wall-clock time, evaluations, the
  solve threshold), from es/history.csv;
- V: its loss curves, real frames over reconstructions, a latent traversal;
- M: its loss curves, and a dream decoded by V beside the real episode it started from;
- C: an episode of the agent in the real env (the game, V's input and reconstruction, the actions);
- the scores against the random policy and the paper, data set size, wall time per stage, config
  (as wm.results, whose tables it shares).
Each part is drawn from the stage outputs that exist; a missing one is named in the report, so a
report of an unfinished run shows what is there. The pipeline (launch/doom.bash) ends with it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wm.core import cli
from wm.core.cli import arg
from wm.core.errors import WMError
from wm.data.files import atomic_write, read_json
from wm.data.rundir import es_dir, eval_names, final_round, make_stage_dir, stage_config
from wm.models.controller import params_digest
from wm.pictures.results import (
    collect,
    config_lines,
    dream_lines,
    paired_lines,
    score_lines,
    summary_lines,
    timing_lines,
)
from wm.stages import signal_check

REPORT_DIR = "report"


@dataclass
class ReportConfig:
    """Draw a run's pictures and write RUN/report.md."""

    run: str | None = arg(None, "run directory", required=True)
    temperature: float = arg(0.0, "temperature of the dream video (0: the one C was trained at, else 1)")
    seed: int = arg(-1, "env seed of the agent's episode (-1: the first episode of eval/real.json)")
    video_format: str = arg("gif", "videos as gif (shown inline by Markdown viewers) or mp4",
                            choices=["gif", "mp4"])
    every: int = arg(2, "videos keep every Nth step")
    panel: int = arg(96, "height in pixels of each picture in the videos")
    max_steps: int = arg(-1, "cap on the agent's episode (0: the env's own; -1: the evaluation's)")
    videos: bool = arg(True, "draw the episode and dream videos (--no-videos: only plots and pictures)")


def _missing(what: str, reason: str) -> list[str]:
    return [f"_{what}: not available ({reason})._"]


def _picture(path: Path, run: Path, caption: str) -> str:
    return f"![{caption}]({path.relative_to(run).as_posix()})"


def _try(what: str, draw: Callable[[], list[str]]) -> list[str]:
    """Draw one part; a stage that has not run (or a bad file) becomes a line in the report, not a crash.
    Each part says when it starts and how long it took (the videos take a minute or more)."""
    started = time.monotonic()
    print(f"[report] {what}...", flush=True)
    try:
        return draw()
    except (WMError, FileNotFoundError) as err:
        return _missing(what, str(err))
    finally:
        print(f"[report] {what}: {time.monotonic() - started:.0f}s", flush=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _format(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4g}"


def training_part(run: Path, out: Path, threshold: float | None) -> list[str]:
    from wm.pictures.plots import read_csv_rows, training_curves

    path = run / "es" / "history.csv"
    if not path.is_file():
        raise WMError(f"no {path}: run `python -m wm.train --run {run}`")
    history = read_csv_rows(path)
    train = stage_config(run, "train") or {}
    where = f" (returns in M's dream, tau {train.get('temperature', 1.15):g})" if train.get("dream") else ""
    picture = training_curves(history, out / "training.png", threshold, f"ES training: {run.name}{where}")
    last = history[-1]
    evaluated = [r for r in history if not math.isnan(r.get("eval_score", math.nan))]
    lines = [_picture(picture, run, "training curves"), "",
             f"{len(history)} generations in {last['elapsed_s'] / 60:.1f} min; last generation: population "
             f"mean {last['fitness_mean']:.1f}, max {last['fitness_max']:.1f}, {int(last['evaluations'])} "
             f"episodes, workers busy {100 * last['busy_fraction']:.0f}% of the time."]
    said = signal_check.summary(history, train)
    if said:
        lines.append(said)
    if evaluated:
        best = max(evaluated, key=lambda r: r["eval_score"])
        lines.append(f"Best evaluation of the mean: {best['eval_score']:.1f} at generation "
                     f"{int(best['generation'])} (of {len(evaluated)} evaluations).")
    if train.get("off_track_stop"):
        lines.append(f"Training episodes (and these evaluations) ended after {train['off_track_stop']} steps "
                     "without a new track tile, the steps left scored at -0.1 each (`--off-track-stop`); "
                     f"they played {last['steps_mean']:.0f} steps on average in the last generation.")
    return lines


def losses_part(run: Path, out: Path, stage: str, title: str) -> list[str]:
    from wm.pictures.plots import last_values, loss_curves, read_csv_rows

    path = run / stage / "metrics.csv"
    if not path.is_file():
        raise WMError(f"no {path}")
    rows = read_csv_rows(path)
    picture = loss_curves(rows, out / f"{stage}_loss.png", title)
    last = last_values(rows)
    values = ", ".join(f"{k} {_format(v)}" for k, v in last.items() if k not in ("step", "epoch", "wall_s"))
    return [_picture(picture, run, f"{stage} losses"), "",
            f"After {int(last['step'])} steps ({_plural(int(last['epoch']), 'epoch')}, "
            f"{last['wall_s'] / 60:.1f} min): {values}."]


def vae_pictures_part(run: Path, out: Path) -> list[str]:
    from wm.models.weights import load_vae
    from wm.pictures.images import save_png
    from wm.pictures.vae_pictures import latent_traversal, reconstruction_grid, sample_frames

    vae, _ = load_vae(run)
    frames = sample_frames(run, 16)
    recon = save_png(out / "vae_reconstructions.png", reconstruction_grid(vae, frames))
    traversal, dims = latent_traversal(vae, frames)
    walk = save_png(out / "vae_traversal.png", traversal, scale=1)
    return [_picture(recon, run, "real frames over V's reconstructions"), "",
            "Real frames (spread over the data set) over V's reconstructions of them.", "",
            _picture(walk, run, "latent traversal"), "",
            f"Latent traversal: each row sets one z dimension of the first frame's latent from -3 to +3 "
            f"(dimensions {', '.join(map(str, dims))}: those that vary most over the frames)."]


def _video_name(cfg: ReportConfig, stem: str) -> str:
    return f"{stem}.{cfg.video_format}"


def videos_part(cfg: ReportConfig, run: Path, out: Path, env: str) -> tuple[list[str], list[str]]:
    """(the agent's episode, the dream beside it): Markdown lines of each."""
    from wm.envs.games import ENVS
    from wm.models.weights import load_world_model
    from wm.pictures.dream_video import dream_beside
    from wm.pictures.render import Recording, play
    from wm.pictures.video import write_video
    from wm.stages.evaluate import evaluation_seeds

    spec = ENVS[env]
    fps = spec.fps / cfg.every
    # By default the first episode of the real-env evaluation, replayed: the same seed and step cap.
    final = run / es_dir(final_round(run)) / "best.json"
    evaluation = read_json(run / "eval" / f"{eval_names(final_round(run))[0]}.json") or {}
    seed = cfg.seed if cfg.seed >= 0 else (evaluation.get("seeds") or evaluation_seeds(0, 1))[0]
    max_steps = cfg.max_steps if cfg.max_steps >= 0 else int(evaluation.get("max_steps") or 0)
    episode_lines: list[str]
    try:
        recording = play(str(run), "best", seed, max_steps, cfg.every, cfg.panel)
        video = write_video(out / _video_name(cfg, "episode"), recording.video, fps, colors=64)
        source = f"the agent's episode above (seed {seed})"
        scored = ""
        played = read_json(final) or {}
        if evaluation.get("controller") is None:  # (an evaluation from before digests were kept)
            same = evaluation.get("params") == "best" and final_round(run) == 0
        else:
            same = "params" in played and evaluation["controller"] == params_digest(played["params"])
        if same and evaluation.get("seeds", [None])[0] == seed:
            scored = f" (the evaluation's first episode, which scored {evaluation['returns'][0]:.1f} there)"
        episode_lines = [_picture(video, run, "the agent in the real env"), "",
                         f"The trained controller ({final.relative_to(run)}) in the real env, seed {seed}"
                         f"{scored}: return {recording.total:.1f} in {recording.steps} steps. Left to right: "
                         f"the game, what V sees (64x64), V's reconstruction; under them C's actions as the "
                         f"game plays them."]
    except WMError as err:
        episode_lines = _missing("the agent's episode", str(err))
        # Without a controller the dream still shows what M learned, on a recorded random episode.
        from wm.data.record import read_episode
        from wm.data.recordset import episode_files

        episode = read_episode(episode_files(run)[0])
        recording = Recording(env, frames=list(episode.obs), actions=list(episode.action))
        source = "recorded episode 0 (the random data policy)"
    vae, mdrnn = load_world_model(run)
    tau = cfg.temperature or _trained_temperature(run)
    frames, death = dream_beside(vae, mdrnn, recording.frames, recording.actions, tau, seed=seed,
                                 every=cfg.every, panel=cfg.panel, env=env)
    dream = write_video(out / _video_name(cfg, f"dream-tau{tau:g}"), frames, fps, colors=64)
    ending = "" if not mdrnn.config.with_done else (
        f" M predicted death at step {death}." if death is not None else " M never predicted death.")
    dream_lines = [_picture(dream, run, f"dream at tau {tau:g}"), "",
                   f"M's dream at temperature {tau:g} beside {source}, which lasted {recording.steps} steps: "
                   f"it starts from V's latent of the first frame and is driven by the same actions.{ending}"]
    return episode_lines, dream_lines


def _trained_temperature(run: Path) -> float:
    train = stage_config(run, "train") or {}
    return float(train.get("temperature", 1.0)) if train.get("dream") else 1.0


def check_world_model(run: Path) -> None:
    """Refuse a run whose M was trained on another V (a V retrained after M) before drawing: its
    pictures and videos would mix two world models. A run without V or M yet is reported as it is."""
    from wm.models.weights import rnn_path, vae_path, world_model_digests

    if vae_path(run).is_file() and rnn_path(run).is_file():
        world_model_digests(run)


def report_markdown(cfg: ReportConfig) -> str:
    """Draw every picture into RUN/report/ and return report.md's text."""
    run = Path(cfg.run)
    check_world_model(run)
    results = collect(run)
    env = results["env"]
    out = make_stage_dir(run, REPORT_DIR)  # (a read-only run: one line, before any drawing)
    threshold = (results["paper"] or {}).get("solved")
    data = results["data"]
    lines = [f"# Report: {run} ({env})", "", f"Written {time.strftime('%Y-%m-%d %H:%M')} by "
             f"`python -m wm.report --run {run}`.", "", *summary_lines(results),
             "## Scores", "", *score_lines(results), "", *paired_lines(results), *dream_lines(results),
             "## C: evolution strategy", "",
             *_try("training curves", lambda: training_part(run, out, threshold)), ""]
    if cfg.videos:
        # (both parts come back as two lists; a failure as the lines that say why, shown in both places)
        drawn: list[Any] = _try("videos: the agent's episode and M's dream",
                                lambda: list(videos_part(cfg, run, out, env)))
        episode, dream = drawn if drawn and isinstance(drawn[0], list) else (drawn, drawn)
        lines += episode + [""]
    lines += ["## V: the variational autoencoder", "",
              f"Data set: {data['episodes']} episodes, {data['frames']} frames.", "",
              *_try("V's losses", lambda: losses_part(run, out, "vae", "V (ConvVAE) training")), "",
              *_try("V's pictures", lambda: vae_pictures_part(run, out)), "",
              "## M: the MDN-RNN", "",
              *_try("M's losses", lambda: losses_part(run, out, "rnn", "M (MDN-RNN) training")), ""]
    if cfg.videos:
        lines += dream + [""]
    lines += ["## Wall time per stage", "", *timing_lines(results), "",
              "## Config", "", *config_lines(results), ""]
    return "\n".join(lines)


def write_report(cfg: ReportConfig) -> Path:
    """Write RUN/report.md (and its pictures); returns its path."""
    text = report_markdown(cfg)
    path = Path(cfg.run) / "report.md"
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def main(argv: list[str] | None = None) -> int:
    def parse() -> ReportConfig:
        cfg, _ = cli.parse(ReportConfig, argv, "python -m wm.report", __doc__ or "")
        if not 0 <= cfg.temperature < math.inf or cfg.every < 1 or cfg.panel < 16 or \
                cfg.seed < -1 or cfg.max_steps < -1:
            raise WMError("--temperature must be a number >= 0, --every >= 1, --panel >= 16, and --seed "
                          "and --max-steps >= -1")
        return cfg

    def run(cfg: ReportConfig) -> None:
        started = time.monotonic()
        path = write_report(cfg)
        print(f"[report] {path} ({time.monotonic() - started:.0f}s)", flush=True)

    return cli.run_stage("report", parse, run)


if __name__ == "__main__":
    sys.exit(main())
