"""`digitsum-edge serve`: the service started as a user starts it (a subprocess on a free port, once for this
module), read through HTTP and compared with `predict`, batching, the KServe v2 protocol through
tritonclient, every bad request, and Ctrl-C. Ray runs locally with one replica."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitsum_edge import mnist, onnx_contract
from digitsum_edge.apps.reader import load
from helpers import invoke, one_line_error
from serve_helpers import STOP_TIMEOUT, ServeProcess, get, request, session_processes

pytest.importorskip("ray.serve", reason="the serve extra is not installed")
RAND = 7


def post_json(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    status, data, _ = request(url, body, headers, method="POST")
    return status, json.loads(data)


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Camera-like frames: 640x480 PNG (synth), the same as JPEG, and JPEGs of other sizes."""
    from digitsum_edge.synth.frames import pick_digits, write_images

    folder = tmp_path_factory.mktemp("serve_frames")
    digits, labels = pick_digits(6, seed=5)
    write_images(folder / "png", digits, labels, seed=5)
    paths = sorted((folder / "png").glob("*.png"))
    for i, path in enumerate(paths[:3]):
        image = cv2.imread(str(path))
        size = [(640, 480), (1280, 960), (320, 240)][i]
        jpeg = folder / f"{path.stem}_{size[0]}.jpg"
        cv2.imwrite(str(jpeg), cv2.resize(image, size, interpolation=cv2.INTER_AREA), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(jpeg)
    return paths


@pytest.fixture(scope="module")
def server(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory):
    """One replica, batches of up to 8 images gathered for 20 ms, 1 MB bodies, 100 images per request."""
    process = ServeProcess(tiny_onnx, tmp_path_factory.mktemp("serve") / "serve.log", "--max-batch", 8,
                           "--batch-wait-ms", 20, "--max-body-mb", 1, "--max-images", 100, "--provider", "cpu")
    yield process
    process.stop()


def test_cli_refuses_bad_input_before_starting_ray(tiny_onnx: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.onnx").write_text("not a model")
    cases = [(("--model", tmp_path / "nope.onnx"), "does not exist"),
             (("--model", tmp_path / "notes.onnx"), "not a readable ONNX model"),
             (("--model", tiny_onnx, "--address", "not an address"), "--address must be"),
             (("--model", tiny_onnx, "--port", 0), "0 is not in the range"),
             (("--model", tiny_onnx, "--replicas", 0), "--replicas"),
             (("--model", tiny_onnx, "--roi", 2), "--roi"),
             (("--model", tiny_onnx, "--ssl-certfile", tiny_onnx), "HTTPS needs both --ssl-certfile and --ssl-keyfile"),
             (("--model", tiny_onnx, "--token", "a-token-on-the-command-line"), "--token is not taken on the command"),
             (("--model", tiny_onnx, "--host", "0.0.0.0"), "--host 0.0.0.0 is reachable from other machines"),
             (("--model", tiny_onnx, "--token-file", tmp_path / "none.txt"), "--token-file"),
             (("--model", tiny_onnx, "--ssl-certfile", tmp_path / "no.pem", "--ssl-keyfile", tiny_onnx),
              "no.pem does not exist")]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cases.append((("--model", tiny_onnx, "--port", busy.getsockname()[1]), "cannot listen on 127.0.0.1:"))
        for args, fragment in cases:
            one_line_error(invoke("serve", *args), fragment)
        for value, fragment in (("", "DIGITSUM_EDGE_TOKEN is set but empty"), ("short", "at least 16 printable")):
            one_line_error(invoke_env({"DIGITSUM_EDGE_TOKEN": value}, "serve", "--model", tiny_onnx), fragment)


def invoke_env(env: dict[str, str], *args: object):
    from click.testing import CliRunner

    from digitsum_edge.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def test_serve_defaults_are_lives_and_help_loads_nothing_heavy() -> None:
    from digitsum_edge.serve.config import ServeConfig
    from digitsum_edge.vision.settings import CAMERA

    assert ServeConfig().reading == CAMERA  # /v1/read reads as live reads a camera
    probe = "import sys; from digitsum_edge.cli import main; print(sorted({'ray', 'fastapi', 'cv2', 'onnxruntime'} " \
            "& set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"  # `digitsum-edge serve --help` stays instant
    assert "--max-batch" in invoke("serve", "--help").output


def test_the_reading_arguments_of_a_config_file_are_one_reading_settings(tiny_onnx: Path) -> None:
    from digitsum_edge.errors import DigitsumError
    from digitsum_edge.serve.builder import config_file, config_from_args
    from digitsum_edge.vision.settings import ReadingSettings

    cfg = config_from_args({"model": str(tiny_onnx), "roi": "0.8", "ink": "dark", "min_confidence": 0.7})
    assert cfg.reading == ReadingSettings(roi=0.8, ink="dark", min_confidence=0.7)
    args = config_file(cfg)["applications"][0]["args"]
    assert {k: args[k] for k in ("roi", "ink", "min_confidence")} == {"roi": 0.8, "ink": "dark", "min_confidence": 0.7}
    assert config_from_args(args).reading == cfg.reading  # the file's arguments give the same settings back
    assert "roi" not in config_file(config_from_args({"model": str(tiny_onnx)}))["applications"][0]["args"]
    for bad, match in (({"roi": "x"}, "^argument roi: "), ({"roi": 2}, "^roi must be in"),
                       ({"ink": "blue"}, "^ink must be one of")):
        with pytest.raises(DigitsumError, match=match):
            config_from_args({"model": str(tiny_onnx), **bad})


def test_ready_and_model_metadata(server: ServeProcess, tiny_onnx: Path) -> None:
    status, body, _ = get(f"{server.url}/healthz")
    assert status == 200 and json.loads(body) == {"status": "ready", "model": tiny_onnx.name, "provider": "cpu"}
    status, body, _ = get(f"{server.url}/v1/model")
    model = json.loads(body)
    assert status == 200 and model["file"]["sha256"] == hashlib.sha256(tiny_onnx.read_bytes()).hexdigest()
    assert model["inputs"] == list(onnx_contract.INPUTS) and model["outputs"] == list(onnx_contract.OUTPUTS)
    assert model["metadata"]["num_rand"] == onnx_contract.NUM_RAND and model["num_sums"] == 19
    assert model["serving"]["max_batch"] == 8 and model["serving"]["max_body_bytes"] == 2**20


def test_read_gives_what_predict_gives_for_the_same_file(server: ServeProcess, tiny_onnx: Path, frames: list[Path],
                                                         tmp_path: Path) -> None:
    out = tmp_path / "predict.jsonl"
    done = invoke("predict", *frames, "--model", tiny_onnx, "--roi", 0.6, "--rand", RAND, "--provider", "cpu",
                  "--jsonl", out)
    assert done.exit_code == 0, done.output
    expected = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(e["found"] for e in expected) >= len(frames) - 1  # the frames hold digits to compare
    for path, want in zip(frames, expected, strict=True):
        status, got = post_json(f"{server.url}/v1/read?rand={RAND}", path.read_bytes(),
                                {"Content-Type": "image/jpeg" if path.suffix == ".jpg" else "image/png"})
        assert status == 200, got
        assert set(got) == set(want) - {"frame", "source"}  # the fields of a live JSON line
        for key in set(got) - {"ms", "prepare_ms", "infer_ms", "digit_confidence", "sum_confidence"}:
            assert got[key] == want[key], (path.name, key, got, want)
        for key in ("digit_confidence", "sum_confidence"):
            assert got[key] == pytest.approx(want[key], abs=2e-4), (path.name, key)
        assert got["ms"] > 0


def test_rand_defaults_to_a_random_one(server: ServeProcess, frames: list[Path]) -> None:
    rands = {post_json(f"{server.url}/v1/read", frames[0].read_bytes())[1]["rand"] for _ in range(12)}
    assert len(rands) > 1 and rands <= set(range(onnx_contract.NUM_RAND))


def test_any_png_or_jpeg_is_read(server: ServeProcess, tmp_path: Path) -> None:
    """Tiny, grey, 16-bit and RGBA images are images: read (no digit here), not refused."""
    cases = {"tiny.png": np.full((1, 1, 3), 200, np.uint8), "gray16.png": np.full((60, 80), 50000, np.uint16),
             "rgba.png": np.full((48, 64, 4), 180, np.uint8), "wide.jpg": np.full((10, 900, 3), 220, np.uint8)}
    for name, image in cases.items():
        ok, data = cv2.imencode(Path(name).suffix, image)
        status, got = post_json(f"{server.url}/v1/read?rand=1", data.tobytes())
        assert ok and status == 200 and got["found"] is False and got["reason"], (name, got)


def test_predict_endpoint_reads_batches_like_the_reader(server: ServeProcess, tiny_onnx: Path) -> None:
    images = mnist.load("test").images[:20]  # more than --max-batch 8: split, batched, joined in order
    rands = np.arange(20) % 10
    status, got = post_json(f"{server.url}/v1/predict?rand={','.join(map(str, rands))}", images.tobytes(),
                            {"Content-Type": "application/octet-stream"})
    want = load(tiny_onnx, "cpu", 1).predict(images, rands)
    assert status == 200 and got["rand"] == rands.tolist()
    assert got["digits"] == want.digits.tolist() and got["sums"] == want.sums.tolist()
    assert np.allclose(got["digit_confidences"], want.digit_confidences, atol=1e-4)


def test_concurrent_requests_share_model_calls(server: ServeProcess) -> None:
    """Ray Serve's batching: 24 concurrent one-image requests reach the model in fewer calls."""
    image = mnist.load("test").images[:1].tobytes()
    before = json.loads(get(f"{server.url}/v1/model")[1])["replica"]
    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda i: post_json(f"{server.url}/v1/predict?rand={i % 10}", image), range(24)))
    after = json.loads(get(f"{server.url}/v1/model")[1])["replica"]
    assert all(status == 200 for status, _ in answers)
    assert [a["rand"] for _, a in answers] == [[i % 10] for i in range(24)]  # each answer is its own request's
    calls, images = after["model_calls"] - before["model_calls"], after["images"] - before["images"]
    assert images == 24 and calls < 24, (calls, images)


