"""Frames from a camera index, a network stream (rtsp://, http:// MJPEG), a video file, an image file or a folder
of images, all through OpenCV (image files through apps/images.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from digitsum_edge.apps.images import (
    IMAGE_SUFFIXES,
    UnreadableImage,
    list_images,
    none_read,
    quiet_opencv,
    read_image,
    skip_line,
)
from digitsum_edge.errors import DigitsumError

VIDEO_FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}  # videos written by live and synth; OpenCV's FFmpeg reads both
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")  # network cameras, read through FFmpeg
STREAM_TIMEOUT_MS = 5000  # opening a stream, and each read: a dead camera is noticed within this
MAX_RECONNECT_WAIT = 5.0  # seconds: the longest wait between two reconnects of a dropped stream
log = logging.getLogger(__name__)


class CameraLost(DigitsumError):
    """A camera that delivered frames stopped: what was read so far is still worth keeping."""


STILLS = ("image", "images")  # the kinds of source that are still pictures, usually framed on a digit


def source_kind(spec: str) -> str | None:
    """What --source names: stream, camera, images (a folder), image, video; None when it does not exist."""
    path = Path(spec)
    if is_stream(spec):
        return "stream"
    if spec.isdigit() and not path.exists():
        return "camera"
    if not path.exists():
        return None
    if path.is_dir():
        return "images"
    return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"


def is_stream(spec: str) -> bool:
    """A network camera: rtsp://, rtsps://, http:// or https:// (MJPEG, or any stream FFmpeg reads)."""
    return spec.lower().startswith(STREAM_SCHEMES)


