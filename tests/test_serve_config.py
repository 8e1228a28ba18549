"""The service deployed the way Ray Serve users deploy: `digitsum-edge serve --print-config` writes a Serve config file
naming the application builder digitsum_edge.serve:app, and Ray's own CLI runs it on a `ray start --head` on
127.0.0.1: `serve run FILE` answers /healthz, /v1/read and v2 infer with the token from the nodes' environment;
`serve deploy` of a changed file (another model, two replicas) updates it in place while a client reads, and the
failed requests are counted. Bad arguments are one line before Ray starts. One Ray head for the module; slow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml  # type: ignore[import-untyped]  # Ray Serve's own dependency

from digitsum_edge import mnist
from helpers import invoke
from serve_clients import free_port
from serve_helpers import get, request, wait_until

pytest.importorskip("ray.serve", reason="the serve extra is not installed")
pytestmark = pytest.mark.slow
SERVE = Path(sys.executable).with_name("serve")
TOKEN = "config-file-token-0123456789"


def _config(model: Path, port: int, web: Path, *options: object) -> dict:
    env = {**os.environ, "DIGITSUM_EDGE_TOKEN": TOKEN}
    done = subprocess.run([str(Path(sys.executable).with_name("digitsum-edge")), "serve", "--model", str(model),
                           "--port", str(port), "--web", str(web), "--provider", "cpu", *map(str, options),
                           "--print-config"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout and "DIGITSUM_EDGE_TOKEN must be set" in done.stdout  # named, never written
    return yaml.safe_load(done.stdout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A Ray head (`ray start --head`, one CPU more than the replicas need) whose processes have the token in
    their environment, as a RayService's pods would from a Secret; ended by its processes' pids."""
    from digitsum_edge.serve.cluster import LocalCluster

    os.environ["DIGITSUM_EDGE_TOKEN"] = TOKEN  # LocalCluster's nodes take this process's environment
    try:
        head = LocalCluster(tmp_path_factory.mktemp("config_cluster"), cpus=3)
    finally:
        del os.environ["DIGITSUM_EDGE_TOKEN"]
    try:
        yield head
    finally:
        head.stop()


def test_print_config_is_what_the_builder_takes_and_bad_arguments_are_one_line(tiny_onnx: Path,
                                                                              tmp_path: Path) -> None:
    from digitsum_edge.serve.builder import IMPORT_PATH, config_from_args

    config = _config(tiny_onnx, 8123, tmp_path / "web", "--replicas", 2, "--max-body-mb", 1)
    (app,) = config["applications"]
    assert app["import_path"] == IMPORT_PATH and config["http_options"] == {"host": "127.0.0.1", "port": 8123}
    assert app["args"] == {"model": str(tiny_onnx.resolve()), "replicas": 2, "provider": "cpu", "max_body_mb": 1.0,
                           "web": str((tmp_path / "web").resolve())}
    assert config_from_args(app["args"]).replicas == 2  # the builder takes what the CLI wrote
    bad = invoke("serve", "--model", tiny_onnx, "--host", "0.0.0.0", "--print-config")
    assert bad.exit_code == 1 and "reachable from other machines" in bad.output
    # Ray's own CLI with the import path: the builder refuses before Ray starts, in one line
    started = time.monotonic()
    for args, fragment in ((["model=/nothing/here.onnx"], "does not exist"), ([f"model={tiny_onnx}", "replicas=two"],
                                                                              "argument replicas"),
                           ([f"model={tiny_onnx}", "colour=blue"], "unknown argument(s) colour")):
        done = subprocess.run([str(SERVE), "run", IMPORT_PATH, *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "RAY_ADDRESS": ""}, start_new_session=True)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and lines[-1].startswith("error: ") and fragment in lines[-1], done.stderr
        assert "Traceback" not in done.stderr + done.stdout and "Started a local Ray" not in done.stderr
    assert time.monotonic() - started < 90


def _v2(n: int) -> bytes:
    images = ((mnist.load("test").images[:n] / 255.0 - 0.1307) / 0.3081).astype(np.float32)
    return json.dumps({"inputs": [
        {"name": "image", "datatype": "FP32", "shape": [n, 1, 28, 28], "data": images.ravel().tolist()},
        {"name": "rand", "datatype": "INT64", "shape": [n], "data": [3] * n}]}).encode()


