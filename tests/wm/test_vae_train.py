"""The V training stage on a tiny real data set: outputs, exact resume, --fresh, and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.wm.conftest import files_of
from wm.core.errors import WMError
from wm.data.record import episode_path
from wm.models.training import load_weights
from wm.stages import extract, series, vae_train

TINY = ["--batch-size", "40", "--threads", "1", "--log-every", "0"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A run directory holding 4 real Doom episodes of 30 frames."""
    run = tmp_path_factory.mktemp("vae") / "run"
    assert extract.main(["--run", str(run), "--env", "doom", "--episodes", "4", "--max-steps", "30",
                         "--log-every", "100"]) == 0
    return run


@pytest.fixture
def run(recorded, tmp_path) -> Path:
    """A fresh copy of the recorded run for one test."""
    copy = tmp_path / "run"
    shutil.copytree(recorded, copy)
    return copy


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_weights(run / "vae" / "vae.pt", "vae", {"z_size": 64})["state_dict"]


def test_training_writes_weights_checkpoint_logs_and_pictures(run, capsys):
    assert vae_train.main(["--run", str(run), "--epochs", "2", *TINY]) == 0
    out = run / "vae"
    assert (out / "checkpoint.pt").is_file() and (out / "vae.pt").is_file()
    assert sorted(p.name for p in (out / "reconstructions").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,wall_s,loss,reconstruction,kl" and len(rows) == 1 + 2 * 3
    assert list((out / "tensorboard").iterdir())
    assert "epoch 2/2 done" in capsys.readouterr().out
    assert load_weights(out / "vae.pt", "vae")["info"]["epochs"] == 2


def test_resume_gives_the_same_weights_as_one_run(run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run, other)
    assert vae_train.main(["--run", str(run), "--epochs", "2", *TINY]) == 0
    assert vae_train.main(["--run", str(other), "--epochs", "1", *TINY]) == 0
    assert vae_train.main(["--run", str(other), "--epochs", "2"]) == 0  # the run's settings, one more
    a, b = weights(run), weights(other)
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows_a = (run / "vae" / "metrics.csv").read_text().splitlines()
    rows_b = (other / "vae" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[3:] for r in rows_a] == [r.split(",")[3:] for r in rows_b]  # same losses
    # the resumed training's time counts on from the first's: the last row is the whole cost
    walls = [float(r.split(",")[2]) for r in rows_b[1:]]
    assert walls == sorted(walls) and walls[-1] > 0


def test_finished_training_is_left_alone_and_fresh_moves_it_aside(run, capsys):
    assert vae_train.main(["--run", str(run), "--epochs", "1", *TINY]) == 0
    before = weights(run)
    assert vae_train.main(["--run", str(run)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert all(torch.equal(before[k], v) for k, v in weights(run).items())
    assert vae_train.main(["--run", str(run), "--fresh", "--epochs", "1", "--seed", "5", *TINY]) == 0
    previous = [p for p in (run / "vae").iterdir() if p.name.startswith("previous-")]
    assert len(previous) == 1 and (previous[0] / "vae.pt").is_file()
    assert not all(torch.equal(before[k], v) for k, v in weights(run).items())


def test_a_refused_fresh_start_leaves_the_earlier_training_in_place(run, capsys):
    assert vae_train.main(["--run", str(run), "--epochs", "1", *TINY]) == 0
    before = files_of(run)
    assert vae_train.main(["--run", str(run), "--fresh", "--env", "carracing", *TINY]) == 1
    assert "not 'carracing'" in capsys.readouterr().err
    episode_path(run / "record", 0).write_bytes(b"not an episode")
    before["record/episode_000000.npz"] = b"not an episode"
    assert vae_train.main(["--run", str(run), "--fresh", "--epochs", "1", *TINY]) == 1
    assert "episode_000000.npz" in capsys.readouterr().err
    assert files_of(run) == before  # nothing moved to previous-*, config.json as it was


def test_changing_the_latent_size_needs_fresh(run, capsys):
    assert vae_train.main(["--run", str(run), "--epochs", "1", *TINY]) == 0
    assert vae_train.main(["--run", str(run), "--epochs", "2", "--z-size", "16"]) != 0
    assert "z-size=64" in capsys.readouterr().err


def test_weights_for_another_latent_size_are_refused(run):
    assert vae_train.main(["--run", str(run), "--epochs", "1", *TINY]) == 0
    with pytest.raises(WMError, match="z_size=64, but 32 is needed"):
        load_weights(run / "vae" / "vae.pt", "vae", {"z_size": 32})


def test_a_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(run, capsys):
    assert vae_train.main(["--run", str(run), "--epochs", "1", *TINY]) == 0
    good = (run / "vae" / "checkpoint.pt").read_bytes()
    assert vae_train.main(["--run", str(run), "--fresh", "--epochs", "2", "--lr", "1e30", *TINY]) == 1
    err = capsys.readouterr().err
    assert "loss is not finite" in err and "Traceback" not in err
    previous = next(p for p in (run / "vae").iterdir() if p.name.startswith("previous-"))
    assert (previous / "checkpoint.pt").read_bytes() == good  # the good training is untouched


def test_no_episodes_names_the_stage_to_run(tmp_path, capsys):
    assert vae_train.main(["--run", str(tmp_path / "empty"), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "first stage not yet run" in err and "run `python -m wm.extract" in err
    assert "`bash launch/doom.bash --run" in err  # (the one command that runs them all)


def test_a_missing_or_corrupt_episode_is_named(run, capsys):
    episode_path(run / "record", 3).unlink()
    assert vae_train.main(["--run", str(run), "--epochs", "1", *TINY]) == 1
    assert "episode_000003.npz" in capsys.readouterr().err
    episode_path(run / "record", 3).write_bytes(b"not an episode")
    assert vae_train.main(["--run", str(run), "--epochs", "1", *TINY]) == 1
    err = capsys.readouterr().err
    assert "episode_000003.npz" in err and "corrupt" in err and "Traceback" not in err


@pytest.mark.parametrize("flag, value", [("--epochs", "0"), ("--lr", "-1"), ("--batch-size", "0"),
                                         ("--kl-tolerance", "nan"), ("--device", "tpu")])
def test_bad_flags_are_one_line(run, capsys, flag, value):
    with pytest.raises(SystemExit) if flag == "--device" else _no_exit():
        code = vae_train.main(["--run", str(run), flag, value])
        assert code == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_training_works_without_the_extraction_summary(run):
    (run / "record" / "summary.json").unlink()
    assert vae_train.main(["--run", str(run), "--epochs", "1", *TINY]) == 0


def test_a_rerun_after_training_keeps_the_series_current(doom_series_run, copy_run):
    run = copy_run(doom_series_run)
    assert vae_train.main(["--run", str(run)]) == 0  # nothing to do; weights written again
    series.load_series(run)
