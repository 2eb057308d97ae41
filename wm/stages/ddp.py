"""V, M and the series over MPI ranks: the one place where the stages meet ranks and torch.distributed.

    mpirun -n P python -m wm.vae_train --run RUN     (and wm.rnn_train, wm.series)

Started by a launcher (mpirun, srun with PMI/PMIx), a stage's ``main`` runs through :func:`run_stage`
with a :class:`Ranks`; started as a plain process it runs as before, untouched (a world of one rank
under mpirun does too). V and M then train data-parallel: torch.distributed over gloo (NCCL when
every rank has a GPU of its own), initialised from the MPI ranks (rank 0 picks a free port and
broadcasts its address and port by MPI), the model wrapped in DistributedDataParallel, which
averages the gradients; there is no gradient averaging of our own.

The global batch. ``--batch-size B`` is the global batch: the same B rows, in the same order, as one
process with batch B. Rank r of P trains on rows ``[r*n//P, (r+1)*n//P)`` of every batch of n rows
(n = B, or less for V's last batch), and weights its loss by ``n_r * P / n`` so that DDP's average
of the P gradients is the gradient of the one-process batch mean. Every rank draws the noise of the
whole batch (V's reparameterisation, M's z samples) from the same-seeded generator and keeps its
rows, so the random numbers, too, are those of one process, and every rank's RNG state is the same.

- V: each rank reads only its share of the episodes (episode j of each group of ``--shuffle-episodes``
  goes to rank j mod P); the group's frame permutation is the one-process one, and the frames a rank's
  rows need are exchanged between ranks (one MPI all-to-all per group), so memory per rank falls with P.
- M (Doom): the ``B`` streams of concatenated episodes are one process's; rank r concatenates only
  the episodes its streams hold and carries the LSTM state of its streams. M (CarRacing): the B
  random windows are drawn as by one process (every rank makes the same draws) and rank r copies
  only its rows. Every rank loads the whole series (~2 KB per step at z 64: mu and logvar), as the
  episode order changes every epoch.
- Series: rank r encodes episodes r, r+P, ... of those to do; rank 0 writes initial_z and the summary.

Rank 0 alone writes checkpoints, weights, pictures, metrics and log lines. The checkpoint is what one
process writes (model, optimizer, schedule, epoch, step, torch RNG state, rank 0's, equal on every
rank), and the data order depends only on ``--seed`` and the epoch: so the same command resumes on any
number of ranks (or as one process) and continues the same training, to floating point.
"""

from __future__ import annotations

import datetime
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from es.mpi import AllRanksError, Comm, launcher_rank_size, usage_error
from wm.core.errors import WMError
from wm.data.record import read_episode
from wm.envs.games import FRAME_SHAPE
from wm.models.training import pick_device

T = TypeVar("T")


def under_launcher() -> bool:
    """Whether an MPI launcher started this process (then the stage runs through :func:`run_stage`)."""
    return launcher_rank_size() is not None


def stage_main(module: str, name: str, argv: list[str] | None, parse: Callable[[list[str]], T],
               run: Callable[..., Any]) -> int:
    """The ``main`` of V, the series and M: under a launcher, data-parallel over its ranks; with
    ``--np N`` (N > 1), the same command under this environment's mpirun on N local ranks; else one
    process, as always. ``run(cfg)`` or ``run(cfg, ranks)``."""
    from wm.core import cli

    argv = sys.argv[1:] if argv is None else argv

    def checked() -> T:
        cfg = parse(argv)
        cli.check_np(cfg.np)  # type: ignore[attr-defined]
        return cfg

    if under_launcher():
        return run_stage(name, checked, run)
    try:
        np_ = checked().np  # type: ignore[attr-defined]
    except WMError:
        np_ = 0  # cli.run_stage parses again and says what is wrong
    if np_ > 1:
        return cli.run_local_ranks(module, argv, np_)
    return cli.run_stage(name, checked, run)


def run_stage(name: str, parse: Callable[[], T], run: Callable[[T, Ranks], Any]) -> int:
    """A stage's ``main`` under a launcher: a bad flag is one line from rank 0; then ``run(cfg,
    ranks)`` on every rank (any rank's error ends the job, see :func:`es.mpi.run_ranks`)."""
    from wm.core.cli import run_rank_stage

    try:
        cfg = parse()
    except WMError as err:
        return usage_error(err)

    def main(comm: Comm) -> None:
        ranks = Ranks(comm)
        try:
            run(cfg, ranks)
        finally:
            ranks.close()

    return run_rank_stage(main)


