"""Env steps per second for each env, and extraction throughput with 1 vs 2 MPI ranks.

    python benchmarks/env_speed.py [--steps-doom 4000] [--steps-carracing 600] [--ranks 2] [--repeats 3]

Prints one line per figure. Speeds depend on the machine; the rank ratio is the portable figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from es.launch import mpirun_command  # noqa: E402
from es.mpi import single_thread  # noqa: E402
from wm.envs import make_env  # noqa: E402
from wm.extract import run_episode  # noqa: E402
from wm.policies import make_policy  # noqa: E402


def steps_per_second(env_name: str, steps: int) -> tuple[float, float]:
    """(wrapped env steps/s including the 64x64 preprocessing, policy+env+recording steps/s)."""
    env = make_env(env_name)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    done_steps, start = 0, time.perf_counter()
    while done_steps < steps:
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        done_steps += 1
        if terminated or truncated:
            env.reset(seed=done_steps)
    env_rate = done_steps / (time.perf_counter() - start)
    policy = make_policy("hold" if env_name == "doom" else "brownian", env.action_space.shape[0])
    recorded, start, index = 0, time.perf_counter(), 0
    while recorded < steps:
        recorded += len(run_episode(env, policy, seed=0, index=index))
        index += 1
    env.close()
    return env_rate, recorded / (time.perf_counter() - start)


def extraction_rates(env_name: str, ranks: int, episodes: int, max_steps: int) -> tuple[float, float]:
    """Frames/s of a real ``wm.extract`` run (stepping, compressing, writing), and of re-running it
    on the finished data set (validating every file, making nothing): the cost of a resume."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "wm.extract", "--run", tmp, "--env", env_name,
                   "--episodes", str(episodes), "--max-steps", str(max_steps), "--log-every", "1000"]
        if ranks > 1:
            command = [*mpirun_command(ranks), *command]
        rates = []
        for _ in range(2):
            subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
            summary = json.loads((Path(tmp) / "record" / "summary.json").read_text())
            rates.append(summary["frames"] / summary["seconds"])
        return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps-doom", type=int, default=4000)
    parser.add_argument("--steps-carracing", type=int, default=600)
    parser.add_argument("--ranks", type=int, default=2, help="ranks to compare with 1")
    parser.add_argument("--repeats", type=int, default=3, help="extraction runs per rank count")
    args = parser.parse_args()
    single_thread()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    for env_name, steps in (("doom", args.steps_doom), ("carracing", args.steps_carracing)):
        env_rate, record_rate = steps_per_second(env_name, steps)
        print(f"{env_name}: env.step {env_rate:,.0f} steps/s; random-policy episodes "
              f"{record_rate:,.0f} steps/s (1 process, {steps} steps)")
    jobs = {"doom": (32, 2100), "carracing": (4 * args.ranks, 250)}
    for env_name, (episodes, max_steps) in jobs.items():
        # Alternate 1 and N ranks and take medians: this machine's speed drifts between runs.
        runs: dict[int, list[tuple[float, float]]] = {1: [], args.ranks: []}
        for _ in range(args.repeats):
            for ranks in runs:
                runs[ranks].append(extraction_rates(env_name, ranks, episodes, max_steps))
        one, check_one = np.median(runs[1], axis=0)
        many, check_many = np.median(runs[args.ranks], axis=0)
        print(f"{env_name} extraction ({episodes} episodes, cap {max_steps}, median of {args.repeats}): "
              f"1 rank {one:,.0f} frames/s; {args.ranks} ranks {many:,.0f} frames/s; "
              f"ratio {many / one:.2f}x")
        print(f"{env_name} resume check (validate every file): 1 rank {check_one:,.0f} frames/s; "
              f"{args.ranks} ranks {check_many:,.0f} frames/s")

if __name__ == "__main__":
    main()
