"""Curves of a run, drawn headless with matplotlib (no pyplot, no display): the ES training
history like the original's plotting notebook, and the V and M loss logs."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from wm.core.errors import WMError
from wm.data.files import write_bytes

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
    return _save(training_figure(history, threshold, title), path)


def training_figure(history: list[dict[str, float]], threshold: float | None = None,
                    title: str = "") -> Figure:
    """The figure of :func:`training_curves`. Only what is visible is drawn and named in the legend: the
    min-max band where min and max differ, the max where it is not the mean, the running best from two
    evaluations on (a run whose every candidate scored the same shows one line)."""
    if not history:
        raise WMError("the training history is empty: nothing to plot")
    generation = [r["generation"] for r in history]
    # Minutes for a short run, hours for a long one.
    unit, scale = ("hours", 3600) if history[-1]["elapsed_s"] > 7200 else ("minutes", 60)
    clock = [r["elapsed_s"] / scale for r in history]
    low, mean, high = ([r[k] for r in history] for k in ("fitness_min", "fitness_mean", "fitness_max"))
    evaluated = [(i, r["eval_score"]) for i, r in enumerate(history)
                 if not math.isnan(r.get("eval_score", math.nan))]
    best, running = [], -math.inf
    for _, score in evaluated:
        running = max(running, score)
        best.append(running)
    band = any(h > lo for lo, h in zip(low, high, strict=True))
    own_max = any(h != m for m, h in zip(mean, high, strict=True))
    point = "o" if len(history) == 1 else None  # one generation: a line of one point draws nothing
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    for ax, x, label in zip(fig.subplots(1, 2, sharey=True), (generation, clock),
                            ("generation", f"wall-clock {unit}"), strict=True):
        if band:
            ax.fill_between(x, low, high, color="tab:blue", alpha=0.15, label="population min - max")
        ax.plot(x, mean, color="tab:blue", marker=point, label="population mean")
        if own_max:
            ax.plot(x, high, color="tab:blue", lw=0.8, ls=":", marker=point, label="population max")
        if evaluated:
            ex = [x[i] for i, _ in evaluated]
            ax.plot(ex, [s for _, s in evaluated], "o", color="tab:orange", ms=4,
                    label="evaluation of the mean")
            if len(evaluated) > 1:
                ax.step(ex, best, where="post", color="tab:red", label="best evaluation")
        if threshold is not None:
            ax.axhline(threshold, color="black", ls="--", lw=1, label=f"solved ({threshold:g})")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes = fig.axes
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))  # generations are whole numbers
    axes[0].set_ylabel("return")
    axes[0].legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def loss_curves(rows: list[dict[str, float]], path: str | Path, title: str = "") -> Path:
    """One panel per logged loss against the optimiser step, with epoch boundaries marked."""
    return _save(loss_figure(rows, title), path)


EPOCH_MARKS = 50  # at most this many epoch boundaries drawn (every k-th beyond): more would grey the panel


def loss_figure(rows: list[dict[str, float]], title: str = "") -> Figure:
    """The figure of :func:`loss_curves`: the epoch boundaries dashed orange (not grid-like), named
    "epoch" in the first panel's legend; values written in full, with no offset over the panel."""
    columns = [k for k in (rows[0] if rows else {}) if k not in ("step", "epoch", "wall_s")]
    if not columns:
        raise WMError("the loss log has no rows: nothing to plot")
    steps = [r["step"] for r in rows]
    boundaries = [rows[i]["step"] for i in range(1, len(rows)) if rows[i]["epoch"] != rows[i - 1]["epoch"]]
    every = math.ceil(len(boundaries) / EPOCH_MARKS) if boundaries else 1
    marked = "epoch" if every == 1 else f"epoch (1 in {every})"
    # Constrained layout keeps the figure's title above the panels' titles.
    fig = Figure(figsize=(4 * len(columns), 3.4), layout="constrained")
    for ax, column in zip(fig.subplots(1, len(columns), squeeze=False)[0], columns, strict=True):
        ax.plot(steps, [r[column] for r in rows], lw=1)
        for k, b in enumerate(boundaries[every - 1 :: every]):
            ax.axvline(b, color="tab:orange", ls="--", lw=0.8, alpha=0.7, label=marked if k == 0 else None)
        # An offset (e.g. "1e-8+9.999e-4" over a learning rate) would cover the title: plain values.
        formatter = ScalarFormatter(useOffset=False)
        formatter.set_scientific(False)
        ax.yaxis.set_major_formatter(formatter)
        ax.set_title(column)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if boundaries:
        fig.axes[0].legend(loc="upper right", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def last_values(rows: list[dict[str, float]]) -> dict[str, Any]:
    """The last row of a loss log (what a report quotes as the final losses)."""
    return dict(rows[-1]) if rows else {}
