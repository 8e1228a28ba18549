"""The page behind Ray's Python proxy (`serve --no-haproxy`): that proxy would hold every download in memory until
its client read it, so / serves no page there unless asked for, and says why; the API is served all the same."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from serve_helpers import ServeProcess, get, request

pytest.importorskip("ray.serve", reason="the serve extra is not installed")


def test_no_page_behind_rays_proxy_unless_asked_for(tiny_onnx: Path, tmp_path: Path) -> None:
    from digitsum_edge.synth.frames import frames, pick_digits

    server = ServeProcess(tiny_onnx, tmp_path / "serve.log", "--no-haproxy", "--no-token", "--web", tmp_path / "web")
    try:
        status, body, _ = get(f"{server.url}/")
        assert status == 503 and "HAProxy" in json.loads(body)["error"]  # says why, and what to do
        assert get(f"{server.url}/app.js")[0] == 404  # no page file, the 14 MB wasm least of all
        assert get(f"{server.url}/ort-wasm-simd-threaded.wasm")[0] == 404
        digits, labels = pick_digits(1, seed=3)
        image, _ = next(iter(frames(digits, labels, seed=3)))
        status, body, _ = request(f"{server.url}/v1/read?rand=4", cv2.imencode(".jpg", image)[1].tobytes())
        assert status == 200 and json.loads(body)["rand"] == 4  # the API is served
    finally:
        assert server.stop() == 0
    log = server.log.read_text()
    assert "the page at / is not served" in log and "| no page |" in log
    assert not (tmp_path / "web").exists()  # nothing was built for a page that is not served


def test_which_ingress_serves_the_page() -> None:
    from digitsum_edge.serve.config import ServeConfig, serves_page, uses_haproxy

    assert serves_page(ServeConfig(), uses_haproxy(ServeConfig()))  # serve's default: HAProxy started here
    assert not serves_page(ServeConfig(haproxy=False), uses_haproxy(ServeConfig(haproxy=False)))
    assert not serves_page(ServeConfig(address="auto"), uses_haproxy(ServeConfig(address="auto")))  # a cluster's proxy
    asked = ServeConfig(haproxy=False, page_without_haproxy=True)
    assert serves_page(asked, uses_haproxy(asked))
