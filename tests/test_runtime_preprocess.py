"""Camera frame -> MNIST-like 28x28: inversion, aspect, centring, and "no digit" where there is none."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitsum_edge import mnist
from digitsum_edge.synth.frames import camera_frame, frames, pick_digits
from digitsum_edge.vision.frame import prepare
from digitsum_edge.vision.preprocess import PreprocessConfig, roi_box, to_mnist
from digitsum_edge.vision.settings import ReadingSettings


def inked(ink: str) -> PreprocessConfig:
    return PreprocessConfig(reading=ReadingSettings(ink=ink))

def paper(value: int = 200, size: tuple[int, int] = (480, 640)) -> np.ndarray:
    return np.full((*size, 3), value, np.uint8)


def ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x, y, w, h) of the non-zero pixels."""
    return cv2.boundingRect(cv2.findNonZero((image > 0).astype(np.uint8)))


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    m = cv2.moments(image)
    return m["m10"] / m["m00"], m["m01"] / m["m00"]


@pytest.fixture(scope="module")
def test_digits() -> tuple[np.ndarray, np.ndarray]:
    split = mnist.load("test")
    return split.images[:200], split.labels[:200]


def test_dark_ink_on_light_paper_becomes_white_on_black() -> None:
    frame = paper(190)
    cv2.rectangle(frame, (300, 180), (340, 300), (40, 40, 40), cv2.FILLED)  # a dark bar: a "1"
    prep = prepare(frame)
    assert prep.mnist is not None and prep.mnist.shape == (28, 28) and prep.mnist.dtype == np.uint8
    assert prep.mnist[0].max() == 0 and prep.mnist[:, 0].max() == 0  # black background
    assert prep.mnist.max() == 255  # white stroke core, like MNIST
    x, y, w, h = prep.box
    assert abs(x - 300) <= 4 and abs(y - 180) <= 4 and abs(w - 41) <= 6 and abs(h - 121) <= 6


def test_light_ink_is_found_by_auto_and_reads_like_dark_ink(test_digits) -> None:
    def likeness(a: np.ndarray, b: np.ndarray | None) -> float:
        return 0.0 if b is None else float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    right, wrong = [], []
    for i, digit in enumerate(test_digits[0][:12]):
        dark = camera_frame(digit, np.random.default_rng(i))
        light = cv2.bitwise_not(dark)  # chalk on a blackboard
        a, auto = prepare(dark).mnist, prepare(light).mnist
        assert a is not None and auto is not None
        assert np.array_equal(auto, prepare(light, inked("light")).mnist)  # auto chose light
        right.append(likeness(a, auto))
        wrong.append(likeness(a, prepare(light, inked("dark")).mnist))  # forced the wrong way
    assert min(right) > 0.75 and np.mean(right) > 0.85  # the same digit, whichever the ink
    assert np.mean(wrong) < 0.4 and max(wrong) < min(right)  # the paper's grain or nothing, never the digit


@pytest.mark.parametrize(("w", "h"), [(24, 120), (120, 40)])
def test_aspect_is_kept_and_the_longer_side_is_20(w: int, h: int) -> None:
    frame = paper()
    cv2.rectangle(frame, (320 - w // 2, 240 - h // 2), (320 + w // 2, 240 + h // 2), (30, 30, 30), cv2.FILLED)
    out = prepare(frame).mnist
    _, _, bw, bh = ink_box(out)
    assert max(bw, bh) in (20, 21)  # 20 plus at most one pixel of soft edge
    assert abs(bw / bh - w / h) < 0.35 * (w / h)


def test_off_centre_digit_is_centred_by_mass() -> None:
    frame = paper()
    # an "L": its centre of mass is not its box centre, so box-centring would be off by pixels
    cv2.rectangle(frame, (230, 130), (250, 250), (20, 20, 20), cv2.FILLED)
    cv2.rectangle(frame, (230, 230), (300, 250), (20, 20, 20), cv2.FILLED)
    out = prepare(frame).mnist
    cx, cy = centre_of_mass(out)
    assert abs(cx - 14) <= 0.6 and abs(cy - 14) <= 0.6


def test_to_mnist_leaves_an_mnist_digit_almost_unchanged(test_digits) -> None:
    agreement = []
    for image in test_digits[0][:50]:
        x, y, w, h = ink_box(image)  # MNIST made each digit 20 pixels at its longer side: a crop round trip
        agreement.append(np.corrcoef(image.ravel(), to_mnist(image[y:y + h, x:x + w]).ravel())[0, 1])
    assert np.median(agreement) > 0.95


def test_roi_box_is_a_central_square() -> None:
    assert roi_box(480, 640, 0.6) == (176, 96, 288, 288)
    assert roi_box(100, 50, 1.0) == (0, 25, 50, 50)


def test_blank_paper_and_noise_are_no_digit() -> None:
    rng = np.random.default_rng(0)
    for seed in range(20):
        assert prepare(camera_frame(None, np.random.default_rng(seed))).reason == "blank"
    for _ in range(10):
        noisy = np.clip(rng.normal(rng.uniform(60, 200), 30, (480, 640, 1)), 0, 255).astype(np.uint8)
        assert prepare(noisy.repeat(3, axis=2)).mnist is None
        uniform = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        assert prepare(uniform).mnist is None
    assert prepare(paper(0)).mnist is None and prepare(paper(255)).mnist is None


def test_too_small_touching_edge_and_outside_the_region_are_no_digit() -> None:
    frame = paper()
    cv2.rectangle(frame, (316, 230), (322, 250), (30, 30, 30), cv2.FILLED)  # 20 px of a 288 px region
    assert prepare(frame).reason == "too small"
    frame = paper()
    cv2.rectangle(frame, (150, 100), (330, 300), (30, 30, 30), 12)  # crosses the region's edge
    assert prepare(frame).reason == "touches edge"
    frame = paper()
    cv2.rectangle(frame, (20, 20), (120, 200), (30, 30, 30), 12)  # outside the region: ignored
    assert prepare(frame).reason == "blank"


def test_synthetic_camera_frames_are_repeatable() -> None:
    digits, labels = pick_digits(3, seed=1, blank=0.0)
    a = [f for f, _ in frames(digits, labels, seed=2, hold=2)]
    b = [f for f, _ in frames(digits, labels, seed=2, hold=2)]
    assert len(a) == 6 and all(x.shape == (480, 640, 3) and np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], a[1])  # held frames: same scene, fresh noise
    assert np.abs(a[0].astype(int) - a[1].astype(int)).mean() < 10


def test_search_off_reads_a_whole_picture_as_one_crop() -> None:
    """ReadingSettings.search: a small digit in a large sheet is found by the search and too small read whole."""
    from digitsum_edge.synth.frames import pick_digits

    digit = pick_digits(1, 3)[0][0]
    sheet = np.full((480, 640), 235, np.uint8)
    sheet[200:256, 300:356] = 235 - cv2.resize(digit, (56, 56)) * 0.8
    searched = prepare(sheet, PreprocessConfig(reading=ReadingSettings(roi=1.0)))
    whole = prepare(sheet, PreprocessConfig(reading=ReadingSettings(roi=1.0, search=False)))
    assert searched.mnist is not None and whole.mnist is None and whole.reason == "too small"
