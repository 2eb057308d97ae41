"""Stage 5: train C with an evolution strategy, over MPI ranks or in one process.

    mpirun -n 17 python -m wm.train --run runs/carracing --optimizer cma [--generations 100]

Rank 0 runs the strategy (CMA-ES, PEPG, OpenES or a GA) and hands out (candidate, episode) tasks;
ranks 1..N-1 each load V and M once (CPU, one thread) and play episodes in the real env with the
candidate controller. Writes RUN/es/: checkpoint.npz (after every generation; running the same
command again continues from it, raising --generations extends a run), history.csv and
history.jsonl (one row per generation), TensorBoard scalars, best.json: the best evaluated mean
parameters with their score (the mean is evaluated every --eval-every generations on
--eval-episodes fresh episodes), and status.json: "state" running, then finished ({"finished": true}
once all generations are done), interrupted, or failed (with the error line); a job killed outright
cannot say so, and wm.data.rundir.read_status reports its stale "running" as "died".
SIGINT or SIGTERM (Ctrl-C, mpirun, a scheduler's time limit) stops every rank at once; the
checkpoint of the last finished generation is kept and status.json says "interrupted": run the
same command again to continue. Exit status: 0 done, 1 bad input or failure, 130 interrupted
(without mpirun; under mpirun, mpirun's own non-zero status).
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import math
import sys
from contextlib import ExitStack, suppress
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from es.base import MAX_POPSIZE
from es.checkpoint import CHECKPOINT_NAME, Checkpoints
from es.mpi import AllRanksError, Comm, single_thread
from es.strategies import Strategy, make_strategy
from es.trainer import ESSettings, Evaluate, GenerationRow, TrainerState, train
from wm.core import cli
from wm.core.config import MAX_EPISODES, TrainConfig, as_dict, parse_stage_config
from wm.core.errors import WMError, machine_error_line, naming
from wm.data.files import atomic_write, read_json, write_json
from wm.data.rundir import locked, make_stage_dir, run_doom_skill, save_stage_config
from wm.envs import early_stop
from wm.envs.games import ENVS, check_fast
from wm.models.controller import ControllerSpec, params_digest, spec_for
from wm.models.weights import load_world_model, rnn_weights, world_model_digests
from wm.stages import signal_check

ES_DIR = "es"


def validate_config(cfg: TrainConfig) -> None:
    """One clear error for values no training can run with."""
    for name in ("generations", "popsize", "num_episode", "eval_episodes"):
        value = getattr(cfg, name)
        if value is None or value < 1:
            raise WMError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not 2 <= cfg.popsize <= MAX_POPSIZE:  # (an absurd one would stall inside pycma for minutes)
        raise WMError(f"--popsize must be 2 to {MAX_POPSIZE:,} (the paper's: 64), got {cfg.popsize:,}")
    if cfg.popsize * cfg.num_episode > MAX_EPISODES or cfg.eval_episodes > MAX_EPISODES:
        raise WMError(f"--popsize x --num-episode and --eval-episodes must be at most {MAX_EPISODES:,} "
                      f"episodes (the paper's: 64 x 16 and 1,024), got {cfg.popsize * cfg.num_episode:,} "
                      f"and {cfg.eval_episodes:,}")
    if cfg.eval_every is None or cfg.eval_every < 0:
        raise WMError(f"--eval-every must be >= 0, got {cfg.eval_every}")
    if not math.isfinite(cfg.sigma_init) or cfg.sigma_init <= 0:
        raise WMError(f"--sigma-init must be a positive number, got {cfg.sigma_init}")
    if cfg.envs_per_worker < 1:
        raise WMError(f"--envs-per-worker must be at least 1, got {cfg.envs_per_worker}")
    if cfg.max_steps < 0 or cfg.seed < 0:
        raise WMError("--max-steps and --seed must be >= 0")
    if not math.isfinite(cfg.temperature) or cfg.temperature <= 0:
        raise WMError(f"--temperature must be a number > 0, got {cfg.temperature}")
    if cfg.dream_batch < 1:
        raise WMError(f"--dream-batch must be at least 1, got {cfg.dream_batch}")
    out = Path(cfg.out)
    if out.is_absolute() or ".." in out.parts or not out.parts:
        raise WMError(f"--out must be a directory inside the run, got {cfg.out!r}")
    if cfg.off_track_stop < 0:
        raise WMError(f"--off-track-stop must be >= 0 (0: off), got {cfg.off_track_stop}")
    if cfg.off_track_stop and (cfg.dream or ENVS[cfg.env].idle_reward is None):
        raise WMError(f"--off-track-stop needs the real CarRacing env; this run is "
                      f"{'in the dream' if cfg.dream else cfg.env}")
    if cfg.dream and cfg.env != "doom":
        raise WMError(f"--dream needs the Doom TakeCover pipeline (--env doom); this run is {cfg.env}")
    check_fast(cfg.env, cfg.fast_env)


def controller_spec(run: str) -> ControllerSpec:
    """C's shape from M's stored config (without loading M's weights)."""
    config = rnn_weights(run)["config"]
    return spec_for(config["z_size"], config["hidden_size"], config["action_size"], config["with_done"])


class LockstepEvaluate:
    """The trainer's batch evaluator over :class:`wm.envs.rollout.LockstepAgent`."""

    def __init__(self, lockstep: Any):
        self.lockstep, self.slots = lockstep, len(lockstep.envs)

    def run(self, next_job: Any) -> Any:
        for key, result in self.lockstep.run(next_job):
            yield key, result.outcome()


def make_evaluator(cfg: TrainConfig, doom_skill: int | None = None) -> Evaluate | Any:
    """On a worker: V, M and the env(s), loaded once; returns ``evaluate(params, seed)``, or a
    batch evaluator when ``--envs-per-worker`` is above 1 or with ``--dream`` (M alone). The real
    game is played at ``doom_skill``, else at the run's own (wm.evaluate compares skills)."""
    single_thread()
    if cfg.dream:
        from wm.envs.dream import DOOM_MAX_STEPS, DreamEvaluate

        return DreamEvaluate.from_run(cfg.run, cfg.temperature, cfg.dream_batch,
                                      cfg.max_steps or DOOM_MAX_STEPS)
    from wm.envs.games import make_env  # (workers only: the envs import pygame / ViZDoom)
    from wm.envs.rollout import LockstepAgent, WorldModelAgent

    vae, mdrnn = load_world_model(cfg.run)
    agent = WorldModelAgent(vae, mdrnn)
    idle_reward = ENVS[cfg.env].idle_reward
    skill = run_doom_skill(cfg.run, doom_skill)
    envs = [early_stop.wrap(make_env(cfg.env, cfg.max_steps or None, skill, cfg.fast_env), cfg.off_track_stop,
                            idle_reward) for _ in range(cfg.envs_per_worker)]
    for env in envs:
        atexit.register(env.close)  # (ViZDoom's engine process and settings directory)
    if len(envs) > 1:
        return LockstepEvaluate(LockstepAgent(agent, envs))
    env = envs[0]

    def evaluate(params: Any, seed: int) -> tuple[float, int, Any]:
        return agent.run_episode(env, params, seed).outcome()

    return evaluate


class TrainingLog:
    """history.csv, history.jsonl, TensorBoard, best.json and a progress line per generation."""

    def __init__(self, out: Path, total: int, dream: bool = False):
        self.out, self.total, self.dream = out, total, dream
        self._said_cause = False
        self._tb: Any = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            pass

    def __call__(self, row: GenerationRow, strategy: Strategy, state: TrainerState) -> None:
        values = asdict(row)
        # Rewritten from the checkpoint's history each time, so a resumed run never holds rows twice.
        fields = list(values)
        rows = state.history

        def write_csv(f: Any) -> None:
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
            f.write(text.getvalue().encode())

        atomic_write(self.out / "history.csv", write_csv)
        atomic_write(self.out / "history.jsonl",
                     lambda f: f.write("".join(json.dumps(r) + "\n" for r in rows).encode()))
        if self._tb is not None:
            with naming(self.out / "tensorboard"):  # (a full disk's error names the folder)
                for key, value in values.items():
                    if key != "generation" and value is not None:
                        self._tb.add_scalar(key, value, row.generation)
                self._tb.flush()
        if row.eval_score is not None and state.best_eval_generation == row.generation:
            # (only when this generation is the new best: best.json's time then says when it changed)
            write_json(self.out / "best.json", {"score": state.best_eval_score,
                                                "generation": state.best_eval_generation,
                                                "params": state.best_eval_params})
        evaluated = f" | eval {row.eval_score:.1f} (best {state.best_eval_score:.1f})" \
            if row.eval_score is not None else ""
        print(f"[train] gen {row.generation}/{self.total} | fitness mean {row.fitness_mean:.1f} "
              f"max {row.fitness_max:.1f} | sigma {row.sigma_rms:.4f} | steps {row.steps_mean:.0f} | "
              f"busy {row.busy_fraction:.0%} | {row.elapsed_s:.0f}s{evaluated}", flush=True)
        if signal_check.no_signal(values):
            # (the cause once; then a short reminder per generation, so it is never missed)
            why = "" if self._said_cause else f": {signal_check.cause(values, {'dream': self.dream})}"
            self._said_cause = True
            print(f"[train] gen {row.generation}: no signal, every candidate scored "
                  f"{row.fitness_max:.1f}{why}", flush=True)


def run_identity(cfg: TrainConfig) -> dict[str, Any]:
    """What a checkpoint must have been made with to be continued: env, strategy, weights."""
    spec = controller_spec(cfg.run)
    vae, rnn = world_model_digests(cfg.run)  # (refuses an M trained on another V)
    return {"env": cfg.env, "optimizer": cfg.optimizer, "popsize": cfg.popsize, "sigma_init": cfg.sigma_init,
            "num_params": spec.num_params, "vae": vae, "rnn": rnn, "max_steps": cfg.max_steps,
            "dream": cfg.dream, "temperature": cfg.temperature if cfg.dream else None,
            # (only when on / set, so checkpoints made before the option existed still continue)
            **({"off_track_stop": cfg.off_track_stop} if cfg.off_track_stop else {}),
            **({"fast_env": True} if cfg.fast_env else {}),
            **({"init_params": params_digest(initial_params(cfg))} if cfg.init_params else {}),
            **({"doom_skill": skill} if (skill := run_doom_skill(cfg.run)) is not None else {})}


def initial_params(cfg: TrainConfig) -> np.ndarray | None:
    """``--init-params``: the strategy's starting mean (x0), checked against C's shape; None: zeros."""
    if not cfg.init_params:
        return None
    from wm.stages.evaluate import load_controller

    if not Path(cfg.init_params).is_file():
        raise WMError(f"--init-params {cfg.init_params}: no such file")
    params = load_controller(cfg.run, cfg.init_params)
    needed = controller_spec(cfg.run).num_params
    if params.size != needed:
        raise WMError(f"--init-params {cfg.init_params}: {params.size} parameters, but this run's C has "
                      f"{needed}")
    return params


def error_line(err: BaseException) -> str:
    """The one line status.json keeps of a failure: a user's error as said, a bug with its type."""
    if isinstance(err, (WMError, AllRanksError)):
        return str(err)
    return machine_error_line(err) or f"{type(err).__name__}: {err}".splitlines()[0]


def train_controller(cfg: TrainConfig, comm: Comm) -> None:
    """Run the ES on every rank (rank 0 coordinates); RUN/es/status.json says how it ended."""
    out = Path(cfg.run) / cfg.out
    status = out / "status.json"  # what a batch script reads to decide whether to requeue the job
    with ExitStack() as stack:

        def set_up() -> dict[str, Any]:  # rank 0; an error here ends every rank with one line
            identity = run_identity(cfg)
            if cfg.dream:
                from wm.envs.dream import check_dream_inputs

                check_dream_inputs(cfg.run)
            make_stage_dir(cfg.run, cfg.out)
            stack.enter_context(locked(out))  # held until the end of the stage
            save_stage_config(cfg.run, "train" if cfg.out == ES_DIR else f"train:{cfg.out}", as_dict(cfg), ())
            write_json(status, {"finished": False, "state": "running", "generations": cfg.generations})
            where = (f"M's dream at temperature {cfg.temperature:g}" if cfg.dream
                     else f"the real {cfg.env} env")
            print(f"[train] in {where}: {cfg.optimizer}, {identity['num_params']} parameters, population "
                  f"{cfg.popsize} x {cfg.num_episode} episodes, {comm.size - 1 or 1} evaluating rank(s)"
                  + (f", the mean starting from {cfg.init_params}" if cfg.init_params else ""), flush=True)
            return {"identity": identity, "x0": initial_params(cfg)}

        started = comm.on_root(set_up, (WMError,))
        identity, x0 = started["identity"], started["x0"]
        settings = ESSettings(generations=cfg.generations, num_episode=cfg.num_episode,
                              eval_every=cfg.eval_every, eval_episodes=cfg.eval_episodes, seed=cfg.seed,
                              shared_seeds=cfg.shared_seeds)
        try:
            state = train(
                comm,
                make_strategy=lambda: make_strategy(cfg.optimizer, identity["num_params"], cfg.popsize,
                                                    cfg.seed, sigma_init=cfg.sigma_init, x0=x0),
                make_evaluate=lambda: make_evaluator(cfg),
                settings=settings,
                checkpoints=Checkpoints(out / CHECKPOINT_NAME, atomic_write),
                identity=identity, force=cfg.force,
                on_row=TrainingLog(out, cfg.generations, cfg.dream) if comm.is_root else lambda *a: None,
            )
        except KeyboardInterrupt as stop:
            # A failing worker aborts the job, and mpirun then stops rank 0 with SIGTERM: the
            # worker's "failed" (written before its abort) is what happened, not this interruption.
            if comm.is_root and (read_json(status) or {}).get("state") != "failed":
                write_json(status, {"finished": False, "state": "interrupted", "signal": str(stop),
                                    "generations": cfg.generations})
            raise
        except Exception as err:  # run_ranks reports it; status.json says so too, from any rank
            if comm.is_root or not isinstance(err, AllRanksError):
                with suppress(OSError):  # (never hide the error itself behind a failed write)
                    write_json(status, {"finished": False, "state": "failed", "error": error_line(err),
                                        "rank": comm.rank, "generations": cfg.generations})
            raise
    if state is not None:
        write_json(status, {"finished": True, "state": "finished", "generation": state.generation,
                            "generations": cfg.generations})
        best = (f"best evaluated score {state.best_eval_score:.1f}" if state.best_eval_params
                else "no evaluation yet")
        print(f"[train] done: {state.generation} generations; {best}; outputs in {out}", flush=True)


def parse_config(argv: list[str] | None) -> TrainConfig:
    return parse_stage_config("train", TrainConfig, argv, "python -m wm.train", __doc__, validate_config)


def main(argv: list[str] | None = None) -> int:
    return cli.run_mpi_stage("wm.train", argv, parse_config, train_controller, coordinator=True)


if __name__ == "__main__":
    sys.exit(main())
