"""The run directory every stage shares, and its ``config.json``, checked by every stage."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wm.errors import WMError
from wm.files import write_json

CONFIG_NAME = "config.json"
CONFIG_VERSION = 1


def run_env(run: str | Path) -> str | None:
    """The env a run directory was made for, or None for a new run."""
    config = load_config(run)
    return config.get("env") if config else None


def load_config(run: str | Path) -> dict[str, Any] | None:
    path = Path(run) / CONFIG_NAME
    if not path.exists():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise WMError(f"{path}: unreadable run config ({err}); fix or remove it") from err
    stages = config.get("stages") if isinstance(config, dict) else None
    if not isinstance(stages, dict) or not all(isinstance(v, dict) for v in stages.values()):
        raise WMError(f"{path}: not a run config (no 'stages' object of objects); fix or remove it")
    return config


def stage_config(run: str | Path, stage: str) -> dict[str, Any] | None:
    """The settings a stage last ran with in this run directory, or None."""
    config = load_config(run)
    return config["stages"].get(stage) if config else None


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold ``DIRECTORY/.lock`` exclusively, so that two jobs never write one directory at once."""
    path = directory / ".lock"
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise WMError(f"{directory} is in use by another job (it holds {path}); wait or stop it") from err
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_stage_dir(run: str | Path, stage_dir: str) -> Path:
    """Create ``RUN/stage_dir`` and check it can be written; one clear error when it cannot."""
    run = Path(run)
    for path in (run, run / stage_dir):
        if path.exists() and not path.is_dir():
            raise WMError(f"--run {run}: {path} exists and is not a directory")
    try:
        (run / stage_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run / stage_dir):
            pass
    except OSError as err:
        raise WMError(f"--run {run}: cannot write to {run / stage_dir} ({err.strerror})") from err
    if not os.access(run / stage_dir, os.W_OK):
        raise WMError(f"--run {run}: {run / stage_dir} is not writable")
    return run / stage_dir


def save_stage_config(
    run: str | Path, stage: str, values: dict[str, Any], fixed: tuple[str, ...]
) -> None:
    """Record a stage's config in RUN/config.json, refusing changes to its ``fixed`` fields.

    A run directory holds one data set: re-running a stage with other values for the fields that
    shape its output would mix two data sets, so that is an error naming the field.
    """
    path = Path(run) / CONFIG_NAME
    config = load_config(run) or {"config_version": CONFIG_VERSION, "env": values["env"], "stages": {}}
    if config.get("env") != values["env"]:
        raise WMError(
            f"{path}: this run is for env {config.get('env')!r}, not {values['env']!r}; "
            "use another --run directory"
        )
    old = config["stages"].get(stage)
    if old is not None:
        for key in fixed:
            if key in old and old[key] != values[key]:
                raise WMError(
                    f"{path}: this run's {stage} used {key.replace('_', '-')}={old[key]!r}, "
                    f"the command asks for {values[key]!r}; keep it, start the stage over with --fresh "
                    "(training stages), or use another --run directory"
                )
    config["stages"][stage] = values
    write_json(path, config)


def move_aside(directory: Path) -> Path | None:
    """For --fresh: move a stage's earlier outputs into ``previous-<time>/`` (nothing is deleted)."""
    outputs = [p for p in directory.iterdir() if not p.name.startswith(("previous-", "."))]
    if not outputs:
        return None
    target = directory / time.strftime("previous-%Y%m%d-%H%M%S")
    target.mkdir()
    for path in outputs:
        shutil.move(str(path), target / path.name)
    return target
