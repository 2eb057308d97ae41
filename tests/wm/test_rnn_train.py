"""M training: batching of both kinds, clipping, learning, exact resume, and bad input."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from tests.wm.conftest import files_of
from wm.models import mdrnn
from wm.models.mdrnn import MDRNN, MDRNNConfig
from wm.models.training import load_weights
from wm.stages import rnn_train, series, vae_train

SMALL = ["--hidden-size", "32", "--batch-size", "4", "--seq-len", "20", "--threads", "1", "--log-every", "0"]


def fake_series(lengths: list[int], z: int = 2) -> list[dict]:
    """Episodes whose mu[t, 0] encodes (episode, step) so batches can be traced back."""
    out = []
    for e, n in enumerate(lengths):
        mu = np.zeros((n, z), np.float32)
        mu[:, 0] = 100 * e + np.arange(n)
        terminated = np.zeros(n, bool)
        terminated[-1] = True
        out.append({"mu": mu, "logvar": np.zeros_like(mu), "action": np.zeros((n, 1), np.float32),
                    "terminated": terminated})
    return out


def test_stream_batches_flag_episode_starts_and_mask_episode_ends():
    data = fake_series([5, 7, 4])
    batches = list(rnn_train.stream_batches(data, batch_size=2, seq_len=3, rng=np.random.default_rng(0)))
    assert batches[0]["first"] and not any(b["first"] for b in batches[1:])
    codes = np.concatenate([b["mu"][:, :-1, 0] for b in batches], axis=1)
    restart = np.concatenate([b["restart"] for b in batches], axis=1)
    valid = np.concatenate([b["valid"] for b in batches], axis=1)
    done = np.concatenate([b["done"] for b in batches], axis=1)
    step_in_episode = codes % 100
    assert np.array_equal(restart, step_in_episode == 0)  # flags exactly where episodes start
    lengths = {0: 5, 1: 7, 2: 4}
    last = step_in_episode == np.vectorize(lambda c: lengths[int(c) // 100] - 1)(codes)
    assert np.array_equal(~valid, last) and np.array_equal(done, last)
    for b in batches:  # where valid, the target is the next step of the same episode
        step_on = b["mu"][:, 1:, 0] - b["mu"][:, :-1, 0]
        assert (step_on[b["valid"]] == 1).all()


def test_window_batches_pad_and_mask_short_episodes():
    data = fake_series([30, 4])
    batch = next(rnn_train.window_batches(data, batch_size=16, seq_len=10, steps=1,
                                          rng=np.random.default_rng(1)))
    assert batch["mu"].shape == (16, 11, 2) and batch["action"].shape == (16, 10, 1)
    for row in range(16):
        episode = int(batch["mu"][row, 0, 0]) // 100
        assert batch["valid"][row].sum() == (10 if episode == 0 else 3)


def coded_series(run) -> list[dict]:
    """The run's real series, episode e cut 9 e steps short (the tiny runs' episodes all last their
    60-step cap, so streams would restart only in step), each step's (episode, step) written into
    logvar[:, 0] as 1000 * episode + step, so a batch step can be traced back (z = mu here)."""
    data = []
    for e, ep in enumerate(series.load_series(run)):
        cut = {k: ep[k][: len(ep["mu"]) - 9 * e].copy() for k in ("mu", "logvar", "action", "terminated")}
        cut["logvar"][:, 0] = 1000 * e + np.arange(len(cut["logvar"]))
        data.append(cut)
    return data


def real_stream_batches(run) -> tuple[list[dict], list[dict[str, torch.Tensor]]]:
    """The run's coded series and its Doom batches as float64 tensors: 3 streams of 10 steps, so
    episodes start inside windows, in different rows at different steps."""
    data = coded_series(run)
    streams = rnn_train.stream_batches(data, batch_size=3, seq_len=10, rng=np.random.default_rng(0))
    batches = [{k: torch.as_tensor(v, dtype=torch.float64 if k in ("mu", "logvar", "action") else None)
                for k, v in b.items() if k != "first"} for b in streams]
    assert sum(bool(b["restart"][:, 1:].any()) for b in batches) >= 2
    return data, batches


def batch_loss(params, done_logit, batch: dict[str, torch.Tensor], mask=None) -> torch.Tensor:
    """M's training loss on a batch with z = mu: mixture NLL on valid steps plus the done loss (on
    every step, or on ``mask``'s)."""
    return (mdrnn.mixture_nll(params, batch["mu"][:, 1:], mask=batch["valid"])
            + mdrnn.done_loss(done_logit, batch["done"], mask=mask))


