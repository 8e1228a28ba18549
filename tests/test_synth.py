"""Synthetic camera frames: deterministic scenes, blank paper reads as no digit, videos and folders with labels."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitsum_edge import mnist
from digitsum_edge.apps.sources import Source
from digitsum_edge.errors import DigitsumError
from digitsum_edge.synth import frames as synth
from digitsum_edge.synth.frames import SynthConfig, camera_frame, pick_digits, read_labels, write_images, write_video
from digitsum_edge.vision.frame import prepare

SMALL = (96, 72)  # width, height: every file test stays well under a second


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, list[int | None]]:
    """20 MNIST test digits and their labels."""
    return pick_digits(20, seed=3)


def test_camera_frame_is_deterministic_for_a_seed(digits) -> None:
    digit = digits[0][0]
    a = camera_frame(digit, np.random.default_rng(11))
    b = camera_frame(digit, np.random.default_rng(11))
    assert a.shape == (480, 640, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    other = camera_frame(digit, np.random.default_rng(12))
    assert np.abs(other.astype(int) - a).mean() > 5  # another seed: another scene
    small = camera_frame(digit, np.random.default_rng(11), size=(320, 200))
    assert small.shape == (200, 320, 3)
    assert np.array_equal(camera_frame(None, np.random.default_rng(4)), camera_frame(None, np.random.default_rng(4)))


def test_same_scene_with_fresh_noise(digits) -> None:
    digit = digits[0][0]
    a = camera_frame(digit, np.random.default_rng(5), noise_rng=np.random.default_rng(1))
    b = camera_frame(digit, np.random.default_rng(5), noise_rng=np.random.default_rng(2))
    other_scene = camera_frame(digit, np.random.default_rng(6), noise_rng=np.random.default_rng(1))
    noise = np.abs(a.astype(int) - b).mean()
    assert 0 < noise < np.abs(a.astype(int) - other_scene).mean() / 2  # new noise, same placement and light
    box_a, box_b = prepare(a).box, prepare(b).box
    assert box_a is not None and np.abs(np.subtract(box_a, box_b)).max() <= 3


def test_frames_hold_each_scene_with_fresh_noise(digits) -> None:
    images, labels = digits[0][:3], [*digits[1][:2], None]
    shown = list(synth.frames(images, labels, seed=4, hold=3))
    assert [label for _, label in shown] == [labels[0]] * 3 + [labels[1]] * 3 + [None] * 3
    scenes = [[frame.astype(int) for frame, _ in shown[i:i + 3]] for i in (0, 3, 6)]
    for k, held in enumerate(scenes):  # the same scene with new noise, unlike the next scene
        noise = max(np.abs(held[0] - other).mean() for other in held[1:])
        assert 0 < noise < np.abs(held[0] - scenes[(k + 1) % 3][0]).mean() / 2
    boxes = [prepare(frame).box for frame, _ in shown[:6]]
    for first in (0, 3):  # the digit stays where it was placed while it is held
        assert all(np.abs(np.subtract(boxes[first], boxes[first + j])).max() <= 3 for j in (1, 2)), boxes
    assert prepare(shown[6][0]).mnist is None  # the blank one is blank paper
    again = list(synth.frames(images, labels, seed=4, hold=3))
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(shown, again, strict=True))  # seeded


def test_blank_frames_hold_no_digit_and_digit_frames_do(digits) -> None:
    """Every blank frame over 20 scenes is 'no digit'; the same scenes with a digit in them are read."""
    images, _ = digits
    for seed in range(20):
        blank = prepare(camera_frame(None, np.random.default_rng([seed, 0])))
        assert blank.mnist is None and blank.reason == "blank", (seed, blank.reason)
    correlations = []
    for seed, digit in enumerate(images):
        found = prepare(camera_frame(digit, np.random.default_rng([seed, 0]), size=(160, 120)))
        assert found.mnist is not None, (seed, found.reason)
        correlations.append(np.corrcoef(found.mnist.ravel(), digit.ravel())[0, 1])
    # what the preprocessing recovers is the digit that was drawn (a wrong digit correlates about 0.3)
    assert min(correlations) > 0.4 and np.median(correlations) > 0.75, np.round(correlations, 2)


def test_pick_digits_is_seeded_and_blanks_a_fraction() -> None:
    images, labels = pick_digits(200, seed=1, blank=0.25)
    again_images, again_labels = pick_digits(200, seed=1, blank=0.25)
    assert np.array_equal(images, again_images) and labels == again_labels
    assert images.shape == (200, 28, 28) and images.dtype == np.uint8
    assert 25 <= labels.count(None) <= 75  # about 50 of 200 (binomial std 6)
    test = mnist.load("test")
    for image, label in zip(images, labels, strict=True):  # each image is a test image with its own label
        if label is not None:
            match = np.flatnonzero((test.images == image).all(axis=(1, 2)))
            assert label in test.labels[match]
    assert pick_digits(200, seed=2, blank=0.25)[1] != labels


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_write_video_and_read_labels_round_trip(tmp_path: Path, suffix: str) -> None:
    images, labels = pick_digits(4, seed=0)
    labels[1] = None  # one blank digit
    path = tmp_path / f"sample{suffix}"
    per_frame = write_video(path, images, labels, seed=0, fps=10.0, hold=3, size=SMALL)
    assert per_frame == [label for label in labels for _ in range(3)]
    assert read_labels(path) == per_frame
    meta = json.loads((tmp_path / "sample.labels.json").read_text())
    assert meta["video"] == path.name and meta["hold"] == 3 and meta["size"] == list(SMALL) and meta["fps"] == 10.0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, "sample.labels.json"])
    with Source(str(path)) as source:
        frames = [frame for _, frame in source]
        assert source.fps == pytest.approx(10.0, rel=0.01)
    assert len(frames) == len(per_frame) and frames[0].shape == (SMALL[1], SMALL[0], 3)
    # what the video shows is what its labels say: a digit, or blank paper
    found = [prepare(frame).mnist is not None for frame in frames]
    assert found == [label is not None for label in per_frame]


def test_write_video_refuses_other_suffixes(tmp_path: Path) -> None:
    images, labels = pick_digits(1, seed=0)
    with pytest.raises(DigitsumError, match=r"must end in \.mp4 or \.avi"):
        write_video(tmp_path / "clip.mkv", images, labels, size=SMALL)
    assert list(tmp_path.iterdir()) == []


def test_read_labels_errors(tmp_path: Path) -> None:
    with pytest.raises(DigitsumError, match=r"cannot read labels .*nothing\.labels\.json"):
        read_labels(tmp_path / "nothing.mp4")
    (tmp_path / "bad.labels.json").write_text('{"no": "labels"}')
    with pytest.raises(DigitsumError, match="cannot read labels"):
        read_labels(tmp_path / "bad.mp4")


def test_write_images_and_read_labels(tmp_path: Path) -> None:
    images, labels = pick_digits(3, seed=4)
    labels[2] = None
    folder = tmp_path / "frames"
    names = write_images(folder, images, labels, seed=1, size=SMALL)
    assert names == {"frame_00000.png": labels[0], "frame_00001.png": labels[1], "frame_00002.png": None}
    assert read_labels(folder) == names
    assert sorted(p.name for p in folder.iterdir()) == [*sorted(names), "labels.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no staging folder left beside it
    first = cv2.imread(str(folder / "frame_00000.png"))
    assert first.shape == (SMALL[1], SMALL[0], 3)
    again = write_images(tmp_path / "again", images, labels, seed=1, size=SMALL)
    assert again == names and (tmp_path / "again" / "frame_00001.png").read_bytes() == \
        (folder / "frame_00001.png").read_bytes()  # same seed, same frames


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_write_images_replaces_the_folder_whole(tmp_path: Path) -> None:
    images, labels = pick_digits(3, seed=5)
    folder = tmp_path / "frames"
    write_images(folder, images, labels, size=SMALL)
    (folder / "stray.txt").write_text("from before")
    with pytest.raises(DigitsumError, match="exists"):
        write_images(folder, images[:1], labels[:1], size=SMALL)  # not without force
    assert "stray.txt" in _snapshot(folder)
    write_images(folder, images[:2], labels[:2], seed=9, size=SMALL, force=True)
    assert sorted(_snapshot(folder)) == ["frame_00000.png", "frame_00001.png", "labels.json"]  # old ones gone
    assert read_labels(folder) == {"frame_00000.png": labels[0], "frame_00001.png": labels[1]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_write_images_that_fails_midway_leaves_the_old_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = pick_digits(3, seed=6)
    folder = tmp_path / "frames"
    write_images(folder, images, labels, size=SMALL)
    before = _snapshot(folder)
    written = []

    def imwrite(path: str, image: np.ndarray) -> bool:
        written.append(path)
        return len(written) < 2 and cv2.imwrite(path, image)  # the second frame cannot be written

    monkeypatch.setattr(synth.cv2, "imwrite", imwrite)
    with pytest.raises(DigitsumError, match="cannot write"):
        write_images(folder, images, labels, seed=8, size=SMALL, force=True)
    assert len(written) == 2 and _snapshot(folder) == before  # untouched, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # and the staging folder is gone


def test_run_writes_a_video_and_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "sample.avi"
    cfg = SynthConfig(out=str(out), count=3, hold=2, blank=0.0, width=SMALL[0], height=SMALL[1], seed=1)
    assert synth.run(cfg) == (out, 6)
    assert read_labels(out) == [label for label in pick_digits(3, 1)[1] for _ in range(2)]
    before = out.read_bytes(), (tmp_path / "sample.labels.json").read_bytes()
    with pytest.raises(DigitsumError, match=r"sample\.avi exists \(use --force"):
        synth.run(SynthConfig(**{**cfg.__dict__, "seed": 2}))
    assert (out.read_bytes(), (tmp_path / "sample.labels.json").read_bytes()) == before
    assert synth.run(SynthConfig(**{**cfg.__dict__, "seed": 2, "force": True})) == (out, 6)
    assert out.read_bytes() != before[0] and read_labels(out) == [v for v in pick_digits(3, 2)[1] for _ in range(2)]


def test_run_writes_images_and_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "frames"
    cfg = SynthConfig(out=str(out), count=2, blank=0.0, width=SMALL[0], height=SMALL[1])
    assert synth.run(cfg) == (out, 2)
    before = _snapshot(out)
    with pytest.raises(DigitsumError, match="exists"):
        synth.run(SynthConfig(**{**cfg.__dict__, "count": 1}))
    assert _snapshot(out) == before
    assert synth.run(SynthConfig(**{**cfg.__dict__, "count": 1, "force": True})) == (out, 1)
    assert sorted(_snapshot(out)) == ["frame_00000.png", "labels.json"]


def test_run_refuses_an_image_folder_that_is_a_file_and_bad_settings(tmp_path: Path) -> None:
    (tmp_path / "frames").write_text("a file")
    with pytest.raises(DigitsumError, match="is not a folder"):
        synth.run(SynthConfig(out=str(tmp_path / "frames"), count=1, force=True))
    for bad in ({"count": 0}, {"hold": 0}, {"blank": 1.5}, {"width": 16}, {"format": "gif"}):
        with pytest.raises(DigitsumError):
            synth.run(SynthConfig(out=str(tmp_path / "new.avi"), **bad))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]
    assert (tmp_path / "frames").read_text() == "a file"


def test_run_with_conditions_records_each_frames_condition(tmp_path: Path) -> None:
    out = tmp_path / "frames"
    cfg = SynthConfig(out=str(out), count=6, blank=0.0, conditions=("shadow", "blank", "printed"), seed=3)
    assert synth.run(cfg) == (out, 6)
    meta = json.loads((out / "labels.json").read_text())
    assert meta["conditions"] == ["shadow", "blank", "printed"] * 2
    labels = list(meta["labels"].values())
    assert labels[1] is None and labels[4] is None and all(v is not None for i, v in enumerate(labels) if i % 3 != 1)
    for name, label in meta["labels"].items():  # what each frame shows is what its label says
        assert (prepare(cv2.imread(str(out / name))).mnist is not None) == (label is not None), name
    plain = tmp_path / "plain"
    synth.run(SynthConfig(out=str(plain), count=2, blank=0.0))
    assert "conditions" not in json.loads((plain / "labels.json").read_text())  # unchanged without conditions


def test_synth_cli_conditions(tmp_path: Path) -> None:
    from helpers import invoke, one_line_error

    result = invoke("synth", tmp_path / "clip.avi", "--conditions", "all", "--count", 12, "--hold", 1,
                    "--size", "320x240", "--blank", 0)
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "clip.labels.json").read_text())
    assert meta["conditions"] == ["plain", "shadow", "pen", "marker", "writers", "tilt", "lined", "dark", "motion",
                                  "small", "printed", "blank"]
    one_line_error(invoke("synth", tmp_path / "x.avi", "--conditions", "shadow,glare"), "unknown condition glare")
