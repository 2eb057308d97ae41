"""Two hosts on this machine for the tests: two network namespaces joined by a veth pair, each with
its own address and host name, and Open MPI told to start its daemons by entering a namespace
instead of over ssh.

    hosts = TwoHosts(tmp_dir); hosts.start()
    hosts.mpirun((1, 2), ["-m", "wm.train", ...])   # rank 0 on host a, ranks 1-2 on host b
    hosts.stop()

Each host is a long-lived holder process (``sleep``) in its own network namespace (interface ``wm0``
at 10.231.7.1 or .2; loopback), UTS namespace (host name ``wmhost-a`` / ``wmhost-b``, so Open MPI
sees two nodes) and mount namespace (a private ``/etc/hosts`` naming both, as a cluster's DNS
would). mpirun runs on host a; its remote-shell agent is a small script that, given a host name and
a command, runs the command inside that host's namespaces with ``nsenter``: what ssh does on a
cluster. MPI's messages and torch.distributed's go over TCP on ``wm0`` only (no shared memory
between the hosts). The file system stays shared, as on a cluster with a shared file system.

Needs root, ``ip``, ``nsenter`` and ``unshare`` (util-linux): :class:`HostsUnavailable` otherwise, and
the tests that need two hosts skip with its reason. Nothing outside the two namespaces is touched:
the veth pair lives in them and goes with them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from es.launch import find_mpirun

SUBNET = "10.231.7"
NAMES = ("wmhost-a", "wmhost-b")
IFACE = "wm0"
HOLD_S = 3600  # a holder left behind by a killed test session ends by itself

AGENT = """#!/bin/sh
# Open MPI's remote-shell agent for the two test hosts: [options] HOST COMMAND... -> COMMAND run by
# /bin/sh inside HOST's namespaces (network, host name, mount), in the caller's directory.
echo "$*" >> {log}
while [ "${{1#-}}" != "$1" ]; do shift; done
host=$1; shift
exec nsenter -t "$(cat {directory}/"$host".pid)" -n -u -m --wd="$PWD" -- /bin/sh -c "$*"
"""


class HostsUnavailable(Exception):
    """This machine cannot make the two hosts (no root, no ``ip`` or ``nsenter``, no namespaces)."""


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise HostsUnavailable(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")


class TwoHosts:
    """Two hosts (network + UTS + mount namespaces) and an mpirun that spans them."""

    def __init__(self, directory: Path):
        self.directory = directory
        tag = f"{os.getpid() % 100000}"
        self.netns = [f"wm{tag}{c}" for c in "ab"]
        self.holders: list[subprocess.Popen] = []
        self.agent = directory / "nsenter-agent.sh"
        self.agent_log = directory / "agent.log"

    def address(self, host: int) -> str:
        return f"{SUBNET}.{host + 1}"

    def start(self) -> TwoHosts:
        if os.geteuid() != 0:
            raise HostsUnavailable("making network namespaces needs root")
        for tool in ("ip", "nsenter", "unshare"):
            if shutil.which(tool) is None:
                raise HostsUnavailable(f"no {tool} on PATH")
        self.directory.mkdir(parents=True, exist_ok=True)
        hosts = self.directory / "hosts"
        hosts.write_text("127.0.0.1 localhost\n" + "".join(
            f"{self.address(i)} {name}\n" for i, name in enumerate(NAMES)))
        try:
            for ns in self.netns:
                _run("ip", "netns", "add", ns)
            veth = [f"{ns}v" for ns in self.netns]
            _run("ip", "link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
            for i, ns in enumerate(self.netns):
                _run("ip", "link", "set", veth[i], "netns", ns)
                _run("ip", "-n", ns, "link", "set", veth[i], "name", IFACE)
                _run("ip", "-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", IFACE)
                for dev in ("lo", IFACE):
                    _run("ip", "-n", ns, "link", "set", dev, "up")
            for i, ns in enumerate(self.netns):
                self._hold(i, ns, hosts)
        except Exception:
            self.stop()
            raise
        self.agent.write_text(AGENT.format(directory=self.directory, log=self.agent_log))
        self.agent.chmod(0o755)
        return self

    def _hold(self, i: int, ns: str, hosts: Path) -> None:
        """The holder of host ``i``: its namespaces live as long as it does."""
        script = f"mount --bind {hosts} /etc/hosts && hostname {NAMES[i]} && exec sleep {HOLD_S}"
        holder = subprocess.Popen(["ip", "netns", "exec", ns, "unshare", "--uts", "--mount",
                                   "--propagation", "private", "sh", "-c", script],
                                  stderr=subprocess.PIPE, text=True)
        self.holders.append(holder)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until it has its host name (it then only sleeps)
            if holder.poll() is not None:
                raise HostsUnavailable(f"cannot make host {NAMES[i]}: {holder.stderr.read().strip()}")
            named = subprocess.run(["nsenter", "-t", str(holder.pid), "-u", "hostname"],
                                   capture_output=True, text=True)
            if named.stdout.strip() == NAMES[i]:
                (self.directory / f"{NAMES[i]}.pid").write_text(str(holder.pid))
                return
            time.sleep(0.05)
        raise HostsUnavailable(f"host {NAMES[i]} did not come up within 10 s")

    def mpirun(self, per_host: tuple[int, int], args: list[str], cwd: Path, env: dict[str, str],
               timeout: float = 300) -> subprocess.CompletedProcess:
        """``python ARGS`` on ``per_host[0]`` ranks of host a and ``per_host[1]`` of host b (ranks in
        that order), over TCP on ``wm0``; mpirun itself runs on host a."""
        hosts = ",".join(f"{name}:{n}" for name, n in zip(NAMES, per_host, strict=True) if n)
        command = [
            "nsenter", "-t", str(self.holders[0].pid), "-n", "-u", "-m", f"--wd={cwd}", "--",
            find_mpirun(), "-n", str(sum(per_host)), "--host", hosts, "--allow-run-as-root",
            "--prtemca", "plm_ssh_agent", str(self.agent),
            "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", IFACE,
            "--mca", "oob_tcp_if_include", IFACE, sys.executable, *args,
        ]
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)

    def stop(self) -> None:
        for holder in self.holders:
            holder.kill()
            holder.wait(timeout=10)
        self.holders = []
        for ns in self.netns:  # (the veth pair goes with its namespaces)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
