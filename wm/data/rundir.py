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

from wm.core.errors import WMError
from wm.data.files import read_json, write_json

CONFIG_NAME = "config.json"
CONFIG_VERSION = 1
LOCK_NAME = ".lock"  # held by the stage writing a directory (see locked)
STATUS_NAME = "status.json"  # how a training stage ended, or that it runs (see read_status)
_LOCK_TRIES = 10  # 0.05 s apart
CONFIG_LOCK = ".config.lock"  # held while config.json is read and written back (see config_locked)


def run_env(run: str | Path) -> str | None:
    """The env a run directory was made for, or None for a new run."""
    config = load_config(run)
    return config.get("env") if config else None


# The stages in pipeline order, each with the file that says it has run.
_STAGE_OUTPUTS = (("extract", "record/summary.json"), ("vae_train", "vae/vae.pt"),
                  ("series", "series/summary.json"), ("rnn_train", "rnn/rnn.pt"), ("train", "es/best.json"))


def first_missing(run: str | Path) -> str:
    """What to run in ``run`` when a stage's input is missing: the first stage not yet run there
    (not just the one before the asking stage) and the one command that runs every stage."""
    run = Path(run)
    stage = next((name for name, output in _STAGE_OUTPUTS if not (run / output).is_file()), None)
    env = run_env(run)
    if env:  # (the run's own settings, so the command continues this run rather than another preset's)
        extract = stage_config(run, "extract") or {}
        flags = (("preset", "--preset"), ("doom_skill", "--doom-skill"))
        settings = "".join(f" {flag} {extract[key]}" for key, flag in flags if extract.get(key) is not None)
        settings += " --fast-env" if extract.get("fast_env") else ""
        launch = f"`bash launch/{env}.bash --run {run}{settings}`"
    else:
        launch = f"`bash launch/doom.bash --run {run}` (or `launch/carracing.bash`)"
    if stage:
        first = f"the first stage not yet run in {run} is {stage}: run `python -m wm.{stage} --run {run}`, " \
            "or "
    else:
        first = ""
    return f"{first}{launch} runs every stage still to run"


def run_doom_skill(run: str | Path, asked: int | None = None) -> int | None:
    """The Doom skill to play: ``asked`` (a stage's --doom-skill) if given, else the skill the
    run's data was made at (``wm.extract --doom-skill``); None: the scenario's own. Every stage
    that starts the game asks here, so a run's agent is scored in the game it learned."""
    if asked is not None:
        return asked
    return (stage_config(run, "extract") or {}).get("doom_skill")


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
    """Hold ``DIRECTORY/.lock`` exclusively, so that two jobs never write one directory at once.

    The kernel drops the lock when the process ends in any way (SIGKILL included), which is how
    :func:`read_status` tells a live job from a dead one."""
    path = directory / LOCK_NAME
    with open(path, "a") as handle:
        for attempt in range(_LOCK_TRIES):  # (a reader's probe holds it for an instant)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as err:
                if attempt == _LOCK_TRIES - 1:
                    raise WMError(f"{directory} is in use by another job (it holds {path}); wait or stop "
                                  "it") from err
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def in_use(directory: Path) -> bool:
    """Whether a stage holds ``DIRECTORY/.lock`` now (see :func:`locked`); takes no lock itself
    beyond an instant, and creates nothing."""
    try:
        handle = open(directory / LOCK_NAME)
    except FileNotFoundError:
        return False
    except OSError:  # (unreadable: cannot tell, so believe what the status says)
        return True
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def read_status(directory: str | Path) -> dict[str, Any] | None:
    """A training stage's ``DIRECTORY/status.json`` (None if absent or unreadable), with a stale
    "running" reported as ``"state": "died"``.

    A job killed with SIGKILL, or lost with its node, cannot write how it ended, so its status says
    "running" forever; but its lock went with it. Read status.json through this, never directly.
    """
    directory = Path(directory)
    status = read_json(directory / STATUS_NAME)
    if not isinstance(status, dict):
        return None
    if status.get("state") == "running" and not in_use(directory):
        status = {**status, "state": "died", "finished": False}
    return status


# Iterative training (wm.orchestration.rounds) keeps each round's ES and evaluations apart; round 0
# is the pipeline's first controller. After a round, M has changed: only the newest round's
# controller was trained in the dream of the M the run now holds, so that one is "the run's controller".
_MAX_ROUNDS = 1000


def es_dir(round_: int) -> str:
    """The ES outputs of a round, under RUN (round 0: the pipeline's own es/)."""
    return "es" if round_ == 0 else f"es-round-{round_}"


def eval_names(round_: int) -> tuple[str, str]:
    """The evaluations of a round's controller and of the random policy under its M."""
    return ("real", "random") if round_ == 0 else (f"real-round-{round_}", f"random-round-{round_}")


def final_round(run: str | Path) -> int:
    """The newest round with a controller (its ES wrote best.json); 0 without iterative training."""
    newest = 0
    for round_ in range(1, _MAX_ROUNDS):
        if not (Path(run) / es_dir(round_) / "best.json").is_file():
            break
        newest = round_
    return newest


def final_controller(run: str | Path) -> Path:
    """The run's controller: RUN/es/best.json, or the newest round's (RUN/es-round-R/best.json)."""
    return Path(run) / es_dir(final_round(run)) / "best.json"


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


@contextmanager
def config_locked(run: str | Path) -> Iterator[None]:
    """Hold ``RUN/.config.lock`` while config.json is read, changed and written back: stages of one
    run may start at once (a sweep's trainings, two stages started by hand), and none may lose
    another's entry. It waits rather than fails: the lock is held for milliseconds."""
    path = Path(run) / CONFIG_LOCK
    try:
        handle = open(path, "a")
    except OSError as err:
        raise WMError(f"--run {run}: cannot lock {path} ({err.strerror})") from err
    with handle:  # (closing it releases the lock, also when the process dies)
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _updated_config(
    run: str | Path, stage: str, values: dict[str, Any], fixed: tuple[str, ...]
) -> dict[str, Any]:
    """RUN/config.json with ``stage``'s entry set to ``values``, refusing changes to its ``fixed``
    fields (nothing is written here).

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
    return config


def check_stage_config(
    run: str | Path, stage: str, values: dict[str, Any], fixed: tuple[str, ...]
) -> None:
    """Refuse what :func:`save_stage_config` would refuse, writing nothing: for a stage whose checks
    must all pass before it changes anything."""
    _updated_config(run, stage, values, fixed)


def save_stage_config(
    run: str | Path, stage: str, values: dict[str, Any], fixed: tuple[str, ...]
) -> None:
    """Record a stage's config in RUN/config.json, refusing changes to its ``fixed`` fields; under
    the run's config lock, so stages saving at once keep each other's entries."""
    with config_locked(run):
        write_json(Path(run) / CONFIG_NAME, _updated_config(run, stage, values, fixed))


def start_stage(run: str | Path, stage: str, out: Path, values: dict[str, Any], fixed: tuple[str, ...],
                fresh: bool) -> None:
    """Record a training stage's config and, with ``--fresh``, move its earlier outputs aside
    (``fixed`` fields may then change). Every check comes before the move, so a refused command
    leaves the run as it was; call it after the stage's own checks, just before it writes."""
    fixed = () if fresh else fixed
    check_stage_config(run, stage, values, fixed)
    if fresh and (moved := move_aside(out)):
        print(f"[{stage}] --fresh: earlier outputs moved to {moved}", flush=True)
    save_stage_config(run, stage, values, fixed)


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
