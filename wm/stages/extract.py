"""Stage 1: collect random-policy episodes into RUN/record/, handed out to MPI ranks.

    mpirun -n 4 python -m wm.extract --run runs/doom --env doom --episodes 1000

Episode i is made from the seed sequence (seed, i) alone, so the data set is the same whatever the
number of ranks. Running the same command again keeps valid episodes and (re)makes missing or corrupt
ones.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from es.mpi import Comm, WorkQueue, single_thread
from wm.core import cli
from wm.core.config import (
    EXTRACT_DATA_FIELDS,
    ExtractConfig,
    as_dict,
    parse_stage_config,
)
from wm.core.errors import WMError
from wm.core.progress import Progress, format_duration
from wm.data.files import remove_stale_temps, write_json
from wm.data.record import Episode, EpisodeFileError, episode_path, read_episode, write_episode
from wm.data.recordset import RECORD_DIR, SUMMARY_NAME
from wm.data.rundir import locked, make_stage_dir, save_stage_config
from wm.envs.games import check_fast, check_skill, make_env
from wm.envs.policies import Policy, make_policy


def episode_seeds(seed: int, index: int) -> tuple[int, np.random.Generator]:
    """The env seed and the policy's RNG of episode ``index``: a function of (seed, index) only."""
    seq = np.random.SeedSequence([seed, index])
    env_seq, policy_seq = seq.spawn(2)
    return int(env_seq.generate_state(1)[0] % 2**31), np.random.default_rng(policy_seq)


def run_episode(
    env: gym.Env, policy: Policy, seed: int, index: int, on_step: Callable[[], None] | None = None
) -> Episode:
    """Play one episode with a random policy and return it as recorded; ``on_step`` is called
    after every step (rank 0 answers other ranks' requests for work there)."""
    env_seed, rng = episode_seeds(seed, index)
    obs, _ = env.reset(seed=env_seed)
    policy.reset(rng)
    frames, actions, rewards, terminateds, truncateds = [], [], [], [], []
    done = False
    while not done:
        action = policy.act()
        frames.append(obs)
        actions.append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        terminateds.append(terminated)
        truncateds.append(truncated)
        done = terminated or truncated
        if on_step is not None:
            on_step()
    return Episode(
        obs=np.stack(frames),
        action=np.stack(actions).astype(np.float32),
        reward=np.asarray(rewards, np.float32),
        terminated=np.asarray(terminateds, bool),
        truncated=np.asarray(truncateds, bool),
    )


def _expected_meta(cfg: ExtractConfig) -> dict[str, Any]:
    """What every episode file of this data set says about how it was made. ``fast_env`` is None
    when off: files made before the option existed (all on the official env) say nothing of it."""
    return {**{key: getattr(cfg, key) for key in EXTRACT_DATA_FIELDS}, "fast_env": cfg.fast_env or None}


class FileStatus(NamedTuple):
    state: str  # "kept", "missing" or "corrupt"
    steps: int = 0
    total_reward: float = 0.0
    reason: str = ""


def _check_existing(record: Path, indices: list[int], expect: dict[str, Any]) -> dict[int, FileStatus]:
    """Which of these episodes already have a valid file."""
    status: dict[int, FileStatus] = {}
    for i in indices:
        path = episode_path(record, i)
        if not path.exists():
            status[i] = FileStatus("missing")
            continue
        if not path.is_file():
            raise WMError(f"{path} is not a regular file; move it away so the episode can be made")
        try:
            ep = read_episode(path, expect={**expect, "index": i})
            status[i] = FileStatus("kept", len(ep), ep.total_reward)
        except EpisodeFileError as err:
            status[i] = FileStatus("corrupt", reason=err.reason)
    return status


def validate_config(cfg: ExtractConfig) -> None:
    """One clear error for values no extraction can run with."""
    if cfg.episodes is None or cfg.episodes < 1:
        raise WMError(f"--episodes must be at least 1, got {cfg.episodes}")
    if cfg.max_steps is None or cfg.max_steps < 1:
        raise WMError(f"--max-steps must be at least 1, got {cfg.max_steps}")
    check_skill(cfg.env, cfg.doom_skill)
    check_fast(cfg.env, cfg.fast_env)
    if cfg.seed < 0:
        raise WMError(f"--seed must be non-negative, got {cfg.seed}")
    if not math.isfinite(cfg.log_every) or cfg.log_every < 0:
        raise WMError(f"--log-every must be a non-negative number of seconds, got {cfg.log_every}")


def extract(cfg: ExtractConfig, comm: Comm) -> dict[str, Any]:
    """Make every missing or corrupt episode of the data set; returns the summary (on rank 0)."""
    with ExitStack() as stack:
        return _extract(cfg, comm, stack)


# Plays episode ``index`` (calling ``on_step`` after every step) and returns it as recorded.
Play = Callable[[int, Callable[[], None]], Episode]


class Recorded(NamedTuple):
    """What :func:`record_episodes` found and made (rank 0's view of every rank)."""

    status: dict[int, FileStatus]  # every episode 0..count-1, all "kept" once made
    made: int  # episodes that were missing
    remade: int  # episodes whose file was corrupt
    frames_made: int


