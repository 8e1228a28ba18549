"""The live pipeline timed as it runs on a device: camera frame -> preprocessing + inference, one thread."""

from __future__ import annotations

import time
from collections.abc import Sequence

import cv2
import numpy as np

from digitsum_edge.apps.reader import DigitReader
from digitsum_edge.timing import summarize


def time_pipeline(reader: DigitReader, frames: Sequence[np.ndarray], labels: Sequence[int], rand: Sequence[int],
                  warmup: int = 5) -> dict:
    """Read every frame once (after `warmup` untimed reads) on one OpenCV thread: timing and accuracy."""
    warmup = min(warmup, len(frames))
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)  # preprocessing on one thread, like the inference
    try:
        for frame, r in zip(frames[:warmup], rand[:warmup], strict=True):
            reader.read(frame, int(r))
        durations, readings = [], []
        for frame, r in zip(frames, rand, strict=True):
            start = time.perf_counter()
            readings.append(reader.read(frame, int(r)))
            durations.append(time.perf_counter() - start)
    finally:
        cv2.setNumThreads(previous)
    timing = summarize(durations, 1, warmup)
    h, w = frames[0].shape[:2]
    return {"status": "ok", "frame": f"{w}x{h}", "backend": f"{reader.backend.runtime} {reader.provider} "
            f"{reader.info.precision}", "threads": reader.backend.threads, "frames": len(frames),
            **timing.to_dict(), "frames_per_s": timing.images_per_s,
            "digit_accuracy": float(np.mean([x.digit == t for x, t in zip(readings, labels, strict=True)])),
            "sum_accuracy": float(np.mean([x.sum == t + r for x, t, r in zip(readings, labels, rand, strict=True)])),
            "no_digit": float(np.mean([not x.found for x in readings]))}
