"""A throwaway Ray cluster on this machine, inside a network namespace that has only loopback:
for tests and benchmarks (it needs root).

Outside such a namespace Ray advertises the machine's interface address and probes an outside
resolver to find it, whatever ``--node-ip-address`` says; inside one it uses 127.0.0.1 and
nothing leaves the machine. Every process of the cluster, and the servers that talk to it, run
in the namespace (through ``nsenter``); a thread of the caller joins it with
:meth:`Namespace.enter` to talk to them. Several nodes share the machine, each with the CPUs it
is given, and one can be killed (:meth:`LocalCluster.kill_node`) as a machine would die.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

CLONE_NEWNET = 0x40000000
HEAD_PORT = 6379
CLIENT_PORT = 10001
"""Where the head answers Ray Client (``ray://127.0.0.1:10001``)."""
FAST_FAILURE = {
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 3,
}
"""A dead node is known in a few seconds (Ray's defaults take half a minute)."""
SRC = Path(__file__).resolve().parents[2]


def unavailable() -> str | None:
    """Why no loopback cluster can run here, or None when one can."""
    if os.geteuid() != 0:
        return "a loopback-only network namespace needs root"
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (util-linux, iproute2)"
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is not installed: pip install 'tingji[scale]'"
    return None


class Namespace:
    """A network namespace with only loopback, held open by a sleeping process."""

    def __init__(self) -> None:
        own = os.readlink("/proc/self/ns/net")
        self._holder = subprocess.Popen(
            ["unshare", "--net", "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.path = f"/proc/{self._holder.pid}/ns/net"
        deadline = time.monotonic() + 10
        while self._link() in (None, own):
            if self._holder.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("unshare --net did not make a network namespace")
            time.sleep(0.02)
        self.id = self._link()
        self.run(["ip", "link", "set", "lo", "up"], check=True)

    def _link(self) -> str | None:
        try:
            return os.readlink(self.path)
        except OSError:
            return None

    def command(self, args: Sequence[str]) -> list[str]:
        return ["nsenter", f"--net={self.path}", *args]

    def run(self, args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(args), text=True, **kwargs)

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command(args), **kwargs)

    def enter(self) -> None:
        """Move the calling thread into the namespace: the sockets it opens from now on are
        there (other threads stay where they are)."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into the loopback namespace failed")
        finally:
            os.close(fd)

    def processes(self) -> list[psutil.Process]:
        """Every process in the namespace but its holder and this one (which may have entered
        it)."""
        found = []
        for proc in psutil.process_iter():
            if proc.pid in (self._holder.pid, os.getpid()):
                continue
            try:
                if os.readlink(f"/proc/{proc.pid}/ns/net") == self.id:
                    found.append(proc)
            except OSError:
                continue
        return found

    def kill_all(self) -> None:
        """Kill every process in the namespace but its holder."""
        for proc in self.processes():
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.Error:
                continue
        psutil.wait_procs(self.processes(), timeout=10)

    def close(self) -> None:
        """Kill everything in the namespace, then the namespace."""
        if self._holder.poll() is None:
            self.kill_all()
            self._holder.kill()
        self._holder.wait()


@dataclass
class Node:
    index: int
    port: int
    """Its raylet's port (``--node-manager-port``), by which it is told apart."""


class LocalCluster:
    """A Ray head and more nodes on 127.0.0.1, in ``namespace``."""

    def __init__(
        self,
        namespace: Namespace,
        env: Mapping[str, str] | None = None,
        *,
        object_store_mb: int = 128,
    ) -> None:
        self.namespace = namespace
        self.temp_dir = tempfile.mkdtemp(prefix="tj-ray-", dir="/tmp")  # short: socket paths
        paths = [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]
        self.env = {
            **os.environ,
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONPATH": os.pathsep.join(paths),
            **(env or {}),
        }
        self.object_store = object_store_mb * 2**20
        self.nodes: list[Node] = []
        self.address = f"127.0.0.1:{HEAD_PORT}"

    def _ray(self, *args: str) -> None:
        exe = Path(sys.executable).with_name("ray")
        ray = str(exe) if exe.is_file() else (shutil.which("ray") or "ray")
        done = self.namespace.run(
            [ray, "start", *args], env=self.env, capture_output=True, timeout=180
        )
        if done.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def add_node(self, cpus: int = 1) -> Node:
        """The head first, then a node that joins it."""
        index = len(self.nodes)
        node = Node(index, HEAD_PORT + 11 + index)
        common = [
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={cpus}",
            "--num-gpus=0",
            f"--node-manager-port={node.port}",
            f"--object-store-memory={self.object_store}",
            "--disable-usage-stats",
        ]
        if index == 0:
            self._ray(
                "--head",
                f"--port={HEAD_PORT}",
                f"--temp-dir={self.temp_dir}",
                "--include-dashboard=false",
                f"--ray-client-server-port={CLIENT_PORT}",
                f"--system-config={json.dumps(FAST_FAILURE)}",
                *common,
            )
        else:
            self._ray(f"--address={self.address}", *common)
        self.nodes.append(node)
        return node

    def kill_node(self, node: Node) -> int:
        """Kill a node as a dying machine would: its raylet and every process under it
        (the workers), at once. Returns how many processes were killed."""
        flag = f"--node_manager_port={node.port}"
        killed = 0
        for proc in self.namespace.processes():
            try:
                line = proc.cmdline()
            except psutil.Error:
                continue
            if line and line[0].endswith("raylet") and flag in line:
                for victim in [*proc.children(recursive=True), proc]:
                    try:
                        victim.kill()
                        killed += 1
                    except psutil.Error:
                        continue
        return killed

    def kill_all_nodes(self, spare: psutil.Process) -> int:
        """Kill every process of the cluster at once, head included, as if all its machines
        died; ``spare`` and its children (a server that talks to the cluster) live on. Returns
        how many processes were killed; :meth:`start_again` makes a new cluster there."""
        keep = {spare.pid, *(child.pid for child in spare.children(recursive=True))}
        victims = [p for p in self.namespace.processes() if p.pid not in keep]
        for victim in victims:
            try:
                victim.kill()
            except psutil.Error:
                continue
        psutil.wait_procs(victims, timeout=10)
        return len(victims)

    def start_again(self, cpus: Sequence[int] = (1, 1)) -> None:
        """A new cluster at the same address (a new head, then the other nodes)."""
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.temp_dir = tempfile.mkdtemp(prefix="tj-ray-", dir="/tmp")
        self.nodes = []
        for count in cpus:
            self.add_node(count)

    def close(self) -> None:
        """Kill every process in the namespace (the cluster and whatever talked to it)."""
        self.namespace.kill_all()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
