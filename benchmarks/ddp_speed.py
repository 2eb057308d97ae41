"""V, the series and M on one process with T threads against T ranks (mpirun) with one thread each,
and both against one process with one thread (their parallel efficiency over T cores).

    python benchmarks/ddp_speed.py [--ranks 2] [--episodes 20] [--steps-per-episode 200]
        [--vae-batch 100] [--rnn-batch 32] [--rnn-seq 100] [--rnn-epochs 5] [--rnn-hidden 512]

Real runs of ``python -m wm.vae_train``, ``wm.series`` and ``wm.rnn_train`` on synthetic Doom-like
episodes (those of benchmarks/train_speed.py), each stage three times from the same inputs: one process
with ``--threads 1``, one with ``--threads RANKS``, and ``mpirun -n RANKS`` (data-parallel,
wm.stages.ddp) with ``--threads 1``. The efficiency of T threads or ranks is their rate over T times
the one-thread rate (1.0: linear scaling).
V's frames/s and M's timesteps/s come from metrics.csv (the wall_s of its last row: training only,
start-up excluded; and the rate after the first step, whose set-up is slow); the series' frames/s
from its summary.json. Prints one line per figure. Run it on an otherwise idle machine: ranks and
threads alike slow down when they share the cores with other work.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_speed import make_dataset  # noqa: E402

from es.launch import mpirun_command  # noqa: E402


def stage(module: str, run: Path, args: list[str], ranks: int, threads: int) -> float:
    """``python -m MODULE --run RUN ARGS`` as one process (ranks 1) or under mpirun; its wall seconds."""
    command = [sys.executable, "-m", module, "--run", str(run), *args, "--threads", str(threads),
               "--device", "cpu", "--log-every", "1000"]
    if ranks > 1:
        command = [*mpirun_command(ranks), *command]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYTHONPATH": str(ROOT),
           **{k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{module} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return time.perf_counter() - start


def rates(metrics: Path, total: int, first: int) -> tuple[float, float]:
    """(samples/s over the whole training, samples/s after the first step) from metrics.csv, for
    ``total`` samples of which the first step took ``first``."""
    with open(metrics, newline="") as f:
        walls = [float(r["wall_s"]) for r in csv.DictReader(f)]
    return total / walls[-1], (total - first) / max(walls[-1] - walls[0], 1e-9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--steps-per-episode", type=int, default=200)
    parser.add_argument("--vae-batch", type=int, default=100)
    parser.add_argument("--rnn-batch", type=int, default=32)
    parser.add_argument("--rnn-seq", type=int, default=100)
    parser.add_argument("--rnn-epochs", type=int, default=5)
    parser.add_argument("--rnn-hidden", type=int, default=512)
    args = parser.parse_args()
    p = args.ranks
    frames = args.episodes * args.steps_per_episode
    ways = {"one": (1, 1), "solo": (1, p), "ranks": (p, 1)}  # name: (ranks, threads each)
    shown = {"one": "1 process x 1 thread", "solo": f"1 process x {p} threads",
             "ranks": f"{p} ranks x 1 thread"}

    def scaling(rate: dict[str, float]) -> str:
        """Threads' and ranks' efficiency over the one-thread rate, and ranks over threads."""
        return (f"efficiency over {p} cores: threads {rate['solo'] / (p * rate['one']):.2f}, ranks "
                f"{rate['ranks'] / (p * rate['one']):.2f}; ranks/process {rate['ranks'] / rate['solo']:.2f}x")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "data"
        make_dataset(base, args.episodes, args.steps_per_episode)
        runs = {name: Path(tmp) / name for name in ways}
        for run in runs.values():
            shutil.copytree(base, run)

        vae = ["--epochs", "1", "--z-size", "64", "--batch-size", str(args.vae_batch)]
        figures = {}
        for name, (ranks, threads) in ways.items():
            stage("wm.vae_train", runs[name], vae, ranks, threads)
            figures[name] = rates(runs[name] / "vae" / "metrics.csv", frames, min(args.vae_batch, frames))
        line = "; ".join(f"{shown[n]} {figures[n][0]:,.0f} frames/s "
                         f"(after the first step {figures[n][1]:,.0f})" for n in ways)
        after = {name: figure[1] for name, figure in figures.items()}
        print(f"V training ({frames:,} frames, batch {args.vae_batch}, z 64): {line}; {scaling(after)}",
              flush=True)

        # The series and M on one V (the solo run's) for all, so they see the same inputs.
        for name in ("one", "ranks"):
            shutil.rmtree(runs[name] / "vae")
            shutil.copytree(runs["solo"] / "vae", runs[name] / "vae")
        encoded = {}
        for name, (ranks, threads) in ways.items():
            stage("wm.series", runs[name], ["--batch-size", "1000"], ranks, threads)
            encoded[name] = json.loads((runs[name] / "series" / "summary.json").read_text())["frames_per_s"]
        line = "; ".join(f"{shown[n]} {encoded[n]:,.0f} frames/s" for n in ways)
        print(f"series ({frames:,} frames): {line}; {scaling(encoded)}", flush=True)

        rnn = ["--epochs", str(args.rnn_epochs), "--batch-size", str(args.rnn_batch), "--seq-len",
               str(args.rnn_seq), "--hidden-size", str(args.rnn_hidden)]
        per = frames // args.rnn_batch  # (steps per stream: Doom's batches are streams of episodes)
        timesteps = (per - 1) * args.rnn_batch * args.rnn_epochs
        steps = {}
        for name, (ranks, threads) in ways.items():
            stage("wm.rnn_train", runs[name], rnn, ranks, threads)
            steps[name] = rates(runs[name] / "rnn" / "metrics.csv", timesteps,
                                args.rnn_batch * min(args.rnn_seq, per - 1))
        line = "; ".join(f"{shown[n]} {steps[n][0]:,.0f} timesteps/s (after the first step "
                         f"{steps[n][1]:,.0f})" for n in ways)
        print(f"M training, Doom (LSTM {args.rnn_hidden}, z 64), batch {args.rnn_batch} x seq "
              f"{args.rnn_seq}, {frames:,} steps x {args.rnn_epochs} epochs: {line}; "
              f"{scaling({name: figure[1] for name, figure in steps.items()})}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
