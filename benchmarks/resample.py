"""The exact resizes of vision/resample.py against OpenCV's INTER_LINEAR / INTER_AREA, inside the reader: the
milliseconds per frame of `prepare` (frame -> 28x28) with each, in the same process, the two taking turns frame
by frame (a busy machine slows both alike: ratios, not absolute figures), the resize calls alone, and how many
28x28 images and digits change. With --arm64 N, also each resize's bytes on N random images and sizes (1-319
pixels a side, growing or shrinking; half of them sizes of resample.py's float path) under emulation as a
Cortex-A72 and a Cortex-A76 (the cached bookworm arm64 userland of benchmarks/emulation.py) against x86-64's:
the exact ones must match on all, OpenCV's usual ones show what they replace.

    PYTHONPATH=$PWD/src .venv/bin/python benchmarks/resample.py --model /work/models/seed0/model.onnx \\
        --frames 20 --rounds 10 --arm64 1000 --json docs/resample_zen3.json

--against SRC times an earlier checkout's reader on the same frames (git worktree add /tmp/before REV, then
--against /tmp/before/src): what a user of that reader gains or loses.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

import emulation  # benchmarks/emulation.py: this script's folder is on sys.path
from digitsum_edge.apps.reader import load
from digitsum_edge.bench.report import cpu_name
from digitsum_edge.errors import DigitsumError
from digitsum_edge.files import check_writable, write_json
from digitsum_edge.synth import conditions
from digitsum_edge.timing import cpu_snapshot, load_warning, others_cpu_share
from digitsum_edge.vision import preprocess, resample
from digitsum_edge.vision import settings as defaults
from digitsum_edge.vision.frame import prepare


def opencv_resize(image: np.ndarray, size: tuple[int, int], area: bool = False) -> np.ndarray:
    """OpenCV's usual modes, which differ by a grey level between x86 and ARM: INTER_AREA (shrinking) or
    INTER_LINEAR."""
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if area else cv2.INTER_LINEAR)


WAYS = {"opencv": opencv_resize, "exact": resample.resize}
CLOCKS = ("wall", "cpu")


@contextmanager
def resizing_with(function):
    saved = preprocess.resample.resize
    preprocess.resample.resize = function
    try:
        yield
    finally:
        preprocess.resample.resize = saved


def prepare_ms(frames: list, readers: dict, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Per clock (wall; cpu: this process's, which other processes do not slow) and way, each round's milliseconds
    per frame; the ways take turns on every frame, in alternating order (after a round untimed: caches, tables)."""
    names = list(WAYS)
    per_round: dict[str, dict[str, list[float]]] = {clock: {name: [] for name in names} for clock in CLOCKS}
    for name in names:
        with resizing_with(WAYS[name]):
            for frame, roi in frames:
                prepare(frame, readers[roi].preprocess)
    for r in range(rounds):
        spent = {clock: dict.fromkeys(names, 0.0) for clock in CLOCKS}
        gc.collect()
        gc.disable()
        try:
            for i, (frame, roi) in enumerate(frames):
                for name in names if (i + r) % 2 == 0 else names[::-1]:
                    with resizing_with(WAYS[name]):
                        wall, cpu = time.perf_counter(), time.process_time()
                        prepare(frame, readers[roi].preprocess)
                        spent["cpu"][name] += time.process_time() - cpu
                        spent["wall"][name] += time.perf_counter() - wall
        finally:
            gc.enable()
        for clock in CLOCKS:
            for name in names:
                per_round[clock][name].append(spent[clock][name] * 1000 / len(frames))
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {v[-1]:.3f} ms" for n, v in per_round["wall"].items())
              + ", ratio " + ", ".join(f"{c} {per_round[c]['exact'][-1] / per_round[c]['opencv'][-1]:.3f}"
                                       for c in CLOCKS), file=sys.stderr)
    return per_round


def resize_calls(frames: list, readers: dict) -> list[tuple[np.ndarray, tuple[int, int], bool]]:
    """The resize calls `prepare` makes on these frames (its inputs, copied)."""
    calls = []

    def record(image: np.ndarray, size: tuple[int, int], area: bool = False) -> np.ndarray:
        calls.append((image.copy(), size, area))
        return WAYS["exact"](image, size, area)

    with resizing_with(record):
        for frame, roi in frames:
            prepare(frame, readers[roi].preprocess)
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


