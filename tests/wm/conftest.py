"""Tiny real runs, made once per test session and copied for each test that changes them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wm.stages import extract, series, vae_train

FAST = ["--threads", "1", "--log-every", "0"]


def build_run(run: Path, env: str, episodes: int, steps: int) -> Path:
    """Extract ``episodes`` real episodes, train V for one epoch, encode the series."""
    assert extract.main(["--run", str(run), "--env", env, "--episodes", str(episodes), "--max-steps",
                         str(steps), "--log-every", "100"]) == 0
    assert vae_train.main(["--run", str(run), "--epochs", "1", "--batch-size", "40", *FAST]) == 0
    assert series.main(["--run", str(run), *FAST]) == 0
    return run


@pytest.fixture(scope="session")
def doom_series_run(tmp_path_factory) -> Path:
    """A Doom run up to the series: 6 episodes of up to 60 frames."""
    return build_run(tmp_path_factory.mktemp("doom") / "run", "doom", 6, 60)


@pytest.fixture(scope="session")
def carracing_series_run(tmp_path_factory) -> Path:
    """A CarRacing run up to the series: 2 episodes of 30 frames."""
    return build_run(tmp_path_factory.mktemp("carracing") / "run", "carracing", 2, 30)


@pytest.fixture(scope="session")
def doom_m_run(doom_series_run, tmp_path_factory) -> Path:
    """The session's Doom run with a small M (16 LSTM units) trained on its series."""
    from wm.stages import rnn_train

    run = tmp_path_factory.mktemp("doom-m") / "run"
    shutil.copytree(doom_series_run, run)
    assert rnn_train.main(["--run", str(run), "--epochs", "1", "--hidden-size", "16", "--batch-size", "4",
                           "--seq-len", "10", *FAST]) == 0
    return run


@pytest.fixture(scope="session")
def doom_es_run(doom_m_run, tmp_path_factory) -> Path:
    """The session's M run with a controller trained two generations in the dream (es/best.json)."""
    from wm.stages import train

    run = tmp_path_factory.mktemp("doom-es") / "run"
    shutil.copytree(doom_m_run, run)
    assert train.main(["--run", str(run), "--preset", "quick", "--dream", "--max-steps", "30",
                       "--popsize", "4", "--num-episode", "1", "--generations", "2", "--eval-every", "1",
                       "--eval-episodes", "2"]) == 0
    return run


@pytest.fixture
def copy_run(tmp_path):
    """Copy a session run so a test can change it."""

    def copy(run: Path, name: str = "run") -> Path:
        target = tmp_path / name
        shutil.copytree(run, target)
        return target

    return copy


def files_of(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes: what a refused command must leave as it was."""
    paths = sorted(p for p in directory.rglob("*") if p.is_file())
    return {str(p.relative_to(directory)): p.read_bytes() for p in paths}
