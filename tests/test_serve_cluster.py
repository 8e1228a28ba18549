"""`digitsum-edge serve --address auto` on a real two-node Ray cluster on 127.0.0.1 (a head and a worker, each
its own `ray start` with one CPU), through benchmarks/cluster.py run as a user runs it: the replicas land on
different nodes and both answer, reads are right, the worker node is lost under load and the service keeps
answering, the node comes back and a replica returns to it (the model file deleted from the only disk that had
it), and stopping `serve` leaves the cluster running. Slow (two Ray nodes and three services: minutes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from digitsum_edge.serve.processes import in_session

pytest.importorskip("ray.serve", reason="the serve extra is not installed")
pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).parents[1] / "benchmarks" / "cluster.py"


def test_two_nodes_serve_survive_a_lost_node_and_outlive_the_service(tiny_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "cluster.json"
    run = subprocess.Popen([sys.executable, str(SCRIPT), "--model", str(tiny_onnx), "--seconds", "3",
                            "--loss-seconds", "12", "--clients", "4", "--json", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = run.communicate(timeout=900)
    finally:
        for pid in in_session(run.pid):  # the script ends its nodes; anything left is ended here
            subprocess.run(["kill", "-9", str(pid)], check=False)
    assert run.returncode == 0, output[-3000:]
    r = json.loads(out.read_text())
    by_node = r["placement"]["replicas_by_node"]
    assert sorted(len(v) for v in by_node.values()) == [1, 1]  # two replicas, on two different nodes
    assert len(r["placement"]["answering"]) == 2 and set(r["placement"]["answering"].values()) == set(by_node)
    assert r["reads"]["same_as_in_process"] == r["reads"]["frames"]
    loss = r["loss"]
    assert loss["processes_ended"] > 0 and loss["requests"] > loss["failed"]
    assert loss["all_succeed_again_after_s"] < loss["requests"]  # a number: failures stopped before the end
    assert len(set(loss["after_loss"].values())) == 1  # the surviving node answers
    assert r["return"]["seconds_until_two_nodes_again"] is not None  # a replica went back to the new node
    assert r["stop"]["exit"] == 0 and r["stop"]["cluster_nodes_alive_after"] == 2 and r["stop"]["replicas_left"] == 0
