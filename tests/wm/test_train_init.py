"""``wm.train --init-params``: the ES continues from a controller (iterative training's rounds)."""

from __future__ import annotations

import json

import numpy as np

from es.checkpoint import CHECKPOINT_NAME, Checkpoints
from es.strategies import strategy_from_state
from wm.stages import train

ES = ["--dream", "--max-steps", "30", "--popsize", "4", "--num-episode", "1", "--eval-every", "1",
      "--eval-episodes", "2"]


def test_a_round_starts_from_the_previous_best_in_its_own_directory(doom_es_run, copy_run, capsys, tmp_path):
    run = copy_run(doom_es_run)
    best = run / "es" / "best.json"
    start = np.asarray(json.loads(best.read_text())["params"])
    assert train.main(["--run", str(run), *ES, "--generations", "1", "--out", "es-round-1",
                       "--init-params", str(best)]) == 0
    assert f"the mean starting from {best}" in capsys.readouterr().out
    state = Checkpoints(run / "es-round-1" / CHECKPOINT_NAME).load()
    assert np.array_equal(state["strategy"]["options"]["x0"], start)
    # The first generation searched around the controller, not around zeros.
    mean = strategy_from_state(state["strategy"]).result().mean
    assert np.linalg.norm(mean - start) < np.linalg.norm(start)
    # Continuing with two generations keeps the start; another start is another run.
    assert train.main(["--run", str(run), *ES, "--generations", "2", "--out", "es-round-1",
                       "--init-params", str(best)]) == 0
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"params": (start + 1).tolist()}))
    assert train.main(["--run", str(run), *ES, "--generations", "3", "--out", "es-round-1",
                       "--init-params", str(other)]) == 1
    assert "init_params" in capsys.readouterr().err


def test_a_start_of_another_shape_is_refused(doom_es_run, copy_run, capsys, tmp_path):
    run = copy_run(doom_es_run)
    bad = tmp_path / "bad.json"
    bad.write_text('{"params": [1.0, 2.0]}')
    assert train.main(["--run", str(run), *ES, "--generations", "1", "--out", "es-x",
                       "--init-params", str(bad)]) == 1
    assert "2 parameters, but this run's C has" in capsys.readouterr().err
    assert not (run / "es-x").exists()
