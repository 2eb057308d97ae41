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

from wm.core.errors import WMError
from wm.data.files import atomic_write, read_json, write_json
from wm.data.rundir import es_dir, eval_names, final_round

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
        "rnn": _first_m_seconds(run),
        "train": _last_csv_value(run / "es" / "history.csv", "elapsed_s"),
        "evaluate": field(run / "eval" / "real.json", "seconds"),
        "random": field(run / "eval" / "random.json", "seconds"),
        **({"evaluate (fast env)": field(run / "eval" / "real-fast.json", "seconds")}
           if (run / "eval" / "real-fast.json").is_file() else {}),
        **_round_seconds(run),
    }


def _first_m_seconds(run: Path) -> float | None:
    """M's training before iterative training's rounds continued it (each round's own M time is in
    its round's entry): metrics.csv's wall_s counts on across them, so it is read at the last row of
    the epochs before the first complete round's."""
    path = run / "rnn" / "metrics.csv"
    try:
        with open(path, newline="") as f:
            rows = [(int(r["epoch"]), float(r["wall_s"])) for r in csv.DictReader(f)]
    except (OSError, KeyError, ValueError):
        return None
    if not rows:
        return None
    marks = [read_json(p) or {} for p in sorted((run / "rounds").glob("round-*.json"))]
    later = sum(int((m.get("settings") or {}).get("rnn_epochs", 0)) for m in marks)
    first = rows[-1][0] - later
    kept = [wall for epoch, wall in rows if epoch <= first]
    return kept[-1] if kept else None


def _round_seconds(run: Path) -> dict[str, float | None]:
    """Iterative training's rounds, each as one entry (from the mark of its completion)."""
    marks = [read_json(path) or {} for path in sorted((run / "rounds").glob("round-*.json"))]
    return {f"round {m['round']}": m.get("seconds") for m in marks if "round" in m}


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
                    "seconds", "foresight", "fast_env")
            scores[path.stem] = {k: data.get(k) for k in keys}
    # After iterative training the run's controller is the newest round's: the headline is its score.
    # (the newest round that has its evaluation: every figure below is of that one controller)
    newest = final_round(run)
    while newest > 0 and eval_names(newest)[0] not in scores:
        newest -= 1
    final = eval_names(newest)[0]
    best = read_json(run / es_dir(newest) / "best.json")
    data = read_json(run / "record" / "summary.json") or {}
    seconds = stage_seconds(run)
    rounds = round_rows(run, scores)
    return {
        "run": str(run), "env": env, "scores": scores, "final": final, "rounds": rounds,
        "paired": paired_comparison(run), "no_signal": _no_signal(run, es_dir(newest), config),
        "training_best": None if best is None else {"score": best.get("score"), "dir": es_dir(newest),
                                                     "generation": best.get("generation")},
        "paper": PAPER.get(env),
        "data": {"episodes": data.get("episodes"), "frames": data.get("frames"),
                 "rounds": played_rounds(run)},
        "seconds": seconds,
        "total_seconds": round(sum(s for s in seconds.values() if s), 1),
        "config": config.get("stages", {}),
    }


def paired_comparison(run: Path, official: str = "real", fast: str = "real-fast") -> dict[str, Any] | None:
    """The same controller on the official and the fast CarRacing over the same tracks (eval/real and
    eval/real-fast): the mean of the per-track differences, its standard error, and whether they
    agree within noise (the difference within two standard errors). None unless both were played on
    the same seeds."""
    a, b = read_json(run / "eval" / f"{official}.json"), read_json(run / "eval" / f"{fast}.json")
    # (the same controller: the same parameters' digest, however it was named on the command line)
    if not (a and b) or not a.get("seeds") or a.get("seeds") != b.get("seeds") \
            or a.get("controller") is None or a.get("controller") != b.get("controller"):
        return None
    import numpy as np

    diff = np.asarray(b["returns"], float) - np.asarray(a["returns"], float)
    n = len(diff)
    se = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    mean = float(diff.mean())
    return {"official": official, "fast": fast, "episodes": n, "official_mean": float(a["mean"]),
            "fast_mean": float(b["mean"]), "diff_mean": mean, "diff_std": float(diff.std(ddof=1)) if n > 1
            else float("nan"), "diff_se": se, "agree": bool(n > 1 and abs(mean) <= 2 * se)}


