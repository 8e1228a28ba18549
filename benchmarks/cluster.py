"""`digitsum-edge serve --address auto` on a real multi-node Ray cluster on this machine: a head and a worker,
each its own `ray start` with one CPU on 127.0.0.1, started and stopped here.

Checks and measures, in order: requests/s with the head alone (1 replica); with the worker joined (2 replicas,
one per node, from Ray's state API; both answer /v1/model; reads equal the in-process reader's); losing the
worker node under load (its processes ended by pid: failed requests, seconds until every request succeeds
again, answers from the surviving node); the worker back (a replica returns to it, the model file meanwhile
deleted from the only disk that had it); stopping `serve` leaves the cluster running. Prints a table, writes JSON.

    .venv/bin/python benchmarks/cluster.py --model runs/model.onnx --json docs/serve_cluster.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

from digitsum_edge.apps.reader import load
from digitsum_edge.files import write_json
from digitsum_edge.serve.cluster import LocalCluster
from serve_clients import CLI, SharedMachine, camera_jpegs, closed_loop, free_port, say

REPLICA_CLASS = "ServeReplica:digitsum-edge:digitsum"


def serve(cluster: LocalCluster, cwd: Path, replicas: int, port: int) -> subprocess.Popen:
    """`digitsum-edge serve --address auto --model model.onnx` from `cwd`, ready; its log beside."""
    log = open(cwd / f"serve_{replicas}.log", "w")  # noqa: SIM115  # open while the service runs
    process = subprocess.Popen([str(CLI), "serve", "--address", "auto", "--model", "model.onnx", "--port", str(port),
                                "--replicas", str(replicas)], cwd=cwd, env=cluster.env, stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve exited:\n{Path(log.name).read_text()}")
        if "serving " in Path(log.name).read_text() and _get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
            return process
        time.sleep(0.5)
    process.kill()
    raise SystemExit("serve was not ready in 240 s")


def stop(process: subprocess.Popen) -> dict:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        code = None
    return {"exit": code, "seconds": round(time.monotonic() - started, 1)}


def _get(url: str, body: bytes | None = None) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, {}
    except OSError:
        return 0, {}


def replicas_by_node(cluster: LocalCluster) -> dict[str, list[str]]:
    """Ray's state API: the alive replicas of the service, by node id."""
    nodes: dict[str, list[str]] = {}
    for actor in cluster.state("actors", f"class_name={REPLICA_CLASS}", "state=ALIVE") or []:
        nodes.setdefault(actor["node_id"], []).append(actor["actor_id"])
    return nodes


def answering(url: str, tries: int = 40) -> dict[str, str]:
    """replica id -> node id, from /v1/model asked `tries` times (each answer names its replica)."""
    seen = {}
    for _ in range(tries):
        status, model = _get(f"{url}/v1/model")
        if status == 200:
            seen[model["replica"]["id"]] = model["replica"]["node_id"]
    return seen


def reads_right(url: str, model: Path, jpegs: list[bytes]) -> dict:
    """Every frame read through the service as the reader reads it in this process."""
    reader = load(model, "cpu", 1)
    same = 0
    for i, jpeg in enumerate(jpegs):
        want = reader.read(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), i % 10)
        status, got = _get(f"{url}/v1/read?rand={i % 10}", jpeg)
        same += status == 200 and (got["found"], got["digit"], got["sum"]) == (want.found, want.digit, want.sum)
    return {"frames": len(jpegs), "same_as_in_process": same}


def under_loss(cluster: LocalCluster, worker, url: str, jpegs: list[bytes], seconds: float, kill_at: float) -> dict:
    """Clients read for `seconds`; the worker node is stopped at `kill_at`: what failed, and for how long."""
    log: list[tuple[float, int]] = []  # (time since start, status)
    started = time.monotonic()

    def client(c: int) -> None:
        i = c
        while time.monotonic() - started < seconds:
            status, _ = _get(f"{url}/v1/read?rand={i % 10}", jpegs[i % len(jpegs)])
            log.append((time.monotonic() - started, status))
            i += 4

    clients = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in clients:
        t.start()
    time.sleep(kill_at)
    killed_at = time.monotonic() - started
    ended = cluster.stop_node(worker)
    for t in clients:
        t.join()
    failed = [(t, s) for t, s in log if s != 200]
    last_failure = max((t for t, _ in failed), default=None)
    return {"requests": len(log), "failed": len(failed), "statuses": {str(s): sum(1 for _, x in log if x == s)
                                                                     for s in sorted({s for _, s in log})},
            "killed_at_s": round(killed_at, 1), "processes_ended": len(ended),
            "all_succeed_again_after_s": round(last_failure - killed_at, 1) if last_failure else 0.0,
            "after_loss": answering(url, 10)}


