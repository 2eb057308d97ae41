"""Ranks on two hosts (tests/launch/two_hosts.py: two network namespaces, TCP only, Open MPI's daemons
started through a namespace-entering agent instead of ssh): extraction, the ES trainer and
data-parallel V give what they give on one host."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, stage_env
from tests.launch.two_hosts import HostsUnavailable, TwoHosts
from wm.data.record import episode_path, read_episode

pytestmark = pytest.mark.slow

DREAM = ["--preset", "quick", "--dream", "--max-steps", "30", "--popsize", "4", "--num-episode", "1",
         "--generations", "2", "--eval-every", "1", "--eval-episodes", "2"]
V_ARGS = ["--fresh", "--epochs", "1", "--batch-size", "35", "--shuffle-episodes", "3", "--threads", "1",
          "--log-every", "0"]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    made = TwoHosts(tmp_path_factory.mktemp("two-hosts"))
    try:
        made.start()
    except HostsUnavailable as err:
        pytest.skip(f"cannot make two hosts on this machine: {err}")
    yield made
    made.stop()


def _on_hosts(hosts: TwoHosts, per_host: tuple[int, int], stage: str, *args: str):
    done = hosts.mpirun(per_host, ["-m", f"wm.{stage}", *args], cwd=ROOT, env=stage_env())
    assert done.returncode == 0, done.stdout + done.stderr
    # host b's daemon was started by the agent, entering host b (what ssh does on a cluster)
    assert "wmhost-b" in hosts.agent_log.read_text()
    return done


def test_extraction_on_two_hosts_is_one_process_extraction(hosts, tmp_path, run_stage):
    args = ["--env", "doom", "--episodes", "4", "--max-steps", "40", "--seed", "5", "--log-every", "100"]
    _on_hosts(hosts, (1, 1), "extract", "--run", str(tmp_path / "hosts"), *args)
    done = run_stage("extract", "--run", str(tmp_path / "solo"), *args)
    assert done.returncode == 0, done.stderr
    for i in range(4):
        a = read_episode(episode_path(tmp_path / "hosts" / "record", i))
        b = read_episode(episode_path(tmp_path / "solo" / "record", i))
        assert np.array_equal(a.obs, b.obs) and np.array_equal(a.action, b.action)
        assert np.array_equal(a.reward, b.reward) and np.array_equal(a.terminated, b.terminated)


def test_es_trainer_on_two_hosts_is_the_one_host_trainer(hosts, doom_m_run, copy_run, run_stage):
    across, local = copy_run(doom_m_run, "across"), copy_run(doom_m_run, "local")
    # rank 0 (the ES) on host a, its two workers on host b
    done = _on_hosts(hosts, (1, 2), "train", "--run", str(across), *DREAM)
    assert "2 evaluating rank(s)" in done.stdout and "gen 2/2" in done.stdout
    one = run_stage("train", "--run", str(local), *DREAM, ranks=3, timeout=300)
    assert one.returncode == 0, one.stdout + one.stderr
    timing = ("elapsed_s", "busy_fraction")  # (the rest is what the ES learned and played)
    rows = [[{k: v for k, v in json.loads(line).items() if k not in timing}
             for line in (run / "es" / "history.jsonl").read_text().splitlines()] for run in (across, local)]
    assert rows[0] == rows[1] and len(rows[0]) == 2
    best = [json.loads((run / "es" / "best.json").read_text()) for run in (across, local)]
    assert best[0]["params"] == best[1]["params"] and best[0]["score"] == best[1]["score"]


def _losses(run: Path) -> list[float]:
    with open(run / "vae" / "metrics.csv") as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def test_data_parallel_v_on_two_hosts_is_v_on_one_host(hosts, doom_series_run, copy_run, run_stage):
    across, local = copy_run(doom_series_run, "across"), copy_run(doom_series_run, "local")
    done = _on_hosts(hosts, (1, 1), "vae_train", "--run", str(across), *V_ARGS)
    # torch.distributed met at host a's address, over the veth pair
    assert f"at {hosts.address(0)}:" in done.stdout, done.stdout
    one = run_stage("vae_train", "--run", str(local), *V_ARGS, ranks=2)
    assert one.returncode == 0, one.stdout + one.stderr
    # the same two ranks, the same sums in the same order: the same floats
    assert _losses(across) == _losses(local) and len(_losses(local)) > 1