def paired_lines(results: dict[str, Any]) -> list[str]:
    """The paired comparison of the fast and the official env, as results.md says it (empty without)."""
    p = results.get("paired")
    if not p:
        return []
    verdict = "they agree within noise" if p["agree"] else "they differ by more than the noise"
    return ["## Fast env against the official one", "",
            f"The same controller on the same {p['episodes']} tracks: official gymnasium CarRacing-v3 "
            f"**{p['official_mean']:.1f}** (eval/{p['official']}), fast env **{p['fast_mean']:.1f}** "
            f"(eval/{p['fast']}). Per-track difference fast - official: mean {p['diff_mean']:+.1f}, std "
            f"{p['diff_std']:.1f}, standard error {p['diff_se']:.1f}: {verdict} (a paired comparison: "
            f"|mean difference| <= 2 standard errors).", ""]


def _no_signal(run: Path, directory: str, config: dict[str, Any]) -> str | None:
    """The ES's no-signal sentence for the run's controller's training (None: it had a signal)."""
    from wm.pictures.plots import read_csv_rows
    from wm.stages import signal_check

    path = run / directory / "history.csv"
    if not path.is_file():
        return None
    try:
        history = read_csv_rows(path)
    except (WMError, KeyError):
        return None
    return signal_check.summary(history, config.get("stages", {}).get("train", {}))


def _row(name: str, s: dict[str, Any]) -> str:
    where = s["where"] + (f" (tau {s['temperature']:g})" if s.get("temperature") else "") + \
        (" (fast env)" if s.get("fast_env") else "")
    return (f"| {name} | {where} | {s['episodes']} | **{s['mean']:.1f} +- {s['std']:.1f}** | "
            f"{s['min']:.0f} | {s['median']:.0f} | {s['max']:.0f} |")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not run"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def dream_lines(results: dict[str, Any]) -> list[str]:
    """Can the dream be trusted: M's foresight of real deaths, per policy, and the controller's
    dream score beside its real one (empty for a run without them, e.g. CarRacing)."""
    seen = {name: s["foresight"] for name, s in results["scores"].items()
            if s.get("where") == "real" and s.get("foresight")}
    if not seen:
        return []
    k, far = next(iter(seen.values()))["foresight_steps"], next(iter(seen.values()))["far"]
    lines = ["## Can the dream be trusted?", "",
             f"Along real-game episodes (M fed the real frames through V), a death is *foreseen* when M's "
             f"death probability passes 0.5 within its last {k} steps; a *false alarm* is a step at least "
             f"{far} steps before the episode's end where it does (the dream would have ended there).", "",
             "| policy (evaluation) | episodes | deaths | foreseen | false alarms per far step |",
             "| --- | --- | --- | --- | --- |"]
    for name, f in seen.items():
        share = f["foreseen_fraction"]
        fraction = "-" if share is None else f"{f['foreseen']} ({share:.0%})"
        rate = "-" if f["false_alarm_rate"] is None else f"{f['false_alarm_rate']:.2%}"
        lines.append(f"| {name} | {f['episodes']} | {f['deaths']} | {fraction} | {rate} |")
    gap = dream_gap(results)
    if gap:
        lines += ["", f"The controller scored **{gap['dream']:.1f}** in M's dream "
                  f"(tau {gap['temperature']:g}, {gap['source']}) and **{gap['real']:.1f}** in the real "
                  f"game: the dream score is {gap['ratio']:.2f}x the real one."]
    return lines + ["", *round_lines(results)]


def played_rounds(run: Path) -> list[dict[str, Any]]:
    """The real episodes each round of iterative training added to the data set (wm.play's summaries)."""
    from wm.data.recordset import SUMMARY_NAME, complete_rounds, round_dir

    keys = ("round", "episodes", "frames", "return_mean", "return_std", "sigma")
    return [{k: (read_json(round_dir(run, r) / SUMMARY_NAME) or {}).get(k) for k in keys}
            for r in complete_rounds(run)]


def round_rows(run: Path, scores: dict[str, Any]) -> list[dict[str, Any]]:
    """Iterative training, per round (0: the pipeline's first controller): the real-game score of
    the round's C, its best dream score during training, M's foresight of its deaths and of the
    random policy's; empty for a run without rounds."""
    rows = []
    for r in range(1000):
        real_name, random_name = eval_names(r)
        real, random = scores.get(real_name), scores.get(random_name) or {}
        if real is None:
            break
        best = read_json(run / es_dir(r) / "best.json") or {}
        dream = best.get("score")
        ratio = dream / real["mean"] if dream is not None and real["mean"] else None
        rows.append({"round": r, "real": real["mean"], "real_std": real["std"], "episodes": real["episodes"],
                     "dream": dream, "ratio": ratio,
                     "foresight": real.get("foresight"), "random_foresight": random.get("foresight")})
    return rows if len(rows) > 1 else []


