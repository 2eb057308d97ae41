"""Env steps per second for each env, and extraction throughput with 1 vs 2 MPI ranks.

    python benchmarks/env_speed.py [--steps-doom 4000] [--steps-carracing 600] [--ranks 2] [--repeats 3]
        [--agent-episodes 3] [--run DIR] [--agent-only]

Prints one line per figure. Speeds depend on the machine; the rank ratio is the portable figure.
The agent figures (official vs fast CarRacing, whole episodes with V + M + C) set the ES's cost per
core; without ``--run`` (a CarRacing run with V, M and es/best.json) V, M and C are random, of the
real sizes.
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
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from es.launch import mpirun_command  # noqa: E402
from es.mpi import single_thread  # noqa: E402
from wm.envs.fast_carracing import FastCarRacingEnv  # noqa: E402
from wm.envs.games import CarRacingEnv, make_env  # noqa: E402
from wm.envs.policies import make_policy  # noqa: E402
from wm.stages.extract import run_episode  # noqa: E402

CARRACING_ENVS = {"official": CarRacingEnv, "fast": FastCarRacingEnv}


def steps_per_second(env_name: str, steps: int, env: Any = None) -> tuple[float, float]:
    """(wrapped env steps/s including the 64x64 preprocessing, policy+env+recording steps/s)."""
    env = make_env(env_name) if env is None else env
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


class TimedEnv:
    """An env that adds up the seconds spent in its reset and step: the rest of an agent's episode
    is the policy (V encode, M step, C)."""

    def __init__(self, env: Any):
        self.env, self.seconds = env, 0.0

    def reset(self, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.env.reset(**kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def step(self, action: np.ndarray) -> Any:
        start = time.perf_counter()
        try:
            return self.env.step(action)
        finally:
            self.seconds += time.perf_counter() - start


def carracing_agent(run: str | None) -> tuple[Any, np.ndarray]:
    """(WorldModelAgent, controller parameters): the run's, or random ones of the real sizes."""
    from wm.envs.rollout import WorldModelAgent
    from wm.models.mdrnn import MDRNN, MDRNNConfig
    from wm.models.vae import ConvVAE, VAEConfig

    if run is not None:
        from wm.models.weights import load_world_model
        from wm.stages.evaluate import load_controller

        return WorldModelAgent(*load_world_model(run)), load_controller(run, "best")
    torch.manual_seed(0)
    agent = WorldModelAgent(ConvVAE(VAEConfig(z_size=32)), MDRNN(MDRNNConfig(32, 3, 256)))
    return agent, np.random.default_rng(0).normal(0.0, 0.1, agent.spec.num_params)


def agent_rates(episodes: int, run: str | None) -> None:
    """Whole episodes of the full agent on the official and the fast CarRacing, alternated (this
    machine's speed drifts): steps/s on one core, and what share of a step the policy takes."""
    agent, params = carracing_agent(run)
    totals = {name: [0, 0.0, 0.0] for name in CARRACING_ENVS}  # steps, seconds, env seconds
    for episode in range(episodes):
        for name, make in CARRACING_ENVS.items():
            env = TimedEnv(make())
            start = time.perf_counter()
            result = agent.run_episode(env, params, seed=episode)
            totals[name][0] += result.steps
            totals[name][1] += time.perf_counter() - start
            totals[name][2] += env.seconds
            env.env.close()
    rates = {}
    for name, (steps, seconds, env_seconds) in totals.items():
        rates[name] = steps / seconds
        policy_ms = 1000 * (seconds - env_seconds) / steps
        print(f"carracing {name} env, full agent: {rates[name]:,.0f} steps/s per core over {episodes} "
              f"whole episodes ({steps} steps); env {1000 * env_seconds / steps:.2f} ms/step, policy "
              f"{policy_ms:.2f} ms/step ({100 * (seconds - env_seconds) / seconds:.0f}% of the step)")
    print(f"carracing full agent, fast / official: {rates['fast'] / rates['official']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps-doom", type=int, default=4000)
    parser.add_argument("--steps-carracing", type=int, default=600)
    parser.add_argument("--ranks", type=int, default=2, help="ranks to compare with 1")
    parser.add_argument("--repeats", type=int, default=3, help="extraction runs per rank count")
    parser.add_argument("--agent-episodes", type=int, default=3,
                        help="whole CarRacing episodes of the full agent on each env")
    parser.add_argument("--run", default=None, help="a CarRacing run whose V, M and best C to use")
    parser.add_argument("--agent-only", action="store_true", help="only the CarRacing env and agent figures")
    args = parser.parse_args()
    single_thread()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, make in CARRACING_ENVS.items():
        env_rate, record_rate = steps_per_second("carracing", args.steps_carracing, make())
        print(f"carracing {name} env: env.step {env_rate:,.0f} steps/s; random-policy episodes "
              f"{record_rate:,.0f} steps/s (1 process, {args.steps_carracing} steps)")
    agent_rates(args.agent_episodes, args.run)
    if args.agent_only:
        return
    env_rate, record_rate = steps_per_second("doom", args.steps_doom)
    print(f"doom: env.step {env_rate:,.0f} steps/s; random-policy episodes {record_rate:,.0f} steps/s "
          f"(1 process, {args.steps_doom} steps)")
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
