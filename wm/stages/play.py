"""Iterative training, step (a): play real episodes with a trained controller into a new round of
the data set, handed out to MPI ranks like extraction (the same worker and queue code).

    mpirun -n 2 python -m wm.play --run runs/doom --round 1 --params runs/doom/es/best.json --episodes 100

Exploration: episode i of round r plays the controller's parameters plus Gaussian noise of standard
deviation --sigma, the noise and the env seed drawn from the seed sequence (seed, 4, r, i) alone
(stream 4: apart from training's 1 and 2 and evaluation's 3), so the round is the same whatever the
number of ranks. Perturbing the parameters rather than the actions keeps each episode one coherent
policy near the controller (as the ES's own candidates are), so M sees the states such policies reach.
Episodes are written in the episode file format (wm.data.record) to RUN/record/round-RR/, their meta naming
the round, the controller (a hash of its parameters) and sigma; RUN/record/round-RR/summary.json,
written once all are made, adds the round to the data set (wm.data.recordset). Running the same command
again keeps valid episodes and (re)makes missing or corrupt ones.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import gymnasium as gym
import numpy as np

from es.mpi import Comm, single_thread
from wm.core import cli
from wm.core.config import PlayConfig
from wm.core.errors import WMError
from wm.core.progress import format_duration
from wm.data.files import remove_stale_temps, write_json
from wm.data.record import Episode
from wm.data.recordset import SUMMARY_NAME, round_dir
from wm.data.rundir import locked, make_stage_dir, run_doom_skill, run_env, stage_config
from wm.models.controller import params_digest
from wm.stages.extract import Play, episode_stats, record_episodes

_PLAY_STREAM = 4  # SeedSequence stream of the rounds' episodes (training 1 and 2, evaluation 3)


def explored(params: np.ndarray, sigma: float, seed: int, round_: int, index: int) -> tuple[int, np.ndarray]:
    """The env seed and the perturbed parameters of episode ``index`` of round ``round_``."""
    env_seq, noise_seq = np.random.SeedSequence([seed, _PLAY_STREAM, round_, index]).spawn(2)
    noise = np.random.default_rng(noise_seq).standard_normal(params.shape)
    return int(env_seq.generate_state(1)[0] % 2**31), params + sigma * noise


class RecordingEnv(gym.Wrapper):
    """Keeps every step of the episode being played, as extraction records it (the frame seen
    before the action, the action, reward and end flags)."""

    def reset(self, **kwargs: Any) -> Any:
        obs, info = self.env.reset(**kwargs)
        self._obs, self._steps = obs, []
        return obs, info

    def step(self, action: Any) -> Any:
        seen = self._obs
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps.append((seen, np.asarray(action, np.float32), reward, terminated, truncated))
        self._obs = obs
        return obs, reward, terminated, truncated, info

    def episode(self) -> Episode:
        frames, actions, rewards, terminateds, truncateds = zip(*self._steps, strict=True)
        return Episode(obs=np.stack(frames), action=np.stack(actions), reward=np.asarray(rewards, np.float32),
                       terminated=np.asarray(terminateds, bool), truncated=np.asarray(truncateds, bool))


def validate_config(cfg: PlayConfig) -> None:
    """One clear error for values no round can be played with."""
    if cfg.round < 1:
        raise WMError(f"--round must be at least 1 (round 0 is extraction's data), got {cfg.round}")
    if cfg.episodes < 1:
        raise WMError(f"--episodes must be at least 1, got {cfg.episodes}")
    if not math.isfinite(cfg.sigma) or cfg.sigma < 0:
        raise WMError(f"--sigma must be a number >= 0, got {cfg.sigma}")
    if cfg.seed < 0:
        raise WMError(f"--seed must be non-negative, got {cfg.seed}")
    if not math.isfinite(cfg.log_every) or cfg.log_every < 0:
        raise WMError(f"--log-every must be >= 0, got {cfg.log_every}")


def _set_up(cfg: PlayConfig, stack: ExitStack) -> dict[str, Any]:
    """Rank 0: the controller and the game, checked; the round's directory locked for the stage."""
    from wm.models.weights import world_model_digests
    from wm.stages.evaluate import load_controller
    from wm.stages.train import controller_spec

    env = run_env(cfg.run)
    extract = stage_config(cfg.run, "extract")
    if env is None or extract is None:
        raise WMError(f"{cfg.run}: no extracted data set: run the pipeline's first stages first")
    params = load_controller(cfg.run, cfg.params)
    spec = controller_spec(cfg.run)
    world_model_digests(cfg.run)  # (refuses an M trained on another V)
    if params.size != spec.num_params:
        raise WMError(f"{cfg.params}: the controller has {params.size} parameters but this run's C needs "
                      f"{spec.num_params}: it comes from another run")
    out = round_dir(cfg.run, cfg.round)
    make_stage_dir(cfg.run, str(out.relative_to(cfg.run)))
    stack.enter_context(locked(out))  # held until the end of the stage
    remove_stale_temps(out)
    (out / SUMMARY_NAME).unlink(missing_ok=True)  # (rewritten once every episode is made)
    print(f"[play] round {cfg.round}: {cfg.episodes} real {env} episodes of controller {cfg.params} "
          f"explored with sigma {cfg.sigma:g}, into {out}", flush=True)
    return {"env": env, "max_steps": int(extract["max_steps"]), "skill": run_doom_skill(cfg.run),
            "params": params.tolist()}


