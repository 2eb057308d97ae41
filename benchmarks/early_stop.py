"""What the off-track early stop (wm.train --off-track-stop) saves, and what it changes, on real candidates.

    python benchmarks/early_stop.py --run runs/carracing-small [--population initial|checkpoint]
        [--popsize 32] [--patience 25,50,100,200] [--workers 2]

Plays one whole CarRacing episode (no early stop) for each candidate of an ES population with the
run's V and M, keeps every step's reward, then replays the stopping rule on those rewards
(wm.envs.early_stop.stopped_return, what the wrapper computes as it plays). For each patience it prints the
share of steps that would have been played, how many returns change and by how much, and whether the
ranking the strategy sees survives: Spearman's rank correlation of the fitnesses and the overlap of
the top half (the candidates CMA-ES recombines). ``initial`` is generation 1's population (a fresh
strategy, sigma 0.1); ``checkpoint`` is the next population of the run's RUN/es/checkpoint.npz.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from es.checkpoint import CHECKPOINT_NAME, Checkpoints  # noqa: E402
from es.mpi import single_thread  # noqa: E402
from es.strategies import make_strategy, strategy_from_state  # noqa: E402
from wm.envs.early_stop import stopped_return  # noqa: E402
from wm.envs.games import ENVS, make_env  # noqa: E402

ENV = "carracing"


class RewardTape(gym.Wrapper):
    """Keeps each episode's rewards, filed under the episode's seed in ``finished`` when it ends."""

    def __init__(self, env: gym.Env, finished: dict[int, list[float]]):
        super().__init__(env)
        self.finished, self.seed, self.rewards = finished, -1, []

    def reset(self, *, seed: int | None = None, **kwargs: Any) -> tuple[Any, dict]:
        self.seed, self.rewards = int(seed), []
        return self.env.reset(seed=seed, **kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.rewards.append(float(reward))
        if terminated or truncated:
            self.finished[self.seed] = self.rewards
        return obs, reward, terminated, truncated, info


def play_share(args: tuple[str, list[tuple[int, np.ndarray, int]], int]) -> dict[int, list[float]]:
    """In a worker process: play whole episodes (index, params, seed); returns their rewards by seed."""
    run, jobs, slots = args
    single_thread()
    from wm.envs.rollout import LockstepAgent, WorldModelAgent
    from wm.models.weights import load_mdrnn, load_vae

    agent = WorldModelAgent(load_vae(run)[0], load_mdrnn(run)[0])
    finished: dict[int, list[float]] = {}
    tapes = [RewardTape(make_env(ENV), finished) for _ in range(slots)]
    pending = iter(jobs)
    for _ in LockstepAgent(agent, tapes).run(lambda: next(pending, None)):
        pass
    for tape in tapes:
        tape.close()
    return finished


def population(run: str, which: str, popsize: int) -> np.ndarray:
    if which == "checkpoint":
        data = Checkpoints(Path(run) / "es" / CHECKPOINT_NAME).load()
        if data is None:
            raise SystemExit(f"error: no ES checkpoint in {Path(run) / 'es'}")
        return strategy_from_state(data["strategy"]).ask()
    from wm.stages.train import controller_spec

    return make_strategy("cma", controller_spec(run).num_params, popsize, seed=0, sigma_init=0.1).ask()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a CarRacing run with RUN/vae/vae.pt and RUN/rnn/rnn.pt")
    parser.add_argument("--population", choices=["initial", "checkpoint"], default="initial")
    parser.add_argument("--popsize", type=int, default=32, help="initial only: candidates")
    parser.add_argument("--patience", default="25,50,100,200")
    parser.add_argument("--workers", type=int, default=2, help="processes playing episodes")
    parser.add_argument("--slots", type=int, default=8, help="envs each process steps together")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    params = population(args.run, args.population, args.popsize)
    seeds = np.random.SeedSequence(args.seed).generate_state(len(params)) % 2**31  # (distinct: a key)
    jobs = [(i, params[i], int(seeds[i])) for i in range(len(params))]
    shares = [(args.run, jobs[w::args.workers], args.slots) for w in range(args.workers)]
    start = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        rewards = {seed: r for share in pool.map(play_share, shares) for seed, r in share.items()}
    wall = time.monotonic() - start
    episodes = [rewards[seed] for _, _, seed in jobs]
    full = np.array([np.sum(r, dtype=np.float64) for r in episodes])
    total_steps = sum(len(r) for r in episodes)
    print(f"{args.population} population of {len(params)} candidates, one whole episode each: "
          f"{total_steps} steps in {wall:.0f}s; returns {full.mean():.1f} +- {full.std():.1f} "
          f"(min {full.min():.1f}, max {full.max():.1f})")
    print("patience | steps played | returns changed | mean / max change | rank corr. | top half kept")
    spec = ENVS[ENV]
    half = len(params) // 2
    top = set(np.argsort(-full)[:half])
    for patience in (int(p) for p in args.patience.split(",")):
        stopped = [stopped_return(r, patience, spec.idle_reward, spec.max_steps) for r in episodes]
        returns = np.array([s[0] for s in stopped])
        played = sum(s[1] for s in stopped) / total_steps
        change = np.abs(returns - full)
        changed = change > 0.01
        kept = len(top & set(np.argsort(-returns)[:half])) / half
        print(f"{patience:8d} | {played:12.1%} | {changed.sum():6d} of {len(full):<6d} | "
              f"{change[changed].mean() if changed.any() else 0.0:6.1f} / {change.max():6.1f} | "
              f"{spearman(full, returns):10.3f} | {kept:.0%}")


if __name__ == "__main__":
    main()
