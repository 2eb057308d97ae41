"""Episode files: round trip, atomic writes, validation on read, and the frame batch iterator."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import wm.data.record
from wm.core.errors import WMError
from wm.data.files import atomic_write, temp_name
from wm.data.record import (
    FORMAT_VERSION,
    Episode,
    EpisodeFileError,
    episode_arrays,
    episode_path,
    iter_frame_batches,
    list_episodes,
    read_episode,
    write_episode,
)
from wm.envs.games import FRAME_SHAPE

DOOM_META = {"env": "doom", "policy": "hold", "seed": 0, "index": 0, "max_steps": 2100}


def make_episode(
    T: int = 6, dim: int = 1, code: int = 0, end: str = "terminated", meta: dict | None = None
) -> Episode:
    """A valid episode whose frame t is filled with (code, t % 256, t // 256) in its 3 channels."""
    obs = np.empty((T, *FRAME_SHAPE), np.uint8)
    obs[..., 0] = code
    obs[..., 1] = (np.arange(T) % 256)[:, None, None]
    obs[..., 2] = (np.arange(T) // 256)[:, None, None]
    ended = np.zeros(T, bool)
    ended[-1] = True
    return Episode(
        obs=obs,
        action=np.linspace(-1, 1, T * dim, dtype=np.float32).reshape(T, dim),
        reward=np.arange(T, dtype=np.float32) - 2.5,
        terminated=ended if end == "terminated" else np.zeros(T, bool),
        truncated=ended if end == "truncated" else np.zeros(T, bool),
        meta=dict(DOOM_META if meta is None else meta),
    )


def frame_code(frame: np.ndarray) -> tuple[int, int]:
    """(episode code, step) of a frame made by make_episode; checks the frame is not mixed up."""
    pixel = frame[0, 0]
    assert np.all(frame == pixel), "a frame's pixels come from different frames"
    return int(pixel[0]), int(pixel[1]) + 256 * int(pixel[2])


def raw_arrays(episode: Episode) -> dict[str, np.ndarray]:
    """What write_episode would store, as a dict to spoil before np.savez bypasses validation."""
    return episode_arrays(episode)


def save_raw(path: Path, **changes) -> Path:
    """Write a valid episode's arrays with ``changes`` applied (None deletes a key), unvalidated."""
    arrays = raw_arrays(make_episode())
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def assert_episodes_equal(a: Episode, b: Episode) -> None:
    for name in ("obs", "action", "reward", "terminated", "truncated"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def assert_bad_file(path: Path, *words: str, expect: dict | None = None) -> EpisodeFileError:
    with pytest.raises(EpisodeFileError) as info:
        read_episode(path, expect=expect)
    err = info.value
    assert isinstance(err, WMError)
    assert str(path) in str(err)
    assert err.path == Path(path)
    for word in words:
        assert word in err.reason, (word, err.reason)
    return err


# ---------------------------------------------------------------- write and read


@pytest.mark.parametrize(("end", "dim"), [("terminated", 1), ("truncated", 3)])
def test_round_trip(tmp_path, end, dim):
    episode = make_episode(T=9, dim=dim, code=4, end=end, meta={**DOOM_META, "steps": 9})
    path = tmp_path / "episode_000000.npz"
    write_episode(path, episode)
    back = read_episode(path)
    assert_episodes_equal(back, episode)
    assert back.meta == {"format_version": FORMAT_VERSION, **DOOM_META, "steps": 9}
    assert len(back) == 9
    assert back.total_reward == pytest.approx(float(episode.reward.sum()))
    assert read_episode(str(path)).meta == back.meta  # str paths too


def test_file_loads_without_pickle(tmp_path):
    path = tmp_path / "e.npz"
    write_episode(path, make_episode())
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(wm.data.record.KEYS)


def test_write_leaves_only_the_final_file(tmp_path):
    path = tmp_path / "episode_000003.npz"
    write_episode(path, make_episode())
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    name = temp_name(path).name  # (hidden, and unique per write)
    assert name.startswith(".episode_000003.npz.") and name.endswith(".tmp") and name != temp_name(path).name


def test_write_replaces_an_existing_file(tmp_path):
    path = tmp_path / "e.npz"
    write_episode(path, make_episode(T=3, code=1))
    write_episode(path, make_episode(T=5, code=2))
    back = read_episode(path)
    assert len(back) == 5 and frame_code(back.obs[0]) == (2, 0)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_write_failure_leaves_nothing(tmp_path, error):
    path = tmp_path / "out.bin"
    seen = []

    def write(f):
        f.write(b"half of it")
        f.flush()
        seen.append([p.name.startswith(".out.bin.") and p.suffix == ".tmp" for p in tmp_path.iterdir()])
        raise error("disk on fire")

    with pytest.raises(error):
        atomic_write(path, write)
    assert seen == [[True]]  # it did write to the temporary file ...
    assert not path.exists()  # ... but nothing stands under the final name
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write(path, lambda f: f.write(b"old"))

    def write(f):
        f.write(b"new but unfinished")
        raise OSError("no space left")

    with pytest.raises(OSError):
        atomic_write(path, write)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_write_episode_failing_midway_leaves_nothing(tmp_path, monkeypatch):
    # Every .npy writer (np.savez*, or a zipfile of members) goes through np.lib.format.write_array:
    # let the first array through, then fail part-way into the second.
    real_write_array = np.lib.format.write_array
    calls = []

    def failing_write_array(fp, array, *args, **kwargs):
        calls.append(len(array))
        if len(calls) == 1:
            return real_write_array(fp, array, *args, **kwargs)
        fp.write(b"\x93NUMPY partial")
        raise OSError("interrupted")

    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    path = tmp_path / "episode_000000.npz"
    with pytest.raises(OSError):
        write_episode(path, make_episode())
    assert len(calls) == 2  # it did fail midway, after writing part of the file
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_episode_refuses_invalid_episode(tmp_path):
    path = tmp_path / "e.npz"
    episode = make_episode()
    episode.action[2] = 1.5
    with pytest.raises(EpisodeFileError, match="action"):
        write_episode(path, episode)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- read_episode refuses bad files


def test_missing_file(tmp_path):
    assert_bad_file(tmp_path / "nope.npz", "no such file")


def test_directory_is_not_an_episode(tmp_path):
    (tmp_path / "d.npz").mkdir()
    assert_bad_file(tmp_path / "d.npz")


def test_not_a_zip_file(tmp_path):
    path = tmp_path / "e.npz"
    path.write_bytes(b"this is not an npz file at all\n" * 10)
    assert_bad_file(path, "corrupt")


def test_empty_file(tmp_path):
    path = tmp_path / "e.npz"
    path.write_bytes(b"")
    assert_bad_file(path, "corrupt")


def test_truncated_file(tmp_path):
    path = tmp_path / "e.npz"
    write_episode(path, make_episode(T=20))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_bad_file(path, "corrupt")


def test_corrupted_bytes_in_the_middle(tmp_path):
    path = tmp_path / "e.npz"
    write_episode(path, make_episode(T=20))
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    assert_bad_file(path)


@pytest.mark.parametrize("key", ["obs", "action", "reward", "terminated", "truncated", "meta"])
def test_missing_key(tmp_path, key):
    path = save_raw(tmp_path / "e.npz", **{key: None})
    assert_bad_file(path, "missing", key)


def valid() -> Episode:
    return make_episode()


def ended_mid(T: int = 6) -> np.ndarray:
    flags = np.zeros(T, bool)
    flags[2] = flags[-1] = True
    return flags


BAD_ARRAYS = {
    "obs dtype": ({"obs": valid().obs.astype(np.float32)}, ["obs", "dtype"]),
    "obs shape": ({"obs": valid().obs[:, :32, :32]}, ["obs", "shape"]),
    "obs channels": ({"obs": valid().obs[..., :1]}, ["obs", "shape"]),
    "obs no time axis": ({"obs": valid().obs[0]}, ["obs", "shape"]),
    "action dtype": ({"action": valid().action.astype(np.float64)}, ["action", "dtype"]),
    "action 1-d": ({"action": valid().action[:, 0]}, ["action", "shape"]),
    "reward dtype": ({"reward": valid().reward.astype(np.float64)}, ["reward", "dtype"]),
    "terminated dtype": ({"terminated": valid().terminated.astype(np.uint8)}, ["terminated", "dtype"]),
    "unequal lengths": ({"reward": valid().reward[:-1]}, ["unequal lengths"]),
    "unequal obs": ({"obs": valid().obs[:-1]}, ["unequal lengths"]),
    "action above 1": ({"action": valid().action * 1.5}, ["action", "[-1, 1]"]),
    "action below -1": ({"action": valid().action - 0.01}, ["action", "[-1, 1]"]),
    "action nan": ({"action": np.full_like(valid().action, np.nan)}, ["action"]),
    "reward nan": ({"reward": np.where(np.arange(6) == 3, np.nan, 0).astype(np.float32)}, ["reward", "NaN"]),
    "reward inf": ({"reward": np.full(6, np.inf, np.float32)}, ["reward"]),
    "ended midway": ({"terminated": ended_mid()}, ["ends at step 2"]),
    "truncated midway": ({"truncated": ended_mid()}, ["ends at step 2"]),
    "last step open": ({"terminated": np.zeros(6, bool)}, ["last step"]),
    "empty": (
        {k: getattr(valid(), k)[:0] for k in ("obs", "action", "reward", "terminated", "truncated")},
        ["empty"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_ARRAYS))
def test_invalid_arrays(tmp_path, case):
    changes, words = BAD_ARRAYS[case]
    assert_bad_file(save_raw(tmp_path / "e.npz", **changes), *words)


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        ({**DOOM_META, "format_version": 2}, ["format_version 2"]),
        (DOOM_META, ["format_version None"]),
        ({**DOOM_META, "format_version": "1"}, ["format_version"]),
    ],
)
def test_wrong_format_version(tmp_path, meta, words):
    assert_bad_file(save_raw(tmp_path / "e.npz", meta=np.array(json.dumps(meta))), *words)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "3"])