def wait_for_replica_on(cluster: LocalCluster, node_count: int, timeout_s: float) -> float | None:
    """Seconds until the replicas sit on `node_count` nodes again (None: not within `timeout_s`)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if len(replicas_by_node(cluster)) >= node_count:
            return round(time.monotonic() - started, 1)
        time.sleep(1)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/model.onnx")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per load run")
    parser.add_argument("--loss-seconds", type=float, default=20.0, help="reading while the worker node is lost")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    shared = SharedMachine()
    jpegs = camera_jpegs(32, seed=2)
    folder = Path(tempfile.mkdtemp(prefix="digitsum-cluster-"))
    driver, worker_cwd = folder / "driver", folder / "worker"
    driver.mkdir()
    shutil.copy(args.model, driver / "model.onnx")  # the only copy the service is given: relative to the driver
    result: dict = {"machine": shared.header(), "config": vars(args)}
    try:
        with LocalCluster(folder) as cluster:
            say(f"head node on {cluster.address}")
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            one = serve(cluster, driver, 1, port)
            result["one_node"] = asyncio.run(closed_loop(f"{url}/v1/read", jpegs, args.clients, args.seconds, 1))
            result["one_node_stop"] = stop(one)
            say(f"one node: {result['one_node']['requests_per_s']} req/s")
            worker = cluster.add_worker(worker_cwd)
            assert not (worker_cwd / "model.onnx").exists()
            two = serve(cluster, driver, 2, port)
            try:
                result["placement"] = {"replicas_by_node": replicas_by_node(cluster), "answering": answering(url)}
                result["reads"] = reads_right(url, driver / "model.onnx", jpegs)
                result["two_nodes"] = asyncio.run(closed_loop(f"{url}/v1/read", jpegs, args.clients, args.seconds, 1))
                say(f"two nodes: {result['two_nodes']['requests_per_s']} req/s; losing the worker node")
                result["loss"] = under_loss(cluster, worker, url, jpegs, args.loss_seconds, args.loss_seconds / 4)
                say(f"loss: {json.dumps(result['loss'])}")
                (driver / "model.onnx").unlink()  # from now on, no disk holds the model
                worker = cluster.restart(worker, folder / "worker_again")
                back = wait_for_replica_on(cluster, 2, 120)
                result["return"] = {"seconds_until_two_nodes_again": back,
                                    "replicas_by_node": replicas_by_node(cluster), "answering": answering(url)}
                say(f"back: {json.dumps(result['return'])}")
            finally:
                result["stop"] = stop(two)
            result["stop"]["cluster_nodes_alive_after"] = cluster.alive_nodes()
            result["stop"]["replicas_left"] = sum(len(v) for v in replicas_by_node(cluster).values())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if args.json:  # also what was measured before a failure
            write_json(args.json, result)
    result["machine"].update(shared.footer())
    print(table(result))
    if args.json:
        write_json(args.json, result)


def table(r: dict) -> str:
    placement, loss, back = r["placement"], r["loss"], r["return"]
    rows = ["| what | figure |", "| --- | --- |",
            f"| /v1/read, head node alone (1 CPU), 1 replica, {r['one_node']['clients']} clients | "
            f"{r['one_node']['requests_per_s']} req/s, p99 {r['one_node']['p99_ms']} ms |",
            f"| /v1/read, head + worker (1 CPU each), 2 replicas | {r['two_nodes']['requests_per_s']} req/s, p99 "
            f"{r['two_nodes']['p99_ms']} ms |",
            f"| replicas by node (state API) | {[len(v) for v in placement['replicas_by_node'].values()]} on "
            f"{len(placement['replicas_by_node'])} nodes; {len(placement['answering'])} replicas answered /v1/model |",
            f"| reads equal to the in-process reader | {r['reads']['same_as_in_process']} of {r['reads']['frames']} |",
            f"| worker node lost under load ({loss['requests']} requests) | {loss['failed']} failed "
            f"{loss['statuses']}; every request succeeds again {loss['all_succeed_again_after_s']} s after; then "
            f"answered by {len(set(loss['after_loss'].values()))} node(s) |",
            f"| worker node back (model file deleted meanwhile) | replicas on 2 nodes again after "
            f"{back['seconds_until_two_nodes_again']} s; {len(back['answering'])} replicas answer |",
            f"| `serve` stopped | exit {r['stop']['exit']} in {r['stop']['seconds']} s; cluster nodes alive after: "
            f"{r['stop']['cluster_nodes_alive_after']}; replicas left: {r['stop']['replicas_left']} |"]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
