"""An exported agent (float16) works as a run; an episode renders to a GIF."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from wm import evaluate, export, render
from wm.models import load_mdrnn, load_vae


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
                        "--out", str(out)]) == 0
    assert "20 steps" in capsys.readouterr().out
    gif = Image.open(out)
    assert gif.n_frames == 10 and gif.size[1] == render.PANEL + render.BAR
    gif.seek(5)
    frame = np.asarray(gif.convert("RGB"))
    assert frame[: render.PANEL].std() > 5  # a picture, not a blank panel


def test_render_without_a_controller_names_the_stage(doom_m_run, capsys):
    assert render.main(["--run", str(doom_m_run)]) == 1
    assert "wm.train" in capsys.readouterr().err
