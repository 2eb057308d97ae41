"""V and M loaded together must fit: an M trained on another V's latents is refused by every stage
that uses the two, with one line naming the stages to re-run; files that cannot say still load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.wm.conftest import files_of
from wm.core.errors import WMError
from wm.models.training import load_weights, save_torch_file
from wm.models.weights import load_world_model, rnn_path, vae_path, world_model_digests
from wm.pictures import render, report
from wm.stages import evaluate, export, train

AGENT = Path(__file__).parents[2] / "agents" / "doom-small"  # exported before M named its float16 V


def rewrite(path: Path, kind: str, change) -> None:
    """Rewrite a weights file after ``change(data)``."""
    data = load_weights(path, kind)
    change(data)
    save_torch_file(path, data)


def retrain_v(run: Path) -> None:
    """What retraining V after M leaves: other V weights beside the same M."""
    def nudge(data: dict) -> None:
        name = next(iter(data["state_dict"]))
        data["state_dict"][name] = data["state_dict"][name] + 1e-3

    rewrite(vae_path(run), "vae", nudge)


@pytest.fixture(scope="module")
def mismatched_run(doom_es_run, tmp_path_factory) -> Path:
    """The session's trained run after its V was retrained (M, C and the rest as they were)."""
    run = tmp_path_factory.mktemp("retrained-v") / "run"
    shutil.copytree(doom_es_run, run)
    retrain_v(run)
    return run


STAGES = {
    "train": lambda run: train.main(["--run", str(run), "--generations", "3"]),
    "evaluate": lambda run: evaluate.main(["--run", str(run), "--episodes", "1"]),
    "render": lambda run: render.main(["--run", str(run), "--out", str(run.parent / "e.gif")]),
    "report": lambda run: report.main(["--run", str(run), "--no-videos"]),
    "export": lambda run: export.main(["--run", str(run), "--out", str(run.parent / "agent")]),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_that_uses_v_with_m_refuses_a_v_retrained_after_m(mismatched_run, stage, capsys):
    before = files_of(mismatched_run)
    assert STAGES[stage](mismatched_run) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "trained on another V" in err and "wm.series" in err and "wm.rnn_train" in err
    assert files_of(mismatched_run) == before


def test_loading_v_with_m_checks_the_pair(doom_m_run, copy_run):
    assert len(load_world_model(doom_m_run)) == 2
    run = copy_run(doom_m_run)
    retrain_v(run)
    with pytest.raises(WMError, match="re-run `python -m wm.series"):
        load_world_model(run)
    with pytest.raises(WMError, match="trained on another V"):
        world_model_digests(run)


def test_files_that_do_not_name_their_v_still_load(doom_m_run, copy_run):
    run = copy_run(doom_m_run)
    retrain_v(run)
    rewrite(rnn_path(run), "rnn", lambda data: data["info"].pop("vae"))  # (an M file without the hash)
    load_world_model(run)
    info = load_weights(rnn_path(AGENT), "rnn")["info"]
    assert "exported_from" in info and "source_vae" not in info  # (its "vae" is the float32 V's)
    load_world_model(AGENT)
