"""Frames from a camera index, a video file, an image file or a folder of images, all through OpenCV."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from digitsum_edge.errors import DigitsumError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
VIDEO_FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}  # videos written by live and synth; OpenCV's FFmpeg reads both


class CameraLost(DigitsumError):
    """A camera that delivered frames stopped: what was read so far is still worth keeping."""


def quiet_opencv() -> None:
    """Silence OpenCV's and FFmpeg's own console messages: failures become one DigitsumError line."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when a capture opens


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 BGR; unreadable is one clear error."""
    quiet_opencv()
    path = Path(path)
    if not path.is_file():
        raise DigitsumError(f"image {path} does not exist" if not path.exists() else f"image {path} is not a file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DigitsumError(f"cannot read image {path} (not an image OpenCV can decode)")
    return image


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder, sorted by name."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DigitsumError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


class Source:
    """Iterate (name, BGR frame) from a camera, a video, an image or a folder; close() releases a capture."""

    def __init__(self, spec: str, retries: int = 5, retry_wait: float = 0.2):
        quiet_opencv()
        self.spec = spec
        self.retries = retries  # a camera that stops delivering gets this many more tries
        self.retry_wait = retry_wait  # seconds between tries
        self.capture: cv2.VideoCapture | None = None
        self.files: list[Path] = []
        self._first: np.ndarray | None = None
        path = Path(spec)
        if spec.isdigit() and not path.exists():
            self.kind, self.name = "camera", f"camera:{spec}"
            self.capture = cv2.VideoCapture(int(spec))
            if not self.capture.isOpened():
                self.close()
                raise DigitsumError(f"no camera at index {spec} (or it is in use); use --source VIDEO|IMAGE|FOLDER")
        elif not path.exists():
            raise DigitsumError(f"source {spec} does not exist (a camera index, video, image or folder)")
        elif path.is_dir():
            self.kind, self.name, self.files = "images", str(path), list_images(path)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            self.kind, self.name, self.files = "image", str(path), [path]
            self._first = read_image(path)  # a single image is checked before anything starts
        else:
            self.kind, self.name = "video", str(path)
            self.capture = cv2.VideoCapture(str(path))
            if not self.capture.isOpened():
                self.close()
                raise DigitsumError(f"cannot read video {spec} (not a video OpenCV can decode)")

    @property
    def fps(self) -> float | None:
        """Frames per second the capture reports (None for images or when unknown)."""
        if self.capture is None:
            return None
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        return fps if 1 <= fps <= 240 else None

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        if self.capture is None:
            for path in self.files:
                yield str(path), self._first if self._first is not None else read_image(path)
            return
        delivered = 0
        while True:
            ok, frame = self.capture.read()
            if not ok and self.kind == "camera":
                for _ in range(self.retries):
                    time.sleep(self.retry_wait)
                    ok, frame = self.capture.read()
                    if ok:
                        break
                else:
                    if not delivered:
                        raise DigitsumError(f"{self.name} opened but delivers no frames ({self.retries} retries)")
                    raise CameraLost(f"{self.name} stopped delivering frames after {delivered} "
                                     f"({self.retries} retries)")
            if not ok:
                if not delivered:
                    raise DigitsumError(f"cannot read video {self.spec}: it holds no frames OpenCV can decode")
                return  # the end of the video
            delivered += 1
            yield self.name, frame

    def close(self) -> None:
        """Release the camera or video (safe to call twice)."""
        if self.capture is not None:
            self.capture.release()
            self.capture = None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
