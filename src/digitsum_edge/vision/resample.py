"""Resizing in exact integer arithmetic: the same pixels on every machine (x86-64, ARM64, the browser's
web/app/cvlite.js), at about OpenCV's speed.

OpenCV's INTER_LINEAR and its INTER_AREA at a fractional scale round differently in their x86 and ARM vector
code (by one grey level here and there), and a grey level can move a threshold, a box and so the 28x28 image.
Here every step is an exact integer sum, rounded once:

- linear: OpenCV's INTER_LINEAR_EXACT, its bit-exact mode (fixed point and software floating point, the same
  results on every architecture by design; checked under emulation on Cortex-A72 and A76, docs/arm64.md).
  Source x = (x + 0.5) * (1 / (dst / src)) - 0.5 in IEEE double precision, in that order; left of the first
  pixel's centre the first pixel, from the last one's on the last pixel; else the pixel at floor(x) and the next,
  the next one's weight the fraction in 1/256 rounded half to even (the first's 256 minus it); rows then
  columns summed exactly and rounded once, half up: (sum + 2^15) >> 16. Where the weights are whole numbers of
  1/256 even in float geometry, OpenCV's float32 resize gives the same sums, exactly and faster.
  tests/test_resample.py holds both to a plain reference of this, and cvlite.js computes the same.
- area: each output pixel is the mean of the source area it covers, partial pixels by the share covered (in
  units of 1 / dst): OpenCV's INTER_AREA for a shrink, fractional or not, rounded once, half up. Summed as two
  matrix products of small integers, which floating point adds exactly in any order while every partial sum
  stays below 2^24 (float32) or 2^53 (float64).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

FLOAT32_EXACT = 1 << 24  # every integer below this is a float32


@lru_cache(maxsize=512)
def area_weights(src: int, dst: int, kind: type = np.float32) -> np.ndarray:
    """(src, dst): how much of source pixel i output pixel j covers, in units of 1 / dst of a pixel (output j
    spans [j src, (j + 1) src) in these units, source i [i dst, (i + 1) dst); each column sums to src)."""
    i, j = np.arange(src)[:, None], np.arange(dst)[None, :]
    weight = np.maximum(0, np.minimum((j + 1) * src, (i + 1) * dst) - np.maximum(j * src, i * dst)).astype(kind)
    weight.flags.writeable = False
    return weight


def resize(image: np.ndarray, size: tuple[int, int], area: bool = False) -> np.ndarray:
    """uint8 (H, W) -> uint8 (h, w) for size (w, h): linear, or with `area` the area average where neither side
    grows (elsewhere linear, as OpenCV's INTER_AREA)."""
    (h, w), (dw, dh) = image.shape, size
    if (dh, dw) == (h, w):
        return image.copy()
    if area and dw <= w and dh <= h:
        return _area(image, dw, dh)
    if (128 * w) % dw == 0 and (128 * h) % dh == 0:  # every weight a whole number of 1/256, even in float
        return _linear_float(image, dw, dh)
    return cv2.resize(image, (dw, dh), interpolation=cv2.INTER_LINEAR_EXACT)


def _linear_float(image: np.ndarray, dw: int, dh: int) -> np.ndarray:
    """INTER_LINEAR_EXACT's result, faster, where dst divides 128 src on both sides (a shrink to 128 pixels, a
    growth by 2): source x = ((2 x + 1) src - dst) / (2 dst) is then a whole number of 1/256 for every x, so
    OpenCV's float geometry gives it exactly (its double rounding error vanishes in the cast to float32), with the
    same pixels and edges, and its float32 resize sums p x a x b with weights a, b in 1/256: whole numbers of
    1/65536 below 2^24 of them, added exactly in any order and vector width. Unlike the bit-exact mode it does not
    compute its weights in software floating point at each call."""
    total = np.asarray(cv2.resize(image.astype(np.float32), (dw, dh), interpolation=cv2.INTER_LINEAR), np.float32)
    total += 0.5  # sum / 2^16 + 1 / 2, exactly
    return total.astype(np.uint8)  # the floor


def _area(image: np.ndarray, dw: int, dh: int) -> np.ndarray:
    (h, w) = image.shape
    scale = w * h  # the weights of one output pixel sum to this
    kind = np.float32 if 255 * scale < FLOAT32_EXACT else np.float64  # every sum an exact integer
    across, down = area_weights(w, dw, kind), area_weights(h, dh, kind)
    pixels = image.astype(kind)
    cheaper = dh * w * (h + dw) <= h * dw * (w + dh)  # of the two orders
    total = (down.T @ pixels) @ across if cheaper else down.T @ (pixels @ across)  # (dh, dw): integers <= 255 scale
    exact = total.astype(np.int64)
    return ((2 * exact + scale) // (2 * scale)).astype(np.uint8)  # the mean, rounded half up
