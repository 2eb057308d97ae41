"""Curves of a run, drawn headless with matplotlib (no pyplot, no display): the ES training
history like the original's plotting notebook, and the V and M loss logs."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from wm.errors import WMError
from wm.files import write_bytes

DPI = 100


def read_csv_rows(path: str | Path) -> list[dict[str, float]]:
    """A log's rows with every value as a float (NaN where empty); one clear error if unreadable."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise WMError(f"{path}: cannot read ({err.strerror})") from err

    def number(value: str | None) -> float:
        try:
            return float(value) if value not in (None, "") else math.nan
        except ValueError:
            return math.nan

    return [{k: number(v) for k, v in row.items() if k is not None} for row in rows]


def _save(fig: Figure, path: str | Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, buffer.getvalue())
    return path


def training_curves(history: list[dict[str, float]], path: str | Path, threshold: float | None = None,
                    title: str = "") -> Path:
    """Fitness mean, min-max band and max per generation, the evaluations of the mean and their running
    best, against the generation (left) and the wall-clock time (right); ``threshold`` drawn dashed."""
    if not history:
        raise WMError("the training history is empty: nothing to plot")
    generation = [r["generation"] for r in history]
    # Minutes for a short run, hours for a long one.
    unit, scale = ("hours", 3600) if history[-1]["elapsed_s"] > 7200 else ("minutes", 60)
    clock = [r["elapsed_s"] / scale for r in history]
    evaluated = [(i, r["eval_score"]) for i, r in enumerate(history)
                 if not math.isnan(r.get("eval_score", math.nan))]
    best, running = [], -math.inf
    for _, score in evaluated:
        running = max(running, score)
        best.append(running)
    fig = Figure(figsize=(12, 4.2))
    for ax, x, label in zip(fig.subplots(1, 2, sharey=True), (generation, clock),
                            ("generation", f"wall-clock {unit}"), strict=True):
        ax.fill_between(x, [r["fitness_min"] for r in history], [r["fitness_max"] for r in history],
                        color="tab:blue", alpha=0.15, label="population min - max")
        ax.plot(x, [r["fitness_mean"] for r in history], color="tab:blue", label="population mean")
        ax.plot(x, [r["fitness_max"] for r in history], color="tab:blue", lw=0.8, ls=":",
                label="population max")
        if evaluated:
            ex = [x[i] for i, _ in evaluated]
            ax.plot(ex, [s for _, s in evaluated], "o", color="tab:orange", ms=4,
                    label="evaluation of the mean")
            ax.step(ex, best, where="post", color="tab:red", label="best evaluation")
        if threshold is not None:
            ax.axhline(threshold, color="black", ls="--", lw=1, label=f"solved ({threshold:g})")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes = fig.axes
    axes[0].set_ylabel("return")
    axes[0].legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def loss_curves(rows: list[dict[str, float]], path: str | Path, title: str = "") -> Path:
    """One panel per logged loss against the optimiser step, with epoch boundaries marked."""
    columns = [k for k in (rows[0] if rows else {}) if k not in ("step", "epoch", "wall_s")]
    if not columns:
        raise WMError("the loss log has no rows: nothing to plot")
    steps = [r["step"] for r in rows]
    boundaries = [rows[i]["step"] for i in range(1, len(rows)) if rows[i]["epoch"] != rows[i - 1]["epoch"]]
    fig = Figure(figsize=(4 * len(columns), 3.4))
    for ax, column in zip(fig.subplots(1, len(columns), squeeze=False)[0], columns, strict=True):
        ax.plot(steps, [r[column] for r in rows], lw=1)
        for b in boundaries[:50]:  # more than that would only grey the panel
            ax.axvline(b, color="grey", lw=0.5, alpha=0.4)
        ax.set_title(column)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def last_values(rows: list[dict[str, float]]) -> dict[str, Any]:
    """The last row of a loss log (what a report quotes as the final losses)."""
    return dict(rows[-1]) if rows else {}
