"""One SHA-256 of what the camera path (roi < 1, the guide square) makes of every camera condition's frames: each
frame's 28x28 image, box and no-digit reason, so that a change meant for stills (roi 1) can show it left the camera
path as it was: run it before and after (`PYTHONPATH=` each checkout's src) and compare the digests.

    PYTHONPATH=src .venv/bin/python benchmarks/camera_path_hash.py --seeds 0,10000 --frames 50
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import cv2
import numpy as np

import digitsum_edge
from digitsum_edge.synth import conditions
from digitsum_edge.vision import settings as defaults
from digitsum_edge.vision.frame import prepare
from digitsum_edge.vision.preprocess import PreprocessConfig
from digitsum_edge.vision.settings import ReadingSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,10000", help="comma-separated frame seeds")
    parser.add_argument("--frames", type=int, default=50, help="frames per condition and seed")
    parser.add_argument("--roi", type=float, default=defaults.ROI)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    cfg = PreprocessConfig(reading=ReadingSettings(roi=args.roi))
    digest, count, ms = hashlib.sha256(), 0, []
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in conditions.CONDITIONS:
            for frame, _ in conditions.sample(name, args.frames, seed):
                started = time.perf_counter()
                prep = prepare(frame, cfg)
                ms.append((time.perf_counter() - started) * 1e3)
                digest.update(prep.mnist.tobytes() if prep.mnist is not None else b"none")
                digest.update(repr((prep.region, prep.box, prep.reason)).encode())
                count += 1
    print(json.dumps({"sha256": digest.hexdigest(), "frames": count, "roi": args.roi, "seeds": args.seeds,
                      "prepare_ms_median": round(float(np.median(ms)), 3), "package": digitsum_edge.__file__}))


if __name__ == "__main__":
    main()
