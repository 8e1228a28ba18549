"""A camera that disappears mid-stream (or Ctrl-C) keeps what was read: --jsonl and --save-video are whole.

The camera is a cv2.VideoCapture stand-in that delivers N camera-like frames of MNIST digits, then fails
forever (or raises KeyboardInterrupt, as Ctrl-C does inside a blocking read). The saved video is read back
with the real OpenCV to its end: exactly N frames, in order, the last one included.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitsum_edge.apps import sources as sources_module
from digitsum_edge.synth.frames import frames, pick_digits
from helpers import invoke, one_line_error

N = 6  # frames the camera delivers before it is lost
REAL_CAPTURE = cv2.VideoCapture


@pytest.fixture(scope="module")
def camera_frames() -> list[np.ndarray]:
    """N different 640x480 BGR frames: MNIST test digits on paper, as a webcam sees them."""
    digits, labels = pick_digits(N, seed=11)
    return [frame for frame, _ in frames(digits, labels, seed=11)]


class VanishingCamera:
    """cv2.VideoCapture(0) stand-in: the given frames, then `ending` on every later read."""

    def __init__(self, images: list[np.ndarray], ending: str):
        self.images, self.ending = list(images), ending
        self.failed_reads, self.released = 0, False

    def isOpened(self) -> bool:
        return not self.released

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.images:
            return True, self.images.pop(0).copy()
        self.failed_reads += 1
        if self.ending == "ctrl-c":
            raise KeyboardInterrupt
        return False, None

    def get(self, prop: int) -> float:
        return 15.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        self.released = True


@pytest.fixture
def camera(camera_frames: list[np.ndarray], monkeypatch, request) -> VanishingCamera:
    """Camera index 0 is the vanishing camera; files still open with the real cv2.VideoCapture."""
    fake = VanishingCamera(camera_frames, request.param)
    monkeypatch.setattr(sources_module.cv2, "VideoCapture",
                        lambda spec, *a: fake if isinstance(spec, int) else REAL_CAPTURE(spec, *a))
    return fake


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    """Every frame OpenCV decodes from `path`, to the end, and the frame count its container states."""
    capture = REAL_CAPTURE(str(path))
    assert capture.isOpened(), f"OpenCV cannot open {path}"
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame)
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    capture.release()
    return decoded, count


def check_kept(folder: Path, jsonl: Path, video: Path, sent: list[np.ndarray]) -> None:
    """Both outputs are whole, and hold exactly the frames the camera delivered, in order."""
    assert sorted(p.name for p in folder.iterdir()) == sorted([jsonl.name, video.name])  # no temporary file
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == N and jsonl.read_text().endswith("\n")
    assert [line["frame"] for line in lines] == list(range(N))
    assert all(line["source"] == "camera:0" and line["rand"] == 3 for line in lines)
    assert all(line["sum"] == line["digit"] + 3 for line in lines if line["found"])

    decoded, count = read_video(video)
    assert len(decoded) == N, f"{video} plays {len(decoded)} frames, the camera delivered {N}"
    assert count == N, f"{video} says it holds {count} frames"
    assert all(frame.shape == sent[0].shape for frame in decoded)
    # each decoded frame is the annotated copy of the camera frame at the same place (the overlay and the
    # codec change a little of it; another camera frame differs everywhere)
    distance = np.array([[np.abs(got.astype(np.int16) - want).mean() for want in sent] for got in decoded])
    assert (distance.argmin(axis=1) == np.arange(N)).all(), distance.round(1)


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
@pytest.mark.parametrize(("camera", "exit_code", "fragments"), [
    ("lost", 1, ("camera:0 stopped delivering frames", f"after {N}")),  # the camera vanishes
    ("ctrl-c", 130, (f"interrupted after {N} frames",)),  # Ctrl-C while it delivers
], indirect=["camera"])
def test_an_ended_camera_keeps_jsonl_and_video(camera: VanishingCamera, camera_frames: list[np.ndarray],
                                               tiny_onnx: Path, tmp_path: Path, suffix: str, exit_code: int,
                                               fragments: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    jsonl, video = out / "live.jsonl", out / f"live{suffix}"
    result = invoke("live", "--source", 0, "--model", tiny_onnx, "--no-window", "--rand", 3,
                    "--jsonl", jsonl, "--save-video", video)
    assert result.exit_code == exit_code, result.output
    one_line_error(result, *fragments, started=True)
    if exit_code == 1:
        assert camera.failed_reads > 1, "a camera that fails once is retried before it counts as lost"
    assert camera.released
    check_kept(out, jsonl, video, camera_frames)