def test_open_inference_protocol_with_tritonclient(server: ServeProcess, tiny_onnx: Path) -> None:
    http = pytest.importorskip("tritonclient.http")
    from tritonclient.utils import InferenceServerException

    client = http.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("digitsum")
    meta = client.get_model_metadata("digitsum")
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("image", "FP32", [-1, 1, 28, 28]), ("rand", "INT64", [-1])]
    assert [(t["name"], t["shape"]) for t in meta["outputs"]] == [("digit_logits", [-1, 10]), ("sum_logits", [-1, 19])]
    reader = load(tiny_onnx, "cpu", 1)
    image = reader.backend.normalize(mnist.load("test").images[:5])
    rand = np.array([0, 3, 9, 1, 7], np.int64)
    digit_logits, sum_logits = reader.backend.run(image, rand)
    for binary, rand_shape in ((True, [5]), (False, [5]), (True, [5, 1])):  # [5, 1]: as Triton's config takes it
        inputs = [http.InferInput("image", list(image.shape), "FP32"), http.InferInput("rand", rand_shape, "INT64")]
        inputs[0].set_data_from_numpy(image, binary_data=binary)
        inputs[1].set_data_from_numpy(rand.reshape(rand_shape), binary_data=binary)
        outputs = [http.InferRequestedOutput(name, binary_data=binary) for name in ("sum_logits", "digit_logits")]
        result = client.infer("digitsum", inputs, outputs=outputs, request_id="r1")
        assert result.get_response()["id"] == "r1" and result.get_response()["model_name"] == "digitsum"
        assert np.allclose(result.as_numpy("digit_logits"), digit_logits, atol=1e-5)
        assert np.allclose(result.as_numpy("sum_logits"), sum_logits, atol=1e-5)
    inputs[1].set_data_from_numpy(np.array([[0], [3], [9], [1], [10]], np.int64))
    with pytest.raises(InferenceServerException, match="rand must be an integer in 0-9") as info_:
        client.infer("digitsum", inputs)
    assert info_.value.status() == "400"


