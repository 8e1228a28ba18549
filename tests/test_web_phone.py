"""The web app on a phone: `web` says how to serve the folder, the host it names sends the headers the page needs,
and at 412x915 with no camera (plain http from another computer, a denied permission) the photo button reads a
photo on the device; the guide square shows on white paper. Skipped where Chromium or npm is missing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import digitsum_edge
from browser_helpers import CHROMIUM, Chromium, npm_files_or_skip, write_y4m
from digitsum_edge.cli import main
from helpers import ctrl_c_works
from newcomer_helpers import paper_digit, write

PHONE = {"width": 412, "height": 915, "deviceScaleFactor": 1, "mobile": True}
NO_CAMERA = ("navigator.mediaDevices.getUserMedia = () => "
             "Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));")


@pytest.fixture(scope="module")
def app(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The app folder for the tiny model, and what `web` printed."""
    npm_files_or_skip()
    out = tmp_path_factory.mktemp("web") / "app"
    result = CliRunner().invoke(main, ["web", str(out), "--model", str(tiny_onnx)])
    assert result.exit_code == 0, result.output
    return out, result.stdout


@pytest.fixture
def host(app: tuple[Path, str]) -> str:
    """The command `web` printed, run on a free port: its URL."""
    folder, printed = app
    command = re.search(r"try it: (python -m digitsum_edge\.web\.host \S+)", printed)
    assert command, printed
    argv = command.group(1).split()[1:]
    assert argv[-1] == str(folder)
    process = subprocess.Popen([sys.executable, *argv, "--port", "0"], stdout=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=ctrl_c_works)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = re.search(r"on (http://127\.0\.0\.1:\d+/)", line)
        assert url, line
        yield url.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_printed_command_serves_the_app_with_the_headers_it_needs(host: str) -> None:
    with urllib.request.urlopen(host, timeout=10) as page:
        assert page.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert page.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert b'id="photo"' in page.read()
    with urllib.request.urlopen(f"{host}vendor/ort-wasm-simd-threaded.wasm", timeout=10) as wasm:
        assert wasm.headers["Content-Type"] == "application/wasm"


def _readable_photo(tiny_onnx: Path, folder: Path) -> tuple[Path, int]:
    """A phone-sized photo of a paper digit that the tiny model reads with confidence in Python (the browser's
    port reads as Python does: test_web_parity)."""
    reader = digitsum_edge.load(tiny_onnx, provider="cpu", roi=1.0)
    for index in range(40):
        photo, label = paper_digit(index, (600, 800))
        reading = reader.read(photo, 3)
        if reading.found and reading.digit == label and (reading.digit_confidence or 0) > 0.9:
            return write(folder / "IMG_0042.jpg", photo), label
    raise AssertionError("no test digit the tiny model reads with confidence")


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_a_phone_without_a_camera_reads_a_photo(host: str, tiny_onnx: Path, tmp_path: Path) -> None:
    photo, label = _readable_photo(tiny_onnx, tmp_path)
    white = write_y4m(tmp_path / "paper.y4m", [np.full((480, 640, 3), 245, np.uint8)] * 2)  # never given
    with tempfile.TemporaryDirectory(prefix="chromium-", dir=tmp_path) as profile:
        browser = Chromium(host, white, Path(profile))
        try:
            browser.call("Emulation.setDeviceMetricsOverride", **PHONE)
            browser.call("Page.enable")
            browser.call("Page.addScriptToEvaluateOnNewDocument", source=NO_CAMERA)
            for attempt in range(5):  # a page still loading (or swapping its process for COOP) is not attached yet
                try:
                    browser.call("Page.reload", ignoreCache=True)
                    break
                except AssertionError as e:
                    if "Not attached to an active page" not in str(e) or attempt == 4:
                        raise
                    time.sleep(1)
            status = browser.wait_for("(() => { const s = document.getElementById('status').textContent; "
                                      "return s.includes('read a photo') ? s : null; })()")
            assert "no camera: NotAllowedError" in str(status), status
            browser.evaluate("(() => { const s = document.getElementById('rand'); s.value = '3'; "
                             "s.dispatchEvent(new Event('change')); })()")
            root = browser.call("DOM.getDocument")["root"]["nodeId"]
            node = browser.call("DOM.querySelector", nodeId=root, selector="#photo")["nodeId"]
            browser.call("DOM.setFileInputFiles", files=[str(photo)], nodeId=node)
            shown = browser.wait_for("(() => { const d = document.getElementById('result').dataset; "
                                     "return d.photo === 'true' && d.found === 'true' ? {...d} : null; })()")
            assert isinstance(shown, dict) and (shown["digit"], shown["sum"]) == (str(label), str(label + 3)), shown
            layout = browser.evaluate(
                "JSON.stringify({result: document.getElementById('result').getBoundingClientRect().bottom, "
                "button: document.getElementById('photo-label').getBoundingClientRect().bottom, "
                "width: document.documentElement.scrollWidth, still: !document.getElementById('still').hidden, "
                "help: document.getElementById('rand-help').textContent})")
            image = browser.screenshot()
            # The guide square as the page strokes it, on white paper: a dark edge around the white dashes.
            edge = browser.evaluate("(() => { const c = document.createElement('canvas'); c.width = c.height = 100; "
                                    "const x = c.getContext('2d'); x.fillStyle = '#fff'; x.fillRect(0, 0, 100, 100); "
                                    "strokeGuide(x, 20, 20, 60, 2); return Array.from(x.getImageData(17, 50, 7, 1)"
                                    ".data).filter((v, i) => i % 4 === 0); })()")
        finally:
            browser.close()
    facts = json.loads(str(layout))
    assert facts["result"] <= PHONE["height"] and facts["button"] <= PHONE["height"], facts  # no scrolling needed
    assert facts["width"] <= PHONE["width"] and facts["still"], facts  # nothing wider than the phone
    assert "adds to your digit" in facts["help"]
    screenshot = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    assert screenshot.shape[:2] == (PHONE["height"], PHONE["width"]) and screenshot.std() > 10
    assert isinstance(edge, list) and min(edge) < 80, edge  # dark enough to see on white
    if os.environ.get("DIGITSUM_PHONE_SCREENSHOT"):  # how docs/web-phone.png is made
        Path(os.environ["DIGITSUM_PHONE_SCREENSHOT"]).write_bytes(image)
