"""Resizing in integers: the same pixels on every machine (x86-64, ARM64, the browser's web/app/cvlite.js).

OpenCV's INTER_LINEAR and its INTER_AREA at a fractional scale round differently in their x86 and ARM vector
code (by one grey level here and there), and a grey level can move a threshold, a box and so the 28x28 image.
Here every weight is an exact integer and the result is rounded once, half up, from an exact integer sum:

- linear: OpenCV's geometry (pixel centres, source x = (x + 0.5) * src / dst - 0.5, clamped at the edges) and
  its 11-bit weights, rows then columns summed exactly in int32 and rounded once (OpenCV rounds twice, its
  vector code its own way);
- area: each output pixel is the mean of the source area it covers, partial pixels by the share covered (in
  units of 1 / dst): OpenCV's INTER_AREA for a shrink, fractional or not.

- area: summed in int64 and divided once.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

ONE = 2048  # a linear weight of 1


@lru_cache(maxsize=256)
def linear_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output pixel its two source pixels and the second one's weight in 1/2048 (OpenCV's 11 bits; the
    first one's is 2048 minus it): (dst,) first index, (dst,) second index, (dst,) int32 weight."""
    den = 2 * dst
    num = (2 * np.arange(dst, dtype=np.int64) + 1) * src - dst  # source x = num / den, exactly
    x0 = np.floor_divide(num, den)
    frac = num - x0 * den
    frac[num < 0] = 0
    x0 = np.clip(x0, 0, src - 1)
    frac[x0 >= src - 1] = 0  # past the last pixel's centre: the last pixel
    w1 = (frac * 2 * ONE + den) // (2 * den)  # frac / den in 1/2048, rounded half up
    x1 = np.minimum(x0 + 1, src - 1)
    weight = w1.astype(np.int32)
    for a in (x0, x1, weight):
        a.flags.writeable = False
    return x0, x1, weight


@lru_cache(maxsize=256)
def area_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Per output pixel the source pixels it covers and how much of each, in units of 1 / dst of a source
    pixel (they sum to src): (taps, dst) indices, (taps, dst) int64 weights, their sum."""
    start = np.arange(dst, dtype=np.int64) * src  # output pixel j covers [j src, (j + 1) src) in these units
    first = start // dst
    taps = int(((start + src - 1) // dst - first).max()) + 1
    index = np.minimum(first[:, None] + np.arange(taps), src - 1)
    left = np.maximum(start[:, None], (first[:, None] + np.arange(taps)) * dst)
    right = np.minimum(start[:, None] + src, (first[:, None] + np.arange(taps) + 1) * dst)
    weight = np.ascontiguousarray(np.maximum(right - left, 0).T)
    index = np.ascontiguousarray(index.T)
    index.flags.writeable = weight.flags.writeable = False
    return index, weight, src


def resize(image: np.ndarray, size: tuple[int, int], area: bool = False) -> np.ndarray:
    """uint8 (H, W) -> uint8 (h, w) for size (w, h): linear, or with `area` the area average where neither side
    grows (elsewhere linear, as OpenCV's INTER_AREA)."""
    (h, w), (dw, dh) = image.shape, size
    if (dh, dw) == (h, w):
        return image.copy()
    if area and dw <= w and dh <= h:
        return _area(image, dw, dh)
    x0, x1, xw = linear_taps(w, dw)
    y0, y1, yw = linear_taps(h, dh)
    rows = image[:, x0].astype(np.int32)  # (H, dw), in 1/2048: a + (b - a) w1
    rows *= ONE
    rows += (image[:, x1].astype(np.int32) - image[:, x0]) * xw
    total = rows[y0] * ONE  # (dh, dw), in 1/2048^2: at most 255 x 2^22
    total += (rows[y1] - rows[y0]) * yw[:, None]
    total += 1 << 21
    total >>= 22
    return total.astype(np.uint8)


def _area(image: np.ndarray, dw: int, dh: int) -> np.ndarray:
    (h, w) = image.shape
    xi, xw, xs = area_taps(w, dw)
    yi, yw, ys = area_taps(h, dh)
    scale = xs * ys
    kind = np.int32 if 2 * 255 * scale + scale < 2**31 else np.int64
    xw, yw = xw.astype(kind), yw.astype(kind)[:, :, None]
    rows = image[:, xi[0]] * xw[0]  # (H, dw)
    for t in range(1, len(xi)):
        rows += image[:, xi[t]] * xw[t]
    total = rows[yi[0]] * yw[0]  # (dh, dw): weights summing to xs ys
    for t in range(1, len(yi)):
        total += rows[yi[t]] * yw[t]
    return ((2 * total + scale) // (2 * scale)).astype(np.uint8)
