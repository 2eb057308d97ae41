"""V: the ConvVAE of World Models, exactly the original's layers, in PyTorch.

Frames are uint8 (N, 64, 64, 3) as recorded; :func:`to_tensor` permutes them to PyTorch's
(N, 3, 64, 64) float layout. (Reshaping instead of permuting scrambles the pixels, a bug seen in
ports.) Parameter counts: 4,348,547 for z = 32, 4,446,915 for z = 64, as the original.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class VAEConfig:
    """What shapes V: its latent size (32 CarRacing, 64 Doom)."""

    z_size: int = 32


class ConvVAE(nn.Module):
    """Encoder: 4 convs (k4, s2, ReLU) -> 2x2x256 -> mu, logvar. Decoder: dense -> 4 deconvs."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        z = config.z_size
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, 4, stride=2), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 128, 4, stride=2), nn.ReLU(),
            nn.Conv2d(128, 256, 4, stride=2), nn.ReLU(),
            nn.Flatten(),
        )
        self.fc_mu = nn.Linear(1024, z)
        self.fc_logvar = nn.Linear(1024, z)
        self.fc_decode = nn.Linear(z, 1024)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(1024, 128, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 6, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(32, 3, 6, stride=2), nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 64, 64) in [0, 1] -> (mu, logvar), each (N, z)."""
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, z) -> (N, 3, 64, 64) in [0, 1]."""
        return self.decoder(self.fc_decode(z).view(-1, 1024, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction of a sampled z (reparameterised), with mu and logvar."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decode(z), mu, logvar


def to_tensor(frames: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 frames (N, 64, 64, 3) -> float (N, 3, 64, 64) in [0, 1], by permuting, not reshaping."""
    t = torch.as_tensor(frames, device=device)
    return t.permute(0, 3, 1, 2).float().div_(255.0)


def to_frames(x: torch.Tensor) -> np.ndarray:
    """float (N, 3, 64, 64) in [0, 1] -> uint8 frames (N, 64, 64, 3)."""
    return (x.detach().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@dataclass
class VAELosses:
    reconstruction: torch.Tensor
    kl: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.reconstruction + self.kl


def vae_loss(
    recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, kl_tolerance: float
) -> VAELosses:
    """The original's loss: per-image summed squared error, plus the KL per image floored at
    ``kl_tolerance * z_size`` (so V is not pushed to encode less than that many nats); batch means."""
    reconstruction = (recon - x).pow(2).sum(dim=(1, 2, 3)).mean()
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
    floor = kl_tolerance * mu.shape[1]
    return VAELosses(reconstruction, torch.clamp(kl, min=floor).mean())


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


