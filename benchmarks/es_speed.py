"""ES trainer figures: update time per algorithm, parallel efficiency, worker busy fraction, the
master's CPU use, and the full policy's overhead over a bare CarRacing step.

    python benchmarks/es_speed.py [--generations 3] [--popsize 32] [--num-episode 4] [--skip-policy]

Parallel figures use a synthetic CPU-bound episode whose length is drawn like Doom's (100 to 2100
steps, 0.5 ms of arithmetic per step), so they measure the trainer, not an env. Run it alone:
the workers need the cores.
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

from es.checkpoint import Checkpoints  # noqa: E402
from es.launch import mpirun_command  # noqa: E402
from es.mpi import run_ranks  # noqa: E402
from es.strategies import make_strategy  # noqa: E402
from es.trainer import ESSettings, train  # noqa: E402
from wm.data.files import atomic_write  # noqa: E402

STEP_S = 0.5e-3  # about a Doom step with the full policy on this machine (env ~0.4 ms, V+M+C ~1 ms)


def busy_episode(params: np.ndarray, seed: int) -> tuple[float, int]:
    """Doom-like lengths (100 to 2100 steps, mostly short), STEP_S of arithmetic per step."""
    steps = int(min(2100, 100 + np.random.default_rng(seed).exponential(300)))
    x = 0.0
    end = time.perf_counter() + steps * STEP_S
    while time.perf_counter() < end:
        x += 1.0
    return float(-np.sum(params**2)), steps


def worker_job(out: str, generations: int, popsize: int, num_episode: int) -> int:
    """Run inside mpirun: train on busy episodes; rank 0 prints JSON figures."""

    def job(comm) -> None:
        cpu0, wall0 = time.process_time(), time.monotonic()
        settings = ESSettings(generations=generations, num_episode=num_episode, eval_every=0, eval_episodes=1)
        state = train(comm, lambda: make_strategy("pepg", 64, popsize, seed=0), lambda: busy_episode,
                      settings, Checkpoints(Path(out) / "ckpt.npz", atomic_write),
                      identity={}, force=False, on_row=lambda *a: None)
        if comm.is_root:
            wall = time.monotonic() - wall0
            rows = state.history
            print(json.dumps({
                "generations_per_s": len(rows) / rows[-1]["elapsed_s"],
                "busy": [r["busy_fraction"] for r in rows],
                "master_cpu_fraction": (time.process_time() - cpu0) / wall,
            }))

    return run_ranks(job)


def run_parallel(ranks: int, generations: int, popsize: int, num_episode: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, __file__, "--worker-job", tmp, "--generations", str(generations),
                   "--popsize", str(popsize), "--num-episode", str(num_episode)]
        if ranks > 1:
            command = [*mpirun_command(ranks), *command]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])


def update_times(num_params: int = 1088, popsize: int = 64,
                 generations: int = 200) -> dict[str, tuple[float, float, float]]:
    """(median, mean, max) seconds of ask + tell per generation for each algorithm (fitness made up;
    enough generations that CMA-ES's occasional eigendecompositions are counted)."""
    times = {}
    for name in ("cma", "pepg", "openes", "snes", "ga"):
        strategy = make_strategy(name, num_params, popsize, seed=0)
        rng = np.random.default_rng(0)
        samples = []
        for _ in range(generations):
            start = time.perf_counter()
            solutions = strategy.ask()
            strategy.tell(-np.sum(solutions**2, axis=1) + rng.normal(0, 0.01, popsize))
            samples.append(time.perf_counter() - start)
        times[name] = (float(np.median(samples)), float(np.mean(samples)), float(np.max(samples)))
    return times


def policy_overhead(slots: int = 1, steps: int = 300) -> tuple[float, float]:
    """Seconds per CarRacing env step spent in the env, and in env + policy (V encode + C + M step,
    untrained weights, one thread), timed separately within the same steps; ``slots`` envs are
    stepped in lockstep with V and M batched over them, as ``wm.train --envs-per-worker``."""
    import torch

    from wm.envs.games import make_env
    from wm.envs.rollout import WorldModelAgent
    from wm.models.controller import LinearController
    from wm.models.mdrnn import MDRNN, carracing_config
    from wm.models.vae import ConvVAE, VAEConfig, to_tensor

    torch.set_num_threads(1)
    agent = WorldModelAgent(ConvVAE(VAEConfig(32)), MDRNN(carracing_config()))
    rng = np.random.default_rng(0)
    controllers = [LinearController(agent.spec, rng.normal(0, 0.1, agent.spec.num_params))
                   for _ in range(slots)]
    envs = [make_env("carracing", max_steps=steps + 1) for _ in range(slots)]
    env_s = policy_s = 0.0
    with torch.inference_mode():
        frames = [env.reset(seed=i)[0] for i, env in enumerate(envs)]
        h, c = agent.mdrnn.initial_state(slots)
        for _ in range(steps):
            start = time.perf_counter()
            z, _ = agent.vae.encode(to_tensor(np.stack(frames)))
            actions = torch.cat([ctl.act(ctl.features(z[i : i + 1], h[0, i : i + 1], c[0, i : i + 1]))
                                 for i, ctl in enumerate(controllers)])
            h, c = agent.mdrnn.advance(z, actions, (h, c))
            policy_s += time.perf_counter() - start
            start = time.perf_counter()
            frames = [env.step(actions[i].numpy())[0] for i, env in enumerate(envs)]
            env_s += time.perf_counter() - start
    for env in envs:
        env.close()
    env_steps = steps * slots
    return env_s / env_steps, (env_s + policy_s) / env_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--popsize", type=int, default=32)
    parser.add_argument("--num-episode", type=int, default=4)
    parser.add_argument("--skip-policy", action="store_true")
    parser.add_argument("--updates-only", action="store_true", help="only the ask + tell times")
    parser.add_argument("--worker-job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_job:
        sys.exit(worker_job(args.worker_job, args.generations, args.popsize, args.num_episode))
    print(f"machine: {os.cpu_count()} cores")
    for name, (median, mean, most) in update_times().items():
        print(f"ES update (ask + tell), 1088 parameters, population 64, 200 generations, {name}: median "
              f"{median * 1e3:.1f} ms, mean {mean * 1e3:.1f} ms, max {most * 1e3:.1f} ms", flush=True)
    if args.updates_only:
        return
    one = run_parallel(2, args.generations, args.popsize, args.num_episode)  # master + 1 worker
    two = run_parallel(3, args.generations, args.popsize, args.num_episode)  # master + 2 workers
    efficiency = two["generations_per_s"] / (2 * one["generations_per_s"])
    print(f"parallel efficiency (Doom-like episode lengths, population {args.popsize} x "
          f"{args.num_episode}): 1 worker {one['generations_per_s']:.3f} gen/s, 2 workers "
          f"{two['generations_per_s']:.3f} gen/s, efficiency {efficiency:.2f}")
    print(f"worker busy fraction per generation (2 workers): mean {np.mean(two['busy']):.3f}, "
          f"min {np.min(two['busy']):.3f}")
    print(f"master CPU use while workers play: {two['master_cpu_fraction']:.1%} of one core")
    if not args.skip_policy:
        for slots in (1, 8):
            bare, full = policy_overhead(slots)
            print(f"CarRacing step, {slots} env(s) per worker: env {bare * 1e3:.2f} ms, env + V+M+C policy "
                  f"{full * 1e3:.2f} ms; ratio {full / bare:.3f}")

if __name__ == "__main__":
    main()
