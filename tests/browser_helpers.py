"""Headless Chromium for the page tests, driven through the DevTools protocol, with a fake camera that plays a
video; and a static web server in a thread (what any static host does, plus the headers a test asks for)."""

from __future__ import annotations

import base64
import contextlib
import ctypes
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import pytest

from digitsum_edge.web import build

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for this machine (no GPU, no network, root): and a camera that plays a file, allowed without asking.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--window-size=700,860",
         "--remote-debugging-port=0", "--remote-allow-origins=*",
         "--ignore-certificate-errors"]  # the serve test's own self-signed certificate
PAGE_TIMEOUT = 60  # seconds for a page to show a reading (Chromium start, camera, model)
ISOLATED = build.ISOLATION  # COOP/COEP: a cross-origin isolated page, with a fine timer


def web_app_buildable() -> bool:
    """Whether the web app can be built here: its npm packages are installed, or npm is there to install them."""
    installed = any(build._has_vendor(folder) for folder in
                    (build.HERE / "node_modules", build.CACHE / f"npm-{build.lock_digest()}" / "node_modules"))
    return installed or shutil.which("npm") is not None


def npm_files_or_skip() -> None:
    """Skip (with a printed reason) where the web app's npm packages are missing and npm cannot install them."""
    if not web_app_buildable():
        print("skip: npm is not installed and the web app's npm packages are missing: the web tests do not run")
        pytest.skip("npm is not installed (apt-get install npm), and onnxruntime-web is missing")


def write_y4m(path: Path, images: list[np.ndarray], fps: int = 15) -> Path:
    """BGR frames -> a YUV4MPEG2 (4:2:0) video, the format Chromium's fake camera plays in a loop."""
    height, width = images[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for image in images:
            out.write(b"FRAME\n" + cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def pick_scene(model: Path, seed: int = 11) -> tuple[list[np.ndarray], int]:
    """Frames of one synth digit the model reads right and surely, also after JPEG (what the serve page sends)."""
    from digitsum_edge.apps.reader import load
    from digitsum_edge.synth.frames import frames, pick_digits

    reader = load(model, "cpu", 1)
    digits, labels = pick_digits(20, seed)
    for i, label in enumerate(labels):
        held = [frame for frame, _ in frames(digits[i:i + 1], [label], seed=seed + i, hold=8)]
        jpeg = cv2.imdecode(cv2.imencode(".jpg", held[0], [cv2.IMWRITE_JPEG_QUALITY, 85])[1], cv2.IMREAD_COLOR)
        readings = [reader.read(image, 3) for image in (held[0], jpeg)]
        if all(r.found and r.digit == label and r.digit_confidence > 0.9 and r.sum == label + 3 for r in readings):
            return held, int(label)  # type: ignore[arg-type]  # pick_digits without blanks: every label is a digit
    pytest.fail("no synth frame that the tiny model reads surely")


def _die_with_parent() -> None:
    """In the child before it runs Chromium: the kernel kills it when the test process dies, even by SIGKILL,
    so that a killed test run leaves no browser behind (Linux; elsewhere nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Chromium:
    """A headless Chromium on one page, driven through the DevTools protocol."""

    def __init__(self, url: str, camera: Path, profile: Path) -> None:
        from websockets.sync.client import connect

        assert CHROMIUM is not None
        self.process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                                         f"--use-file-for-fake-video-capture={camera}", url],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        start_new_session=True, preexec_fn=_die_with_parent)
        self.ids = iter(range(1, 1_000_000))
        self.stack = ExitStack()
        try:
            port = self._devtools_port()
            deadline = time.monotonic() + 20
            while True:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                    pages = [t for t in json.load(response) if t["type"] == "page" and t["url"].startswith(url)]
                if pages or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert pages, f"Chromium opened no page on {url}"
            self.socket = self.stack.enter_context(connect(pages[0]["webSocketDebuggerUrl"], max_size=2**26))
        except BaseException:
            self.close()
            raise

    def _devtools_port(self) -> int:
        assert self.process.stderr is not None
        for line in self.process.stderr:  # Chromium says where its DevTools listen, then keeps quiet
            found = re.search(r"DevTools listening on ws://[\d.]+:(\d+)/", line)
            if found:
                return int(found.group(1))
        pytest.fail(f"Chromium exited ({self.process.wait()}) without opening DevTools")

    def call(self, method: str, timeout: float = 30, **params: object) -> dict:
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=timeout))
            if message.get("id") == number:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str, timeout: float = 30) -> object:
        result = self.call("Runtime.evaluate", timeout=timeout, expression=expression, returnByValue=True,
                           awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = PAGE_TIMEOUT) -> object:
        """The expression's value once it is truthy (an exception, e.g. before the page loaded, counts as false)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()")
            except AssertionError:  # no execution context yet: the page is still loading
                value = None
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


class Answer(NamedTuple):
    """What a route answers: status, headers (Content-Type among them), body."""

    status: int
    headers: dict[str, str]
    body: bytes


# A route: (method, path, request headers, request body) -> an Answer, or None for the folder's file (GET).
Route = Callable[[str, str, dict[str, str], bytes], Answer | None]


class StaticServer:
    """A folder on http://127.0.0.1:PORT/ from a thread, as a static host serves it, with `headers` on every
    response (COOP/COEP for a cross-origin isolated page); `route` answers the requests it wants to (the rest:
    the folder's files)."""

    def __init__(self, folder: Path, headers: dict[str, str] | None = None, route: Route | None = None) -> None:
        extra, answer = headers or {}, route or (lambda method, path, sent, body: None)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def end_headers(self) -> None:
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Cache-Control", "no-store")
                super().end_headers()

            def routed(self, method: str) -> bool:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answered = answer(method, self.path, dict(self.headers.items()), body)
                if answered is None:
                    return False
                self.send_response(answered.status)
                for name, value in {**answered.headers, "Content-Length": str(len(answered.body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answered.body)
                return True

            def do_GET(self) -> None:  # http.server's name
                if not self.routed("GET"):
                    super().do_GET()

            def do_POST(self) -> None:  # http.server's name
                if not self.routed("POST"):
                    self.send_error(405)

            def log_message(self, *args: object) -> None:
                pass

        Handler.extensions_map = {**Handler.extensions_map, **build.CONTENT_TYPES}
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop answering: the port is closed, as when the network is gone."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
