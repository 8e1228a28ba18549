"""Network cameras: `live --source http://...` (MJPEG) read through OpenCV's FFmpeg from a local MJPEG-over-HTTP
server that each test starts on 127.0.0.1; reconnects after a drop; --latest-frame for a slow consumer."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitsum_edge.apps.live import LiveConfig
from digitsum_edge.apps.sources import CameraLost, Source, is_stream, redact
from digitsum_edge.errors import DigitsumError
from helpers import invoke


def _frame(index: int) -> np.ndarray:
    """A flat 64x48 frame whose colour encodes `index` (0-4095): a base-16 digit per channel, in steps of 16
    that JPEG's colour rounding keeps apart."""
    return np.full((48, 64, 3), [(index >> shift) % 16 * 16 + 8 for shift in (0, 4, 8)], np.uint8)


def _index(frame: np.ndarray) -> int:
    digits = [round((float(frame[..., c].mean()) - 8) / 16) for c in range(3)]
    return digits[0] + 16 * digits[1] + 256 * digits[2]


class MjpegServer:
    """multipart/x-mixed-replace JPEG frames at `fps`; the frame number runs on across connections.

    drop_after: close each connection after this many frames; accept: how many connections get a stream
    (later ones get 503).
    """

    def __init__(self, fps: float = 50.0, drop_after: int | None = None, accept: int = 1000):
        self.fps, self.drop_after, self.accept = fps, drop_after, accept
        self.sent = -1  # the last frame number sent
        self.connections = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner.lock:
                    owner.connections += 1
                    refused = owner.connections > owner.accept
                if refused or self.path != "/stream.mjpg":
                    self.send_error(503 if refused else 404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                count = 0
                while not owner.stopped.is_set() and (owner.drop_after is None or count < owner.drop_after):
                    with owner.lock:
                        owner.sent += 1
                        index = owner.sent
                    jpeg = cv2.imencode(".jpg", _frame(index), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
                    try:
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    count += 1
                    time.sleep(1 / owner.fps)

            def log_message(self, *args: object) -> None:
                pass

        self.stopped = threading.Event()
        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mjpeg() -> Iterator:
    servers: list[MjpegServer] = []

    def start(**options) -> MjpegServer:
        servers.append(MjpegServer(**options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _take(source: Source, count: int) -> list[int]:
    indexes = []
    for name, frame in source:
        assert name == source.name and frame.shape == (48, 64, 3)
        indexes.append(_index(frame))
        if len(indexes) == count:
            break
    return indexes


def test_stream_urls_are_streams_and_passwords_stay_out_of_names() -> None:
    assert all(is_stream(u) for u in ("rtsp://cam/1", "RTSP://cam", "rtsps://cam", "http://h/x.mjpg", "https://h/"))
    assert not any(is_stream(u) for u in ("0", "video.mp4", "runs/http", "file:///x.mp4"))
    assert redact("rtsp://admin:secret@10.0.0.5:554/stream1") == "rtsp://admin:***@10.0.0.5:554/stream1"
    assert redact("http://cam.local/video.mjpg") == "http://cam.local/video.mjpg"


def test_an_mjpeg_stream_delivers_every_frame_in_order(mjpeg) -> None:
    server = mjpeg()
    url = server.url.replace("http://", "http://viewer:secret@")  # credentials travel, but are never shown
    with Source(url) as source:
        assert source.kind == "stream" and "secret" not in source.name and "viewer:***@" in source.name
        indexes = _take(source, 12)
    assert indexes == list(range(indexes[0], indexes[0] + 12)), indexes  # consecutive: nothing lost or reordered
    assert source.capture is None


def test_a_dropped_stream_is_reconnected(mjpeg) -> None:
    server = mjpeg(drop_after=5)
    with Source(server.url, retries=3, retry_wait=0.05) as source:
        indexes = _take(source, 14)
        assert source.reconnects >= 2
    assert server.connections >= 3
    assert indexes == sorted(indexes) and len(set(indexes)) == 14  # frames keep coming, in order, after each drop


def test_a_stream_that_stays_away_is_a_lost_camera(mjpeg) -> None:
    server = mjpeg(drop_after=3, accept=1)  # the second connection and later get HTTP 503
    got = []
    with Source(server.url, retries=2, retry_wait=0.05) as source, \
            pytest.raises(CameraLost, match=r"dropped after 3 frames and did not come back \(2 reconnects\)"):
        for _, frame in source:
            got.append(_index(frame))
    assert len(got) == 3 and server.connections == 3  # the first stream, then two refused reconnects


def test_latest_frame_skips_what_a_slow_consumer_missed(mjpeg) -> None:
    server = mjpeg(fps=50)
    for latest in (False, True):
        with Source(server.url, latest_frame=latest) as source:
            frames = iter(source)
            first = _index(next(frames)[1])
            sent_before_sleep = server.sent
            time.sleep(1.0)  # a consumer busy for a second
            second = _index(next(frames)[1])
        if latest:  # the newest frame: one the server sent while the consumer was busy
            assert second > sent_before_sleep and second - first > 1, (first, sent_before_sleep, second)
        else:  # buffered: the very next frame, however old it has become
            assert second == first + 1, (first, second)


def test_latest_frame_stops_its_reader_on_close(mjpeg) -> None:
    server = mjpeg(fps=100)
    source = Source(server.url, latest_frame=True)
    assert len(_take(source, 3)) == 3
    source.close()
    assert source.capture is None
    assert not any(t.name == "digitsum-grab" and t.is_alive() for t in threading.enumerate())


def test_an_unreachable_stream_is_one_clear_error() -> None:
    with socketserver.TCPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler) as unused:
        port = unused.server_address[1]  # a port that was free a moment ago and has no listener now
    for url in (f"rtsp://127.0.0.1:{port}/cam", f"http://127.0.0.1:{port}/stream.mjpg"):
        with pytest.raises(DigitsumError, match=rf"cannot open stream {url} \(not reachable") as info:
            Source(url)
        assert "\n" not in str(info.value)


_LATEST = pytest.param(["--latest-frame"], marks=pytest.mark.skipif(
    "latest_frame" not in LiveConfig.__dataclass_fields__, reason="live has no --latest-frame option yet"))


@pytest.mark.parametrize("options", [[], _LATEST], ids=["every-frame", "latest-frame"])
def test_live_reads_a_network_camera(mjpeg, tiny_onnx: Path, tmp_path: Path, options: list[str]) -> None:
    server = mjpeg()
    out = tmp_path / "live.jsonl"
    result = invoke("live", "--source", server.url, "--model", tiny_onnx, "--no-window", "--max-frames", 6,
                    "--rand", 4, "--provider", "cpu", "--jsonl", out, *options)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(6))
    assert all(line["source"] == server.url and line["rand"] == 4 for line in lines)
    assert all(not line["found"] and line["reason"] for line in lines)  # flat frames hold no digit
