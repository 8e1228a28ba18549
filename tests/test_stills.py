"""A still picture read whole (roi 1, vision/stills.py): the one digit anywhere in it, at a tenth of its shorter
side too, on shadowed and ruled paper, beside a smudge; no digit on a blank textured sheet. Pictures made here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitsum_edge import mnist
from digitsum_edge.vision.frame import prepare
from digitsum_edge.vision.preprocess import PreprocessConfig
from digitsum_edge.vision.settings import ReadingSettings

STILL = PreprocessConfig(reading=ReadingSettings(roi=1.0))


@pytest.fixture(scope="module")
def digits() -> mnist.Split:
    return mnist.load("test")


def paper(h: int = 480, w: int = 640, level: float = 215, seed: int = 0) -> np.ndarray:
    """(h, w) float32 paper with a little grain."""
    return np.random.default_rng(seed).normal(level, 2.5, (h, w)).astype(np.float32)


def draw(sheet: np.ndarray, digit: np.ndarray, x: int, y: int, side: int, darkness: float = 0.8) -> tuple:
    """Ink an MNIST image onto the sheet, its 20x20 box `side` pixels at (x, y); returns that box."""
    n = round(side * 28 / 20)
    coverage = cv2.resize(digit.astype(np.float32) / 255, (n, n), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    x0, y0 = x - (n - side) // 2, y - (n - side) // 2
    sheet[y0:y0 + n, x0:x0 + n] *= 1 - darkness * coverage
    return x, y, side, side


def picture(sheet: np.ndarray) -> np.ndarray:
    return np.clip(sheet, 0, 255).astype(np.uint8)[..., None].repeat(3, axis=2)


def likeness(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def assert_read(prep, digit: np.ndarray, box: tuple) -> None:
    """The digit drawn at `box` was found there, whole, and looks like its MNIST image."""
    assert prep.mnist is not None, prep.reason
    bx, by, bw, bh = prep.box
    x, y, side, _ = box
    assert x - 0.25 * side <= bx and bx + bw <= x + 1.25 * side and y - 0.25 * side <= by and by + bh <= y + 1.25 * side
    assert max(bw, bh) >= 0.6 * side  # the whole digit, not a piece
    assert likeness(prep.mnist, digit) > 0.6


@pytest.mark.parametrize("where", [(470, 340), (90, 60), (300, 210)])
def test_a_digit_a_tenth_of_the_picture_is_found_anywhere(digits: mnist.Split, where: tuple) -> None:
    """A 640x480 photo of a page with a digit 48 pixels high (a tenth of 480) in a corner or the middle: at 128
    pixels it was 10 pixels high, "too small"."""
    for i in range(3):
        sheet = paper(seed=i)
        box = draw(sheet, digits.images[i], *where, 48)
        assert_read(prepare(picture(sheet), STILL), digits.images[i], box)


def test_a_digit_on_a_sheet_in_a_shadow_gradient(digits: mnist.Split) -> None:
    """Light falling from 235 to 80 across the sheet and a shadow's hard edge; the digit, an eighth of the picture high,
    in the dim part."""
    for i in range(3):
        sheet = paper(seed=i) / 215 * np.linspace(235, 80, 640, dtype=np.float32)[None, :]
        sheet[:, 520:] *= 0.55
        box = draw(sheet, digits.images[10 + i], 400, 180, 64)
        assert_read(prepare(picture(sheet), STILL), digits.images[10 + i], box)


def test_a_digit_on_ruled_paper(digits: mnist.Split) -> None:
    """Blue-grey rules every 22 pixels across a whole page, and a margin line: the digit (an eighth of the picture
    high, about three rules), not the rules."""
    for i in range(3):
        sheet = paper(seed=i)
        for y in range(15, 480, 22):
            cv2.line(sheet, (0, y), (639, y + 6), 150, 2, cv2.LINE_AA)
        cv2.line(sheet, (80, 0), (80, 479), 140, 2)
        box = draw(sheet, digits.images[20 + i], 400 - 90 * i, 150 + 60 * i, 60)
        assert_read(prepare(picture(sheet), STILL), digits.images[20 + i], box)


def test_a_blank_textured_sheet_is_no_digit() -> None:
    """Recycled paper: blotchy tint, fibres, a soft shadow over a corner; no digit on any of them."""
    for i in range(8):
        rng = np.random.default_rng(100 + i)
        blotches = cv2.resize(rng.normal(0, 1, (6, 8)).astype(np.float32), (640, 480), interpolation=cv2.INTER_CUBIC)
        sheet = paper(seed=i) + 12 * blotches
        for _ in range(60):  # short grey fibres
            x, y = rng.integers(0, 640), rng.integers(0, 480)
            angle = rng.uniform(0, np.pi)
            length = rng.uniform(4, 14)
            cv2.line(sheet, (int(x), int(y)), (int(x + length * np.cos(angle)), int(y + length * np.sin(angle))),
                     float(rng.uniform(150, 190)), 1, cv2.LINE_AA)
        yy, xx = np.mgrid[0:480, 0:640]
        corner = (xx + yy * rng.uniform(0.5, 2)) < rng.uniform(150, 400)
        sheet *= np.where(corner, np.float32(rng.uniform(0.4, 0.6)), np.float32(1))
        prep = prepare(picture(cv2.GaussianBlur(sheet, (0, 0), 1.0)), STILL)
        assert prep.mnist is None, (i, prep.box, prep.candidates)


def test_a_shadow_over_most_of_a_blank_sheet_is_no_digit() -> None:
    """A blank sheet under uneven light, a shadow (a hand, a book's corner) over half of it or more, its soft edge
    across the picture from top to bottom: the edge is no digit framed tightly (read whole, it was one in 4 of
    these 60), nor is a patch of shadow."""
    from digitsum_edge.synth.camera import lighting

    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    read = []
    for i in range(60):
        rng = np.random.default_rng(300 + i)
        light = lighting(rng, 640, 480)
        x0, x1 = rng.uniform(150, 550, 2)
        shadow = xx < x0 + (x1 - x0) * yy / 480
        if rng.random() < 0.5:  # a corner: a second edge meeting the first
            shadow &= np.abs(yy - rng.uniform(100, 380)) * rng.uniform(0.5, 1.5) < x0 + 200 - xx
        shade = np.where(shadow, np.float32(rng.uniform(0.3, 0.6)), np.float32(1))
        soft = cv2.GaussianBlur(shade, (0, 0), rng.uniform(0.5, 3))[..., None]
        sheet = light * soft + rng.normal(0, 3, (480, 640, 1))
        prep = prepare(cv2.GaussianBlur(np.clip(sheet, 0, 255).astype(np.uint8), (0, 0), 1.0), STILL)
        read += [(i, prep.box)] if prep.mnist is not None else []
    assert read == []


def test_a_digit_beside_a_smudge_is_taken_and_the_smudge_is_a_candidate(digits: mnist.Split) -> None:
    """A grey thumb smudge beside the digit: the reading takes the digit, and lists the smudge as a candidate."""
    for i in range(3):
        sheet = paper(seed=i)
        smudge = np.zeros((480, 640), np.float32)
        cv2.ellipse(smudge, (470, 250), (45, 30), 30, 0, 360, 1.0, cv2.FILLED)
        sheet *= 1 - 0.3 * cv2.GaussianBlur(smudge, (0, 0), 6)
        box = draw(sheet, digits.images[30 + i], 160, 190, 100)
        prep = prepare(picture(sheet), STILL)
        assert_read(prep, digits.images[30 + i], box)
        assert len(prep.candidates) >= 2 and any(c.box[0] > 380 for c in prep.candidates)
        chosen = [c for c in prep.candidates if c.chosen]
        assert len(chosen) == 1 and chosen[0].box[0] < 300


def test_the_report_picture_shows_the_other_candidates() -> None:
    """The overlay draws each candidate not taken as a grey box, beside the taken digit's box."""
    from digitsum_edge.apps import overlay
    from digitsum_edge.apps.reader import Reading

    frame = np.full((480, 640, 3), 255, np.uint8)
    other = {"box": [400, 150, 60, 60], "region": [330, 80, 200, 200], "score": 0.2, "digit": 0,
             "confidence": 0.4, "reason": None, "chosen": False}
    taken = {**other, "box": [100, 150, 50, 80], "digit": 3, "chosen": True}
    reading = Reading(True, 3, region=(0, 0, 640, 480), box=(100, 150, 50, 80), digit=3, digit_confidence=0.9,
                      sum=6, sum_confidence=0.9, candidates=[other, taken])
    drawn = overlay.draw(frame, reading)
    assert (drawn[150:211, 400].mean(axis=1) < 215).sum() >= 50  # the grey box's left side, on white
    assert reading.to_dict()["candidates"] == [other, taken]
    plain = overlay.draw(frame, Reading(True, 3, region=(0, 0, 640, 480), box=(100, 150, 50, 80), digit=3,
                                        digit_confidence=0.9, sum=6, sum_confidence=0.9))
    assert (plain[150:211, 400] == 255).all()


def test_the_misread_picture_outlines_the_other_candidates() -> None:
    """`predict --report`'s misread picture outlines each candidate not taken."""
    from digitsum_edge.apps.reader import Reading
    from digitsum_edge.apps.score import misread_picture

    frame = np.full((280, 280, 3), 255, np.uint8)
    other = {"box": [200, 100, 40, 40], "region": [150, 50, 130, 130], "score": 0.2, "digit": 0,
             "confidence": 0.4, "reason": None, "chosen": False}
    reading = Reading(True, 3, region=(0, 0, 280, 280), box=(40, 100, 40, 60), digit=3, digit_confidence=0.9,
                      candidates=[other])
    drawn = misread_picture(frame, reading, 7)[28:]  # below the caption strip
    assert (drawn[105:136, 200].mean(axis=1) < 215).sum() >= 25
    reading.candidates = []
    assert (misread_picture(frame, reading, 7)[28:][105:136, 200] == 255).all()


def test_digits_cropped_to_their_ink_are_read_whole(digits: mnist.Split) -> None:
    """A picture cropped to the digit's own ink, a pixel or two of paper around it: the digit reaches every side,
    its marks may fall into groups (a 4's stem and arms, a 9's loop and tail, a 7's bar and stem) and are read
    whole, as a crop, never "no digit"."""
    missed = []
    for k in range(40):
        sheet = paper(400, 400, seed=k)
        draw(sheet, digits.images[k], 100, 100, 200, darkness=0.75)
        ink = np.argwhere(sheet < 150)
        (y0, x0), (y1, x1) = ink.min(0), ink.max(0)
        crop = picture(sheet[max(y0 - 2, 0):y1 + 3, max(x0 - 2, 0):x1 + 3])
        prep = prepare(crop, STILL)
        if prep.mnist is None or likeness(prep.mnist, digits.images[k]) < 0.6:
            missed.append((k, int(digits.labels[k]), prep.reason))
    assert missed == []


@pytest.mark.parametrize(("steady", "sure", "found"), [(False, False, False), (False, True, True), (True, False, True),
                                                        (None, False, True)])
def test_an_unsure_guide_reading_found_there_only_is_no_digit(tiny_onnx, steady, sure, found) -> None:
    """A still's last resort, the guide square (step 5), is no digit when its digit is not found again in a larger
    square and the model is less than GUIDE_SURE sure of it (a shadow's corner on a blank sheet, mostly): the
    reading says "unsteady", and its candidate keeps the digit and confidence it was read with. Sure, or steady,
    or a candidate of the search (no steadiness to weigh): a digit."""
    from digitsum_edge.apps.reader import DigitReader, PreparedFrame
    from digitsum_edge.engine.factory import open_model
    from digitsum_edge.vision.preprocess import Prepared
    from digitsum_edge.vision.stills import GUIDE_SURE, Candidate

    image = np.zeros((28, 28), np.uint8)
    image[6:22, 12:16] = 255
    guide = (80, 0, 480, 480)
    candidate = Candidate(guide, guide, 0.0, Prepared(image, guide, (300, 200, 40, 90)), chosen=True, steady=steady)
    prep = Prepared(image, (0, 0, 640, 480), (300, 200, 40, 90), "", [candidate])
    digit_logits = np.zeros((1, 10), np.float32)
    digit_logits[0, 1] = np.log(GUIDE_SURE / (1 - GUIDE_SURE) * 9) + (0.3 if sure else -0.3)  # just above or below
    logits = (digit_logits, np.zeros((1, 19), np.float32))
    reading = DigitReader(open_model(tiny_onnx, "cpu", threads=1)).reading(PreparedFrame(prep, 1.0), 3, logits)
    assert reading.found is found
    line = reading.candidates[0]
    assert steady is None or (line["digit"] == 1 and (line["confidence"] >= GUIDE_SURE) is sure)
    if found:
        assert reading.digit == 1 and reading.box == (300, 200, 40, 90) and line["chosen"]
    else:
        assert reading.reason == "unsteady" and reading.box is None and reading.mnist is None
        assert not line["chosen"] and line["reason"] == "unsteady"
