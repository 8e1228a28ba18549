"""Camera conditions (synth/conditions.py) and the preprocessing that reads them: shadows, pens, markers, rules."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitsum_edge import mnist
from digitsum_edge.synth import conditions
from digitsum_edge.synth.conditions import BLANK_KINDS, CONDITIONS, FONTS, render, sample
from digitsum_edge.vision.frame import prepare
from digitsum_edge.vision.preprocess import STROKE, PreprocessConfig, stroke_width


@pytest.fixture(scope="module")
def test_set() -> mnist.Split:
    return mnist.load("test")


def width_at_28(image: np.ndarray) -> float:
    """Stroke width of a 28x28 image in its pixels, measured as preprocessing measures it (at 4x)."""
    big = cv2.resize(image, (112, 112), interpolation=cv2.INTER_LINEAR)
    _, mask = cv2.threshold(big, 127, 255, cv2.THRESH_BINARY)
    return stroke_width(mask) / 4


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def test_conditions_parse_and_sample_are_seeded() -> None:
    assert conditions.parse("all") == tuple(CONDITIONS) and conditions.parse(" shadow, pen ") == ("shadow", "pen")
    for bad in ("shadows", "", "pen,,glare"):
        with pytest.raises(ValueError, match="unknown condition"):
            conditions.parse(bad)
    assert len(FONTS) == 13 and len(set(FONTS)) == 13
    first = list(sample("tilt", 3, seed=5))
    again = list(sample("tilt", 2, seed=5))  # frame i does not depend on how many are asked for
    assert all(np.array_equal(a, b) and x == y for (a, x), (b, y) in zip(first, again, strict=False))
    other = list(sample("tilt", 3, seed=6))
    assert all(np.abs(a.astype(int) - b).mean() > 3 for (a, _), (b, _) in zip(first, other, strict=True))
    assert all(frame.shape == (480, 640, 3) and frame.dtype == np.uint8 for frame, _ in first)
    assert [label for _, label in sample("blank", 3, seed=0)] == [None] * 3


def test_every_condition_draws_a_digit_the_preprocessing_finds(test_set: mnist.Split) -> None:
    """One frame per condition and digit class: the mark found is where the digit was drawn."""
    missed = []
    for name in CONDITIONS:
        if name == "blank":
            continue
        for i in range(4):
            frame = render(name, test_set.images[i], int(test_set.labels[i]), np.random.default_rng([11, i]))
            if prepare(frame).mnist is None:
                missed.append((name, i))
    assert len(missed) <= 2, missed  # 40 frames; the tuned pipeline finds 97-100 % of each condition


def test_a_shadow_edge_without_a_digit_is_blank() -> None:
    """A hard shadow across empty paper is paper, not ink: the old max-filter paper estimate made its edge a
    band of ink ("touches edge") in most of these frames."""
    reasons = [prepare(render("shadow", None, None, np.random.default_rng([7, i]))).reason for i in range(100)]
    # A blob of sensor noise in a deep shadow can still pass for a mark (1 to 2 frames in 100 over seeds 7-9,
    # read with low confidence, so marked uncertain); the shadow's edge itself never does.
    assert reasons.count("") <= 5, reasons
    assert reasons.count("blank") >= 50, reasons  # and mostly blank: before, none was (a corner can cross the edge)


@pytest.mark.parametrize("kind", BLANK_KINDS)
def test_blank_sheets_are_no_digit(kind: str) -> None:
    """Plain, ruled, squared, shadowed and dim sheets: no digit, in 12 scenes each."""
    for i in range(12):
        frame = render("blank", None, None, np.random.default_rng([31, i]), blank_kind=kind)
        assert prepare(frame).mnist is None, (kind, i)


def test_a_digit_across_a_shadow_edge_is_read_whole(test_set: mnist.Split) -> None:
    """The digit half in shadow comes out like the digit drawn (ink as a share of the paper's light)."""
    scores = []
    for i in range(12):
        frame = render("shadow", test_set.images[i], int(test_set.labels[i]), np.random.default_rng([13, i]))
        found = prepare(frame).mnist
        scores.append(-1.0 if found is None else correlation(found, test_set.images[i]))
    assert np.median(scores) > 0.6 and sum(s > 0.4 for s in scores) >= 10, np.round(scores, 2)


def test_a_thin_pen_digit_gets_mnist_stroke_width(test_set: mnist.Split) -> None:
    """A ballpoint's 2-4 px line in a 640x480 frame is under 1 px at 28x28 without the stroke step; with it,
    inside MNIST's 10-90 % range (1.6-3.1 px)."""
    normalised, raw = [], []
    for i in range(8):
        frame = render("pen", test_set.images[i], int(test_set.labels[i]), np.random.default_rng([17, i]))
        a, b = prepare(frame).mnist, prepare(frame, PreprocessConfig(stroke=0)).mnist
        assert a is not None and b is not None, i
        normalised.append(width_at_28(a))
        raw.append(width_at_28(b))
    assert 1.6 <= np.median(normalised) <= 3.1 and min(normalised) >= 1.4, np.round(normalised, 2)
    assert np.median(raw) < 1.3, np.round(raw, 2)  # the step is what made the difference


def test_a_felt_marker_digit_is_thinned(test_set: mnist.Split) -> None:
    thinned, raw = [], []
    for i in range(8):
        frame = render("marker", test_set.images[i], int(test_set.labels[i]), np.random.default_rng([19, i]))
        a, b = prepare(frame).mnist, prepare(frame, PreprocessConfig(stroke=0)).mnist
        if a is not None and b is not None:
            thinned.append(width_at_28(a))
            raw.append(width_at_28(b))
    assert len(thinned) >= 7 and np.median(thinned) < np.median(raw) and np.median(thinned) <= 1.6 * STROKE


def test_ruled_paper_lines_are_not_ink(test_set: mnist.Split) -> None:
    """Rules cross the digit and reach the region's edge: taken out, the digit is read alone."""
    scores = []
    for i in range(10):
        frame = render("lined", test_set.images[i], int(test_set.labels[i]), np.random.default_rng([23, i]))
        found = prepare(frame)
        scores.append(-1.0 if found.mnist is None else correlation(found.mnist, test_set.images[i]))
    assert sum(s > 0.4 for s in scores) >= 9, np.round(scores, 2)


def test_printed_digits_are_found_and_centred() -> None:
    found = []
    for i in range(20):
        frame = render("printed", np.zeros((28, 28), np.uint8), i % 10, np.random.default_rng([29, i]))
        found.append(prepare(frame).mnist)
    assert sum(m is not None for m in found) >= 19
    for image in (m for m in found if m is not None):
        moments = cv2.moments(image)
        assert abs(moments["m10"] / moments["m00"] - 14) <= 1 and abs(moments["m01"] / moments["m00"] - 14) <= 1


@pytest.mark.parametrize("shade,edge", [(70, 250), (90, 200), (110, 300), (90, 320)])
def test_a_straight_stroke_across_a_shadow_edge_is_a_digit_not_a_sliver(shade: int, edge: int) -> None:
    """A "1" drawn across a hard shadow's edge is straight and has shadow beside part of it, like the sliver
    a shadow's corner leaves; but a sliver lies along the edge, and this stroke crosses it."""
    frame = np.full((480, 640, 3), 200, np.uint8)
    cv2.line(frame, (318, 160), (322, 340), (50, 50, 50), 9)  # 9 px wide: y 155-345
    shadow = frame[edge:]
    shadow[:] = np.where(shadow == 50, round(50 * shade / 200), shade)  # the lower part of the sheet in shadow
    prep = prepare(cv2.GaussianBlur(frame, (5, 5), 1.2))
    assert prep.mnist is not None, prep.reason
    _, y, _, h = prep.box
    assert abs(y - 155) <= 8 and abs(y + h - 345) <= 8, prep.box  # the whole stroke, both sides of the edge
