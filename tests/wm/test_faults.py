"""The machine's faults and absurd counts: one line ``error: ...``, a non-zero exit, nothing lost.

A full disk is a small tmpfs mounted over a stage's output directory, shrunk to what it holds (plus a
little) after a first good run, so that the next run fails part way through; a read-only run is a
read-only mount. Mounting needs root: elsewhere these tests skip and say why.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from wm.core.errors import WMError, machine_errors, naming
from wm.data.files import atomic_write
from wm.data.record import episode_path, read_episode
from wm.pictures import render, report
from wm.stages import evaluate, extract, rnn_train, train, vae_train

FAST = ["--threads", "1", "--log-every", "0"]
FULL = "no space left on device"


def _mount(*args: str) -> None:
    """``mount ARGS``; skips the test when this machine does not let it mount."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command here to make a small or read-only file system")
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a test file system here: {done.stderr.strip() or done.returncode}")


@contextmanager
def mounted(directory: Path, *args: str) -> Iterator[Path]:
    """``directory`` with a file system mounted over it for the block; unmounted however it ends."""
    directory.mkdir(parents=True, exist_ok=True)
    _mount(*args, str(directory))
    try:
        yield directory
    finally:
        subprocess.run(["umount", "--lazy", str(directory)], check=True)  # (even if a file is open)


@contextmanager
def small_disk(directory: Path, keep: Path | None = None, size: str = "256m") -> Iterator[Path]:
    """A tmpfs of ``size`` over ``directory``, holding a copy of what ``keep`` holds."""
    with mounted(directory, "-t", "tmpfs", "-o", f"size={size}", "tmpfs") as disk:
        if keep is not None:
            shutil.copytree(keep, disk, dirs_exist_ok=True)
        yield disk


def fill(disk: Path, spare_kib: int = 0) -> None:
    """Shrink the tmpfs to what it holds plus ``spare_kib``: the next bigger write finds it full."""
    used_kib = shutil.disk_usage(disk).used // 1024
    _mount("-o", f"remount,size={used_kib + spare_kib}k", str(disk))


def empty_out(disk: Path) -> None:
    """Give the tmpfs room again (as a user who freed some space)."""
    _mount("-o", "remount,size=256m", str(disk))


def error_lines(err: str, *words: str) -> list[str]:
    """The ``error:`` lines of a stage's stderr (at least one), each holding ``words``; no traceback."""
    errors = [line for line in err.splitlines() if "error:" in line]
    assert errors and "Traceback" not in err, err
    assert all(word in line for word in words for line in errors), err
    return errors


def one_error_line(err: str, *words: str) -> None:
    """As :func:`error_lines`, and there is exactly one."""
    assert len(error_lines(err, *words)) == 1, err


