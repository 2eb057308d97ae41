"""The run's episode data set as later stages see it: episodes 0..N-1 of RUN/record/ (extraction's
random policy), then the episodes of every complete round of iterative training, in round order.

A round's episodes live in RUN/record/round-RR/ (their own indices 0..n-1), so extraction's
episodes stay as they are whatever the rounds add; a round joins the data set once its player has
written RUN/record/round-RR/summary.json (all its episodes made), so a half-played round is never
trained on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple

from wm.core.errors import WMError
from wm.data.files import read_json
from wm.data.record import episode_path
from wm.data.rundir import first_missing, stage_config

RECORD_DIR = "record"
SUMMARY_NAME = "summary.json"
ROUND_PREFIX = "round-"


class DataEpisode(NamedTuple):
    """One episode of the data set and where it came from (0: extraction; r: round r's player)."""

    path: Path
    round: int


def round_dir(run: str | Path, round_: int) -> Path:
    """Where round ``round_``'s (1, 2, ...) real episodes are recorded."""
    return Path(run) / RECORD_DIR / f"{ROUND_PREFIX}{round_:02d}"


def complete_rounds(run: str | Path) -> list[int]:
    """The rounds 1, 2, ... whose episodes are all recorded, up to the first that is not."""
    rounds: list[int] = []
    while (read_json(round_dir(run, len(rounds) + 1) / SUMMARY_NAME) or {}).get("episodes"):
        rounds.append(len(rounds) + 1)
    return rounds


def data_set(run: str | Path, rounds: bool = True) -> list[DataEpisode]:
    """Every episode of the run's data set (with ``rounds``, the complete rounds' too); one clear
    error if extraction has not finished or a file is missing."""
    saved = stage_config(run, "extract")
    record = Path(run) / RECORD_DIR
    if not saved or not record.is_dir():
        raise WMError(f"no episodes in {record}: {first_missing(run)}")
    episodes = [DataEpisode(episode_path(record, i), 0) for i in range(int(saved["episodes"]))]
    for r in complete_rounds(run) if rounds else []:
        count = int(read_json(round_dir(run, r) / SUMMARY_NAME)["episodes"])
        episodes += [DataEpisode(episode_path(round_dir(run, r), i), r) for i in range(count)]
    missing = [e.path for e in episodes if not e.path.is_file()]
    if missing:
        first = missing[0]
        fix = (f"python -m wm.extract --run {run}" if first.parent == record
               else f"python -m wm.pipeline --run {run} ... to play the round again")
        raise WMError(f"{len(missing)} of {len(episodes)} episodes are missing from the data set (first: "
                      f"{first}): run `{fix}`")
    return episodes


def episode_files(run: str | Path, rounds: bool = True) -> list[Path]:
    """Paths of the run's episodes: extraction's N, then (with ``rounds``) the complete rounds'."""
    return [e.path for e in data_set(run, rounds)]


def data_digest(episodes: list[DataEpisode], round_weight: int = 1) -> str:
    """A short hash naming a data set and the weight of its rounds' episodes: M's checkpoint keeps
    it, so continuing M on a data set that grew is a decision, never an accident."""
    names = [f"{e.round}/{e.path.name}" for e in episodes]
    weight = round_weight if any(e.round for e in episodes) else 1  # (no rounds: nothing to weight)
    text = json.dumps({"episodes": names, "round_weight": weight})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def frame_count(run: str | Path) -> int | None:
    """Frames in the data set, from extraction's summary (None when it has none)."""
    path = Path(run) / RECORD_DIR / SUMMARY_NAME
    try:
        return int(json.loads(path.read_text())["frames"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
