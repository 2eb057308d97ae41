"""Wall time and core-hours of the CarRacing `paper` preset on bigger machines, from a measured run.

    python benchmarks/carracing_projection.py --run runs/carracing-small [--cores 64] [--nodes 1,4]
        [--measured-cores 2] [--torch-efficiency E]

Reads what the run measured (each stage's wall time from its own logs via wm.results, the data set's
size, each stage's config, the ES history) and prints, first, each stage's throughput on this machine
and, then, the paper preset's work divided by those rates on N nodes of C cores. What it assumes is
printed with it:
- extraction and ES episodes run on every core at the per-core rate measured here (both are
  independent episodes over MPI ranks; extraction measured 1.83-1.94x on 2 ranks, the ES trainer's
  parallel efficiency 0.99, BENCHMARKS.md);
- V, series and M hold one node, sped up by Amdahl's law fitted to each stage's parallel efficiency
  measured here by benchmarks/ddp_speed.py over 2 cores (the better of 2 threads and 2 data-parallel
  ranks, against one thread; MEASURED_EFFICIENCY): an efficiency e at 2 cores is a serial fraction
  s = 1/e - 1, and C cores run 1 / (s + (1 - s) / C) times one core's rate. Not measured beyond 2
  cores (no bigger machine has been lent); --torch-efficiency E sets e for all three; a GPU would
  be faster still;
- every ES and evaluation episode runs its full 1000 steps (the paper preset has no early stop; a
  good car that finishes the lap ends sooner, so this is an upper bound), on one rank per core, rank 0
  coordinating, the paper's 64 x 16 episodes per generation spread over the others.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wm.core.config import RNNTrainConfig, preset_values  # noqa: E402
from wm.data.files import read_json  # noqa: E402
from wm.pictures.results import collect  # noqa: E402

STEPS = 1000  # CarRacing's episode cap

# Parallel efficiency over 2 cores (rate / (2 x one thread's rate)), the better of threads and
# data-parallel ranks, from `python benchmarks/ddp_speed.py` on 2 idle cores (BENCHMARKS.md).
# Efficiency beyond 2 cores is extrapolated from these by Amdahl's law: no bigger machine has been lent.
MEASURED_EFFICIENCY = {"vae": 0.95, "series": 1.00, "rnn": 0.84}  # 2026-12-02


def es_step_seconds(run: Path, workers: int) -> tuple[float, int]:
    """Seconds per agent step (env + V + M + C) on one worker, from the generations that had no
    evaluation of the mean; returns it and the number of generations it averages."""
    with open(run / "es" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    seconds = steps = 0.0
    used, before = 0, 0.0
    for row in rows:
        elapsed = float(row["elapsed_s"])
        if not row["eval_score"]:
            seconds += elapsed - before
            steps += float(row["steps_mean"]) * int(row["evaluations"])
            used += 1
        before = elapsed
    return seconds * workers / steps, used


def measure(run: Path, cores: int) -> dict[str, float]:
    """This run's throughputs: per core for the MPI stages, per machine for V, series and M."""
    results = collect(run)
    seconds, config, frames = results["seconds"], results["config"], results["data"]["frames"]
    vae, rnn = config["vae"], config["rnn"]
    step_s, generations = es_step_seconds(run, cores)
    evaluation = read_json(run / "eval" / "real.json") or {}
    return {
        "extract_frames_per_core_s": frames / seconds["extract"] / cores,
        "vae_frames_per_s": vae["epochs"] * frames / seconds["vae"],
        "series_frames_per_s": frames / seconds["series"],
        "rnn_timesteps_per_s": (rnn["epochs"] * rnn["steps_per_epoch"] * rnn["batch_size"] * rnn["seq_len"]
                                / seconds["rnn"]),
        "es_step_s": step_s, "es_generations_measured": generations,
        "eval_step_s": (seconds["evaluate"] * (evaluation.get("ranks", cores + 1) - 1)
                        / (evaluation["episodes"] * evaluation["steps_mean"])),
    }


def paper_work() -> dict[str, float]:
    stages = ("extract", "vae", "rnn", "train")
    extract, vae, rnn, train = (preset_values(stage, "carracing", "paper") for stage in stages)
    frames = extract["episodes"] * extract["max_steps"]
    defaults = RNNTrainConfig(run="-")  # (steps per epoch and batch size: the stage's defaults)
    steps_per_epoch, batch = defaults.steps_per_epoch, defaults.batch_size
    evaluations = train["generations"] // train["eval_every"]
    return {
        "frames": frames, "vae_frames": vae["epochs"] * frames,
        "rnn_timesteps": rnn["epochs"] * steps_per_epoch * batch * rnn["seq_len"],
        "generations": train["generations"], "tasks": train["popsize"] * train["num_episode"],
        "evaluations": evaluations, "eval_episodes": train["eval_episodes"], "final_episodes": 200,
    }


def amdahl(efficiency_at_2: float, cores: int) -> float:
    """Speed-up over one core on ``cores`` by Amdahl's law, its serial fraction fitted to the
    parallel efficiency measured at 2 cores (1.0: none, linear scaling)."""
    serial = min(max(1.0 / efficiency_at_2 - 1.0, 0.0), 1.0)
    return 1.0 / (serial + (1.0 - serial) / cores)