class Ranks:
    """This process's place among the ranks, and the few collective operations the stages need."""

    def __init__(self, comm: Comm | None = None):
        self.comm = comm or Comm()
        self.rank, self.size = self.comm.rank, self.comm.size
        self._torch = False
        self._backend = "gloo"
        self._reduce_on = torch.device("cpu")

    @property
    def active(self) -> bool:
        """More than one rank: train data-parallel (one rank runs exactly as one process)."""
        return self.size > 1

    @property
    def is_writer(self) -> bool:
        """Rank 0 writes every file and log line."""
        return self.rank == 0

    def barrier(self) -> None:
        self.comm.barrier()

    def bcast(self, obj: Any) -> Any:
        return self.comm.bcast(obj)

    def allgather(self, obj: Any) -> list[Any]:
        return self.comm.allgather(obj)

    def on_writer(self, fn: Callable[[], T]) -> T:
        """``fn()`` on rank 0 (set-up that writes: the stage directory, --fresh); its result, or its
        error (one line from rank 0), on every rank. One rank: just ``fn()``."""
        if not self.active:
            return fn()
        return self.comm.on_root(fn, (WMError,))  # type: ignore[return-value]

    def writer_lock(self, lock: Callable[[], AbstractContextManager[Any]]) -> AbstractContextManager[Any]:
        """The stage directory's lock, held by rank 0 for the whole job."""
        return lock() if self.is_writer else nullcontext()

    def fail(self, message: str) -> Exception:
        """An error every rank finds alike: one line from rank 0 (raise what this returns)."""
        return AllRanksError(message) if self.active else WMError(message)

    def say(self, line: str) -> None:
        """A log line, from rank 0 only."""
        if self.is_writer:
            print(line, flush=True)

    # -- where this rank runs --
    def _host(self) -> tuple[int, int, bool]:
        """(ranks on this host, this rank's index among them, all ranks on one host)."""
        hosts = self.allgather(socket.gethostname())
        here = hosts[self.rank]
        return hosts.count(here), hosts[: self.rank].count(here), len(set(hosts)) == 1

    def device(self, name: str, threads: int) -> torch.device:
        """The stage's device: one GPU per rank (by its index on the host), or the CPU with
        ``threads`` threads (0: this host's cores shared among its ranks)."""
        if not self.active:
            return pick_device(name, threads)
        on_host, local, _ = self._host()
        # (the cores this process may use: a Slurm job's on a shared node, or those mpirun bound it to)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        device = pick_device(name, threads or max(1, cores // on_host))
        if device.type == "cuda":
            gpus = torch.cuda.device_count()
            device = torch.device("cuda", local % gpus)
            torch.cuda.set_device(device)
            # NCCL needs a GPU of its own per rank; ranks sharing GPUs all-reduce through gloo.
            self._backend = "nccl" if on_host <= gpus else "gloo"
        return device

    def start_torch(self, device: torch.device) -> None:
        """torch.distributed's process group over these ranks: gloo (NCCL for a GPU each), rendezvous at
        rank 0's address and a free port found there, both broadcast by MPI. MASTER_ADDR and
        MASTER_PORT in the environment are used instead when set."""
        import torch.distributed as dist

        _, _, one_host = self._host()
        where = None
        if self.is_writer:
            addr = os.environ.get("MASTER_ADDR") or ("127.0.0.1" if one_host else _own_address())
            port = int(os.environ.get("MASTER_PORT") or _free_port())
            where = (addr, port)
        addr, port = self.bcast(where)
        # (NCCL only where every rank can have it: the ranks must agree)
        backend = "nccl" if all(self.allgather(device.type == "cuda" and self._backend == "nccl")) else "gloo"
        dist.init_process_group(backend, init_method=f"tcp://{addr}:{port}", rank=self.rank,
                                world_size=self.size, timeout=datetime.timedelta(minutes=30))
        self._torch = True
        self._reduce_on = device if backend == "nccl" else torch.device("cpu")  # (NCCL: GPU tensors only)
        if self.is_writer:
            print(f"[ddp] {self.size} ranks, torch.distributed {backend} at {addr}:{port}", flush=True)

    def close(self) -> None:
        if self._torch:
            import torch.distributed as dist

            dist.destroy_process_group()
            self._torch = False

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` in DistributedDataParallel (rank 0's weights broadcast to every rank)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    # -- the global batch --
    def rows(self, n: int) -> slice:
        """This rank's rows of a global batch of ``n``."""
        return rows_of(self.rank, self.size, n)

    def weight(self, n: int) -> float:
        """The factor on this rank's mean loss that makes DDP's average of the ranks' gradients the
        gradient of the global batch's mean: rows here * ranks / rows in all."""
        rows = self.rows(n)
        return (rows.stop - rows.start) * self.size / n

    def sum(self, values: list[torch.Tensor]) -> torch.Tensor:
        """The sum over the ranks of each of ``values`` (scalars), as one float64 tensor."""
        import torch.distributed as dist

        total = torch.stack([v.detach().to(self._reduce_on, torch.float64) for v in values])
        if self._torch:
            dist.all_reduce(total)
        return total.cpu()


def rows_of(rank: int, size: int, n: int) -> slice:
    """Rank ``rank``'s rows of a global batch of ``n`` rows split over ``size`` ranks."""
    return slice(rank * n // size, (rank + 1) * n // size)


def weighted_loss(loss: torch.Tensor, weight: float, outputs: list[torch.Tensor]) -> torch.Tensor:
    """``loss * weight``; a rank with no rows of this batch (the last, short one) contributes a zero
    loss that still reaches every parameter, so DDP's all-reduce has every rank's gradients."""
    if weight == 0:
        return sum(o.sum() for o in outputs) * 0.0
    return loss * weight


def global_noise(n: int, shape: tuple[int, ...], rows: slice, device: torch.device) -> torch.Tensor:
    """N(0, 1) float32 noise of a whole batch of ``n`` rows, drawn as one process draws it
    (``randn_like`` of the batch), this rank's rows of it."""
    return torch.randn((n, *shape), device=device)[rows]


# -- M's sequences: each rank builds its rows of one process's batches --

def stream_rows(series: list[dict[str, Any]], batch_size: int, seq_len: int, rng: np.random.Generator,
                ranks: Ranks) -> Iterator[dict[str, Any]]:
    """:func:`wm.stages.rnn_train.stream_batches`'s batches, this rank's streams (rows) of each, made
    of only the episodes those streams hold; each batch also says ``valid_total``, the valid steps of
    the whole batch, and ``rows_total``, its streams (for the loss weights)."""
    order = rng.permutation(len(series))  # (the one-process draw)
    lengths = np.array([len(series[i]["mu"]) for i in order])
    ends = np.cumsum(lengths)
    starts = ends - lengths
    per = int(ends[-1]) // batch_size
    if per < 2:
        raise WMError(f"{int(ends[-1])} frames cannot fill {batch_size} streams: lower --batch-size")
    rows = ranks.rows(batch_size)
    lo, hi = rows.start * per, rows.stop * per  # this rank's stretch of the concatenated episodes
    first, last = int(np.searchsorted(ends, lo, side="right")), int(np.searchsorted(starts, hi, side="left"))
    parts = [series[i] for i in order[first:last]]
    cut = slice(lo - int(starts[first]), hi - int(starts[first]))
    mu, logvar, action, done = (np.concatenate([p[k] for p in parts])[cut]
                                for k in ("mu", "logvar", "action", "terminated"))
    restart = np.zeros(hi - lo, bool)
    kept = starts[(starts >= lo) & (starts < hi)]
    restart[kept - lo] = True  # (an episode's first step; the first stream's first step too)
    valid = np.ones(hi - lo, bool)
    last_steps = ends - 1
    valid[last_steps[(last_steps >= lo) & (last_steps < hi)] - lo] = False
    columns = last_steps[last_steps < batch_size * per] % per  # where the whole batch's invalid steps are

    def as_rows(a: np.ndarray) -> np.ndarray:
        return a.reshape(rows.stop - rows.start, per, *a.shape[1:])

    mu, logvar, action, done, restart, valid = map(as_rows, (mu, logvar, action, done, restart, valid))
    for start in range(0, per - 1, seq_len):
        end = min(start + seq_len, per - 1)
        invalid = int(((columns >= start) & (columns < end)).sum())
        yield {"first": start == 0, "mu": mu[:, start : end + 1], "logvar": logvar[:, start : end + 1],
               "action": action[:, start:end], "restart": restart[:, start:end], "done": done[:, start:end],
               "valid": valid[:, start:end], "valid_total": batch_size * (end - start) - invalid,
               "rows_total": batch_size}


def window_rows(series: list[dict[str, Any]], batch_size: int, seq_len: int, steps: int,
                rng: np.random.Generator, ranks: Ranks) -> Iterator[dict[str, Any]]:
    """:func:`wm.stages.rnn_train.window_batches`'s batches (the same draws), this rank's windows
    (rows) of each filled; with ``valid_total`` and ``rows_total`` as :func:`stream_rows`."""
    z_size, action_size = series[0]["mu"].shape[1], series[0]["action"].shape[1]
    rows = ranks.rows(batch_size)
    for _ in range(steps):
        mu = np.zeros((rows.stop - rows.start, seq_len + 1, z_size), np.float32)
        logvar = np.zeros_like(mu)
        action = np.zeros((len(mu), seq_len, action_size), np.float32)
        valid = np.zeros((len(mu), seq_len), bool)
        valid_total = 0
        for row, i in enumerate(rng.integers(len(series), size=batch_size)):
            ep = series[i]
            n = min(len(ep["mu"]), seq_len + 1)
            start = int(rng.integers(0, len(ep["mu"]) - n + 1))
            valid_total += n - 1
            if rows.start <= row < rows.stop:
                here = row - rows.start
                mu[here, :n] = ep["mu"][start : start + n]
                logvar[here, :n] = ep["logvar"][start : start + n]
                action[here, : n - 1] = ep["action"][start : start + n - 1]
                valid[here, : n - 1] = True
        yield {"first": True, "mu": mu, "logvar": logvar, "action": action, "valid": valid,
               "valid_total": valid_total, "rows_total": batch_size}


# -- V's frames: each rank reads its share of the episodes, the batches are one process's --

def frame_batches(paths: list[Path], batch_size: int, rng: np.random.Generator, episodes_in_memory: int,
                  ranks: Ranks) -> Iterator[tuple[np.ndarray, int]]:
    """:func:`wm.data.record.iter_frame_batches`'s batches, each as (this rank's rows, global size).

    The random draws are the one-process ones (the episode order, then one frame permutation per
    group of ``episodes_in_memory``); rank r reads episode j of a group when j mod P == r, and the
    frames each rank's rows need move by one all-to-all per group. Frames left over at a group's end
    (fewer than a batch) stay with the rank holding them, as one process carries them on.
    """
    if batch_size < 1 or episodes_in_memory < 1:
        raise ValueError(f"batch_size ({batch_size}) and episodes_in_memory ({episodes_in_memory}) "
                         "must be >= 1")
    size, rank = ranks.size, ranks.rank
    order = rng.permutation(len(paths))
    carry_owner = np.empty(0, np.int64)  # the owning rank of each carried frame, in carry order
    carry_held = np.empty((0, *FRAME_SHAPE), np.uint8)  # this rank's carried frames, in carry order
    for start in range(0, len(order), episodes_in_memory):
        group = order[start : start + episodes_in_memory]
        mine = [read_episode(paths[i]).obs for j, i in enumerate(group) if j % size == rank]
        told = ranks.allgather([len(obs) for obs in mine])
        lengths = [told[j % size][j // size] for j in range(len(group))]
        owner = np.concatenate([carry_owner, *[np.full(n, j % size) for j, n in enumerate(lengths)]])
        held = np.concatenate([carry_held, *mine])
        del mine
        shuffled = rng.permutation(len(owner))
        full = len(owner) - len(owner) % batch_size
        batches = [shuffled[i : i + batch_size] for i in range(0, full, batch_size)]
        local = _local_index(owner, size)
        yield from _exchange(ranks, owner, local, held, batches)
        left = shuffled[full:]
        carry_owner = owner[left]
        carry_held = held[local[left[carry_owner == rank]]]
        del held
    if len(carry_owner):
        local = _local_index(carry_owner, size)
        yield from _exchange(ranks, carry_owner, local, carry_held, [np.arange(len(carry_owner))])


def _local_index(owner: np.ndarray, size: int) -> np.ndarray:
    """For each position, its index among the positions of the same owner (in order)."""
    local = np.empty(len(owner), np.int64)
    for r in range(size):
        mask = owner == r
        local[mask] = np.arange(int(mask.sum()))
    return local


def _exchange(ranks: Ranks, owner: np.ndarray, local: np.ndarray, held: np.ndarray,
              batches: list[np.ndarray]) -> Iterator[tuple[np.ndarray, int]]:
    """Each rank's rows of ``batches`` (positions in the pool of frames), gathered from the ranks
    holding them by one all-to-all."""
    if not batches:
        return
    need = [np.concatenate([b[rows_of(q, ranks.size, len(b))] for b in batches]) for q in range(ranks.size)]
    sends = [held[local[n[owner[n] == ranks.rank]]] for n in need]
    got = ranks.comm.alltoall(sends)
    del sends
    mine = need[ranks.rank]
    frames = np.empty((len(mine), *FRAME_SHAPE), np.uint8)
    for r in range(ranks.size):
        frames[owner[mine] == r] = got[r]
    del got
    at = 0
    for b in batches:
        rows = ranks.rows(len(b))
        count = rows.stop - rows.start
        yield frames[at : at + count], len(b)
        at += count


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _own_address() -> str:
    """This host's address as the other hosts should reach it."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        print("[ddp] cannot resolve this host's name: set MASTER_ADDR", file=sys.stderr, flush=True)
        raise
