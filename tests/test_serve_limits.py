"""The service's limits without Ray: body deadlines and rates, the byte and request gates, what an image header
costs to decode, HAProxy's adjusted configuration, and finding a service's processes by their mark."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitsum_edge.serve import images
from digitsum_edge.serve.haproxy_shim import adjust, error_page
from digitsum_edge.serve.limits import BodyRules, Gate, TooSlow, Unavailable, read_body
from digitsum_edge.serve.processes import MARK, LocalRun
from digitsum_edge.serve.protocol import BadRequest
from serve_clients import free_port


async def _trickle(chunks: list[bytes], gap_s: float) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(gap_s)
        yield chunk


def _read(chunks: list[bytes], gap_s: float, declared: int | None, rules: BodyRules, budget: Gate) -> bytes:
    return asyncio.run(read_body(_trickle(chunks, gap_s), declared, rules, budget))


def test_a_body_that_arrives_in_time_is_read_and_its_bytes_are_held_until_given_back() -> None:
    budget = Gate(1000, "bytes")
    body = _read([b"ab", b"cd"], 0.01, 4, BodyRules(100, 5, 1e6), budget)
    assert body == b"abcd" and budget.held == 4  # held until the request is answered
    budget.give(len(body))
    assert _read([b"x" * 10] * 3, 0, None, BodyRules(100, 5, 1e6), budget) == b"x" * 30  # chunked: counted as read
    assert budget.held == 30


def test_a_slow_or_stalled_body_is_refused_and_gives_its_bytes_back() -> None:
    budget = Gate(10_000, "bytes")
    started = time.monotonic()
    with pytest.raises(TooSlow, match="did not arrive in time"):  # a stall: the deadline
        _read([b"a", b"b"], 5.0, 2, BodyRules(100, 0.3, 1e9), budget)
    assert time.monotonic() - started < 2 and budget.held == 0
    started = time.monotonic()
    with pytest.raises(TooSlow, match="at least 1 KiB/s"):  # 1 byte every 0.2 s: under the rate after the grace
        _read([b"z"] * 100, 0.2, 100, BodyRules(1000, 60, 1024), budget)
    assert time.monotonic() - started < 3 and budget.held == 0
    with pytest.raises(BadRequest, match="the limit is 100"):
        _read([b"a"], 0, 101, BodyRules(100, 5, 1e6), budget)
    with pytest.raises(BadRequest, match="over the limit of 100"):  # a body longer than it said
        _read([b"a" * 60, b"a" * 60], 0, None, BodyRules(100, 5, 1e6), budget)
    assert budget.held == 0


def test_a_full_gate_refuses_at_once_and_one_request_alone_always_passes() -> None:
    gate = Gate(10, "bytes")
    gate.take(20)  # alone: larger than the limit, still served (the body limit bounds it)
    with pytest.raises(Unavailable, match="retry after 1 s"):
        gate.take(1)
    gate.give(20)
    with gate.enter(6), pytest.raises(Unavailable):
        gate.take(5)
    assert gate.held == 0 and gate.refused == 2


def _png(width: int, height: int, depth: int, colour: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return images.PNG + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def test_decoding_cost_counts_bytes_not_pixels() -> None:
    header = images.image_header(_png(6320, 6320, 16, 6))  # 16-bit RGBA: 40 MP, 320 MB to decode
    assert (header.channels, header.sample_bytes) == (4, 2)
    with pytest.raises(BadRequest, match="4 channel\\(s\\) of 16 bits: 305 MiB to decode"):
        images.check_decode(header)
    images.check_decode(images.image_header(_png(6320, 6320, 8, 2)))  # the same pixels as 8-bit RGB: 114 MiB
    _, jpeg = cv2.imencode(".jpg", np.full((2400, 3200, 3), 200, np.uint8))
    header = images.image_header(jpeg.tobytes())
    assert (header.kind, header.width, header.height, header.channels) == ("JPEG", 3200, 2400, 3)
    assert images.reduction(header, 853) == 2 and images.reduction(header, 2400) == 1
    reduced = images.decode_image(jpeg.tobytes(), keep=853)
    assert reduced.shape == (1200, 1600, 3)  # decoded at half size by libjpeg
    _, png = cv2.imencode(".png", np.full((960, 1280, 3), 200, np.uint8))
    assert images.decode_image(png.tobytes(), keep=100).shape == (960, 1280, 3)  # PNGs are never reduced


CONFIG = """global
    stats socket /tmp/x/admin.sock mode 666 level admin expose-fd listeners
defaults
    mode http
    timeout client 30s
    errorfile 503 /x/500.http
backend http-app
    server SERVE_REPLICA_a-b 127.0.0.1:30000 check observe layer4
    server SERVE_PROXY_ACTOR-fallback-x 127.0.0.1:3 check backup
frontend prometheus
    bind :9101
frontend http_frontend
    bind *:8000
    acl is_http-app path_beg /
    use_backend http-app if is_http-app
    default_backend default_backend
