"""Evaluate a controller: N episodes with fresh seeds, in the real env or in M's dream.

    mpirun -n 3 python -m wm.evaluate --run runs/doom [--params best|current|random|FILE] [--episodes 100]
    python -m wm.evaluate --run runs/doom --np 2          (the same: it starts the mpirun itself)

Rank 0 hands out episodes, ranks 1..N-1 play them (as in training; without mpirun or --np one
process plays them all). Prints mean +- std, min, median and max, and writes RUN/eval/NAME.json (the
summary, the seeds, the settings) and RUN/eval/NAME.csv (seed, return, steps per episode).
``--params random`` measures the random policy that made the run's data, on the same seeds: the
baseline to read a score against.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from es.checkpoint import CHECKPOINT_NAME, Checkpoints
from es.mpi import Comm, single_thread
from es.strategies import strategy_from_state
from es.trainer import evaluate_tasks
from wm.core import cli
from wm.core.config import MAX_EPISODES, EvaluateConfig
from wm.core.errors import WMError
from wm.core.progress import Progress
from wm.data.files import atomic_write, check_plain_name, write_json
from wm.data.rundir import (
    eval_names,
    final_controller,
    final_round,
    first_missing,
    make_stage_dir,
    run_doom_skill,
    run_env,
    stage_config,
)
from wm.envs import foresight
from wm.envs.games import check_fast, check_skill
from wm.models.controller import params_digest

EVAL_DIR = "eval"
_EVAL_STREAM = 3  # SeedSequence stream of evaluation seeds (training uses 1 and 2)


def evaluation_seeds(seed: int, episodes: int) -> list[int]:
    """Env seeds of an evaluation: from (seed, 3, i), never a seed that training played."""
    return [int(np.random.SeedSequence([seed, _EVAL_STREAM, i]).generate_state(1)[0] % 2**31)
            for i in range(episodes)]


def load_controller(run: str, params: str) -> np.ndarray:
    """The controller vector that ``--params`` names."""
    if params == "best":
        path = final_controller(run)
        if not path.is_file():
            raise WMError(f"no best controller at {path}: {first_missing(run)} (wm.train "
                          "writes best.json at its first evaluation), or pass --params current")
        return _params_from_json(path)
    if params == "current":
        path = Path(run) / "es" / CHECKPOINT_NAME
        try:
            data = Checkpoints(path).load()
            if data is None:
                raise WMError(f"no ES checkpoint in {path.parent}: run `python -m wm.train --run {run}`")
            return np.asarray(strategy_from_state(data["strategy"]).result().mean, dtype=np.float64)
        except (ValueError, KeyError, TypeError) as err:
            raise WMError(f"{path}: {' '.join(str(err).split())}") from None
    path = Path(params)
    if not path.is_file():
        raise WMError(f"--params {params}: not best, current, random or a file")
    return _params_from_json(path)


def _params_from_json(path: Path) -> np.ndarray:
    try:
        values = np.asarray(json.loads(path.read_text())["params"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise WMError(f"{path}: not a controller file with a 'params' list ({err})") from err
    if values.ndim != 1 or not np.all(np.isfinite(values)):
        raise WMError(f"{path}: 'params' must be a flat list of finite numbers")
    return values


def output_name(cfg: EvaluateConfig) -> str:
    """``--name``, else one made from the settings; a game at another skill than the run's gets its
    own name, so a comparison never overwrites the run's scores."""
    if cfg.name:
        return cfg.name
    return _settings_name(cfg) + (f"-skill{cfg.doom_skill}" if cfg.doom_skill is not None else "") + \
        ("-fast" if cfg.fast_env else "")


def _settings_name(cfg: EvaluateConfig) -> str:
    if cfg.params == "random":
        return "random" if not cfg.dream else f"random-dream-tau{cfg.temperature:g}"
    base = "real" if not cfg.dream else f"dream-tau{cfg.temperature:g}"
    if cfg.params == "best" and not cfg.dream and cfg.run:
        # After iterative training "best" is the newest round's controller: its evaluation's name
        # (real-round-R), never round 0's eval/real
        return eval_names(final_round(cfg.run))[0]
    if cfg.params in ("best", "current"):
        return base if cfg.params == "best" else f"{base}-current"
    return f"{base}-{Path(cfg.params).stem}"


class RandomEvaluate:
    """The random data policy, seeded per episode (the baseline), in the real env or the dream;
    seen through V and M when ``agent`` is given, for M's foresight of its deaths."""

    def __init__(self, env: Any, policy: Any, agent: Any = None):
        self.env, self.policy, self.agent = env, policy, agent

    def __call__(self, params: np.ndarray, seed: int) -> tuple[float, int, Any]:
        self.policy.reset(np.random.default_rng(seed))
        if self.agent is not None:  # (the same actions: the policy ignores what V and M see)
            import torch

            act = self.policy.act
            return self.agent.play(self.env, lambda z, h, c: torch.from_numpy(act())[None], seed).outcome()
        self.env.reset(seed=seed)
        total, steps, done = 0.0, 0, False
        while not done:
            _, reward, terminated, truncated, _ = self.env.step(self.policy.act())
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        return total, steps, None


