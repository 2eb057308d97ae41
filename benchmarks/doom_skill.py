"""The random data policy's survival in Doom TakeCover at each ViZDoom skill (wm.extract --doom-skill).

    python benchmarks/doom_skill.py [--skills 1,2,3,4,5] [--episodes 200] [--workers 2] [--policy hold]

Plays what ``wm.evaluate --params random`` plays (wm.stages.evaluate.RandomEvaluate: the policy seeded per
episode, on the evaluation seeds of --seed) at each skill, and once with the skill left unset (the
scenario as ViZDoom ships it), which must match its own skill episode for episode. Prints a Markdown
table: mean +- std of the return (+1 per tic survived, so return = steps), its standard error, the
median, min and max, and how many episodes reached the 2100-tic cap.

``--crop-episodes N`` (default 20) also plays N episodes at the default skill and counts the frames
whose rows cut by the crop (wm.envs.games.DOOM_KEEP_ROWS of 120 are kept) show part of a fireball.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from es.mpi import single_thread  # noqa: E402
from wm.core.config import preset_values  # noqa: E402
from wm.envs.games import DOOM_KEEP_ROWS, DOOM_RESOLUTION, DOOM_SCENARIO_SKILL, DOOM_SKILLS, ENVS, make_env  # noqa: E402
from wm.envs.policies import make_policy  # noqa: E402
from wm.stages.evaluate import RandomEvaluate, evaluation_seeds, summarize  # noqa: E402

CHUNK = 20  # episodes per task: one env start per task, small enough to keep both workers busy


def play_chunk(task: tuple[int | None, str, list[int]]) -> tuple[int | None, list[tuple[int, float, int]]]:
    """In a worker: play the seeds at one skill; returns (skill, [(seed, return, steps)])."""
    skill, policy_name, seeds = task
    single_thread()
    env = make_env("doom", skill=skill)
    try:
        play = RandomEvaluate(env, make_policy(policy_name, env.action_space.shape[0]))
        return skill, [(seed, *play(np.zeros(1), seed)[:2]) for seed in seeds]
    finally:
        env.close()


def fireball_rows(frame: np.ndarray) -> np.ndarray:
    """Which rows of a 120 x 160 frame hold fireball pixels (bright yellow-orange: the floor, walls
    and monsters of this map have none)."""
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return ((r > 180) & (g > 120) & (b < 120)).any(axis=1)


def crop_report(episodes: int, policy_name: str) -> str:
    """How often the rows the crop cuts show a fireball, and how often that is just before a death."""
    env = make_env("doom")
    policy = make_policy(policy_name, 1)
    frames = cut = before_death = 0
    for seed in evaluation_seeds(0, episodes):
        policy.reset(np.random.default_rng(seed))
        env.reset(seed=seed)
        shown, done = [], False
        while not done:
            shown.append(fireball_rows(env.raw_frame)[DOOM_KEEP_ROWS:].any())
            _, _, terminated, truncated, _ = env.step(policy.act())
            done = terminated or truncated
        frames, cut = frames + len(shown), cut + sum(shown)
        before_death += bool(terminated and any(shown[-5:]))
    env.close()
    return (f"crop: rows {DOOM_KEEP_ROWS}:{DOOM_RESOLUTION[1]} (cut) show part of a fireball in {cut} of "
            f"{frames} frames ({cut / frames:.1%}) over {episodes} episodes; in {before_death} episodes "
            "within the last 5 frames before the death")


def row(label: str, returns: np.ndarray, steps: np.ndarray, cap: int) -> str:
    """One Markdown row of the table: the figures wm.evaluate prints, and the mean's standard error."""
    s = summarize(returns)
    error = returns.std(ddof=1) / np.sqrt(len(returns))
    return (f"| {label} | {s['mean']:.1f} +- {s['std']:.1f} | {error:.1f} | {s['median']:.0f} | "
            f"{s['min']:.0f} | {s['max']:.0f} | {steps.mean():.1f} | {int((steps >= cap).sum())} |")


def identical_groups(by_seed: dict[int | None, dict[int, tuple[float, int]]]) -> list[list[str]]:
    """Settings whose every episode ended alike: the same game, whatever the skill's name says."""
    groups: dict[str, list[str]] = {}
    for skill, episodes in by_seed.items():
        groups.setdefault(repr(sorted(episodes.items())), []).append("unset" if skill is None else str(skill))
    return list(groups.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skills", default=",".join(map(str, DOOM_SKILLS)))
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed (wm.evaluate --seed)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--policy", default=preset_values("extract", "doom", "small")["policy"],
                        help="random policy (default: the Doom presets' data policy)")
    parser.add_argument("--crop-episodes", type=int, default=20, help="0: no crop report")
    args = parser.parse_args()
    skills: list[int | None] = [int(s) for s in args.skills.split(",")]
    skills.append(None)  # the scenario's own: the default game
    seeds = evaluation_seeds(args.seed, args.episodes)
    tasks = [(skill, args.policy, seeds[i:i + CHUNK]) for skill in skills
             for i in range(0, len(seeds), CHUNK)]
    started = time.monotonic()
    played: dict[int | None, list[tuple[int, float, int]]] = {skill: [] for skill in skills}
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for skill, results in pool.imap_unordered(play_chunk, tasks):
            played[skill] += results
    cap = ENVS["doom"].max_steps
    print(f"{args.policy} policy, {args.episodes} episodes per skill (evaluation seeds of --seed "
          f"{args.seed}), cap {cap} tics; {time.monotonic() - started:.0f}s on {args.workers} processes\n")
    print("| skill | return, mean +- std | std. error | median | min | max | steps, mean | at cap |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    by_seed = {skill: dict((s, (r, n)) for s, r, n in results) for skill, results in played.items()}
    for skill in skills:
        returns, steps = (np.array(v, float) for v in zip(*(by_seed[skill][s] for s in seeds), strict=True))
        label = f"unset (take_cover.cfg: {DOOM_SCENARIO_SKILL})" if skill is None else str(skill)
        print(row(label, returns, steps, cap))
    print("\nplayed identically, episode for episode: " + "; ".join(
        " = ".join(label) for label in identical_groups(by_seed) if len(label) > 1))
    if args.crop_episodes:
        print(crop_report(args.crop_episodes, args.policy))


if __name__ == "__main__":
    main()