listen stats
  bind *:8404
"""


def test_haproxy_configuration_is_private_and_times_requests_out() -> None:
    adjusted = adjust(CONFIG, stats_port=8404, metrics_port=9101, read_timeout_s=10, replica_maxconn=48,
                      queue_timeout_ms=100, errors={503: Path("/x/503.http")})
    assert "mode 600 level admin" in adjusted and "mode 666" not in adjusted
    assert "bind 127.0.0.1:9101" in adjusted and "bind 127.0.0.1:8404" in adjusted
    assert "bind *:8000" in adjusted  # the service itself listens where it was asked to
    assert ("defaults\n    timeout http-request 10000ms\n    option http-buffer-request\n    timeout queue 100ms\n"
            "    errorfile 503 /x/503.http\n    mode http") in adjusted
    assert "errorfile 503 /x/500.http" not in adjusted  # Ray's: every 503 a bare 500
    assert "server SERVE_REPLICA_a-b 127.0.0.1:30000 check observe layer4 maxconn 48\n" in adjusted
    assert "server SERVE_PROXY_ACTOR-fallback-x 127.0.0.1:3 check backup\n" in adjusted
    # the page's paths: a backend of their own on the same replicas, with its own places and timeouts
    assert ("frontend http_frontend\n    bind *:8000\n    acl digitsum_api path_beg /v1/ /v2/\n"
            "    acl digitsum_api path /v2 /healthz /docs /openapi.json\n") in adjusted
    assert ("    use_backend http-app-page if is_http-app !digitsum_api\n    use_backend http-app if is_http-app\n"
            in adjusted)
    twin = adjusted.split("backend http-app-page\n", 1)[1]
    assert twin.startswith("    timeout queue 10000ms\n    timeout server 10000ms\n")
    assert "server SERVE_REPLICA_a-b 127.0.0.1:30000 check observe layer4 maxconn 4\n" in twin
    tls = adjust(CONFIG, 8404, 9101, 10, 48, 100, {}, tls_pem=Path("/x/tls.pem"))
    assert "frontend http_frontend\n    bind *:8000 ssl crt /x/tls.pem alpn http/1.1 ssl-min-ver TLSv1.2\n" in tls
    page = error_page(503)
    assert page.startswith("HTTP/1.1 503 ") and "Retry-After: 1\r\n" in page
    assert json.loads(page.split("\r\n\r\n", 1)[1])["error"].endswith("retry after 1 s")


def test_a_services_processes_are_found_by_their_mark_and_ended(tmp_path) -> None:
    run = LocalRun()
    try:
        child = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                                  "time.sleep(60)"], env={**os.environ, MARK: run.token}, stdout=subprocess.PIPE)
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            assert run.folder.stat().st_mode & 0o777 == 0o700
            assert child.stdout is not None and child.stdout.readline() == b"ready\n"  # SIGTERM ignored from here
            assert run.processes() == [child.pid]  # not the unmarked one
            assert run.end(timeout_s=0.5) == [child.pid]  # it ignores SIGTERM: SIGKILL after the timeout
            assert child.wait(5) == -9 and other.poll() is None and not run.folder.exists()
        finally:
            for process in (child, other):
                process.kill()
                process.wait()
    finally:
        run.end(timeout_s=0.5)


def test_a_failed_start_leaves_no_private_folder(tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray refusing to start (here: made to) removes the folder made for HAProxy, and nothing else runs."""
    pytest.importorskip("ray.serve", reason="the serve extra is not installed")
    from digitsum_edge.errors import DigitsumError
    from digitsum_edge.serve import service
    from digitsum_edge.serve.config import ServeConfig

    def refuse(cfg: ServeConfig) -> None:
        raise DigitsumError("cannot start Ray: refused here")

    monkeypatch.setattr(os, "environ", dict(os.environ))  # what start() marks and sets stays in this test
    monkeypatch.setattr(service, "_init_ray", refuse)
    before = set(Path("/tmp").glob("dse-*"))
    with pytest.raises(DigitsumError, match="refused here"):
        service.start(ServeConfig(model=str(tiny_onnx), port=free_port()))
    assert set(Path("/tmp").glob("dse-*")) == before and service._local is None



def test_a_token_guards_v1_and_v2_only() -> None:
    from digitsum_edge.serve.limits import Unauthorized, check_token

    token = "t" * 20
    for path in ("/healthz", "/", "/page.js", "/docs"):
        check_token(None, token, path)  # open
    check_token(None, None, "/v1/read")  # no token: everything open
    check_token(f"Bearer {token}", token, "/v1/read")
    check_token(f"bearer  {token} ", token, "/v2/models/digitsum/infer")
    for header, path in ((None, "/v1/read"), (f"Bearer {token}x", "/v2/models/digitsum"), (token, "/v1/model"),
                         (f"Basic {token}", "/v1/predict"), ("Bearer ", "/v2")):
        with pytest.raises(Unauthorized):
            check_token(header, token, path)
