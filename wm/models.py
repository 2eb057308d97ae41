"""Trained V and M loaded from a run directory, for the stages that use them (on CPU by default)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from wm.errors import WMError
from wm.mdrnn import MDRNN, MDRNNConfig
from wm.training import load_weights
from wm.vae import ConvVAE, VAEConfig


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
        raise WMError(f"no trained {kind.upper()} at {path}: run `python -m wm.{stage} --run {run}` first")
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


def mdrnn_config_dict(config: MDRNNConfig) -> dict:
    """M's shape as stored with its weights."""
    return dataclasses.asdict(config)
