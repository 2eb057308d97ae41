"""Stage 4: train M, the MDN-RNN, on RUN/series/ (the latents V made of every frame).

    python -m wm.rnn_train --run runs/doom [--epochs 100] [--seq-len 500]

Every batch re-samples z ~ N(mu, sigma) from the stored (mu, logvar), as the original, so M never
sees the same latents twice. Two ways of batching, as the original's two models:
- Doom: episodes, shuffled each epoch, are concatenated into ``batch_size`` long streams read
  ``seq_len`` steps at a time, the LSTM state carried from one batch to the next and zeroed where an
  episode starts (the restart flag). M also learns a done logit (death), positives weighted x10; the
  learning rate decays by ``lr_decay`` per step down to ``lr_min``.
- CarRacing: each batch holds ``batch_size`` random windows of ``seq_len`` + 1 steps.
Gradients are clipped to +-``grad_clip`` entry by entry. Checkpoint after every epoch; re-running the
same command resumes; ``--fresh`` starts over. Writes RUN/rnn/rnn.pt, metrics.csv and TensorBoard.

Iterative training: the data set grows by rounds of episodes played by trained controllers
(wm.play), each held ``round_weight`` times per epoch. The checkpoint names its data set (episodes
and weight), so continuing it on a grown one needs ``--grown-data`` (with more ``--epochs``): M keeps
its weights, optimizer and learning-rate schedule and trains on the whole set.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from wm.core.config import RNN_FIXED_FIELDS, RNNTrainConfig, as_dict, parse_stage_config
from wm.core.errors import WMError
from wm.data.recordset import data_digest, data_set
from wm.data.rundir import locked, make_stage_dir, start_stage
from wm.models.mdrnn import MDRNN, MDRNNConfig, done_loss, mixture_nll
from wm.models.training import Training, save_weights, train
from wm.models.weights import mdrnn_config_dict, vae_digest
from wm.stages import ddp
from wm.stages.series import load_series

RNN_DIR = "rnn"
WEIGHTS_NAME = "rnn.pt"
Batch = dict[str, Any]


def clip_gradients(model: nn.Module, value: float) -> None:
    """Clip every gradient entry to [-value, value] (the original's clip by value); 0 disables it."""
    if value > 0:
        nn.utils.clip_grad_value_(model.parameters(), value)


def stream_batches(series: list[dict[str, Any]], batch_size: int, seq_len: int,
                   rng: np.random.Generator) -> Iterator[Batch]:
    """Doom: shuffled episodes concatenated into ``batch_size`` streams, read ``seq_len`` at a time.

    Two departures from the original, both to keep episodes apart: ``valid`` is False at an
    episode's last step, so the z loss never asks M to predict the next episode's first frame from
    this one's last (the original trained on that jump); and the done target is ``terminated``
    (death), not "the next step is a restart", so reaching the step cap does not teach M to end
    dreams at step 2100 (the original's cap and death were the same flag).
    """
    order = rng.permutation(len(series))
    parts = [series[i] for i in order]
    mu = np.concatenate([p["mu"] for p in parts])
    logvar = np.concatenate([p["logvar"] for p in parts])
    action = np.concatenate([p["action"] for p in parts])
    done = np.concatenate([p["terminated"] for p in parts])
    lengths = np.array([len(p["mu"]) for p in parts])
    ends = np.cumsum(lengths)
    restart = np.zeros(len(mu), bool)
    restart[ends[:-1]] = True
    restart[0] = True
    valid = np.ones(len(mu), bool)
    valid[ends - 1] = False
    per = len(mu) // batch_size
    if per < 2:
        raise WMError(f"{len(mu)} frames cannot fill {batch_size} streams: lower --batch-size")

    def rows(a: np.ndarray) -> np.ndarray:
        return a[: batch_size * per].reshape(batch_size, per, *a.shape[1:])

    mu, logvar, action, done, restart, valid = map(rows, (mu, logvar, action, done, restart, valid))
    for start in range(0, per - 1, seq_len):
        end = min(start + seq_len, per - 1)
        yield {"first": start == 0, "mu": mu[:, start : end + 1], "logvar": logvar[:, start : end + 1],
               "action": action[:, start:end], "restart": restart[:, start:end],
               "done": done[:, start:end], "valid": valid[:, start:end]}


def window_batches(series: list[dict[str, Any]], batch_size: int, seq_len: int, steps: int,
                   rng: np.random.Generator) -> Iterator[Batch]:
    """CarRacing: ``steps`` batches of random windows of ``seq_len`` + 1 steps (short episodes padded)."""
    z_size, action_size = series[0]["mu"].shape[1], series[0]["action"].shape[1]
    for _ in range(steps):
        mu = np.zeros((batch_size, seq_len + 1, z_size), np.float32)
        logvar = np.zeros_like(mu)
        action = np.zeros((batch_size, seq_len, action_size), np.float32)
        valid = np.zeros((batch_size, seq_len), bool)
        for row, i in enumerate(rng.integers(len(series), size=batch_size)):
            ep = series[i]
            n = min(len(ep["mu"]), seq_len + 1)
            start = int(rng.integers(0, len(ep["mu"]) - n + 1))
            mu[row, :n] = ep["mu"][start : start + n]
            logvar[row, :n] = ep["logvar"][start : start + n]
            action[row, : n - 1] = ep["action"][start : start + n - 1]
            valid[row, : n - 1] = True
        yield {"first": True, "mu": mu, "logvar": logvar, "action": action, "valid": valid}


def weighted(series: list[dict[str, Any]], round_weight: int) -> list[dict[str, Any]]:
    """The rounds' episodes ``round_weight`` times (the same arrays, not copies), extraction's once:
    a round of ~100 controller episodes beside ~2,000 random ones would otherwise be a few percent of
    M's steps, while they hold the states where the controller found M blind."""
    return series + [s for s in series if s["round"]] * (round_weight - 1)


def validate_config(cfg: RNNTrainConfig) -> None:
    """One clear error for values no training can run with."""
    positive = {"epochs": cfg.epochs, "seq_len": cfg.seq_len, "batch_size": cfg.batch_size,
                "hidden_size": cfg.hidden_size, "num_mixtures": cfg.num_mixtures,
                "steps_per_epoch": cfg.steps_per_epoch}
    for name, value in positive.items():
        if value is None or value < 1:
            raise WMError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    numbers = {"lr": (cfg.lr, 0, False), "lr_decay": (cfg.lr_decay, 0, False),
               "lr_min": (cfg.lr_min, 0, True), "grad_clip": (cfg.grad_clip, 0, True),
               "done_weight": (cfg.done_weight, 0, False), "log_every": (cfg.log_every, 0, True)}
    for name, (value, low, inclusive) in numbers.items():
        if value is None or not math.isfinite(value) or value < low or (value == low and not inclusive):
            raise WMError(f"--{name.replace('_', '-')} must be a number {'>=' if inclusive else '>'} "
                          f"{low}, got {value}")
    if cfg.lr_decay > 1:
        raise WMError(f"--lr-decay must be at most 1, got {cfg.lr_decay}")
    if cfg.lr_min > cfg.lr:
        raise WMError(f"--lr-min ({cfg.lr_min}) must not exceed --lr ({cfg.lr})")
    if cfg.threads < 0:
        raise WMError(f"--threads must be >= 0, got {cfg.threads}")
    if cfg.round_weight < 1:
        raise WMError(f"--round-weight must be at least 1, got {cfg.round_weight}")


def train_rnn(cfg: RNNTrainConfig, ranks: ddp.Ranks | None = None) -> dict[str, Any]:
    """Train (or continue training) M on the run's series; returns a summary. With ``ranks`` of
    more than one, data-parallel (see :mod:`wm.stages.ddp`)."""
    ranks = ranks or ddp.Ranks()
    device = ranks.device(cfg.device, cfg.threads)
    series = weighted(load_series(cfg.run), cfg.round_weight)
    digest = vae_digest(cfg.run)
    episodes = data_set(cfg.run)
    data = data_digest(episodes, cfg.round_weight)
    rounds = sorted({e.round for e in episodes} - {0})
    with_done = cfg.env == "doom"
    mconfig = MDRNNConfig(z_size=int(series[0]["mu"].shape[1]), action_size=int(series[0]["action"].shape[1]),
                          hidden_size=cfg.hidden_size, num_mixtures=cfg.num_mixtures, with_done=with_done)
    # (the streams, as below; checked before anything is written: a refused command changes nothing)
    rows = min(cfg.batch_size, sum(len(s["mu"]) for s in series) // 2) if with_done else cfg.batch_size
    if max(1, rows) < ranks.size:
        raise ranks.fail(f"{max(1, rows)} sequences per batch cannot be split over {ranks.size} ranks: use "
                         "fewer ranks or a larger --batch-size")
    out = ranks.on_writer(lambda: make_stage_dir(cfg.run, RNN_DIR))
    with ranks.writer_lock(lambda: locked(out)):
        ranks.on_writer(lambda: start_stage(cfg.run, "rnn", out, as_dict(cfg), RNN_FIXED_FIELDS, cfg.fresh))
        torch.manual_seed(cfg.seed)
        model = MDRNN(mconfig).to(device)
        if ranks.active:
            ranks.start_torch(device)
            net = ranks.wrap(model, device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        # The original Doom M: lr_t = (lr - lr_min) * decay^t + lr_min (constant when decay is 1).
        floor = cfg.lr_min / cfg.lr
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: floor + (1.0 - floor) * cfg.lr_decay**step)
        frames = sum(len(s["mu"]) for s in series)
        # A small data set cannot fill batch_size streams of at least two steps: use fewer.
        streams = max(1, min(cfg.batch_size, frames // 2))
        if with_done and streams < cfg.batch_size:
            ranks.say(f"[rnn] only {frames} steps of data: {streams} streams instead of {cfg.batch_size}")
        shown = (f" ({len(episodes)} episodes, rounds {rounds} x {cfg.round_weight}; data set {data})"
                 if rounds else "")
        on = f" x {ranks.size} ranks" if ranks.active else ""
        ranks.say(f"[rnn] {len(series)} episodes{shown}, {frames:,} steps; M {mconfig}; {cfg.epochs} epochs "
                  f"on {device}{on}")
        carried: dict[str, Any] = {"state": None}
        if with_done:
            per_stream = frames // streams
            steps_per_epoch = math.ceil((per_stream - 1) / cfg.seq_len)
        else:
            steps_per_epoch = cfg.steps_per_epoch

        def batches(epoch: int) -> Iterator[Batch]:
            rng = np.random.default_rng([cfg.seed, epoch])  # the same batches on every run
            if ranks.active:  # (the same batches, each rank making its rows)
                if with_done:
                    return ddp.stream_rows(series, streams, cfg.seq_len, rng, ranks)
                return ddp.window_rows(series, cfg.batch_size, cfg.seq_len, cfg.steps_per_epoch, rng, ranks)
            if with_done:
                return stream_batches(series, streams, cfg.seq_len, rng)
            return window_batches(series, cfg.batch_size, cfg.seq_len, cfg.steps_per_epoch, rng)

        def step(batch: Batch) -> dict[str, torch.Tensor]:
            t = {k: torch.as_tensor(v, device=device) for k, v in batch.items() if k != "first"}
            # Re-sample z from V's posterior for every batch, as the original.
            z = t["mu"] + torch.exp(0.5 * t["logvar"]) * torch.randn_like(t["mu"])
            state = None if batch["first"] else carried["state"]
            params, done_logit, state = model(z[:, :-1], t["action"], t.get("restart"), state)
            carried["state"] = tuple(s.detach() for s in state)  # carried across batches, not through
            losses = {"z_nll": mixture_nll(params, z[:, 1:], mask=t["valid"])}
            if with_done:
                losses["done"] = done_loss(done_logit, t["done"], cfg.done_weight)
            loss = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(model, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            return {"loss": loss.detach(), **{k: v.detach() for k, v in losses.items()},
                    "lr": torch.tensor(scheduler.get_last_lr()[0])}

        def ranks_step(batch: Batch) -> dict[str, torch.Tensor]:
            """One step of the global batch: this rank's rows (its streams, with their LSTM state),
            DDP averaging the gradients; the losses are the global batch's."""
            n, rows = batch["rows_total"], ranks.rows(batch["rows_total"])
            t = {k: torch.as_tensor(batch[k], device=device) for k in ("mu", "logvar", "action", "restart",
                                                                        "done", "valid") if k in batch}
            noise = ddp.global_noise(n, batch["mu"].shape[1:], rows, device)  # (randn_like of the batch)
            z = t["mu"] + torch.exp(0.5 * t["logvar"]) * noise
            state = None if batch["first"] else carried["state"]
            params, done_logit, state = net(z[:, :-1], t["action"], t.get("restart"), state)
            carried["state"] = tuple(s.detach() for s in state)
            z_nll = mixture_nll(params, z[:, 1:], mask=t["valid"])
            # mixture_nll is a mean over valid steps, done_loss over all: weights of this rank's share
            valid_here, valid_all = int(t["valid"].sum()), batch["valid_total"]
            loss = z_nll * (valid_here * ranks.size / max(valid_all, 1))
            parts = [z_nll * valid_here]
            if with_done:
                done = done_loss(done_logit, t["done"], cfg.done_weight)
                loss = loss + done * ranks.weight(n)
                parts.append(done * done_logit.numel())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(model, cfg.grad_clip)  # (of the averaged gradients, as one process's)
            optimizer.step()
            scheduler.step()
            sums = ranks.sum(parts)
            losses = {"z_nll": (sums[0] / max(valid_all, 1)).float()}
            if with_done:
                losses["done"] = (sums[1] / (n * batch["done"].shape[1])).float()
            return {"loss": sum(losses.values()), **losses, "lr": torch.tensor(scheduler.get_last_lr()[0])}

        def end_of_epoch(epoch: int) -> None:
            save_weights(out / WEIGHTS_NAME, "rnn", mdrnn_config_dict(mconfig), model, epochs=epoch,
                         vae=digest, env=cfg.env, data=data, rounds=rounds)

        summary = train(Training(
            name="rnn", directory=out, model=model, optimizer=optimizer, epochs=cfg.epochs,
            batches=batches, step=ranks_step if ranks.active else step,
            samples=(lambda b: b["rows_total"]) if ranks.active else lambda b: len(b["mu"]),
            sample_unit="sequences", end_of_epoch=end_of_epoch if ranks.is_writer else lambda epoch: None,
            writes=ranks.is_writer, scheduler=scheduler, log_every=cfg.log_every,
            # (the data set is named once rounds exist: checkpoints from before them still continue)
            identity={"vae": digest, **({"data": data} if rounds else {})}, steps_per_epoch=steps_per_epoch,
            may_change={"data": (cfg.grown_data, "--grown-data")},
        ))
    ranks.say(f"[rnn] weights: {out / WEIGHTS_NAME}")
    return summary


def parse_config(argv: list[str] | None) -> RNNTrainConfig:
    return parse_stage_config("rnn", RNNTrainConfig, argv, "python -m wm.rnn_train", __doc__,
                              validate_config)


def main(argv: list[str] | None = None) -> int:
    return ddp.stage_main("wm.rnn_train", "rnn", argv, parse_config, train_rnn)


if __name__ == "__main__":
    sys.exit(main())