def test_unreadable_meta(tmp_path, text):
    assert_bad_file(save_raw(tmp_path / "e.npz", meta=np.array(text)), "meta")


def test_expect(tmp_path):
    path = tmp_path / "e.npz"
    write_episode(path, make_episode())
    assert read_episode(path, expect={"env": "doom", "index": 0}).meta["policy"] == "hold"
    assert_bad_file(path, "env='doom'", "'carracing'", expect={"env": "carracing"})
    assert_bad_file(path, "index", expect={"env": "doom", "index": 1})
    assert_bad_file(path, "steps", expect={"steps": 6})  # a key the file lacks


def test_reread_of_a_spoiled_file_after_a_good_one(tmp_path):
    path = tmp_path / "e.npz"
    write_episode(path, make_episode())
    read_episode(path)
    save_raw(path, action=valid().action * 3)
    assert_bad_file(path, "action")


# ---------------------------------------------------------------- listing


def test_episode_paths_and_listing(tmp_path):
    assert episode_path(tmp_path, 12) == tmp_path / "episode_000012.npz"
    for i in (10, 2, 0):
        write_episode(episode_path(tmp_path, i), make_episode(code=i))
    (tmp_path / "notes.txt").write_text("not an episode")
    (tmp_path / ".episode_000005.npz.tmp").write_bytes(b"half")
    assert list_episodes(tmp_path) == [episode_path(tmp_path, i) for i in (0, 2, 10)]
    assert list_episodes(str(tmp_path)) == list_episodes(tmp_path)


