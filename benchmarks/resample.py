"""The exact resizes of runtime/resample.py against OpenCV's INTER_LINEAR / INTER_AREA, inside the reader: the
milliseconds per frame of `prepare` (frame -> 28x28) with each, in the same process, the two taking turns frame
by frame (a busy machine slows both alike: ratios, not absolute figures), the resize calls alone, and how many
28x28 images and digits change.

    PYTHONPATH=$PWD/src .venv/bin/python benchmarks/resample.py --model /work/models/seed0/model.onnx \\
        --frames 20 --rounds 5 --json docs/resample_zen3.json
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from contextlib import contextmanager

import cv2
import numpy as np

from digitsum_edge.bench.report import cpu_name
from digitsum_edge.errors import DigitsumError
from digitsum_edge.files import check_writable, write_json
from digitsum_edge.runtime import defaults, preprocess, resample
from digitsum_edge.runtime.reader import load
from digitsum_edge.synth import conditions
from digitsum_edge.timing import cpu_snapshot, load_warning, others_cpu_share


def opencv_resize(image: np.ndarray, size: tuple[int, int], area: bool = False) -> np.ndarray:
    """OpenCV's usual modes, which differ by a grey level between x86 and ARM: INTER_AREA (shrinking) or
    INTER_LINEAR."""
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if area else cv2.INTER_LINEAR)


WAYS = {"opencv": opencv_resize, "exact": resample.resize}


@contextmanager
def resizing_with(function):
    saved = preprocess.resample.resize
    preprocess.resample.resize = function
    try:
        yield
    finally:
        preprocess.resample.resize = saved


def prepare_ms(frames: list, readers: dict, rounds: int) -> dict[str, list[float]]:
    """Per round, each way's milliseconds per frame; the ways take turns on every frame, in alternating order
    (after a round untimed: caches, tables)."""
    per_round: dict[str, list[float]] = {name: [] for name in WAYS}
    names = list(WAYS)
    for name in names:
        with resizing_with(WAYS[name]):
            for frame, roi in frames:
                preprocess.prepare(frame, readers[roi].preprocess)
    for r in range(rounds):
        spent = dict.fromkeys(names, 0.0)
        gc.collect()
        gc.disable()
        try:
            for i, (frame, roi) in enumerate(frames):
                for name in names if (i + r) % 2 == 0 else names[::-1]:
                    with resizing_with(WAYS[name]):
                        started = time.perf_counter()
                        preprocess.prepare(frame, readers[roi].preprocess)
                        spent[name] += time.perf_counter() - started
        finally:
            gc.enable()
        for name in names:
            per_round[name].append(spent[name] * 1000 / len(frames))
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {v[-1]:.3f} ms" for n, v in per_round.items())
              + f", ratio {per_round['exact'][-1] / per_round['opencv'][-1]:.3f}", file=sys.stderr)
    return per_round


def resize_calls(frames: list, readers: dict) -> list[tuple[np.ndarray, tuple[int, int], bool]]:
    """The resize calls `prepare` makes on these frames (its inputs, copied)."""
    calls = []

    def record(image: np.ndarray, size: tuple[int, int], area: bool = False) -> np.ndarray:
        calls.append((image.copy(), size, area))
        return WAYS["exact"](image, size, area)

    with resizing_with(record):
        for frame, roi in frames:
            preprocess.prepare(frame, readers[roi].preprocess)
    return calls


def calls_ms(calls: list, frames: int, rounds: int) -> dict[str, dict[str, float]]:
    """The resize calls alone, linear ones and area ones apart: each way's best round, in ms per frame."""
    is_area = [area and size[0] <= image.shape[1] and size[1] <= image.shape[0] for image, size, area in calls]
    out: dict[str, dict[str, float]] = {}
    for mode in ("linear", "area"):
        chosen = [c for c, a in zip(calls, is_area, strict=True) if a == (mode == "area")]
        out[mode] = {"calls": len(chosen)}
        for name, function in WAYS.items():
            best = float("inf")
            for _ in range(rounds):
                started = time.perf_counter()
                for image, size, area in chosen:
                    function(image, size, area)
                best = min(best, time.perf_counter() - started)
            out[mode][f"{name}_ms_per_frame"] = round(best * 1000 / frames, 4)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--frames", type=int, default=20, help="frames per camera condition, read as a camera's and a still")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seed", type=int, default=10000)
    p.add_argument("--json", default=None, help="also write the result here")
    args = p.parse_args()
    try:
        if args.frames < 1 or args.rounds < 1:
            raise DigitsumError("--frames and --rounds must be at least 1")
        if args.json:
            check_writable(args.json, force=True)
        readers = {roi: load(args.model, "cpu", 1, roi=roi) for roi in (defaults.ROI, defaults.STILL_ROI)}
    except (DigitsumError, OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    cv2.setNumThreads(1)
    frames = [(f, roi) for roi in (defaults.ROI, defaults.STILL_ROI) for name in conditions.CONDITIONS
              for f, _ in conditions.sample(name, args.frames, args.seed)]
    start = cpu_snapshot()
    per_round = prepare_ms(frames, readers, args.rounds)
    ratios = [e / o for e, o in zip(per_round["exact"], per_round["opencv"], strict=True)]
    calls = calls_ms(resize_calls(frames, readers), len(frames), args.rounds)
    warning = load_warning(others_cpu_share(start, cpu_snapshot()))
    readings = {}
    for name, function in WAYS.items():
        with resizing_with(function):
            readings[name] = [preprocess.prepare(frame, readers[roi].preprocess) for frame, roi in frames]
    a, b = readings["opencv"], readings["exact"]
    both = [(x.mnist, y.mnist) for x, y in zip(a, b, strict=True) if x.mnist is not None and y.mnist is not None]
    found = sum((x.mnist is None) != (y.mnist is None) for x, y in zip(a, b, strict=True))
    digits = {name: readers[defaults.ROI].predict(np.stack([r.mnist for r in rs if r.mnist is not None]), 3).digits
              for name, rs in readings.items()}
    result = {
        "frames": len(frames), "rounds": args.rounds, "seed": args.seed, "model": args.model, "threads": 1,
        "prepare_ms": {name: round(statistics.median(v), 4) for name, v in per_round.items()},
        "ratio_exact_to_opencv": round(statistics.median(ratios), 4),
        "ratio_per_round": [round(r, 4) for r in ratios],
        "resize_calls": calls,
        "identical_28x28": sum(np.array_equal(x, y) for x, y in both), "both_found": len(both),
        "found_differs": found,
        "digits_differ": int((digits["opencv"] != digits["exact"]).sum())
        if len(digits["opencv"]) == len(digits["exact"]) else None,
        "load_warning": warning,
        "cpu": cpu_name(), "generated_at": time.strftime("%Y-%m-%d %H:%M"),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__},
    }
    for name in WAYS:
        print(f"{name:>7}: {result['prepare_ms'][name]:.3f} ms per frame (median of {args.rounds} rounds of "
              f"{len(frames)} frames)")
    print(f"ratio exact / opencv: {result['ratio_exact_to_opencv']:.3f} (median; rounds "
          f"{', '.join(f'{r:.3f}' for r in ratios)}; {result['cpu']}, 1 thread)")
    for mode, c in calls.items():
        print(f"{mode} resizes alone ({c['calls']} calls): exact {c['exact_ms_per_frame']:.4f}, opencv "
              f"{c['opencv_ms_per_frame']:.4f} ms per frame")
    print(f"28x28 images: {result['identical_28x28']} of {len(both)} identical, found differs on {found} frames; "
          f"digits differ on {result['digits_differ']}")
    if warning:
        print(f"warning: {warning}")
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
