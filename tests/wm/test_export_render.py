"""An exported agent (float16) works as a run; an episode renders to a GIF."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from wm.models.weights import load_mdrnn, load_vae
from wm.pictures import panels, render
from wm.stages import evaluate, export


def test_export_writes_a_small_agent_that_evaluates_like_a_run(doom_es_run, tmp_path, capsys):
    agent = tmp_path / "agent"
    assert export.main(["--run", str(doom_es_run), "--out", str(agent)]) == 0
    assert "files" in capsys.readouterr().out
    data = torch.load(agent / "vae" / "vae.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in data["state_dict"].values() if v.is_floating_point())
    assert (agent / "vae" / "vae.pt").stat().st_size < 0.6 * (doom_es_run / "vae" / "vae.pt").stat().st_size
    vae16, _ = load_vae(agent)
    vae32, _ = load_vae(doom_es_run)
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(vae16.encode(x)[0], vae32.encode(x)[0], atol=2e-2)  # loads as float32
    assert load_mdrnn(agent)[0].head.weight.dtype == torch.float32
    assert evaluate.main(["--run", str(agent), "--episodes", "2", "--max-steps", "30"]) == 0
    assert json.loads((agent / "eval" / "real.json").read_text())["episodes"] == 2
    assert evaluate.main(["--run", str(agent), "--dream", "--episodes", "2", "--max-steps", "30"]) == 0


def test_export_of_an_unfinished_run_is_one_line(doom_m_run, tmp_path, capsys):
    assert export.main(["--run", str(doom_m_run), "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "best.json is missing" in err and len(err.strip().splitlines()) == 1


def test_render_writes_a_gif_of_the_episode(doom_es_run, tmp_path, capsys):
    out = tmp_path / "episode.gif"
    assert render.main(["--run", str(doom_es_run), "--seed", "3", "--max-steps", "20", "--every", "2",
                        "--panel", "64", "--out", str(out)]) == 0
    out_lines = capsys.readouterr().out
    assert "20 steps" in out_lines and "[render] playing one episode (seed 3)" in out_lines
    assert "writing 10 frames" in out_lines  # (progress before the slow parts)
    gif = Image.open(out)
    # Caption, pictures, the step line and Doom's one action bar.
    assert gif.n_frames == 10 and gif.size[1] == panels.CAPTION + 64 + 2 * panels.BAR
    gif.seek(5)
    frame = np.asarray(gif.convert("RGB"))
    assert frame[panels.CAPTION : panels.CAPTION + 64].std() > 5  # a picture, not a blank panel


def test_render_writes_an_mp4_at_the_games_speed(doom_es_run, tmp_path):
    import imageio.v2 as imageio

    out = tmp_path / "episode.mp4"
    assert render.main(["--run", str(doom_es_run), "--seed", "3", "--max-steps", "12", "--every", "3",
                        "--panel", "64", "--out", str(out)]) == 0
    with imageio.get_reader(out) as reader:
        assert reader.get_meta_data()["fps"] == pytest.approx(35 / 3, rel=0.01)
        frames = [frame for frame in reader]
    assert len(frames) == 4 and frames[0].shape[0] == panels.CAPTION + 64 + 2 * panels.BAR


def test_render_refuses_an_unknown_video_format_before_playing(doom_es_run, tmp_path, capsys):
    assert render.main(["--run", str(doom_es_run), "--out", str(tmp_path / "episode.avi")]) == 1
    assert ".gif or .mp4" in capsys.readouterr().err


def test_render_without_a_controller_names_the_stage(doom_m_run, capsys):
    assert render.main(["--run", str(doom_m_run)]) == 1
    assert "wm.train" in capsys.readouterr().err
