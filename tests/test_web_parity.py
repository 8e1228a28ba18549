"""The browser's preprocessing and model against Python's, on the same frames: fresh synth frames (plain and every
camera condition) and, where the folder exists, the real photos in ../shared/data/real-photos. The page reads each
frame's pixels (RGBA, decoded here by OpenCV as `predict` decodes them) with the app's own reader; Python reads
the same frame with `digitsum_edge.load(...).read`. The digits must agree on >= 99.5 % of the frames; the 28x28
images' mean absolute difference is reported, and must stay small. Also the page's own timing per 640x480 frame.

DIGITSUM_WEB_JSON=docs/web.json writes the figures (and the app's size); DIGITSUM_WEB_MODEL=runs/model.onnx measures the
default model instead of the tiny one; DIGITSUM_WEB_FRAMES sets the frames per condition (default 8)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from browser_helpers import CHROMIUM, ISOLATED, Answer, Chromium, StaticServer, npm_files_or_skip, write_y4m
from digitsum_edge.apps.reader import load
from digitsum_edge.apps.sources import list_images, read_image
from digitsum_edge.synth import conditions
from digitsum_edge.synth.frames import frames, pick_digits
from digitsum_edge.timing import cpu_snapshot, others_cpu_share
from digitsum_edge.vision import settings as defaults
from digitsum_edge.web import build

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")]

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-photos"
MIN_AGREEMENT = 0.995  # the contract: the browser's digit equals Python's on >= 99.5 % of frames
MAX_MEAN_ABS = 1.0  # grey levels: the 28x28 images of frames read on both sides, averaged over all their pixels
CHUNK = 20  # frames per call into the page (each call bounded in time)
# frames timed in the page after the parity run (640x480 plain frames, in turn) when DIGITSUM_WEB_JSON writes the
# figures; otherwise each plain frame once: the same frames for the SIMD/loops check, a rougher median printed
TIMED = 100


def frame_sets(seed: int, per_condition: int) -> dict[str, list[tuple[np.ndarray, float]]]:
    """name -> [(BGR frame, roi)]: fresh synth frames for a seed (camera roi), the real photos (a still's roi)."""
    sets = {"plain synth": [(f, defaults.ROI) for f, _ in frames(*pick_digits(per_condition * 2, seed), seed)]}
    for name in conditions.CONDITIONS:
        sets[name] = [(f, defaults.ROI) for f, _ in conditions.sample(name, per_condition, seed)]
    # The same scenes read as whole pictures (roi 1, as `predict` reads a photo): the other path of the
    # preprocessing (padding, ink colour from the border, rules that repeat, marks gathered into groups).
    sets["synth as whole pictures"] = [(f, defaults.STILL_ROI) for name in conditions.CONDITIONS
                                       for f, _ in conditions.sample(name, per_condition // 2, seed + 1)]
    if PHOTOS.is_dir():
        sets["real photos"] = [(read_image(p), defaults.STILL_ROI) for p in list_images(PHOTOS)]
    else:
        print(f"skip: {PHOTOS} is absent: parity on synth frames only")
    return sets


def python_readings(model: Path, items: list[tuple[np.ndarray, float]], rand: int) -> list[dict]:
    readers = {roi: load(model, "cpu", 1, roi=roi) for roi in {roi for _, roi in items}}
    out = []
    for frame, roi in items:
        r = readers[roi].read(frame, rand)
        out.append({"found": r.found, "digit": r.digit, "mnist": r.mnist, "ms": r.ms})
    return out


READ_CHUNK = """(async () => {
  const reader = window.digitsum.reader, out = [];
  for (const [index, roi] of %s) {
    const response = await fetch(`frames/${index}`);
    const width = Number(response.headers.get('X-Width')), height = Number(response.headers.get('X-Height'));
    const pixels = new Uint8ClampedArray(await response.arrayBuffer());
    reader.setRoi(roi);
    const r = await reader.read(new ImageData(pixels, width, height), %d);
    out.push({found: r.found, digit: r.digit, ms: r.ms, prepare_ms: r.prepare_ms, infer_ms: r.infer_ms,
              mnist: r.mnist ? Array.from(r.mnist) : null});
  }
  return out;
})()"""


# cvlite's WebAssembly SIMD (morphology, and pixel by pixel operations) against its plain loops (the path of browsers
# without SIMD), on random images, rectangles, operations and thresholds: the same pixels, or the first case that
# differs.
SIMD_AGAINST_LOOPS = """(() => {
  const cv = window.digitsum.reader.cv;
  if (!cv.useSimd(true)) return {simd: false};
  let seed = %d, cases = 0;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let t = 0; t < 400; t++) {
    const rows = 1 + Math.floor(random() * 140), cols = 1 + Math.floor(random() * 140);
    const kw = 1 + Math.floor(random() * 36), kh = 1 + Math.floor(random() * 36), op = Math.floor(random() * 10);
    const image = new cv.Mat(rows, cols), other = new cv.Mat(rows, cols), sparse = random() < 0.5;
    const level = Math.floor(random() * 300) - 20;
    for (let i = 0; i < rows * cols; i++) {
      image.data[i] = sparse ? (random() < 0.1 ? 255 : 0) : Math.floor(random() * 256);
      other.data[i] = random() < 0.2 ? image.data[i] : Math.floor(random() * 256);
    }
    const kernel = cv.getStructuringElement(cv.MORPH_RECT, new cv.Size(kw, kh));
    const [simd, loops] = [true, false].map((on) => {
      cv.useSimd(on);
      const out = new cv.Mat();
      if (op === 0) cv.erode(image, out, kernel);
      else if (op === 1) cv.dilate(image, out, kernel);
      else if (op < 5) cv.morphologyEx(image, out, [cv.MORPH_OPEN, cv.MORPH_CLOSE, cv.MORPH_GRADIENT][op - 2], kernel);
      else if (op === 5) cv.bitwise_and(image, other, out);
      else if (op === 6) cv.subtract(image, other, out);
      else if (op === 7) cv.max(image, other, out);
      else if (op === 8) cv.compare(image, other, out, cv.CMP_GT);
      else cv.threshold(image, out, level, 255, cv.THRESH_BINARY);
      return out.data;
    });
    cv.useSimd(true);
    if (simd.length !== loops.length || simd.some((v, i) => v !== loops[i])) {
      return {simd: true, differs: {rows, cols, kw, kh, op, level}};
    }
    cases += 1;
  }
  return {simd: true, cases};
})()"""


def browser_readings(browser: Chromium, items: list[tuple[np.ndarray, float]], rand: int) -> list[dict]:
    readings: list[dict] = []
    for start in range(0, len(items), CHUNK):
        chunk = [[i, items[i][1]] for i in range(start, min(start + CHUNK, len(items)))]
        value = browser.evaluate(READ_CHUNK % (json.dumps(chunk), rand), timeout=120)
        assert isinstance(value, list)
        readings += value
    return readings


def compare(python: list[dict], page: list[dict]) -> dict:
    same = [p["found"] == b["found"] and p["digit"] == b["digit"] for p, b in zip(python, page, strict=True)]
    both = [(p["mnist"].astype(np.int16), np.array(b["mnist"], np.int16).reshape(28, 28))
            for p, b in zip(python, page, strict=True) if p["found"] and b["found"]]
    diffs = [float(np.abs(a - b).mean()) for a, b in both]
    return {"frames": len(same), "digit_agreement": float(np.mean(same)), "disagreements": len(same) - sum(same),
            "both_found": len(both), "identical_28x28": sum(d == 0 for d in diffs),
            "mean_abs_diff_28x28": float(np.mean(diffs)) if diffs else 0.0,
            "max_mean_abs_diff_28x28": max(diffs, default=0.0)}


def test_the_browser_reads_as_python_does(tiny_onnx: Path, tmp_path: Path) -> None:
    npm_files_or_skip()
    model = Path(os.environ.get("DIGITSUM_WEB_MODEL", tiny_onnx))
    app = tmp_path / "app"
    built = build.run(build.WebConfig(out=str(app), model=str(model)))
    seed = int(time.time()) % 100_000  # fresh frames every run: no tuning to one set
    sets = frame_sets(seed, int(os.environ.get("DIGITSUM_WEB_FRAMES", "8")))
    items = [item for name in sets for item in sets[name]]
    names = [name for name in sets for _ in sets[name]]

    def route(method: str, path: str, sent: dict, body: bytes) -> Answer | None:  # frames/<i>: RGBA pixels
        if not path.startswith("/frames/"):
            return None
        frame = items[int(path.rsplit("/", 1)[1])][0]
        height, width = frame.shape[:2]
        return Answer(200, {"Content-Type": "application/octet-stream", "X-Width": str(width),
                            "X-Height": str(height)}, cv2.cvtColor(frame, cv2.COLOR_BGR2RGBA).tobytes())

    python = python_readings(model, items, rand=3)
    server = StaticServer(app, ISOLATED, route)
    camera = write_y4m(tmp_path / "camera.y4m", [items[0][0]])
    with tempfile.TemporaryDirectory(prefix="chromium-", dir=tmp_path) as profile:
        browser = Chromium(f"{server.url}/", camera, Path(profile))
        try:
            browser.wait_for("window.digitsum.reader !== null")
            browser.evaluate("window.digitsum.pause()")  # the camera loop stops reading: the CPU is the test's
            page = browser_readings(browser, items, rand=3)
            plain = [i for i, name in enumerate(names) if name == "plain synth"]
            timed = [plain[i % len(plain)] for i in range(TIMED if os.environ.get("DIGITSUM_WEB_JSON") else len(plain))]
            before = cpu_snapshot()
            times = browser_readings(browser, [items[i] for i in timed], rand=3)
            others = others_cpu_share(before, cpu_snapshot())
            isolated = browser.evaluate("self.crossOriginIsolated")
            kernel = browser.evaluate(SIMD_AGAINST_LOOPS % seed, timeout=120)
            browser.evaluate("window.digitsum.reader.cv.useSimd(false)")  # as a browser without WebAssembly SIMD
            loops = browser_readings(browser, [items[i] for i in timed], rand=3)
            browser.evaluate("window.digitsum.reader.cv.useSimd(true)")
        finally:
            browser.close()
            server.stop()
    per_set = {name: compare([python[i] for i, n in enumerate(names) if n == name],
                             [page[i] for i, n in enumerate(names) if n == name]) for name in sets}
    overall = compare(python, page)
    timing = {"frames": len(times), "cross_origin_isolated": isolated, "what": "preprocessing + inference per "
              "640x480 plain synth frame, in the page (ImageData -> reading), one wasm thread"}
    for key in ("ms", "prepare_ms", "infer_ms"):
        values = [r[key] for r in times]
        timing |= {f"median_{key}": float(np.median(values)), f"p90_{key}": float(np.percentile(values, 90))}
    loop_ms = [r["ms"] for r in loops]
    timing |= {"simd": bool(kernel.get("simd")), "median_ms_without_simd": float(np.median(loop_ms)),
               "p90_ms_without_simd": float(np.percentile(loop_ms, 90))}
    native = [r["ms"] for r in python_readings(model, [items[i] for i in timed], rand=3)]  # the same frames
    timing |= {"python_median_ms": float(np.median(native)), "python_p90_ms": float(np.percentile(native, 90)),
               "other_processes_cpu_share": others}  # (Chromium's own processes count as others here)
    size = {"files": len(built.files), "bytes": built.total, "gzipped_bytes": built.total_gzipped,
            "gzipped_by_file": built.gzipped}
    report = {"seed": seed, "model": str(model), "overall": overall, "per_set": per_set, "page_timing": timing,
              "app_size": size}
    print(json.dumps(report, indent=1))
    if os.environ.get("DIGITSUM_WEB_JSON"):
        Path(os.environ["DIGITSUM_WEB_JSON"]).write_text(json.dumps(report, indent=2) + "\n")
    assert overall["digit_agreement"] >= MIN_AGREEMENT, report
    assert overall["mean_abs_diff_28x28"] <= MAX_MEAN_ABS, report
    assert overall["both_found"] >= 0.5 * overall["frames"], report  # the comparison saw digits, not blanks
    assert isolated is True
    assert kernel == {"simd": True, "cases": 400}, kernel  # Chromium runs WebAssembly SIMD, and it equals the loops
    assert [r["mnist"] for r in loops] == [r["mnist"] for r in times], "the loops read other 28x28 images"
