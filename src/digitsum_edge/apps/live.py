"""`digitsum-edge live`: frames -> digit + rand, in a window or as JSON lines (headless)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from digitsum_edge.apps import overlay
from digitsum_edge.apps.policy import RandPicker, Smoother
from digitsum_edge.apps.reader import (
    DigitReader,
    json_line,
    load,
)
from digitsum_edge.apps.sources import STILLS, VIDEO_FOURCC, CameraLost, Source, source_kind
from digitsum_edge.engine import builtin
from digitsum_edge.errors import DigitsumError, Interrupted
from digitsum_edge.files import atomic_path, check_writable, write_bytes
from digitsum_edge.onnx_contract import check_rand
from digitsum_edge.vision.settings import BY_SOURCE, ReadingSettings

TITLE = "digitsum-edge live"
log = logging.getLogger(__name__)


@dataclass
class LiveConfig:
    """`digitsum-edge live` options, one field per CLI option (the reading's in `reading`)."""

    source: str = "0"  # camera index, video file, image file or folder of images
    model: str | None = None  # a .onnx file written by `digitsum-edge export`; None: runs/model.onnx, else built in
    rand: int | None = None  # 0-9; None: a new random rand for every new digit
    provider: str = "auto"  # auto | cuda | cpu
    threads: int | None = 1  # onnxruntime and OpenCV threads; one is fastest for a 28x28 model (None: theirs)
    window: bool | None = None  # None: a window when a display is available, else headless
    jsonl: str | None = None  # JSON lines to this file (default: stdout when headless)
    save_video: str | None = None  # annotated frames to this .mp4/.avi
    max_frames: int | None = None  # stop after this many frames
    # --roi, --ink, --min-confidence; roi None: the whole picture for an image or folder of images (as predict),
    # the central square (settings.ROI) for a camera, video or stream
    reading: ReadingSettings = BY_SOURCE
    smooth: int = 1  # average the probabilities over this many frames of one digit (1: off)
    seed: int | None = None  # seed of the random rand (None: different every run)
    snapshot_dir: str = "."  # where the s key saves annotated frames
    force: bool = False  # replace existing --jsonl / --save-video files
    latest_frame: bool = False  # cameras and streams: always read the newest frame (skip, never lag behind)


@dataclass
class LiveResult:
    """What a live run did."""

    source: str
    provider: str
    window: bool
    frames: int = 0
    found: int = 0
    read_ms: list[float] = field(default_factory=list)  # preprocessing + inference per frame
    outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: int = 0  # images of a folder that could not be read (each named on stderr)

    def summary(self) -> str:
        """One line: frames read, how many held a digit, the median reading time, the provider, the files."""
        median = float(np.median(self.read_ms)) if self.read_ms else 0.0
        return (f"{self.frames} frames, {self.found} with a digit | read {median:.2f} ms median "
                f"(preprocessing + inference) | {self.provider}"
                + (f" | {self.skipped} images skipped (could not be read)" if self.skipped else "")
                + "".join(f" | wrote {p}" for p in self.outputs))


def has_display() -> bool:
    """A display is configured (X11 or Wayland on Linux; always on macOS and Windows)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def window_works() -> bool:
    """OpenCV can open a window here; tried in a child process because Qt aborts on a dead display."""
    probe = "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _want_window(asked: bool | None, notes: list[str]) -> bool:
    if asked is False:
        return False
    if not has_display():
        if asked:
            raise DigitsumError("--window needs a display (DISPLAY or WAYLAND_DISPLAY is not set)")
        return False
    if not window_works():
        if asked:
            raise DigitsumError("OpenCV cannot open a window on this display (headless OpenCV build?); "
                                "use --no-window")
        notes.append("OpenCV cannot open a window here; running headless")
        return False
    return True


def check_config(cfg: LiveConfig) -> None:
    """Reject bad options before opening the model, the source or any output."""
    if cfg.rand is not None:
        check_rand(cfg.rand)
    if cfg.smooth < 1 or (cfg.max_frames is not None and cfg.max_frames < 1):
        raise DigitsumError("--smooth and --max-frames must be at least 1")
    if cfg.save_video and Path(cfg.save_video).suffix.lower() not in VIDEO_FOURCC:
        raise DigitsumError(f"--save-video {cfg.save_video} must end in .mp4 or .avi")
    for path in (cfg.jsonl, cfg.save_video):
        if path:
            check_writable(path, force=cfg.force)


class _Window:
    """The OpenCV window; show() returns the key pressed (-1: none, 27 also when the window was closed)."""

    def __init__(self) -> None:
        try:
            cv2.namedWindow(TITLE, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as e:
            raise DigitsumError(f"OpenCV cannot open a window: {str(e).strip().splitlines()[-1]}") from None

    def show(self, image: np.ndarray, wait_ms: int) -> int:
        cv2.imshow(TITLE, image)
        key = cv2.waitKey(wait_ms)
        if key == -1 and cv2.getWindowProperty(TITLE, cv2.WND_PROP_VISIBLE) < 1:
            return 27
        return key & 0xFF if key != -1 else -1

    def close(self) -> None:
        cv2.destroyAllWindows()
        cv2.waitKey(1)


class _Sinks:
    """Where readings go: JSON lines (file or stdout), the annotated video, the window."""

    def __init__(self, cfg: LiveConfig, window: bool, outputs: ExitStack, fps: float | None):
        self.cfg, self.fps = cfg, fps or 15.0
        jsonl_tmp = outputs.enter_context(atomic_path(cfg.jsonl)) if cfg.jsonl else None
        # line-buffered; closed by `outputs` before the temporary file is renamed onto --jsonl
        self.jsonl = outputs.enter_context(open(jsonl_tmp, "w", buffering=1)) if jsonl_tmp else None  # noqa: SIM115
        self.stdout = self.jsonl is None and not window  # headless without --jsonl: JSON on stdout
        self.video_tmp = outputs.enter_context(atomic_path(cfg.save_video)) if cfg.save_video else None
        self.writer: cv2.VideoWriter | None = None
        self.size = (0, 0)  # the video's frame size (W, H): the first frame's
        self.letterboxed = 0  # frames of another size, scaled to fit it
        self.window = _Window() if window else None
        outputs.callback(self.close)  # runs first: the video is finished before it is published

    def line(self, obj: dict) -> None:
        text = json.dumps(obj) + "\n"
        if self.jsonl is not None:
            self.jsonl.write(text)
        elif self.stdout:
            sys.stdout.write(text)
            sys.stdout.flush()

    def video(self, annotated: np.ndarray) -> None:
        if self.video_tmp is None:
            return
        size = (annotated.shape[1], annotated.shape[0])
        if self.writer is None:
            fourcc = cv2.VideoWriter.fourcc(*VIDEO_FOURCC[self.video_tmp.suffix.lower()])
            self.size = size
            self.writer = cv2.VideoWriter(str(self.video_tmp), fourcc, self.fps, size)
            if not self.writer.isOpened():
                raise DigitsumError(f"OpenCV cannot write video {self.cfg.save_video}")
        elif size != self.size:  # OpenCV's writer drops a frame of another size without a word
            if not self.letterboxed:
                log.warning(f"--save-video: frames of other sizes than the first ({self.size[0]}x{self.size[1]}) "
                            "are scaled to fit it, with black borders")
            self.letterboxed += 1
            annotated = overlay.letterbox(annotated, self.size)
        self.writer.write(annotated)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self.window is not None:
            self.window.close()
            self.window = None


def _snapshot(folder: str, index: int, image: np.ndarray) -> None:
    path = Path(folder) / f"digitsum-{time.strftime('%Y%m%d-%H%M%S')}-{index:05d}.png"
    write_bytes(path, cv2.imencode(".png", image)[1].tobytes())
    log.info(f"snapshot {path}")


def run(cfg: LiveConfig) -> LiveResult:
    """Read digits from cfg.source until it ends, q/Esc, --max-frames or Ctrl-C; outputs written atomically.

    Ctrl-C and a camera that stops keep what was read so far (the outputs are published, then the error
    is raised); any other error leaves no output behind.
    """
    check_config(cfg)
    model, chosen = builtin.resolve(cfg.model)
    # --roi when given, else the whole picture of a still image (a photo is framed on its digit, as `predict`
    # reads it) and the central square of a camera, video or stream frame (a scene)
    settings = cfg.reading.for_source(still=source_kind(cfg.source) in STILLS)
    reader = load(model, provider=cfg.provider, threads=cfg.threads, settings=settings)
    if chosen:
        log.warning(chosen)
    if cfg.threads:
        cv2.setNumThreads(cfg.threads)
    if cfg.rand is not None:
        reader.check_rand(cfg.rand)
    notes = list(reader.backend.notes)
    window = _want_window(cfg.window, notes)
    result = LiveResult(cfg.source, reader.provider, window, notes=notes)
    stopped: BaseException | None = None
    with Source(cfg.source, latest_frame=cfg.latest_frame) as source, ExitStack() as outputs:
        for note in notes:
            log.warning(note)
        log.info(f"provider: {reader.provider} | model {reader.backend.path} | source {source.name} | "
                 + ("window" if window else "headless"))
        sinks = _Sinks(cfg, window, outputs, source.fps)
        try:
            _loop(cfg, source, reader, result, sinks)
            result.skipped = len(source.skipped)
        except (KeyboardInterrupt, CameraLost) as e:
            stopped = e
            if not result.frames:  # nothing was read: publish nothing
                if isinstance(e, KeyboardInterrupt):
                    raise Interrupted("interrupted before the first frame") from None
                raise
    result.outputs = [p for p in (cfg.jsonl, cfg.save_video) if p]
    if isinstance(stopped, KeyboardInterrupt):
        kept = f"; kept {', '.join(result.outputs)}" if result.outputs else ""
        raise Interrupted(f"interrupted after {result.frames} frames{kept}")
    if stopped is not None:
        raise stopped
    return result


def _loop(cfg: LiveConfig, source: Source, reader: DigitReader, result: LiveResult, sinks: _Sinks) -> None:
    rand = RandPicker(cfg.rand, cfg.seed, reader.info.num_rand)
    smooth = Smoother(cfg.smooth, reader.min_confidence)
    provider = reader.provider
    still = source.kind in STILLS  # a window waits on each still image (space: next)
    # A video file plays at its own frame rate in the window (headless runs go as fast as they can).
    interval = 1 / source.fps if source.kind == "video" and source.fps else 0.0
    fps, last = None, time.perf_counter()
    for name, frame in source:
        if cfg.max_frames is not None and result.frames >= cfg.max_frames:
            break
        reading = rand.update(reader, smooth(reader.read(frame, rand.value)))
        sinks.line(json_line(result.frames, name, reading, provider))
        now = time.perf_counter()
        rate = 1 / max(now - last, 1e-6)
        fps, last = (rate if fps is None else 0.9 * fps + 0.1 * rate), now
        annotated = overlay.draw(frame, reading, fps, provider=provider, keys=sinks.window is not None)
        sinks.video(annotated)
        result.frames += 1
        result.found += reading.found
        result.read_ms.append(reading.ms)
        paused = still
        while sinks.window is not None:
            shown = overlay.draw(frame, reading, fps, paused, provider, keys=True) if paused else annotated
            wait = 30 if paused else max(1, round(1000 * (interval - (time.perf_counter() - now))))
            key = sinks.window.show(shown, wait)
            if key in (ord("q"), 27):  # q or Esc
                return
            if key == ord("s"):
                _snapshot(cfg.snapshot_dir, result.frames - 1, shown)
            elif key == ord(" "):
                paused = not paused
            elif key == ord("r") or ord("0") <= key <= ord("9"):
                if key == ord("r"):
                    rand.draw()
                else:
                    rand.fix(key - ord("0"))
                reading = reader.with_rand(reading, rand.value)
                annotated = overlay.draw(frame, reading, fps, paused, provider, keys=True)
            if not paused:
                break