# ---------------------------------------------------------------- iter_frame_batches


def write_dataset(directory: Path, lengths: list[int]) -> list[Path]:
    paths = []
    for i, T in enumerate(lengths):
        path = episode_path(directory, i)
        write_episode(path, make_episode(T=T, code=i, meta={**DOOM_META, "index": i}))
        paths.append(path)
    return paths


def all_codes(lengths: list[int]) -> list[tuple[int, int]]:
    return [(i, t) for i, T in enumerate(lengths) for t in range(T)]


def batch_codes(batches: list[np.ndarray]) -> list[tuple[int, int]]:
    return [frame_code(frame) for batch in batches for frame in batch]


LENGTHS = [20 + 3 * i for i in range(10)]  # 335 frames


def check_batches(batches: list[np.ndarray], batch_size: int, total: int) -> None:
    for batch in batches:
        assert batch.dtype == np.uint8
        assert batch.shape[1:] == FRAME_SHAPE
    sizes = [len(b) for b in batches]
    assert all(size == batch_size for size in sizes[:-1])
    assert 0 < sizes[-1] <= batch_size
    assert sum(sizes) == total


@pytest.mark.parametrize(("batch_size", "in_memory"), [(8, 3), (7, 1), (64, 16), (335, 4), (1000, 2)])
def test_batches_in_order_without_rng(tmp_path, batch_size, in_memory):
    paths = write_dataset(tmp_path, LENGTHS)
    batches = list(iter_frame_batches(paths, batch_size, episodes_in_memory=in_memory))
    check_batches(batches, batch_size, sum(LENGTHS))
    assert batch_codes(batches) == all_codes(LENGTHS)


