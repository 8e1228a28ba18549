"""`live`, `predict` and `synth` as a user runs them: generated labelled videos and folders, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitsum_edge import mnist
from digitsum_edge.apps import live as live_module
from digitsum_edge.apps import sources as sources_module
from digitsum_edge.apps.reader import DigitReader
from digitsum_edge.engine.onnx_runtime import cuda_usable
from digitsum_edge.synth.frames import pick_digits, read_labels, write_images, write_video
from helpers import invoke, one_line_error

# The tiny test model reads ~96 % of clean MNIST and ~94 % of synthetic camera frames; a pipeline that
# fails to invert, crop or centre reads 10-30 %. The floors sit well between.
DIGIT_FLOOR = 0.8


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def accuracy(lines: list[dict], labels: list[int | None]) -> tuple[float, float]:
    """(digit accuracy on frames with a digit, share of blank frames wrongly read as a digit)."""
    digits = [(line["digit"], label) for line, label in zip(lines, labels, strict=True) if label is not None]
    blanks = [line["found"] for line, label in zip(lines, labels, strict=True) if label is None]
    return float(np.mean([d == t for d, t in digits])), float(np.mean(blanks)) if blanks else 0.0


@pytest.fixture(scope="module")
def sample_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 digits (about 15 % blank paper), 2 frames each: 48 frames of 640x480 in an .mp4."""
    path = tmp_path_factory.mktemp("video") / "sample.mp4"
    digits, labels = pick_digits(24, seed=3, blank=0.15)
    write_video(path, digits, labels, seed=3, fps=10, hold=2)
    return path


@pytest.fixture(scope="module")
def sample_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 camera-like PNG frames and labels.json."""
    folder = tmp_path_factory.mktemp("images") / "frames"
    digits, labels = pick_digits(40, seed=4, blank=0.1)
    write_images(folder, digits, labels, seed=4)
    return folder


def test_synth_writes_a_video_that_opencv_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    result = invoke("synth", out, "--count", 4, "--hold", 2, "--blank", 0, "--seed", 1)
    assert result.exit_code == 0, result.output
    capture = cv2.VideoCapture(str(out))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 8 and capture.get(cv2.CAP_PROP_FRAME_WIDTH) == 640
    labels = read_labels(out)
    assert len(labels) == 8 and labels[0] == labels[1] and all(0 <= v <= 9 for v in labels)
    one_line_error(invoke("synth", out, "--count", 2), "exists", "--force")
    assert invoke("synth", out, "--count", 2, "--hold", 1, "--force").exit_code == 0
    assert len(read_labels(out)) == 2


def test_synth_images_folder(tmp_path: Path) -> None:
    out = tmp_path / "frames"
    assert invoke("synth", out, "--count", 5, "--size", "320x240").exit_code == 0
    labels = read_labels(out)
    assert sorted(labels) == sorted(p.name for p in out.glob("*.png")) and len(labels) == 5
    assert cv2.imread(str(out / "frame_00000.png")).shape == (240, 320, 3)
    one_line_error(invoke("synth", out, "--size", "12xfoo"), "--size")


def test_live_headless_on_a_video(sample_video: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    lines_path, video_path = tmp_path / "live.jsonl", tmp_path / "annotated.mp4"
    result = invoke("live", "--source", sample_video, "--model", tiny_onnx, "--rand", 7, "--no-window",
                    "--threads", 1, "--jsonl", lines_path, "--save-video", video_path)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # with --jsonl, stdout stays quiet; the summary is on stderr
    assert "48 frames" in result.stderr and "provider: " in result.stderr
    lines = jsonl(lines_path)
    labels = read_labels(sample_video)
    assert [line["frame"] for line in lines] == list(range(48))
    assert set(lines[0]) >= {"frame", "source", "found", "digit", "digit_confidence", "rand", "sum",
                             "sum_confidence", "ms", "provider"}
    digit_accuracy, blank_found = accuracy(lines, labels)
    assert digit_accuracy >= DIGIT_FLOOR and blank_found <= 0.1
    found = [line for line in lines if line["found"]]
    assert all(line["rand"] == 7 and line["ms"] > 0 and 0 < line["digit_confidence"] <= 1 for line in found)
    assert np.mean([line["sum"] == line["digit"] + 7 for line in found]) >= 0.9
    assert all(line["digit"] is None and line["sum_confidence"] is None for line in lines if not line["found"])
    capture = cv2.VideoCapture(str(video_path))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 48 and capture.read()[1].shape == (480, 640, 3)


def test_live_stdout_and_max_frames(sample_video: Path, tiny_onnx: Path) -> None:
    result = invoke("live", "--source", sample_video, "--model", tiny_onnx, "--rand", 2, "--no-window",
                    "--max-frames", 5)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 5 and all(line["source"] == str(sample_video) for line in lines)


def test_live_on_an_image_folder(sample_folder: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    """Camera frames saved as images, read as the camera's scenes are (--roi 0.6; stills default to the whole)."""
    out = tmp_path / "folder.jsonl"
    result = invoke("live", "--source", sample_folder, "--model", tiny_onnx, "--rand", 0, "--no-window",
                    "--jsonl", out, "--roi", 0.6)
    assert result.exit_code == 0, result.output
    lines = jsonl(out)
    names = [Path(line["source"]).name for line in lines]
    labels = read_labels(sample_folder)
    assert names == sorted(labels)
    digit_accuracy, blank_found = accuracy(lines, [labels[n] for n in names])
    assert digit_accuracy >= DIGIT_FLOOR and blank_found <= 0.25


