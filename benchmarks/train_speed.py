"""Training on this CPU: V frames/s, V peak memory on 1x vs 10x data, M timesteps/s (CarRacing, Doom).

    python benchmarks/train_speed.py [--episodes 20] [--steps-per-episode 200] [--rnn-steps 10]
        [--rnn-seq 100] [--rnn-batch 100] [--doom-shapes 32x100,100x500] [--doom-steps 6]
        [--skip-vae] [--skip-memory] [--skip-rnn]

V figures come from real ``python -m wm.vae_train`` runs (one epoch, --threads 0: all cores) on
synthetic episodes; the run on E episodes gives both the speed and the 1x peak memory, so it runs
unless both --skip-vae and --skip-memory are given. M figures come from training steps in this
process (forward, mixture NLL (+ done loss for Doom), backward, gradients clipped by value 1.0,
Adam): CarRacing on one random batch of windows; Doom as ``wm.rnn_train`` trains it, on consecutive
batches of ``stream_batches`` over synthetic episodes whose lengths follow the random policy's (so
restarts fall where real ones do), the state carried from batch to batch. Beside it, the same
batches with the restarts after each window's first step dropped: one LSTM call per batch, the
ceiling of any batching that avoids splitting the LSTM at restarts (not a valid training: episodes
would run into each other). Each M step is timed alone and kept only if other processes used at
most 10% of the cores meanwhile (from /proc/stat), so a shared machine's load does not count.
Prints one line per figure. Speeds depend on the machine; the memory ratio (10x data set / 1x) is
the portable figure: V streams frames from disk, so it should be near 1.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from wm.core.config import EXTRACT_DATA_FIELDS  # noqa: E402
from wm.data.record import Episode, episode_path, write_episode  # noqa: E402
from wm.data.recordset import RECORD_DIR, SUMMARY_NAME  # noqa: E402
from wm.data.rundir import save_stage_config  # noqa: E402
from wm.models.mdrnn import MDRNN, MDRNNConfig, carracing_config, done_loss, doom_config, mixture_nll  # noqa: E402
from wm.stages.rnn_train import stream_batches  # noqa: E402

FRAME = (64, 64, 3)
Batch = dict[str, torch.Tensor]


def synthetic_frames(rng: np.random.Generator, steps: int) -> np.ndarray:
    """(steps, 64, 64, 3) uint8: a blocky random scene that scrolls, with noise in a band of rows, so
    the files compress a few times, as real frames do, rather than not at all or almost entirely."""
    scene = rng.integers(0, 248, (16, 32, 3), dtype=np.uint8).repeat(4, axis=0).repeat(4, axis=1)
    shifts = np.cumsum(rng.integers(-2, 3, steps))
    frames = np.stack([np.roll(scene, int(s), axis=1)[:, :64] for s in shifts])
    frames[:, 48:56] += rng.integers(0, 8, (steps, 8, 64, 3), dtype=np.uint8)  # <= 247 + 7: no wrap
    return frames


def make_dataset(run: Path, episodes: int, steps: int) -> None:
    """Write ``episodes`` synthetic Doom-like episodes to RUN/record/ and record the extract stage,
    as ``wm.extract`` would, so that ``wm.vae_train`` takes them as the run's data set."""
    rng = np.random.default_rng(0)
    record = run / RECORD_DIR
    record.mkdir(parents=True, exist_ok=True)
    terminated = np.zeros(steps, bool)
    terminated[-1] = True
    for i in range(episodes):
        meta = {"env": "doom", "policy": "hold", "seed": 0, "max_steps": 2100, "index": i, "steps": steps}
        write_episode(episode_path(record, i), Episode(
            obs=synthetic_frames(rng, steps),
            action=rng.uniform(-1, 1, (steps, 1)).astype(np.float32),
            reward=np.ones(steps, np.float32),
            terminated=terminated,
            truncated=np.zeros(steps, bool),
            meta=meta,
        ))
    save_stage_config(run, "extract", {
        "env": "doom", "episodes": episodes, "policy": "hold", "max_steps": 2100, "seed": 0,
        "preset": "small", "log_every": 10.0, "run": str(run),
    }, EXTRACT_DATA_FIELDS)
    (record / SUMMARY_NAME).write_text(json.dumps({"frames": episodes * steps}))