def hashes(cases: int, seed: int = 8) -> dict[str, list[str]]:
    """Each resize's output bytes (a short hash) on `cases` random images and sizes, the same on every machine."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {"exact linear": [], "exact area": [], "opencv linear": [], "opencv area": []}
    for case in range(cases):
        h, w, dh, dw = (int(v) for v in rng.integers(1, 320, 4))
        if case % 2:  # sizes whose linear weights are whole numbers of 1/256 (vision/resample.py's float path)
            dw, dh = (int(rng.choice([d for d in range(1, 320) if 128 * n % d == 0])) for n in (w, h))
        image = cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8), (3, 3), 1)
        shrunk = (min(dw, w), min(dh, h))
        for name, result in (("exact linear", resample.resize(image, (dw, dh))),
                             ("exact area", resample.resize(image, shrunk, area=True)),
                             ("opencv linear", opencv_resize(image, (dw, dh))),
                             ("opencv area", opencv_resize(image, shrunk, area=True))):
            out[name].append(hashlib.sha1(np.ascontiguousarray(result).tobytes()).hexdigest()[:16])
    return out


def arm64(cases: int) -> dict[str, dict[str, int]]:
    """Per emulated CPU and resize, on how many of the cases its bytes equal x86-64's."""
    here = hashes(cases)
    src = Path(resample.__file__).resolve().parents[2]
    out = {}
    with tempfile.TemporaryDirectory(prefix="resample-arm64-") as tmp:
        wheel = emulation.build_wheel(Path(tmp) / "wheel")
        userland = emulation.Userland(emulation.requirements(wheel))
        userland.ensure(wheel)
        for cpu in sorted(emulation.CPUS):
            print(f"emulated {cpu}: {cases} resizes of each kind ...", file=sys.stderr)
            done = userland.python([Path(__file__).resolve(), "--hashes", cases], cpu, timeout=3600,
                                   pythonpath=[src, userland.deps])
            if done.returncode != 0:
                raise RuntimeError(f"the emulated run failed: {done.stderr.strip()[-2000:]}")
            there = json.loads(done.stdout.strip().splitlines()[-1])
            same = {name: sum(a == b for a, b in zip(there[name], ours, strict=True)) for name, ours in here.items()}
            out[cpu] = {**same, "cases": cases}
    return out


