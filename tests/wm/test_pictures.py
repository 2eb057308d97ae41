"""The pictures read on their own: titles clear of each other, whole generations, epochs unlike the
grid, legends naming only what is drawn, labelled rows, and action bars in the env's own terms.
Tiny data made here (a few CSV rows, an untrained V, random frames): seconds, no run needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from wm.envs.games import carracing_action, doom_buttons
from wm.models.mdrnn import MDRNN, MDRNNConfig
from wm.models.vae import ConvVAE, VAEConfig
from wm.pictures import dream_video, render
from wm.pictures.panels import BAR, CAPTION, GAP, action_bars, compose
from wm.pictures.plots import loss_curves, loss_figure, read_csv_rows, training_curves, training_figure
from wm.pictures.vae_pictures import latent_traversal, reconstruction_grid, traversal_labels

WHITE = 255


def drawn(fig):
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def m_log(steps=17, per_epoch=6):
    """An M loss log like rnn/metrics.csv: the learning rate decays by 1e-9 a step from 9.999e-4."""
    return [{"step": float(i), "epoch": float(1 + (i - 1) // per_epoch), "wall_s": 0.5 * i,
             "loss": 2.0 / i, "z_nll": 1.5 / i, "done": 0.7 / i, "lr": 9.999e-4 - 1e-9 * i}
            for i in range(1, steps + 1)]


def history(rows):
    """An ES history.csv of (mean, min, max, eval_score) per generation, 3 s a generation."""
    return [{"generation": float(g), "elapsed_s": 3.0 * g, "fitness_mean": mean, "fitness_min": low,
             "fitness_max": high, "eval_score": score} for g, (mean, low, high, score) in enumerate(rows, 1)]


def test_loss_panels_titles_clear_of_the_figure_title_and_of_offsets(tmp_path):
    v_log = [{"step": float(i), "epoch": 1.0, "wall_s": float(i), "loss": 90.0 / i,
              "reconstruction": 60.0 / i, "kl": 30.0 / i} for i in range(1, 9)]
    for fig in (loss_figure(v_log, "V (VAE) training"), loss_figure(m_log(), "M (MDN-RNN) training")):
        renderer = drawn(fig)
        suptitle = fig._suptitle.get_window_extent(renderer)
        for ax in fig.axes:  # the figure's title wholly above each panel's (the middle one's included)
            assert suptitle.y0 >= ax.title.get_window_extent(renderer).y1, ax.get_title()
            assert ax.yaxis.get_offset_text().get_text() == ""  # no "1e-8+9.999e-4" over the title
    lr = fig.axes[[ax.get_title() for ax in fig.axes].index("lr")]
    labels = [t.get_text() for t in lr.get_yticklabels() if t.get_text()]
    assert len(set(labels)) == len(labels) >= 3  # the values themselves, told apart
    assert all(float(label.replace("\u2212", "-")) == pytest.approx(1e-3, rel=1e-3) for label in labels)
    assert loss_curves(m_log(), tmp_path / "rnn_loss.png", "M").stat().st_size > 0


def test_loss_panels_mark_epochs_unlike_grid_lines_and_name_them():
    fig = loss_figure(m_log(steps=17, per_epoch=6))  # epochs start at steps 7 and 13
    first = fig.axes[0]
    assert [t.get_text() for t in first.get_legend().get_texts()] == ["epoch"]
    for ax in fig.axes:
        marks = [line for line in ax.get_lines() if list(line.get_xdata()) in ([7.0, 7.0], [13.0, 13.0])]
        assert len(marks) == 2
        grid = ax.xaxis.get_gridlines()[0]
        for mark in marks:
            assert mark.get_linestyle() != grid.get_linestyle() and mark.get_color() != grid.get_color()
    many = loss_figure(m_log(steps=400, per_epoch=3))  # 133 epochs: every 3rd boundary, and said so
    assert [t.get_text() for t in many.axes[0].get_legend().get_texts()] == ["epoch (1 in 3)"]
    assert len([line for line in many.axes[1].get_lines() if line.get_linestyle() == "--"]) <= 50
    assert loss_figure(m_log(steps=5, per_epoch=6)).axes[0].get_legend() is None  # one epoch: no marks


def test_training_curves_tick_whole_generations_and_name_only_what_is_drawn(tmp_path):
    nan = float("nan")
    flat = history([(2100.0, 2100.0, 2100.0, nan)] * 2 + [(2100.0, 2100.0, 2100.0, 2100.0)])
    fig = training_figure(flat, threshold=750)
    drawn(fig)
    by_generation = fig.axes[0]
    low, high = by_generation.get_xlim()
    ticks = [t for t in by_generation.get_xticks() if low <= t <= high]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)  # 1, 2, 3: no 1.25
    # Every candidate at the cap: no band, no max apart from the mean, one evaluation (no running best).
    assert [t.get_text() for t in by_generation.get_legend().get_texts()] == [
        "population mean", "evaluation of the mean", "solved (750)"]
    spread = history([(10.0, 0.0, 30.0, 12.0), (20.0, 5.0, 40.0, nan), (30.0, 10.0, 50.0, 25.0)])
    assert [t.get_text() for t in training_figure(spread).axes[0].get_legend().get_texts()] == [
        "population min - max", "population mean", "population max", "evaluation of the mean",
        "best evaluation"]
    one = training_figure(history([(5.0, 5.0, 5.0, nan)]))
    assert one.axes[0].get_lines()[0].get_marker() == "o"  # a single generation is still seen
    assert training_curves(flat, tmp_path / "training.png", 750).stat().st_size > 0


def test_training_curves_read_from_csv(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("generation,elapsed_s,fitness_mean,fitness_min,fitness_max,eval_score\n"
                    "1,2.7,2100,2100,2100,\n2,5.5,2100,2100,2100,\n3,8.2,2100,2100,2100,2100\n")
    fig = training_figure(read_csv_rows(path))
    assert "population max" not in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


@pytest.fixture
def tiny_vae():
    torch.manual_seed(0)
    return ConvVAE(VAEConfig(z_size=8))


def frames(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 64, 64, 3), dtype=np.uint8)


def ink(block):
    """Whether a picture region holds anything but white (a label drawn there)."""
    return bool((np.asarray(block) < 200).any())


def test_reconstruction_grid_names_its_rows(tiny_vae):
    real = frames(16)
    raw = reconstruction_grid(tiny_vae, real, labels=False)
    picture = reconstruction_grid(tiny_vae, real)
    margin = picture.shape[1] - raw.shape[1]
    assert picture.shape[0] == raw.shape[0] and margin > 30
    assert np.array_equal(picture[:, margin:], raw)  # the frames themselves, right of the labels
    rows = [picture[r * 66 : r * 66 + 64, :margin] for r in range(4)]  # real, V's, real, V's
    assert all(ink(row) for row in rows)
    assert np.array_equal(rows[0], rows[2]) and np.array_equal(rows[1], rows[3])
    assert not np.array_equal(rows[0], rows[1])  # "real" is not "V's reconstruction"


def test_latent_traversal_names_each_dimension_and_the_values(tiny_vae):
    rows, columns = traversal_labels([5, 2], [-3.0, -1.5, 0.0, 1.5, 3.0])
    assert rows == ["z[5]", "z[2]"] and columns == ["-3", "-1.5", "0", "+1.5", "+3"]
    real = frames(8)
    raw, dims = latent_traversal(tiny_vae, real, dims=3, steps=5, labels=False)
    picture, same = latent_traversal(tiny_vae, real, dims=3, steps=5)
    assert same == dims
    top, margin = picture.shape[0] - raw.shape[0], picture.shape[1] - raw.shape[1]
    assert top > 8 and margin > 15
    assert np.array_equal(picture[top:, margin:], raw)
    assert all(ink(picture[top + r * 66 : top + r * 66 + 64, :margin]) for r in range(3))  # z[d]
    assert all(ink(picture[:top, margin + c * 66 : margin + c * 66 + 64]) for c in range(5))  # values


def bar_text(bars):
    return [(bar.name, bar.text) for bar in bars]


def test_doom_action_bar_says_left_stay_or_right_as_the_env_plays_it():
    for value in (-1.0, -0.34, -0.33, 0.0, 0.33, 0.34, 1.0):
        [bar] = action_bars("doom", np.array([value], np.float32))
        move = {(1, 0): "left", (0, 1): "right", (0, 0): "stay"}[tuple(doom_buttons(value))]
        assert bar.name == "move" and bar.text.startswith(move), (value, bar.text)
        assert f"{value:+.2f}" in bar.text  # and the controller's value
    assert bar_text(action_bars("doom", [-1.0])) == [("move", "left (-1.00)")]


def test_carracing_action_bars_show_the_envs_steer_gas_and_brake():
    output = np.array([0.3, -0.99, -0.5], np.float32)  # the controller's: gas -0.99 is the env's 0.005
    bars = action_bars("carracing", output)
    steer, gas, brake = carracing_action(output)
    assert [b.name for b in bars] == ["steer", "gas", "brake"]
    assert [b.value for b in bars] == pytest.approx([steer, gas, brake])
    assert [(b.low, b.high) for b in bars] == [(-1, 1), (0, 1), (0, 1)]
    assert [b.text for b in bars] == ["+0.30", f"{gas:.2f}", "0.00"]
    # Drawn: full gas fills its bar from the left edge; none leaves it empty.
    picture = np.zeros((32, 32, 3), np.uint8)
    full, none = (np.asarray(compose([("game", picture)], 32, action_bars("carracing", [0.0, g, -1.0])))
                  for g in (1.0, -1.0))
    gas_row = slice(CAPTION + 32 + BAR + 6, CAPTION + 32 + 2 * BAR - 6)  # the second bar's fill
    red = lambda frame: ((frame[gas_row, :, 0] > 150) & (frame[gas_row, :, 1] < 100)).sum()  # noqa: E731
    assert red(full) > 5 * max(red(none), 1)


def test_video_frames_caption_every_panel():
    assert render.CAPTIONS == ("game", "V sees 64x64", "V decodes")
    game = np.zeros((120, 160, 3), np.uint8)
    small = np.zeros((64, 64, 3), np.uint8)
    frame = np.asarray(render.video_frame("doom", game, small, small, np.array([0.9]), 12, 64))
    widths = [round(160 * 64 / 120), 64, 64]
    assert frame.shape[1] == sum(widths) + 2 * GAP and frame.shape[0] == CAPTION + 64 + 2 * BAR
    x = 0
    for width in widths:  # ink over each picture, none in the gaps between them (no caption spills)
        assert ink(frame[:CAPTION, x : x + width])
        x += width
        assert not ink(frame[:CAPTION, x : x + GAP])
        x += GAP
    unlabelled = np.asarray(compose([("", game), ("", small), ("", small)], 64))
    assert not ink(unlabelled[:CAPTION])


def test_dream_video_captions_its_panels_and_plays_the_envs_actions(tiny_vae, monkeypatch):
    drawn_frames = []

    def capture(panels, height, bars=(), note=""):
        drawn_frames.append(([caption for caption, _ in panels], [(b.name, b.text) for b in bars]))
        return compose(panels, height, bars, note)

    monkeypatch.setattr(dream_video, "compose", capture)
    mdrnn = MDRNN(MDRNNConfig(z_size=8, action_size=1, hidden_size=8, with_done=True))
    actions = [np.array([v], np.float32) for v in (-1.0, 0.0, 1.0)]
    video, _ = dream_video.dream_beside(tiny_vae, mdrnn, list(frames(3)), actions, tau=1.15, every=1,
                                        panel=32, env="doom")
    assert len(video) == 3
    assert drawn_frames[0][0] == ["real", "V decodes", "M dreams, tau 1.15"]
    assert [bars[0][1].split()[0] for _, bars in drawn_frames] == ["left", "stay", "right"]
