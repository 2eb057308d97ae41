"""A whole experiment in one command: extract -> V -> series -> M -> C -> evaluation -> results.

    python -m wm.pipeline --env doom --preset small --run runs/doom-small     (launch/doom.bash)

Each stage runs as its own process (the MPI ones under mpirun: extraction on NP ranks, ES training
and evaluation on NP + 1, rank 0 coordinating) with the preset's settings, and is skipped when its
outputs are already complete, so running the same command again after a failure or a stop
continues where it ended. Doom's C is trained in M's dream (the presets set --dream; the quick
preset's C trains in the real game); the agent is then scored in the real game over --eval-episodes
fresh episodes beside the random data policy on the same seeds. Ends by writing RUN/results.json and
RUN/results.md (the scores, the wall time of each stage from the stages' own logs, the config) and
RUN/report.md, which adds the pictures: training curves, V's reconstructions, M's dream, the agent's
episode (wm.report).

Doom, ``--rounds R`` (or the preset's): R rounds of iterative training follow the first controller,
each adding real episodes of the best controller to M's data, continuing M and the ES
(wm.orchestration.rounds); results.md and the report then show each round's real-game score, M's
foresight and the dream/real gap.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from es.launch import mpirun_command
from es.mpi import usage_error
from wm.core import cli
from wm.core.cli import arg
from wm.core.config import DOOM_SKILL_HELP, FAST_ENV_HELP, PRESET_NAMES, preset_values
from wm.core.errors import WMError
from wm.data.files import read_json
from wm.data.rundir import read_status
from wm.envs.games import ENV_NAMES, check_fast, check_skill
from wm.pictures.report import ReportConfig, write_report
from wm.pictures.results import write_results


@dataclass
class PipelineConfig:
    """Run every stage of an experiment, skipping the ones already complete."""

    run: str | None = arg(None, "run directory for every stage's outputs", required=True)
    env: str = arg("doom", "environment", choices=ENV_NAMES)
    preset: str = arg("small", "preset of every stage: paper, small (this machine, hours) or quick (minutes)",
                      choices=PRESET_NAMES)
    np: int = arg(0, "MPI ranks for extraction; training and evaluation use NP + 1 (0: the cores)")
    eval_episodes: int = arg(100, "real-env episodes of the final evaluation (and of the random baseline; "
                             "presets: carracing quick 20)")
    doom_skill: int | None = arg(None, DOOM_SKILL_HELP)
    fast_env: bool = arg(False, FAST_ENV_HELP + "; for extraction and training, not the final evaluation")
    rounds: int | None = arg(None, "Doom: rounds of iterative training after the first controller: real "
                             "episodes of the best C join the data, M and the ES continue "
                             "(wm.orchestration.rounds; default: the preset's, 0)")


def pipeline_preset(typed: dict[str, Any]) -> dict[str, Any]:
    """The preset's settings of the whole run (its "pipeline" entry: e.g. CarRacing quick's fewer
    evaluation episodes) for the flags the user did not type."""
    return preset_values("pipeline", typed.get("env") or "doom", typed.get("preset") or "small")


def evaluation_complete(path: Path, episodes: int, controller: Path | None) -> bool:
    """``path`` (an eval/NAME.json) holds ``episodes`` episodes of the default seeds, played after
    ``controller`` (a best.json) was last written; None for the random policy."""
    result = read_json(path) or {}
    if result.get("episodes") != episodes or result.get("seed") != 0:
        return False
    return controller is None or (controller.is_file() and path.stat().st_mtime >= controller.stat().st_mtime)


def series_complete(run: Path) -> bool:
    """Every episode of the data set (iterative training's rounds too) is encoded by the run's V."""
    from wm.data.recordset import data_set
    from wm.models.weights import vae_digest

    summary = read_json(run / "series" / "summary.json")
    try:
        return bool(summary) and summary.get("vae") == vae_digest(run) \
            and summary.get("episodes") == len(data_set(run))
    except WMError:
        return False


def _weights_info(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    from wm.models.training import load_weights

    try:
        return load_weights(path, "vae" if path.name == "vae.pt" else "rnn")["info"]
    except WMError:
        return None


@dataclass
class Stage:
    """One step of the pipeline: its command and the test that its outputs are complete."""

    name: str
    module: str
    ranks: int  # 0: a plain process
    args: list[str]
    done: Callable[[], bool]


def stages(cfg: PipelineConfig) -> list[Stage]:
    run, env, preset = Path(cfg.run), cfg.env, cfg.preset
    base = ["--run", str(run), "--preset", preset]
    ranks = cfg.np or os.cpu_count() or 1
    want = {stage: preset_values(stage, env, preset) for stage in ("extract", "vae", "rnn", "train")}

    def extracted() -> bool:
        summary = read_json(run / "record" / "summary.json")
        return bool(summary) and summary.get("episodes") == want["extract"]["episodes"] \
            and summary.get("env") == env and summary.get("doom_skill") == cfg.doom_skill \
            and summary.get("fast_env") == (cfg.fast_env or None)

    def vae_done() -> bool:
        info = _weights_info(run / "vae" / "vae.pt")
        return bool(info) and info.get("epochs", 0) >= want["vae"]["epochs"]

    def series_done() -> bool:
        return vae_done() and series_complete(run)

    def rnn_done() -> bool:
        info = _weights_info(run / "rnn" / "rnn.pt")
        series = read_json(run / "series" / "summary.json") or {}
        return bool(info) and info.get("epochs", 0) >= want["rnn"]["epochs"] and \
            info.get("vae") == series.get("vae")

    def trained() -> bool:
        status = read_status(run / "es") or {}
        return bool(status.get("finished")) and status.get("generations") == want["train"]["generations"]

    def evaluated(name: str) -> Callable[[], bool]:
        best = None if name == "random" else run / "es" / "best.json"
        return lambda: evaluation_complete(run / "eval" / f"{name}.json", cfg.eval_episodes, best)

    episodes = ["--episodes", str(cfg.eval_episodes)]
    # The skill is set where the data is made; every later stage plays the run's own.
    skill = [] if cfg.doom_skill is None else ["--doom-skill", str(cfg.doom_skill)]
    fast = ["--fast-env"] if cfg.fast_env else []  # (wm.evaluate always plays the official env)
    # With --fast-env, the same controller also on the fast env over the same tracks: the report's
    # paired comparison says whether the env it trained on plays like the official one.
    compare = [Stage("evaluate-fast", "wm.evaluate", ranks + 1,
                     ["--run", str(run), "--params", str(run / "es" / "best.json"), "--name", "real-fast",
                      "--fast-env", *episodes], evaluated("real-fast"))] if cfg.fast_env else []
    return [
        Stage("extract", "wm.extract", ranks, [*base, "--env", env, *skill, *fast], extracted),
        Stage("vae", "wm.vae_train", 0, base, vae_done),
        Stage("series", "wm.series", 0, ["--run", str(run)], series_done),
        Stage("rnn", "wm.rnn_train", 0, base, rnn_done),
        Stage("train", "wm.train", ranks + 1, [*base, *fast], trained),
        # (round 0's controller by name: after iterative training, "best" is the newest round's)
        Stage("evaluate", "wm.evaluate", ranks + 1,
              ["--run", str(run), "--params", str(run / "es" / "best.json"), "--name", "real", *episodes],
              evaluated("real")),
        *compare,
        Stage("random", "wm.evaluate", ranks + 1, ["--run", str(run), "--params", "random", *episodes],
              evaluated("random")),
    ]


def stage_command(stage: Stage) -> list[str]:
    command = [sys.executable, "-m", stage.module, *stage.args]
    return [*mpirun_command(stage.ranks), *command] if stage.ranks else command


def run_forwarding_signals(command: list[str], env: dict[str, str]) -> int:
    """Run a stage's process; SIGTERM or SIGINT to the pipeline reaches it too (a scheduler's
    `scancel`, a `kill` of the pipeline alone), so it checkpoints and stops rather than running on
    orphaned. Returns its exit status (the signal's usual status when it was stopped)."""
    # Its own session: a terminal's Ctrl-C reaches it once, through us, not twice (Open MPI's
    # launcher treats a second signal as "kill everything now").
    child = subprocess.Popen(command, env=env, start_new_session=True)

    def forward(signum: int, frame: Any) -> None:
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if code != 0 and child.returncode in (-signal.SIGTERM, -signal.SIGINT, 130, 143):
        raise KeyboardInterrupt
    return code


def run_stages(todo: list[Stage], tag: str = "pipeline") -> int:
    """Run the stages not yet complete, in order; returns the exit status of the first that fails,
    else 0."""
    for stage in todo:
        if stage.done():
            print(f"[{tag}] {stage.name}: already complete, skipped", flush=True)
            continue
        command = stage_command(stage)
        print(f"[{tag}] {stage.name}: {shlex.join(command)}", flush=True)
        env = dict(os.environ)
        if stage.ranks:  # one thread per rank for every numerical library: the ranks share the cores
            env.update({k: env.get(k, "1") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                       "MKL_NUM_THREADS")})
        code = run_forwarding_signals(command, env)
        if code != 0:
            print(f"[{tag}] {stage.name} failed (exit {code}); what finished is kept: fix the cause and "
                  "run the same command again to continue", file=sys.stderr, flush=True)
            return code
        if not stage.done():
            print(f"[{tag}] {stage.name} ended without completing its outputs", file=sys.stderr)
            return 1
    return 0


