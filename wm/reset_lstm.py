"""One LSTM layer over batch-first sequences whose rows start new episodes at their own steps: where
a row's restart flag is set, its state (h, c) is zeroed before that step (Doom's M, which trains on
streams of concatenated episodes).

``nn.LSTM`` cannot zero one row's state inside a sequence, so the direct way runs it once per
stretch between restarts (:func:`lstm_by_stretches`). With Doom's streams that is many calls of a
few steps each (100 streams x 500 steps of ~300-step episodes: ~160 calls), and their per-call cost,
not the arithmetic, set M's training speed. :func:`lstm_with_restarts` runs the whole window as one
autograd Function instead: the input projections of all steps in one matrix product, then per step
one product with W_hh and the gate arithmetic in place; its backward is the LSTM's backpropagation
through time written out, with the weight gradients as one matrix product over all steps. It
computes what ``nn.LSTM`` computes (PyTorch's gate order i, f, g, o, both biases), to float rounding.
BENCHMARKS.md has the speeds; :func:`run_lstm` picks the path.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch
from torch import Tensor, nn

LSTMState = tuple[Tensor, Tensor]  # (h, c), each (1, B, hidden_size), as nn.LSTM keeps it
LSTMResult = tuple[Tensor, LSTMState]  # outputs (B, T, hidden_size), state after the last step


def run_lstm(lstm: nn.LSTM, x: Tensor, restart: Tensor, state: LSTMState) -> LSTMResult:
    """``lstm`` over ``x`` (B, T, input) from ``state``, zeroing a row's state where ``restart``
    (B, T, bool) is true. Returns the outputs (B, T, hidden) and the state after the last step.

    Without a restart after the first step this is one ``nn.LSTM`` call (its own fused kernel). With
    restarts inside the window: on the CPU the one-loop Function (several times faster there than a
    call per stretch, BENCHMARKS.md); elsewhere one cuDNN call per stretch (not measured against the
    loop, which would launch ~10 kernels per step).
    """
    if not restart[:, 1:].any():
        return lstm(x, _reset(state, restart[:, 0]))
    if x.device.type == "cpu":
        return lstm_with_restarts(lstm, x, restart, state)
    return lstm_by_stretches(lstm, x, restart, state)


def _reset(state: LSTMState, rows: Tensor) -> LSTMState:
    """``state`` with the ``rows`` (B,) bool zeroed. torch.where, not a multiplication: a NaN or inf
    in a finished episode's state must not leak into the next one."""
    mask = rows.view(1, -1, 1)
    return tuple(torch.where(mask, torch.zeros_like(s), s) for s in state)  # type: ignore[return-value]


def lstm_by_stretches(lstm: nn.LSTM, x: Tensor, restart: Tensor, state: LSTMState) -> LSTMResult:
    """One ``nn.LSTM`` call per stretch between steps where any row restarts, zeroing the restarting
    rows at each split (the original zeroes the state step by step inside one unrolled graph)."""
    splits = (torch.nonzero(restart[:, 1:].any(dim=0)).flatten() + 1).tolist()
    outputs = []
    for start, end in pairwise([0, *splits, x.shape[1]]):
        out, state = lstm(x[:, start:end], _reset(state, restart[:, start]))
        outputs.append(out)
    return (torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]), state


