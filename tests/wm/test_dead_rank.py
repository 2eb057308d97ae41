"""A worker rank killed with SIGKILL under a real ``mpirun -n 3`` ends the whole job within 30 s, for
every MPI stage and both envs; no game engine outlives it; the training's checkpoint still continues.
And status.json says how training ended: finished, interrupted, failed (with the error), or, read
through ``read_status``, "died" where a job vanished while it said "running".

ViZDoom's engine is a child process of its rank: before wm.envs.engine_watchdog, a killed rank's engine
lived on holding the rank's stderr, and mpirun waited for it for minutes.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from es.launch import mpirun_command
from tests.conftest import ROOT, stage_env
from wm.core.errors import WMError
from wm.data.record import list_episodes, read_episode
from wm.data.rundir import locked, read_status
from wm.stages import rnn_train, train

pytestmark = pytest.mark.slow

JOB_END_S = 30  # what the issue allows from the SIGKILL to mpirun's exit
START_S = 120  # for the job to get going (3 ranks importing torch on 2 cores)
DOOM_REAL = ["--no-dream", "--max-steps", "30"]
TRAIN = ["--preset", "quick", "--popsize", "4", "--num-episode", "1", "--generations", "1000", "--eval-every",
         "0"]

JOB_MARK = "WM_TEST_DEAD_RANK_JOB"  # in the job's environment, so its processes can be told apart


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the name (state, ppid, ...), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def job_processes(mark: str) -> dict[int, set[bytes]]:
    """Every live process (zombies waiting for init to reap them are dead) that inherited the job's
    environment: ranks, their engines and watchdogs, whatever became of their parents. pid ->
    its environment's entries."""
    found = {}
    for entry in os.listdir("/proc"):
        stat = _stat(int(entry)) if entry.isdigit() else None
        if not stat or stat[0] == "Z":
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = set(f.read().split(b"\0"))
        except OSError:
            continue
        if f"{JOB_MARK}={mark}".encode() in environ:
            found[int(entry)] = environ
    return found


def rank_pid(job: dict[int, set[bytes]], rank: int) -> int | None:
    """The Python process of MPI rank ``rank`` among a job's processes."""
    return next((pid for pid, environ in job.items() if _name(pid).startswith("python")
                 and f"OMPI_COMM_WORLD_RANK={rank}".encode() in environ), None)


def has_engine(job: dict[int, set[bytes]], pid: int) -> bool:
    """Whether ``pid`` has started its ViZDoom engine."""
    return any(_name(p) == "vizdoom" and (_stat(p) or ["", ""])[1] == str(pid) for p in job)


def engine_files(job: dict[int, set[bytes]]) -> list[str]:
    """The shared-memory files of the job's engines now (named after their instance ids)."""
    found = []
    for pid in job:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode().split("\0")
            found += glob.glob(f"/dev/shm/ViZDoom*{args[args.index('+viz_instance_id') + 1]}")
        except (OSError, ValueError, IndexError):  # (gone, or not an engine that far yet)
            continue
    return found


