"""The page of `digitsum-edge serve`, the web app, in a real headless Chromium: its fake camera plays a `synth` video
of one digit, and the app must show that digit, the chosen rand and their sum over the video, read on the device
(the default) and on the server (/v1/read with the token of the URL's fragment). Driven through the Chrome
DevTools protocol. Skipped where Chromium is not installed (apt-get install chromium), or npm's files are missing."""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import re
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from browser_helpers import CHROMIUM, ISOLATED, Chromium, npm_files_or_skip, pick_scene, write_y4m
from digitsum_edge.vision import settings as defaults
from serve_helpers import ServeProcess, get, request

TOKEN = "classroom-token-0123456789"  # what DIGITSUM_EDGE_TOKEN is given
SERVE_ROI = 0.7  # serve's --roi here, not the default: the page must take it from the server

if CHROMIUM is None:
    print("skip: chromium is not installed (apt-get install chromium): the webcam page test does not run")
    pytestmark = pytest.mark.skip(reason="chromium is not installed (apt-get install chromium)")
pytest.importorskip("ray.serve", reason="the serve extra is not installed")
pytest.importorskip("websockets.sync.client", reason="websockets is not installed")


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM), as a site without a CA would make one."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture(scope="module")
def server(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory):
    """Over HTTPS and with a token (what a service reachable by other machines needs), so through Ray Serve's
    HAProxy ending the TLS (test_serve.py runs it over plain HTTP). The app is built into --web."""
    npm_files_or_skip()
    folder = tmp_path_factory.mktemp("serve_page")
    cert, key = self_signed(folder)
    process = ServeProcess(tiny_onnx, folder / "serve.log", "--ssl-certfile", cert, "--ssl-keyfile", key,
                           "--provider", "cpu", "--web", folder / "web", "--roi", SERVE_ROI,
                           "--ink", "dark", env={"DIGITSUM_EDGE_TOKEN": TOKEN})
    process.web = folder / "web"  # type: ignore[attr-defined]
    yield process
    assert process.stop() == 0


def choose(browser: Chromium, **values: str) -> None:
    """Choose in the page's selects (id -> value), as a user does."""
    browser.evaluate(f"(() => {{ for (const [id, value] of Object.entries({json.dumps(values)})) {{ "
                     "const s = document.getElementById(id); s.value = value; "
                     "s.dispatchEvent(new Event('change')); } })()")


def shown_reading(browser: Chromium, rand: int, where: str, after: int = 0) -> dict:
    """What the page shows once it has read a digit with `rand` on `where` (device | server) after frame `after`."""
    shown = browser.wait_for(
        f"(() => {{ const d = document.getElementById('result').dataset; return d.rand === '{rand}' && "
        f"d.found === 'true' && d.where === '{where}' && +d.frames >= {after + 2} ? {{...d}} : null; }})()")
    assert isinstance(shown, dict)
    shown["text"] = re.sub(r"\s+", " ", str(browser.evaluate("document.getElementById('result').textContent"))).strip()
    shown["detail"] = browser.evaluate("document.getElementById('detail').textContent")
    return shown


GREEN_PIXELS = ("(() => { const c = document.getElementById('overlay'); "
                "const p = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; "
                "for (let i = 0; i < p.length; i += 4) n += p[i + 1] > 200 && p[i] < 100 && p[i + 2] < 100; "
                "return n; })()")  # the box and the sum drawn over the video


def test_the_app_reads_the_camera_on_the_device_and_on_the_server(server: ServeProcess, tiny_onnx: Path,
                                                                  tmp_path: Path) -> None:
    assert server.url.startswith("https://")  # a camera page for other machines
    scene, digit = pick_scene(tiny_onnx)
    camera = write_y4m(tmp_path / "camera.y4m", scene)
    with tempfile.TemporaryDirectory(prefix="chromium-", dir=tmp_path) as profile:  # a fresh profile every run
        browser = Chromium(f"{server.url}/#token={TOKEN}", camera, Path(profile))  # the page sends it as a bearer token
        try:
            browser.wait_for("document.getElementById('status').textContent.includes('frames read')")
            assert browser.evaluate("document.getElementById('where-label').hidden") is False  # a service: both
            assert browser.evaluate("document.getElementById('where').value") == "device"  # the default
            assert browser.evaluate("self.crossOriginIsolated") is True  # serve's COOP/COEP, at the first load
            # the device reads as the server does: its --roi and --ink, not the app's defaults
            settings = browser.evaluate("(({roi, ink}) => ({roi, ink}))(window.digitsum.reader.preprocessConfig)")
            choose(browser, rand="3")
            device = shown_reading(browser, 3, "device")
            choose(browser, where="server")
            on_server = shown_reading(browser, 3, "server", int(device["frames"]))
            green = browser.evaluate(GREEN_PIXELS)
            image = browser.screenshot()
        finally:
            browser.close()
    for shown in (device, on_server):
        assert (shown["digit"], shown["rand"], shown["sum"]) == (str(digit), "3", str(digit + 3)), shown
        assert shown["text"] == f"{digit} + 3 = {digit + 3}", shown
    assert "on this device" in device["detail"] and "on the server (cpu)" in on_server["detail"], (device, on_server)
    assert settings == {"roi": SERVE_ROI, "ink": "dark"}, settings
    assert isinstance(green, int) and green > 100
    screenshot = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    assert screenshot is not None and screenshot.shape[1] >= 600 and screenshot.std() > 10  # a real page, not blank
    if os.environ.get("DIGITSUM_SCREENSHOT"):  # how docs/serve.png is made: DIGITSUM_SCREENSHOT=docs/serve.png
        Path(os.environ["DIGITSUM_SCREENSHOT"]).write_bytes(image)


