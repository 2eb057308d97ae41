"""Iterative training (the paper's proposed fix, Doom): rounds after the pipeline's first controller.

Round r (1, 2, ...), each step one stage run by the pipeline:
  play     r's real episodes of the previous round's best C, explored (wm.play) -> RUN/record/round-RR/
  series   the new episodes encoded by the same V (wm.series encodes only what is new)
  rnn      M continues on the whole grown set for more epochs, rounds weighted (wm.rnn_train --grown-data)
  train    the ES continues in the new dream from the previous best C, in its own directory
           RUN/es-round-r/ (its checkpoint names M's digest, so a round cannot continue another's)
  evaluate the round's C in the real game (RUN/eval/real-round-r), and the random policy seen through
  random   the new M (RUN/eval/random-round-r: its foresight of the random data's deaths)
Each step is skipped when its outputs are complete, so a round resumes where it stopped; once all are,
RUN/rounds/round-RR.json marks the round complete and it is skipped whole (a later round changes M,
after which its steps' checks would not hold).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wm.core.config import preset_values
from wm.core.errors import WMError
from wm.data.files import read_json, write_json
from wm.data.recordset import SUMMARY_NAME, round_dir
from wm.data.rundir import es_dir, eval_names, read_status
from wm.models.controller import params_digest
from wm.orchestration.pipeline import (
    PipelineConfig,
    Stage,
    _weights_info,
    evaluation_complete,
    series_complete,
)

ROUNDS_DIR = "rounds"


@dataclass(frozen=True)
class RoundSettings:
    """What every round does, from the preset's "rounds" (``--rounds`` overrides their number)."""

    rounds: int
    episodes: int  # real episodes played per round
    sigma: float  # exploration: N(0, sigma^2) added to C's parameters per episode
    round_weight: int  # the rounds' episodes per epoch of M, against the random data's once
    rnn_epochs: int  # M's epochs per round, on the whole set
    generations: int  # ES generations per round

    @classmethod
    def of(cls, cfg: PipelineConfig) -> RoundSettings:
        values = preset_values("rounds", cfg.env, cfg.preset)
        rounds = cfg.rounds if cfg.rounds is not None else values.get("rounds", 0)
        dreams = preset_values("train", cfg.env, cfg.preset).get("dream")
        if rounds and not (values and dreams):
            raise WMError(f"--rounds {rounds}: iterative training needs M's dream, and the {cfg.env} "
                          f"{cfg.preset} preset trains C in the real game (Doom's small and paper dream)")
        if not values:
            return cls(0, 0, 0.0, 1, 0, 0)
        settings = cls(**{**values, "rounds": rounds})
        every = preset_values("train", cfg.env, cfg.preset).get("eval_every")
        if rounds and (not every or settings.generations < every):
            # (a round's controller is its best evaluated mean: without an evaluation there is none)
            raise WMError(f"preset {cfg.preset}: a round's {settings.generations} ES generations never reach "
                          f"an evaluation (every {every}); no round could name its controller")
        return settings


def marker(run: Path, round_: int) -> Path:
    return run / ROUNDS_DIR / f"round-{round_:02d}.json"


def round_complete(run: Path, round_: int) -> bool:
    return bool((read_json(marker(run, round_)) or {}).get("complete"))


def _played(run: Path, round_: int, settings: RoundSettings, controller: Path) -> bool:
    """The round's episodes are all recorded, by this controller with this exploration."""
    from wm.stages.evaluate import load_controller

    summary = read_json(round_dir(run, round_) / SUMMARY_NAME) or {}
    try:
        digest = params_digest(load_controller(str(run), str(controller)))
    except WMError:
        return False
    return (summary.get("episodes") == settings.episodes and summary.get("sigma") == settings.sigma
            and summary.get("controller") == digest)


