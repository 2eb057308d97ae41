"""The whole experiment as Slurm batch jobs, chained with afterok dependencies.

    python -m wm.submit --run /shared/runs/doom --env doom --preset paper --ntasks 64 \\
        --partition compute --account myproject --time 4:00:00 --train-time 24:00:00

Submits one job per stage with sbatch (the templates in launch/slurm/: extraction and evaluation on
--ntasks MPI ranks, V / series / M as one process with a GPU where the cluster has them, else
data-parallel on CPU ranks (--model-tasks), ES training
on --ntasks ranks with --requeue and a signal before its time limit, then results and report),
each starting when the one it needs has finished well, and prints the job ids. Doom's rounds of
iterative training (--rounds, or the preset's) follow as a chain of jobs, one per step of a round
(play, series, M, ES, evaluations), and the report waits for the last. Stages whose outputs
are already complete are not submitted, so the same command after a failure submits what is left.
Nothing site-specific is built in: partition, account, QOS, time, nodes and tasks are flags, and
--sbatch-arg='...' passes anything else. Job logs go to RUN/slurm/, the job ids to RUN/slurm/jobs.json.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wm.core import cli
from wm.core.cli import arg
from wm.core.config import (
    DOOM_SKILL_HELP,
    FAST_ENV_HELP,
    PRESET_NAMES,
    RNNTrainConfig,
    VAETrainConfig,
    preset_values,
)
from wm.core.errors import WMError
from wm.data.files import write_json
from wm.envs.games import ENV_NAMES, check_fast, check_skill
from wm.orchestration.pipeline import PipelineConfig, pipeline_preset, stages

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "launch" / "slurm"
# The stage (or stages) each job needs to have finished well; random needs only the recorded data.
NEEDS = {"extract": [], "vae": ["extract"], "series": ["vae"], "rnn": ["series"], "train": ["rnn"],
         "evaluate": ["train"], "evaluate-fast": ["train"], "random": ["extract"]}
REPORT_NEEDS = ("evaluate", "evaluate-fast", "random")
MPI_STAGES = ("extract", "train", "evaluate", "evaluate-fast", "random")
GPU_STAGES = ("vae", "series", "rnn")
# Iterative training's steps (wm.orchestration.rounds), by module: the template that runs each.
ROUND_TEMPLATES = {"wm.play": "play", "wm.series": "series", "wm.rnn_train": "rnn", "wm.train": "train",
                   "wm.evaluate": "evaluate"}


@dataclass
class SubmitConfig:
    """Submit every stage of an experiment to Slurm, chained with job dependencies."""

    run: str | None = arg(None, "run directory, on a file system every node sees", required=True)
    env: str = arg("doom", "environment", choices=ENV_NAMES)
    preset: str = arg("small", "preset of every stage", choices=PRESET_NAMES)
    ntasks: int = arg(0, "MPI ranks of extraction, ES training and evaluation (required; ES and "
                      "evaluation: rank 0 coordinates, the others play)")
    nodes: str = arg("", "nodes of the MPI jobs, e.g. 4 or 2-4 (default: Slurm's choice)")
    partition: str = arg("", "partition of every job (default: the cluster's default)")
    account: str = arg("", "account to charge")
    qos: str = arg("", "quality of service")
    time: str = arg("", "time limit of every job but ES training, e.g. 2:00:00 (default: the partition's)")
    train_time: str = arg("", "time limit of each ES training job; it requeues itself until done "
                          "(default: --time)")
    gpus: str = arg("auto", "GPUs for V, series and M: auto (one if sinfo lists a GPU), 0, or a number")
    cpus: int = arg(0, "V, series and M without a GPU: one process of this many threads "
                    "(--cpus-per-task) instead of data-parallel ranks (0: ranks, see --model-tasks)")
    model_tasks: int = arg(0, "V, series and M without a GPU: data-parallel CPU ranks (0: --ntasks, at "
                           "most the rows of V's and M's batches, which the ranks split)")
    train_args: str = arg("", "extra flags for wm.train, e.g. --train-args='--generations 500'")
    eval_episodes: int = arg(100, "episodes of the final evaluation and of the random baseline")
    doom_skill: int | None = arg(None, DOOM_SKILL_HELP)
    rounds: int | None = arg(None, "Doom: rounds of iterative training after the first controller, each "
                             "a chain of jobs (default: the preset's; see wm.pipeline --rounds)")
    fast_env: bool = arg(False, FAST_ENV_HELP + "; for extraction and training, not the final evaluation")
    sbatch_arg: str = arg("", "more sbatch flags for every job, e.g. --sbatch-arg='--mail-type=END'")
    sbatch: str = arg("sbatch", "the sbatch command")
    dry_run: bool = arg(False, "print the sbatch commands without submitting")


@dataclass
class Job:
    """One batch job: its stage, template, the stage's arguments and its sbatch flags."""

    name: str
    template: Path
    args: list[str]
    flags: list[str]
    needs: list[str]  # the jobs that must have finished well first (those still to run)