def small_doom_m() -> MDRNN:
    torch.manual_seed(0)
    return MDRNN(MDRNNConfig(z_size=64, action_size=1, hidden_size=16, with_done=True)).double()


def gather_steps(alone: list, code: torch.Tensor) -> tuple[mdrnn.MixtureParams, torch.Tensor]:
    """The outputs of episodes run alone (per episode: mixture params (1, T, z, K), done logits (1, T)),
    arranged as a batch whose steps are coded 1000 * episode + step (B, T)."""
    rows = [[divmod(int(c), 1000) for c in row] for row in code]

    def pick(tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([torch.stack([tensors[e][0, s] for e, s in row]) for row in rows])

    params = mdrnn.MixtureParams(*(pick([out[0][k] for out in alone]) for k in range(3)))
    return params, pick([out[1] for out in alone])


def test_a_stream_batch_has_the_loss_of_its_episodes_run_alone(doom_series_run):
    """Real episodes in streams, the state carried across batches and zeroed at restarts: every
    step's outputs, and so the loss, are those of its episode run on its own from a zero state.
    (Except in the part episode a stream starts the epoch with: it starts mid-episode, from zeros.)"""
    data, batches = real_stream_batches(doom_series_run)
    model = small_doom_m()
    with torch.no_grad():
        alone = []
        for ep in data:
            restart = torch.zeros(1, len(ep["mu"]))
            restart[0, 0] = 1
            alone.append(model(torch.as_tensor(ep["mu"][None], dtype=torch.float64),
                               torch.as_tensor(ep["action"][None], dtype=torch.float64), restart))
        state, started = None, torch.zeros(3, 1, dtype=torch.bool)
        for batch in batches:
            params, done_logit, state = model(batch["mu"][:, :-1], batch["action"], batch["restart"], state)
            want_params, want_done = gather_steps(alone, batch["logvar"][:, :-1, 0].long())
            started = (started | batch["restart"]).cummax(dim=1).values
            for got, want in zip(params, want_params, strict=True):
                assert_close(got[started], want[started])
            assert_close(done_logit[started], want_done[started])
            kept = {**batch, "valid": batch["valid"] & started}
            assert_close(batch_loss(params, done_logit, kept, started),
                         batch_loss(want_params, want_done, kept, started))
            started = started[:, -1:]


def loss_and_gradients(model: MDRNN, batch: dict[str, torch.Tensor], target: torch.Tensor, state=None):
    """A training step's loss and M's gradients on a batch (z = mu), the next-step targets given."""
    model.zero_grad()
    params, done_logit, state = model(batch["mu"][:, :-1], batch["action"], batch["restart"], state)
    loss = batch_loss(params, done_logit, {**batch, "mu": torch.cat([batch["mu"][:, :1], target], 1)})
    loss.backward()
    return [loss, *(p.grad.clone() for p in model.parameters())], tuple(s.detach() for s in state)


def test_the_steps_across_episodes_count_for_nothing(doom_series_run):
    """An episode's last step has no next frame of its own (the stream's next step is another
    episode's first): whatever stands there as its target, the loss and gradients are the same."""
    _, batches = real_stream_batches(doom_series_run)
    model = small_doom_m()
    state = moved_state = None
    for batch in batches:
        target = batch["mu"][:, 1:]
        moved = torch.where(batch["valid"].unsqueeze(-1), target, target + 1e3)
        got, state = loss_and_gradients(model, batch, target, state)
        expected, moved_state = loss_and_gradients(model, batch, moved, moved_state)
        for a, b in zip(got, expected, strict=True):
            assert_close(a, b)
    assert any(not b["valid"].all() for b in batches)


def test_no_gradient_crosses_a_restart(doom_series_run):
    """A step's loss depends on nothing before its episode's start in the same stream."""
    _, batches = real_stream_batches(doom_series_run)
    batch = next(b for b in batches if b["restart"][:, 1:].any())
    row, start = (int(i) for i in torch.nonzero(batch["restart"][:, 1:])[0])
    start += 1
    model = small_doom_m()
    z = batch["mu"].clone().requires_grad_()
    params, done_logit, _ = model(z[:, :-1], batch["action"], batch["restart"])
    (params.mu[row, start:].sum() + done_logit[row, start:].sum()).backward()
    assert z.grad[row, :start].abs().max() == 0 and z.grad[row, start:-1].abs().max() > 0


def test_gradient_clipping_really_clips():
    model = MDRNN(MDRNNConfig(z_size=3, action_size=1, hidden_size=8))
    params, _, _ = model(torch.randn(2, 5, 3), torch.randn(2, 5, 1))
    (1e4 * params.mu.sum()).backward()
    assert max(float(p.grad.abs().max()) for p in model.parameters()) > 1
    rnn_train.clip_gradients(model, 1.0)
    assert max(float(p.grad.abs().max()) for p in model.parameters()) <= 1.0


def epoch_means(run, column: str) -> list[float]:
    with open(run / "rnn" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    epochs = sorted({int(r["epoch"]) for r in rows})
    return [np.mean([float(r[column]) for r in rows if int(r["epoch"]) == e]) for e in epochs]


def predictable_series(run) -> None:
    """Replace the run's latents by smooth, nearly noise-free waves that M can learn to predict
    (a V trained one epoch on a few frames encodes little but noise)."""
    for i in range(6):
        path = series.series_path(run, i)
        with np.load(path) as data:
            arrays = dict(data)
        t = np.arange(len(arrays["mu"]))[:, None]
        arrays["mu"] = np.sin(0.3 * t + np.linspace(0, 3, 64)[None, :] + i).astype(np.float32)
        arrays["logvar"] = np.full_like(arrays["mu"], -8.0)
        np.savez(path, **arrays)


def test_doom_m_learns_and_resumes_exactly(doom_series_run, copy_run):
    run, other = copy_run(doom_series_run, "a"), copy_run(doom_series_run, "b")
    predictable_series(run)
    predictable_series(other)
    assert rnn_train.main(["--run", str(run), "--epochs", "6", "--lr", "3e-3", *SMALL]) == 0
    z_nll = epoch_means(run, "z_nll")
    assert z_nll[-1] < z_nll[0] - 0.5, z_nll
    assert rnn_train.main(["--run", str(other), "--epochs", "3", "--lr", "3e-3", *SMALL]) == 0
    assert rnn_train.main(["--run", str(other), "--epochs", "6"]) == 0
    a = load_weights(run / "rnn" / "rnn.pt", "rnn")
    b = load_weights(other / "rnn" / "rnn.pt", "rnn")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["config"] == {"z_size": 64, "action_size": 1, "hidden_size": 32, "num_mixtures": 5,
                           "with_done": True}
    lr = epoch_means(run, "lr")
    assert lr[-1] < lr[0]  # Doom's decaying learning rate


def test_carracing_m_trains_on_windows_without_a_done_head(carracing_series_run, copy_run):
    run = copy_run(carracing_series_run)
    args = ["--run", str(run), "--epochs", "1", "--steps-per-epoch", "3", *SMALL]
    assert rnn_train.main(args) == 0
    weights = load_weights(run / "rnn" / "rnn.pt", "rnn", {"with_done": False, "action_size": 3})
    assert weights["info"]["epochs"] == 1
    assert epoch_means(run, "lr") == [pytest.approx(1e-3)]  # constant


def test_a_series_from_another_v_is_refused(doom_series_run, copy_run, capsys):
    run = copy_run(doom_series_run)
    assert vae_train.main(["--run", str(run), "--epochs", "2", "--log-every", "0"]) == 0
    assert rnn_train.main(["--run", str(run), "--epochs", "1", *SMALL]) == 1
    assert "encoded by another V" in capsys.readouterr().err


def test_without_series_the_message_names_the_stage(tmp_path, capsys):
    assert rnn_train.main(["--run", str(tmp_path / "nothing"), "--env", "doom"]) == 1
    assert "run `python -m wm" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--epochs", "0"), ("--seq-len", "0"), ("--lr", "0"),
                                         ("--lr-decay", "1.5"), ("--grad-clip", "-1"),
                                         ("--done-weight", "nan")])
