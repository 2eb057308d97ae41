"""What V and M training share: device choice, weights files, checkpoints, metric logs, the epoch loop.

A stage describes its model, optimizer, batches and one optimisation step; :func:`train` runs the
epochs with a checkpoint after each (weights, optimizer, epoch, RNG state, written atomically),
resumes from it when the same command runs again, stops cleanly on a NaN loss keeping the last good
checkpoint, and logs every step to CSV and TensorBoard.
"""

from __future__ import annotations

import csv
import io
import math
import os
import pickle
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wm.core.errors import WMError, naming
from wm.core.progress import format_duration
from wm.data.files import atomic_write

WEIGHTS_FORMAT = "wm-weights-1"
CHECKPOINT_FORMAT = "wm-checkpoint-1"


def pick_device(name: str, threads: int = 0) -> torch.device:
    """``auto`` (a GPU when there is one), ``cpu`` or ``cuda``; one clear error for a missing GPU.
    On the CPU, torch uses ``threads`` threads (0: every core)."""
    if name not in ("auto", "cpu", "cuda"):
        raise WMError(f"--device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise WMError("--device cuda: no CUDA GPU is available here (use --device auto or cpu)")
    device = torch.device("cuda" if name == "auto" and torch.cuda.is_available() else
                          "cpu" if name == "auto" else name)
    if device.type == "cpu":
        torch.set_num_threads(threads or os.cpu_count() or 1)
    return device


def save_torch_file(path: Path, obj: dict[str, Any]) -> None:
    """torch.save to ``path`` atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def _load_torch(path: Path, what: str) -> dict[str, Any]:
    """torch.load with ``weights_only=True``; one clear error naming ``what`` the file should be."""
    if not path.is_file():
        raise WMError(f"{path}: no {what} here")
    try:
        # weights_only: tensors and plain values only, no code is unpickled from the file.
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch explains at length; the reason is one line of it
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        reason = (f"it names {refused.group(1)}, which a weights file never holds, so it is not loaded"
                  if refused else " ".join(str(err).split())[:200])
        raise WMError(f"{path}: not a readable {what} ({reason})") from None
    except Exception as err:
        reason = " ".join(str(err).split())
        raise WMError(f"{path}: not a readable {what} ({type(err).__name__}: {reason})") from err


def save_weights(path: Path, kind: str, config: dict[str, Any], model: nn.Module, **info: Any) -> None:
    """Model weights with the config that shapes them (loads with ``weights_only=True``)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_torch_file(path, {"format": WEIGHTS_FORMAT, "kind": kind, "config": config, "state_dict": state,
                       "info": info})


def load_weights(path: Path, kind: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A weights file's contents, checked: the right kind of model, and ``config`` if given."""
    data = _load_torch(path, f"{kind} weights file")
    if data.get("format") != WEIGHTS_FORMAT or data.get("kind") != kind:
        raise WMError(f"{path}: not {kind} weights (found {data.get('kind')!r}, {data.get('format')!r})")
    if config is not None:
        for key, want in config.items():
            have = data["config"].get(key)
            if have != want:
                raise WMError(f"{path}: these {kind} weights have {key}={have!r}, but {want!r} is needed")
    return data


class MetricsLog:
    """Scalars per step to ``metrics.csv`` (always) and TensorBoard (when installed).

    Both are appended to as training goes; a failed write (a full disk) names the file it was for.
    ``wall_s`` is the training's time in all: a resumed run (a restart, or M continued by a round of
    iterative training) counts on from the last kept row, so the last row is the stage's whole cost.
    """

    def __init__(self, directory: Path, fields: list[str], resume_after_step: int):
        self.path = directory / "metrics.csv"
        self.tensorboard = directory / "tensorboard"
        self.fields = ["step", "epoch", "wall_s", *fields]
        self.wall_offset = 0.0
        self._keep_rows(resume_after_step)
        new = not self.path.exists()
        self._file = open(self.path, "a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=self.fields)
        if new:
            self._csv.writeheader()
        try:
            from torch.utils.tensorboard import SummaryWriter

            with naming(self.tensorboard):
                self._tb: Any = SummaryWriter(str(self.tensorboard), purge_step=resume_after_step + 1)
        except ImportError:  # TensorBoard is optional; the CSV holds the same numbers
            self._tb = None

    def _keep_rows(self, last_step: int) -> None:
        """On resume, drop rows logged after the checkpoint (they will be logged again) and a last
        row cut short (by a full disk); rewritten atomically, so a failed rewrite loses no row."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if None not in r.values() and int(r["step"]) <= last_step]
        try:
            self.wall_offset = float(rows[-1]["wall_s"]) if rows else 0.0
        except (KeyError, ValueError):
            self.wall_offset = 0.0
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.fields)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.path, lambda f: f.write(text.getvalue().encode()))

    def write(self, step: int, epoch: int, wall_s: float, values: dict[str, float]) -> None:
        with naming(self.path):
            self._csv.writerow({"step": step, "epoch": epoch, "wall_s": round(self.wall_offset + wall_s, 3),
                                **values})
        if self._tb is not None:
            with naming(self.tensorboard):
                for key, value in values.items():
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        try:
            with naming(self.path):
                self._file.close()
        finally:
            if self._tb is not None:
                with naming(self.tensorboard):
                    self._tb.close()


@dataclass
class Training:
    """One stage's training, described for :func:`train`."""

    name: str  # "vae" or "rnn": names the files and the log lines
    directory: Path
    model: nn.Module
    optimizer: torch.optim.Optimizer
    epochs: int
    batches: Callable[[int], Iterable[Any]]  # epoch -> its batches, the same on every run
    step: Callable[[Any], dict[str, torch.Tensor]]  # one optimiser step -> losses ("loss" first)
    samples: Callable[[Any], int]  # how many frames/sequences a batch holds, for rates
    sample_unit: str = "frames"
    # After every epoch, before the checkpoint (so a checkpoint never stands without its weights).
    end_of_epoch: Callable[[int], None] = lambda epoch: None
    steps_per_epoch: int | None = None  # for the progress lines' totals and time left, when known
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    log_every: float = 10.0
    # The stage's own facts stored in the checkpoint, which must match to resume (e.g. which V).
    identity: dict[str, Any] = field(default_factory=dict)
    # Identity keys that may change on purpose (M continuing on a grown data set): key -> (allowed
    # now, the flag that allows it). An allowed change is said in a line; a refused one names the flag.
    may_change: dict[str, tuple[bool, str]] = field(default_factory=dict)
    # False on every rank but rank 0 of a data-parallel job: no checkpoint, metrics or log lines.
    writes: bool = True

    @property
    def checkpoint_path(self) -> Path:
        return self.directory / "checkpoint.pt"


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(t: Training, epoch: int, step: int) -> None:
    """Everything needed to continue after ``epoch`` exactly as if never stopped."""
    save_torch_file(t.checkpoint_path, {
        "format": CHECKPOINT_FORMAT, "epoch": epoch, "step": step,
        "model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict() if t.scheduler is not None else None,
        "rng": _rng_state(), "identity": t.identity,
    })


def load_checkpoint(t: Training) -> tuple[int, int]:
    """Restore a checkpoint into ``t``; returns (epochs done, steps done), (0, 0) when there is none."""
    if not t.checkpoint_path.exists():
        return 0, 0
    data = _load_torch(t.checkpoint_path, "checkpoint")
    if data.get("format") != CHECKPOINT_FORMAT:
        raise WMError(f"{t.checkpoint_path}: not a checkpoint of this program; remove it or use --fresh")
    try:
        t.model.load_state_dict(data["model"])
        t.optimizer.load_state_dict(data["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise WMError(f"{t.checkpoint_path}: does not fit this model ({err}); use --fresh") from err
    saved = data.get("identity") or {}
    for key, value in t.identity.items():
        allowed, flag = t.may_change.get(key, (False, ""))
        if saved.get(key) != value and allowed and data["epoch"] >= t.epochs:
            # (else the outputs would be rewritten as if made with the new value, untrained on it)
            raise WMError(f"{t.checkpoint_path}: {key} changed but --epochs {t.epochs} adds no epoch to the "
                          f"{data['epoch']} done: raise --epochs to continue with {key} {value}")
        if saved.get(key) != value and allowed and t.writes:
            print(f"[{t.name}] continuing after epoch {data['epoch']} with {key} {value} (the checkpoint's: "
                  f"{saved.get(key) or 'none'})", flush=True)
        elif saved.get(key) != value and flag:
            raise WMError(f"{t.checkpoint_path}: trained with {key}={saved.get(key)!r}, now {value!r}; pass "
                          f"{flag} to continue on purpose, or --fresh to start over")
        elif saved.get(key) != value:
            raise WMError(f"{t.checkpoint_path}: trained with {key}={saved.get(key)!r}, now {value!r}; "
                          "use --fresh to start over")
    if t.scheduler is not None and data.get("scheduler") is not None:
        t.scheduler.load_state_dict(data["scheduler"])
    _set_rng_state(data["rng"])
    return int(data["epoch"]), int(data["step"])


def _step_progress(t: Training, step: int, first_step: int, start: float, now: float) -> str:
    """``step 120/400 (30%), 2m10s left`` when the steps per epoch are known, else ``step 120``."""
    if not t.steps_per_epoch:
        return f"step {step}"
    total = t.epochs * t.steps_per_epoch
    rate = (step - first_step) / max(now - start, 1e-9)  # steps per second in this run
    left = max(total - step, 0) / rate if rate > 0 else 0.0
    return f"step {step}/{total} ({100 * step / total:.0f}%), {format_duration(left)} left"


def train(t: Training) -> dict[str, Any]:
    """Run the remaining epochs of ``t``; returns a summary. A NaN loss stops with a clear error."""
    epoch0, step = load_checkpoint(t)
    if epoch0 >= t.epochs and t.writes:
        print(f"[{t.name}] already trained for {epoch0} epochs (asked for {t.epochs}); nothing to do",
              flush=True)
    if epoch0 >= t.epochs:
        t.model.eval()
        t.end_of_epoch(epoch0)  # (re)write the outputs, in case a stop came between them and here
        return {"epochs": epoch0, "steps": step, "resumed_from": epoch0}
    if epoch0 and t.writes:
        print(f"[{t.name}] resuming after epoch {epoch0} (step {step}) from {t.checkpoint_path}",
              flush=True)
    log: MetricsLog | None = None
    start, first_step = time.monotonic(), step
    last: dict[str, float] = {}
    try:
        for epoch in range(epoch0 + 1, t.epochs + 1):
            t.model.train()
            seen, last_print, epoch_start = 0, time.monotonic(), time.monotonic()
            for batch in t.batches(epoch):
                losses = t.step(batch)
                values = {k: float(v) for k, v in losses.items()}
                if not all(math.isfinite(v) for v in values.values()):
                    kept = (f"the last good checkpoint (after epoch {epoch - 1}) is kept in {t.directory}"
                            if epoch > 1 else "no epoch had finished, so there is no checkpoint")
                    raise WMError(
                        f"{t.name} loss is not finite at epoch {epoch}, step {step + 1} ({values}); "
                        f"stopped: {kept}; try --fresh with a lower --lr"
                    )
                step += 1
                seen += t.samples(batch)
                last = values
                if not t.writes:
                    continue
                if log is None:
                    log = MetricsLog(t.directory, list(values), resume_after_step=step - 1)
                log.write(step, epoch, time.monotonic() - start, values)
                now = time.monotonic()
                if now - last_print >= t.log_every:
                    last_print = now
                    rate = seen / max(now - epoch_start, 1e-9)
                    shown = " ".join(f"{k} {v:.4g}" for k, v in values.items())
                    where = _step_progress(t, step, first_step, start, now)
                    print(f"[{t.name}] epoch {epoch}/{t.epochs} {where} | {shown} | "
                          f"{rate:,.0f} {t.sample_unit}/s", flush=True)
            t.model.eval()
            t.end_of_epoch(epoch)  # weights first: a checkpoint never stands without its weights
            if not t.writes:
                continue
            save_checkpoint(t, epoch, step)
            rate = seen / max(time.monotonic() - epoch_start, 1e-9)
            shown = " ".join(f"{k} {v:.4g}" for k, v in last.items())
            print(f"[{t.name}] epoch {epoch}/{t.epochs} done | {shown} | {rate:,.0f} {t.sample_unit}/s | "
                  f"{format_duration(time.monotonic() - start)}", flush=True)
    finally:
        if log is not None:
            log.close()
    return {"epochs": t.epochs, "steps": step, "resumed_from": epoch0, "last": last,
            "seconds": round(time.monotonic() - start, 3)}
