"""The webcam page of `digitsum-edge serve` in a real headless Chromium: its fake camera plays a `synth` video of one
digit, the page sends frames to /v1/read and must show that digit, the chosen rand and their sum over the video.
Driven through the Chrome DevTools protocol. Skipped where Chromium is not installed (apt-get install chromium)."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitsum_edge.runtime.reader import load
from digitsum_edge.synth.frames import frames, pick_digits
from serve_helpers import ServeProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    print("skip: chromium is not installed (apt-get install chromium): the webcam page test does not run")
    pytestmark = pytest.mark.skip(reason="chromium is not installed (apt-get install chromium)")
pytest.importorskip("ray.serve", reason="the serve extra is not installed")
websockets_sync = pytest.importorskip("websockets.sync.client", reason="websockets is not installed")
# Flags for this machine (no GPU, no network, root): and a camera that plays a file, allowed without asking.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--window-size=700,860",
         "--remote-debugging-port=0", "--remote-allow-origins=*",
         "--ignore-certificate-errors"]  # the test's own self-signed certificate
PAGE_TIMEOUT = 60  # seconds for the page to show a reading (Chromium start, camera, first requests)


def write_y4m(path: Path, images: list[np.ndarray], fps: int = 15) -> Path:
    """BGR frames -> a YUV4MPEG2 (4:2:0) video, the format Chromium's fake camera plays in a loop."""
    height, width = images[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for image in images:
            out.write(b"FRAME\n" + cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def pick_scene(model: Path, seed: int = 11) -> tuple[list[np.ndarray], int]:
    """Frames of one synth digit the model reads right and surely, also after JPEG (what the page sends)."""
    reader = load(model, "cpu", 1)
    digits, labels = pick_digits(20, seed)
    for i, label in enumerate(labels):
        held = [frame for frame, _ in frames(digits[i:i + 1], [label], seed=seed + i, hold=8)]
        jpeg = cv2.imdecode(cv2.imencode(".jpg", held[0], [cv2.IMWRITE_JPEG_QUALITY, 85])[1], cv2.IMREAD_COLOR)
        readings = [reader.read(image, 3) for image in (held[0], jpeg)]
        if all(r.found and r.digit == label and r.digit_confidence > 0.9 and r.sum == label + 3 for r in readings):
            return held, int(label)  # type: ignore[arg-type]  # pick_digits without blanks: every label is a digit
    pytest.fail("no synth frame that the tiny model reads surely")


class Chromium:
    """A headless Chromium on one page, driven through the DevTools protocol."""

    def __init__(self, url: str, camera: Path, profile: Path) -> None:
        assert CHROMIUM is not None
        self.process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                                         f"--use-file-for-fake-video-capture={camera}", url],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        start_new_session=True)
        self.ids = iter(range(1, 1_000_000))
        port = self._devtools_port()
        deadline = time.monotonic() + 20
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                pages = [t for t in json.load(response) if t["type"] == "page" and t["url"].startswith(url)]
            if pages or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert pages, "Chromium opened no page on the service"
        self.stack = ExitStack()
        self.socket = self.stack.enter_context(websockets_sync.connect(pages[0]["webSocketDebuggerUrl"],
                                                                       max_size=2**26))

    def _devtools_port(self) -> int:
        assert self.process.stderr is not None
        for line in self.process.stderr:  # Chromium says where its DevTools listen, then keeps quiet
            found = re.search(r"DevTools listening on ws://[\d.]+:(\d+)/", line)
            if found:
                return int(found.group(1))
        pytest.fail(f"Chromium exited ({self.process.wait()}) without opening DevTools")

    def call(self, method: str, **params: object) -> dict:
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == number:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = PAGE_TIMEOUT) -> object:
        """The expression's value once it is truthy (an exception, e.g. before the page loaded, counts as false)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()")
            if value:
                return value
            time.sleep(0.2)
        state = self.evaluate("JSON.stringify({url: location.href, status: document.getElementById('status')"
                              "?.textContent, result: {...document.getElementById('result')?.dataset}})")
        pytest.fail(f"the page never met {expression!r}: {state}")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        self.stack.close()
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


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
    """Over HTTPS (what browsers on other machines need for the camera), so through Ray Serve's Python proxy
    this time; test_serve.py runs the default HAProxy ingress."""
    folder = tmp_path_factory.mktemp("serve_page")
    cert, key = self_signed(folder)
    process = ServeProcess(tiny_onnx, folder / "serve.log", "--ssl-certfile", cert, "--ssl-keyfile", key,
                           "--provider", "cpu")
    yield process
    assert process.stop() == 0


def run_page(url: str, model: Path, folder: Path, rand: int = 3) -> tuple[dict, bytes, int]:
    """Open the page on a camera showing one digit, choose `rand`; (what the page shows, its screenshot, the digit)."""
    scene, digit = pick_scene(model)
    camera = write_y4m(folder / "camera.y4m", scene)
    with tempfile.TemporaryDirectory(prefix="chromium-", dir=folder) as profile:  # a fresh profile every run
        browser = Chromium(f"{url}/", camera, Path(profile))
        try:
            browser.wait_for("document.getElementById('status').textContent.includes('frames read')")
            browser.evaluate(f"(() => {{ const s = document.getElementById('rand'); s.value = '{rand}'; "
                             "s.dispatchEvent(new Event('change')); })()")
            shown = browser.wait_for(  # the page's own record of the reading it drew
                f"(() => {{ const d = document.getElementById('result').dataset; "
                f"return d.rand === '{rand}' && d.found === 'true' ? {{...d}} : null; }})()")
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