def test_random_rand_per_digit_repeats_with_a_seed(sample_video: Path, tiny_onnx: Path) -> None:
    args = ("live", "--source", sample_video, "--model", tiny_onnx, "--no-window", "--seed", 5)
    first, second = invoke(*args), invoke(*args)
    assert first.exit_code == 0, first.output
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    again = [json.loads(line) for line in second.stdout.splitlines()]
    assert [(a["rand"], a["digit"]) for a in lines] == [(b["rand"], b["digit"]) for b in again]
    rands = [line["rand"] for line in lines]
    assert all(0 <= r <= 9 for r in rands) and len(set(rands)) >= 3
    found = [line for line in lines if line["found"]]
    assert np.mean([line["sum"] == line["digit"] + line["rand"] for line in found]) >= 0.9


def test_predict_still_images(sample_folder: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    split = mnist.load("test")
    paths = []
    for i in range(40):  # raw MNIST: white on black, 28x28, already centred
        paths.append(tmp_path / f"mnist_{i}.png")
        cv2.imwrite(str(paths[-1]), split.images[i])
    result = invoke("predict", *paths, "--model", tiny_onnx, "--rand", 3)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["source"] for line in lines] == [str(p) for p in paths]
    hits = [line["digit"] == int(label) for line, label in zip(lines, split.labels[:40], strict=True)]
    assert np.mean(hits) >= DIGIT_FLOOR and all(line["rand"] == 3 for line in lines)

    one = sorted(sample_folder.glob("*.png"))[2]
    out = tmp_path / "predict.jsonl"
    assert invoke("predict", one, "--model", tiny_onnx, "--rand", 1, "--jsonl", out).exit_code == 0
    via_live = invoke("live", "--source", one, "--model", tiny_onnx, "--rand", 1, "--no-window")
    by_predict, by_live = jsonl(out)[0], json.loads(via_live.stdout)
    assert (by_predict["digit"], by_predict["box"]) == (by_live["digit"], by_live["box"])  # same pipeline, same region


def _garbage(path: Path) -> Path:
    path.write_bytes(b"\x00not a real file\x01" * 64)
    return path


