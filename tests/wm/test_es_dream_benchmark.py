"""benchmarks/es_dream.py: strategies trained in one dream on the same budget, scored in the game."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_each_strategy_trains_in_the_dream_and_is_scored_on_the_same_real_games(doom_m_run, copy_run):
    run = copy_run(doom_m_run)
    command = [sys.executable, "benchmarks/es_dream.py", "--run", str(run), "--strategies", "cma", "snes",
               "--generations", "2", "--popsize", "4", "--num-episode", "1", "--eval-every", "1",
               "--eval-episodes", "2", "--episodes", "3", "--eval-seeds", "0", "1", "--max-steps", "30",
               "--np", "0"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    table = [line for line in done.stdout.splitlines() if line.startswith(("| cma |", "| snes |"))]
    assert len(table) == 2
    assert "snes - cma, paired over the same 6 games" in done.stdout
    assert (run / "es-compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    seeds = {}
    for name in ("cma", "snes"):
        assert json.loads((run / f"es-compare-{name}" / "best.json").read_text())["generation"] in (1, 2)
        for stem in (f"compare-{name}", f"compare-{name}-seed1"):
            real = json.loads((run / "eval" / f"{stem}.json").read_text())
            assert real["episodes"] == 3 and real["where"] == "real"
        seeds[name] = [json.loads((run / "eval" / f"{stem}.json").read_text())["seeds"]
                       for stem in (f"compare-{name}", f"compare-{name}-seed1")]
    assert seeds["cma"] == seeds["snes"]  # the same games for every strategy
    assert seeds["cma"][0] != seeds["cma"][1]  # and two different sets of them


def test_a_run_without_m_is_refused_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/es_dream.py", "--run", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0
    assert "no trained M there" in done.stderr