def record_episodes(comm: Comm, record: Path, count: int, expect: dict[str, Any], tag: str,
                    log_every: float, make_player: Callable[[], tuple[Play, Callable[[], None]]]
                    ) -> Recorded | None:
    """Make every missing or corrupt episode 0..count-1 of ``record`` over the ranks; the
    extraction's and the rounds' player share it. Every rank checks its share of the existing files
    (``expect``: the meta they must have); the episodes to make are handed out as ranks become free
    (Doom episodes last 100 to 2100 steps). ``make_player`` (called once per rank) gives the play
    function and what closes it. Returns what was made on rank 0, None on the others."""
    mine = list(range(comm.rank, count, comm.size))
    status: dict[int, FileStatus] = {}
    for part in comm.allgather(_check_existing(record, mine, expect)):
        status.update(part)
    todo = [i for i in range(count) if status[i].state != "kept"]
    corrupt = {i: status[i].reason for i in todo if status[i].state == "corrupt"}
    if comm.is_root:
        for i, reason in sorted(corrupt.items())[:10]:
            print(f"[{tag}] remaking episode {i}: {reason}", flush=True)
        print(f"[{tag}] {count - len(todo)} episodes kept, {len(todo)} to make", flush=True)

    play, close = make_player()
    progress = Progress(tag, len(todo), "episodes", "frames", every=log_every)
    made: list[tuple[int, int, float]] = []
    queue = WorkQueue(comm, todo)
    try:
        while (i := queue.next()) is not None:
            episode = play(i, queue.serve)
            episode.meta = {**expect, "index": i, "steps": len(episode)}
            write_episode(episode_path(record, i), episode)
            made.append((i, len(episode), episode.total_reward))
            for frames in comm.report(len(episode)):  # rank 0 hears of every rank's episodes
                progress.update(done=1, count=frames)
    except KeyboardInterrupt:
        print(f"[{tag}] rank {comm.rank}: interrupted after {len(made)} new episodes; "
              "run the same command again to continue", file=sys.stderr, flush=True)
        raise
    finally:
        close()
    if comm.is_root:
        while not queue.done() or progress.done < len(todo):  # the other ranks' last episodes
            for frames in comm.collect():
                progress.update(done=1, count=frames)
            time.sleep(0.01)
    else:
        comm.flush_reports()

    made_all = [m for part in comm.allgather(made) for m in part]
    if not comm.is_root:
        return None
    for i, steps, ret in made_all:
        status[i] = FileStatus("kept", steps, ret)
    return Recorded(status, len(todo) - len(corrupt), len(corrupt), int(sum(m[1] for m in made_all)))


def episode_stats(status: dict[int, FileStatus]) -> dict[str, Any]:
    """Frames, steps and returns of a set of recorded episodes, for a summary."""
    steps = np.array([s.steps for s in status.values()])
    returns = np.array([s.total_reward for s in status.values()])
    return {"frames": int(steps.sum()), "steps_mean": float(steps.mean()), "steps_min": int(steps.min()),
            "steps_max": int(steps.max()), "return_mean": float(returns.mean()),
            "return_std": float(returns.std()), "return_min": float(returns.min()),
            "return_max": float(returns.max())}


def _extract(cfg: ExtractConfig, comm: Comm, stack: ExitStack) -> dict[str, Any]:
    single_thread()
    start = time.monotonic()
    record = Path(cfg.run) / RECORD_DIR

    def set_up() -> None:  # rank 0 alone; a failure here ends every rank with one line
        make_stage_dir(cfg.run, RECORD_DIR)
        stack.enter_context(locked(record))  # held until the end of the stage
        save_stage_config(cfg.run, "extract", as_dict(cfg), EXTRACT_DATA_FIELDS)
        remove_stale_temps(record)
        print(f"[extract] checking existing episodes in {record} ({comm.size} ranks)", flush=True)

    comm.on_root(set_up, (WMError,))

    def make_player() -> tuple[Play, Callable[[], None]]:
        env = make_env(cfg.env, cfg.max_steps, cfg.doom_skill, cfg.fast_env)
        policy = make_policy(cfg.policy, env.action_space.shape[0])
        return (lambda i, on_step: run_episode(env, policy, cfg.seed, i, on_step)), env.close

    expect = _expected_meta(cfg)
    recorded = record_episodes(comm, record, cfg.episodes, expect, "extract", cfg.log_every, make_player)
    if recorded is None:
        return {}
    seconds = time.monotonic() - start
    new_frames = recorded.frames_made
    summary = {
        **expect, "episodes": cfg.episodes, "kept": cfg.episodes - recorded.made - recorded.remade,
        "made": recorded.made, "remade": recorded.remade, **episode_stats(recorded.status),
        "frames_made": new_frames, "ranks": comm.size, "seconds": round(seconds, 3),
        "frames_per_s": round(new_frames / seconds, 1),
    }
    write_json(record / SUMMARY_NAME, summary)
    print(
        f"[extract] done: {record} holds {cfg.episodes} {cfg.env} episodes "
        f"({summary['kept']} kept, {summary['made']} made, {summary['remade']} remade from corrupt "
        f"files); {summary['frames']:,} frames, {summary['steps_mean']:.0f} steps per episode "
        f"(min {summary['steps_min']}, max {summary['steps_max']}); return "
        f"{summary['return_mean']:.1f} +- {summary['return_std']:.1f}; made {new_frames:,} frames "
        f"in {format_duration(seconds)} ({summary['frames_per_s']:,.0f} frames/s on {comm.size} ranks)",
        flush=True,
    )
    return summary


def parse_config(argv: list[str] | None) -> ExtractConfig:
    """The stage's config: flags, over the run's saved extract settings (or else the preset)."""
    return parse_stage_config("extract", ExtractConfig, argv, "python -m wm.extract", __doc__,
                              validate_config)


def main(argv: list[str] | None = None) -> int:
    return cli.run_mpi_stage("wm.extract", argv, parse_config, extract, coordinator=False)


if __name__ == "__main__":
    sys.exit(main())
