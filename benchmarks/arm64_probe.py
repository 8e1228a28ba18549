"""What `make arm64` compares between x86-64 and ARM64: run by both, natively and under emulation, with the
runtime install alone (numpy, OpenCV, ONNX Runtime; ai-edge-litert for .tflite files).

    python arm64_probe.py REQUEST.json OUT.npz

REQUEST: {"models": [file, ...], "pairs": P, "frames": [[image or video file, roi], ...], "reader_model": file,
"rand": r}. OUT holds, per model, the logits of the first P (test image, rand) pairs in `exhaustive_pairs`
order (`logits_<i>_digit`, `logits_<i>_sum`), and per frame what the reader made of it through the Python API
(`digitsum_edge.load`): a digest of the decoded frame and of the shrunk grey image (the first stage), the 28x28
image, found, digit and box; and the versions it ran with, as JSON in `info`.
"""

from __future__ import annotations

import json
import platform
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np

import digitsum_edge
from digitsum_edge import mnist
from digitsum_edge.apps.sources import read_image
from digitsum_edge.engine.factory import open_model
from digitsum_edge.evaluate import exhaustive_pairs
from digitsum_edge.vision import preprocess


def _say(text: str) -> None:
    print(f"[{platform.machine()}] {text}", file=sys.stderr, flush=True)


def main(request_path: str, out_path: str) -> None:
    request = json.loads(Path(request_path).read_text())
    out: dict[str, np.ndarray] = {}
    test = mnist.load("test")
    index, rand = exhaustive_pairs(len(test.images))
    pairs = int(request["pairs"])
    versions = {"numpy": np.__version__, "cv2": cv2.__version__}
    for i, model in enumerate(request["models"]):
        backend = open_model(model, "cpu", threads=1)
        digit, total = backend.logits(test.images[index[:pairs]], rand[:pairs])
        out[f"logits_{i}_digit"], out[f"logits_{i}_sum"] = digit, total
        versions[backend.runtime] = _runtime_version(backend.runtime)
        _say(f"{model}: {pairs} pairs")
    frames = [(frame, roi) for path, roi in request["frames"] for frame in _decoded(path)]
    readers: dict[float, digitsum_edge.DigitReader] = {}
    images = np.zeros((len(frames), 28, 28), np.uint8)
    found = np.zeros(len(frames), bool)
    digits = np.full(len(frames), -1, np.int64)
    boxes = np.full((len(frames), 4), -1, np.int64)
    decoded = np.zeros(len(frames), np.uint32)
    shrunk = np.zeros(len(frames), np.uint32)
    for k, (frame, roi) in enumerate(frames):
        reader = readers.get(roi) or readers.setdefault(roi, digitsum_edge.load(request["reader_model"], "cpu", 1,
                                                                                  roi=roi))
        decoded[k] = zlib.crc32(frame.tobytes())
        x, y, w, h = preprocess.roi_box(*frame.shape[:2], roi) if roi < 1 else (0, 0, frame.shape[1], frame.shape[0])
        gray = preprocess._shrink(preprocess.to_gray(frame[y:y + h, x:x + w]), reader.preprocess.work_size)
        shrunk[k] = zlib.crc32(gray.tobytes())
        reading = reader.read(frame, int(request["rand"]))
        found[k] = reading.found
        if reading.found:
            images[k], digits[k] = reading.mnist, reading.digit
        if reading.box is not None:
            boxes[k] = reading.box
        if (k + 1) % 50 == 0 or k + 1 == len(frames):
            _say(f"{k + 1}/{len(frames)} frames read")
    out.update(mnist=images, found=found, digits=digits, boxes=boxes, decoded=decoded, shrunk=shrunk)
    info = {"machine": platform.machine(), "python": platform.python_version(), "versions": versions,
            "digitsum_edge": digitsum_edge.__file__}
    np.savez(out_path, info=np.array(json.dumps(info)), **out)


def _decoded(path: str) -> list[np.ndarray]:
    """An image file's frame, or every frame of a video (decoded by this machine's OpenCV and FFmpeg)."""
    if Path(path).suffix.lower() not in (".mp4", ".avi"):
        return [read_image(path)]
    capture, frames = cv2.VideoCapture(path), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def _runtime_version(runtime: str) -> str:
    if runtime == "litert":
        from importlib.metadata import version

        return version("ai-edge-litert")
    import onnxruntime

    return onnxruntime.__version__


if __name__ == "__main__":
    main(*sys.argv[1:3])
