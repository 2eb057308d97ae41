"""Iterative training's data: a played round is encoded by the same V and M continues on the grown
set, its episodes weighted, only when asked to."""

from __future__ import annotations

import numpy as np

from wm.data.files import read_json
from wm.data.recordset import data_set
from wm.models.training import load_weights
from wm.stages import play, rnn_train, series

FAST = ["--threads", "1", "--log-every", "0"]


def test_m_continues_on_a_grown_data_set_only_when_asked(doom_es_run, copy_run, capsys):
    run = copy_run(doom_es_run)
    before = read_json(run / "series" / "summary.json")
    assert play.main(["--run", str(run), "--round", "1", "--params", str(run / "es" / "best.json"),
                      "--episodes", "2", "--log-every", "0"]) == 0
    assert rnn_train.main(["--run", str(run), "--epochs", "2", *FAST]) == 1  # (not encoded yet)
    assert "not encoded yet" in capsys.readouterr().err

    assert series.main(["--run", str(run), *FAST]) == 0
    assert f"{before['episodes']} episodes already encoded, 2 to encode" in capsys.readouterr().out
    summary = read_json(run / "series" / "summary.json")
    assert summary["episodes"] == before["episodes"] + 2 and summary["rounds"] == [1]
    assert summary["vae"] == before["vae"]
    assert len(np.load(run / "series" / "initial_z.npz")["mu"]) == summary["episodes"]
    loaded = series.load_series(run)
    assert [s["round"] for s in loaded] == [e.round for e in data_set(run)]
    assert len(rnn_train.weighted(loaded, 3)) == len(loaded) + 2 * 2

    # The checkpoint was made on the random data alone: continuing on the grown set is a decision.
    assert rnn_train.main(["--run", str(run), "--epochs", "2", *FAST]) == 1
    assert "pass --grown-data to continue on purpose" in capsys.readouterr().err
    assert rnn_train.main(["--run", str(run), "--epochs", "1", "--grown-data", "--round-weight", "3",
                           *FAST]) == 1  # (no epoch on the grown set: the weights would claim it)
    assert "adds no epoch to the 1 done" in capsys.readouterr().err
    assert not load_weights(run / "rnn" / "rnn.pt", "rnn")["info"].get("rounds")
    assert rnn_train.main(["--run", str(run), "--epochs", "2", "--grown-data", "--round-weight", "3",
                           *FAST]) == 0
    out = capsys.readouterr().out
    assert "resuming after epoch 1" in out and "rounds [1] x 3" in out
    info = load_weights(run / "rnn" / "rnn.pt", "rnn")["info"]
    assert info["epochs"] == 2 and info["rounds"] == [1]
    # The same data set again continues without the flag, which is never carried over.
    assert rnn_train.main(["--run", str(run), "--epochs", "3", "--round-weight", "3", *FAST]) == 0
    assert load_weights(run / "rnn" / "rnn.pt", "rnn")["info"]["data"] == info["data"]