def watching_agent(run: str) -> Any:
    """V and M to watch a policy that does not use them (the random one), when the run has an M
    with a done head that fits its V; else None (the baseline is then measured without foresight)."""
    from wm.envs.rollout import WorldModelAgent
    from wm.models.weights import load_world_model, rnn_path, rnn_weights

    try:
        if not rnn_path(run).is_file() or not rnn_weights(run)["config"].get("with_done"):
            return None
        return WorldModelAgent(*load_world_model(run))
    except WMError:
        return None


def make_evaluator(cfg: EvaluateConfig, env_name: str) -> Any:
    """On a worker: what plays one task (or a batch of them), built once."""
    single_thread()
    import atexit

    from wm.envs.dream import DOOM_MAX_STEPS, DreamEnv, DreamEvaluate

    max_steps = cfg.max_steps or None
    if cfg.params == "random":
        from wm.envs.policies import make_policy

        if cfg.dream:
            env = DreamEnv.from_run(cfg.run, cfg.temperature, max_steps or DOOM_MAX_STEPS)
        else:
            from wm.envs.games import make_env

            env = make_env(env_name, max_steps, run_doom_skill(cfg.run, cfg.doom_skill), cfg.fast_env)
            atexit.register(env.close)
        policy = make_policy(random_policy(cfg.run, env_name), env.action_space.shape[0])
        return RandomEvaluate(env, policy, None if cfg.dream else watching_agent(cfg.run))
    if cfg.dream:
        return DreamEvaluate.from_run(cfg.run, cfg.temperature, min(256, len(task_seeds(cfg))),
                                      max_steps or DOOM_MAX_STEPS)
    from wm.core.config import TrainConfig
    from wm.stages.train import make_evaluator as make_real_evaluator

    return make_real_evaluator(TrainConfig(run=cfg.run, env=env_name, max_steps=cfg.max_steps,
                                           envs_per_worker=cfg.envs_per_worker, fast_env=cfg.fast_env),
                               cfg.doom_skill)


def random_policy(run: str, env_name: str) -> str:
    """The policy that made the run's data (the baseline), else the env's usual one."""
    saved = stage_config(run, "extract") or {}
    return saved.get("policy") or ("hold" if env_name == "doom" else "brownian")


def task_seeds(cfg: EvaluateConfig) -> list[int]:
    """The env seeds to play: ``--seeds`` as given, else ``--episodes`` made from ``--seed``."""
    if cfg.seeds:
        return _given_seeds(cfg.seeds)
    return evaluation_seeds(cfg.seed, cfg.episodes)


