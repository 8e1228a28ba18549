"""The integer resizes of vision/resample.py against OpenCV's INTER_LINEAR / INTER_AREA, inside the reader: the
milliseconds per frame of `prepare` (frame -> 28x28) with each, in the same process, interleaved in blocks so
that a busy machine slows both alike (ratios, not absolute figures), and how many 28x28 images and digits change.

    .venv/bin/python benchmarks/resample.py --model /work/models/seed0/model.onnx --frames 20 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager

import cv2
import numpy as np

from digitsum_edge.apps.reader import load
from digitsum_edge.bench.report import cpu_name
from digitsum_edge.synth import conditions
from digitsum_edge.vision import preprocess, resample
from digitsum_edge.vision import settings as defaults


def opencv_resize(image: np.ndarray, size: tuple[int, int], area: bool = False) -> np.ndarray:
    """What preprocess.py called before: OpenCV's INTER_AREA (shrinking) or INTER_LINEAR."""
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if area else cv2.INTER_LINEAR)


@contextmanager
def resizing_with(function):
    saved = preprocess.resample.resize
    preprocess.resample.resize = function
    try:
        yield
    finally:
        preprocess.resample.resize = saved


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--frames", type=int, default=20, help="frames per camera condition")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seed", type=int, default=10000)
    args = p.parse_args()
    cv2.setNumThreads(1)
    frames = [(f, roi) for roi in (defaults.ROI, defaults.STILL_ROI) for name in conditions.CONDITIONS
              for f, _ in conditions.sample(name, args.frames, args.seed)]
    readers = {roi: load(args.model, "cpu", 1, roi=roi) for roi in (defaults.ROI, defaults.STILL_ROI)}
    ways = {"opencv": opencv_resize, "integer": resample.resize}
    times: dict[str, list[float]] = {k: [] for k in ways}
    readings: dict[str, list] = {}
    for _ in range(args.rounds):
        for name, function in ways.items():
            with resizing_with(function):
                out = []
                started = time.perf_counter()
                for frame, roi in frames:
                    out.append(preprocess.prepare(frame, readers[roi].preprocess))
                times[name].append((time.perf_counter() - started) * 1000 / len(frames))
                readings[name] = out
    for name in ways:
        print(f"{name:>8}: {statistics.median(times[name]):.3f} ms per frame (median of {args.rounds} rounds of "
              f"{len(frames)} frames)")
    print(f"ratio integer / opencv: {statistics.median(times['integer']) / statistics.median(times['opencv']):.3f} "
          f"({cpu_name()}, 1 thread)")
    a, b = readings["opencv"], readings["integer"]
    both = [(x.mnist, y.mnist) for x, y in zip(a, b, strict=True) if x.mnist is not None and y.mnist is not None]
    found = sum((x.mnist is None) != (y.mnist is None) for x, y in zip(a, b, strict=True))
    same = sum(np.array_equal(x, y) for x, y in both)
    print(f"28x28 images: {same} of {len(both)} identical, found differs on {found} frames")
    digits = {}
    for name, rs in readings.items():
        ms = np.stack([r.mnist for r in rs if r.mnist is not None])
        digits[name] = readers[defaults.ROI].predict(ms, 3).digits
    if len(digits["opencv"]) == len(digits["integer"]):
        print(f"digits differ on {int((digits['opencv'] != digits['integer']).sum())} of {len(digits['opencv'])}")


if __name__ == "__main__":
    main()