def test_shuffled_batches_hold_every_frame_once_and_mix_episodes(tmp_path):
    paths = write_dataset(tmp_path, LENGTHS)
    batches = list(iter_frame_batches(paths, 8, rng=np.random.default_rng(0), episodes_in_memory=4))
    check_batches(batches, 8, sum(LENGTHS))
    codes = batch_codes(batches)
    assert Counter(codes) == Counter(all_codes(LENGTHS))
    assert codes != all_codes(LENGTHS)
    # In order, a batch of 8 frames spans at most 2 of these 20+ frame episodes; shuffled, most span more.
    episodes_per_batch = [len({frame_code(f)[0] for f in batch}) for batch in batches]
    assert sum(n >= 3 for n in episodes_per_batch) > len(batches) / 2
    # Episodes are visited in a random order too: in order, the first window holds episodes 0-3 only.
    assert max(frame_code(f)[0] for f in batches[0]) >= 4


def test_shuffle_follows_the_rng(tmp_path):
    paths = write_dataset(tmp_path, LENGTHS[:5])

    def codes(seed):
        return batch_codes(list(iter_frame_batches(paths, 16, rng=np.random.default_rng(seed))))

    assert codes(1) == codes(1)
    assert codes(1) != codes(2)


def test_batches_read_episodes_lazily(tmp_path, monkeypatch):
    lengths = [10] * 10
    paths = write_dataset(tmp_path, lengths)
    read = []
    real_read = wm.data.record.read_episode

    def counting_read(path, *args, **kwargs):
        read.append(Path(path))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(wm.data.record, "read_episode", counting_read)
    batches = iter_frame_batches(paths, 4, episodes_in_memory=2)
    assert read == []  # a generator: nothing is read before the first batch is asked for
    next(batches)
    assert 1 <= len(read) <= 2
    yielded = 4
    for batch in batches:
        yielded += len(batch)
        finished = yielded // 10  # episodes whose frames have all been yielded (in order)
        # At most the window of 2 plus the one whose leftover frames were carried over.
        assert len(read) <= finished + 2 + 1
    assert sorted(read) == paths


def test_batches_raise_on_a_corrupt_episode(tmp_path):
    paths = write_dataset(tmp_path, [5, 5, 5])
    paths[1].write_bytes(b"garbage")
    with pytest.raises(EpisodeFileError) as info:
        list(iter_frame_batches(paths, 4, episodes_in_memory=1))
    assert str(paths[1]) in str(info.value)
