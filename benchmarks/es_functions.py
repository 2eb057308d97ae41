"""The ES engine on shifted test functions: best value found per strategy, median and min-max over seeds.

    python benchmarks/es_functions.py [--dims 100 1088] [--functions sphere rastrigin]
        [--strategies pepg openes snes cma ga] [--generations 200] [--popsize 64] [--seeds 5]
        [--option pepg:optimizer=adam --option pepg:learning_rate=0.01 ...]

Every strategy starts at x0 = 0 with ``make_strategy``'s defaults (sigma_init 0.1 unless
``--sigma-init``), weight decay off unless ``--weight-decay`` (these are noise-free minimisations:
a penalty on the weights only moves the optimum). The functions are shifted so the optimum is not
at the start: ``f(x) = g(x - s)``, with ``s`` drawn once per seed and dimension from U(-shift, shift)
(``--shift``, 1.0 by default), the same ``s`` for every strategy. The value is the best ``f`` of any
candidate evaluated (lower is better; the optimum is 0). With ``--noise SD`` the strategies see
``f + N(0, SD^2)`` (as episode returns are noisy) and the value is then the noise-free ``f`` of
``result().mean``, the parameters one would deploy (the best noisy score would reward luck). Only
numpy and the project's ``es`` (and pycma for ``cma``); one process. Run it niced beside other work:
``nice -n 19 env OMP_NUM_THREADS=1 python ...``.

estool's original PEPG / OpenES (Adam at 0.01) are the rows ``--strategies pepg@estool`` with
``--option pepg@estool:optimizer=adam --option pepg@estool:learning_rate=0.01
--option pepg@estool:learning_rate_limit=0.01 --option pepg@estool:learning_rate_decay=0.9999``
(``es.pepg.PEPG.ESTOOL``; OpenES's limit is 0.001).
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from es.strategies import STRATEGIES, make_strategy  # noqa: E402


def sphere(z: np.ndarray) -> np.ndarray:
    return np.sum(z * z, axis=1)


def rastrigin(z: np.ndarray) -> np.ndarray:
    return 10.0 * z.shape[1] + np.sum(z * z - 10.0 * np.cos(2.0 * np.pi * z), axis=1)


def ellipsoid(z: np.ndarray) -> np.ndarray:
    """Ill-conditioned (1e6) separable ellipsoid: per-coordinate step sizes matter."""
    n = z.shape[1]
    scales = 10.0 ** (6.0 * np.arange(n) / max(1, n - 1))
    return np.sum(scales * z * z, axis=1)


FUNCTIONS = {"sphere": sphere, "rastrigin": rastrigin, "ellipsoid": ellipsoid}


def shift_of(dim: int, seed: int, scale: float) -> np.ndarray:
    return np.random.default_rng([dim, seed, 7]).uniform(-scale, scale, dim)


def run_one(name: str, function, dim: int, seed: int, args, options: dict) -> tuple[float, float]:
    """(best value found, mean seconds of ask+tell per generation)."""
    shift = shift_of(dim, seed, args.shift)
    strategy = make_strategy(name, dim, args.popsize, seed, sigma_init=args.sigma_init,
                             weight_decay=args.weight_decay, **options)
    spent = 0.0
    noise = np.random.default_rng([dim, seed, 8])
    for _ in range(args.generations):
        started = time.perf_counter()
        solutions = strategy.ask()
        spent += time.perf_counter() - started
        fitness = -function(solutions - shift)
        if args.noise > 0:
            fitness = fitness + noise.normal(0.0, args.noise, len(fitness))
        started = time.perf_counter()
        strategy.tell(fitness)
        spent += time.perf_counter() - started
    result = strategy.result()
    value = -result.best_fitness if args.noise == 0 else float(function((result.mean - shift)[None])[0])
    return value, spent / args.generations


def parse_options(items: list[str]) -> dict[str, dict]:
    """``--option NAME:key=value`` (the value a Python literal, else a string) per strategy label.

    A label may carry a suffix after ``@`` to run one strategy under several settings:
    ``--option pepg@estool:optimizer=adam`` runs ``pepg`` as the row ``pepg@estool``.
    """
    out: dict[str, dict] = {}
    for item in items:
        label, _, pair = item.partition(":")
        key, _, text = pair.partition("=")
        if not key or not _:
            raise SystemExit(f"--option wants LABEL:key=value, got {item!r}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        out.setdefault(label, {})[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[100, 1088])
    parser.add_argument("--functions", nargs="+", default=["sphere", "rastrigin"], choices=list(FUNCTIONS))
    parser.add_argument("--strategies", nargs="+", default=["pepg", "openes", "snes", "cma"],
                        help="strategy names, or LABEL = name@variant with --option LABEL:key=value")
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sigma-init", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--shift", type=float, default=1.0)
    parser.add_argument("--noise", type=float, default=0.0, help="SD of Gaussian noise on each fitness")
    parser.add_argument("--option", action="append", default=[], metavar="LABEL:KEY=VALUE")
    args = parser.parse_args()
    options = parse_options(args.option)
    for label in args.strategies:
        if label.partition("@")[0] not in STRATEGIES:
            raise SystemExit(f"unknown strategy {label!r}; choose among {', '.join(STRATEGIES)}")

    print(f"best value after {args.generations} generations x {args.popsize} (lower is better; "
          f"median [min-max] over {args.seeds} seeds); shift U(-{args.shift:g}, {args.shift:g}), "
          f"sigma_init {args.sigma_init:g}, weight decay {args.weight_decay:g}"
          + (f", noise SD {args.noise:g} (value: f at the final mean)" if args.noise else ""))
    print(f"{'function':<10} {'dim':>5} | {'strategy':<24} | {'median':>10} | {'min - max':>23} | ms/gen")
    for function_name in args.functions:
        for dim in args.dims:
            for label in args.strategies:
                name = label.partition("@")[0]
                runs = [run_one(name, FUNCTIONS[function_name], dim, seed, args, options.get(label, {}))
                        for seed in range(args.seeds)]
                best = np.array([r[0] for r in runs])
                ms = 1000 * np.mean([r[1] for r in runs])
                print(f"{function_name:<10} {dim:>5} | {label:<24} | {np.median(best):>10.4g} | "
                      f"{best.min():>10.4g} - {best.max():<10.4g} | {ms:6.1f}", flush=True)


if __name__ == "__main__":
    main()