def round_stages(cfg: PipelineConfig, settings: RoundSettings, round_: int, ranks: int) -> list[Stage]:
    """The steps of round ``round_`` (>= 1), each with its completeness test."""
    run = Path(cfg.run)
    previous = run / es_dir(round_ - 1) / "best.json"
    best = run / es_dir(round_) / "best.json"
    rnn_epochs = preset_values("rnn", cfg.env, cfg.preset)["epochs"] + round_ * settings.rnn_epochs
    real, random = eval_names(round_)
    base = ["--run", str(run), "--preset", cfg.preset]
    episodes = ["--episodes", str(cfg.eval_episodes)]

    def rnn_done() -> bool:
        info = _weights_info(run / "rnn" / "rnn.pt") or {}
        series = read_json(run / "series" / "summary.json") or {}
        return info.get("epochs", 0) >= rnn_epochs and round_ in info.get("rounds", []) \
            and info.get("vae") == series.get("vae")

    def trained() -> bool:
        status = read_status(run / es_dir(round_)) or {}
        return bool(status.get("finished")) and status.get("generations") == settings.generations

    def evaluated(name: str, after: Path) -> Any:
        # (the random policy's evaluation must come after this round's M: it measures M's foresight)
        return lambda: evaluation_complete(run / "eval" / f"{name}.json", cfg.eval_episodes, after)

    tag = f"round {round_} "
    return [
        Stage(tag + "play", "wm.play", ranks,
              ["--run", str(run), "--round", str(round_), "--params", str(previous), "--episodes",
               str(settings.episodes), "--sigma", str(settings.sigma)],
              lambda: _played(run, round_, settings, previous)),
        Stage(tag + "series", "wm.series", 0, ["--run", str(run)], lambda: series_complete(run)),
        Stage(tag + "rnn", "wm.rnn_train", 0,
              [*base, "--epochs", str(rnn_epochs), "--grown-data", "--round-weight",
               str(settings.round_weight)], rnn_done),
        Stage(tag + "train", "wm.train", ranks + 1,
              [*base, "--out", es_dir(round_), "--generations", str(settings.generations),
               "--init-params", str(previous)], trained),
        Stage(tag + "evaluate", "wm.evaluate", ranks + 1,
              ["--run", str(run), "--params", str(best), "--name", real, *episodes], evaluated(real, best)),
        Stage(tag + "random", "wm.evaluate", ranks + 1,
              ["--run", str(run), "--params", "random", "--name", random, *episodes],
              evaluated(random, run / "rnn" / "rnn.pt")),
    ]


def run_rounds(cfg: PipelineConfig, ranks: int, run_stages: Any) -> int:
    """Run the rounds not yet complete, in order (``run_stages``: the pipeline's stage runner);
    returns the exit status of the first step that fails, else 0."""
    settings = RoundSettings.of(cfg)
    run = Path(cfg.run)
    for round_ in range(1, settings.rounds + 1):
        if round_complete(run, round_):
            print(f"[pipeline] round {round_}: already complete, skipped", flush=True)
            continue
        started = time.monotonic()
        print(f"[pipeline] round {round_}/{settings.rounds}: {settings.episodes} real episodes of "
              f"{es_dir(round_ - 1)}/best.json (sigma {settings.sigma:g}), M +{settings.rnn_epochs} epochs "
              f"(rounds x {settings.round_weight}), ES {settings.generations} generations", flush=True)
        code = run_stages(round_stages(cfg, settings, round_, ranks))
        if code:
            return code
        mark_complete(run, round_, settings, time.monotonic() - started)
    return 0


def mark_complete(run: Path, round_: int, settings: RoundSettings, seconds: float | None) -> None:
    """RUN/rounds/round-RR.json: the round is complete and is skipped from now on."""
    marker(run, round_).parent.mkdir(exist_ok=True)
    write_json(marker(run, round_), {"round": round_, "complete": True, "settings": vars(settings),
                                     "seconds": None if seconds is None else round(seconds, 3)})


def main(argv: list[str] | None = None) -> int:
    """``python -m wm.orchestration.rounds --run DIR --env doom --preset P --eval-episodes E --mark R``:
    mark round R complete once every step's outputs are (the last job of a round under Slurm, where
    no pipeline process runs the rounds); one line and exit 1 when a step is not complete."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m wm.orchestration.rounds", description=main.__doc__)
    parser.add_argument("--run", required=True)
    parser.add_argument("--env", default="doom")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--mark", type=int, required=True, help="the round to mark complete")
    args = parser.parse_args(argv)
    cfg = PipelineConfig(run=args.run, env=args.env, preset=args.preset, eval_episodes=args.eval_episodes,
                         rounds=args.rounds)
    try:
        settings = RoundSettings.of(cfg)
        missing = [s.name for s in round_stages(cfg, settings, args.mark, 1) if not s.done()]
    except WMError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if missing:
        print(f"error: round {args.mark} is not complete: {', '.join(missing)} still to run", file=sys.stderr)
        return 1
    mark_complete(Path(cfg.run), args.mark, settings, None)
    print(f"[rounds] round {args.mark} complete: {marker(Path(cfg.run), args.mark)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
