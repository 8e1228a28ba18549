"""Camera-like frames of MNIST test digits: dark ink on unevenly lit paper, blurred, noisy, JPEG-compressed.

A data generator for demos, tests and benchmarks: it needs the bundled MNIST, and the runtime never
imports it. Each digit is placed, at a random size and small rotation, inside the region the reader uses.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from digitsum_edge import mnist
from digitsum_edge.apps.sources import VIDEO_FOURCC
from digitsum_edge.errors import DigitsumError
from digitsum_edge.files import atomic_path, check_folder, check_writable, write_json
from digitsum_edge.synth.conditions import render
from digitsum_edge.vision.settings import ROI

LABELS = "labels.json"  # in an image folder; beside a video it is <stem>.labels.json
log = logging.getLogger(__name__)


@dataclass
class SynthConfig:
    """`digitsum-edge synth`: what to generate and where."""

    out: str  # a .mp4/.avi video, or a folder of PNG images
    count: int = 60  # digits (MNIST test images, chosen at random)
    seed: int = 0  # same seed, same frames
    format: str | None = None  # "video" or "images"; None: video for .mp4/.avi, else images
    fps: float = 15.0  # video frame rate
    hold: int = 5  # video frames per digit (same placement, fresh noise), like a hand held still
    blank: float = 0.1  # fraction of digits replaced by blank paper (label null: "no digit")
    width: int = 640
    height: int = 480
    conditions: tuple[str, ...] = ()  # camera conditions (synth/conditions.py) taken in turn; (): plain frames
    force: bool = False  # replace an existing OUT


def camera_frame(digit: np.ndarray | None, rng: np.random.Generator, size: tuple[int, int] = (640, 480),
                 noise_rng: np.random.Generator | None = None, roi: float = ROI) -> np.ndarray:
    """(28, 28) uint8 MNIST digit (None: blank paper) -> (H, W, 3) uint8 BGR frame as a webcam sees it: the
    `plain` camera condition.

    Placement, lighting and ink come from `rng`; sensor noise, blur and JPEG from `noise_rng` (default
    `rng`), so the same `rng` seed with a fresh `noise_rng` gives the same scene with new noise.
    """
    return render("plain", digit, None, rng, size, noise_rng, roi)


def pick_digits(count: int, seed: int, blank: float = 0.0) -> tuple[np.ndarray, list[int | None]]:
    """`count` random MNIST test digits ((count, 28, 28) uint8) and labels; a `blank` fraction is None."""
    test = mnist.load("test")
    rng = np.random.default_rng(seed)
    index = rng.choice(len(test), size=count, replace=count > len(test))
    images = test.images[index]
    labels: list[int | None] = [int(v) for v in test.labels[index]]
    for i in np.flatnonzero(rng.random(count) < blank):
        labels[i] = None
    return images, labels


def frames(digits: np.ndarray, labels: Sequence[int | None], seed: int = 0, hold: int = 1,
           size: tuple[int, int] = (640, 480),
           conditions: Sequence[str] = ()) -> Iterator[tuple[np.ndarray, int | None]]:
    """(frame BGR uint8, label) for every digit, `hold` frames each (same scene, fresh noise).

    conditions: digit i is drawn in conditions[i % len(conditions)] (synth/conditions.py; "blank" shows
    no digit, label None); empty: `camera_frame`'s plain frames.
    """
    noise_rng = np.random.default_rng([seed, 1])
    for i, (digit, label) in enumerate(zip(digits, labels, strict=True)):
        condition = conditions[i % len(conditions)] if conditions else None
        if condition == "blank":
            label = None
        for _ in range(hold):
            scene_rng = np.random.default_rng([seed, 0, i])  # same placement for every held frame
            if condition is None:
                yield camera_frame(None if label is None else digit, scene_rng, size, noise_rng), label
            else:
                yield render(condition, None if label is None else digit, label, scene_rng, size, noise_rng), label


def write_video(path: str | os.PathLike, digits: np.ndarray, labels: Sequence[int | None], seed: int = 0,
                fps: float = 15.0, hold: int = 1, size: tuple[int, int] = (640, 480),
                conditions: Sequence[str] = ()) -> list[int | None]:
    """Write a .mp4 (mp4v) or .avi (MJPG) video and <stem>.labels.json beside it; per-frame labels."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_FOURCC:
        raise DigitsumError(f"video {path} must end in {' or '.join(VIDEO_FOURCC)}")
    per_frame: list[int | None] = []
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*VIDEO_FOURCC[path.suffix.lower()]), fps, size)
        if not writer.isOpened():
            raise DigitsumError(f"OpenCV cannot write video {path}")
        try:
            for frame, label in frames(digits, labels, seed, hold, size, conditions):
                writer.write(frame)
                per_frame.append(label)
        finally:
            writer.release()
    write_json(labels_path(path), {"format": "digitsum-edge.synth", "video": path.name, "seed": seed,
                                   "fps": fps, "hold": hold, "size": list(size), "labels": per_frame,
                                   **_conditions(conditions, len(labels), hold)})
    return per_frame


