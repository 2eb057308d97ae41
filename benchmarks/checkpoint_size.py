"""The ES checkpoint's size and its write and read times, per strategy, against the pickle format of
earlier versions (which unpickled code on load).

    python benchmarks/checkpoint_size.py [--params 1088] [--popsize 64] [--generations 5] [--repeats 5]

Each strategy runs a few generations on a sphere; its checkpoint is then written (encode, write,
fsync, rename: what the trainer does after every generation) and read back (load and rebuild the
strategy: what a resume does), best of ``--repeats``. 1088 parameters is the Doom controller.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from es.checkpoint import Checkpoints  # noqa: E402
from es.strategies import STRATEGIES, make_strategy, strategy_from_state  # noqa: E402
from wm.data.files import atomic_write  # noqa: E402


def legacy_bytes(strategy) -> bytes:
    """The checkpoint as versions before the state files wrote it: one pickle, pycma's inside."""
    state = strategy.state_dict()
    if strategy.name == "cma":
        state["algorithm"] = {"es": pickle.dumps(strategy._es, protocol=pickle.HIGHEST_PROTOCOL)}
    return pickle.dumps({"format": "es-checkpoint-1", "strategy": state, "trainer": {}, "settings": {},
                         "identity": {}}, protocol=pickle.HIGHEST_PROTOCOL)


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(strategy, directory: Path, repeats: int) -> list[str]:
    """Sizes (MiB) and times (ms) of the old and new checkpoints of ``strategy``, as table cells."""
    checkpoints = Checkpoints(directory / "checkpoint.npz", atomic_write)
    old_path = directory / "checkpoint.pkl"
    old_write = best_of(repeats, lambda: atomic_write(old_path, lambda f: f.write(legacy_bytes(strategy))))
    new_write = best_of(repeats, lambda: checkpoints.save(strategy.state_dict(), {}, {}, {}))
    new_read = best_of(repeats, lambda: strategy_from_state(checkpoints.load()["strategy"]))
    old_size, new_size = old_path.stat().st_size / 2**20, checkpoints.path.stat().st_size / 2**20
    return [f"{old_size:14.2f}", f"{new_size:8.2f}", f"{old_write * 1e3:12.1f}", f"{new_write * 1e3:12.1f}",
            f"{new_read * 1e3:11.1f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=int, default=1088)
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.params} parameters, population {args.popsize}, after {args.generations} generations; "
          f"times are the best of {args.repeats}")
    print(f"{'strategy':>8} | {'old pickle MiB':>14} | {'new MiB':>8} | {'old write ms':>12} | "
          f"{'new write ms':>12} | {'new read ms':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in STRATEGIES:
            strategy = make_strategy(name, args.params, args.popsize, seed=0)
            for _ in range(args.generations):
                solutions = strategy.ask()
                strategy.tell(-np.sum((solutions - 0.5) ** 2, axis=1))
            print(f"{name:>8} | " + " | ".join(measure(strategy, Path(tmp), args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
