"""The main job end to end with default settings, as `make demo` runs it (slow: about 4 minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import invoke

pytestmark = pytest.mark.slow


def test_train_export_bench_live_with_defaults(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert invoke("-q", "train", "--out", runs).exit_code == 0
    metrics = json.loads((runs / "metrics.json").read_text())
    # floors a sound default run clears by a wide margin (it reaches about 99.5 %); not the speed target
    assert metrics["digit_accuracy"] > 0.99 and metrics["sum_accuracy"] > 0.99
    assert metrics["sum_consistency"] > 0.995

    assert invoke("export", runs / "model.pt", "--int8").exit_code == 0
    bench = invoke("bench", "--checkpoint", runs / "model.pt", "--batch-sizes", "1,64", "--budget", "0.3",
                   "--json", runs / "bench.json", "--plot", runs / "bench.png", "--min-accuracy", "0.99")
    assert bench.exit_code == 0, bench.output
    assert (runs / "bench.png").stat().st_size > 0
    report = json.loads((runs / "bench.json").read_text())
    timed = {(r["backend"], r["precision"], r["batch"]) for r in report["rows"] if r.get("status", "ok") == "ok"}
    for backend, precision in (("pytorch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")):
        assert {(backend, precision, 1), (backend, precision, 64)} <= timed, (backend, precision)
    assert all(p["pass"] and p["digit_accuracy"] > 0.99 for p in report["parity"])  # every file, every pair

    video = runs / "sample.mp4"
    assert invoke("synth", video).exit_code == 0
    assert invoke("live", "--source", video, "--model", runs / "model.onnx", "--rand", 7, "--no-window",
                  "--jsonl", runs / "live.jsonl", "--save-video", runs / "live.mp4").exit_code == 0
    frames = [json.loads(line) for line in (runs / "live.jsonl").read_text().splitlines()]
    labels = json.loads((runs / "sample.labels.json").read_text())["labels"]  # one per frame, None: blank
    assert len(frames) == len(labels) and (runs / "live.mp4").stat().st_size > 0
    digits = [(f, label) for f, label in zip(frames, labels, strict=True) if label is not None]
    blanks = [f for f, label in zip(frames, labels, strict=True) if label is None]
    assert sum(f["found"] and f["digit"] == label and f["sum"] == label + 7 for f, label in digits) > 0.95 * len(digits)
    assert sum(not f["found"] for f in blanks) >= 0.9 * len(blanks)
