"""Trained V and M loaded from a run directory, for the stages that use them (on CPU by default)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from wm.core.errors import WMError
from wm.data.rundir import first_missing
from wm.models.mdrnn import MDRNN, MDRNNConfig
from wm.models.training import load_weights
from wm.models.vae import ConvVAE, VAEConfig


def vae_path(run: str | Path) -> Path:
    return Path(run) / "vae" / "vae.pt"


def rnn_path(run: str | Path) -> Path:
    return Path(run) / "rnn" / "rnn.pt"


def weights_digest(data: dict) -> str:
    """A short hash of a weights file's config and tensors: names the exact V (or M) that made
    something, and stays the same if the same weights are written again."""
    digest = hashlib.sha256(json.dumps(data["config"], sort_keys=True).encode())
    for name in sorted(data["state_dict"]):
        digest.update(name.encode())
        digest.update(data["state_dict"][name].contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _weights(path: Path, kind: str, stage: str, run: str | Path) -> dict:
    if not path.is_file():
        raise WMError(f"no trained {kind.upper()} at {path}: {first_missing(run)}")
    return load_weights(path, kind)


def load_vae(run: str | Path, device: torch.device | str = "cpu") -> tuple[ConvVAE, str]:
    """The run's trained V in inference mode, and its digest."""
    data = _weights(vae_path(run), "vae", "vae_train", run)
    model = ConvVAE(VAEConfig(int(data["config"]["z_size"])))
    model.load_state_dict(data["state_dict"])
    return model.to(device).eval(), weights_digest(data)


def vae_digest(run: str | Path) -> str:
    """The digest of the run's trained V (one clear error when there is none)."""
    return weights_digest(_weights(vae_path(run), "vae", "vae_train", run))


def load_mdrnn(run: str | Path, device: torch.device | str = "cpu") -> tuple[MDRNN, dict]:
    """The run's trained M in inference mode, and the info stored with it (epochs, V digest)."""
    data = _weights(rnn_path(run), "rnn", "rnn_train", run)
    model = MDRNN(MDRNNConfig(**data["config"]))
    model.load_state_dict(data["state_dict"])
    return model.to(device).eval(), data["info"]


def rnn_weights(run: str | Path) -> dict:
    """The run's M weights file contents (config, info, state dict), checked."""
    return _weights(rnn_path(run), "rnn", "rnn_train", run)


def trained_on_vae(rnn_info: dict) -> str | None:
    """The digest of the V whose latents M was trained on, as its weights file records it; None where
    the file cannot say: written without one, or an agent exported before the export recorded the
    digest of its float16 V (its "vae" is then the float32 V's, which no longer exists there)."""
    if "exported_from" in rnn_info and "source_vae" not in rnn_info:
        return None
    return rnn_info.get("vae")


def check_m_fits_v(run: str | Path, rnn_info: dict, vae: str) -> None:
    """Refuse an M trained on the latents of another V than the run's (a V retrained after M): its
    predictions would be of latents this V never makes, and every score would be silently wrong."""
    trained_on = trained_on_vae(rnn_info)
    if trained_on is not None and trained_on != vae:
        raise WMError(f"{rnn_path(run)} was trained on another V ({trained_on}) than {vae_path(run)} "
                      f"({vae}): re-run `python -m wm.series --run {run}` and `python -m wm.rnn_train --run "
                      f"{run} --fresh` (then wm.train) for this V")


def world_model_digests(run: str | Path) -> tuple[str, str]:
    """The digests of the run's V and M, refused when M does not fit V (checked without building
    the models: for rank 0 before workers load them)."""
    vae = vae_digest(run)
    rnn = rnn_weights(run)
    check_m_fits_v(run, rnn["info"], vae)
    return vae, weights_digest(rnn)


def load_world_model(run: str | Path, device: torch.device | str = "cpu") -> tuple[ConvVAE, MDRNN]:
    """The run's V and M in inference mode, refused when M does not fit V."""
    vae, digest = load_vae(run, device)
    mdrnn, info = load_mdrnn(run, device)
    check_m_fits_v(run, info, digest)
    return vae, mdrnn


def mdrnn_config_dict(config: MDRNNConfig) -> dict:
    """M's shape as stored with its weights."""
    return dataclasses.asdict(config)
