"""Camera frame -> MNIST-like 28x28: white digit on black, fitted in 20x20, centred by centre of mass.

A camera sees dark ink on light, unevenly lit, noisy paper at any size. The pipeline works on a
downscaled central square (the region of interest) so that it costs well under a millisecond:
grayscale, blur, paper brightness by a max filter, ink = paper - image, Otsu threshold with a contrast
floor, the digit's contours, crop, stroke contrast stretch, resize keeping aspect, centre of mass.
It returns no image ("no digit") for blank paper, noise, and marks too small or too large to be a digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MNIST_SIZE = 28
BOX = 20  # MNIST digits are fitted in a 20x20 box, keeping aspect ratio
CENTRE = 14.0  # MNIST's mean centre of mass (x and y, pixel-index coordinates), measured on the test set

Rect = tuple[int, int, int, int]  # x, y, w, h in frame pixels


@dataclass(frozen=True)
class PreprocessConfig:
    """How a frame is read; defaults suit a digit held in the middle of a webcam image."""

    roi: float = 0.6  # side of the central square that is read, as a fraction of the frame's shorter side
    work_size: int = 128  # the region is downscaled to work_size x work_size pixels before anything else
    ink: str = "auto"  # "dark" ink on light paper, "light" ink on a dark background, or "auto" per frame
    min_contrast: int = 28  # ink must be this much darker than the paper around it (0-255)
    min_size: float = 0.12  # digit box (longer side) below this fraction of the region: too small
    max_size: float = 0.95  # above this fraction: too large
    max_blobs: int = 12  # more separate marks than this in the region: clutter or noise, not one digit


@dataclass
class Prepared:
    """What the preprocessing found in one frame."""

    mnist: np.ndarray | None  # (28, 28) uint8, white digit on black; None: no digit
    roi: Rect  # the region read, in frame pixels
    box: Rect | None  # the digit's bounding box, in frame pixels
    reason: str = ""  # why there is no digit: blank, too small, too large, clutter, touches edge


def roi_box(height: int, width: int, fraction: float) -> Rect:
    """The central square covering `fraction` of the shorter side, as (x, y, w, h)."""
    side = max(1, min(min(height, width), round(min(height, width) * fraction)))
    return (width - side) // 2, (height - side) // 2, side, side


def to_gray(image: np.ndarray) -> np.ndarray:
    """BGR, BGRA or gray uint8 -> gray uint8 (any size)."""
    if image.ndim == 2 or image.shape[2] == 1:
        return image.reshape(image.shape[:2])
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


def _ink_is_light(gray: np.ndarray) -> bool:
    """Light marks on a dark background: the histogram's bright tail reaches further than its dark one.

    Lighting spreads the paper's values both ways by tens of levels; ink goes 100+ levels one way.
    """
    hist = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist) / hist.sum()
    low, median, high = np.searchsorted(cdf, (0.001, 0.5, 0.999))
    return bool(high - median > median - low)


def _median(image: np.ndarray) -> float:
    """Median of a uint8 image from its histogram (faster than np.median)."""
    hist = cv2.calcHist([image], [0], None, [256], [0, 256]).ravel()
    return float(np.searchsorted(np.cumsum(hist), hist.sum() / 2))


def _shrink(gray: np.ndarray, n: int) -> np.ndarray:
    """Square gray image -> (n, n): exact halvings by pixel averaging (OpenCV's fast path), then linear."""
    while gray.shape[0] >= 2 * n:
        half = gray.shape[0] // 2
        gray = cv2.resize(gray[:2 * half, :2 * half], (half, half), interpolation=cv2.INTER_AREA)
    if gray.shape[0] != n:
        gray = cv2.resize(gray, (n, n), interpolation=cv2.INTER_LINEAR)
    return gray


def _stretch(ink: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ink `low` -> 0 and `high` -> 255 (saturating), like MNIST's black background and white cores."""
    scale = 255.0 / max(high - low, 1.0)
    lut = np.clip((np.arange(256, dtype=np.float32) - low) * scale, 0, 255).astype(np.uint8)
    return cv2.LUT(ink, lut)


def to_mnist(digit: np.ndarray) -> np.ndarray:
    """White-on-black crop of one digit (any size) -> (28, 28) uint8: 20x20 box, centre of mass at 14, 14."""
    h, w = digit.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(digit, size, interpolation=interpolation)  # (<=20, <=20), longer side 20
    m = cv2.moments(small)
    if m["m00"] <= 0:
        cx, cy = size[0] / 2, size[1] / 2
    else:
        cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    shift = np.array([[1, 0, round(CENTRE - cx)], [0, 1, round(CENTRE - cy)]], np.float32)  # whole pixels: no blur
    return cv2.warpAffine(small, shift, (MNIST_SIZE, MNIST_SIZE), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def prepare(frame: np.ndarray, cfg: PreprocessConfig = PreprocessConfig()) -> Prepared:
    """Find the digit in the frame's region of interest and make it look like an MNIST image."""
    x0, y0, side, _ = roi = roi_box(frame.shape[0], frame.shape[1], cfg.roi)
    n = cfg.work_size
    gray = cv2.GaussianBlur(_shrink(to_gray(frame[y0:y0 + side, x0:x0 + side]), n), (3, 3), 0)  # (n, n)
    if cfg.ink == "light" or (cfg.ink == "auto" and _ink_is_light(gray)):
        gray = cv2.bitwise_not(gray)
    # Paper brightness: a max filter wider than any stroke erases the ink and keeps the lighting gradient.
    k = n // 6 | 1
    paper = cv2.blur(cv2.dilate(gray, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))), (k, k))
    ink = cv2.subtract(paper, gray)  # (n, n) uint8, white ink on black, the lighting removed
    otsu, _ = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    level = max(otsu, cfg.min_contrast, 2.0 * _median(ink))  # the median is what noise alone makes
    _, mask = cv2.threshold(ink, level, 255, cv2.THRESH_BINARY)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)

    min_area = (0.03 * n) ** 2  # specks below ~3 % of the region's side squared are noise
    # Pixel area of a mark: the polygon through the edge pixels' centres plus half its perimeter.
    blobs = [(cv2.contourArea(c) + cv2.arcLength(c, True) / 2 + 1, _rect(cv2.boundingRect(c)), c) for c in contours]
    blobs = [b for b in blobs if b[0] >= min_area]
    if not blobs:
        return Prepared(None, roi, None, "blank")
    if len(blobs) > cfg.max_blobs:
        return Prepared(None, roi, None, "clutter")
    inside = [b for b in blobs if not _touches_edge(b[1], n)]
    if not inside:
        return Prepared(None, roi, None, "touches edge")
    box, chosen = _digit_blobs(inside)
    bx, by, bw, bh = box
    f = side / n
    frame_box = (x0 + round(bx * f), y0 + round(by * f), max(1, round(bw * f)), max(1, round(bh * f)))
    longer = max(bw, bh) / n
    if longer < cfg.min_size:
        return Prepared(None, roi, frame_box, "too small")
    if longer > cfg.max_size:
        return Prepared(None, roi, frame_box, "too large")

    marks = np.zeros((bh, bw), np.uint8)  # only the digit's own marks, not a neighbour's
    cv2.drawContours(marks, chosen, -1, 255, thickness=cv2.FILLED, offset=(-bx, -by))
    keep = cv2.dilate(marks, np.ones((3, 3), np.uint8))  # keep the soft edge just outside the threshold
    digit = cv2.bitwise_and(ink[by:by + bh, bx:bx + bw], keep)  # (bh, bw) uint8
    _, core, _, _ = cv2.minMaxLoc(digit)
    return Prepared(to_mnist(_stretch(digit, level * 0.5, core * 0.8)), roi, frame_box)


def _rect(values) -> Rect:
    x, y, w, h = values
    return int(x), int(y), int(w), int(h)


def _touches_edge(rect: Rect, n: int) -> bool:
    x, y, w, h = rect
    return x <= 0 or y <= 0 or x + w >= n or y + h >= n


def _digit_blobs(blobs: list) -> tuple[Rect, list]:
    """The largest mark and the marks close to it (a digit drawn in several strokes), and their box."""
    blobs = sorted(blobs, key=lambda b: -b[0])
    x, y, w, h = blobs[0][1]
    chosen = [blobs[0][2]]
    for _, (bx, by, bw, bh), contour in blobs[1:]:
        margin = 0.4 * max(w, h)
        if bx < x + w + margin and x - margin < bx + bw and by < y + h + margin and y - margin < by + bh:
            x1, y1 = min(x, bx), min(y, by)
            x, y, w, h = x1, y1, max(x + w, bx + bw) - x1, max(y + h, by + bh) - y1
            chosen.append(contour)
    return (x, y, w, h), chosen