def test_bad_flags_are_one_line(doom_series_run, flag, value, capsys):
    assert rnn_train.main(["--run", str(doom_series_run), flag, value]) == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_the_learning_rate_follows_the_original_doom_schedule(doom_series_run, copy_run):
    run = copy_run(doom_series_run)
    args = ["--run", str(run), "--epochs", "1", "--lr", "1e-2", "--lr-decay", "0.9", "--lr-min", "1e-3"]
    assert rnn_train.main([*args, *SMALL]) == 0
    with open(run / "rnn" / "metrics.csv") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    # Logged after each step k (1, 2, ...): (lr - lr_min) * decay^k + lr_min.
    assert lrs == pytest.approx([(1e-2 - 1e-3) * 0.9 ** k + 1e-3 for k in range(1, len(lrs) + 1)])


def test_an_m_checkpoint_from_another_v_is_refused(doom_series_run, copy_run, capsys):
    run = copy_run(doom_series_run)
    assert rnn_train.main(["--run", str(run), "--epochs", "1", *SMALL]) == 0
    assert vae_train.main(["--run", str(run), "--epochs", "2", "--log-every", "0"]) == 0
    assert series.main(["--run", str(run), "--log-every", "0"]) == 0
    assert rnn_train.main(["--run", str(run), "--epochs", "2"]) == 1
    assert "use --fresh" in capsys.readouterr().err
    assert rnn_train.main(["--run", str(run), "--fresh", "--epochs", "1", *SMALL]) == 0


