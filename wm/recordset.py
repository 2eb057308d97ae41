"""The run's episode data set as later stages see it: episodes 0..N-1 of RUN/record/."""

from __future__ import annotations

import json
from pathlib import Path

from wm.errors import WMError
from wm.record import episode_path
from wm.rundir import stage_config

RECORD_DIR = "record"
SUMMARY_NAME = "summary.json"


def episode_files(run: str | Path) -> list[Path]:
    """Paths of the run's N extracted episodes; one clear error if extraction has not finished."""
    saved = stage_config(run, "extract")
    record = Path(run) / RECORD_DIR
    if not saved or not record.is_dir():
        raise WMError(f"no episodes in {record}: run `python -m wm.extract --run {run}` first")
    paths = [episode_path(record, i) for i in range(int(saved["episodes"]))]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise WMError(
            f"{len(missing)} of {len(paths)} episodes are missing from {record} (first: {missing[0].name}): "
            f"run `python -m wm.extract --run {run}` to finish extraction"
        )
    return paths


def frame_count(run: str | Path) -> int | None:
    """Frames in the data set, from extraction's summary (None when it has none)."""
    path = Path(run) / RECORD_DIR / SUMMARY_NAME
    try:
        return int(json.loads(path.read_text())["frames"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