def _png_header(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """A PNG that claims a size, bit depth and colour type (IHDR) and holds nothing more."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def _v2(inputs: list, **extra) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


IMAGE_1 = {"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": [0.0] * 784}
RAND_1 = {"name": "rand", "datatype": "INT64", "shape": [1], "data": [3]}
BAD_REQUESTS = [  # (path, body, headers, a fragment of the error)
    ("/v1/read?rand=7", b"hello, not an image", {}, "not a PNG or JPEG image"),
    ("/v1/read?rand=7", b"", {}, "no body"),
    ("/v1/read?rand=7", _png_header(640, 480) + b"\0" * 64, {}, "cannot decode the PNG image"),
    ("/v1/read?rand=7", _png_header(100_000, 100_000), {}, "100000x100000: at most 40 megapixels"),
    ("/v1/read?rand=7", b"\xff\xd8\xff\xe0" + b"\0" * 40, {}, "JPEG image is corrupt or truncated"),
    ("/v1/read?rand=10", b"", {}, "rand must be an integer in 0-9, got 10"),
    ("/v1/read?rand=-1", b"", {}, "rand must be an integer in 0-9, got '-1'"),
    ("/v1/read?rand=seven", b"", {}, "rand must be an integer in 0-9, got 'seven'"),
    ("/v1/read?rand=7", b"\xff\xd8\xff" + b"\0" * (2**20), {}, "the limit is 1,048,576 (--max-body-mb)"),
    ("/v1/predict?rand=1", b"\0" * 100, {}, "multiple of 784 bytes), got 100 bytes"),
    ("/v1/predict?rand=1,2", b"\0" * 784 * 3, {}, "one integer or one per image (3), got 2"),
    ("/v2/models/digitsum/infer", b"{not json", {}, "not JSON"),
    ("/v2/models/digitsum/infer", _v2([IMAGE_1]), {}, "missing ['rand']"),
    ("/v2/models/digitsum/infer", _v2([IMAGE_1, {**RAND_1, "name": "seed"}]), {}, "inputs must be image and rand"),
    ("/v2/models/digitsum/infer", _v2([IMAGE_1, {**RAND_1, "datatype": "INT32"}]), {}, "'rand' must be INT64"),
    ("/v2/models/digitsum/infer", _v2([{**IMAGE_1, "shape": [1, 28, 28]}, RAND_1]), {},
     "'image' must have shape [N, 1, 28, 28]"),
    ("/v2/models/digitsum/infer", _v2([IMAGE_1, {**RAND_1, "shape": [2], "data": [1, 2]}]), {},
     "'rand' must have shape [1]"),
    ("/v2/models/digitsum/infer", _v2([{**IMAGE_1, "data": [0.0] * 700}, RAND_1]), {}, "700 values for shape"),
    ("/v2/models/digitsum/infer", _v2([IMAGE_1, {**RAND_1, "data": [12]}]), {}, "rand must be an integer in 0-9"),
    ("/v2/models/digitsum/infer", _v2([IMAGE_1, {**RAND_1, "data": ["x"]}]), {}, "integers only, got str"),
    ("/v2/models/digitsum/infer", _v2([IMAGE_1, RAND_1], outputs=[{"name": "probs"}]), {}, "unknown output 'probs'"),
    ("/v2/models/digitsum/infer", _v2([{**{k: v for k, v in IMAGE_1.items() if k != "data"},
                                        "parameters": {"binary_data_size": 3136}}, RAND_1]),
     {"Inference-Header-Content-Length": "0"}, "Inference-Header-Content-Length 0 is outside the body"),
    ("/v2/models/digitsum/infer", _v2([{**{k: v for k, v in IMAGE_1.items() if k != "data"},
                                        "parameters": {"binary_data_size": 3136}}, RAND_1]) + b"\0" * 100,
     {"Inference-Header-Content-Length": str(len(_v2([{**{k: v for k, v in IMAGE_1.items() if k != "data"},
                                                       "parameters": {"binary_data_size": 3136}}, RAND_1])))},
     "binary_data_size 3136 does not match"),
    ("/v2/models/digitsum/versions/2/infer", _v2([IMAGE_1, RAND_1]), {}, "has version 1 only, not '2'"),
    # what a hostile client sends: costs counted before any allocation, types checked, never a 500
    ("/v1/read?rand=7", _png_header(6320, 6320, depth=16, colour=6), {}, "305 MiB to decode, at most 128 MiB"),
    ("/v1/predict?rand=1", b"\0" * 784 * 101, {}, "101 images in one request; at most 100 (--max-images)"),
    ("/v2/models/digitsum/infer", _v2([{**IMAGE_1, "shape": [2**32, 2**32]}, RAND_1]), {}, "holds more than 78,400"),
    ("/v2/models/digitsum/infer", _v2([{**IMAGE_1, "shape": [101, 1, 28, 28]}, RAND_1]), {}, "holds more than"),
    ("/v2/models/digitsum/infer", b'{"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": '
     + b"[" * 100_000 + b"]" * 100_000 + b"}]}", {}, "nested too deeply"),
    ("/v2/models/digitsum/infer", _v2([{**IMAGE_1, "data": [[[[[[0.0] * 784]]]]]}, RAND_1]), {}, "nested deeper"),
    ("/v2/models/digitsum/infer", _v2([{**IMAGE_1, "parameters": "binary"}, RAND_1]), {},
     "parameters must be a JSON object, got str"),
    ("/v2/models/digitsum/infer", _v2([IMAGE_1, RAND_1], parameters=[1]), {}, "parameters must be a JSON object"),
    ("/v2/models/digitsum/infer", _v2([{**{k: v for k, v in IMAGE_1.items() if k != "data"},
                                        "parameters": {"binary_data_size": 3136.0}}, RAND_1]), {},
     "binary_data_size must be an integer, got 3136.0"),
    ("/v2/models/digitsum/infer", _v2([IMAGE_1, {**RAND_1, "data": [3.7]}]), {}, "integers only, got float"),
    ("/v2/models/digitsum/infer", _v2([IMAGE_1, {**RAND_1, "data": ["5"]}]), {}, "integers only, got str"),
    ("/v2/models/digitsum/infer", _v2([IMAGE_1, {**RAND_1, "data": [True]}]), {}, "integers only, got bool"),
    ("/v2/models/digitsum/infer", _v2([{**IMAGE_1, "data": [True] * 784}, RAND_1]), {}, "numbers only, got bool"),
    ("/v1/read?rand=3.7", b"", {}, "rand must be an integer in 0-9, got '3.7'"),
    ("/v1/read?rand=%2B5", b"", {}, "rand must be an integer in 0-9, got '+5'"),
    ("/v1/read?rand=%D9%A5", b"", {}, "rand must be an integer in 0-9, got '\u0665'"),
    ("/v1/predict?rand=" + "9" * 40, b"\0" * 784, {}, "rand must be an integer in 0-9, got '9999"),
]


@pytest.mark.parametrize(("path", "body", "headers", "fragment"), BAD_REQUESTS,
                         ids=[f"{i}-{c[3][:30]}" for i, c in enumerate(BAD_REQUESTS)])
def test_a_bad_request_is_one_json_error(server: ServeProcess, path: str, body: bytes, headers: dict,
                                         fragment: str) -> None:
    status, answer = post_json(server.url + path, body, headers)
    assert status == 400, answer
    assert list(answer) == ["error"] and "\n" not in answer["error"] and fragment in answer["error"], answer


def test_unknown_routes_and_methods_keep_the_error_shape(server: ServeProcess) -> None:
    assert json.loads(get(f"{server.url}/v3/nothing")[1]) == {"error": "Not Found: GET /v3/nothing"}
    assert get(f"{server.url}/v1/read")[0] == 405


def test_the_service_still_serves_after_bad_requests(server: ServeProcess, frames: list[Path]) -> None:
    status, got = post_json(f"{server.url}/v1/read?rand=2", frames[0].read_bytes())
    assert status == 200 and got["found"] and got["rand"] == 2
    assert get(f"{server.url}/v2/health/ready")[0] == 200


def test_the_page_is_served(server: ServeProcess) -> None:
    from browser_helpers import web_app_buildable

    status, html, headers = get(f"{server.url}/")  # the web app (tests/test_serve_page.py runs it)
    if not web_app_buildable():  # no npm here: the service runs without the page and says why
        assert status == 503 and json.loads(html)["error"].startswith("the page is unavailable: "), html
        return
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'<script src="app.js">' in html and b'id="rand"' in html and b'id="where"' in html
    status, script, headers = get(f"{server.url}/app.js")
    assert status == 200 and "javascript" in headers["content-type"]
    assert b"getUserMedia" in script and b"v1/read?rand=" in script


def test_the_page_answers_head_and_304_with_its_headers_and_never_echoes_the_host(server: ServeProcess) -> None:
    from browser_helpers import web_app_buildable

    if not web_app_buildable():
        pytest.skip("no npm here: the service runs without the page")
    status, body, headers = request(f"{server.url}/app.js", None, {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert headers["x-content-type-options"] == "nosniff" and "frame-ancestors 'none'" in \
        headers["content-security-policy"] and headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in headers  # plain HTTP here (test_serve_page.py: HTTPS)
    etag = headers["etag"]
    assert request(f"{server.url}/app.js", None, {"Accept-Encoding": "gzip", "If-None-Match": etag})[0] == 304
    status, body, headers = request(f"{server.url}/app.js", None, {"If-None-Match": etag})
    assert status == 200 and body.startswith(b"//")  # another representation: the plain file
    status, body, head = request(f"{server.url}/app.js", method="HEAD")
    assert status == 200 and body == b"" and head["content-length"] == headers["content-length"]
    for path in ("/app.js/", "/docs", "/openapi.json", "/files.json/", "/.env", "/-/nothing"):
        status, body, headers = request(f"{server.url}{path}", None, {"Host": "evil.example"})
        assert status == 404 and "evil.example" not in json.dumps(headers), (path, status, headers)
    status, _, headers = get(f"{server.url}/v1/model")
    assert headers["x-content-type-options"] == "nosniff"  # the API's answers carry them too


def test_haproxy_listens_on_localhost_only_and_its_socket_is_private(server: ServeProcess) -> None:
    """HAProxy's stats page and Prometheus exporter on 127.0.0.1 (Ray binds them to every interface); its admin
    socket 0600 in the service's 0700 folder; the service's port answers."""
    from digitsum_edge.serve.processes import listening

    ports = [(address, port) for name, address, port in listening(session_processes(server.process.pid))
             if name == "haproxy"]
    assert ("127.0.0.1", server.port) in ports and len(ports) >= 3, ports  # the service, stats, metrics
    assert all(address == "127.0.0.1" for address, _ in ports), ports
    config = next(p for p in Path("/tmp").glob("dse-*/*/haproxy.cfg") if f"127.0.0.1:{server.port}" in p.read_text())
    assert "acl digitsum_api path_beg /v1/ /v2/" in config.read_text()  # the page has a backend of its own
    assert "-page if is_" in config.read_text() and "timeout server 60s" in config.read_text()
    sockets = [s for s in Path("/tmp").glob("dse-*/*/admin.sock")
               if f"127.0.0.1:{server.port}" in (s.parent / "haproxy.cfg").read_text()]
    assert len(sockets) == 1 and sockets[0].stat().st_mode & 0o777 == 0o600
    assert sockets[0].parents[1].stat().st_mode & 0o777 == 0o700


def test_ctrl_c_stops_the_service_and_ray(server: ServeProcess) -> None:
    """Last in this module: SIGINT ends the service, Ray and every process it started; exit status 0."""
    assert len(session_processes(server.process.pid)) > 3  # the CLI, Ray's GCS and raylet, the replica, ...
    started = time.monotonic()
    assert server.stop() == 0
    log = server.log.read_text()
    assert log.rstrip().endswith("stopped") and "Traceback" not in log, log
    deadline = started + STOP_TIMEOUT
    while session_processes(server.process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert session_processes(server.process.pid) == []
    with pytest.raises(OSError):
        get(f"{server.url}/healthz", timeout=2)
