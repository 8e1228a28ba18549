"""A Ray cluster of separate nodes on one machine, for trying `serve --address` (tests, benchmarks/cluster.py):
a head and workers, each its own `ray start` (its own raylet, object store and node id), all on 127.0.0.1,
each in a session of its own so that one node is stopped by its processes' pids, as a lost machine would be.

    with LocalCluster(folder) as cluster:      # the head: `ray start --head --port P --num-cpus 1`
        worker = cluster.add_worker(cwd)       # `ray start --address 127.0.0.1:P --num-cpus 1`
        ...  digitsum-edge serve --address auto, with cluster.env
        cluster.stop_node(worker)              # its processes, by pid
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from digitsum_edge.serve.processes import end_processes, in_session

RAY = Path(sys.executable).with_name("ray")
START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Node:
    """One node: the session its `ray start` made, and its log."""

    name: str
    session: int
    log: Path


class LocalCluster:
    """A head node (one CPU) on a free port; workers join it; everything ends with stop()."""

    def __init__(self, folder: Path, cpus: int = 1, dashboard: bool = True) -> None:
        self.folder, self.cpus, self.port = folder, cpus, _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.dashboard_port = _free_port() if dashboard else None
        # Token authentication, as Ray sets it up, with a token of this cluster's own (not ~/.ray/auth_token)
        # `serve --address` runs one HTTP proxy, on the head: it must not keep every request on its own node's
        # replica (Ray Serve's default), or the other nodes' replicas would wait idle.
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "RAY_ADDRESS": self.address, "RAY_USAGE_STATS_ENABLED": "0",
                    "RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING": "0"}
        self.nodes: list[Node] = []
        options = ["--head", "--port", str(self.port)]
        if dashboard:
            options += ["--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                        "--dashboard-port", str(self.dashboard_port)]
        else:
            options += ["--include-dashboard", "false"]
        self.head = self._start("head", folder, options)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def dashboard(self) -> str | None:
        return f"http://127.0.0.1:{self.dashboard_port}" if self.dashboard_port else None

    def add_worker(self, cwd: Path) -> Node:
        """A worker node started in `cwd` (a folder of its own: it needs no model file there)."""
        return self._start(f"worker{len(self.nodes)}", cwd, ["--address", self.address])

    def _start(self, name: str, cwd: Path, options: list[str]) -> Node:
        cwd.mkdir(parents=True, exist_ok=True)
        log = self.folder / f"{name}.log"
        with open(log, "w") as out:
            starter = subprocess.Popen([str(RAY), "start", *options, "--num-cpus", str(self.cpus),
                                        "--node-ip-address", "127.0.0.1", "--disable-usage-stats"],
                                       cwd=cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        node = Node(name, starter.pid, log)
        self.nodes.append(node)
        try:
            code = starter.wait(START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        if code != 0:
            self.stop()
            raise RuntimeError(f"ray start ({name}) failed ({code}):\n{log.read_text()[-2000:]}")
        return node

    def processes(self, node: Node) -> list[int]:
        return in_session(node.session)

    def stop_node(self, node: Node, timeout_s: float = 5.0) -> list[int]:
        """End one node's processes by their pids (SIGTERM, then SIGKILL): the node is lost."""
        return end_processes(self.processes(node), timeout_s)

    def restart(self, node: Node, cwd: Path) -> Node:
        """The lost worker node back (a new node id, as a replaced machine would have)."""
        self.nodes.remove(node)
        return self._start(node.name, cwd, ["--address", self.address])

    def state(self, kind: str, *filters: str) -> list[dict] | None:
        """Ray's state API through the head's dashboard (`ray list KIND --filter ...`); None if it does not answer."""
        options = [arg for f in filters for arg in ("--filter", f)]
        done = subprocess.run([str(RAY), "list", kind, *options, "--format", "json", "--limit", "1000",
                               "--address", self.dashboard or ""], env=self.env, capture_output=True, text=True,
                              timeout=60)
        if done.returncode != 0:
            return None
        try:
            return json.loads(done.stdout or "[]")
        except ValueError:  # a notice instead of a list: nothing matched
            return []

    def alive_nodes(self) -> int:
        """Nodes the cluster counts alive, or -1 if it does not answer."""
        nodes = self.state("nodes", "state=ALIVE")
        return -1 if nodes is None else len(nodes)

    def stop(self) -> None:
        """Every node's processes, workers first."""
        for node in reversed(self.nodes):
            self.stop_node(node)
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"  # what `ray stop` removes too:
        if current.exists() and current.read_text().strip().endswith(f":{self.port}"):  # else `ray.init()`
            current.unlink()  # would take this dead head for a running cluster
        deadline = time.monotonic() + 10
        while any(self.processes(n) for n in self.nodes) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.nodes = []
