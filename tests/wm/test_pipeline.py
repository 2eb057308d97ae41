"""The pipeline's own parts: stage completeness, signals reaching the stage it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import ROOT, stage_env
from wm.orchestration.pipeline import PipelineConfig, stages


def test_no_stage_of_an_empty_run_is_complete(tmp_path):
    todo = stages(PipelineConfig(run=str(tmp_path / "r"), env="doom", preset="tiny", np=2, eval_episodes=3))
    assert [s.name for s in todo] == ["extract", "vae", "series", "rnn", "train", "evaluate", "random"]
    assert not any(s.done() for s in todo)
    assert [s.ranks for s in todo] == [2, 0, 0, 0, 3, 3, 3]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_pipeline_reaches_the_running_stage(tmp_path, signum):
    marker = tmp_path / "stopped"
    # A stand-in stage that, like the real ones, tidies up on SIGTERM / SIGINT and exits 130.
    stage = textwrap.dedent(f"""
        import signal, sys, time
        def stop(signum, frame):
            open({str(marker)!r}, "w").write(str(signum))
            sys.exit(130)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        print("ready", flush=True)
        time.sleep(60)
    """)
    driver = textwrap.dedent(f"""
        import os, sys
        from wm.orchestration.pipeline import run_forwarding_signals
        try:
            run_forwarding_signals([sys.executable, "-c", {stage!r}], dict(os.environ))
        except KeyboardInterrupt:
            print("pipeline stopped", flush=True)
            sys.exit(130)
    """)
    process = subprocess.Popen([sys.executable, "-c", driver], cwd=ROOT, env=stage_env(),
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    os.kill(process.pid, signum)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 130 and "pipeline stopped" in out
    assert marker.read_text() == str(int(signum))