def test_without_the_token_the_server_refuses_and_the_page_says_so(server: ServeProcess, tiny_onnx: Path,
                                                                   tmp_path: Path) -> None:
    scene, _ = pick_scene(tiny_onnx)
    with tempfile.TemporaryDirectory(prefix="chromium-", dir=tmp_path) as profile:
        browser = Chromium(f"{server.url}/#where=server", write_y4m(tmp_path / "camera.y4m", scene), Path(profile))
        try:
            error = browser.wait_for("document.getElementById('status').className === 'error' && "
                                     "document.getElementById('status').textContent")
            where = browser.evaluate("document.getElementById('where').value")
            frames = browser.evaluate("document.getElementById('result').dataset.frames")
            roi = browser.evaluate("window.digitsum.reader.preprocessConfig.roi")
        finally:
            browser.close()
    assert where == "server" and frames == "0", (where, frames)  # nothing was read without the token
    assert roi == defaults.ROI  # the server did not say how it reads: the device keeps the app's own settings
    assert str(error).startswith("server: /v1/read needs the header Authorization: Bearer"), error
    assert "#token=" in str(error), error


def test_the_apps_files_have_their_types_isolation_and_the_served_model(server: ServeProcess,
                                                                       tiny_onnx: Path) -> None:
    from digitsum_edge.web import build

    web = server.web  # type: ignore[attr-defined]
    for name in ("", "app.js", "manifest.webmanifest", "digitsum.json", "model.onnx",
                 *(f"vendor/{v}" for v in build.VENDOR)):
        status, body, headers = get(f"{server.url}/{name}")
        assert status == 200 and body == (web / (name or "index.html")).read_bytes(), name
        assert headers["content-type"] == build.content_type(name or "index.html"), (name, headers)
        assert {k: headers[k.lower()] for k in ISOLATED} == ISOLATED, name
    assert build.content_type("vendor/x.wasm") == "application/wasm"
    assert build.content_type("vendor/x.mjs") == "text/javascript"
    assert (web / "model.onnx").read_bytes() == tiny_onnx.read_bytes()  # the page runs the model served
    status, packed, headers = request(f"{server.url}/vendor/ort-wasm-simd-threaded.wasm", None,
                                      {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"  # a phone downloads a quarter of it
    assert gzip.decompress(packed) == (web / "vendor" / "ort-wasm-simd-threaded.wasm").read_bytes()
    assert len(packed) < 0.4 * len(gzip.decompress(packed))
    assert json.loads(get(f"{server.url}/nothing.js")[1]) == {"error": "Not Found: GET /nothing.js"}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert request(f"{server.url}/v2", None, auth)[0] == 200  # the app's routes come after the service's
    assert get(f"{server.url}/v1/read")[0] == 401
    assert f"page: the web app built in {web}" in server.log.read_text()  # for this model, in --web


def test_with_a_token_v1_and_v2_want_it_and_health_and_the_page_stay_open(server: ServeProcess) -> None:
    image = np.zeros((1, 28, 28), np.uint8).tobytes()
    v2 = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": [0.0] * 784},
                                {"name": "rand", "datatype": "INT64", "shape": [1], "data": [3]}]}).encode()
    routes = [("/v1/predict?rand=1", image), ("/v1/model", None), ("/v2/models/digitsum/infer", v2),
              ("/v2/models/digitsum", None)]
    for path, body in routes:
        for headers, want in (({}, "needs the header Authorization: Bearer"),
                              ({"Authorization": "Bearer not-the-token-at-all"}, "not this service's"),
                              ({"Authorization": f"Basic {TOKEN}"}, "not this service's")):
            status, answer, got = request(f"{server.url}{path}", body, headers)
            assert status == 401 and json.loads(answer) == {"error": json.loads(answer)["error"]}, (path, answer)
            assert want in json.loads(answer)["error"] and got.get("www-authenticate", got.get("WWW-Authenticate"))
        status, answer, _ = request(f"{server.url}{path}", body, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, (path, answer)
    assert json.loads(request(f"{server.url}/v1/model", None, {"Authorization": f"Bearer {TOKEN}"})[1])[
        "serving"]["token"] is True  # said, never shown
    for path in ("/healthz", "/", "/app.js", "/vendor/ort-wasm-simd-threaded.wasm"):
        assert get(f"{server.url}{path}")[0] == 200, path
    from serve_helpers import session_processes

    # the token is in no process that Ray or HAProxy runs (the command itself was started with it), nor on a
    # command line; the replicas read a 0600 file in the run's private folder
    for pid in session_processes(server.process.pid):
        if pid != server.process.pid:
            assert TOKEN.encode() not in Path(f"/proc/{pid}/environ").read_bytes(), pid
        assert TOKEN.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes(), pid
    assert "auth on: /v1 and /v2 want the bearer token (from DIGITSUM_EDGE_TOKEN)" in server.log.read_text()