def run_vae(run: Path) -> tuple[float, float, float, float]:
    """One epoch of a real ``wm.vae_train`` run on RUN's data set.

    Returns (training seconds: the wall_s of RUN/vae/metrics.csv's last row, counted from the start
    of training, so start-up and the end-of-epoch checkpoint and previews are excluded; the seconds
    from the first step's row to the last's; the whole process's wall seconds; its peak RSS in MiB,
    from ``os.wait4``).
    """
    command = [sys.executable, "-m", "wm.vae_train", "--run", str(run), "--epochs", "1",
               "--z-size", "64", "--batch-size", "100", "--threads", "0", "--device", "cpu",
               "--log-every", "1000"]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    start = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            output.seek(0)
            sys.exit(f"wm.vae_train failed ({process.returncode}):\n{output.read().decode(errors='replace')}")
    with open(run / "vae" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    first, last = float(rows[0]["wall_s"]), float(rows[-1]["wall_s"])
    return last, last - first, seconds, usage.ru_maxrss / 1024  # ru_maxrss: KiB on Linux


def vae_figures(episodes: int, steps: int) -> tuple[float, float]:
    """Make a data set, train V on it for one epoch, print its speed; returns (peak MiB, seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        start = time.perf_counter()
        make_dataset(run, episodes, steps)
        made = time.perf_counter() - start
        train_s, after_first_s, process_s, peak = run_vae(run)
    frames = episodes * steps
    # The first step is slow (torch's first-call set-up, the first episodes read): the rate after it.
    steady = (f"; after the first step {(frames - 100) / after_first_s:,.0f} frames/s"
              if frames > 100 and after_first_s > 0 else "")
    print(f"V training ({episodes} episodes x {steps} = {frames:,} frames, batch 100, z 64, "
          f"--threads 0 = {os.cpu_count()}): {frames / train_s:,.0f} frames/s "
          f"(frames / wall_s of metrics.csv's last row = {train_s:.1f}s of training, start-up excluded; "
          f"whole process {process_s:.1f}s; data set made in {made:.1f}s){steady}", flush=True)
    return peak, process_s


# The random policy's Doom episodes at ViZDoom's default skill: 317 +- 166 steps (RESULTS.md: 2,000
# episodes, 638,899 frames), none shorter than ~100, capped at 2,100. Drawn as 100 + a gamma variable
# with the same mean and spread.
DOOM_MEAN, DOOM_SD, DOOM_MIN, DOOM_MAX = 317.0, 166.0, 100, 2100


def doom_episode_lengths(rng: np.random.Generator, frames: int) -> list[int]:
    """Episode lengths like the random policy's, adding up to at least ``frames``."""
    excess = DOOM_MEAN - DOOM_MIN
    shape, scale = (excess / DOOM_SD) ** 2, DOOM_SD**2 / excess
    lengths: list[int] = []
    while sum(lengths) < frames:
        lengths.append(int(min(DOOM_MAX, DOOM_MIN + rng.gamma(shape, scale))))
    return lengths


def doom_series(rng: np.random.Generator, frames: int, config: MDRNNConfig) -> list[dict[str, np.ndarray]]:
    """Synthetic encoded episodes (random latents) of Doom-like lengths, ``frames`` steps or more."""
    series = []
    for n in doom_episode_lengths(rng, frames):
        terminated = np.zeros(n, bool)
        terminated[-1] = True
        series.append({"mu": rng.standard_normal((n, config.z_size), np.float32),
                       "logvar": np.full((n, config.z_size), -3.0, np.float32),
                       "action": rng.uniform(-1, 1, (n, config.action_size)).astype(np.float32),
                       "terminated": terminated})
    return series


def train_step(model: MDRNN, optimizer: torch.optim.Optimizer, batch: Batch,
               state: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """One M training step as ``wm.rnn_train`` takes it; returns the state to carry (Doom)."""
    z = batch["mu"] + torch.exp(0.5 * batch["logvar"]) * torch.randn_like(batch["mu"])
    params, done_logit, state = model(z[:, :-1], batch["action"], batch.get("restart"), state)
    loss = mixture_nll(params, z[:, 1:], mask=batch.get("valid"))
    if done_logit is not None:
        loss = loss + done_loss(done_logit, batch["done"])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)
    optimizer.step()
    return None if done_logit is None else (state[0].detach(), state[1].detach())


def cpu_seconds_of_all() -> float:
    """CPU seconds every process on the machine has used since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def timed(action: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, share of the cores other processes used meanwhile, result) of ``action()``."""
    others0, own0, start = cpu_seconds_of_all(), time.process_time(), time.perf_counter()
    result = action()
    others1, own1, seconds = cpu_seconds_of_all(), time.process_time(), time.perf_counter() - start
    others = max(0.0, (others1 - others0) - (own1 - own0))
    return seconds, others / ((os.cpu_count() or 1) * seconds), result


QUIET = 0.10  # at most this share of the cores used by other processes during a timed step


def timed_steps(config: MDRNNConfig, batches: Iterator[Batch], steps: int) -> tuple[float, str]:
    """Median seconds per training step over the quiet ones of ``steps`` batches (all of them, if
    none was quiet), after 2 warm-up batches, from a fresh M; and a note of how many were quiet."""
    torch.manual_seed(0)
    model = MDRNN(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    state = None
    for _ in range(2):
        state = train_step(model, optimizer, next(batches), state)
    runs = []
    for _ in range(steps):
        seconds, others, state = timed(lambda s=state: train_step(model, optimizer, next(batches), s))
        runs.append((seconds, others))
    quiet = [seconds for seconds, others in runs if others <= QUIET]
    note = (f"median of {len(quiet)}/{steps} quiet steps" if quiet else
            f"median of {steps} steps, none quiet: others used {min(o for _, o in runs):.0%}+ of the cores")
    return float(np.median(quiet or [seconds for seconds, _ in runs])), note


def rnn_speed(name: str, config: MDRNNConfig, batch: int, seq: int, steps: int) -> None:
    """Time ``steps`` M training steps on one random batch of windows (no restarts); print the rates."""
    mu = torch.randn(batch, seq + 1, config.z_size)
    action = torch.rand(batch, seq, config.action_size) * 2 - 1
    one = {"mu": mu, "logvar": torch.full_like(mu, -3.0), "action": action}
    seconds, note = timed_steps(config, iter(lambda: one, None), steps)
    print(f"M training {name} (batch {batch} x seq {seq}, LSTM {config.hidden_size}, z {config.z_size}, "
          f"{torch.get_num_threads()} threads, {note}): {batch / seconds:,.1f} sequences/s, "
          f"{batch * seq / seconds:,.0f} timesteps/s, {seconds:.2f}s per step", flush=True)


def doom_batches(series: list[dict[str, np.ndarray]], batch: int, seq: int) -> list[Batch]:
    """One epoch of Doom batches as ``wm.rnn_train`` makes them (its first: epoch 1, seed 0)."""
    rng = np.random.default_rng([0, 1])
    return [{k: torch.as_tensor(v) for k, v in b.items() if k != "first"}
            for b in stream_batches(series, batch, seq, rng)]


def without_restarts(batch: Batch) -> Batch:
    """``batch`` with no restart after its first step: M runs it as one LSTM call."""
    restart = batch["restart"].clone()
    restart[:, 1:] = False
    return {**batch, "restart": restart}


def doom_rnn_speed(batch: int, seq: int, steps: int) -> None:
    """Doom's M trained on ``steps`` consecutive stream batches (after 2 warm-up ones), as trained
    (one LSTM call per stretch between restarts) and with the restarts dropped (one call, the
    ceiling); prints both rates, their ratio, and the episodes and calls behind them."""
    config = doom_config()
    series = doom_series(np.random.default_rng(0), (steps + 3) * batch * (seq + 1), config)
    batches = doom_batches(series, batch, seq)[: steps + 2]
    calls = np.mean([1 + int(b["restart"][:, 1:].any(dim=0).sum()) for b in batches[2:]])
    restarts = np.mean([int(b["restart"].sum()) for b in batches[2:]])
    lengths = [len(s["mu"]) for s in series]
    rates = {}
    ceiling = [without_restarts(b) for b in batches]
    ways = ((f"as trained ({calls:.0f} LSTM calls per batch)", batches),
            ("restarts dropped (1 call; ceiling, not a valid training)", ceiling))
    for name, these in ways:
        seconds, note = timed_steps(config, iter(these), steps)
        rates[name] = batch * seq / seconds
        print(f"M training Doom (batch {batch} x seq {seq}, LSTM {config.hidden_size}, z {config.z_size}, "
              f"{torch.get_num_threads()} threads, {note}), {name}: "
              f"{rates[name]:,.0f} timesteps/s, {seconds:.2f}s per step", flush=True)
    trained, one_call = rates.values()
    print(f"M training Doom (batch {batch} x seq {seq}): one call per batch would be "
          f"{one_call / trained:.2f}x; "
          f"episodes of {np.mean(lengths):.0f} +- {np.std(lengths):.0f} steps, "
          f"{restarts:.0f} restarts per batch", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="E: episodes of the V data set")
    parser.add_argument("--steps-per-episode", type=int, default=200, help="frames per episode")
    parser.add_argument("--rnn-steps", type=int, default=10, help="timed M training steps per config")
    parser.add_argument("--rnn-seq", type=int, default=100, help="M sequence length (the paper: 999)")
    parser.add_argument("--rnn-batch", type=int, default=100, help="M sequences per batch")
    parser.add_argument("--doom-shapes", default="32x100,100x500",
                        help="Doom M: BATCHxSEQ shapes, comma-separated (the small preset's, the original's)")
    parser.add_argument("--doom-steps", type=int, default=6,
                        help="timed Doom M training steps per shape and way")
    parser.add_argument("--skip-vae", action="store_true", help="skip the V speed run")
    parser.add_argument("--skip-memory", action="store_true", help="skip the V runs on E and 10xE episodes")
    parser.add_argument("--skip-rnn", action="store_true", help="skip the M training speeds")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; torch {torch.__version__}",
          flush=True)
    steps = args.steps_per_episode
    if not (args.skip_vae and args.skip_memory):
        # The run on E episodes gives both the speed figure and the 1x peak memory.
        peak_1x, _ = vae_figures(args.episodes, steps)
        if not args.skip_memory:
            peak_10x, _ = vae_figures(10 * args.episodes, steps)
            print(f"V training peak RSS (os.wait4 ru_maxrss): {args.episodes} episodes {peak_1x:,.0f} MiB; "
                  f"{10 * args.episodes} episodes {peak_10x:,.0f} MiB; ratio 10x/1x "
                  f"{peak_10x / peak_1x:.2f} (streaming: near 1)", flush=True)
    if not args.skip_rnn:
        rnn_speed("CarRacing", carracing_config(), args.rnn_batch, args.rnn_seq, args.rnn_steps)
        for shape in args.doom_shapes.split(","):
            batch, seq = (int(n) for n in shape.lower().split("x"))
            doom_rnn_speed(batch, seq, args.doom_steps)


if __name__ == "__main__":
    main()
