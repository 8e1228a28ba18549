"""The webcam page of `digitsum-edge serve` in a real headless Chromium: its fake camera plays a `synth` video of one
digit, the page sends frames to /v1/read and must show that digit, the chosen rand and their sum over the video.
Driven through the Chrome DevTools protocol. Skipped where Chromium is not installed (apt-get install chromium)."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from browser_helpers import CHROMIUM, Chromium, pick_scene, write_y4m
from serve_helpers import ServeProcess, get, request

TOKEN = "classroom-token-0123456789"  # what `serve --token` (or DIGITSUM_EDGE_TOKEN) is given

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
    Python proxy this time; test_serve.py runs the default HAProxy ingress."""
    folder = tmp_path_factory.mktemp("serve_page")
    cert, key = self_signed(folder)
    process = ServeProcess(tiny_onnx, folder / "serve.log", "--ssl-certfile", cert, "--ssl-keyfile", key,
                           "--provider", "cpu", "--token", TOKEN)
    yield process
    assert process.stop() == 0


def run_page(url: str, model: Path, folder: Path, rand: int = 3) -> tuple[dict, bytes, int]:
    """Open the page on a camera showing one digit, choose `rand`; (what the page shows, its screenshot, the digit)."""
    scene, digit = pick_scene(model)
    camera = write_y4m(folder / "camera.y4m", scene)
    with tempfile.TemporaryDirectory(prefix="chromium-", dir=folder) as profile:  # a fresh profile every run
        browser = Chromium(f"{url}/#token={TOKEN}", camera, Path(profile))  # the page sends it as a bearer token
        try:
            browser.wait_for("document.getElementById('status').textContent.includes('frames read')")
            browser.evaluate(f"(() => {{ const s = document.getElementById('rand'); s.value = '{rand}'; "
                             "s.dispatchEvent(new Event('change')); })()")
            shown = browser.wait_for(  # the page's own record of the reading it drew, once it has read again
                f"(() => {{ const d = document.getElementById('result').dataset; "
                f"return d.rand === '{rand}' && d.found === 'true' && +d.frames >= 2 ? {{...d}} : null; }})()")
            assert isinstance(shown, dict)
            shown["text"] = browser.evaluate("document.getElementById('result').textContent")
            shown["green_pixels"] = browser.evaluate(  # the box and the sum drawn over the video
                "(() => { const c = document.getElementById('overlay'); "
                "const p = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; "
                "for (let i = 0; i < p.length; i += 4) n += p[i + 1] > 200 && p[i] < 100 && p[i + 2] < 100; "
                "return n; })()")
            image = browser.screenshot()
        finally:
            browser.close()
    return shown, image, digit


def test_the_page_reads_the_digit_the_camera_shows(server: ServeProcess, tiny_onnx: Path, tmp_path: Path) -> None:
    assert server.url.startswith("https://")  # a camera page for other machines
    shown, image, digit = run_page(server.url, tiny_onnx, tmp_path, rand=3)
    assert (shown["digit"], shown["rand"], shown["sum"]) == (str(digit), "3", str(digit + 3)), shown
    assert re.sub(r"\s+", " ", shown["text"]).strip() == f"{digit} + 3 = {digit + 3}"
    assert int(shown["frames"]) >= 2 and shown["green_pixels"] > 100, shown
    screenshot = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    assert screenshot is not None and screenshot.shape[1] >= 600 and screenshot.std() > 10  # a real page, not blank
    (tmp_path / "serve.png").write_bytes(image)
    if os.environ.get("DIGITSUM_SCREENSHOT"):  # how docs/serve.png is made: DIGITSUM_SCREENSHOT=docs/serve.png
        Path(os.environ["DIGITSUM_SCREENSHOT"]).write_bytes(image)


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
    for path in ("/healthz", "/", "/page.js"):
        assert get(f"{server.url}{path}")[0] == 200, path
