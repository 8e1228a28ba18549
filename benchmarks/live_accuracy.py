"""Accuracy and speed of the live pipeline (preprocessing + ONNX inference) on camera-like frames.

Generates N frames from MNIST test digits (dark ink on unevenly lit paper, blur, noise, JPEG, varied
size and rotation, 640x480), reads each with one thread on the CPU provider, and prints one JSON object:
digit accuracy, "no digit" rates, and milliseconds per frame (median, p90) beside the machine and versions.
Targets: >= 98 % digit accuracy, <= 1 ms per frame. Typical run: under a minute.

    .venv/bin/python benchmarks/live_accuracy.py --model runs/model.onnx --frames 1000
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import cv2
import numpy as np
import onnxruntime

from digitsum_edge.bench.report import cpu_name
from digitsum_edge.files import write_json
from digitsum_edge.runtime.preprocess import prepare
from digitsum_edge.runtime.reader import DigitReader
from digitsum_edge.runtime.session import open_model
from digitsum_edge.synth.frames import frames, pick_digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/model.onnx")
    parser.add_argument("--frames", type=int, default=1000, help="frames with a digit")
    parser.add_argument("--blank", type=int, default=200, help="extra frames of blank paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rand", type=int, default=7)
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    model = open_model(args.model, "cpu", threads=1)
    reader = DigitReader(model)
    digits, labels = pick_digits(args.frames + args.blank, args.seed)
    labels = [None if i >= args.frames else v for i, v in enumerate(labels)]
    generated = time.perf_counter()
    samples = list(frames(digits, labels, seed=args.seed))  # [(640x480 BGR frame, label or None)]
    generated = time.perf_counter() - generated

    for frame, _ in samples[:50]:  # warm-up
        reader.read(frame, args.rand)
    readings = [(reader.read(frame, args.rand), label) for frame, label in samples]
    total_ms = np.array([r.ms for r, _ in readings])
    prep_ms = []
    for frame, _ in samples[:300]:  # preprocessing alone, for the split
        started = time.perf_counter()
        prepare(frame)
        prep_ms.append((time.perf_counter() - started) * 1e3)
    mnist = next(r.mnist for r, _ in readings if r.found)
    infer_ms = []
    for _ in range(300):
        started = time.perf_counter()
        reader.classify(mnist, args.rand)
        infer_ms.append((time.perf_counter() - started) * 1e3)

    with_digit = [(r, label) for r, label in readings if label is not None]
    blanks = [r for r, label in readings if label is None]
    found = [(r, label) for r, label in with_digit if r.found]
    result = {
        "frames_with_digit": len(with_digit), "blank_frames": len(blanks), "frame_size": "640x480",
        "digit_accuracy": round(float(np.mean([r.digit == label for r, label in with_digit])), 4),
        "digit_accuracy_when_found": round(float(np.mean([r.digit == label for r, label in found])), 4),
        "sum_accuracy": round(float(np.mean([r.sum == label + args.rand for r, label in with_digit])), 4),
        "no_digit_rate": round(1 - len(found) / len(with_digit), 4),
        "blank_read_as_digit": round(float(np.mean([r.found for r in blanks])), 4) if blanks else None,
        "ms_per_frame": {"median": round(float(np.median(total_ms)), 3),
                         "p90": round(float(np.percentile(total_ms, 90)), 3),
                         "mean": round(float(total_ms.mean()), 3)},
        "ms_preprocess_median": round(float(np.median(prep_ms)), 3),
        "ms_inference_median": round(float(np.median(infer_ms)), 3),
        "targets": {"digit_accuracy": 0.98, "ms_per_frame": 1.0},
        "threads": 1, "provider": model.provider, "model": str(model.path),
        "model_test_digit_accuracy": model.info.test_metrics.get("digit_accuracy"),
        "seed": args.seed, "generate_seconds": round(generated, 1), "cpu": cpu_name(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
                     "onnxruntime": onnxruntime.__version__},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
