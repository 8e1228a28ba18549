"""The annotated frame: a copy, the region box in green (digit) or amber (no digit), the model input top-left."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digitsum_edge.apps.overlay import AMBER, CYAN, GREEN, GREY, YELLOW, draw
from digitsum_edge.apps.reader import DigitReader, Reading
from digitsum_edge.engine.factory import open_model
from digitsum_edge.synth.frames import camera_frame, pick_digits
from digitsum_edge.vision.preprocess import roi_box

BACKGROUND = 128
MNIST = (np.arange(28 * 28).reshape(28, 28) * 7 % 256).astype(np.uint8)  # every pixel of the inset told apart


def _frame(h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), BACKGROUND, np.uint8)


def _reading(found: bool, h: int = 480, w: int = 640) -> Reading:
    roi = roi_box(h, w, 0.6)
    box = (roi[0] + roi[2] // 4, roi[1] + roi[3] // 4, roi[2] // 3, roi[3] // 2)
    if found:
        return Reading(True, 3, 0.5, roi, box, MNIST, digit=5, digit_confidence=0.97, sum=8, sum_confidence=0.95)
    return Reading(False, 3, 0.4, roi, box, reason="too small")


def _nearest(pixel: np.ndarray) -> str:
    """Which of the overlay's colours (or the untouched background) a pixel is closest to."""
    colours = {"green": GREEN, "yellow": YELLOW, "amber": AMBER, "cyan": CYAN, "grey": GREY,
               "background": (BACKGROUND,) * 3}
    return min(colours, key=lambda name: np.abs(pixel.astype(int) - colours[name]).sum())


def _edge_midpoints(rect: tuple[int, int, int, int]) -> list[tuple[int, int]]:
    """(row, column) of the middle of the top, bottom, left and right edges of a drawn x, y, w, h rectangle."""
    x, y, w, h = rect
    return [(y, x + w // 2), (y + h - 1, x + w // 2), (y + h // 2, x), (y + h // 2, x + w - 1)]


@pytest.mark.parametrize("found", [True, False])
def test_draw_returns_a_copy_and_leaves_the_input_untouched(found: bool) -> None:
    frame = _frame(480, 640)
    frame[200:260, 300:340] = 40  # something in the frame
    before = frame.copy()
    out = draw(frame, _reading(found), fps=29.7, paused=True, provider="cpu", keys=True)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert not np.shares_memory(out, frame)
    assert np.array_equal(frame, before)
    assert not np.array_equal(out, frame)  # and something was drawn


@pytest.mark.parametrize(("found", "region", "box"), [(True, "green", "cyan"), (False, "amber", "grey")])
def test_region_box_colour_says_whether_a_digit_was_found(found: bool, region: str, box: str) -> None:
    reading = _reading(found)
    out = draw(_frame(480, 640), reading)
    for row, column in _edge_midpoints(reading.region):
        assert _nearest(out[row, column]) == region, (row, column, out[row, column])
    for row, column in _edge_midpoints(reading.box):
        assert _nearest(out[row, column]) == box, (row, column, out[row, column])
    x, y, w, h = reading.region
    assert _nearest(out[y + h // 2, x + w // 8]) == "background"  # inside the region, away from any line
    assert _nearest(out[y - 6, x + w // 2]) == "background"  # outside the region: the line is where the region is


def test_the_region_box_follows_the_reading_not_the_frame_centre() -> None:
    reading = _reading(True)
    moved = Reading(**{**reading.__dict__, "region": (20, 150, 100, 100), "box": None})
    out = draw(_frame(480, 640), moved)
    for row, column in _edge_midpoints(moved.region):
        assert _nearest(out[row, column]) == "green"
    for row, column in _edge_midpoints(reading.region):
        assert _nearest(out[row, column]) == "background"


@pytest.mark.parametrize(("h", "w", "pad", "scale"), [(480, 640, 10, 4), (240, 320, 5, 2), (960, 1280, 20, 8),
                                                      (720, 1280, 15, 6)])
def test_the_model_input_inset_is_top_left(h: int, w: int, pad: int, scale: int) -> None:
    out = draw(_frame(h, w), _reading(True, h, w))
    side = 28 * scale
    inset = out[pad:pad + side, pad:pad + side]  # (side, side, 3)
    blocks = inset.reshape(28, scale, 28, scale, 3)
    assert (blocks == MNIST[:, None, :, None, None]).all()  # every model pixel, enlarged, grey in B, G and R
    assert _nearest(out[pad + side + 2 * scale, w // 2]) == "background"  # the inset stops where it should

    empty = draw(_frame(h, w), _reading(False, h, w))  # no digit: the inset is black
    assert (empty[pad:pad + side, pad:pad + side] == 0).all()


def test_the_readout_band_is_darkened() -> None:
    out = draw(_frame(480, 640), _reading(True))
    band = out[480 - 78:, 600:]  # right end of the band, past any text
    assert (band == int(BACKGROUND * 0.3)).all()
    paused, running = draw(_frame(480, 640), _reading(True), paused=True), draw(_frame(480, 640), _reading(True))
    assert not np.array_equal(paused[480 - 78:], running[480 - 78:]) and np.array_equal(paused[:300], running[:300])


@pytest.mark.parametrize(("h", "w"), [(120, 160), (48, 64), (24, 32), (5, 300), (300, 5), (1, 1)])
@pytest.mark.parametrize("found", [True, False])
def test_small_frames_still_work(h: int, w: int, found: bool) -> None:
    frame = _frame(h, w)
    reading = _reading(found, h, w)
    out = draw(frame, reading, fps=30.0, provider="cpu")
    assert out.shape == (h, w, 3) and np.array_equal(frame, _frame(h, w))
    x, y, rw, _ = reading.region
    if min(h, w) >= 24:  # the region's top edge keeps its hue (it may lie under the darkened readout band)
        b, g, r = (int(v) for v in out[y, x + rw // 2])
        assert (g > r + 20 and g > b + 20) if found else (r > g > b + 20), (b, g, r)


def test_a_gray_frame_gives_a_colour_picture() -> None:
    gray = np.full((480, 640), BACKGROUND, np.uint8)
    out = draw(gray, _reading(True))
    assert out.shape == (480, 640, 3) and (gray == BACKGROUND).all()
    assert _nearest(out[_edge_midpoints(_reading(True).region)[0]]) == "green"


def test_a_real_reading_is_drawn_where_it_was_read(tiny_onnx: Path) -> None:
    reader = DigitReader(open_model(tiny_onnx, "cpu", threads=1))
    digits, _ = pick_digits(3, seed=0)
    regions = set()
    for i, digit in enumerate([*digits, None]):
        frame = camera_frame(digit, np.random.default_rng([i, 9]))
        reading = reader.read(frame, 4)
        assert reading.found == (digit is not None)
        out = draw(frame, reading)
        region = ("yellow" if reading.uncertain else "green") if reading.found else "amber"  # the tiny model may guess
        assert all(_nearest(out[p]) == region for p in _edge_midpoints(reading.region))
        regions.add(region)
        if reading.found:
            assert (out[10:122, 10:122].reshape(28, 4, 28, 4, 3) == reading.mnist[:, None, :, None, None]).all()
    assert {"green", "amber"} <= regions  # a confident digit and a blank were both drawn