def gpu_count(cfg: SubmitConfig) -> int:
    """GPUs per V/M job: as asked, or for auto, one when any node of the cluster has a GPU."""
    if cfg.gpus != "auto":
        return int(cfg.gpus)
    sinfo = shutil.which("sinfo")
    if sinfo is None:
        return 0
    listed = subprocess.run([sinfo, "-h", "-o", "%G"], capture_output=True, text=True).stdout
    return 1 if "gpu" in listed.lower() else 0


def batch_rows(env: str, preset: str) -> int:
    """The rows of the smaller of V's and M's batches in this preset: the most ranks that can split
    them (wm.rnn_train refuses more)."""
    sizes = []
    for stage, cls in (("vae", VAETrainConfig), ("rnn", RNNTrainConfig)):
        default = next(f.default for f in dataclasses.fields(cls) if f.name == "batch_size")
        sizes.append(int(preset_values(stage, env, preset).get("batch_size", default)))
    return min(sizes)


def plan(cfg: SubmitConfig) -> list[Job]:
    """The jobs still to run, in order, with their resources (dependencies are added at submission)."""
    run = Path(cfg.run)
    pipeline = PipelineConfig(run=str(run), env=cfg.env, preset=cfg.preset, np=cfg.ntasks,
                              eval_episodes=cfg.eval_episodes, doom_skill=cfg.doom_skill,
                              rounds=cfg.rounds, fast_env=cfg.fast_env)
    site = [f"--{flag}={value}" for flag, value in (("partition", cfg.partition), ("account", cfg.account),
                                                     ("qos", cfg.qos)) if value]
    site += shlex.split(cfg.sbatch_arg)
    gpus = gpu_count(cfg)
    model_ranks = cfg.model_tasks or min(cfg.ntasks, batch_rows(cfg.env, cfg.preset))

    def flags(template: str) -> list[str]:
        limit = cfg.train_time or cfg.time if template == "train" else cfg.time
        more = [f"--time={limit}"] if limit else []
        if template in (*MPI_STAGES, "play"):
            more += [f"--ntasks={cfg.ntasks}"] + ([f"--nodes={cfg.nodes}"] if cfg.nodes else [])
        elif template != "round":  # (V, series, M: a GPU where there is one, else CPU ranks or threads)
            more += [f"--gpus={gpus}"] if gpus else []
            more += [f"--cpus-per-task={cfg.cpus}"] if cfg.cpus else []
            if not gpus and not cfg.cpus:
                more += [f"--ntasks={model_ranks}"]
        return site + more

    jobs = []
    for stage in stages(pipeline):
        args = list(stage.args)
        if stage.name == "train" and cfg.train_args:
            args += shlex.split(cfg.train_args)
        elif stage.done():
            continue
        template = "evaluate" if stage.name in ("random", "evaluate-fast") else stage.name
        jobs.append(Job(stage.name, TEMPLATES / f"{template}.sbatch", args, flags(template),
                        NEEDS[stage.name]))
    # The first round plays round 0's best controller: after its training and evaluations. The
    # report comes after the evaluations, or after the last round.
    planned = [job.name for job in jobs]
    rounds = round_jobs(pipeline, flags, [n for n in planned if n in ("train", *REPORT_NEEDS)])
    last = [rounds[-1].name] if rounds else [n for n in planned if n in REPORT_NEEDS]
    jobs += rounds
    jobs.append(Job("report", TEMPLATES / "report.sbatch", ["--run", str(run)], site + (
        [f"--time={cfg.time}"] if cfg.time else []), last))
    return jobs


def round_jobs(pipeline: PipelineConfig, flags: Any, first_needs: list[str]) -> list[Job]:
    """Iterative training's steps, one job each, every one after the one before (the rounds' steps
    are tested for completeness when they start, not here: a round's inputs are made by the one before)."""
    from wm.orchestration.rounds import RoundSettings, round_complete, round_stages

    settings = RoundSettings.of(pipeline)
    jobs: list[Job] = []
    needs = first_needs
    for round_ in range(1, settings.rounds + 1):
        if round_complete(Path(pipeline.run), round_):
            continue
        for stage in round_stages(pipeline, settings, round_, pipeline.np):
            template = ROUND_TEMPLATES[stage.module]
            name = stage.name.replace(" ", "-")  # e.g. round-1-play
            jobs.append(Job(name, TEMPLATES / f"{template}.sbatch", stage.args, flags(template), needs))
            needs = [name]
        # A last small job marks the round complete, so a later submission skips it whole.
        mark = ["--run", pipeline.run, "--env", pipeline.env, "--preset", pipeline.preset, "--eval-episodes",
                str(pipeline.eval_episodes), "--mark", str(round_)]
        if pipeline.rounds is not None:
            mark += ["--rounds", str(pipeline.rounds)]
        jobs.append(Job(f"round-{round_}-mark", TEMPLATES / "round.sbatch", mark, flags("round"), needs))
        needs = [f"round-{round_}-mark"]
    return jobs