@pytest.mark.parametrize(("args", "fragments"), [
    (["--rand", "12"], ["--rand"]),
    (["--source", "/no/such/clip.mp4"], ["/no/such/clip.mp4", "does not exist"]),
    (["--source", "{garbage_mp4}"], ["cannot read video"]),
    (["--source", "{garbage_png}"], ["cannot read image"]),
    (["--source", "{empty_dir}"], ["holds no images"]),
    (["--model", "{garbage_onnx}"], ["not a readable ONNX model"]),
    (["--model", "/no/such/model.onnx"], ["does not exist"]),
    (["--save-video", "{tmp}/out.mkv"], [".mp4 or .avi"]),
    (["--provider", "tpu"], ["--provider"]),
    (["--roi", "0"], ["--roi"]),
])
def test_live_bad_input_is_one_line(args: list[str], fragments: list[str], sample_video: Path, tiny_onnx: Path,
                                    tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    values = {"garbage_mp4": _garbage(tmp_path / "bad.mp4"), "garbage_png": _garbage(tmp_path / "bad.png"),
              "garbage_onnx": _garbage(tmp_path / "bad.onnx"), "empty_dir": tmp_path / "empty", "tmp": tmp_path}
    args = [a.format(**values) for a in args]
    base = {"--source": str(sample_video), "--model": str(tiny_onnx)}
    for key, value in base.items():
        if key not in args:
            args += [key, value]
    one_line_error(invoke("live", "--no-window", *args), *fragments)


def test_existing_output_is_refused_and_untouched(sample_video: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "old.jsonl"
    out.write_text("keep me\n")
    one_line_error(invoke("live", "--source", sample_video, "--model", tiny_onnx, "--no-window", "--jsonl", out),
                   "exists")
    assert out.read_text() == "keep me\n"


def test_predict_bad_input_is_one_line(tiny_onnx: Path, tmp_path: Path) -> None:
    one_line_error(invoke("predict", "--model", tiny_onnx), "no image")
    one_line_error(invoke("predict", tmp_path / "missing.png", "--model", tiny_onnx), "does not exist")
    one_line_error(invoke("predict", _garbage(tmp_path / "x.jpg"), "--model", tiny_onnx), "cannot read image",
                   started=True)


def test_no_display_and_unusable_cuda(sample_video: Path, tiny_onnx: Path, monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    base = ("live", "--source", sample_video, "--model", tiny_onnx, "--max-frames", 2)
    one_line_error(invoke(*base, "--window"), "display")
    assert invoke(*base).exit_code == 0  # no display and no --window: headless by itself
    if not cuda_usable():
        one_line_error(invoke(*base, "--provider", "cuda"), "CUDA")


class FakeCamera:
    """A cv2.VideoCapture stand-in: `frames` good frames, then nothing."""

    def __init__(self, index: int, frames: int = 3, opened: bool = True):
        self.frames, self.opened, self.released = frames, opened, False
        self.image = cv2.imread(str(sorted(Path(FakeCamera.folder).glob("*.png"))[0]))

    def isOpened(self) -> bool:
        return self.opened

    def read(self):
        if self.frames <= 0:
            return False, None
        self.frames -= 1
        return True, self.image

    def get(self, prop: int) -> float:
        return 30.0

    def release(self) -> None:
        self.released = True


def test_camera_missing_and_camera_that_stops(sample_folder: Path, tiny_onnx: Path, tmp_path: Path,
                                              monkeypatch) -> None:
    FakeCamera.folder = sample_folder
    monkeypatch.setattr(sources_module.time, "sleep", lambda s: None)
    monkeypatch.setattr(sources_module.cv2, "VideoCapture", lambda i: FakeCamera(i, opened=False))
    one_line_error(invoke("live", "--model", tiny_onnx, "--no-window"), "no camera at index 0")
    monkeypatch.setattr(sources_module.cv2, "VideoCapture", lambda i: FakeCamera(i, frames=3))
    out = tmp_path / "cam.jsonl"
    result = invoke("live", "--source", "0", "--model", tiny_onnx, "--no-window", "--jsonl", out, "--rand", 1)
    one_line_error(result, "camera:0 stopped delivering frames after 3", started=True)
    assert len(jsonl(out)) == 3 and all(line["source"] == "camera:0" for line in jsonl(out))


def test_ctrl_c_keeps_what_was_read(sample_video: Path, tiny_onnx: Path, tmp_path: Path, monkeypatch) -> None:
    real_read, calls = DigitReader.read, []

    def read(self, frame, rand):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_read(self, frame, rand)

    monkeypatch.setattr(DigitReader, "read", read)
    out = tmp_path / "partial.jsonl"
    result = invoke("live", "--source", sample_video, "--model", tiny_onnx, "--no-window", "--jsonl", out)
    assert result.exit_code == 130
    one_line_error(result, "interrupted after 3 frames", started=True)
    assert len(jsonl(out)) == 3


def test_window_keys(sample_video: Path, tiny_onnx: Path, tmp_path: Path, monkeypatch) -> None:
    keys = iter([ord("5"), -1, ord("s"), ord(" "), ord("8"), ord(" "), ord("q")])
    shown: list[np.ndarray] = []

    class FakeWindow:
        def show(self, image: np.ndarray, wait_ms: int) -> int:
            shown.append(image)
            return next(keys)

        def close(self) -> None:
            pass

    monkeypatch.setattr(live_module, "_Window", FakeWindow)
    monkeypatch.setattr(live_module, "_want_window", lambda asked, notes: True)
    out = tmp_path / "window.jsonl"
    result = live_module.run(live_module.LiveConfig(source=str(sample_video), model=str(tiny_onnx), rand=1,
                                                    jsonl=str(out), snapshot_dir=str(tmp_path / "snaps")))
    rands = [line["rand"] for line in jsonl(out)]
    assert rands == [1, 5, 5, 5, 8] and result.frames == 5  # '5'; '8' while paused; q on the 5th frame
    assert len(list((tmp_path / "snaps").glob("digitsum-*.png"))) == 1
    assert all(image.shape == (480, 640, 3) for image in shown)
