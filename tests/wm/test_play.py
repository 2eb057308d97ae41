"""Iterative training's player: real episodes of an explored controller, as a round of the data set."""

from __future__ import annotations

import numpy as np

from wm.data.record import read_episode
from wm.data.recordset import data_digest, data_set, episode_files, round_dir
from wm.stages import play


def test_exploration_is_a_function_of_seed_round_and_episode():
    params = np.zeros(5)
    seed_a, a = play.explored(params, 0.1, 0, 1, 3)
    seed_b, b = play.explored(params, 0.1, 0, 1, 3)
    assert seed_a == seed_b and np.array_equal(a, b) and 0.02 < np.std(a) < 0.3
    assert not np.array_equal(a, play.explored(params, 0.1, 0, 2, 3)[1])
    assert np.array_equal(play.explored(params, 0.0, 0, 1, 3)[1], params)


def test_a_round_joins_the_data_set_once_played_over_mpi(doom_es_run, copy_run, run_stage):
    run = copy_run(doom_es_run)
    before = data_set(run)
    assert all(e.round == 0 for e in before)
    best = str(run / "es" / "best.json")
    done = run_stage("play", "--run", str(run), "--round", "1", "--params", best, "--episodes", "3",
                     "--log-every", "0", ranks=2)
    assert done.returncode == 0, done.stderr
    assert "[play] done: round 1 holds 3 episodes" in done.stdout
    after = data_set(run)
    assert after[: len(before)] == before and [e.round for e in after[len(before):]] == [1, 1, 1]
    assert episode_files(run, rounds=False) == [e.path for e in before]
    assert data_digest(after, 4) != data_digest(after, 1) != data_digest(before, 4)
    episode = read_episode(after[-1].path)
    assert episode.meta["policy"] == "controller" and episode.meta["round"] == 1
    assert episode.meta["sigma"] == 0.1 and len(episode) <= 60  # (the run's extraction cap)

    # The same round again keeps every episode; one removed is made again, the same as before.
    first = round_dir(run, 1) / "episode_000000.npz"
    kept = read_episode(first)
    first.unlink()
    again = run_stage("play", "--run", str(run), "--round", "1", "--params", best, "--episodes", "3",
                      "--log-every", "0")
    assert again.returncode == 0, again.stderr
    assert "2 episodes kept, 1 to make" in again.stdout
    assert np.array_equal(read_episode(first).action, kept.action)


def test_a_controller_of_another_shape_is_refused(doom_es_run, copy_run, run_stage, tmp_path):
    run = copy_run(doom_es_run)
    bad = tmp_path / "c.json"
    bad.write_text('{"params": [0.0, 1.0]}')
    done = run_stage("play", "--run", str(run), "--params", str(bad), "--episodes", "1")
    assert done.returncode != 0 and "has 2 parameters" in done.stderr
    assert not (round_dir(run, 1) / "summary.json").exists()
