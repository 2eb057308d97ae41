"""V, M and the series over MPI ranks (wm.stages.ddp): the same batches, the same training, the same files.

Tolerances. P ranks compute the same global batch's loss and gradient as one process, but as P
partial sums added by an all-reduce, where one process sums inside one convolution or matrix
product: float32 additions in another order round differently, by ~1e-7 of the value each, so no
exact equality can be asked. The first step starts from the same weights with the same frames and
noise: its loss agrees to 1e-6 (measured: bit-equal) and its gradient, read from the checkpoint's
Adam moments, to 1e-4 normwise per tensor (measured: <= 7e-6 for V). Later steps drift apart:
every step's weights feed the next, and Adam moves each weight by about its learning rate whatever
the size of its gradient, so entries with near-zero gradients (where rounding decides the sign)
drift (V's weights by up to 2e-3 normwise after 8 steps) while the losses stay close: each step's
losses within 1e-3 relative (measured: V's <= 4e-5, M's ~1e-7), where they move by far more than
that from step to step. M's checkpoint (weights and Adam moments) agrees to 1e-4 (measured 2e-7).
"""

from __future__ import annotations

import csv
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.wm.conftest import files_of
from wm.data.record import Episode, iter_frame_batches, write_episode
from wm.stages import ddp
from wm.stages.rnn_train import stream_batches, window_batches

pytestmark = pytest.mark.slow

RTOL = 1e-3
V_ARGS = ["--batch-size", "35", "--shuffle-episodes", "3", "--threads", "1", "--log-every", "0"]
M_ARGS = ["--batch-size", "5", "--seq-len", "10", "--hidden-size", "16", "--threads", "1", "--log-every", "0"]


# -- V's frame batches, P ranks simulated by threads (no mpirun needed) --

class _Hub:
    """What P threads standing for ranks hand each other, in lockstep."""

    def __init__(self, size: int):
        self.size, self.slots = size, [None] * size
        self.gate = threading.Barrier(size, timeout=30)

    def swap(self, rank: int, obj):
        self.slots[rank] = obj
        self.gate.wait()
        got = list(self.slots)
        self.gate.wait()
        return got


class _ThreadRanks:
    """The part of :class:`wm.stages.ddp.Ranks` that :func:`ddp.frame_batches` uses."""

    def __init__(self, hub: _Hub, rank: int):
        self.hub, self.rank, self.size = hub, rank, hub.size
        self.comm = self
        self.read = 0

    def allgather(self, obj):
        return self.hub.swap(self.rank, obj)

    def alltoall(self, objs):
        return [sent[self.rank] for sent in self.hub.swap(self.rank, objs)]

    def rows(self, n: int) -> slice:
        return ddp.rows_of(self.rank, self.size, n)


def _episodes(directory: Path, lengths: list[int]) -> list[Path]:
    rng = np.random.default_rng(5)
    paths = []
    for i, n in enumerate(lengths):
        done = np.zeros(n, bool)
        done[-1] = True
        path = directory / f"episode_{i:06d}.npz"
        obs = rng.integers(0, 256, (n, 64, 64, 3), np.uint8)
        write_episode(path, Episode(obs, np.zeros((n, 1), np.float32), np.zeros(n, np.float32), done,
                                    np.zeros(n, bool), {"index": i}))
        paths.append(path)
    return paths


@pytest.mark.parametrize("size, batch, group", [(2, 35, 3), (3, 16, 2), (2, 7, 16), (4, 3, 1)])
def test_frame_batches_are_one_process_batches_split_by_rows(tmp_path, size, batch, group):
    paths = _episodes(tmp_path, [30, 12, 41, 5, 27, 19, 33])
    solo = list(iter_frame_batches(paths, batch, np.random.default_rng([0, 2]), group))
    hub, results = _Hub(size), [None] * size

    def rank_main(rank: int) -> None:
        results[rank] = list(ddp.frame_batches(paths, batch, np.random.default_rng([0, 2]), group,
                                               _ThreadRanks(hub, rank)))

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in results)
    assert all(len(r) == len(solo) for r in results)
    for i, whole in enumerate(solo):
        assert all(results[r][i][1] == len(whole) for r in range(size))  # the global size, on every rank
        parts = [results[r][i][0] for r in range(size)]
        assert [len(p) for p in parts] == [len(range(len(whole))[ddp.rows_of(r, size, len(whole))])
                                           for r in range(size)]
        assert np.array_equal(np.concatenate(parts), whole)


# -- M's rows: built per rank, together one process's batches --

class _Rank:
    def __init__(self, rank: int, size: int):
        self.rank, self.size = rank, size

    def rows(self, n: int) -> slice:
        return ddp.rows_of(self.rank, self.size, n)


def _series(lengths: list[int]) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    out = []
    for n in lengths:
        terminated = np.zeros(n, bool)
        terminated[-1] = True
        out.append({"mu": rng.standard_normal((n, 4), np.float32),
                    "logvar": rng.standard_normal((n, 4), np.float32),
                    "action": rng.standard_normal((n, 2), np.float32), "terminated": terminated})
    return out


