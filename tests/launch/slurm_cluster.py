"""A real single-node Slurm on this machine for the tests: munge, slurmctld and slurmd started from
a configuration written into a temporary directory, stopped by their pids.

Installs Debian's slurm-wlm and munge with apt-get when they are missing (as root). Every path,
port, key and log lives in the given directory; the machine's own Slurm configuration, if any,
is not touched. Clients find the cluster through the SLURM_CONF of :attr:`SlurmCluster.env`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ["slurm-wlm", "munge"]
DAEMONS = ("slurmctld", "slurmd", "munged", "mungekey", "sbatch")


class SlurmUnavailable(Exception):
    """Slurm cannot be installed or started here (the tests that need it are skipped)."""


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


def install() -> None:
    """Install slurm-wlm and munge with apt-get unless they are already there."""
    if all(_which(d) for d in DAEMONS):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SlurmUnavailable("slurm-wlm and munge are not installed and cannot be (needs root and apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES], env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not all(_which(d) for d in DAEMONS):
        raise SlurmUnavailable(f"apt-get install {' '.join(PACKAGES)} failed: {done.stderr[-500:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SlurmCluster:
    """One node (this machine, ``cpus`` CPUs as Slurm sees them), one partition ``debug``."""

    directory: Path
    cpus: int = 8
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.directory / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, SLURM_CONF=str(self.conf),
                    PATH=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin")

    def _write_config(self) -> None:
        d, host = self.directory, socket.gethostname().split(".")[0]
        for sub in ("state", "spool", "log", "munge"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        lines = [
            "ClusterName=wmtest",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            # cred_expire also holds a requeued job back before it may start again (default 120 s,
            # so slurmd never meets a job whose old credential it revoked): shorter for the tests.
            f"AuthInfo=socket={d / 'munge' / 'munge.socket'},cred_expire=20",
            f"StateSaveLocation={d / 'state'}",
            f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'slurmctld.pid'}",
            f"SlurmdPidFile={d / 'slurmd.pid'}",
            f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={d / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            "ReturnToService=2",
            "SlurmdParameters=config_overrides",  # take the CPUs below, whatever the machine has
            "KillWait=10",
            "MinJobAge=600",  # finished jobs stay visible to scontrol for the test's checks
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=4000 State=UNKNOWN",
            f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _start(self, name: str, command: list[str], pid_file: Path) -> None:
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise SlurmUnavailable(f"{name} did not start: {done.stderr.strip()[-500:]} {self.log_tails()}")
        deadline = time.monotonic() + 30
        while not pid_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            self.pids[name] = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError) as err:
            raise SlurmUnavailable(f"{name} wrote no pid file {pid_file}") from err

    def start(self) -> SlurmCluster:
        install()
        self._write_config()
        munge = self.directory / "munge"
        key = munge / "munge.key"
        subprocess.run([_which("mungekey"), "--create", f"--keyfile={key}", "--force"], check=True,
                       capture_output=True)
        key.chmod(0o600)
        self._start("munged", [_which("munged"), f"--socket={munge / 'munge.socket'}", f"--key-file={key}",
                               f"--pid-file={munge / 'munged.pid'}", f"--log-file={munge / 'munged.log'}",
                               f"--seed-file={munge / 'munged.seed'}", "--force"], munge / "munged.pid")
        for daemon in ("slurmctld", "slurmd"):
            self._start(daemon, [_which(daemon), "-f", str(self.conf)], self.directory / f"{daemon}.pid")
        self.wait_for_node()
        return self

    def wait_for_node(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-o", "%t").stdout.strip()
            if state in ("idle", "mix", "alloc"):
                return
            time.sleep(0.5)
        raise SlurmUnavailable(f"the node did not come up (state {state!r}): {self.log_tails()}")

    def log_tails(self, lines: int = 3) -> str:
        """The last lines of every daemon's log, for a message that says why."""
        tails = []
        for log in sorted(self.directory.rglob("*.log")):
            text = log.read_text(errors="replace").strip().splitlines()[-lines:]
            tails.append(f"{log.name}: " + " | ".join(text))
        return "; ".join(tails) or "no logs"

    def run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """A Slurm client command (sinfo, squeue, scontrol, sbatch...) against this cluster."""
        return subprocess.run(list(command), env=self.env, capture_output=True, text=True, timeout=timeout)

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (JobState, RestartCnt, ExitCode, ...); {} once it is gone."""
        out = self.run("scontrol", "-o", "show", "job", job_id).stdout
        return dict(word.split("=", 1) for word in out.split() if "=" in word)

    def stop(self) -> None:
        """Stop the daemons it started, by their pids (slurmd first), and wait for them to go."""
        if self.pids.get("slurmctld"):
            # Jobs still running would outlive the daemons: cancel them and give them a moment.
            self.run("scancel", "--full", f"--user={os.getuid()}", timeout=30)
            deadline = time.monotonic() + 30
            while self.run("squeue", "-h", timeout=30).stdout.strip() and time.monotonic() < deadline:
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.pop(name, None)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
