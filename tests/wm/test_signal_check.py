"""The ES's no-signal diagnosis: every candidate scoring the same is said, with its likely cause."""

from __future__ import annotations

import csv

from wm.pictures.results import _no_signal
from wm.stages import signal_check


def row(generation: int, low: float, high: float, steps_mean: float = 300.0, steps_max: int = 2100) -> dict:
    return {"generation": generation, "fitness_min": low, "fitness_max": high,
            "fitness_mean": (low + high) / 2, "steps_mean": steps_mean, "steps_max": steps_max}


def test_a_generation_without_spread_is_no_signal_and_its_cause_is_named():
    capped = row(1, 2100.0, 2100.0, steps_mean=2100.0, steps_max=2100)
    assert signal_check.no_signal(capped) and not signal_check.no_signal(row(2, 300.0, 900.0))
    assert "M never predicts death" in signal_check.cause(capped, {"dream": True})
    assert "--sigma-init" in signal_check.cause(capped, {"dream": False})  # (CarRacing: always 1000 steps)
    assert "--sigma-init" in signal_check.cause(row(1, 5.0, 5.0), {"dream": False})
    said = signal_check.summary([capped, row(2, 300.0, 900.0), capped], {"dream": True})
    assert said.startswith("**The ES had no signal in 2 of 3 generations**") and "2100.0" in said
    assert signal_check.summary([row(1, 1.0, 2.0)], {"dream": True}) is None


def test_results_read_it_from_the_training_history(tmp_path):
    (tmp_path / "es").mkdir()
    rows = [row(g, 2100.0, 2100.0, 2100.0, 2100) for g in (1, 2, 3)]
    with open(tmp_path / "es" / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    said = _no_signal(tmp_path, "es", {"stages": {"train": {"dream": True}}})
    assert "no signal in 3 of 3 generations" in said and "temperature" in said
    assert _no_signal(tmp_path, "es-round-1", {}) is None  # (no history: nothing to say)


def test_the_progress_line_says_it_with_the_cause_once(tmp_path, capsys):
    from dataclasses import asdict

    from es.trainer import GenerationRow, TrainerState
    from wm.stages.train import TrainingLog

    log = TrainingLog(tmp_path, 2, dream=True)
    state = TrainerState()
    for generation in (1, 2):
        flat = GenerationRow(generation, 1.0, 2100.0, 2100.0, 2100.0, 0.0, 0.1, 2100.0, 2100, 8, 1.0)
        state.history.append(asdict(flat))
        log(flat, None, state)
    out = capsys.readouterr().out
    assert out.count("no signal, every candidate scored 2100.0") == 2
    assert out.count("M never predicts death") == 1
