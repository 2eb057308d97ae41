"""An ES training job on a cheap noisy problem, for tests/es/test_trainer.py; runs alone or under
mpirun: ``python -m tests.es.es_job OUT_DIR OPTIMIZER GENERATIONS [--crash] [--popsize N]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from es.checkpoint import Checkpoints
from es.mpi import run_ranks
from es.strategies import make_strategy
from es.trainer import ESSettings, train
from wm.data.files import atomic_write

DIM = 12


def make_evaluate(crash: bool = False):
    def evaluate(params: np.ndarray, seed: int) -> tuple[float, int]:
        if crash:
            raise RuntimeError("worker failed on purpose")
        noise = np.random.default_rng(seed).normal(0, 0.01)
        return float(-np.sum((params - 0.5) ** 2) + noise), 1 + seed % 7

    return evaluate


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("optimizer")
    parser.add_argument("generations", type=int)
    parser.add_argument("--popsize", type=int, default=8)
    parser.add_argument("--crash", action="store_true")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--problem", default="sphere", help="names the problem in the checkpoint")
    args = parser.parse_args()
    out = Path(args.out)
    settings = ESSettings(generations=args.generations, num_episode=2, eval_every=2, eval_episodes=3, seed=1)

    def job(comm) -> None:
        state = train(comm, lambda: make_strategy(args.optimizer, DIM, args.popsize, seed=3),
                      lambda: make_evaluate(args.crash), settings,
                      Checkpoints(out / "checkpoint.npz", atomic_write),
                      identity={"problem": args.problem, "popsize": args.popsize}, force=args.force,
                      on_row=lambda row, strategy, state: None)
        if comm.is_root:
            print(json.dumps({"generation": state.generation, "ranks": comm.size,
                              "fitness": [r["fitness_mean"] for r in state.history]}))

    return run_ranks(job, clean_errors=(ValueError,))


if __name__ == "__main__":
    sys.exit(main())
