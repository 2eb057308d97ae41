"""Each ES strategy trained in the same Doom dream for the same budget, then scored in the real game.

    python benchmarks/es_dream.py --run runs/doom-small [--strategies cma pepg openes snes ga]
        [--generations 40] [--popsize 32] [--num-episode 8] [--eval-every 10] [--eval-episodes 128]
        [--episodes 100] [--eval-seeds 0 1] [--max-steps 0] [--np 2]

The task the strategies exist for, beside benchmarks/es_peers.py's test functions. For each
strategy, with its defaults (es.strategies): ``python -m wm.train --run RUN --dream --optimizer S
--out es-compare-S`` (its own folder in the run; the run's M, temperature and seed, the same budget
of generations x popsize x episodes for all), then ``python -m wm.evaluate --run RUN --params
RUN/es-compare-S/best.json --seed K`` over --episodes real games for each K of --eval-seeds (the same
games for every strategy; RUN/eval/compare-S.json for seed 0, compare-S-seedK.json for the others).
Prints each one's learning curve (the dream score of its mean every --eval-every generations, over
--eval-episodes dream episodes), its best dream score, its real-game score over all its games (mean
+- std, standard error), the wall time of both steps, and each strategy's difference from the first,
paired game by game; draws RUN/es-compare.png (each strategy's population mean per generation and its
mean's evaluations, in the dream). Running it again skips what is complete (wm.train continues a
checkpoint; an evaluation that exists is read).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def stage(args: list[str]) -> float:
    """``python -m ARGS`` from the project root; its wall seconds (exits with its output if it fails)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{args[0]} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - started


def curve(out: Path) -> list[tuple[int, float]]:
    """(generation, dream score of the mean) at each evaluation of a wm.train output folder."""
    with open(out / "history.csv", newline="") as f:
        return [(int(r["generation"]), float(r["eval_score"])) for r in csv.DictReader(f) if r["eval_score"]]


def plot(rows: list, run: Path, path: Path) -> None:
    """The strategies' dream curves side by side: population mean per generation (line) and the
    evaluations of the mean (dots), with each one's real-game mean in its legend entry."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for name, points, real, _, _ in rows:
        with open(run / f"es-compare-{name}" / "history.csv", newline="") as f:
            history = [(int(r["generation"]), float(r["fitness_mean"])) for r in csv.DictReader(f)]
        generations, means = np.asarray(history).T
        line, = ax.plot(generations, means, lw=1, label=f"{name} (game: {real.mean():.0f})")
        ax.plot([g for g, _ in points], [v for _, v in points], "o", color=line.get_color())
    ax.set_xlabel("generation")
    ax.set_ylabel("dream score (steps survived)")
    ax.set_title("population mean (lines) and evaluations of the mean (dots) in the dream")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=100, bbox_inches="tight")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="a Doom run with a trained M (wm.pipeline)")
    parser.add_argument("--strategies", nargs="+", default=["cma", "pepg", "openes", "snes", "ga"])
    parser.add_argument("--generations", type=int, default=40)
    parser.add_argument("--popsize", type=int, default=32)
    parser.add_argument("--num-episode", type=int, default=8)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--eval-episodes", type=int, default=128, help="dream episodes of each evaluation")
    parser.add_argument("--episodes", type=int, default=100, help="real games per strategy and seed")
    parser.add_argument("--eval-seeds", type=int, nargs="+", default=[0, 1],
                        help="evaluation seeds (wm.evaluate --seed): --episodes games each, the same for all")
    parser.add_argument("--max-steps", type=int, default=0, help="cap on steps per episode (0: the game's)")
    parser.add_argument("--np", type=int, default=2, help="worker processes (wm.train and wm.evaluate --np)")
    args = parser.parse_args()
    run = args.run.resolve()
    if not (run / "rnn" / "rnn.pt").is_file():
        sys.exit(f"--run {args.run}: no trained M there (rnn/rnn.pt); run the Doom pipeline first")

    print(f"{len(args.strategies)} strategies, each {args.generations} generations x {args.popsize} x "
          f"{args.num_episode} dream episodes, then {args.episodes} real games on each of seeds "
          f"{', '.join(map(str, args.eval_seeds))}; run {run}",
          flush=True)
    rows = []
    for name in args.strategies:
        out = run / f"es-compare-{name}"
        train_s = stage(["wm.train", "--run", str(run), "--dream", "--optimizer", name, "--out", out.name,
                         "--generations", str(args.generations), "--popsize", str(args.popsize),
                         "--num-episode", str(args.num_episode), "--eval-every", str(args.eval_every),
                         "--eval-episodes", str(args.eval_episodes), "--max-steps", str(args.max_steps),
                         "--np", str(args.np)])
        eval_s, returns = 0.0, []
        for seed in args.eval_seeds:
            evaluation = run / "eval" / (f"compare-{name}" + (f"-seed{seed}" if seed else "") + ".json")
            if not evaluation.is_file():
                eval_s += stage(["wm.evaluate", "--run", str(run), "--params", str(out / "best.json"),
                                 "--episodes", str(args.episodes), "--seed", str(seed), "--name",
                                 evaluation.stem, "--max-steps", str(args.max_steps), "--np", str(args.np)])
            returns += json.loads(evaluation.read_text())["returns"]
        real = np.asarray(returns, dtype=np.float64)
        points = curve(out)
        rows.append((name, points, real, train_s, eval_s))
        print(f"{name}: dream curve " + ", ".join(f"{g}: {s:.0f}" for g, s in points)
              + f"; real {real.mean():.1f} +- {real.std(ddof=1):.1f} over {real.size} games "
              f"({train_s / 60:.1f} + {eval_s / 60:.1f} min)", flush=True)

    print("\n| strategy | dream score of the mean (best evaluation) | real game, mean +- std (s.e.) | "
          "train + evaluate |")
    print("| --- | --- | --- | --- |")
    for name, points, real, train_s, eval_s in rows:
        error = real.std(ddof=1) / math.sqrt(real.size)
        print(f"| {name} | {max(s for _, s in points):.0f} | {real.mean():.1f} +- {real.std(ddof=1):.1f} "
              f"({error:.1f}) | {train_s / 60:.1f} + {eval_s / 60:.1f} min |")
    plot(rows, run, run / "es-compare.png")
    print(f"learning curves: {run / 'es-compare.png'}")
    # Paired against the first strategy: the same games, so the per-game differences' spread is the
    # noise of the comparison.
    first, base = rows[0][0], rows[0][2]
    for name, _, real, _, _ in rows[1:]:
        diff = real - base
        print(f"{name} - {first}, paired over the same {diff.size} games: {diff.mean():+.1f} "
              f"(s.e. {diff.std(ddof=1) / math.sqrt(diff.size):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
