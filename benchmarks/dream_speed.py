"""Dream throughput: agent-steps per second of the batched dream (DreamEvaluate, what ES workers
run) against one episode at a time through the gymnasium DreamEnv with a linear controller.

    python benchmarks/dream_speed.py [--run RUN] [--slots 64 256 1024] [--seconds 5] [--repeats 3]

One thread, as an ES worker runs. Doom-sized M (LSTM 512, z 64, 5 mixtures); with --run, that
run's trained M and initial latents, else a random M whose done head never fires (every episode
runs to a 200-step cap, so the batch stays full). The two are measured alternately
``--repeats`` times and the ratio is taken per repeat, so a busy machine shifts both alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wm.envs.dream import DreamBatch, DreamEnv, DreamEvaluate, load_initial_latents  # noqa: E402
from wm.models.controller import LinearController, spec_for  # noqa: E402
from wm.models.mdrnn import MDRNN, doom_config  # noqa: E402

EPISODE_CAP = 200  # steps: short episodes so the timed loops can stop soon after their time is up


def model(run: str | None) -> tuple[MDRNN, np.ndarray, np.ndarray]:
    if run:
        from wm.models.weights import load_mdrnn

        return load_mdrnn(run)[0], *load_initial_latents(run)
    torch.manual_seed(0)
    m = MDRNN(doom_config()).eval()
    with torch.no_grad():
        m.head.bias[0] = -1e4  # never dies: episodes run to the cap
    rng = np.random.default_rng(0)
    return m, rng.normal(size=(100, 64)).astype(np.float32), np.full((100, 64), -2.0, np.float32)


def one_at_a_time(m: MDRNN, mu: np.ndarray, logvar: np.ndarray, params: list[np.ndarray],
                  seconds: float) -> float:
    """Agent-steps/s of DreamEnv + LinearController, episode after episode."""
    env = DreamEnv(m, mu, logvar, tau=1.15, max_steps=EPISODE_CAP)
    spec = spec_for(64, m.config.hidden_size, 1, True)
    steps, start, episode = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        controller = LinearController(spec, params[episode % len(params)])
        obs, _ = env.reset(seed=episode)
        done = False
        while not done and time.perf_counter() - start < seconds:
            with torch.inference_mode():
                action = controller.act(torch.from_numpy(obs)[None])[0].numpy()
            obs, _, terminated, truncated, _ = env.step(action)
            steps += 1
            done = terminated or truncated
        episode += 1
    return steps / (time.perf_counter() - start)


def batched(m: MDRNN, mu: np.ndarray, logvar: np.ndarray, params: list[np.ndarray], slots: int,
            seconds: float) -> float:
    """Agent-steps/s of DreamEvaluate with ``slots`` episodes stepped together (jobs never run out
    before the time is up, so the batch stays full)."""
    spec = spec_for(64, m.config.hidden_size, 1, True)
    evaluate = DreamEvaluate(DreamBatch(m, mu, logvar, tau=1.15, slots=slots, max_steps=EPISODE_CAP), spec)
    start, count = time.perf_counter(), 0

    def next_job():
        nonlocal count
        if time.perf_counter() - start > seconds:
            return None
        count += 1
        return count, params[count % len(params)], count

    dream = evaluate.dream
    stepped = 0
    # Count agent-steps as they happen: the number of active slots at each step.
    original_step = dream.step

    def counting_step(rows, actions):
        nonlocal stepped
        stepped += len(rows)
        return original_step(rows, actions)

    dream.step = counting_step  # type: ignore[method-assign]
    for _ in evaluate.run(next_job):
        if time.perf_counter() - start > seconds:
            break
    return stepped / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default=None, help="use this run's trained M (default: a random one)")
    parser.add_argument("--slots", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    m, mu, logvar = model(args.run)
    rng = np.random.default_rng(0)
    params = [rng.normal(0, 0.1, 1088 if m.config.hidden_size == 512 else
                         64 + 2 * m.config.hidden_size) for _ in range(16)]
    print(f"M: LSTM {m.config.hidden_size}, z {m.config.z_size}; one thread; {args.seconds:g} s per figure")
    for r in range(args.repeats):
        single = one_at_a_time(m, mu, logvar, params, args.seconds)
        line = [f"repeat {r + 1}: one at a time {single:,.0f} agent-steps/s"]
        for slots in args.slots:
            rate = batched(m, mu, logvar, params, slots, args.seconds)
            line.append(f"batch {slots}: {rate:,.0f} ({rate / single:.1f}x)")
        print(" | ".join(line), flush=True)


if __name__ == "__main__":
    main()
