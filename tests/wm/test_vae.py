"""V: the original's architecture, the frame layout, the loss, and that it learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wm.models.vae import ConvVAE, VAEConfig, parameter_count, to_frames, to_tensor, vae_loss


@pytest.mark.parametrize("z_size, count", [(32, 4_348_547), (64, 4_446_915)])
def test_parameter_counts_match_the_original(z_size, count):
    assert parameter_count(ConvVAE(VAEConfig(z_size))) == count


def test_shapes():
    model = ConvVAE(VAEConfig(16))
    recon, mu, logvar = model(torch.rand(3, 3, 64, 64))
    recon = recon.detach()
    assert recon.shape == (3, 3, 64, 64) and mu.shape == logvar.shape == (3, 16)
    assert 0 <= float(recon.min()) and float(recon.max()) <= 1


def test_frames_are_permuted_not_reshaped():
    frames = np.zeros((1, 64, 64, 3), np.uint8)
    frames[0, 5, 9] = [255, 0, 128]  # one pixel at row 5, column 9
    x = to_tensor(frames)
    assert x.shape == (1, 3, 64, 64)
    assert float(x[0, 0, 5, 9]) == 1.0 and float(x[0, 1, 5, 9]) == 0.0
    assert float(x[0, 2, 5, 9]) == pytest.approx(128 / 255)
    assert float(x.sum()) == pytest.approx(1 + 128 / 255)
    assert np.array_equal(to_frames(x), frames)


def test_loss_sums_squared_error_per_image_and_floors_the_kl():
    x = torch.zeros(2, 3, 64, 64)
    recon = torch.full_like(x, 0.5)
    mu, logvar = torch.zeros(2, 8), torch.zeros(2, 8)  # KL exactly 0
    losses = vae_loss(recon, x, mu, logvar, kl_tolerance=0.5)
    assert float(losses.reconstruction) == pytest.approx(0.25 * 3 * 64 * 64)
    assert float(losses.kl) == pytest.approx(0.5 * 8)  # floored at kl_tolerance * z_size
    big = vae_loss(recon, x, torch.full((2, 8), 3.0), logvar, kl_tolerance=0.5)
    assert float(big.kl) == pytest.approx(0.5 * 9 * 8)  # above the floor: the real KL
    assert float(big.total) == pytest.approx(float(big.reconstruction + big.kl))


def test_v_learns_a_tiny_data_set():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    # 16 frames: coloured squares at random places on a grey background.
    frames = np.full((16, 64, 64, 3), 90, np.uint8)
    for f in frames:
        r, c = rng.integers(0, 48, 2)
        f[r : r + 16, c : c + 16] = rng.integers(0, 255, 3)
    model = ConvVAE(VAEConfig(8))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = to_tensor(frames)

    def loss() -> torch.Tensor:
        recon, mu, logvar = model(x)
        return vae_loss(recon, x, mu, logvar, 0.5).total

    first = float(loss().detach())
    for _ in range(25):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
    assert float(loss().detach()) < 0.5 * first
