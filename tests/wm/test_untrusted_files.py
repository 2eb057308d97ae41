"""Every kind of file a stage loads, planted with a pickle that would run code: the stage refuses it
with one line, and nothing runs. (JSON files, config.json and best.json, hold data only.)"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from es import statefile
from es.checkpoint import Checkpoints
from tests.conftest import Payload

pytestmark = pytest.mark.slow

DREAM = ["--dream", "--max-steps", "30", "--popsize", "4", "--num-episode", "1", "--eval-episodes", "2"]


def torch_payload(path: Path, marker: Path) -> None:
    torch.save({"format": "x", "payload": Payload(marker)}, path)


def npz_payload(path: Path, marker: Path) -> None:
    """An .npz whose every member is an object array (unpickled only if a loader allows pickles)."""
    with np.load(path) as data:
        names = list(data.files)
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.array([Payload(marker)], dtype=object) for name in names})
    path.write_bytes(buffer.getvalue())


def cma_checkpoint_payload(path: Path, marker: Path) -> None:
    """The ES checkpoint, with pycma's pickle stream replaced by one that calls exec."""
    tree = statefile.loads(path.read_bytes())
    tree["strategy"]["algorithm"]["stream"] = pickle.dumps(Payload(marker))
    path.write_bytes(statefile.dumps(tree))


def legacy_checkpoint_payload(path: Path, marker: Path) -> None:
    """An old-style checkpoint.pkl (one that would run code) where the checkpoint was."""
    path.unlink()
    path.with_name("checkpoint.pkl").write_bytes(pickle.dumps({"format": "es-checkpoint-1",
                                                               "x": Payload(marker)}))


def emptied(path: Path, marker: Path) -> None:
    path.write_bytes(b"")


def truncated(path: Path, marker: Path) -> None:
    path.write_bytes(path.read_bytes()[:5000])


# (file in the run, how it is tampered with, the stage that loads it with its arguments, what it says)
CASES = {
    "V weights": ("vae/vae.pt", torch_payload, ["series"], "vae.pt: not a readable vae weights file"),
    "V training checkpoint": ("vae/checkpoint.pt", torch_payload, ["vae_train", "--epochs", "2"],
                              "checkpoint.pt: not a readable checkpoint"),
    "M weights": ("rnn/rnn.pt", torch_payload, ["evaluate", "--episodes", "1"],
                  "rnn.pt: not a readable rnn weights file (it names exec"),
    "M training checkpoint": ("rnn/checkpoint.pt", torch_payload, ["rnn_train", "--epochs", "2"],
                              "checkpoint.pt: not a readable checkpoint"),
    "episode": ("record/episode_000000.npz", npz_payload, ["vae_train", "--fresh"], "episode_000000.npz"),
    "series": ("series/episode_000000.npz", npz_payload, ["rnn_train", "--fresh"], "not a readable series"),
    "initial latents": ("series/initial_z.npz", npz_payload, ["train", *DREAM, "--generations", "3"],
                        "initial_z.npz is unreadable"),
    "ES checkpoint (train)": ("es/checkpoint.npz", cma_checkpoint_payload,
                              ["train", *DREAM, "--generations", "3"], "refused to load builtins.exec"),
    "ES checkpoint (evaluate)": ("es/checkpoint.npz", cma_checkpoint_payload,
                                 ["evaluate", "--params", "current", "--episodes", "1"],
                                 "refused to load builtins.exec"),
    "old pickle checkpoint": ("es/checkpoint.npz", legacy_checkpoint_payload,
                              ["train", *DREAM, "--generations", "3"], "python -m es.checkpoint convert"),
    "empty ES checkpoint": ("es/checkpoint.npz", emptied, ["train", *DREAM, "--generations", "3"],
                            "checkpoint.npz is not a readable state file"),
    "truncated ES checkpoint": ("es/checkpoint.npz", truncated, ["train", *DREAM, "--generations", "3"],
                                "checkpoint.npz is not a readable state file"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_planted_payload_runs_nothing(case, doom_es_run, copy_run, run_stage, tmp_path):
    name, plant, (stage, *args), message = CASES[case]
    run = copy_run(doom_es_run)
    marker = tmp_path / "payload-ran"
    assert (run / name).is_file(), f"the session's run has no {name}"
    plant(run / name, marker)
    planted = {p: p.read_bytes() for p in (run / name).parent.iterdir()  # (status.json says what happened)
               if p.is_file() and p.name != "status.json"}
    done = run_stage(stage, "--run", str(run), *args, timeout=180)
    assert done.returncode != 0, done.stdout
    assert not marker.exists(), f"{stage} ran code from {name}"
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("error:") == 1, done.stderr
    assert all(p.read_bytes() == data for p, data in planted.items())  # the evidence is kept as it was


def test_the_checkpoint_is_plain_data(doom_es_run):
    """What wm.train writes loads with pickles switched off (np.load's allow_pickle=False)."""
    data = Checkpoints(doom_es_run / "es" / "checkpoint.npz").load()
    assert data["trainer"]["generation"] == 2 and not (doom_es_run / "es" / "checkpoint.pkl").exists()
