"""The series stage: every frame encoded by the run's V, resumable, tied to that V."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wm.core.errors import WMError
from wm.data.record import episode_path, read_episode
from wm.models.vae import to_tensor
from wm.models.weights import load_vae
from wm.stages import series, vae_train


def test_every_frame_is_encoded_by_the_runs_v(doom_series_run):
    run = doom_series_run
    model, digest = load_vae(run, torch.device("cpu"))
    data = series.load_series(run)
    assert len(data) == 6
    for i, s in enumerate(data):
        ep = read_episode(episode_path(run / "record", i))
        assert s["mu"].shape == s["logvar"].shape == (len(ep), 64)
        assert np.array_equal(s["action"], ep.action) and np.array_equal(s["terminated"], ep.terminated)
        assert s["meta"]["vae"] == digest and s["meta"]["index"] == i
    with torch.no_grad():
        mu, _ = model.encode(to_tensor(read_episode(episode_path(run / "record", 2)).obs))
    assert np.allclose(data[2]["mu"], mu.numpy(), atol=1e-5)
    initial = np.load(run / "series" / "initial_z.npz")
    assert initial["mu"].shape == (6, 64)
    assert np.array_equal(initial["mu"][4], data[4]["mu"][0])


def test_rerun_keeps_what_the_same_v_encoded(doom_series_run, copy_run, capsys):
    run = copy_run(doom_series_run)
    stamp = series.series_path(run, 0).stat().st_mtime_ns
    series.series_path(run, 3).unlink()
    assert series.main(["--run", str(run), "--log-every", "0"]) == 0
    assert "5 episodes already encoded, 1 to encode" in capsys.readouterr().out
    assert series.series_path(run, 0).stat().st_mtime_ns == stamp


def test_a_new_v_makes_the_old_series_stale(doom_series_run, copy_run, capsys):
    run = copy_run(doom_series_run)
    assert vae_train.main(["--run", str(run), "--epochs", "2", "--log-every", "0"]) == 0
    with pytest.raises(WMError, match="encoded by another V"):
        series.load_series(run)
    assert series.main(["--run", str(run), "--log-every", "0"]) == 0
    assert "0 episodes already encoded, 6 to encode" in capsys.readouterr().out
    series.load_series(run)


def test_without_v_the_message_names_the_stage_to_run(doom_series_run, copy_run, capsys):
    run = copy_run(doom_series_run)
    (run / "vae" / "vae.pt").unlink()
    assert series.main(["--run", str(run)]) == 1
    assert "run `python -m wm.vae_train" in capsys.readouterr().err


def test_a_damaged_series_file_is_named(doom_series_run, copy_run):
    run = copy_run(doom_series_run)
    series.series_path(run, 1).write_bytes(b"junk")
    with pytest.raises(WMError, match="episode_000001.npz"):
        series.load_series(run)