def play_round(cfg: PlayConfig, comm: Comm) -> dict[str, Any]:
    """Make every missing or corrupt episode of the round; returns its summary (on rank 0)."""
    with ExitStack() as stack:
        single_thread()
        start = time.monotonic()
        info = comm.on_root(lambda: _set_up(cfg, stack), (WMError,))
        params = np.asarray(info["params"], np.float64)
        expect = {"env": info["env"], "policy": "controller", "round": cfg.round, "sigma": cfg.sigma,
                  "seed": cfg.seed, "max_steps": info["max_steps"], "doom_skill": info["skill"],
                  "controller": params_digest(params)}

        def make_player() -> tuple[Play, Callable[[], None]]:
            from wm.envs.games import make_env  # (the players only: the envs import ViZDoom / pygame)
            from wm.envs.rollout import WorldModelAgent
            from wm.models.weights import load_world_model

            agent = WorldModelAgent(*load_world_model(cfg.run))
            env = RecordingEnv(make_env(info["env"], info["max_steps"], info["skill"]))

            def play(i: int, on_step: Callable[[], None]) -> Episode:
                seed, candidate = explored(params, cfg.sigma, cfg.seed, cfg.round, i)
                agent.run_episode(env, candidate, seed, on_step=lambda *_: on_step())
                return env.episode()

            return play, env.close

        out = round_dir(cfg.run, cfg.round)
        recorded = record_episodes(comm, out, cfg.episodes, expect, "play", cfg.log_every, make_player)
        if recorded is None:
            return {}
        seconds = time.monotonic() - start
        summary = {**expect, "params": cfg.params, "episodes": cfg.episodes, "made": recorded.made,
                   "remade": recorded.remade, **episode_stats(recorded.status), "ranks": comm.size,
                   "seconds": round(seconds, 3)}
        write_json(out / SUMMARY_NAME, summary)
    print(f"[play] done: round {cfg.round} holds {cfg.episodes} episodes, {summary['frames']:,} frames; "
          f"return {summary['return_mean']:.1f} +- {summary['return_std']:.1f} (sigma {cfg.sigma:g}); "
          f"{format_duration(seconds)} on {comm.size} ranks", flush=True)
    return summary


def parse_config(argv: list[str] | None) -> PlayConfig:
    cfg, _ = cli.parse(PlayConfig, argv, "python -m wm.play", __doc__ or "")
    validate_config(cfg)
    return cfg


def main(argv: list[str] | None = None) -> int:
    return cli.run_mpi_stage("wm.play", argv, parse_config, play_round, coordinator=False)


if __name__ == "__main__":
    sys.exit(main())
