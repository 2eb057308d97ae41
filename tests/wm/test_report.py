"""The pictures of a run and its report, drawn from a tiny real Doom run made by the session."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from PIL import Image

from wm.core.errors import WMError
from wm.data.record import read_episode
from wm.data.recordset import episode_files
from wm.models.weights import load_mdrnn, load_vae
from wm.pictures import panels, report
from wm.pictures.dream_video import dream_beside
from wm.pictures.plots import loss_curves, read_csv_rows, training_curves
from wm.pictures.vae_pictures import latent_traversal, reconstruction_grid, sample_frames
from wm.pictures.video import frame_count, write_video
from wm.stages import evaluate


def png_size(path):
    with Image.open(path) as image:
        image.load()  # decodes the whole file, not just its header
        return image.size


def test_training_curves_are_drawn_against_generation_and_time(doom_es_run, tmp_path):
    history = read_csv_rows(doom_es_run / "es" / "history.csv")
    path = training_curves(history, tmp_path / "training.png", threshold=750)
    width, height = png_size(path)
    assert 900 <= width <= 1300 and 300 <= height <= 500  # two panels side by side
    with pytest.raises(WMError, match="empty"):
        training_curves([], tmp_path / "none.png")


def test_loss_curves_have_one_panel_per_logged_loss(doom_es_run, tmp_path):
    vae_rows = read_csv_rows(doom_es_run / "vae" / "metrics.csv")
    rnn_rows = read_csv_rows(doom_es_run / "rnn" / "metrics.csv")
    vae_width, _ = png_size(loss_curves(vae_rows, tmp_path / "vae.png"))
    rnn_width, _ = png_size(loss_curves(rnn_rows, tmp_path / "rnn.png"))
    losses = lambda rows: len(rows[0]) - 3  # noqa: E731 (step, epoch, wall_s are not losses)
    assert losses(vae_rows) == 3 and losses(rnn_rows) == 4  # loss, reconstruction, kl; loss, z, done, lr
    assert rnn_width / vae_width == pytest.approx(4 / 3, rel=0.1)


def test_reconstruction_grid_puts_real_frames_over_their_reconstructions(doom_es_run):
    vae, _ = load_vae(doom_es_run)
    frames = sample_frames(doom_es_run, 16)
    assert frames.shape == (16, 64, 64, 3) and frames.dtype == np.uint8
    picture = reconstruction_grid(vae, frames, labels=False)  # labels: test_pictures
    assert picture.shape == (4 * 66 - 2, 8 * 66 - 2, 3)
    assert np.array_equal(picture[:64, :64], frames[0])  # top left: the first real frame
    assert not np.array_equal(picture[66:130, :64], frames[0])  # under it: V's reconstruction


def test_latent_traversal_varies_one_dimension_per_row(doom_es_run):
    vae, _ = load_vae(doom_es_run)
    picture, dims = latent_traversal(vae, sample_frames(doom_es_run, 8), dims=4, steps=5, labels=False)
    assert picture.shape == (4 * 66 - 2, 5 * 66 - 2, 3)
    assert len(set(dims)) == 4 and all(0 <= d < vae.config.z_size for d in dims)
    first, last = picture[:64, :64].astype(int), picture[:64, 4 * 66 :].astype(int)
    assert np.abs(first - last).mean() > 0.5  # moving along the dimension changes the picture


def test_dream_video_follows_the_real_episode_and_reproduces(doom_es_run):
    vae, _ = load_vae(doom_es_run)
    mdrnn, _ = load_mdrnn(doom_es_run)
    episode = read_episode(episode_files(doom_es_run)[0])
    frames, actions = list(episode.obs), list(episode.action)
    video, death = dream_beside(vae, mdrnn, frames, actions, tau=1.15, seed=4, every=3, panel=64,
                                action_names=["move"])
    assert len(video) == math.ceil(len(frames) / 3)
    assert video[0].size[0] > 3 * 64 and len({v.size for v in video}) == 1
    assert death is None or 1 <= death <= len(frames)
    again, death_again = dream_beside(vae, mdrnn, frames, actions, tau=1.15, seed=4, every=3, panel=64,
                                      action_names=["move"])
    assert death_again == death
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(video, again, strict=True))


@pytest.mark.parametrize("suffix", ["gif", "mp4"])
def test_videos_decode_with_every_frame(tmp_path, suffix):
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (50, 81, 3), dtype=np.uint8)) for _ in range(7)]
    path = write_video(tmp_path / f"v.{suffix}", frames, fps=10)
    assert frame_count(path) == 7
    with pytest.raises(WMError, match=".gif or .mp4"):
        write_video(tmp_path / "v.avi", frames, fps=10)


def links(text):
    return re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)


def test_report_embeds_every_picture_and_quotes_the_logs(doom_es_run, copy_run, capsys):
    run = copy_run(doom_es_run)
    assert evaluate.main(["--run", str(run), "--episodes", "2", "--max-steps", "30"]) == 0
    assert report.main(["--run", str(run), "--every", "3", "--panel", "48"]) == 0
    assert "report.md" in capsys.readouterr().out
    text = (run / "report.md").read_text()
    pictures = links(text)
    assert set(pictures) == {f"report/{name}" for name in (
        "training.png", "episode.gif", "dream-tau1.15.gif", "vae_loss.png", "vae_reconstructions.png",
        "vae_traversal.png", "rnn_loss.png")}
    for picture in pictures:
        with Image.open(run / picture) as image:
            image.load()
    # The agent's episode is the evaluation's first one, replayed: same seed, cap and return.
    evaluation = json.loads((run / "eval" / "real.json").read_text())
    first = evaluation["returns"][0]
    assert f"seed {evaluation['seeds'][0]} (the evaluation's first episode, which scored {first:.1f} " \
           f"there): return {first:.1f} in 30 steps" in text
    videos = run / "report"
    assert frame_count(videos / "episode.gif") == 10 == frame_count(videos / "dream-tau1.15.gif")
    # Numbers from the logs the report was made from.
    assert f"**{evaluation['mean']:.1f} +- {evaluation['std']:.1f}**" in text
    vae_last = read_csv_rows(run / "vae" / "metrics.csv")[-1]
    assert f"loss {vae_last['loss']:.4g}, reconstruction {vae_last['reconstruction']:.4g}" in text
    assert f"z_nll {read_csv_rows(run / 'rnn' / 'metrics.csv')[-1]['z_nll']:.4g}" in text
    history = read_csv_rows(run / "es" / "history.csv")
    best = max(r["eval_score"] for r in history if not math.isnan(r["eval_score"]))
    assert f"Best evaluation of the mean: {best:.1f}" in text and f"{len(history)} generations" in text
    assert "threshold 750" in text and "| vae |" in text


def test_report_of_an_unfinished_run_names_what_is_missing(doom_series_run, copy_run):
    run = copy_run(doom_series_run)
    assert report.main(["--run", str(run), "--no-videos"]) == 0
    text = (run / "report.md").read_text()
    assert "_training curves: not available" in text and "_M's losses: not available" in text
    assert set(links(text)) == {"report/vae_loss.png", "report/vae_reconstructions.png",
                                "report/vae_traversal.png"}


def test_report_videos_as_mp4_and_dream_at_a_given_temperature(doom_es_run, copy_run):
    run = copy_run(doom_es_run)
    assert report.main(["--run", str(run), "--video-format", "mp4", "--temperature", "0.5",
                        "--max-steps", "12", "--every", "4", "--seed", "7"]) == 0
    videos = run / "report"
    assert frame_count(videos / "episode.mp4") == 3 == frame_count(videos / "dream-tau0.5.mp4")
    assert "seed 7: return" in (run / "report.md").read_text()


def test_report_of_a_directory_that_is_no_run_is_one_line(tmp_path, capsys):
    assert report.main(["--run", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not a run directory" in err and len(err.strip().splitlines()) == 1


def test_report_of_a_carracing_run_without_a_controller_dreams_a_recorded_episode(carracing_series_run,
                                                                                   copy_run):
    from wm.stages import rnn_train

    run = copy_run(carracing_series_run)
    assert rnn_train.main(["--run", str(run), "--epochs", "1", "--hidden-size", "16", "--batch-size", "2",
                           "--seq-len", "10", "--threads", "1", "--log-every", "0"]) == 0
    assert report.main(["--run", str(run), "--every", "5", "--panel", "32"]) == 0
    text = (run / "report.md").read_text()
    assert "_the agent's episode: not available" in text
    assert "beside recorded episode 0 (the random data policy), which lasted 30 steps" in text
    assert "M predicted death" not in text and "M never predicted" not in text  # no done head
    # Three action bars (steer, gas, brake) under the pictures.
    with Image.open(run / "report" / "dream-tau1.gif") as gif:
        assert gif.n_frames == 6 and gif.size[1] == panels.CAPTION + 32 + 4 * panels.BAR
