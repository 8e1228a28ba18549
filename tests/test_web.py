"""`digitsum-edge web`: the static app folder, and the app in a real headless Chromium whose fake camera plays a
`synth` video of one digit: it must read that digit and the sum on the device, then again with the web server
gone (the service worker's copy). Skipped where Chromium, or npm and the npm packages, are missing."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from browser_helpers import CHROMIUM, ISOLATED, Answer, Chromium, StaticServer, npm_files_or_skip, pick_scene, write_y4m
from digitsum_edge.cli import main
from digitsum_edge.vision import settings as defaults
from digitsum_edge.vision.settings import ReadingSettings
from digitsum_edge.web import build


@pytest.fixture(scope="module")
def app(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app folder for the tiny model, written by the `web` command."""
    npm_files_or_skip()
    out = tmp_path_factory.mktemp("web") / "app"
    result = CliRunner().invoke(main, ["web", str(out), "--model", str(tiny_onnx)])
    assert result.exit_code == 0, result.output
    return out


def test_the_folder_holds_the_app_the_model_and_its_contract(app: Path, tiny_onnx: Path) -> None:
    files = sorted(str(p.relative_to(app)) for p in app.rglob("*") if p.is_file())
    assert {"index.html", "app.js", "reader.js", "preprocess.js", "sw.js", "manifest.webmanifest", "model.onnx",
            "digitsum.json", *(f"vendor/{name}" for name in build.VENDOR)} <= set(files)
    assert (app / "model.onnx").read_bytes() == tiny_onnx.read_bytes()
    settings = json.loads((app / "digitsum.json").read_text())
    assert settings["reading"] == ReadingSettings(roi=defaults.ROI).as_json()  # from the one owner, not spelled again
    assert (settings["model"]["mean"], settings["model"]["num_sums"]) == (0.1307, 19)
    worker = (app / "sw.js").read_text()
    cached = json.loads(re.search(r"const FILES = (\[.*\]);", worker).group(1))  # type: ignore[union-attr]
    assert sorted(cached) == sorted(["./", *(f for f in files if f != "sw.js")])  # every file, offline
    assert "__VERSION__" not in worker
    html = (app / "index.html").read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing from a CDN