def lstm_with_restarts(lstm: nn.LSTM, x: Tensor, restart: Tensor, state: LSTMState) -> LSTMResult:
    """The same as :func:`lstm_by_stretches`, as one loop over time with its own backward."""
    if lstm.num_layers != 1 or lstm.bidirectional or not lstm.batch_first or lstm.proj_size:
        raise ValueError("lstm_with_restarts runs a single-layer, one-way, batch-first LSTM")
    out, h, c = _LSTMWithRestarts.apply(x, restart, state[0][0], state[1][0], lstm.weight_ih_l0,
                                        lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
    return out, (h.unsqueeze(0), c.unsqueeze(0))


def _previous(first: Tensor, steps: Tensor, restart_tm: Tensor) -> Tensor:
    """(T, B, H): what each step took as its previous h (or c): ``first`` (B, H) at step 0, step t-1's
    output after that, zero where the row restarts."""
    return torch.cat([first.unsqueeze(0), steps[:-1]]).masked_fill_(restart_tm, 0.0)


class _LSTMWithRestarts(torch.autograd.Function):
    """Time-major inside (T, B, ...), so that each step's slice is contiguous for its products.

    Saved for backward: the activated gates (T, B, 4H), the cells and outputs (T, B, H), the inputs;
    about what ``nn.LSTM`` keeps. Backward leaves them as they are (so retain_graph works).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, restart: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor,
                w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        batch, steps, inputs = x.shape
        hidden = w_hh.shape[1]
        x_tm = x.transpose(0, 1).reshape(steps * batch, inputs)
        gates = torch.addmm(b_ih + b_hh, x_tm, w_ih.t()).view(steps, batch, 4 * hidden)
        restart_tm = restart.t().unsqueeze(-1).contiguous()  # (T, B, 1)
        restarts = restart.any(dim=0).tolist()  # steps where some row restarts (one sync, not T)
        cells, out = x.new_empty(steps, batch, hidden), x.new_empty(steps, batch, hidden)
        w_hh_t = w_hh.t()
        h, c = h0, c0
        for t in range(steps):
            if restarts[t]:
                h, c = h.masked_fill(restart_tm[t], 0.0), c.masked_fill(restart_tm[t], 0.0)
            g = gates[t].addmm_(h, w_hh_t)
            g[:, : 2 * hidden].sigmoid_()  # i, f
            g[:, 2 * hidden : 3 * hidden].tanh_()  # g
            g[:, 3 * hidden :].sigmoid_()  # o
            i, f, cand, o = g.chunk(4, dim=1)
            c = torch.addcmul(f * c, i, cand, out=cells[t])
            h = torch.mul(o, c.tanh(), out=out[t])
        ctx.save_for_backward(x_tm, restart_tm, h0, c0, w_ih, w_hh, gates, cells, out)
        ctx.restarts = restarts
        return out.transpose(0, 1), h.clone(), c.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, d_out: Tensor, d_h: Tensor, d_c: Tensor) -> tuple[Tensor | None, ...]:
        x_tm, restart_tm, h0, c0, w_ih, w_hh, gates, cells, out = ctx.saved_tensors
        steps, batch, hidden = out.shape
        d_out = d_out.transpose(0, 1)  # (T, B, H)
        forget = gates[..., hidden : 2 * hidden]
        c_from_h, factors = _backward_factors(gates, cells, _previous(c0, cells, restart_tm))
        d_gates = factors  # overwritten step by step: factors[t] is last read where d_gates[t] is written
        d_h, d_c = d_h.clone(), d_c.clone()
        for t in range(steps - 1, -1, -1):
            d_h += d_out[t]
            d_c.addcmul_(d_h, c_from_h[t])
            step = d_gates[t]
            step[:, : 3 * hidden].view(batch, 3, hidden).mul_(d_c.unsqueeze(1))  # i, f, g
            step[:, 3 * hidden :].mul_(d_h)  # o
            d_h = step @ w_hh
            d_c = d_c.mul_(forget[t])
            if ctx.restarts[t]:
                d_h.masked_fill_(restart_tm[t], 0.0)
                d_c.masked_fill_(restart_tm[t], 0.0)
        flat = d_gates.view(steps * batch, 4 * hidden)
        need = ctx.needs_input_grad
        d_x = (flat @ w_ih).view(steps, batch, -1).transpose(0, 1) if need[0] else None
        d_w_ih = flat.t() @ x_tm if need[4] else None
        d_w_hh = flat.t() @ _previous(h0, out, restart_tm).view(steps * batch, hidden) if need[5] else None
        d_b = flat.sum(dim=0) if need[6] or need[7] else None
        return (d_x, None, d_h if need[2] else None, d_c if need[3] else None, d_w_ih, d_w_hh,
                d_b if need[6] else None, d_b if need[7] else None)


def _backward_factors(gates: Tensor, cells: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
    """What backward multiplies by at each step, computed for all steps at once (a few large
    operations instead of many small ones in the loop):

    - ``c_from_h`` (T, B, H): dL/dc_t gets dL/dh_t x o (1 - tanh^2 c_t);
    - ``factors`` (T, B, 4H): a pre-activation's gradient is dL/dc_t x (g i (1 - i), c_{t-1} f (1 - f),
      i (1 - g^2)) for i, f, g and dL/dh_t x tanh(c_t) o (1 - o) for o.
    """
    i, f, g, o = gates.chunk(4, dim=2)
    tanh_c = cells.tanh()
    c_from_h = o * (1 - tanh_c * tanh_c)
    factors = torch.empty_like(gates)
    d_i, d_f, d_g, d_o = factors.chunk(4, dim=2)
    torch.mul(g, i * (1 - i), out=d_i)
    torch.mul(c_prev, f * (1 - f), out=d_f)
    torch.mul(i, 1 - g * g, out=d_g)
    torch.mul(tanh_c, o * (1 - o), out=d_o)
    return c_from_h, factors