# -- full disks --
def test_a_full_disk_during_extraction_keeps_every_episode_made(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--run", str(run), "--env", "doom", "--max-steps", "60", "--log-every", "100"]
    with small_disk(run / "record") as record:
        assert extract.main([*args, "--episodes", "2"]) == 0
        made = [episode_path(record, i).read_bytes() for i in range(2)]
        fill(record)
        assert extract.main([*args, "--episodes", "4"]) == 1
        one_error_line(capsys.readouterr().err, str(episode_path(record, 2)), FULL)
        assert [episode_path(record, i).read_bytes() for i in range(2)] == made
        assert not episode_path(record, 2).exists() and not list(record.glob(".*.tmp"))
        empty_out(record)
        assert extract.main([*args, "--episodes", "4"]) == 0
        assert "2 episodes kept, 2 to make" in capsys.readouterr().out
        assert len(read_episode(episode_path(record, 3))) > 0


@pytest.mark.slow
def test_a_full_disk_under_mpirun_ends_the_job_with_error_lines_not_tracebacks(tmp_path, run_stage):
    run = tmp_path / "run"
    with small_disk(run / "record", size="600k") as record:  # room for two episodes of the six
        done = run_stage("extract", "--run", str(run), "--env", "doom", "--episodes", "6",
                         "--max-steps", "60", "--log-every", "100", ranks=2, timeout=120)
        assert done.returncode != 0
        error_lines(done.stderr, FULL, str(record))  # (one per rank that found the disk full)
        kept = sorted(record.glob("episode_*.npz"))
        assert kept and all(len(read_episode(path)) > 0 for path in kept)


@pytest.mark.parametrize("stage, module, weights", [("vae", vae_train, "vae.pt"),
                                                    ("rnn", rnn_train, "rnn.pt")])
def test_a_full_disk_during_training_keeps_the_last_epoch(doom_m_run, copy_run, capsys, stage, module,
                                                          weights):
    """After epoch 1 the disk fills: epoch 2's weights cannot be written. Epoch 1's weights and
    checkpoint stay whole, and with space again the same command continues from them."""
    run = copy_run(doom_m_run)
    with small_disk(run / stage, keep=doom_m_run / stage) as out:
        before = {name: (out / name).read_bytes() for name in (weights, "checkpoint.pt")}
        fill(out, spare_kib=len(before[weights]) // 2048)  # room for the logs, not for the weights
        assert module.main(["--run", str(run), "--epochs", "2", *FAST]) == 1
        one_error_line(capsys.readouterr().err, str(out / weights), FULL)
        assert {name: (out / name).read_bytes() for name in before} == before
        assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1
        empty_out(out)
        assert module.main(["--run", str(run), "--epochs", "2", *FAST]) == 0
        assert "resuming after epoch 1" in capsys.readouterr().out


def test_a_full_disk_during_es_training_keeps_the_last_checkpoint(doom_m_run, copy_run, capsys):
    run = copy_run(doom_m_run)
    args = ["--run", str(run), "--optimizer", "pepg", "--dream", "--max-steps", "30", "--popsize", "4",
            "--num-episode", "1", "--eval-every", "1", "--eval-episodes", "2"]
    with small_disk(run / "es") as out:
        assert train.main([*args, "--generations", "1"]) == 0
        checkpoint = next(out.glob("checkpoint.*"))
        kept = checkpoint.read_bytes()
        page = os.sysconf("SC_PAGE_SIZE")
        assert len(kept) > page  # (so that it cannot fit in the room left below)
        # One page: room for a new status.json (which frees the old one's) and a new TensorBoard
        # file, not for the next checkpoint beside the last one.
        fill(out, spare_kib=page // 1024)
        capsys.readouterr()
        assert train.main([*args, "--generations", "3"]) == 1
        captured = capsys.readouterr()
        assert "in M's dream" in captured.out  # (it failed part way through, not while setting up)
        one_error_line(captured.err, str(out), FULL)
        assert checkpoint.read_bytes() == kept
        empty_out(out)
        assert train.main([*args, "--generations", "3"]) == 0
        assert "after generation 1" in capsys.readouterr().err


def test_a_full_or_read_only_eval_directory_is_one_line(doom_es_run, copy_run, capsys):
    run = copy_run(doom_es_run)
    args = ["--run", str(run), "--episodes", "2", "--max-steps", "20"]
    with small_disk(run / "eval") as out:
        assert evaluate.main([*args, "--name", "first"]) == 0
        first = (out / "first.json").read_bytes()
        fill(out)
        assert evaluate.main([*args, "--name", "second"]) == 1
        one_error_line(capsys.readouterr().err, str(out / "second"), FULL)
        _mount("-o", "remount,ro", str(out))
        assert evaluate.main([*args, "--name", "third"]) == 1
        one_error_line(capsys.readouterr().err, str(out), "Read-only file system")
        assert (out / "first.json").read_bytes() == first and not (out / "second.json").exists()


def test_a_read_only_run_is_one_line_for_evaluate_and_report(doom_es_run, copy_run, capsys):
    run = copy_run(doom_es_run)
    with mounted(run, "--bind", str(run)):
        _mount("-o", "remount,ro,bind", str(run))
        assert evaluate.main(["--run", str(run), "--episodes", "1", "--name", "ro"]) == 1
        one_error_line(capsys.readouterr().err, str(run / "eval"), "Read-only file system")
        assert report.main(["--run", str(run), "--no-videos"]) == 1
        one_error_line(capsys.readouterr().err, str(run / "report"), "Read-only file system")


# -- the one place that turns the machine's faults into one line --
def _disk_full(f: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # (as a write or fsync: no file name)


def test_a_failed_write_is_one_line_naming_the_file_and_bugs_stay_bugs(tmp_path):
    with pytest.raises(WMError, match=f"^{re.escape(str(tmp_path / 'x.bin'))}: {FULL}; free some space"):
        with machine_errors():
            atomic_write(tmp_path / "x.bin", _disk_full)
    assert not list(tmp_path.iterdir())  # (nor a temporary file left behind)
    with pytest.raises(WMError, match=f"^{re.escape(str(tmp_path / 'metrics.csv'))}: disk quota exceeded"):
        with machine_errors(), naming(tmp_path / "metrics.csv"):
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    with pytest.raises(FileNotFoundError):  # (a missing file is no fault of the machine: a bug)
        with machine_errors():
            (tmp_path / "missing").read_bytes()


def test_a_full_disk_in_a_helper_thread_is_no_traceback(capsys):
    """TensorBoard writes in a thread of its own: its full disk is the stage's one line too."""

    def write() -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    hook = threading.excepthook
    with pytest.raises(WMError, match=FULL):
        with machine_errors():
            thread = threading.Thread(target=write)
            thread.start()
            thread.join()
    assert "Traceback" not in capsys.readouterr().err
    assert threading.excepthook is hook


# -- absurd counts --
@pytest.mark.parametrize("main, flags, message", [
    (evaluate.main, ["--seeds=-1"], "--seeds must be comma-separated integers >= 0"),
    (evaluate.main, ["--seeds", "3,-2"], "--seeds must be comma-separated integers >= 0"),
    (render.main, ["--seed", "-1"], "--seed must be >= 0"),
    (render.main, ["--fps", "nan"], "--fps a number >= 0"),
    (report.main, ["--temperature", "nan"], "--temperature must be a number >= 0"),
    (report.main, ["--seed", "-5"], "--seed and --max-steps >= -1"),
    (train.main, ["--popsize", "1000000000"], "--popsize must be 2 to 100,000"),
    (train.main, ["--num-episode", "1000000000"], "--popsize x --num-episode and --eval-episodes must be"),
    (train.main, ["--eval-episodes", "1000000000"], "--popsize x --num-episode and --eval-episodes must be"),
    (evaluate.main, ["--episodes", "1000000000"], "--episodes must be 1 to 1,000,000"),
])
def test_absurd_counts_are_one_line_at_once(doom_es_run, capsys, main, flags, message):
    started = time.monotonic()
    assert main(["--run", str(doom_es_run), *flags]) == 2
    assert time.monotonic() - started < 10  # (a population of 1e9 stalled inside pycma for minutes)
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