@pytest.mark.parametrize("size, batch, seq_len", [(2, 5, 10), (3, 7, 4), (2, 2, 50), (4, 9, 7)])
def test_stream_and_window_rows_are_one_process_batches_split_by_rows(size, batch, seq_len):
    series = _series([30, 12, 41, 5, 27, 19, 33, 8])
    cases = [(stream_batches(series, batch, seq_len, np.random.default_rng(7)),
              [ddp.stream_rows(series, batch, seq_len, np.random.default_rng(7), _Rank(r, size))
               for r in range(size)]),
             (window_batches(series, batch, seq_len, 4, np.random.default_rng(7)),
              [ddp.window_rows(series, batch, seq_len, 4, np.random.default_rng(7), _Rank(r, size))
               for r in range(size)])]
    for whole, parts in cases:
        whole, parts = list(whole), [list(p) for p in parts]
        assert whole and all(len(p) == len(whole) for p in parts)
        for i, full in enumerate(whole):
            mine = [p[i] for p in parts]
            assert all(m["first"] == full["first"] and m["rows_total"] == batch for m in mine)
            assert all(m["valid_total"] == int(full["valid"].sum()) for m in mine)
            for key in full.keys() - {"first"}:
                assert np.array_equal(np.concatenate([m[key] for m in mine]), full[key]), (i, key)


# -- real runs under mpirun --

def _curve(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k != "wall_s"}


def _assert_same_curve(got: Path, want: Path) -> None:
    a, b = _curve(got), _curve(want)
    assert a.keys() == b.keys() and len(a["step"]) == len(b["step"])
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=RTOL, err_msg=key)
        np.testing.assert_allclose(a[key][0], b[key][0], rtol=1e-6, err_msg=f"first step's {key}")


def _assert_same_checkpoint(got: Path, want: Path, model: bool = True) -> None:
    """Adam's moments (and the weights) of two checkpoints within 1e-4 normwise, tensor by tensor;
    the torch RNG state equal (every rank draws the whole batch's noise, as one process)."""
    a, b = (torch.load(p, weights_only=True) for p in (got, want))
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"])
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    pairs = [(a["optimizer"]["state"][i][k], b["optimizer"]["state"][i][k], f"{i}.{k}")
             for i in b["optimizer"]["state"] for k in ("exp_avg", "exp_avg_sq")]
    if model:
        pairs += [(a["model"][k], b["model"][k], k) for k in b["model"]]
    for x, y, name in pairs:
        assert (x - y).norm() <= 1e-4 * y.norm(), name


def _ok(done) -> None:
    assert done.returncode == 0, done.stdout + done.stderr


def test_v_on_ranks_follows_one_process_and_resumes_on_another_rank_count(doom_series_run, copy_run,
                                                                           run_stage):
    solo, ranks = copy_run(doom_series_run, "solo"), copy_run(doom_series_run, "ranks")
    _ok(run_stage("vae_train", "--run", str(solo), "--fresh", "--epochs", "2", *V_ARGS))
    # Epoch 1 on 2 ranks; the same command on 3 ranks continues it (35 rows: 11 + 12 + 12).
    first = run_stage("vae_train", "--run", str(ranks), "--fresh", "--epochs", "1", *V_ARGS, ranks=2)
    _ok(first)
    assert "x 2 ranks" in first.stdout and first.stdout.count("epoch 1/1 done") == 1  # rank 0 speaks
    again = run_stage("vae_train", "--run", str(ranks), "--epochs", "2", *V_ARGS, ranks=3)
    _ok(again)
    assert "resuming after epoch 1" in again.stdout and "x 3 ranks" in again.stdout
    _assert_same_curve(ranks / "vae" / "metrics.csv", solo / "vae" / "metrics.csv")
    assert (ranks / "vae" / "reconstructions" / "epoch_002.png").is_file()


def test_v_first_step_gradient_on_ranks_is_one_process_gradient(doom_series_run, copy_run, run_stage):
    # One step of every frame: the checkpoint's Adam moments are the gradient (x0.1, its square x0.001).
    solo, ranks = copy_run(doom_series_run, "solo"), copy_run(doom_series_run, "ranks")
    one_step = ["--fresh", "--epochs", "1", "--batch-size", "1000", "--threads", "1", "--log-every", "0"]
    _ok(run_stage("vae_train", "--run", str(solo), *one_step))
    _ok(run_stage("vae_train", "--run", str(ranks), *one_step, ranks=2))
    assert _curve(ranks / "vae" / "metrics.csv")["step"].tolist() == [1.0]
    _assert_same_checkpoint(ranks / "vae" / "checkpoint.pt", solo / "vae" / "checkpoint.pt", model=False)


