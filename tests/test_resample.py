"""vision/resample.py: integer resizes that give the same pixels everywhere, close to OpenCV's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitsum_edge.vision import resample


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (5, 5), 2)


@pytest.mark.parametrize(("shape", "size"), [((144, 144), (128, 128)), ((240, 320), (128, 96)), ((30, 17), (80, 45)),
                                             ((7, 3), (20, 9))])
def test_linear_is_opencvs_within_a_grey_level(shape: tuple[int, int], size: tuple[int, int]) -> None:
    image = _image(*shape)
    ours = resample.resize(image, size)
    assert ours.shape == (size[1], size[0]) and ours.dtype == np.uint8
    diff = np.abs(ours.astype(int) - cv2.resize(image, size, interpolation=cv2.INTER_LINEAR))
    assert diff.max() <= 1 and diff.mean() < 0.2


@pytest.mark.parametrize(("shape", "size"), [((80, 53), (13, 20)), ((100, 70), (56, 80)), ((128, 128), (64, 64))])
def test_area_is_opencvs_within_a_grey_level(shape: tuple[int, int], size: tuple[int, int]) -> None:
    image = _image(*shape, seed=1)
    diff = np.abs(resample.resize(image, size, area=True).astype(int) - cv2.resize(image, size,
                                                                                   interpolation=cv2.INTER_AREA))
    assert diff.max() <= 1


def test_exact_values_by_hand() -> None:
    row = np.array([[0, 100, 200]], np.uint8)
    # area 3 -> 2: [0 + 100 / 2, 100 / 2 + 200] / 1.5 = 33.3, 166.7
    assert resample.resize(row, (2, 1), area=True).tolist() == [[33, 167]]
    # linear 3 -> 2: source x = 0.25, 1.75: 25, 175
    assert resample.resize(row, (2, 1)).tolist() == [[25, 175]]
    # a half-way value rounds up, whatever the machine: (1 + 2) / 2
    assert resample.resize(np.array([[1, 2]], np.uint8), (1, 1), area=True).tolist() == [[2]]
    flat = np.full((33, 47), 77, np.uint8)
    for size, area in (((20, 13), True), ((80, 61), False), ((13, 5), False)):
        assert (resample.resize(flat, size, area) == 77).all()
