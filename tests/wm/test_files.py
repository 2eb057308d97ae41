"""Atomic writes from several processes at once, the leftovers they may leave, and plain names."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from wm.core.errors import WMError
from wm.data.files import atomic_write, check_plain_name, remove_stale_temps, temp_name, write_bytes

SIZE = 256 * 1024  # big enough that a write is not one system call


def _write_many(path: str, byte: int, times: int) -> int:
    """One process's writes of ``path``, each the whole file of one repeated byte."""
    for _ in range(times):
        write_bytes(path, bytes([byte]) * SIZE)
    return times


def _read_until(path: str, stop: str, seconds: float) -> int:
    """Read ``path`` until ``stop`` exists; raise at the first read that is not one whole write."""
    reads, deadline = 0, time.monotonic() + seconds
    while not Path(stop).exists() and time.monotonic() < deadline:
        data = Path(path).read_bytes()
        assert len(data) == SIZE and data == data[:1] * SIZE, f"read {len(data)} bytes, mixed"
        reads += 1
    return reads


def test_processes_writing_one_file_at_once_never_fail_or_show_a_partial_file(tmp_path):
    path, stop = tmp_path / "shared.bin", tmp_path / "stop"
    write_bytes(path, b"\0" * SIZE)
    with ProcessPoolExecutor(5, mp_context=multiprocessing.get_context("spawn")) as pool:
        reader = pool.submit(_read_until, str(path), str(stop), 60.0)
        writers = [pool.submit(_write_many, str(path), byte, 30) for byte in (1, 2, 3, 4)]
        assert [w.result(timeout=120) for w in writers] == [30] * 4  # (a writer's error is raised here)
        stop.touch()
        assert reader.result(timeout=120) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.bin", "stop"]  # no temporary file left


def test_temporary_names_are_hidden_unique_and_removed_as_stale(tmp_path):
    path = tmp_path / "config.json"
    names = {temp_name(path) for _ in range(100)}
    assert len(names) == 100
    assert all(p.parent == tmp_path and p.name.startswith(".config.json.") and p.suffix == ".tmp"
               for p in names)
    left = [temp_name(path), temp_name(tmp_path / "episode_000001.npz"), tmp_path / ".episode_000002.npz.tmp"]
    for p in left:  # (the last: the fixed name earlier versions used)
        p.write_bytes(b"half")
    (tmp_path / "episode_000001.npz").write_bytes(b"kept")
    assert remove_stale_temps(tmp_path) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["episode_000001.npz"]
    temp_name(path).write_bytes(b"half")
    assert remove_stale_temps(tmp_path, "config.json") == 1


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    write_bytes(path, b"old")

    def fail(f):
        f.write(b"new, half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize("name", ["best", "sweep-tau-1.15-dream", "real 2", "a..b"])
def test_plain_names_are_accepted(name):
    check_plain_name("--name", name)


@pytest.mark.parametrize("name", ["../es/best", "es/best", "/tmp/x", "..", ".", ".hidden", "", " ", "a\\b",
                                  "a\0b"])
def test_paths_hidden_and_empty_names_are_refused(name):
    with pytest.raises(WMError, match="--name must be a plain file name"):
        check_plain_name("--name", name)