def test_bad_input_is_one_line(app: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    exists = runner.invoke(main, ["web", str(app), "--model", str(app / "model.onnx")])
    assert exists.exit_code == 1 and exists.output.strip() == f"error: output {app} exists (use --force to replace it)"
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    bad = runner.invoke(main, ["web", str(tmp_path / "out"), "--model", str(junk)])
    assert bad.exit_code == 1 and bad.output.startswith("error: ") and len(bad.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_missing_npm_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    with pytest.raises(build.DigitsumError, match=r"^web needs npm"):
        build.npm_ci(tmp_path / "cache")


def test_the_port_follows_the_python_it_was_ported_from() -> None:
    """preprocess.js names the digests of the Python it ports: a change there (even one no frame here shows) must
    be ported, step for step, before the digests are updated."""
    import digitsum_edge.vision.frame as frame_py
    import digitsum_edge.vision.marks as marks_py
    import digitsum_edge.vision.preprocess as preprocess_py
    import digitsum_edge.vision.stills as stills_py

    named = dict(re.findall(r"vision/(\w+)\.py sha256:([0-9a-f]{16})", (build.APP / "preprocess.js").read_text()))
    for module in (frame_py, preprocess_py, marks_py, stills_py):
        name = Path(str(module.__file__)).stem
        digest = hashlib.sha256(Path(str(module.__file__)).read_bytes()).hexdigest()[:16]
        assert named.get(name) == digest, (f"vision/{name}.py changed since web/app/preprocess.js was ported from "
                                           f"it (sha256 {named.get(name)}, now {digest}): port the change, then "
                                           "update the digest at the top of preprocess.js")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_ports_unsure_guide_rule_is_pythons() -> None:
    """stills.js's doubtful (a still's guide-square reading found there only and read unsure: no digit) decides as
    vision/stills.py's does, around GUIDE_SURE, with the constants digitsum.json carries."""
    import subprocess

    from digitsum_edge.vision import stills as stills_py

    cases = [(steady, confidence) for steady in (False, True, None)
             for confidence in (0.2, stills_py.GUIDE_SURE - 1e-6, stills_py.GUIDE_SURE, 0.95)]
    script = (f"globalThis.self = globalThis; require({json.dumps(str(build.APP / 'stills.js'))});"
              f"const K = {json.dumps(stills_py.constants())}, cases = {json.dumps(cases)};"
              "console.log(JSON.stringify(cases.map(([steady, p]) => self.DigitsumStills.doubtful(K, {steady}, p))));")
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    want = [stills_py.doubtful(stills_py.Candidate((0, 0, 1, 1), (0, 0, 1, 1), 0.0, None, steady=steady), p)  # type: ignore[arg-type]
            for steady, p in cases]
    assert json.loads(done.stdout) == want and sum(want) == 2  # unsteady and below GUIDE_SURE only


def test_serve_keeps_the_app_of_its_model_and_builds_it_again_for_another(tiny_onnx: Path, tmp_path: Path) -> None:
    """What `serve` does before it starts: the app folder is reused for the same model file and sources, built again
    when the model (or the app) differs, and a folder that is not an app is never replaced."""
    onnx = pytest.importorskip("onnx")
    npm_files_or_skip()
    out = tmp_path / "web"
    config = build.WebConfig(out=str(out), model=str(tiny_onnx))
    assert build.ensure(config) is True and build.stale(out, hashlib.sha256(tiny_onnx.read_bytes()).hexdigest()) is None
    stamp = (out / "index.html").stat().st_mtime_ns
    assert build.ensure(config) is False and (out / "index.html").stat().st_mtime_ns == stamp  # reused
    other = onnx.load(str(tiny_onnx))  # the same network with one more metadata entry: another model file
    onnx.helper.set_model_props(other, {**{p.key: p.value for p in other.metadata_props}, "note": "retrained"})
    onnx.save(other, str(tmp_path / "other.onnx"))
    assert "another model" in str(build.stale(out, hashlib.sha256((tmp_path / "other.onnx").read_bytes()).hexdigest()))
    assert build.ensure(build.WebConfig(out=str(out), model=str(tmp_path / "other.onnx"))) is True
    assert (out / "model.onnx").read_bytes() == (tmp_path / "other.onnx").read_bytes()
    assert json.loads((out / "digitsum.json").read_text())["model"]["sha256"] == hashlib.sha256(
        (tmp_path / "other.onnx").read_bytes()).hexdigest()
    settings = json.loads((out / "digitsum.json").read_text())  # as if built by an older page
    (out / "digitsum.json").write_text(json.dumps({**settings, "sources": "0" * 16}))
    assert build.ensure(build.WebConfig(out=str(out), model=str(tmp_path / "other.onnx"))) is True
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("not an app")
    with pytest.raises(build.DigitsumError, match="is not a web app folder"):
        build.ensure(build.WebConfig(out=str(tmp_path / "notes"), model=str(tiny_onnx)))
    assert (tmp_path / "notes" / "mine.txt").read_text() == "not an app"


def test_serve_without_npm_files_serves_no_page_and_says_why_in_one_line(
        tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from digitsum_edge.serve import page
    from digitsum_edge.serve.served import ServedPage

    def no_npm(given: str | None = None) -> Path:
        raise build.DigitsumError("web needs npm to fetch onnxruntime-web once (install Node.js and npm)")

    monkeypatch.setattr(build, "node_modules", no_npm)
    with caplog.at_level("WARNING"):
        served = ServedPage(page.load_page(str(tiny_onnx), str(tmp_path / "web")), https=False, send_timeout_s=1)
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert lines == ["the page at / is unavailable (web needs npm to fetch onnxruntime-web once (install Node.js "
                     "and npm)); the API is served without it"], lines
    answer = served.answer("GET", "/", "gzip", None)
    assert answer is not None and answer.status == 503
    assert json.loads(answer.body) == {"error": "the page is unavailable: web needs npm to fetch onnxruntime-web once "
                                                "(install Node.js and npm)"}
    assert served.answer("GET", "/app.js", "gzip", None) is None and not (tmp_path / "web").exists()


def test_serve_answers_the_apps_files_gzipped_when_the_client_takes_it(app: Path) -> None:
    import gzip
    import hashlib

    from digitsum_edge.serve import page
    from digitsum_edge.serve.served import ServedPage, takes_gzip

    files = {"index.html": (app / "index.html").read_bytes(), "vendor/ort-wasm-simd-threaded.wasm": b"\0asm" * 100}
    served = ServedPage(page.Page({n: gzip.compress(d) for n, d in files.items()},
                                  {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}),
                        https=False, send_timeout_s=1)
    for accept, packed in (("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("*", True),
                           (None, False), ("identity", False), ("gzip;q=0", False), ("br", False)):
        assert takes_gzip(accept) is packed, accept
        answer = served.answer("GET", "/", accept, None)
        assert answer is not None and answer.status == 200
        body = gzip.decompress(answer.body) if packed else answer.body
        assert body == (app / "index.html").read_bytes()
        assert (answer.headers.get("Content-Encoding") == "gzip") is packed
        assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
        assert answer.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    wasm = served.answer("GET", "/vendor/ort-wasm-simd-threaded.wasm", None, None)
    assert wasm is not None and wasm.headers["Content-Type"] == "application/wasm" and wasm.body == b"\0asm" * 100
    assert served.answer("GET", "/sw.js", "gzip", None) is None
    assert served.answer("GET", "/../etc/passwd", "gzip", None) is None


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_app_reads_the_camera_on_the_device_and_offline(app: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    scene, digit = pick_scene(tiny_onnx)
    camera = write_y4m(tmp_path / "camera.y4m", scene)
    server = StaticServer(app, ISOLATED)
    shown_reading = ("(() => { const d = document.getElementById('result').dataset; "
                     "return d.rand === '3' && d.found === 'true' && d.where === 'device' ? {...d} : null; })()")
    choose_rand = ("(() => { const s = document.getElementById('rand'); s.value = '3'; "
                   "s.dispatchEvent(new Event('change')); })()")
    with tempfile.TemporaryDirectory(prefix="chromium-", dir=tmp_path) as profile:
        browser = Chromium(f"{server.url}/", camera, Path(profile))
        try:
            browser.wait_for("document.getElementById('status').textContent.includes('frames read')")
            browser.evaluate(choose_rand)
            shown = browser.wait_for(shown_reading)
            assert isinstance(shown, dict)
            assert (shown["digit"], shown["sum"], shown["uncertain"]) == (str(digit), str(digit + 3), "false"), shown
            text = browser.evaluate("document.getElementById('result').textContent")
            assert re.sub(r"\s+", " ", str(text)).strip() == f"{digit} + 3 = {digit + 3}"
            assert browser.evaluate("self.crossOriginIsolated") is True  # COOP/COEP: the fine timer
            assert browser.wait_for("window.digitsum.offline") == "works offline"
            assert browser.call("Page.getInstallabilityErrors")["installabilityErrors"] == []  # a PWA
            assert browser.evaluate("document.getElementById('where-label').hidden") is True  # no server here
            browser.wait_for("window.digitsum.stats().count >= 10")  # past the warm-up: a median worth showing
            image = browser.screenshot()
            # The other states, as the page draws them: a digit read below min_confidence, then no digit at all.
            browser.evaluate("window.digitsum.reader.minConfidence = 1.01")
            unsure = browser.wait_for("document.getElementById('result').dataset.uncertain === 'true' && "
                                      "document.getElementById('result').textContent")
            assert re.sub(r"\s+", " ", str(unsure)).strip() == f"{digit}? + 3 = {digit + 3}"
            browser.evaluate("window.digitsum.reader.setRoi(0.05)")  # a square too small to hold the digit
            nothing = browser.wait_for("document.getElementById('result').dataset.found === 'false' && "
                                       "document.getElementById('detail').textContent")
            assert str(nothing).startswith("no digit (") and str(nothing).endswith("| rand 3"), nothing
            browser.evaluate("window.digitsum.reader.minConfidence = 0.5; window.digitsum.reader.setRoi(0.6)")
            # The network cut: the server is gone, and the reloaded page comes from the service worker's cache.
            server.stop()
            browser.call("Page.reload", ignoreCache=False)
            browser.wait_for("navigator.serviceWorker.controller !== null && "
                             "document.getElementById('status').textContent.includes('frames read')")
            browser.evaluate(choose_rand)
            again = browser.wait_for(shown_reading)
            assert isinstance(again, dict) and (again["digit"], again["sum"]) == (str(digit), str(digit + 3)), again
        finally:
            browser.close()
            server.stop()
    screenshot = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    assert screenshot is not None and screenshot.shape[1] >= 600 and screenshot.std() > 10  # a real page, not blank
    if os.environ.get("DIGITSUM_WEB_SCREENSHOT"):  # how docs/web.png is made: DIGITSUM_WEB_SCREENSHOT=docs/web.png
        Path(os.environ["DIGITSUM_WEB_SCREENSHOT"]).write_bytes(image)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_under_a_service_the_app_reads_on_the_server_with_the_token(app: Path, tiny_onnx: Path,
                                                                     tmp_path: Path) -> None:
    """Served where v1/model answers (as under `serve`), the app offers "read on the server": it sends JPEG frames
    to v1/read with the token of its URL's fragment as a bearer token, and shows what the server read. The
    service here is a stand-in that answers only that token."""
    token, seen = "s3cret-Token", []
    reading = {"found": True, "digit": 7, "digit_confidence": 0.97, "rand": 3, "sum": 10, "sum_confidence": 0.96,
               "ms": 1.5, "box": [250, 190, 120, 140], "reason": None, "uncertain": False, "provider": "stand-in"}

    def service(method: str, path: str, sent: dict, body: bytes) -> Answer | None:
        if not path.startswith("/v1/"):
            return None
        seen.append((method, path.split("?")[0], sent.get("Authorization")))
        if sent.get("Authorization") != f"Bearer {token}":
            return Answer(401, {"Content-Type": "application/json"}, b'{"error": "a bearer token is needed"}')
        if method == "POST" and path.startswith("/v1/read?rand=3") and body[:2] == b"\xff\xd8":  # a JPEG frame
            return Answer(200, {"Content-Type": "application/json"}, json.dumps(reading).encode())
        return Answer(200, {"Content-Type": "application/json"}, b'{"serving": {}}')

    scene, _ = pick_scene(tiny_onnx)
    server = StaticServer(app, ISOLATED, service)
    with tempfile.TemporaryDirectory(prefix="chromium-", dir=tmp_path) as profile:
        browser = Chromium(f"{server.url}/#token={token}", write_y4m(tmp_path / "camera.y4m", scene), Path(profile))
        try:
            browser.wait_for("!document.getElementById('where-label').hidden")  # v1/model answered: a service
            browser.evaluate("(() => { for (const [id, value] of [['rand', '3'], ['where', 'server']]) { "
                             "const s = document.getElementById(id); s.value = value; "
                             "s.dispatchEvent(new Event('change')); } })()")
            shown = browser.wait_for("(() => { const d = document.getElementById('result').dataset; "
                                     "return d.where === 'server' && d.found === 'true' ? {...d} : null; })()")
            detail = browser.evaluate("document.getElementById('detail').textContent")
        finally:
            browser.close()
            server.stop()
    assert isinstance(shown, dict) and (shown["digit"], shown["sum"]) == ("7", "10"), shown
    assert "on the server (stand-in)" in str(detail)
    assert ("POST", "/v1/read", f"Bearer {token}") in seen
    assert all(auth == f"Bearer {token}" for _, _, auth in seen), seen  # never a request without it