def _given_seeds(text: str) -> list[int]:
    """``--seeds``: an env takes no negative seed (gymnasium would raise deep inside a worker)."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
        valid = all(s >= 0 for s in seeds)
    except ValueError:
        valid = False
    if not valid:
        raise WMError(f"--seeds must be comma-separated integers >= 0, got {text!r}")
    return seeds


def summarize(returns: np.ndarray) -> dict[str, float]:
    """mean, std, min, median, max of the returns."""
    return {"mean": float(returns.mean()), "std": float(returns.std()), "min": float(returns.min()),
            "median": float(np.median(returns)), "max": float(returns.max())}


def validate_config(cfg: EvaluateConfig) -> None:
    if not 1 <= cfg.episodes <= MAX_EPISODES:
        raise WMError(f"--episodes must be 1 to {MAX_EPISODES:,}, got {cfg.episodes:,}")
    if not math.isfinite(cfg.temperature) or cfg.temperature <= 0:
        raise WMError(f"--temperature must be a number > 0, got {cfg.temperature}")
    if cfg.max_steps < 0 or cfg.seed < 0 or cfg.envs_per_worker < 1:
        raise WMError("--max-steps and --seed must be >= 0 and --envs-per-worker >= 1")
    cli.check_np(cfg.np)
    if not task_seeds(cfg):
        raise WMError("--seeds holds no seed")
    if cfg.name is not None:  # (else a name made from the settings)
        check_plain_name("--name", cfg.name)


def evaluate(cfg: EvaluateConfig, comm: Comm) -> dict[str, Any] | None:
    """Play the episodes over the ranks; on rank 0 write and return the summary."""
    out = Path(cfg.run) / EVAL_DIR
    name = output_name(cfg)
    seeds = task_seeds(cfg)

    def set_up() -> dict[str, Any]:  # rank 0; an error here ends every rank with one line
        env_name = run_env(cfg.run)
        if env_name is None:
            raise WMError(f"{cfg.run} is not a run directory (no config.json): run the pipeline first")
        make_stage_dir(cfg.run, EVAL_DIR)  # (a read-only run is refused before playing, not after)
        if cfg.dream and env_name != "doom":
            raise WMError(f"--dream needs the Doom TakeCover pipeline; this run is {env_name}")
        check_skill(env_name, cfg.doom_skill)
        check_fast(env_name, cfg.fast_env)
        if cfg.dream and cfg.doom_skill is not None:
            raise WMError("--doom-skill sets the real game's difficulty; M's dream has none")
        if cfg.dream:
            from wm.envs.dream import check_dream_inputs

            check_dream_inputs(cfg.run)
        if cfg.params == "random":
            return {"env": env_name, "params": None}
        from wm.stages.train import controller_spec

        params = load_controller(cfg.run, cfg.params)
        spec = controller_spec(cfg.run)
        if not cfg.dream:  # (the real env's workers load V with M: refuse a V retrained after M here)
            from wm.models.weights import world_model_digests

            world_model_digests(cfg.run)
        if params.size != spec.num_params:
            raise WMError(f"the controller has {params.size} parameters but this run's C needs "
                          f"{spec.num_params}: it comes from another run")
        return {"env": env_name, "params": params.tolist(), "digest": params_digest(params)}

    info = comm.on_root(set_up, (WMError,))
    env_name = info["env"]
    dummy = np.zeros(1) if info["params"] is None else np.asarray(info["params"])
    skill = None if cfg.dream else run_doom_skill(cfg.run, cfg.doom_skill)  # (None: the scenario's)
    where = "dream" if cfg.dream else "real env" + (f" at skill {skill}" if skill is not None else "") + \
        (" (fast env: our renderer)" if cfg.fast_env else "")
    if comm.is_root:
        who = "random policy" if cfg.params == "random" else f"controller {cfg.params}"
        print(f"[evaluate] {env_name} {where}, {who}, {len(seeds)} episodes, "
              f"{max(comm.size - 1, 1)} playing rank(s)", flush=True)
    started = time.monotonic()
    progress = Progress("evaluate", len(seeds), "episodes", "steps") if comm.is_root else None
    played = evaluate_tasks(comm, lambda: make_evaluator(cfg, env_name), dummy[None, :],
                            [(0, s) for s in seeds],
                            lambda ret, steps: progress.update(1, steps) if progress else None)
    if played is None:
        return None
    results, details = played
    seconds = time.monotonic() - started
    returns = results[:, 0]
    summary = {"name": name, "env": env_name, "where": "dream" if cfg.dream else "real",
               "temperature": cfg.temperature if cfg.dream else None, "params": cfg.params,
               "fast_env": cfg.fast_env,
               "controller": info.get("digest"),  # (which vector "best" named when this ran)
               "episodes": len(seeds), **summarize(returns), "steps_mean": float(results[:, 1].mean()),
               "seconds": round(seconds, 3), "ranks": comm.size, "seed": cfg.seed,
               "max_steps": cfg.max_steps, "doom_skill": skill, "seeds": seeds, "returns": returns.tolist(),
               "foresight": foresight.summarize(details)}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{name}.json", summary)

    def write_csv(f: Any) -> None:
        text = io.StringIO()
        writer = csv.writer(text)
        seen = ["died", "foreseen", "far_steps", "far_alarms"]  # (M's view of each episode, Doom)
        writer.writerow(["seed", "return", "steps", *seen])
        writer.writerows([s, f"{r:g}", int(n), *[(d or {}).get(k, "") for k in seen]] for s, r, n, d in
                         zip(seeds, returns, results[:, 1], details, strict=True))
        f.write(text.getvalue().encode())

    atomic_write(out / f"{name}.csv", write_csv)
    print(f"[evaluate] {name}: mean {summary['mean']:.1f} +- {summary['std']:.1f} over {len(seeds)} "
          f"episodes (min {summary['min']:.0f}, median {summary['median']:.0f}, max {summary['max']:.0f}) "
          f"in {seconds:.0f}s; {out / name}.json/.csv", flush=True)
    if summary["foresight"]:
        print(f"[evaluate] {name}: {foresight.describe(summary['foresight'])}", flush=True)
    return summary


def parse_config(argv: list[str] | None) -> EvaluateConfig:
    cfg, _ = cli.parse(EvaluateConfig, argv, "python -m wm.evaluate", __doc__ or "")
    validate_config(cfg)
    return cfg


def main(argv: list[str] | None = None) -> int:
    # (--np N: N playing ranks and rank 0, which hands out the episodes)
    return cli.run_mpi_stage("wm.evaluate", argv, parse_config, evaluate, coordinator=True)


if __name__ == "__main__":
    sys.exit(main())