def test_m_on_ranks_follows_one_process_and_resumes_on_another_rank_count(doom_series_run, copy_run,
                                                                          run_stage):
    solo, ranks, resumed = (copy_run(doom_series_run, n) for n in ("solo", "ranks", "resumed"))
    _ok(run_stage("rnn_train", "--run", str(solo), "--epochs", "2", *M_ARGS))
    _ok(run_stage("rnn_train", "--run", str(ranks), "--epochs", "2", *M_ARGS, ranks=2))
    _assert_same_curve(ranks / "rnn" / "metrics.csv", solo / "rnn" / "metrics.csv")
    _assert_same_checkpoint(ranks / "rnn" / "checkpoint.pt", solo / "rnn" / "checkpoint.pt")
    # One process's epoch 1, continued on 2 ranks (5 streams: 2 + 3).
    _ok(run_stage("rnn_train", "--run", str(resumed), "--epochs", "1", *M_ARGS))
    _ok(run_stage("rnn_train", "--run", str(resumed), "--epochs", "2", *M_ARGS, "--np", "2"))  # (its mpirun)
    _assert_same_curve(resumed / "rnn" / "metrics.csv", solo / "rnn" / "metrics.csv")
    _assert_same_checkpoint(resumed / "rnn" / "checkpoint.pt", solo / "rnn" / "checkpoint.pt")


def test_m_carracing_windows_on_ranks_follow_one_process(carracing_series_run, copy_run, run_stage):
    solo, ranks = copy_run(carracing_series_run, "solo"), copy_run(carracing_series_run, "ranks")
    args = ["--epochs", "2", "--steps-per-epoch", "3", *M_ARGS]  # (5 windows: 2 + 3)
    _ok(run_stage("rnn_train", "--run", str(solo), *args))
    _ok(run_stage("rnn_train", "--run", str(ranks), *args, ranks=2))
    _assert_same_curve(ranks / "rnn" / "metrics.csv", solo / "rnn" / "metrics.csv")
    _assert_same_checkpoint(ranks / "rnn" / "checkpoint.pt", solo / "rnn" / "checkpoint.pt")


def test_series_on_two_ranks_is_one_process_series(doom_series_run, copy_run, run_stage):
    solo, ranks = copy_run(doom_series_run, "solo"), copy_run(doom_series_run, "ranks")
    for run in (solo, ranks):
        shutil.rmtree(run / "series")
    # (the same threads per process: torch's CPU convolutions round differently with more threads)
    _ok(run_stage("series", "--run", str(solo), "--threads", "1", "--log-every", "0"))
    done = run_stage("series", "--run", str(ranks), "--threads", "1", "--log-every", "0", ranks=2)
    _ok(done)
    assert "on 2 ranks" in done.stdout
    names = sorted(p.relative_to(solo) for p in (solo / "series").rglob("*.npz"))
    assert names == sorted(p.relative_to(ranks) for p in (ranks / "series").rglob("*.npz"))
    assert len(names) == 7  # 6 episodes and initial_z
    _assert_same_files(solo, ranks, names)
    # A re-run on 2 ranks (--np: the stage starts its own mpirun) keeps what is encoded and remakes
    # what is missing.
    (ranks / "series" / "episode_000002.npz").unlink()
    again = run_stage("series", "--run", str(ranks), "--threads", "1", "--log-every", "0", "--np", "2")
    _ok(again)
    assert "5 episodes already encoded, 1 to encode on 2 ranks" in again.stdout
    _assert_same_files(solo, ranks, names)


def _assert_same_files(solo: Path, ranks: Path, names: list[Path]) -> None:
    for name in names:
        with np.load(solo / name) as a, np.load(ranks / name) as b:
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                assert np.array_equal(a[key], b[key]), (name, key)


def test_refusals_on_ranks_are_one_line(doom_series_run, copy_run, run_stage):
    run = copy_run(doom_series_run)
    before = files_of(run)
    # M's batch of 1 stream cannot be split over 2 ranks: said once, by rank 0; nothing written.
    done = run_stage("rnn_train", "--run", str(run), *M_ARGS, "--epochs", "1", "--batch-size", "1",
                     ranks=2, timeout=120)
    assert done.returncode != 0
    assert done.stderr.count("cannot be split over 2 ranks") == 1, done.stderr
    assert files_of(run) == before
    for stage in ("vae_train", "series", "rnn_train"):  # --np: not negative, not under a launcher
        done = run_stage(stage, "--run", str(run), "--np", "-1", timeout=60)
        assert done.returncode == 2 and "--np must be >= 0" in done.stderr, done.stderr
    done = run_stage("series", "--run", str(run), "--np", "2", ranks=2, timeout=60)
    assert done.returncode == 2 and done.stderr.count("--np starts its own mpirun") == 1, done.stderr
    # A damaged episode stops V with its name (the job ends on every rank).
    (run / "record" / "episode_000003.npz").write_bytes(b"garbage")
    done = run_stage("vae_train", "--run", str(run), "--fresh", *V_ARGS, "--epochs", "1", ranks=2,
                     timeout=120)
    assert done.returncode != 0 and "episode_000003.npz" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
