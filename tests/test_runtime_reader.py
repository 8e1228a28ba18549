"""DigitReader on single frames: confidences, rand checks, re-reading with another rand, smoothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digitsum_edge.apps.policy import RandPicker, Smoother
from digitsum_edge.apps.reader import DigitReader, json_line, softmax
from digitsum_edge.engine.factory import open_model
from digitsum_edge.errors import DigitsumError
from digitsum_edge.synth.frames import camera_frame, pick_digits


@pytest.fixture(scope="module")
def reader(tiny_onnx: Path) -> DigitReader:
    return DigitReader(open_model(tiny_onnx, "cpu", threads=1))


@pytest.fixture(scope="module")
def frame_and_label() -> tuple[np.ndarray, int]:
    digits, labels = pick_digits(1, seed=17)  # a clear 6: the tiny model reads it with ~98 % confidence
    return camera_frame(digits[0], np.random.default_rng(17)), labels[0]


def test_softmax_is_stable_and_sums_to_one() -> None:
    p = softmax(np.array([[1000.0, 1000.0, -1000.0]]))
    assert np.allclose(p, [[0.5, 0.5, 0.0]]) and np.isfinite(p).all()


def test_read_frames_of_many_digits(reader: DigitReader) -> None:
    """40 random test digits in camera frames: the tiny model (~95 % on MNIST) reads most of them."""
    digits, labels = pick_digits(40, seed=123)
    rng = np.random.default_rng(123)
    readings = [reader.read(camera_frame(d, rng), int(r)) for d, r in zip(digits, rng.integers(0, 10, 40), strict=True)]
    assert all(r.found and r.mnist.shape == (28, 28) and r.ms > 0 for r in readings)
    assert sum(r.digit == label for r, label in zip(readings, labels, strict=True)) >= 32
    assert sum(r.sum == r.digit + r.rand for r in readings) >= 36  # the sum head adds rand
    for r in readings:
        assert r.digit_confidence == pytest.approx(r.digit_probs.max()) and r.sum_confidence == r.sum_probs.max()
        line = json_line(3, "cam", r, "cpu")
        assert line["frame"] == 3 and line["digit"] == r.digit and line["box"] == list(r.box)
        assert line["reason"] is None and line["provider"] == "cpu" and line["rand"] == r.rand


def test_blank_frame_is_no_digit(reader: DigitReader) -> None:
    reading = reader.read(camera_frame(None, np.random.default_rng(1)), 2)
    assert not reading.found and reading.digit is None and reading.sum is None and reading.mnist is None
    line = json_line(0, "cam", reading, "cpu")
    assert line["found"] is False and line["digit_confidence"] is None and line["reason"] == "blank"


@pytest.mark.parametrize("rand", [-1, 10, 2.5, True, "3"])
def test_rand_out_of_range_is_an_error(reader: DigitReader, frame_and_label, rand) -> None:
    with pytest.raises(DigitsumError, match="rand must be an integer in 0-9"):
        reader.read(frame_and_label[0], rand)


def test_with_rand_rereads_only_the_model(reader: DigitReader, frame_and_label) -> None:
    first = reader.read(frame_and_label[0], 0)
    again = reader.with_rand(first, 9)
    assert again.rand == 9 and again.digit == first.digit and again.sum == first.digit + 9
    assert again.box == first.box and again.mnist is first.mnist


def test_smoother_averages_one_digit_and_resets(reader: DigitReader, frame_and_label) -> None:
    other = camera_frame(pick_digits(1, seed=99)[0][0], np.random.default_rng(5))
    smooth = Smoother(3)
    a, b = reader.read(frame_and_label[0], 1), reader.read(other, 1)
    pa, pb = a.digit_probs.copy(), b.digit_probs.copy()
    smooth(a)
    mixed = smooth(b)
    assert np.allclose(mixed.digit_probs, (pa + pb) / 2) and mixed.digit == int(np.argmax(pa + pb))
    smooth(reader.read(camera_frame(None, np.random.default_rng(2)), 1))  # a gap starts over
    c = reader.read(other, 1)
    assert np.allclose(smooth(c).digit_probs, pb)
    d = reader.read(frame_and_label[0], 2)  # so does a new rand
    assert np.allclose(smooth(d).digit_probs, pa)


def test_rand_picker_draws_a_new_rand_per_digit(reader: DigitReader, frame_and_label) -> None:
    fixed = RandPicker(4, seed=0)
    reading = reader.read(frame_and_label[0], 4)
    assert fixed.update(reader, reading) is reading and fixed.value == 4
    picker = RandPicker(None, seed=0)
    blank = reader.read(camera_frame(None, np.random.default_rng(2)), picker.value)
    values = []
    for _ in range(20):  # digit, gap, digit, gap ...: a new draw after every gap
        picker.update(reader, reader.read(frame_and_label[0], picker.value))
        picker.update(reader, blank)
        values.append(picker.value)
    assert len(set(values)) > 3 and all(0 <= v <= 9 for v in values)


def test_finish_marks_a_reading_below_min_confidence_uncertain() -> None:
    from digitsum_edge.apps.reader import MIN_CONFIDENCE, Reading, finish

    digit_probs, sum_probs = np.full(10, 0.05), np.full(19, 0.01)
    digit_probs[4] = 0.55
    reading = finish(Reading(True, 0, 1.0, (0, 0, 1, 1)), digit_probs, sum_probs, min_confidence=0.6)
    assert reading.digit == 4 and reading.uncertain and reading.to_dict()["uncertain"] is True
    assert not finish(Reading(True, 0, 1.0, (0, 0, 1, 1)), digit_probs, sum_probs, 0.5).uncertain
    assert Reading(False, 0, 1.0, (0, 0, 1, 1)).to_dict()["uncertain"] is False  # no digit: nothing to doubt
    assert 0.3 <= MIN_CONFIDENCE <= 0.7


def test_the_cli_default_min_confidence_is_the_readers() -> None:
    from digitsum_edge.apps.command import live, predict
    from digitsum_edge.apps.reader import MIN_CONFIDENCE

    for command in (live, predict):
        option = next(p for p in command.params if p.name == "min_confidence")
        assert option.default == MIN_CONFIDENCE


def test_smoothed_readings_are_judged_on_the_smoothed_confidence(reader: DigitReader, frame_and_label) -> None:
    reading = reader.read(frame_and_label[0], 1)
    smooth = Smoother(2, min_confidence=1.0)
    assert smooth(reading).uncertain  # every confidence is below 1
    assert not Smoother(2, min_confidence=0.0)(reader.read(frame_and_label[0], 1)).uncertain
