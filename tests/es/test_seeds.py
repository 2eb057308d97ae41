"""Episode seeds: antithetic pairs share theirs, shared seeds one set a generation; resume checks them."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from es.checkpoint import Checkpoints
from es.strategies import make_strategy
from es.trainer import ESSettings, TrainerState, episode_seed, resume


def seeds(settings: ESSettings, popsize: int, generation: int) -> list[list[int]]:
    return [[episode_seed(settings, popsize, generation, c, e) for e in range(settings.num_episode)]
            for c in range(popsize)]


def test_antithetic_pairs_share_seeds_and_nothing_else_does():
    table = seeds(ESSettings(generations=1, num_episode=3), 6, 0)
    assert table[0] == table[3] and table[2] == table[5]
    assert table[0] != table[1] and len(set(table[0])) == 3  # episodes of a candidate differ


def test_shared_seeds_give_every_candidate_the_generations_episodes():
    settings = ESSettings(generations=1, num_episode=2, shared_seeds=True)
    first, second = seeds(settings, 5, 0), seeds(settings, 5, 1)
    assert all(row == first[0] for row in first) and len(set(first[0])) == 2
    assert set(first[0]).isdisjoint(second[0])  # a new set every generation
    # the same stream as candidate 0's without sharing: switching it on changes no other seed
    assert first[0] == seeds(ESSettings(generations=1, num_episode=2), 5, 0)[0]


def saved(tmp_path, settings: dict) -> Checkpoints:
    def write(path, fill) -> None:
        with open(path, "wb") as f:
            fill(f)

    checkpoints = Checkpoints(tmp_path / "checkpoint.npz", write)
    strategy = make_strategy("cma", num_params=4, popsize=6, seed=0)
    checkpoints.save(strategy.state_dict(), asdict(TrainerState(generation=1)), settings, {"problem": "p"})
    return checkpoints


def test_a_checkpoint_from_before_shared_seeds_resumes_as_made_without_them(tmp_path):
    old = asdict(ESSettings(generations=3))
    del old["shared_seeds"]  # what a checkpoint written before the setting existed holds
    checkpoints = saved(tmp_path, old)
    make = lambda: make_strategy("cma", num_params=4, popsize=6, seed=0)  # noqa: E731
    _, state = resume(checkpoints, make, ESSettings(generations=5), {"problem": "p"}, force=False)
    assert state.generation == 1
    with pytest.raises(ValueError, match="shared_seeds: False -> True"):
        resume(checkpoints, make, ESSettings(generations=5, shared_seeds=True), {"problem": "p"}, force=False)
