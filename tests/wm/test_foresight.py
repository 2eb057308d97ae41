"""M's foresight of real deaths: hand-made cases where the answer is known, and a tiny real run."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from wm.envs.foresight import (
    FAR_STEPS,
    FORESIGHT_STEPS,
    EpisodeForesight,
    describe,
    episode_foresight,
    summarize,
)
from wm.models.mdrnn import MDRNN, doom_config
from wm.pictures import results
from wm.stages import evaluate


def probabilities(steps: int, alarms: dict[int, float]) -> list[float]:
    p = [0.1] * steps
    for step, value in alarms.items():
        p[step] = value
    return p


def test_a_death_is_foreseen_only_within_the_last_k_steps():
    steps = 200
    assert episode_foresight(probabilities(steps, {steps - FORESIGHT_STEPS: 0.9}), died=True).foreseen
    assert episode_foresight(probabilities(steps, {steps - 1: 0.51}), died=True).foreseen
    assert not episode_foresight(probabilities(steps, {steps - FORESIGHT_STEPS - 1: 0.9}), died=True).foreseen
    assert not episode_foresight(probabilities(steps, {steps - 1: 0.5}), died=True).foreseen  # (0.5: alive)
    # The step cap is no death, however sure M was.
    assert not episode_foresight(probabilities(steps, {steps - 1: 0.9}), died=False).foreseen


def test_false_alarms_count_only_steps_far_from_the_end():
    steps = FAR_STEPS + 10  # steps 0..9 are far from the end
    seen = episode_foresight(probabilities(steps, {0: 0.8, 9: 0.8, 10: 0.8, steps - 1: 0.8}), died=True)
    assert seen == EpisodeForesight(died=True, foreseen=True, far_steps=10, far_alarms=2)
    assert episode_foresight([0.9] * 20, died=False).far_steps == 0  # (shorter than FAR_STEPS)


def test_the_summary_of_many_episodes():
    survived = {"died": False, "foreseen": False, "far_steps": 50, "far_alarms": 3}  # (as sent by a rank)
    figures = summarize([EpisodeForesight(True, True, 100, 1), EpisodeForesight(True, False, 50, 0),
                         survived, None])
    assert figures["episodes"] == 3 and figures["deaths"] == 2 and figures["foreseen"] == 1
    assert figures["foreseen_fraction"] == 0.5 and figures["false_alarm_rate"] == 4 / 200
    assert "M foresaw 1 of 2 deaths (50%) within 5 steps" in describe(figures)
    assert summarize([None, None]) is None


def test_the_death_probability_is_the_dreams_done_test():
    torch.manual_seed(0)
    mdrnn = MDRNN(doom_config()).eval()
    h = torch.randn(7, mdrnn.config.hidden_size)
    _, done_logit = mdrnn.raw_head(h)
    p = mdrnn.death_probability(h)
    assert torch.allclose(p, torch.sigmoid(done_logit), atol=1e-6)
    assert torch.equal(p > 0.5, done_logit > 0)


@pytest.mark.slow
def test_evaluations_report_foresight_and_the_baseline_is_unchanged(doom_es_run, copy_run):
    run = copy_run(doom_es_run)
    short = ["--run", str(run), "--max-steps", "60"]
    assert evaluate.main([*short, "--params", "random", "--episodes", "4"]) == 0
    assert evaluate.main([*short, "--episodes", "3"]) == 0
    for name, episodes in (("random", 4), ("real", 3)):
        summary = json.loads((run / "eval" / f"{name}.json").read_text())
        figures = summary["foresight"]
        assert figures["episodes"] == episodes and 0 <= figures["foreseen"] <= figures["deaths"] <= episodes
        with open(run / "eval" / f"{name}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert sum(r["died"] == "True" for r in rows) == figures["deaths"]
    # The random policy seen through V and M plays exactly the episodes it plays unseen.
    from wm.envs.games import make_env
    from wm.envs.policies import make_policy

    env = make_env("doom", 60)
    try:
        policy = make_policy("hold", 1)
        seen = evaluate.RandomEvaluate(env, policy, evaluate.watching_agent(str(run)))
        unseen = evaluate.RandomEvaluate(env, policy)
        for seed in (3, 4):
            assert seen(np.zeros(1), seed)[:2] == unseen(np.zeros(1), seed)[:2]
    finally:
        env.close()
    text = results.markdown(results.collect(run))
    assert "## Can the dream be trusted?" in text and "| random | 4 |" in text
    assert "in M's dream (tau 1.15" in text and "the real one" in text
