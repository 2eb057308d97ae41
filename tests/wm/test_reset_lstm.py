"""The LSTM with per-row restarts: its gradients, its agreement with one nn.LSTM call per stretch,
and restarts that zero exactly the state of the rows that start an episode."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from wm.reset_lstm import _LSTMWithRestarts, lstm_by_stretches, lstm_with_restarts, run_lstm


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread (two spin-wait on each other on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_case(batch: int = 4, steps: int = 9, inputs: int = 3, hidden: int = 5, dtype=torch.float32,
              seed: int = 0) -> tuple[nn.LSTM, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """An LSTM, inputs (B, T, I), restart flags where rows start episodes at different steps (row 1
    keeps its given state at t=0; row 3 never restarts after t=0), and a non-zero state."""
    torch.manual_seed(seed)
    lstm = nn.LSTM(inputs, hidden, batch_first=True).to(dtype)
    x = torch.randn(batch, steps, inputs, dtype=dtype)
    restart = torch.zeros(batch, steps, dtype=torch.bool)
    restart[:, 0] = True
    restart[1, 0] = False
    restart[0, 3] = restart[0, 4] = restart[1, 6] = restart[2, steps - 1] = True
    state = tuple(torch.randn(1, batch, hidden, dtype=dtype) for _ in range(2))
    return lstm, x, restart, state


def test_gradients_match_finite_differences() -> None:
    lstm, x, restart, (h0, c0) = make_case(dtype=torch.float64)
    inputs = (x.requires_grad_(), restart, h0[0].requires_grad_(), c0[0].requires_grad_(),
              lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
    assert torch.autograd.gradcheck(_LSTMWithRestarts.apply, inputs)


def loss_and_gradients(run, lstm: nn.LSTM, x: torch.Tensor, restart: torch.Tensor, state) -> list:
    """Outputs, final state and the gradients of a loss on all of them (w.r.t. weights, x, state)."""
    lstm.zero_grad()
    x = x.clone().requires_grad_()
    state = tuple(s.clone().requires_grad_() for s in state)
    out, (h, c) = run(lstm, x, restart, state)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    ((out * weights).sum() + h.square().sum() + 0.5 * c.sum()).backward()
    return [out, h, c, x.grad, *(s.grad for s in state), *(p.grad.clone() for p in lstm.parameters())]


def test_one_loop_equals_one_lstm_call_per_stretch() -> None:
    lstm, x, restart, state = make_case(batch=6, steps=40, hidden=16)
    restart |= torch.rand(restart.shape, generator=torch.Generator().manual_seed(1)) < 0.1
    got = loss_and_gradients(lstm_with_restarts, lstm, x, restart, state)
    expected = loss_and_gradients(lstm_by_stretches, lstm, x, restart, state)
    for a, b in zip(got, expected, strict=True):
        assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_restart_starts_that_row_from_zeros_exactly_there() -> None:
    lstm, x, restart, state = make_case()
    with torch.no_grad():
        out, (h, c) = lstm_with_restarts(lstm, x, restart, state)
        # Row 0: episodes [0, 3), [3, 4), [4, T), each as if run alone from a zero state.
        for start, end in [(0, 3), (3, 4), (4, x.shape[1])]:
            alone, (h_alone, c_alone) = lstm(x[:1, start:end])
            assert_close(out[:1, start:end], alone)
        assert_close((h[:, :1], c[:, :1]), (h_alone, c_alone))
        # Row 1 carries the given state until its restart at 6.
        carried, _ = lstm(x[1:2, :6], tuple(s[:, 1:2] for s in state))
        assert_close(out[1:2, :6], carried)
        assert_close(out[1:2, 6:], lstm(x[1:2, 6:])[0])
        # Row 3 never restarts after t=0: one plain call from zeros.
        assert_close(out[3:], lstm(x[3:])[0])


def test_nothing_of_a_finished_episode_leaks_into_the_next() -> None:
    lstm, x, restart, state = make_case()
    x = x.clone()
    x[0, :3] = float("nan")  # row 0's first episode (steps 0-2) is garbage; its next one starts at 3
    with torch.no_grad():
        out, _ = lstm_with_restarts(lstm, x, restart, state)
    assert out[0, :3].isnan().all() and out[0, 3:].isfinite().all() and out[1:].isfinite().all()


def test_without_restarts_after_the_first_step_it_is_one_plain_call() -> None:
    lstm, x, restart, state = make_case()
    restart[:, 1:] = False
    with torch.no_grad():
        out, (h, c) = run_lstm(lstm, x, restart, state)
        expected = lstm(x, tuple(torch.where(restart[:, 0].view(1, -1, 1), 0.0, s) for s in state))
    assert_close(out, expected[0])
    assert_close((h, c), expected[1])


def test_backward_may_run_twice() -> None:
    lstm, x, restart, state = make_case()
    out, _ = lstm_with_restarts(lstm, x, restart, state)
    out.sum().backward(retain_graph=True)
    first = lstm.weight_hh_l0.grad.clone()
    out.sum().backward()
    assert_close(lstm.weight_hh_l0.grad, 2 * first)
