"""Training on this CPU: V frames/s, V peak memory on 1x vs 10x data, M sequences/s (CarRacing, Doom).

    python benchmarks/train_speed.py [--episodes 20] [--steps-per-episode 200] [--rnn-steps 10]
        [--rnn-seq 100] [--rnn-batch 100] [--restart-rate 0.01] [--skip-vae] [--skip-memory] [--skip-rnn]

V figures come from real ``python -m wm.vae_train`` runs (one epoch, --threads 0: all cores) on
synthetic episodes; the run on E episodes gives both the speed and the 1x peak memory, so it runs
unless both --skip-vae and --skip-memory are given. M figures come from training steps in this
process on one random batch (forward, mixture NLL (+ done loss for Doom), backward, gradients
clipped by value 1.0, Adam). Prints one line per figure. Speeds depend on the machine; the memory
ratio (10x data set / 1x) is the portable figure: V streams frames from disk, so it should be near 1.
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
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from wm.config import EXTRACT_DATA_FIELDS  # noqa: E402
from wm.mdrnn import MDRNN, MDRNNConfig, carracing_config, done_loss, doom_config, mixture_nll  # noqa: E402
from wm.record import Episode, episode_path, write_episode  # noqa: E402
from wm.recordset import RECORD_DIR, SUMMARY_NAME  # noqa: E402
from wm.rundir import save_stage_config  # noqa: E402

FRAME = (64, 64, 3)


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


def rnn_speed(name: str, config: MDRNNConfig, batch: int, seq: int, steps: int,
              restart_rate: float) -> None:
    """Time ``steps`` M training steps (after 2 warm-up steps) on one random batch; print the rates."""
    torch.manual_seed(0)
    model = MDRNN(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    z = torch.randn(batch, seq + 1, config.z_size)
    action = torch.rand(batch, seq, config.action_size) * 2 - 1
    restart = done = None
    segments = 1
    if config.with_done:
        flags = torch.rand(batch, seq + 1) < restart_rate
        flags[:, 0] = True  # every sequence starts an episode
        restart, done = flags[:, :-1].float(), flags[:, 1:]  # done at t: an episode starts at t + 1
        segments = 1 + int(flags[:, 1:-1].any(dim=0).sum())

    def train_step() -> None:
        params, done_logit, _ = model(z[:, :-1], action, restart)
        loss = mixture_nll(params, z[:, 1:])
        if done_logit is not None:
            loss = loss + done_loss(done_logit, done)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(2):
        train_step()
    start = time.perf_counter()
    for _ in range(steps):
        train_step()
    seconds = (time.perf_counter() - start) / steps
    extra = (f"; restart flags on {restart_rate:.0%} of steps: {segments} LSTM calls per batch"
             if config.with_done else "")
    print(f"M training {name} (batch {batch} x seq {seq}, LSTM {config.hidden_size}, z {config.z_size}, "
          f"{torch.get_num_threads()} threads, mean of {steps} steps): {batch / seconds:,.1f} sequences/s, "
          f"{batch * seq / seconds:,.0f} timesteps/s, {seconds:.2f}s per step{extra}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="E: episodes of the V data set")
    parser.add_argument("--steps-per-episode", type=int, default=200, help="frames per episode")
    parser.add_argument("--rnn-steps", type=int, default=10, help="timed M training steps per config")
    parser.add_argument("--rnn-seq", type=int, default=100, help="M sequence length (the paper: 999)")
    parser.add_argument("--rnn-batch", type=int, default=100, help="M sequences per batch")
    parser.add_argument("--restart-rate", type=float, default=0.01,
                        help="Doom M: fraction of steps that start a new episode")
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
        rnn_speed("CarRacing", carracing_config(), args.rnn_batch, args.rnn_seq, args.rnn_steps, 0.0)
        rnn_speed("Doom", doom_config(), args.rnn_batch, args.rnn_seq, args.rnn_steps, args.restart_rate)


if __name__ == "__main__":
    main()
