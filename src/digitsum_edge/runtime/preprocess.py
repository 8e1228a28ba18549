"""Camera frame -> MNIST-like 28x28: white digit on black, fitted in 20x20, centred by centre of mass.

A camera sees dark ink on light, unevenly lit, noisy paper at any size; MNIST is a clean white pen stroke
about 2 pixels wide on black. Each step below removes one difference, and each one's reason is what users
hold up to a webcam (synth/conditions.py draws every one of these, benchmarks/camera_conditions.py scores
them). All of it runs on a downscaled central square (the region of interest), well under a millisecond:

1. Region, grey, shrink to 128x128: halve by averaging, then a 2x2 minimum (grey erosion). The minimum
   keeps a 2-pixel ballpoint line at full contrast; averaging alone halves it into the noise.
2. Ink colour. Dark ink on paper, or light ink (chalk, an MNIST PNG): the histogram's long tail, confirmed
   tile by tile so that a shadow over half the sheet (whose lit half is a long bright tail) is not ink.
3. Paper: a grey closing (max then min) a quarter of the region wide. It erases every stroke narrower
   than that, a felt marker's too, but keeps a step where it is: a hard shadow's edge stays paper instead
   of becoming a dark band of "ink" (a max filter and a blur, as before, spread the lit side across it).
4. Ink = the share of the paper's light a pixel absorbs, (paper - image) / paper: the same for a digit
   in shadow, in dim light or in full light, and half in shadow.
5. Ruled and squared paper: thin straight level or upright lines (a 1 x L opening minus a 5 x L one)
   that reach the region's edge are taken out of the ink, so the digit no longer merges with them
   (looked for only when some ink reaches the edge, which is what a rule does).
6. Threshold: Otsu, with floors for contrast and for noise, and the noise floor also in grey levels
   (sensor noise is a larger share of a shadow's dim light); then hysteresis, so that the faint stretches
   of a ballpoint's line that join clear ones count too. Contours. Marks touching the region's edge are
   not the digit. When the paper has a step (a shadow's or the sheet's edge), marks whose outline runs
   through flat grey (compared with the ink next to it, so a stroke's part in shadow is not flat), that lie
   along the step, or straight slivers partly along it and dark on one side, are the corners and edges of
   the shadow, which the closing cannot follow into a corner narrower than itself. A straight stroke that
   crosses the step (a "1" half in shadow) is none of these.
7. The digit: the largest mark and the marks close to it; too small, too large, clutter: no digit.
8. Crop, stretch the stroke contrast, and bring the stroke width to MNIST's: measured (2 x area /
   perimeter of the strokes at 4x the 28x28 scale), then grey dilation or erosion when it is outside
   MNIST's 10-90 % range, so a ballpoint's hairline and a marker's band both read like MNIST's pen.
9. Resize into the 20x20 box keeping the aspect ratio, pad to 28x28, centre of mass to the centre.

It returns no image ("no digit", with the reason) for blank paper, ruled paper, a shadow, noise, and for
marks too small or too large to be a digit. A tilted sheet needs no step of its own: the closing follows
the sheet's edge and the table beside it like a shadow's, and a foreshortened digit keeps its aspect ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from digitsum_edge.runtime import defaults

MNIST_SIZE = 28
BOX = 20  # MNIST digits are fitted in a 20x20 box, keeping aspect ratio
CENTRE = 14.0  # MNIST's mean centre of mass (x and y, pixel-index coordinates), measured on the test set
STROKE = 2.2  # MNIST's median stroke width at 28x28 (stroke_width of the 50 % mask at 4x), test set; 10-90 %: 1.6-3.1
FINE = 4  # stroke widths are measured and changed at this multiple of the 28x28 scale

Rect = tuple[int, int, int, int]  # x, y, w, h in frame pixels


@dataclass(frozen=True)
class PreprocessConfig:
    """How a frame is read; defaults suit a digit held in the middle of a webcam image."""

    roi: float = defaults.ROI  # side of the central square that is read, as a fraction of the frame's shorter side
    work_size: int = 128  # the region is downscaled to work_size x work_size pixels before anything else
    ink: str = defaults.INK  # "dark" ink on light paper, "light" ink on a dark background, or "auto" per frame
    min_contrast: float = 0.14  # ink must absorb at least this share of the paper's light around it
    hysteresis: float = 0.7  # fainter ink down to this share of the threshold counts where it joins clear ink
    background: float = 0.25  # side of the paper estimate's closing, as a fraction of work_size: wider than a
    # felt marker's stroke, narrower than the region
    stroke: float = STROKE  # bring the stroke width to this many pixels at 28x28 (MNIST's median); 0: off
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


def _ink_is_light(gray: np.ndarray, tiles: int = 8) -> bool:
    """Light marks on a dark background: the histogram's bright tail reaches further than its dark one, and
    it does so tile by tile.

    Lighting spreads the paper's values both ways by tens of levels; ink goes 100+ levels one way. A shadow
    over half the sheet can pass that whole-region test (its lit half looks like a long bright tail), so a
    "light" answer must also hold in tiles of the region, where lighting moves every pixel of a tile
    together and only the few tiles the shadow's edge crosses vote either way. (A dark felt-tip stroke can
    fill most of a tile and vote "light" there, which is why the tiles only confirm.)
    """
    hist = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist) / hist.sum()
    low, median, high = np.searchsorted(cdf, (0.001, 0.5, 0.999))
    if high - median <= median - low:
        return False
    n = gray.shape[0] // tiles * tiles
    blocks = gray[:n, :n].reshape(tiles, n // tiles, tiles, n // tiles)
    mean = cv2.resize(gray[:n, :n], (tiles, tiles), interpolation=cv2.INTER_AREA).astype(np.int32)
    return int((blocks.max(axis=(1, 3)) - mean).sum()) > int((mean - blocks.min(axis=(1, 3))).sum())


def _median(image: np.ndarray) -> float:
    """Median of a uint8 image from its histogram (faster than np.median)."""
    hist = cv2.calcHist([image], [0], None, [256], [0, 256]).ravel()
    return float(np.searchsorted(np.cumsum(hist), hist.sum() / 2))


def _shrink(gray: np.ndarray, n: int) -> np.ndarray:
    """Square gray image -> (n, n): exact halvings by pixel averaging (OpenCV's fast path), each followed by a
    2x2 minimum so that a thin pen's dark line keeps its contrast, then linear."""
    while gray.shape[0] >= 2 * n:
        half = gray.shape[0] // 2
        gray = cv2.erode(cv2.resize(gray[:2 * half, :2 * half], (half, half), interpolation=cv2.INTER_AREA),
                         np.ones((2, 2), np.uint8))
    if gray.shape[0] != n:
        gray = cv2.resize(gray, (n, n), interpolation=cv2.INTER_LINEAR)
    return gray


def _stretch(ink: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ink `low` -> 0 and `high` -> 255 (saturating), like MNIST's black background and white cores."""
    scale = 255.0 / max(high - low, 1.0)
    lut = np.clip((np.arange(256, dtype=np.float32) - low) * scale, 0, 255).astype(np.uint8)
    return cv2.LUT(ink, lut)


def stroke_width(mask: np.ndarray) -> float:
    """Mean width of a binary stroke image's strokes, in its pixels: twice the area over the perimeter."""
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * cv2.countNonZero(mask) / max(perimeter, 1.0)


def to_mnist(digit: np.ndarray, stroke: float = 0.0) -> np.ndarray:
    """White-on-black crop of one digit (any size) -> (28, 28) uint8: 20x20 box, centre of mass at 14, 14.

    stroke > 0: strokes thinner than 0.75x `stroke` pixels (at 28x28, MNIST's 10th percentile) are brought
    to `stroke`, thicker than 1.7x to 1.4x (MNIST's 90th percentile), by a grey dilation or erosion done at
    4x scale, so that a step is a quarter of a pixel.
    """
    h, w = digit.shape
    if stroke > 0:
        big_scale = FINE * BOX / max(h, w)
        big = cv2.resize(digit, (max(1, round(w * big_scale)), max(1, round(h * big_scale))),
                         interpolation=cv2.INTER_AREA if big_scale < 1 else cv2.INTER_LINEAR)  # longer side 80
        _, mask = cv2.threshold(big, 127, 255, cv2.THRESH_BINARY)
        width, target = stroke_width(mask), stroke * FINE
        # Thinner than MNIST's 10th percentile: to its median. Far thicker than its 90th: to the 90th only,
        # since MNIST has bold digits of its own and an eroded blob is no longer the digit.
        goal = target if width < 0.75 * target else 1.4 * target if width > 1.7 * target else width
        if goal != width:
            radius = round(abs(goal - width) / 2)
            if radius:
                element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
                big = (cv2.dilate if width < goal else cv2.erode)(big, element)
        digit, (h, w) = big, big.shape
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
    gray = _shrink(to_gray(frame[y0:y0 + side, x0:x0 + side]), n)  # (n, n) uint8
    # Paper: a grey closing wider than any stroke erases the ink but keeps a shadow's edge where it is.
    k = round(n * cfg.background) | 1
    if cfg.ink == "light" or (cfg.ink == "auto" and _ink_is_light(gray)):
        gray = cv2.bitwise_not(gray)
    paper = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    # Ink as the share of the paper's light it absorbs (0-255): the same in shadow, in dim light and in full light.
    depth = cv2.subtract(paper, gray)  # (n, n) uint8, grey levels below the paper
    ink = cv2.divide(depth, np.maximum(paper, np.uint8(16)), scale=255)  # (n, n) uint8
    border = max(int(ink[0].max()), int(ink[-1].max()), int(ink[:, 0].max()), int(ink[:, -1].max()))
    if border > 24:  # a rule crosses the region's edge (fainter marks there are below any threshold)
        ink = _without_rules(ink, n)
    otsu, _ = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    level = max(otsu, 255 * cfg.min_contrast, 3.0 * _median(ink))  # the median is what noise alone makes
    min_area = (0.03 * n) ** 2  # specks below ~3 % of the region's side squared are noise
    mask = _ink_mask(ink, depth, level, cfg.hysteresis, min_area)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)

    # Pixel area of a mark: the polygon through the edge pixels' centres plus half its perimeter.
    blobs = [(cv2.contourArea(c) + cv2.arcLength(c, True) / 2 + 1, _rect(cv2.boundingRect(c)), c) for c in contours]
    blobs = [b for b in blobs if b[0] >= min_area or max(b[1][2:]) >= 0.08 * n]  # a thin pen's stroke is long
    if not blobs:
        return Prepared(None, roi, None, "blank")
    if len(blobs) > cfg.max_blobs:
        return Prepared(None, roi, None, "clutter")
    # A speck of noise at the edge is not a digit cut off by it.
    crossing = "touches edge" if any(max(b[1][2:]) >= cfg.min_size * n and _touches_edge(b[1], n)
                                     for b in blobs) else "blank"
    inside = [b for b in blobs if not _touches_edge(b[1], n)]
    # A shadow (or the sheet's edge) is a step in the paper: a jump of a quarter of its light within 4 pixels.
    steps = cv2.compare(cv2.morphologyEx(paper, cv2.MORPH_GRADIENT, np.ones((9, 9), np.uint8)),
                        np.right_shift(paper, 2), cv2.CMP_GT)
    if cv2.countNonZero(steps):  # only then can a mark be a shadow's corner
        inside = [b for b in inside if not _shadow_corner(b[2], gray, paper, steps)]
    if not inside:
        return Prepared(None, roi, None, crossing)
    box, chosen = _digit_blobs(inside)
    marks = np.zeros((n, n), np.uint8)  # only the digit's own marks, not a neighbour's
    cv2.drawContours(marks, chosen, -1, 255, thickness=cv2.FILLED)
    bx, by, bw, bh = box
    f = side / n
    frame_box = (x0 + round(bx * f), y0 + round(by * f), max(1, round(bw * f)), max(1, round(bh * f)))
    longer = max(bw, bh) / n
    if longer < cfg.min_size:
        return Prepared(None, roi, frame_box, "too small")
    if longer > cfg.max_size:
        return Prepared(None, roi, frame_box, "too large")

    keep = cv2.dilate(marks[by:by + bh, bx:bx + bw], np.ones((3, 3), np.uint8))  # and their soft edge
    digit = cv2.bitwise_and(ink[by:by + bh, bx:bx + bw], keep)  # (bh, bw) uint8
    _, core, _, _ = cv2.minMaxLoc(digit)
    return Prepared(to_mnist(_stretch(digit, level * 0.5, core * 0.8), cfg.stroke), roi, frame_box)


def _ink_mask(ink: np.ndarray, depth: np.ndarray, level: float, hysteresis: float, min_area: float) -> np.ndarray:
    """(n, n) uint8 mask, 255 on ink: `ink` above `level` and out of the noise, grown by hysteresis."""
    n = ink.shape[0]
    _, mask = cv2.threshold(ink, level, 255, cv2.THRESH_BINARY)
    # Sensor noise is so many grey levels everywhere, so it is a larger share of a shadow's dim light:
    # ink must also stand out of the noise in grey levels (the median depth is what noise alone makes).
    _, clear = cv2.threshold(depth, 2.0 * _median(depth) + 2, 255, cv2.THRESH_BINARY)
    mask = cv2.bitwise_and(mask, clear)
    # Hysteresis: the faint stretches of a ballpoint's line that join clear ink are ink too, unless they
    # run off to the region's edge (then they are a shadow's edge or noise, and only the clear part counts).
    _, weak = cv2.threshold(ink, hysteresis * level, 255, cv2.THRESH_BINARY)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.bitwise_and(weak, clear), connectivity=8)
    clear_pixels = np.bincount(labels[mask > 0], minlength=count)  # (count,) clear ink in each faint mark
    x, y, w, h = (stats[:, i] for i in range(4))
    # grown from a mark, not from a speck of noise; not reaching the edge; label 0 is the background
    joined = ((clear_pixels >= min_area / 3) & (x > 0) & (y > 0) & (x + w < n) & (y + h < n)).astype(np.uint8) * 255
    if count <= 256:  # the usual case: a lookup table is 5x faster than indexing
        return cv2.max(mask, cv2.LUT(labels.astype(np.uint8), np.pad(joined, (0, 256 - count))))
    return cv2.max(mask, joined[labels])


