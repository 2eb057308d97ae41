"""./wm.sh, the README's way to run a stage without activating the virtual environment."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, stage_env


def wm(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    # WM_VENV: the environment running the tests, so the launcher does not build another one.
    return subprocess.run([str(ROOT / "wm.sh"), *args], cwd=cwd, env={**stage_env(), "WM_VENV": sys.prefix},
                          capture_output=True, text=True, timeout=120)


def test_help_lists_the_stages():
    for args in ((), ("--help",)):
        done = wm(*args)
        assert done.returncode == 0, done.stderr
        stages = next(line for line in done.stdout.splitlines() if line.startswith("stages:")).split()[1:]
        assert {"evaluate", "pipeline", "extract", "train", "render", "report", "results"} <= set(stages)
        assert "cli" not in stages and "config" not in stages  # modules without a main are no stages


def test_an_unknown_stage_is_one_line_and_exit_2():
    done = wm("nosuchstage")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: no stage 'nosuchstage'; stages: ") and "evaluate" in done.stderr


def test_a_stage_runs_in_the_environment_from_any_directory(tmp_path):
    # A real stage through the venv: on a directory without config.json it refuses in one line.
    empty = tmp_path / "empty"
    empty.mkdir()
    done = wm("results", "--run", "empty", cwd=tmp_path)  # a relative path: the caller's directory
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "empty" in errors[0] and "config.json" in errors[0], done.stderr
    assert "Traceback" not in done.stderr and not any(empty.iterdir())