def round_lines(results: dict[str, Any]) -> list[str]:
    """The table of iterative training's rounds (empty without rounds)."""
    rows = results.get("rounds") or []
    if not rows:
        return []

    def seen(f: dict[str, Any] | None) -> str:
        if not f or f.get("foreseen_fraction") is None:
            return "-"
        alarms = "-" if f.get("false_alarm_rate") is None else f"{f['false_alarm_rate']:.2%}"
        return f"{f['foreseen']}/{f['deaths']} ({f['foreseen_fraction']:.0%}), {alarms}"

    lines = ["## Iterative training", "",
             "Round 0 is the controller trained in the first dream; each later round added real episodes "
             "of the previous round's best controller (explored) to M's data, continued M on it all and "
             "the ES in the new dream. Foresight: deaths M foresaw, and false alarms per far step, along "
             "the round's real-game evaluations (M of that round).", "",
             "| round | real-game score | dream score | dream / real | M foresees C's deaths | "
             "M foresees the random policy's |", "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        dream = "-" if row["dream"] is None else f"{row['dream']:.1f}"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        lines.append(f"| {row['round']} | **{row['real']:.1f} +- {row['real_std']:.1f}** "
                     f"({row['episodes']}) | {dream} | {ratio} | {seen(row['foresight'])} | "
                     f"{seen(row['random_foresight'])} |")
    return lines + [""]


def dream_gap(results: dict[str, Any]) -> dict[str, Any] | None:
    """The trained controller's dream score (its best evaluation during training in the dream, or
    an evaluation in the dream at the training temperature) beside its real-game score."""
    train = results["config"].get("train", {})
    real = results["scores"].get(results.get("final", "real"))
    if not (train.get("dream") and real):
        return None
    temperature = train.get("temperature")
    dream = results["scores"].get(f"dream-tau{temperature:g}")
    score = dream["mean"] if dream else (results["training_best"] or {}).get("score")
    if score is None:
        return None
    source = (f"eval/dream-tau{temperature:g}" if dream else "its best evaluation during training")
    return {"dream": score, "real": real["mean"], "temperature": temperature, "source": source,
            "ratio": score / real["mean"] if real["mean"] else float("inf")}


def summary_lines(results: dict[str, Any]) -> list[str]:
    """The verdict: the real-env score against the solve threshold and the paper."""
    paper = results["paper"] or {}
    final = results.get("final", "real")
    real = results["scores"].get(final)
    if not (real and paper):
        return []
    verdict = "solved" if real["mean"] > paper["solved"] else "not solved"
    whose = "" if final == "real" else f" (the newest round's controller, eval/{final})"
    return [f"Real-env score **{real['mean']:.1f} +- {real['std']:.1f}** over {real['episodes']} "
            f"episodes{whose}: {verdict} (threshold {paper['solved']}); the paper: {paper['score']}.", ""]


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
                  f"{best['generation']} of {best.get('dir', 'es')}/, {where})."]
    if results.get("no_signal"):
        lines += ["", results["no_signal"]]
    return lines


def timing_lines(results: dict[str, Any]) -> list[str]:
    lines = ["| stage | wall time |", "| --- | --- |"]
    lines += [f"| {name} | {_duration(s)} |" for name, s in results["seconds"].items()]
    return lines + [f"| **total** | **{_duration(results['total_seconds'])}** |"]


def config_lines(results: dict[str, Any]) -> list[str]:
    return ["```json", json.dumps(results["config"], indent=2, sort_keys=True), "```"]


def data_line(data: dict[str, Any]) -> str:
    """The data set: extraction's episodes, then what each round of iterative training added."""
    rounds = "".join(f" Round {p['round']}: {p['episodes']} real episodes of the controller (sigma "
                     f"{p['sigma']:g}), {p['frames']} frames, return {p['return_mean']:.1f} +- "
                     f"{p['return_std']:.1f}." for p in data.get("rounds", []))
    return f"{data['episodes']} episodes, {data['frames']} frames.{rounds}"


def markdown(results: dict[str, Any]) -> str:
    """results.md's text."""
    data = results["data"]
    lines = [f"# Results: {results['run']} ({results['env']})", "", *summary_lines(results),
             "## Scores", "", *score_lines(results), "", *paired_lines(results), *dream_lines(results),
             "## Data", "", data_line(data),
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