def _ready(url: str) -> bool:
    try:
        return get(f"{url}/healthz", timeout=5)[0] == 200
    except OSError:
        return False


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_serve_run_of_the_config_file_answers(cluster, tiny_onnx: Path, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = _config(tiny_onnx, port, tmp_path / "web", "--max-body-mb", 1)
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "serve_run.log"
    with open(log, "w") as out:
        run = subprocess.Popen([str(SERVE), "run", str(path)], env=cluster.env, stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until(lambda: _ready(url) or run.poll() is not None, 240, 0.5) and run.poll() is None, \
            log.read_text()[-3000:]
        image = mnist.load("test").images[:1].tobytes()
        status, body, _ = request(f"{url}/v1/predict?rand=3", image, AUTH, "POST")
        assert status == 200 and json.loads(body)["rand"] == [3]
        import cv2

        png = cv2.imencode(".png", np.full((480, 640, 3), 255, np.uint8))[1].tobytes()
        status, body, _ = request(f"{url}/v1/read?rand=1", png, AUTH, "POST")
        assert status == 200 and json.loads(body)["found"] is False  # a blank frame read, no digit
        status, body, _ = request(f"{url}/v2/models/digitsum/infer", _v2(4), AUTH, "POST")
        assert status == 200 and [o["shape"] for o in json.loads(body)["outputs"]] == [[4, 10], [4, 19]]
        assert request(f"{url}/v1/read?rand=1", png, None, "POST")[0] == 401  # the token from the nodes' env
        assert request(f"{url}/v1/predict?rand=1", b"\0" * (2 * 2**20), AUTH, "POST")[0] == 400  # the limits
        shown = subprocess.run([str(SERVE), "config", "-a", str(cluster.dashboard)], env=cluster.env,
                               capture_output=True, text=True, timeout=60)
        assert "digitsum_edge.serve:app" in shown.stdout and TOKEN not in shown.stdout  # what Ray keeps
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)  # `serve run` shuts its application down on Ctrl-C
            try:
                run.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)


def test_serve_deploy_of_a_changed_file_updates_in_place(cluster, tiny_onnx: Path, tmp_path: Path) -> None:
    import onnx

    other = tmp_path / "other.onnx"  # another model file: the same network, other bytes
    model = onnx.load(str(tiny_onnx))
    model.doc_string = "another copy"
    onnx.save(model, str(other))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text(yaml.safe_dump(_config(tiny_onnx, port, tmp_path / "web1")))
    second.write_text(yaml.safe_dump(_config(other, port, tmp_path / "web2", "--replicas", 2)))
    deploy = [str(SERVE), "deploy", "-a", str(cluster.dashboard)]
    done = subprocess.run([*deploy, str(first)], env=cluster.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert wait_until(lambda: _ready(url), 240, 0.5)
    image = mnist.load("test").images[:1].tobytes()
    counts: dict[str, int] = {}
    stop = threading.Event()

    def client() -> None:  # one request after the other until told to stop (at most 300 s)
        until = time.monotonic() + 300
        while not stop.is_set() and time.monotonic() < until:
            try:
                status = str(request(f"{url}/v1/predict?rand=1", image, AUTH, "POST", timeout=10)[0])
            except OSError as e:
                status = type(e).__name__
            counts[status] = counts.get(status, 0) + 1
            time.sleep(0.02)

    reader = threading.Thread(target=client)
    reader.start()
    try:
        time.sleep(1)
        done = subprocess.run([*deploy, str(second)], env=cluster.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

        def updated() -> bool:
            status, body, _ = request(f"{url}/v1/model", None, AUTH)
            return status == 200 and json.loads(body)["file"]["name"] == "other.onnx" and \
                json.loads(body)["serving"]["replicas"] == 2

        assert wait_until(updated, 240, 0.5)
        time.sleep(2)
    finally:
        stop.set()
        reader.join(30)
    failed = sum(n for status, n in counts.items() if status != "200")
    print(f"serve deploy: {counts.get('200', 0)} requests answered, {failed} failed during the update: {counts}")
    (Path(os.environ.get("DIGITSUM_DEPLOY_JSON", tmp_path / "deploy.json"))).write_text(json.dumps(counts))
    assert counts.get("200", 0) > 20 and failed <= counts.get("200", 0) // 10, counts  # in place: still answering
