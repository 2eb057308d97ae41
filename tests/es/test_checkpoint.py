"""Checkpoints load without running code: state files, pycma's restricted pickle, old pickle files."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from es import restricted_pickle, statefile
from es.checkpoint import Checkpoints, convert_legacy
from es.strategies import make_strategy, strategy_from_state
from tests.conftest import ROOT, Payload

NAMES = ["cma", "pepg", "openes", "snes", "ga"]


def write(path: Path, writer) -> None:
    with open(path, "wb") as f:
        writer(f)


def trained(name: str, generations: int = 3, dim: int = 6):
    strategy = make_strategy(name, dim, 8, 1)
    for _ in range(generations):
        solutions = strategy.ask()
        strategy.tell(-np.sum((solutions - 0.3) ** 2, axis=1))
    return strategy


def test_state_file_round_trips_every_kind_of_value():
    tree = {"a": [1, 2.5, float("inf"), float("nan"), None, True, "x", 2**100], "b": (1, (2, "3")),
            "arr": np.arange(6, dtype=np.float32).reshape(2, 3), "f": np.asfortranarray(np.eye(3) + 0.5),
            "bytes": b"\x00\x01", "scalar": np.float64(0.1), "nested": {"deep": [{"x": np.zeros(0)}]}}
    back = statefile.loads(statefile.dumps(tree))
    assert back["a"][:3] == [1, 2.5, float("inf")] and np.isnan(back["a"][3])
    assert back["a"][4:] == tree["a"][4:]
    assert back["b"] == (1, (2, "3")) and back["bytes"] == b"\x00\x01" and back["scalar"] == 0.1
    assert back["arr"].dtype == np.float32 and np.array_equal(back["arr"], tree["arr"])
    assert back["f"].flags.f_contiguous and np.array_equal(back["f"], tree["f"])
    assert back["nested"]["deep"][0]["x"].shape == (0,)


def test_state_file_refuses_what_it_cannot_store():
    for bad in ({1: 2}, {"__array__": 1}, {"x": object()}, np.array([None], dtype=object)):
        with pytest.raises(statefile.StateFileError):
            statefile.dumps(bad)


@pytest.mark.parametrize("name", NAMES)
def test_a_checkpoint_resumes_bit_for_bit_through_the_file(tmp_path, name):
    strategy = trained(name)
    strategy.ask()  # pending: the file falls between ask and tell
    checkpoints = Checkpoints(tmp_path / "checkpoint.npz", write)
    checkpoints.save(strategy.state_dict(), {"generation": 3}, {"seed": 1}, {"problem": "sphere"})
    resumed = strategy_from_state(checkpoints.load()["strategy"])
    for s in (strategy, resumed):
        s.tell(-np.sum(s._pending ** 2, axis=1))
    for _ in range(3):
        a, b = strategy.ask(), resumed.ask()
        assert np.array_equal(a, b)
        strategy.tell(-np.sum(a ** 2, axis=1))
        resumed.tell(-np.sum(b ** 2, axis=1))
    assert np.array_equal(strategy.result().mean, resumed.result().mean)


@pytest.mark.parametrize("dim, popsize", [(40, 8), (96, 4), (3, 2), (1, 6), (200, 64)])
def test_cma_state_holds_only_allowed_names_and_its_arrays_raw(dim, popsize):
    strategy = make_strategy("cma", dim, popsize, 1)
    for _ in range(4):
        strategy.tell(-np.sum(strategy.ask() ** 2, axis=1))
    state = strategy.state_dict()["algorithm"]
    # Loading through the restricted unpickler resolves every name the stream holds.
    restricted_pickle.loads(state["stream"], state["arrays"], external=lambda tag: None)
    assert len(state["stream"]) < 40_000  # the stream is small: the covariance goes beside it
    assert any(a.shape == (dim, dim) for a in state["arrays"]) or dim == 1


def test_a_state_naming_what_the_loader_refuses_is_refused_when_saved():
    with pytest.raises(restricted_pickle.RefusedPickle, match="could not be loaded again"):
        restricted_pickle.dumps({"x": Path("/")})


def test_a_pickle_naming_anything_else_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(restricted_pickle.RefusedPickle, match="builtins.exec"):
        restricted_pickle.loads(pickle.dumps(Payload(marker)), [])
    assert not marker.exists()


def plant(checkpoint: Path, edit) -> None:
    """Rewrite a checkpoint's tree with ``edit(tree)``."""
    tree = statefile.loads(checkpoint.read_bytes())
    edit(tree)
    checkpoint.write_bytes(statefile.dumps(tree))


