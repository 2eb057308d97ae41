"""Did the ES get a signal? A generation whose candidates all scored the same teaches it nothing.

The usual case is Doom's dream when M never predicts death: every episode runs to the step cap, every
candidate scores the cap, and the controller drifts at random (it learns to stand still). Said in
the progress line of every such generation, in results.md and in the report, with the likely cause.
"""

from __future__ import annotations

from typing import Any

# Returns this close count as equal (they are means of float returns).
_TOLERANCE = 1e-9


def no_signal(row: dict[str, Any]) -> bool:
    """The generation's candidates all scored the same (history row: fitness_min / fitness_max)."""
    return abs(float(row["fitness_max"]) - float(row["fitness_min"])) <= _TOLERANCE


def cause(row: dict[str, Any], train: dict[str, Any]) -> str:
    """The likely cause and the fix, from the row and the training's settings."""
    capped = float(row.get("steps_mean", 0)) >= float(row.get("steps_max", 0)) > 0
    if train.get("dream") and capped:
        return ("every dream episode ran to the step cap: M never predicts death (its death probability "
                "never passes 0.5), so surviving is free in the dream. Train M on more data or for longer "
                "(a bigger preset), or dream at a higher --temperature")
    return ("every candidate's episodes gave the same return: the controller's outputs may not change the "
            "game (check the run's V and M), or sigma is too small (--sigma-init)")


def summary(history: list[dict[str, Any]], train: dict[str, Any]) -> str | None:
    """One sentence for results.md and the report when some generations had no signal, else None."""
    flat = [row for row in history if no_signal(row)]
    if not flat:
        return None
    last = flat[-1]
    return (f"**The ES had no signal in {len(flat)} of {len(history)} generations**: every candidate scored "
            f"{float(last['fitness_max']):.1f}. Likely cause: {cause(last, train)}.")