def project(rates: dict[str, float], work: dict[str, float], cores: int, nodes: int,
            measured_cores: int, efficiency: dict[str, float]) -> dict[str, float]:
    """Seconds per stage for ``nodes`` x ``cores``; ``efficiency``: V's, the series' and M's
    parallel efficiency on one node."""
    total = cores * nodes
    workers = total - 1  # rank 0 coordinates the ES (as wm.submit starts it: --ntasks = the cores)
    # The run measured V, series and M on all its cores; a node runs them amdahl(cores) /
    # amdahl(measured_cores) times as fast.
    node_speedup = {stage: amdahl(e, cores) / amdahl(e, measured_cores) for stage, e in efficiency.items()}
    # Episodes the busiest worker plays per generation: all are ~1000 steps, so a generation lasts
    # as long as the workers that play one more than the others.
    per_worker = math.ceil(work["tasks"] / workers)
    per_eval = math.ceil(work["eval_episodes"] / workers)
    es = (work["generations"] * per_worker + work["evaluations"] * per_eval) * STEPS * rates["es_step_s"]
    return {
        "extract": work["frames"] / (rates["extract_frames_per_core_s"] * total),
        "vae": work["vae_frames"] / (rates["vae_frames_per_s"] * node_speedup["vae"]),
        "series": work["frames"] / (rates["series_frames_per_s"] * node_speedup["series"]),
        "rnn": work["rnn_timesteps"] / (rates["rnn_timesteps_per_s"] * node_speedup["rnn"]),
        "train": es,
        "evaluate": math.ceil(work["final_episodes"] / workers) * STEPS * rates["eval_step_s"],
    }


def duration(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 48:
        return f"{hours / 24:.1f} d"
    return f"{hours:.1f} h" if hours >= 1 else f"{seconds / 60:.0f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finished CarRacing run (wm.pipeline) to measure from")
    parser.add_argument("--cores", type=int, default=64, help="cores per node")
    parser.add_argument("--nodes", default="1,4", help="node counts to project for")
    parser.add_argument("--measured-cores", type=int, default=os.cpu_count() or 1,
                        help="cores the run used (this machine's)")
    parser.add_argument("--torch-efficiency", type=float, default=None,
                        help="V/series/M: their parallel efficiency at 2 cores, one figure for all three "
                             "(default: each stage's measured by benchmarks/ddp_speed.py)")
    args = parser.parse_args()
    if args.torch_efficiency is not None and not 0 < args.torch_efficiency <= 1:
        parser.error(f"--torch-efficiency {args.torch_efficiency}: a fraction in (0, 1]")
    efficiency = (dict.fromkeys(MEASURED_EFFICIENCY, args.torch_efficiency) if args.torch_efficiency
                  else MEASURED_EFFICIENCY)

    rates = measure(Path(args.run), args.measured_cores)
    work = paper_work()
    print(f"measured on {args.measured_cores} cores ({args.run}):")
    print(f"  extraction {rates['extract_frames_per_core_s']:.0f} frames/s per core; V "
          f"{rates['vae_frames_per_s']:.0f} frames/s; series {rates['series_frames_per_s']:.0f} frames/s; "
          f"M {rates['rnn_timesteps_per_s']:.0f} timesteps/s")
    print(f"  ES {rates['es_step_s'] * 1e3:.2f} ms per agent step per worker (env + V + M + C, "
          f"{rates['es_generations_measured']} generations); final evaluation "
          f"{rates['eval_step_s'] * 1e3:.2f} ms")
    shown = (f"{stage} {e:.2f} (x{amdahl(e, args.cores):.1f} on {args.cores} cores)"
             for stage, e in efficiency.items())
    print(f"  V, series, M: parallel efficiency at 2 cores {', '.join(shown)} (Amdahl's law fitted to 2 "
          "cores)")
    print(f"paper preset: {work['frames']:,.0f} frames, V {work['vae_frames']:,.0f} frames, M "
          f"{work['rnn_timesteps']:,.0f} timesteps, ES {work['generations']} generations x {work['tasks']} "
          f"episodes + {work['evaluations']} evaluations x {work['eval_episodes']}, all of {STEPS} steps")
    stages = ["extract", "vae", "series", "rnn", "train", "evaluate"]
    print("| nodes x cores | " + " | ".join(stages) + " | total wall | core-hours |")
    print("|" + " --- |" * (len(stages) + 3))
    for nodes in (int(n) for n in args.nodes.split(",")):
        times = project(rates, work, args.cores, nodes, args.measured_cores, efficiency)
        # V, series and M hold one node; the others wait (or are released between jobs under Slurm).
        mpi = times["extract"] + times["train"] + times["evaluate"]
        torch = times["vae"] + times["series"] + times["rnn"]
        core_hours = (mpi * nodes + torch) * args.cores / 3600
        print(f"| {nodes} x {args.cores} | " + " | ".join(duration(times[s]) for s in stages)
              + f" | {duration(mpi + torch)} | {core_hours:,.0f} |")


if __name__ == "__main__":
    main()