def saved(tmp_path: Path, name: str = "cma") -> Checkpoints:
    checkpoints = Checkpoints(tmp_path / "checkpoint.npz", write)
    checkpoints.save(trained(name).state_dict(), {"generation": 3}, {"seed": 1}, {})
    return checkpoints


def test_a_tampered_cma_stream_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    checkpoints = saved(tmp_path)
    plant(checkpoints.path, lambda t: t["strategy"]["algorithm"].update(stream=pickle.dumps(Payload(marker))))
    data = checkpoints.load()  # the file itself is plain data ...
    with pytest.raises(ValueError, match="refused to load builtins.exec"):
        strategy_from_state(data["strategy"])  # ... and pycma's part names a function not allowed
    assert not marker.exists()


def test_an_object_array_in_the_file_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    checkpoints = saved(tmp_path)
    buffer = io.BytesIO()
    with np.load(checkpoints.path) as members:
        arrays = {k: members[k] for k in members.files}
    arrays["data"] = np.array([Payload(marker)], dtype=object)
    np.savez(buffer, **arrays)
    checkpoints.path.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="not a readable state file"):
        checkpoints.load()
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04 truncated zip"])
def test_a_corrupt_or_empty_checkpoint_is_one_clear_error(tmp_path, content):
    (tmp_path / "checkpoint.npz").write_bytes(content)
    with pytest.raises(ValueError, match="checkpoint.npz is not a readable state file") as err:
        Checkpoints(tmp_path / "checkpoint.npz", write).load()
    assert "\n" not in str(err.value)


def test_a_truncated_checkpoint_is_one_clear_error(tmp_path):
    checkpoints = saved(tmp_path)
    data = checkpoints.path.read_bytes()
    checkpoints.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable state file"):
        checkpoints.load()


def legacy_checkpoint(path: Path, strategy) -> None:
    """What versions before the state files wrote: one pickle, pycma's object pickled inside it."""
    state = strategy.state_dict()
    if strategy.name == "cma":
        state["algorithm"] = {"es": pickle.dumps(strategy._es)}
    path.write_bytes(pickle.dumps({"format": "es-checkpoint-1", "strategy": state,
                                   "trainer": {"generation": strategy.generation}, "settings": {"seed": 1},
                                   "identity": {"problem": "sphere"}}))


@pytest.mark.parametrize("name", NAMES)
def test_an_old_pickle_checkpoint_is_refused_then_converted_on_request(tmp_path, name):
    strategy = trained(name)
    legacy_checkpoint(tmp_path / "checkpoint.pkl", strategy)
    checkpoints = Checkpoints(tmp_path / "checkpoint.npz", write)
    with pytest.raises(ValueError, match="python -m es.checkpoint convert .*checkpoint.pkl"):
        checkpoints.load()
    assert convert_legacy(tmp_path / "checkpoint.pkl", checkpoints.path, write) == 3
    resumed = strategy_from_state(checkpoints.load()["strategy"])
    assert np.array_equal(resumed.ask(), strategy.ask())


def test_the_convert_command_refuses_a_tampered_pickle(tmp_path):
    marker = tmp_path / "ran"
    old = tmp_path / "checkpoint.pkl"
    old.write_bytes(pickle.dumps({"format": "es-checkpoint-1", "x": Payload(marker)}))
    done = subprocess.run([sys.executable, "-m", "es.checkpoint", "convert", str(old)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "refused to load builtins.exec" in done.stderr
    assert not marker.exists() and not (tmp_path / "checkpoint.npz").exists()


def test_the_convert_command_writes_beside_and_never_over(tmp_path):
    legacy_checkpoint(tmp_path / "checkpoint.pkl", trained("cma"))
    command = [sys.executable, "-m", "es.checkpoint", "convert", str(tmp_path / "checkpoint.pkl")]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0 and "generation 3" in first.stdout
    before = (tmp_path / "checkpoint.npz").read_bytes()
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "exists already" in again.stderr
    assert (tmp_path / "checkpoint.npz").read_bytes() == before


def test_the_size_benchmark_runs():
    command = ["benchmarks/checkpoint_size.py", "--params", "30", "--popsize", "8"]
    done = subprocess.run([sys.executable, *command,
                           "--generations", "2", "--repeats", "1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert [line.split("|")[0].strip() for line in done.stdout.splitlines()[2:]] == NAMES
