"""Nothing is written half or dropped without a word: --report without labels, --save, a video of mixed sizes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from newcomer_helpers import cli, digits_folder, json_lines


def test_report_without_labels_writes_the_pictures_and_says_accuracy_needs_labels(tiny_onnx: Path,
                                                                                   tmp_path: Path) -> None:
    digits_folder(tmp_path / "photos", 3)
    done = cli("predict", tmp_path / "photos", "--model", tiny_onnx, "--provider", "cpu", "--report",
               tmp_path / "report")
    assert done.returncode == 0, done.stderr
    pictures = sorted((tmp_path / "report" / "pictures").iterdir())
    assert [p.name for p in pictures] == ["0001_digit_1.png", "0002_digit_2.png", "0003_digit_3.png"]
    for picture in pictures:
        image = cv2.imread(str(picture))
        assert image is not None and image.shape[0] == 28 + 280  # caption, then photo beside model input
    assert "the accuracy needs --labels" in done.stderr and "3 pictures" in done.stderr


def test_save_writes_one_annotated_still_per_image(tiny_onnx: Path, tmp_path: Path) -> None:
    digits_folder(tmp_path / "photos", 2, suffix=".png", sizes=[(240, 200), (300, 420)])
    done = cli("predict", tmp_path / "photos", "--model", tiny_onnx, "--provider", "cpu", "--save", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    lines = json_lines(done.stdout)
    saved = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in saved] == ["0001_digit_1.png", "0002_digit_2.png"]
    for line, path in zip(lines, saved, strict=True):
        photo, annotated = cv2.imread(line["source"]), cv2.imread(str(path))
        assert annotated.shape == photo.shape  # the photo itself, drawn on
        assert np.mean(annotated != photo) > 0.02  # the reading is drawn on it
    refused = cli("predict", tmp_path / "photos", "--model", tiny_onnx, "--provider", "cpu", "--save",
                  tmp_path / "out")
    assert refused.returncode == 1 and "--save" in refused.stderr and "--force" in refused.stderr


def test_a_video_of_mixed_sizes_keeps_every_frame_letterboxed(tiny_onnx: Path, tmp_path: Path) -> None:
    sizes = [(320, 240), (200, 400), (640, 200), (320, 240)]
    digits_folder(tmp_path / "photos", 4, suffix=".png", sizes=sizes)
    done = cli("live", "--source", tmp_path / "photos", "--model", tiny_onnx, "--provider", "cpu", "--no-window",
               "--save-video", tmp_path / "all.avi", "--jsonl", tmp_path / "all.jsonl")
    assert done.returncode == 0, done.stderr
    assert "scaled to fit" in done.stderr and "320x240" in done.stderr
    video = cv2.VideoCapture(str(tmp_path / "all.avi"))
    frames = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        frames.append(frame)
    video.release()
    assert len(frames) == 4 and all(f.shape == (240, 320, 3) for f in frames)
    tall = frames[1]  # 200x400 scaled to 120x240 in the middle: black borders left and right
    assert tall[:, :80].mean() < 10 and tall[:, 240:].mean() < 10 and tall[:, 120:200].mean() > 60