def redact(url: str) -> str:
    """The URL without its password, for messages and JSON lines: rtsp://user:***@host/path."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Source:
    """Iterate (name, BGR frame) from a camera, a network stream, a video, an image or a folder; close()
    releases a capture.

    A camera that stops delivering gets `retries` more reads, `retry_wait` seconds apart; a network stream
    that drops is reconnected up to `retries` times in a row, waiting `retry_wait` seconds, doubling to at
    most 5 s. latest_frame (cameras and streams): a thread reads frames as they come and the iterator yields
    the newest one, skipping those a slow consumer had no time for, so it never lags behind the scene.
    """

    def __init__(self, spec: str, retries: int = 5, retry_wait: float = 0.2, latest_frame: bool = False):
        quiet_opencv()
        self.spec = spec
        self.retries = retries  # a camera that stops delivering gets this many more tries
        self.retry_wait = retry_wait  # seconds between tries
        self.latest_frame = latest_frame
        self.capture: cv2.VideoCapture | None = None
        self.files: list[Path] = []
        self.reconnects = 0  # times a network stream was opened again after it dropped
        self.skipped: list[UnreadableImage] = []  # images of a folder that could not be read (each logged)
        self._closing = threading.Event()  # close() was called: stop reading, waiting and reconnecting
        self._first: np.ndarray | None = None
        self._grabber: _Grabber | None = None
        path = Path(spec)
        self.kind = source_kind(spec)
        if self.kind == "stream":
            self.name = redact(spec)
            self.capture = self._open_stream()
            if self.capture is None:
                raise DigitsumError(f"cannot open stream {self.name} (not reachable, or not a video stream "
                                    "FFmpeg can read)")
        elif self.kind == "camera":
            self.name = f"camera:{spec}"
            self.capture = cv2.VideoCapture(int(spec))
            if not self.capture.isOpened():
                self.close()
                raise DigitsumError(f"no camera at index {spec} (or it is in use); use --source VIDEO|IMAGE|FOLDER")
            if latest_frame:
                self.capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # drivers that honour it keep one frame
        elif self.kind is None:
            raise DigitsumError(f"source {spec} does not exist (a camera index, video, image, folder, "
                                "rtsp:// or http:// stream)")
        elif self.kind == "images":
            self.name, self.files = str(path), list_images(path)
        elif self.kind == "image":
            self.name, self.files = str(path), [path]
            self._first = read_image(path)  # a single image is checked before anything starts
        else:
            self.name = str(path)
            self.capture = cv2.VideoCapture(str(path))
            if not self.capture.isOpened():
                self.close()
                raise DigitsumError(f"cannot read video {spec} (not a video OpenCV can decode)")

    def _open_stream(self) -> cv2.VideoCapture | None:
        """Open the network stream through FFmpeg with open and read time-outs; None if it cannot."""
        timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    STREAM_TIMEOUT_MS]
        capture = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, timeouts)
        if capture.isOpened():
            return capture
        capture.release()
        return None

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
                if self._first is not None:
                    yield str(path), self._first
                    continue
                try:
                    image = read_image(path)
                except UnreadableImage as e:  # one bad file does not end a folder: named, counted, skipped
                    log.warning(skip_line(e))
                    self.skipped.append(e)
                    continue
                yield str(path), image
            if self.skipped and len(self.skipped) == len(self.files):
                raise DigitsumError(none_read(len(self.files)))
            return
        if not self.latest_frame or self.kind == "video":  # a file has no "newest" frame: read them all
            for frame in self._frames():
                yield self.name, frame
            return
        if self._grabber is None:
            self._grabber = _Grabber(self._frames())
        for frame in self._grabber.newest():
            yield self.name, frame

    def _frames(self) -> Iterator[np.ndarray]:
        """Every frame the capture delivers; a camera is retried and a stream reconnected when they stop."""
        delivered = 0
        while not self._closing.is_set():
            assert self.capture is not None  # released only after the reading stopped
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
            if not ok and self.kind == "stream":
                reconnected = self._reconnect(delivered)
                if reconnected is None:  # closed while reconnecting
                    return
                ok, frame = True, reconnected
            if not ok:
                if not delivered:
                    raise DigitsumError(f"cannot read video {self.spec}: it holds no frames OpenCV can decode")
                return  # the end of the video
            delivered += 1
            yield frame

    def _reconnect(self, delivered: int) -> np.ndarray | None:
        """Open a dropped stream again, with growing waits, and return its first frame; CameraLost when it
        stays away; None when the source was closed meanwhile."""
        wait = self.retry_wait
        for _ in range(self.retries):
            if self.capture is not None:
                self.capture.release()
            if self._closing.wait(wait):
                return None
            wait = min(2 * wait, MAX_RECONNECT_WAIT)
            self.capture = self._open_stream() or cv2.VideoCapture()  # a closed capture reads nothing
            ok, frame = self.capture.read()
            if ok:
                self.reconnects += 1
                return frame
        raise CameraLost(f"{self.name} dropped after {delivered} frames and did not come back "
                         f"({self.retries} reconnects)")

    def close(self) -> None:
        """Release the camera or video (safe to call twice)."""
        self._closing.set()
        if self._grabber is not None:
            self._grabber.stop()  # its read ends within a frame (or the stream's read time-out)
            self._grabber = None
        if self.capture is not None:
            self.capture.release()
            self.capture = None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Grabber:
    """Reads frames in a thread as they arrive and keeps only the newest (latest_frame)."""

    def __init__(self, frames: Iterator[np.ndarray]):
        self._frames = frames
        self._changed = threading.Condition()
        self._frame: np.ndarray | None = None
        self._count = 0  # frames read so far
        self._done = False
        self._error: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="digitsum-grab", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for frame in self._frames:
                with self._changed:
                    self._frame, self._count = frame, self._count + 1
                    self._changed.notify_all()
                if self._stopping:
                    break
        except BaseException as e:  # CameraLost and the like reach the consumer, in its thread
            self._error = e
        finally:
            with self._changed:
                self._done = True
                self._changed.notify_all()

    def newest(self) -> Iterator[np.ndarray]:
        """The newest frame each time the consumer asks and one newer than the last it got has come."""
        seen = 0

        def ready() -> bool:
            return self._count > seen or self._done

        while True:
            with self._changed:
                self._changed.wait_for(ready)
                if self._count > seen:
                    frame, seen = self._frame, self._count
                elif self._error is not None:
                    raise self._error
                else:
                    return
            assert frame is not None
            yield frame

    def stop(self) -> None:
        self._stopping = True
        self._thread.join()
