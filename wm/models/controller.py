"""C: the linear controller of World Models, made from a flat parameter vector (what ES optimises).

CarRacing: a = tanh(W [z, h] + b), 288 inputs -> 3 actions, 867 parameters. Doom: a = tanh(W [z, c, h])
without a bias, 64 + 512 + 512 = 1088 inputs -> 1 action, 1088 parameters. Actions are in the
controller space [-1, 1]^d that the envs map to their own controls.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch


def params_digest(params: np.ndarray) -> str:
    """A short hash naming a controller's parameters (in episode meta and checkpoint identities)."""
    return hashlib.sha256(np.asarray(params, np.float64).tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class ControllerSpec:
    """The shape of C: inputs [z, (c,) h], actions, and whether it has a bias."""

    z_size: int
    hidden_size: int
    action_size: int
    with_cell: bool  # Doom feeds the LSTM's cell state c as well as h
    bias: bool

    @property
    def input_size(self) -> int:
        return self.z_size + self.hidden_size * (2 if self.with_cell else 1)

    @property
    def num_params(self) -> int:
        return self.input_size * self.action_size + (self.action_size if self.bias else 0)


def spec_for(z_size: int, hidden_size: int, action_size: int, with_done: bool) -> ControllerSpec:
    """C for an M of this shape: Doom's M (with a done head) gives [z, c, h] and no bias, as the
    original; CarRacing's gives [z, h] with a bias."""
    return ControllerSpec(z_size, hidden_size, action_size, with_cell=with_done, bias=not with_done)


def carracing_spec(z_size: int = 32, hidden_size: int = 256) -> ControllerSpec:
    return ControllerSpec(z_size, hidden_size, action_size=3, with_cell=False, bias=True)


def doom_spec(z_size: int = 64, hidden_size: int = 512) -> ControllerSpec:
    return ControllerSpec(z_size, hidden_size, action_size=1, with_cell=True, bias=False)


class LinearController:
    """a = tanh(W x (+ b)) for one flat parameter vector: W row-major first, then b."""

    def __init__(self, spec: ControllerSpec, params: np.ndarray):
        params = np.asarray(params, dtype=np.float64).reshape(-1)
        if params.size != spec.num_params:
            raise ValueError(f"this controller has {spec.num_params} parameters, got {params.size}")
        if not np.all(np.isfinite(params)):
            raise ValueError("controller parameters hold NaN or infinity")
        n_weights = spec.input_size * spec.action_size
        self.spec = spec
        self.weight = torch.as_tensor(params[:n_weights].reshape(spec.action_size, spec.input_size),
                                      dtype=torch.float32)
        self.bias = torch.as_tensor(params[n_weights:], dtype=torch.float32) if spec.bias else None

    def features(self, z: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """C's input from V's z (B, z) and M's state h, c (B, hidden)."""
        return torch.cat([z, c, h] if self.spec.with_cell else [z, h], dim=-1)

    def act(self, x: torch.Tensor) -> torch.Tensor:
        """Actions (B, action_size) in [-1, 1] for inputs (B, input_size)."""
        y = x @ self.weight.T
        return torch.tanh(y + self.bias if self.bias is not None else y)


def stack_controllers(spec: ControllerSpec, params: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (n, action_size, input_size) and biases (n, action_size; zeros without a bias) of n
    controllers, for acting on a batch where every row has its own controller."""
    controllers = [LinearController(spec, p) for p in params]
    weights = torch.stack([c.weight for c in controllers])
    bias = torch.stack([c.bias if c.bias is not None else torch.zeros(spec.action_size) for c in controllers])
    return weights, bias
