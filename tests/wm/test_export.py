"""wm.export never writes over its source run, nor replaces a folder unasked (or anything but an export)."""

from __future__ import annotations

import json

import pytest
import torch

from tests.wm.conftest import files_of
from wm.models.weights import vae_digest, world_model_digests
from wm.stages import export


def refused(argv: list[str], capsys) -> str:
    assert export.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    return err


@pytest.mark.parametrize("out", [".", "vae", "es/agent", "..", "link"])
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_the_source_run_is_never_written(doom_es_run, copy_run, out, force, capsys):
    run = copy_run(doom_es_run)
    (run.parent / "link").symlink_to(run)  # (resolves to the run)
    target = run / out if out != "link" else run.parent / "link"
    before = files_of(run)
    assert "outside the run" in refused(["--run", str(run), "--out", str(target), *force], capsys)
    assert files_of(run) == before


def test_an_existing_folder_is_replaced_only_with_force_and_only_if_it_holds_an_export(
        doom_es_run, tmp_path, capsys):
    agent = tmp_path / "agent"
    assert export.main(["--run", str(doom_es_run), "--out", str(agent)]) == 0
    (agent / "eval").mkdir()
    (agent / "eval" / "real.json").write_text("{}")  # (results of the earlier export)
    before = files_of(agent)
    assert "--force" in refused(["--run", str(doom_es_run), "--out", str(agent)], capsys)
    assert files_of(agent) == before
    assert export.main(["--run", str(doom_es_run), "--out", str(agent), "--force"]) == 0
    assert not (agent / "eval").exists() and (agent / "vae" / "vae.pt").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left

    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    assert "no exported agent" in refused(["--run", str(doom_es_run), "--out", str(other), "--force"], capsys)
    assert (other / "todo.txt").read_text() == "mine"
    (tmp_path / "file").write_text("mine")
    assert "not a directory" in refused(["--run", str(doom_es_run), "--out", str(tmp_path / "file")], capsys)
    (tmp_path / "empty").mkdir()
    assert export.main(["--run", str(doom_es_run), "--out", str(tmp_path / "empty")]) == 0


def test_the_exported_m_names_the_float16_v_beside_it(doom_es_run, tmp_path):
    agent = tmp_path / "agent"
    assert export.main(["--run", str(doom_es_run), "--out", str(agent)]) == 0
    info = torch.load(agent / "rnn" / "rnn.pt", weights_only=True)["info"]
    assert info["vae"] == vae_digest(agent) != vae_digest(doom_es_run) == info["source_vae"]
    world_model_digests(agent)  # (the pair is checked, and fits)
    assert json.loads((agent / "agent.json").read_text())["dtype"] == "float16"