def against(src: Path, args: argparse.Namespace) -> dict:
    """prepare's milliseconds per frame, both ways, with this checkout's src/ and with `src` (another checkout's):
    a process each per round, the two taking turns, in alternating order."""
    here = Path(resample.__file__).resolve().parents[2]
    command = [sys.executable, Path(__file__).resolve(), "--model", args.model, "--frames", args.frames, "--rounds",
               1, "--seed", args.seed, "--prepare-only"]
    per_round: dict[str, dict[str, list[float]]] = {"here": {}, "there": {}}
    for r in range(args.rounds):
        for side, folder in (("here", here), ("there", src))[:: 1 if r % 2 == 0 else -1]:
            done = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=1800,
                                  env={**os.environ, "PYTHONPATH": str(folder)})
            if done.returncode != 0:
                raise SystemExit(f"error: prepare with {folder} failed: {done.stderr.strip()[-1000:]}")
            for way, ms in json.loads(done.stdout.strip().splitlines()[-1]).items():
                per_round[side].setdefault(way, []).extend(ms)
        print(f"against, round {r + 1}/{args.rounds}: exact here {per_round['here']['exact'][-1]:.3f} ms, there "
              f"{per_round['there']['exact'][-1]:.3f} ms, opencv there {per_round['there']['opencv'][-1]:.3f} ms",
              file=sys.stderr)
    commit = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)

    def ratio(way: str) -> float:
        return round(statistics.median(a / b for a, b in zip(per_round["here"]["exact"], per_round["there"][way],
                                                              strict=True)), 4)

    return {"src": str(src), "commit": commit.stdout.strip() or None,
            "prepare_ms": {f"{side} {way}": round(statistics.median(ms), 4) for side, ways in per_round.items()
                           for way, ms in ways.items()},
            "ratio_here_exact_to_there_opencv": ratio("opencv"), "ratio_here_exact_to_there_exact": ratio("exact")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model")
    p.add_argument("--frames", type=int, default=20, help="frames per camera condition, read as a camera's and a still")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seed", type=int, default=10000)
    p.add_argument("--arm64", type=int, default=0, metavar="N",
                   help="also compare N resizes of each kind under ARM64 emulation against x86-64's")
    p.add_argument("--against", type=Path, metavar="SRC",
                   help="also time prepare with another checkout's src/ folder (an earlier reader), in processes "
                        "taking turns round by round")
    p.add_argument("--hashes", type=int, default=0, help=argparse.SUPPRESS)  # what --arm64 runs emulated
    p.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)  # what --against runs
    p.add_argument("--json", default=None, help="also write the result here")
    args = p.parse_args()
    if args.hashes:
        print(json.dumps(hashes(args.hashes)))
        return
    try:
        if not args.model:
            raise DigitsumError("--model is required")
        if args.frames < 1 or args.rounds < 1 or args.arm64 < 0:
            raise DigitsumError("--frames and --rounds must be at least 1, --arm64 at least 0")
        if args.json:
            check_writable(args.json, force=True)
        readers = {roi: load(args.model, "cpu", 1, roi=roi) for roi in (defaults.ROI, defaults.STILL_ROI)}
    except (DigitsumError, OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    try:
        emulated = arm64(args.arm64) if args.arm64 else None
    except (emulation.Unavailable, RuntimeError) as e:
        sys.exit(f"error: {e}")
    cv2.setNumThreads(1)
    frames = [(f, roi) for roi in (defaults.ROI, defaults.STILL_ROI) for name in conditions.CONDITIONS
              for f, _ in conditions.sample(name, args.frames, args.seed)]
    if args.prepare_only:
        print(json.dumps(prepare_ms(frames, readers, args.rounds)["wall"]))
        return
    start = cpu_snapshot()
    per_round = prepare_ms(frames, readers, args.rounds)
    earlier = against(args.against, args) if args.against else None
    ratios = {clock: [e / o for e, o in zip(v["exact"], v["opencv"], strict=True)] for clock, v in per_round.items()}
    calls = calls_ms(resize_calls(frames, readers), len(frames), args.rounds)
    warning = load_warning(others_cpu_share(start, cpu_snapshot()))
    readings = {}
    for name, function in WAYS.items():
        with resizing_with(function):
            readings[name] = [prepare(frame, readers[roi].preprocess) for frame, roi in frames]
    a, b = readings["opencv"], readings["exact"]
    both = [(x.mnist, y.mnist) for x, y in zip(a, b, strict=True) if x.mnist is not None and y.mnist is not None]
    found = sum((x.mnist is None) != (y.mnist is None) for x, y in zip(a, b, strict=True))
    digits = {name: readers[defaults.ROI].predict(np.stack([r.mnist for r in rs if r.mnist is not None]), 3).digits
              for name, rs in readings.items()}
    result = {
        "frames": len(frames), "rounds": args.rounds, "seed": args.seed, "model": args.model, "threads": 1,
        "prepare_ms": {name: round(statistics.median(v), 4) for name, v in per_round["wall"].items()},
        "ratio_exact_to_opencv": round(statistics.median(ratios["wall"]), 4),
        "ratio_per_round": [round(r, 4) for r in ratios["wall"]],
        "prepare_cpu_ms": {name: round(statistics.median(v), 4) for name, v in per_round["cpu"].items()},
        "cpu_ratio_exact_to_opencv": round(statistics.median(ratios["cpu"]), 4),
        "cpu_ratio_per_round": [round(r, 4) for r in ratios["cpu"]],
        "resize_calls": calls,
        "identical_28x28": sum(np.array_equal(x, y) for x, y in both), "both_found": len(both),
        "found_differs": found,
        "digits_differ": int((digits["opencv"] != digits["exact"]).sum())
        if len(digits["opencv"]) == len(digits["exact"]) else None,
        "against": earlier,
        "arm64_same_bytes_as_x86": emulated,
        "load_warning": warning,
        "cpu": cpu_name(), "generated_at": time.strftime("%Y-%m-%d %H:%M"),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__},
    }
    for name in WAYS:
        print(f"{name:>7}: {result['prepare_ms'][name]:.3f} ms per frame (median of {args.rounds} rounds of "
              f"{len(frames)} frames)")
    for clock, key in (("wall", "ratio_exact_to_opencv"), ("cpu", "cpu_ratio_exact_to_opencv")):
        print(f"ratio exact / opencv, {clock} time: {result[key]:.3f} (median; rounds "
              f"{', '.join(f'{r:.3f}' for r in ratios[clock])}; {result['cpu']}, 1 thread)")
    for mode, c in calls.items():
        print(f"{mode} resizes alone ({c['calls']} calls): exact {c['exact_ms_per_frame']:.4f}, opencv "
              f"{c['opencv_ms_per_frame']:.4f} ms per frame")
    print(f"28x28 images: {result['identical_28x28']} of {len(both)} identical, found differs on {found} frames; "
          f"digits differ on {result['digits_differ']}")
    if earlier:
        print(f"against {earlier['src']} ({earlier['commit']}): prepare with exact resizes here "
              f"{earlier['ratio_here_exact_to_there_opencv']:.3f}x of prepare with OpenCV's resizes there, "
              f"{earlier['ratio_here_exact_to_there_exact']:.3f}x of there with exact ones (medians of "
              f"{args.rounds} rounds)")
    for cpu, same in (emulated or {}).items():
        print(f"emulated {cpu}: the same bytes as x86-64 on " + ", ".join(
            f"{name} {n} of {same['cases']}" for name, n in same.items() if name != "cases"))
    if warning:
        print(f"warning: {warning}")
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