def kill_a_rank(tmp_path: Path, args: list[str], ready: Callable[[], bool], engines: bool,
                rank: int = 1, its_engine: bool = False) -> float:
    """Start ``mpirun -n 3 python -m ARGS``; once ``ready()`` (and rank 1 has its engine where
    ``engines``), SIGKILL ``rank`` (or only its game engine). Returns the seconds until mpirun
    exited; checks that no process of the job is left."""
    log, mark = tmp_path / "job.log", f"{os.getpid()}-{time.monotonic_ns()}"
    with open(log, "w") as out:
        proc = subprocess.Popen([*mpirun_command(3), sys.executable, "-m", *args], cwd=ROOT,
                                env={**stage_env(), JOB_MARK: mark}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + START_S
        worker = victim = None
        while time.monotonic() < deadline and proc.poll() is None:
            job = job_processes(mark)
            worker, victim = rank_pid(job, 1), rank_pid(job, rank)
            if worker and victim and ready() and (not engines or has_engine(job, worker)):
                break
            time.sleep(0.1)
        assert proc.poll() is None and victim, f"the job did not get going:\n{log.read_text()[-3000:]}"
        if its_engine:
            engine = [p for p in job if _name(p) == "vizdoom" and (_stat(p) or [""] * 2)[1] == str(victim)]
            victim = engine[0]
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        try:
            proc.wait(timeout=JOB_END_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"mpirun still runs {JOB_END_S} s after rank {rank}'s SIGKILL; its processes: "
                        f"{[(p, _name(p)) for p in job_processes(mark)]}")
        seconds = time.monotonic() - killed
        print(f"[{args[0]}] SIGKILL of rank {rank} -> mpirun exit: {seconds:.2f} s")
        assert proc.returncode != 0
        deadline = time.monotonic() + 5  # (a watchdog may still be removing the engine's files)
        while job_processes(mark) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [(p, _name(p)) for p in job_processes(mark)], "processes of the job outlived it"
        return seconds
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in job_processes(mark):  # (only what this test started)
            os.kill(pid, signal.SIGKILL)


def history_rows(out: Path) -> int:
    path = out / "history.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def check_training_continues(run: Path) -> None:
    """After the kill: status.json does not say "running", and the checkpoint continues a generation."""
    out = run / "es"
    assert read_status(out)["state"] in ("interrupted", "died")
    done = history_rows(out)
    assert train.main(["--run", str(run), "--generations", str(done + 1)]) == 0
    assert history_rows(out) == done + 1
    status = read_status(out)
    assert status["state"] == "finished" and status["generation"] == done + 1


@pytest.fixture(scope="module")
def carracing_m_run(carracing_series_run, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("carracing-m") / "run"
    shutil.copytree(carracing_series_run, run)
    assert rnn_train.main(["--run", str(run), "--epochs", "1", "--steps-per-epoch", "1", "--hidden-size", "8",
                           "--batch-size", "2", "--seq-len", "10", "--threads", "1", "--log-every", "0"]) == 0
    return run


@pytest.mark.parametrize("where", ["doom", "dream", "carracing"])
def test_a_killed_worker_ends_training_and_the_checkpoint_continues(
        where, doom_m_run, carracing_m_run, copy_run, tmp_path):
    run = copy_run(carracing_m_run if where == "carracing" else doom_m_run)
    extra = {"doom": DOOM_REAL, "dream": ["--dream", "--max-steps", "30"], "carracing": ["--max-steps", "5"]}
    kill_a_rank(tmp_path, ["wm.train", "--run", str(run), *TRAIN, *extra[where]],
                ready=lambda: history_rows(run / "es") >= 1, engines=where == "doom")
    check_training_continues(run)


def test_a_killed_master_leaves_a_status_that_reads_as_died(doom_m_run, copy_run, tmp_path):
    run = copy_run(doom_m_run)
    kill_a_rank(tmp_path, ["wm.train", "--run", str(run), *TRAIN, *DOOM_REAL],
                ready=lambda: history_rows(run / "es") >= 1, engines=True, rank=0)
    assert json.loads((run / "es" / "status.json").read_text())["state"] == "running"  # (it had no say)
    assert read_status(run / "es")["state"] == "died"
    check_training_continues(run)


def test_a_worker_whose_engine_dies_ends_the_job_and_the_status_says_failed(doom_m_run, copy_run, tmp_path):
    run = copy_run(doom_m_run)
    kill_a_rank(tmp_path, ["wm.train", "--run", str(run), *TRAIN, *DOOM_REAL],
                ready=lambda: history_rows(run / "es") >= 1, engines=True, its_engine=True)
    status = read_status(run / "es")  # (not "interrupted", which a batch script would requeue)
    assert status["state"] == "failed" and status["rank"] == 1, status
    assert "the ViZDoom engine process exited unexpectedly" in status["error"]


def test_a_killed_worker_ends_extraction_and_the_episodes_are_whole(tmp_path):
    run = tmp_path / "run"
    kill_a_rank(tmp_path, ["wm.extract", "--run", str(run), "--env", "doom", "--episodes", "500",
                           "--log-every", "0"],
                ready=lambda: len(list_episodes(run / "record")) >= 2, engines=True)
    for path in list_episodes(run / "record"):
        read_episode(path)


def test_a_killed_worker_ends_evaluation(doom_es_run, copy_run, tmp_path):
    run = copy_run(doom_es_run)
    started = tmp_path / "job.log"
    kill_a_rank(tmp_path, ["wm.evaluate", "--run", str(run), "--episodes", "500"],
                ready=lambda: "[evaluate] doom real env" in started.read_text(), engines=True)
    assert not (run / "eval" / "real.json").exists()


def test_a_killed_process_takes_its_engine_and_its_files_along():
    import vizdoom as vzd

    script = ("import time\nfrom wm.envs.games import DoomTakeCoverEnv\nenv = DoomTakeCoverEnv(20)\n"
              "env.reset(seed=1)\nprint(env._settings_dir, flush=True)\ntime.sleep(60)")
    mark = f"{os.getpid()}-{time.monotonic_ns()}"
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**stage_env(), JOB_MARK: mark},
                            stdout=subprocess.PIPE, text=True)
    try:
        settings = proc.stdout.readline().strip()
        engine = [p for p in job_processes(mark) if _name(p) == "vizdoom"]
        assert len(engine) == 1 and os.path.samefile(f"/proc/{engine[0]}/cwd", settings)
        shared = engine_files(job_processes(mark))
        assert len(shared) == 3  # (two message queues and the screen buffers)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 5
        while (job_processes(mark) or os.path.exists(settings)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not job_processes(mark) and not os.path.exists(settings)
        if hasattr(vzd.DoomGame, "get_instance_id"):  # (ViZDoom >= 1.3.1 tells which are the engine's)
            assert not [path for path in shared if os.path.exists(path)]
    finally:
        proc.kill()
        proc.wait()
        for pid in job_processes(mark):  # (only what this test started)
            os.kill(pid, signal.SIGKILL)


def test_closing_the_env_ends_its_watchdog_and_leaves_nothing():
    from wm.envs.games import DoomTakeCoverEnv

    env = DoomTakeCoverEnv(20)
    watchdog, settings = env._watchdog.pid, env._settings_dir
    env.reset(seed=1)
    env.close()
    assert _stat(watchdog) is None and not os.path.exists(settings)  # (reaped: not even a zombie)


def test_read_status_tells_a_dead_running_from_a_live_one(tmp_path):
    assert read_status(tmp_path) is None
    (tmp_path / "status.json").write_text(json.dumps({"finished": False, "state": "running"}))
    assert read_status(tmp_path)["state"] == "died"  # no lock file at all
    with locked(tmp_path):
        assert read_status(tmp_path) == {"finished": False, "state": "running"}
    assert read_status(tmp_path) == {"finished": False, "state": "died"}
    (tmp_path / "status.json").write_text(json.dumps({"finished": False, "state": "interrupted"}))
    assert read_status(tmp_path)["state"] == "interrupted"
    (tmp_path / "status.json").write_text("{")
    assert read_status(tmp_path) is None


def test_a_job_that_holds_the_lock_is_running_for_another_process(tmp_path):
    (tmp_path / "status.json").write_text(json.dumps({"finished": False, "state": "running"}))
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
                               "from wm.data.rundir import locked\nwith locked(Path(sys.argv[1])):\n"
                               "    print('held', flush=True); time.sleep(60)", str(tmp_path)],
                              cwd=ROOT, env=stage_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert read_status(tmp_path)["state"] == "running"
        with pytest.raises(WMError, match="in use by another job"):  # (reading it took nothing)
            with locked(tmp_path):
                pass
    finally:
        holder.kill()  # as SIGKILL: no chance to write anything
        holder.wait()
    assert read_status(tmp_path)["state"] == "died"


@pytest.mark.parametrize("error, line", [(RuntimeError("boom\nsecond line"), "RuntimeError: boom"),
                                         (WMError("the engine died"), "the engine died")])
def test_a_failed_training_says_failed_with_the_error(doom_m_run, copy_run, monkeypatch, error, line):
    run = copy_run(doom_m_run)

    def broken(cfg):
        raise error

    monkeypatch.setattr(train, "make_evaluator", broken)
    assert train.main(["--run", str(run), *TRAIN, "--dream", "--generations", "1"]) == 1
    status = read_status(run / "es")
    assert status == {"finished": False, "state": "failed", "error": line, "rank": 0, "generations": 1}
