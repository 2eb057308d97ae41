"""wm.submit without a cluster: the jobs it would submit (--dry-run) and its refusals. The real
submission runs on a real Slurm in tests/launch/test_slurm.py."""

from __future__ import annotations

import re
import shlex

from wm.orchestration import submit


def dry_run(tmp_path, capsys, *flags: str) -> list[list[str]]:
    assert submit.main(["--run", str(tmp_path / "run"), "--env", "doom", "--preset", "tiny", "--dry-run",
                        *flags]) == 0
    return [shlex.split(line) for line in capsys.readouterr().out.splitlines()]


def flag(command: list[str], name: str) -> str | None:
    return next((word.split("=", 1)[1] for word in command if word.startswith(f"--{name}=")), None)


def test_every_stage_is_one_job_chained_by_what_it_needs(tmp_path, capsys):
    commands = dry_run(tmp_path, capsys, "--ntasks", "5", "--nodes", "2", "--partition", "cpu", "--account",
                       "proj", "--time", "1:00:00", "--train-time", "8:00:00", "--gpus", "1",
                       "--train-args=--generations 7", "--sbatch-arg=--mail-type=END")
    names = [flag(c, "job-name") for c in commands]
    assert names == [f"wm-{s}" for s in ("extract", "vae", "series", "rnn", "train", "evaluate", "random",
                                           "report")]
    jobs = dict(zip(names, commands, strict=True))
    assert all(c[0] == "sbatch" and "--parsable" in c and flag(c, "partition") == "cpu" and
               flag(c, "account") == "proj" and "--mail-type=END" in c for c in commands)
    # Dependencies: dry-run ids are dry-1 (extract) ... dry-7 (random), in submission order.
    assert flag(jobs["wm-extract"], "dependency") is None
    assert flag(jobs["wm-vae"], "dependency") == "afterok:dry-1"
    assert flag(jobs["wm-train"], "dependency") == "afterok:dry-4"
    assert flag(jobs["wm-random"], "dependency") == "afterok:dry-1"  # needs only the recorded data
    assert flag(jobs["wm-report"], "dependency") == "afterok:dry-6:dry-7"
    # Resources: MPI stages on --ntasks ranks over --nodes, V/series/M one process with the GPU.
    for name in ("extract", "train", "evaluate", "random"):
        assert flag(jobs[f"wm-{name}"], "ntasks") == "5" and flag(jobs[f"wm-{name}"], "nodes") == "2"
    for name in ("vae", "series", "rnn"):
        assert flag(jobs[f"wm-{name}"], "gpus") == "1" and flag(jobs[f"wm-{name}"], "ntasks") is None
    assert flag(jobs["wm-train"], "time") == "8:00:00" and flag(jobs["wm-vae"], "time") == "1:00:00"
    train = jobs["wm-train"]
    assert train[train.index(str(submit.TEMPLATES / "train.sbatch")) + 1:] == [
        "--run", str(tmp_path / "run"), "--preset", "tiny", "--generations", "7"]
    assert flag(train, "output") == f"{tmp_path / 'run'}/slurm/%x-%j.out"


def test_rounds_of_iterative_training_are_a_chain_of_jobs_before_the_report(tmp_path, capsys):
    commands = dry_run(tmp_path, capsys, "--ntasks", "3", "--rounds", "2", "--gpus", "0")
    jobs = {flag(c, "job-name"): (n, c) for n, c in enumerate(commands, 1)}
    steps = ("play", "series", "rnn", "train", "evaluate", "random", "mark")
    chain = [f"wm-round-{r}-{s}" for r in (1, 2) for s in steps]
    assert list(jobs)[7:] == [*chain, "wm-report"]
    assert len(chain) == 14
    # each step after the one before; the first after round 0's evaluations, the report after the last
    assert flag(jobs[chain[0]][1], "dependency") == "afterok:dry-5:dry-6:dry-7"  # (train, evaluations)
    for before, after in zip(chain, [*chain[1:], "wm-report"], strict=True):
        assert flag(jobs[after][1], "dependency") == f"afterok:dry-{jobs[before][0]}"
    play = jobs["wm-round-2-play"][1]
    assert play[play.index(str(submit.TEMPLATES / "play.sbatch")) + 1:][:5] == [
        "--run", str(tmp_path / "run"), "--round", "2", "--params"]
    assert flag(play, "ntasks") == "3" and flag(jobs["wm-round-1-rnn"][1], "ntasks") == "3"  # (no GPU)
    train = jobs["wm-round-1-train"][1]
    assert str(submit.TEMPLATES / "train.sbatch") in train and "--init-params" in train
    mark = jobs["wm-round-2-mark"][1]
    assert mark[mark.index(str(submit.TEMPLATES / "round.sbatch")) + 1:][-2:] == ["--rounds", "2"]
    assert flag(mark, "gpus") is None and flag(mark, "ntasks") is None
    # CarRacing has no dream to iterate in; its fast env reaches extraction and training only
    assert submit.main(["--run", str(tmp_path / "c"), "--env", "carracing", "--ntasks", "3", "--rounds", "1",
                        "--dry-run"]) == 2
    assert "needs M's dream" in capsys.readouterr().err
    fast = dry_run_env(tmp_path, capsys, "carracing", "--ntasks", "3", "--fast-env", "--gpus", "0")
    names = [flag(c, "job-name") for c in fast]
    assert {flag(c, "job-name") for c in fast if "--fast-env" in c} == {"wm-extract", "wm-train",
                                                                       "wm-evaluate-fast"}
    report = fast[names.index("wm-report")]  # (after the official and the fast evaluation and random)
    assert flag(report, "dependency") == "afterok:dry-6:dry-7:dry-8"