def test_a_refused_fresh_start_leaves_the_earlier_training_in_place(doom_m_run, copy_run, capsys):
    run = copy_run(doom_m_run)
    before = files_of(run)
    assert rnn_train.main(["--run", str(run), "--fresh", "--env", "carracing", *SMALL]) == 1
    assert "not 'carracing'" in capsys.readouterr().err
    assert files_of(run) == before  # nothing moved to previous-*, config.json as it was


def test_missing_weights_are_written_again_by_a_rerun(doom_series_run, copy_run):
    run = copy_run(doom_series_run)
    assert rnn_train.main(["--run", str(run), "--epochs", "1", *SMALL]) == 0
    (run / "rnn" / "rnn.pt").unlink()  # as if stopped between the checkpoint and the weights
    assert rnn_train.main(["--run", str(run)]) == 0
    assert load_weights(run / "rnn" / "rnn.pt", "rnn")["info"]["epochs"] == 1
    series.load_series(run)  # re-writing V or M weights leaves the series current


def test_without_v_the_message_names_vae_train(doom_series_run, copy_run, capsys):
    run = copy_run(doom_series_run)
    (run / "vae" / "vae.pt").unlink()
    assert rnn_train.main(["--run", str(run), "--epochs", "1", *SMALL]) == 1
    err = capsys.readouterr().err
    assert "first stage not yet run" in err and "run `python -m wm.vae_train" in err
    assert "Traceback" not in err