def run_pipeline(cfg: PipelineConfig) -> int:
    """Run the stages not yet complete, then write the results; returns the exit status."""
    started = time.monotonic()
    print(f"[pipeline] {cfg.env}, preset {cfg.preset}, run directory {cfg.run}", flush=True)
    code = run_stages(stages(cfg))
    if code:
        return code
    from wm.orchestration.rounds import run_rounds  # (it builds on this module's stages)

    code = run_rounds(cfg, cfg.np or os.cpu_count() or 1, run_stages)
    if code:
        return code
    results = write_results(cfg.run)
    print("[pipeline] drawing the report", flush=True)
    report = write_report(ReportConfig(run=cfg.run))
    # (after iterative training, the newest round's controller: the run's)
    real, random = results["scores"].get(results.get("final", "real")), results["scores"].get("random")
    print(f"[pipeline] done in {time.monotonic() - started:.0f}s: real-game score "
          f"{real['mean']:.1f} +- {real['std']:.1f} vs random policy {random['mean']:.1f} +- "
          f"{random['std']:.1f} over {real['episodes']} episodes; {Path(cfg.run) / 'results.md'}, {report}",
          flush=True)
    for row in results.get("rounds", [])[1:]:
        print(f"[pipeline] round {row['round']}: real-game score {row['real']:.1f} +- {row['real_std']:.1f}",
              flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        cfg, _ = cli.parse(PipelineConfig, argv, "python -m wm.pipeline", __doc__ or "", pipeline_preset)
        if cfg.np < 0 or cfg.eval_episodes < 1 or (cfg.rounds or 0) < 0:
            raise WMError("--np and --rounds must be >= 0 and --eval-episodes >= 1")
        from wm.orchestration.rounds import RoundSettings

        RoundSettings.of(cfg)  # (refuses rounds where there is no dream)
        check_skill(cfg.env, cfg.doom_skill)
        check_fast(cfg.env, cfg.fast_env)
    except WMError as err:
        return usage_error(err)
    try:
        return run_pipeline(cfg)
    except WMError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[pipeline] interrupted; what finished is kept: run the same command to continue",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