def _rect(values) -> Rect:
    x, y, w, h = values
    return int(x), int(y), int(w), int(h)


def _without_rules(ink: np.ndarray, n: int) -> np.ndarray:
    """Ink minus ruled or squared paper's lines: thin marks that run straight, level or upright, for n/8 pixels.

    A 1 x L opening keeps what holds a level run of L pixels; a 5 x L one keeps only what is also 5 pixels
    thick. Their difference is a thin level line (a rule), not the thick bar of a 7 or a 5 drawn with a pen.
    """
    length = n // 10
    lines = None
    for thin, thick in (((length, 1), (length, 5)), ((1, length), (5, length))):  # level rules, then upright
        kept = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, thin))
        solid = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, thick))
        found = cv2.subtract(kept, solid)
        lines = found if lines is None else cv2.max(lines, found)
    assert lines is not None
    # Only lines that reach the region's edge are rules: a thin pen's 1 is straight too, but inside.
    _, marked = cv2.threshold(lines, 8, 255, cv2.THRESH_BINARY)
    contours, _ = cv2.findContours(marked, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    rules = [c for c in contours if _touches_edge(_rect(cv2.boundingRect(c)), n)]
    if not rules:
        return ink
    keep = np.zeros_like(marked)
    cv2.drawContours(keep, rules, -1, 255, cv2.FILLED)
    return cv2.subtract(ink, cv2.bitwise_and(lines, keep))


def _shadow_corner(contour: np.ndarray, gray: np.ndarray, paper: np.ndarray, steps: np.ndarray) -> bool:
    """A mark that is not darker than what lies around it on every side: the corner of a shadow.

    The paper's closing cannot follow a shadow into a corner narrower than itself, so the tip of a shadow
    (and a sliver along the edge near its corner) looks like ink. Ink has paper all round it; such a tip
    has shadow, as dark as itself, beyond the line where the closing gave up (its outline runs through flat
    grey there, against the ink within 3 pixels), or it lies along the paper's own step, or, for a straight
    sliver with a quarter of it along the step, it has shadow on one whole side. steps: (n, n) uint8, 255
    within 4 pixels of a step in the paper (see prepare).
    """
    x, y = contour[:, 0, 0], contour[:, 0, 1]
    r = 5
    x0, y0 = max(int(x.min()) - r - 1, 0), max(int(y.min()) - r - 1, 0)
    x1, y1 = min(int(x.max()) + r + 2, gray.shape[1]), min(int(y.max()) + r + 2, gray.shape[0])
    g, p = gray[y0:y1, x0:x1], paper[y0:y1, x0:x1]
    mark = np.zeros(g.shape, np.uint8)
    cv2.drawContours(mark, [contour], -1, 255, cv2.FILLED, offset=(-x0, -y0))
    edge = cv2.morphologyEx(g, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    depth = cv2.subtract(p, g)  # how much darker than the paper
    near = cv2.dilate(cv2.bitwise_and(depth, mark), np.ones((7, 7), np.uint8))  # the deepest ink within 3 pixels
    if float(np.mean(edge[y - y0, x - x0] < 0.12 * near[y - y0, x - x0])) > 0.15:
        return True  # the outline runs through flat grey
    along = cv2.countNonZero(cv2.bitwise_and(steps[y0:y1, x0:x1], mark)) / max(cv2.countNonZero(mark), 1)
    if along > 0.5:
        return True  # it lies along the shadow's edge
    (_, _), (w, h), _ = cv2.minAreaRect(contour)
    if along < 0.25 or max(w, h) < 4 * min(w, h) or cv2.contourArea(contour) < 0.5 * w * h:
        return False  # not a straight sliver: a stroke, even one that crosses the shadow's edge
    ring = cv2.subtract(cv2.dilate(mark, np.ones((2 * r + 1, 2 * r + 1), np.uint8)),
                        cv2.dilate(mark, np.ones((5, 5), np.uint8)))  # 3-4 pixels out: past the soft edge
    ink_grey, paper_grey = cv2.mean(g, mark)[0], cv2.mean(p, mark)[0]
    around = g[ring > 0].astype(np.float32)
    return float(np.mean(around < (ink_grey + paper_grey) / 2)) > 0.35  # dark on one side: a shadow's edge


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