def test_without_a_gpu_v_series_and_m_run_on_cpu_ranks_or_threads(tmp_path, capsys):
    def model_flags(*flags: str) -> dict[str, tuple[str | None, str | None, str | None]]:
        jobs = {flag(c, "job-name"): c for c in dry_run(tmp_path, capsys, *flags)}
        return {n: (flag(jobs[f"wm-{n}"], "ntasks"), flag(jobs[f"wm-{n}"], "cpus-per-task"),
                    flag(jobs[f"wm-{n}"], "gpus")) for n in ("vae", "series", "rnn")}

    # data-parallel ranks: --ntasks, but no more than the rows of the tiny preset's M batch (8)
    assert set(model_flags("--ntasks", "5", "--gpus", "0").values()) == {("5", None, None)}
    assert set(model_flags("--ntasks", "64", "--gpus", "0").values()) == {("8", None, None)}
    assert submit.batch_rows("doom", "tiny") == 8 and submit.batch_rows("doom", "paper") == 100
    assert set(model_flags("--ntasks", "64", "--gpus", "0", "--model-tasks", "4").values()) == {
        ("4", None, None)}
    # one process: on threads (--cpus) or on a GPU
    assert set(model_flags("--ntasks", "5", "--gpus", "0", "--cpus", "16").values()) == {(None, "16", None)}
    assert set(model_flags("--ntasks", "5", "--gpus", "1").values()) == {(None, None, "1")}
    for stage in ("vae", "series", "rnn"):  # the templates start the ranks when the job has several tasks
        assert "wm_model_stage wm." in (submit.TEMPLATES / f"{stage}.sbatch").read_text()


def dry_run_env(tmp_path, capsys, env: str, *flags: str) -> list[list[str]]:
    assert submit.main(["--run", str(tmp_path / env), "--env", env, "--preset", "tiny", "--dry-run",
                        *flags]) == 0
    return [shlex.split(line) for line in capsys.readouterr().out.splitlines()]


def test_the_templates_request_requeue_and_the_time_limit_signal():
    train = (submit.TEMPLATES / "train.sbatch").read_text()
    assert "#SBATCH --requeue" in train and re.search(r"#SBATCH --signal=B:USR1@\d+", train)
    assert "scontrol requeue" in train and "#SBATCH --open-mode=append" in train
    for stage in ("extract", "vae", "series", "rnn", "train", "evaluate", "report", "play", "round"):
        text = (submit.TEMPLATES / f"{stage}.sbatch").read_text()
        assert text.startswith("#!/bin/bash") and "launch/slurm/common.bash" in text


def test_bad_submissions_are_one_line(tmp_path, capsys):
    for flags, message in ((["--ntasks", "1"], "--ntasks must be at least 2"),
                           (["--ntasks", "4", "--gpus", "many"], "--gpus must be auto or a number"),
                           (["--ntasks", "4", "--model-tasks", "-1"], "--model-tasks must be >= 0"),
                           (["--ntasks", "4", "--sbatch", "no-such-sbatch"], "no no-such-sbatch on PATH")):
        code = submit.main(["--run", str(tmp_path / "r"), *flags])
        err = capsys.readouterr().err
        assert code in (1, 2) and message in err and len(err.strip().splitlines()) <= 2, err
