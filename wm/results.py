"""A run's results file: scores beside the random baseline and the paper, stage timings, config.

    python -m wm.results --run DIR      (the pipeline ends with it)

Everything is read from the stages' own outputs (summaries, metrics, histories, evaluations), so
the file is right however the stages were run. Writes RUN/results.json and RUN/results.md.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from wm.errors import WMError
from wm.files import atomic_write, read_json, write_json

# REFERENCE.md section 8: the paper's scores over 100 episodes, and what counts as solved.
PAPER = {
    "doom": {"score": "1092 +- 556 (trained in the dream at tau 1.15)", "random": "210 +- 108",
             "solved": 750},
    "carracing": {"score": "906 +- 21", "random": None, "solved": 900},
}


def _last_csv_value(path: Path, column: str) -> float | None:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return float(rows[-1][column]) if rows else None
    except (OSError, KeyError, ValueError):
        return None


def stage_seconds(run: Path) -> dict[str, float | None]:
    """Wall time of each stage, from its own logs (None where it has not run)."""
    def field(path: Path, key: str) -> float | None:
        data = read_json(path)
        return None if data is None or data.get(key) is None else float(data[key])

    return {
        "extract": field(run / "record" / "summary.json", "seconds"),
        "vae": _last_csv_value(run / "vae" / "metrics.csv", "wall_s"),
        "series": field(run / "series" / "summary.json", "seconds"),
        "rnn": _last_csv_value(run / "rnn" / "metrics.csv", "wall_s"),
        "train": _last_csv_value(run / "es" / "history.csv", "elapsed_s"),
        "evaluate": field(run / "eval" / "real.json", "seconds"),
        "random": field(run / "eval" / "random.json", "seconds"),
    }


def collect(run: str | Path) -> dict[str, Any]:
    """Everything results.md shows, as one dict."""
    run = Path(run)
    config = read_json(run / "config.json")
    if config is None:
        raise WMError(f"{run} is not a run directory (no readable config.json)")
    env = config.get("env")
    scores = {}
    for path in sorted((run / "eval").glob("*.json")):
        data = read_json(path)
        if data and "mean" in data:
            keys = ("where", "temperature", "params", "episodes", "mean", "std", "min", "median", "max",
                    "seconds")
            scores[path.stem] = {k: data.get(k) for k in keys}
    best = read_json(run / "es" / "best.json")
    data = read_json(run / "record" / "summary.json") or {}
    seconds = stage_seconds(run)
    return {
        "run": str(run), "env": env, "scores": scores,
        "training_best": None if best is None else {"score": best.get("score"),
                                                     "generation": best.get("generation")},
        "paper": PAPER.get(env),
        "data": {"episodes": data.get("episodes"), "frames": data.get("frames")},
        "seconds": seconds,
        "total_seconds": round(sum(s for s in seconds.values() if s), 1),
        "config": config.get("stages", {}),
    }


def _row(name: str, s: dict[str, Any]) -> str:
    where = s["where"] + (f" (tau {s['temperature']:g})" if s.get("temperature") else "")
    return (f"| {name} | {where} | {s['episodes']} | **{s['mean']:.1f} +- {s['std']:.1f}** | "
            f"{s['min']:.0f} | {s['median']:.0f} | {s['max']:.0f} |")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not run"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def summary_lines(results: dict[str, Any]) -> list[str]:
    """The verdict: the real-env score against the solve threshold and the paper."""
    paper = results["paper"] or {}
    real = results["scores"].get("real")
    if not (real and paper):
        return []
    verdict = "solved" if real["mean"] > paper["solved"] else "not solved"
    return [f"Real-env score **{real['mean']:.1f} +- {real['std']:.1f}** over {real['episodes']} "
            f"episodes: {verdict} (threshold {paper['solved']}); the paper: {paper['score']}.", ""]


def score_lines(results: dict[str, Any]) -> list[str]:
    """The table of every evaluation, the paper's random policy, the best score during training."""
    lines = ["| evaluation | where | episodes | mean +- std | min | median | max |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [_row(name, s) for name, s in results["scores"].items()]
    if (results["paper"] or {}).get("random"):
        lines += ["", f"The paper's random policy: {results['paper']['random']}."]
    if results["training_best"]:
        best = results["training_best"]
        where = "in M's dream" if results["config"].get("train", {}).get("dream") else "in the real env"
        lines += ["", f"Best score of the ES mean during training: {best['score']:.1f} (generation "
                  f"{best['generation']}, {where})."]
    return lines


def timing_lines(results: dict[str, Any]) -> list[str]:
    lines = ["| stage | wall time |", "| --- | --- |"]
    lines += [f"| {name} | {_duration(s)} |" for name, s in results["seconds"].items()]
    return lines + [f"| **total** | **{_duration(results['total_seconds'])}** |"]


def config_lines(results: dict[str, Any]) -> list[str]:
    return ["```json", json.dumps(results["config"], indent=2, sort_keys=True), "```"]


def markdown(results: dict[str, Any]) -> str:
    """results.md's text."""
    data = results["data"]
    lines = [f"# Results: {results['run']} ({results['env']})", "", *summary_lines(results),
             "## Scores", "", *score_lines(results),
             "", "## Data", "", f"{data['episodes']} episodes, {data['frames']} frames.",
             "", "## Wall time per stage", "", *timing_lines(results),
             "", "## Config", "", *config_lines(results), ""]
    return "\n".join(lines)


def write_results(run: str | Path) -> dict[str, Any]:
    """Write RUN/results.json and RUN/results.md; returns what they hold."""
    results = collect(run)
    write_json(Path(run) / "results.json", results)
    text = markdown(results)
    atomic_write(Path(run) / "results.md", lambda f: f.write(text.encode()))
    return results


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m wm.results", description=__doc__)
    parser.add_argument("--run", required=True, help="run directory")
    args = parser.parse_args(argv)
    try:
        write_results(args.run)
    except WMError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"[results] {Path(args.run) / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