def write_images(folder: str | os.PathLike, digits: np.ndarray, labels: Sequence[int | None], seed: int = 0,
                 size: tuple[int, int] = (640, 480), force: bool = False,
                 conditions: Sequence[str] = ()) -> dict[str, int | None]:
    """Write frame_00000.png ... and labels.json {file: label} into `folder`, replaced whole or not at all."""
    folder = check_image_folder(folder, force=force)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        names: dict[str, int | None] = {}
        for i, (frame, label) in enumerate(frames(digits, labels, seed, 1, size, conditions)):
            name = f"frame_{i:05d}.png"
            if not cv2.imwrite(str(staging / name), frame):
                raise DigitsumError(f"cannot write {folder / name}")
            names[name] = label
        write_json(staging / LABELS, {"format": "digitsum-edge.synth", "seed": seed, "size": list(size),
                                      "labels": names, **_conditions(conditions, len(names), 1)})
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return names


def _conditions(conditions: Sequence[str], count: int, hold: int) -> dict:
    """{"conditions": [condition of each frame]} for the labels file, or nothing for plain frames."""
    if not conditions:
        return {}
    return {"conditions": [conditions[i % len(conditions)] for i in range(count) for _ in range(hold)]}


def check_image_folder(folder: str | os.PathLike, *, force: bool) -> Path:
    """An output folder of images: not a file, not a non-empty folder unless `force`, its parent writable."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DigitsumError(f"output {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise DigitsumError(f"output {folder} exists (use --force to replace it)")
    check_folder(folder.parent, output=folder)
    return folder


def labels_path(video: str | os.PathLike) -> Path:
    """runs/sample.mp4 -> runs/sample.labels.json."""
    video = Path(video)
    return video.with_name(f"{video.stem}.labels.json")


def read_labels(source: str | os.PathLike) -> list[int | None] | dict[str, int | None]:
    """The labels written with a video (list, per frame) or an image folder (dict, per file name)."""
    source = Path(source)
    path = source / LABELS if source.is_dir() else labels_path(source)
    try:
        return json.loads(path.read_text())["labels"]
    except (OSError, ValueError, KeyError) as e:
        raise DigitsumError(f"cannot read labels {path}: {e}") from None


def run(cfg: SynthConfig) -> tuple[Path, int]:
    """Generate the frames `cfg` asks for; returns (output path, number of frames)."""
    out = Path(cfg.out)
    kind = cfg.format or ("video" if out.suffix.lower() in VIDEO_FOURCC else "images")
    if kind not in ("video", "images"):
        raise DigitsumError(f"unknown format {kind!r} (video or images)")
    if cfg.count < 1 or cfg.hold < 1 or not 0 <= cfg.blank <= 1 or cfg.width < 32 or cfg.height < 32:
        raise DigitsumError("count and hold must be >= 1, blank in 0-1, size at least 32x32")
    if kind == "images":
        check_image_folder(out, force=cfg.force)
    else:
        check_writable(out, force=cfg.force)
        check_writable(labels_path(out), force=True)  # the labels belong to the video: replaced with it
    digits, labels = pick_digits(cfg.count, cfg.seed, cfg.blank)
    size = (cfg.width, cfg.height)
    if kind == "images":
        count = len(write_images(out, digits, labels, cfg.seed, size, cfg.force, cfg.conditions))
    else:
        count = len(write_video(out, digits, labels, cfg.seed, cfg.fps, cfg.hold, size, cfg.conditions))
    log.info(f"wrote {out} ({count} frames of {cfg.width}x{cfg.height}) and "
             f"{out / LABELS if kind == 'images' else labels_path(out)}")
    return out, count