def _environment() -> str:
    """The virtual environment the jobs activate: this one, else the project's .venv."""
    if sys.prefix != sys.base_prefix:
        return sys.prefix
    return str(ROOT / ".venv")


def sbatch_command(cfg: SubmitConfig, job: Job, depends_on: list[str]) -> list[str]:
    run = Path(cfg.run)
    command = [cfg.sbatch, "--parsable", f"--job-name=wm-{job.name}", f"--output={run}/slurm/%x-%j.out",
               f"--chdir={ROOT}", f"--export=ALL,WM_ROOT={ROOT},WM_VENV={_environment()}", *job.flags]
    if depends_on:
        # kill_invalid_depend: a job whose dependency failed is cancelled, not left pending forever.
        command += [f"--dependency=afterok:{':'.join(depends_on)}", "--kill-on-invalid-dep=yes"]
    return [*command, str(job.template), *job.args]


def submit(cfg: SubmitConfig) -> dict[str, str]:
    """Submit the jobs; returns {stage: job id} (``dry-N`` ids for a dry run)."""
    run = Path(cfg.run)
    if "," in str(run) or "," in str(ROOT) or "," in _environment():
        raise WMError("the run, project and environment paths may not hold a comma (sbatch --export "
                      "splits on commas)")
    if not cfg.dry_run and shutil.which(cfg.sbatch) is None:
        raise WMError(f"no {cfg.sbatch} on PATH: run this on a Slurm login node (or pass --sbatch)")
    if not cfg.dry_run and not (Path(_environment()) / "bin" / "activate").is_file():
        raise WMError(f"no virtual environment at {_environment()}: run `bash launch/venv.bash` first")
    (run / "slurm").mkdir(parents=True, exist_ok=True)
    ids: dict[str, str] = {}
    for n, job in enumerate(plan(cfg), 1):
        depends_on = [ids[need] for need in job.needs if need in ids]
        command = sbatch_command(cfg, job, depends_on)
        if cfg.dry_run:
            ids[job.name] = f"dry-{n}"
            print(shlex.join(command), flush=True)
            continue
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            why = " / ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
            raise WMError(f"sbatch refused the {job.name} job ({why or f'exit {done.returncode}'}); "
                          f"jobs already submitted: {ids or 'none'}")
        ids[job.name] = done.stdout.strip().split(";")[0]  # --parsable: "id" or "id;cluster"
        after = f" after {', '.join(depends_on)}" if depends_on else ""
        print(f"[submit] {job.name:8s} job {ids[job.name]}{after}", flush=True)
    if not cfg.dry_run:
        write_json(run / "slurm" / "jobs.json", ids)
        print(f"[submit] {len(ids)} jobs; logs in {run / 'slurm'}; follow with: squeue --me", flush=True)
    return ids


def main(argv: list[str] | None = None) -> int:
    def parse() -> SubmitConfig:
        cfg, _ = cli.parse(SubmitConfig, argv, "python -m wm.submit", __doc__ or "", pipeline_preset)
        if cfg.ntasks < 2:
            raise WMError("--ntasks must be at least 2 (rank 0 coordinates the ES, the others play)")
        if cfg.gpus != "auto" and not cfg.gpus.isdigit():
            raise WMError(f"--gpus must be auto or a number, got {cfg.gpus!r}")
        if cfg.cpus < 0 or cfg.model_tasks < 0 or cfg.eval_episodes < 1:
            raise WMError("--cpus and --model-tasks must be >= 0 and --eval-episodes >= 1")
        check_skill(cfg.env, cfg.doom_skill)
        check_fast(cfg.env, cfg.fast_env)
        if (cfg.rounds or 0) < 0:
            raise WMError("--rounds must be >= 0")
        from wm.orchestration.rounds import RoundSettings

        RoundSettings.of(PipelineConfig(run=cfg.run, env=cfg.env, preset=cfg.preset, rounds=cfg.rounds))
        cfg.run = os.path.abspath(cfg.run)  # jobs start in the project directory, not here
        return cfg

    return cli.run_stage("submit", parse, submit)


if __name__ == "__main__":
    sys.exit(main())
