"""Camera frame or photo -> MNIST-like 28x28: white digit on black, fitted in 20x20, centred by centre of mass.

A camera sees dark ink on light, unevenly lit, noisy paper at any size; MNIST is a clean white pen stroke
about 2 pixels wide on black. Each step below removes one difference, and each one's reason is what users
hold up to a webcam (synth/conditions.py draws every one of these, benchmarks/camera_conditions.py scores
them) or photograph (benchmarks/real_photos.py). It reads a central square of a camera frame (roi < 1), whose
edge cuts through the scene, or a whole picture of any shape (roi 1: `predict`, `live` on an image), whose
border is its own, all of it downscaled, well under a millisecond:

1. Region, grey, shrink to 128 pixels on the longer side: halve by averaging, then a 2x2 minimum (grey
   erosion). The minimum keeps a 2-pixel ballpoint line at full contrast; averaging alone halves it away.
2. Ink colour. Dark ink on paper, or light ink (chalk, an MNIST PNG): the histogram's long tail, confirmed
   tile by tile so that a shadow over half the sheet (whose lit half is a long bright tail) is not ink; in a
   whole picture also the tail away from its border (a bold digit framed tightly covers most of it).
3. Paper: a grey closing (max then min) a quarter of the region wide. It erases every stroke narrower
   than that, a felt marker's too, but keeps a step where it is: a hard shadow's edge stays paper instead
   of becoming a dark band of "ink" (a max filter and a blur, as before, spread the lit side across it). A
   whole picture is first padded with its own paper estimate, so a stroke at its border has paper beyond it.
4. Ink = the share of the paper's light a pixel absorbs, (paper - image) / paper: the same for a digit
   in shadow, in dim light or in full light, and half in shadow.
5. Ruled and squared paper: thin straight level or upright lines (a 1 x L opening minus a 5 x L one)
   that reach the region's edge are taken out of the ink, so the digit no longer merges with them
   (looked for only when some ink reaches the edge, which is what a rule does). In a whole picture only
   lines that repeat (two across it, or three at its border): a tight 7's bar and a tight 1 reach it too.
6. Threshold: Otsu, with floors for contrast and for noise (the region's median; in a whole picture at
   most twice its quartile, as a bold digit may cover half of it), and the noise floor also in grey levels
   (sensor noise is a larger share of a shadow's dim light); then hysteresis, so that the faint stretches
   of a ballpoint's line that join clear ones count too. Contours. When the paper has a step (a shadow's or
   the sheet's edge), marks whose outline runs through flat grey (compared with the ink next to it, so a
   stroke's part in shadow is not flat), that lie along the step, or straight slivers partly along it and
   dark on one side, are the corners and edges of the shadow, which the closing cannot follow into a corner
   narrower than itself. A straight stroke that crosses the step (a "1" half in shadow) is none of these.
7. The digit (vision/marks.py). In a region: marks touching its edge are cut off, not the digit; the
   largest mark and the marks close to it, too small, too large, clutter: no digit. In a whole picture a
   digit may reach the border and fill the picture: marks are gathered into groups by nearness and pen
   width (so a thin stroke broken into pieces is one digit), and the group inside, or else in the middle,
   is the digit; marks at the border off the middle (the table, a finger) are not.
8. Crop, stretch the stroke contrast, and bring the stroke width to MNIST's: measured (2 x area /
   perimeter of the strokes at 4x the 28x28 scale), then grey dilation or erosion when it is outside
   MNIST's 10-90 % range, so a ballpoint's hairline and a marker's band both read like MNIST's pen.
9. Resize into the 20x20 box keeping the aspect ratio, pad to 28x28, centre of mass to the centre.

It returns no image ("no digit", with the reason) for blank paper, ruled paper, a shadow, noise, and for
marks too small or too large to be a digit. A tilted sheet needs no step of its own: the closing follows
the sheet's edge and the table beside it like a shadow's, and a foreshortened digit keeps its aspect ratio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from digitsum_edge.vision import resample
from digitsum_edge.vision.marks import (
    Rect,
    digit_blobs,
    picture_digit,
    rect_of,
    shadow_corner,
    touches_edge,
)
from digitsum_edge.vision.settings import CAMERA, ReadingSettings

MNIST_SIZE = 28
BOX = 20  # MNIST digits are fitted in a 20x20 box, keeping aspect ratio
CENTRE = 14.0  # MNIST's mean centre of mass (x and y, pixel-index coordinates), measured on the test set
STROKE = 2.2  # MNIST's median stroke width at 28x28 (stroke_width of the 50 % mask at 4x), test set; 10-90 %: 1.6-3.1

FINE = 4  # stroke widths are measured and changed at this multiple of the 28x28 scale



@dataclass(frozen=True)
class PreprocessConfig:
    """How the preprocessing reads a frame: the reading settings, and its own tuning (defaults suit a digit held in
    the middle of a webcam image)."""

    reading: ReadingSettings = CAMERA  # roi, ink, search: what the caller asked for
    work_size: int = 128  # the region is downscaled to work_size x work_size pixels before anything else
    min_contrast: float = 0.14  # ink must absorb at least this share of the paper's light around it
    hysteresis: float = 0.7  # fainter ink down to this share of the threshold counts where it joins clear ink
    picture_hysteresis: float = 0.5  # the same in a whole picture (roi 1): a photo's ballpoint is fainter than a
    # webcam's, and a region's shadows and rules are not there (at 0.5 a camera reads 1 blank sheet in 100)
    background: float = 0.25  # side of the paper estimate's closing, as a fraction of work_size: wider than a
    # felt marker's stroke, narrower than the region
    stroke: float = STROKE  # bring the stroke width to this many pixels at 28x28 (MNIST's median); 0: off
    min_size: float = 0.12  # digit box (longer side) below this fraction of the region: too small
    max_size: float = 0.95  # above this fraction: too large
    max_blobs: int = 12  # more separate marks than this in the region: clutter or noise, not one digit


DEFAULT = PreprocessConfig()


@dataclass
class Prepared:
    """What the preprocessing found in one frame."""

    mnist: np.ndarray | None  # (28, 28) uint8, white digit on black; None: no digit
    region: Rect  # the region read, in frame pixels
    box: Rect | None  # the digit's bounding box, in frame pixels
    reason: str = ""  # why there is no digit: blank, too small, too large, clutter, touches edge, unsteady (stills)
    candidates: list = field(default_factory=list)  # roi 1: the marks considered (vision/stills.Candidate)


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
    nh, nw = gray.shape[0] // tiles * tiles, gray.shape[1] // tiles * tiles
    blocks = gray[:nh, :nw].reshape(tiles, nh // tiles, tiles, nw // tiles)
    mean = cv2.resize(gray[:nh, :nw], (tiles, tiles), interpolation=cv2.INTER_AREA).astype(np.int32)
    return int((blocks.max(axis=(1, 3)) - mean).sum()) > int((mean - blocks.min(axis=(1, 3))).sum())


def _border_is_dark(gray: np.ndarray) -> bool:
    """Light marks on a dark background, for a whole picture: its border is mostly background, so the ink is the
    tail of the histogram that lies further from the border's median, twice as far (a bold digit framed tightly
    may cover more of the picture than the paper does, which fools a test on the histogram alone; a blank
    sheet lit from one side has two tails about as long)."""
    edge = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(edge))
    hist = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
    low, high = np.searchsorted(np.cumsum(hist) / hist.sum(), (0.01, 0.99))
    return high - background > 2 * (background - low)


def _median(image: np.ndarray) -> float:
    """Median of a uint8 image from its histogram (faster than np.median)."""
    hist = cv2.calcHist([image], [0], None, [256], [0, 256]).ravel()
    return float(np.searchsorted(np.cumsum(hist), hist.sum() / 2))


def _noise(image: np.ndarray, bold: bool) -> float:
    """The level noise alone reaches in a uint8 ink (or depth) image: its median; with `bold` ink that may cover
    half of it, at most 2.1x its first quartile (a half-normal noise's median over its quartile)."""
    hist = np.cumsum(cv2.calcHist([image], [0], None, [256], [0, 256]).ravel())
    quartile, median = np.searchsorted(hist, (hist[-1] / 4, hist[-1] / 2))
    return float(min(median, 2.1 * quartile) if bold else median)


def _shrink(gray: np.ndarray, n: int) -> np.ndarray:
    """Gray image -> longer side n, aspect kept: exact halvings by pixel averaging (OpenCV's fast path, integer),
    each followed by a 2x2 minimum so that a thin pen's dark line keeps its contrast, then linear in integers
    (vision/resample.py: the same pixels on x86-64, ARM64 and in the browser)."""
    h, w = gray.shape
    scale = n / max(h, w)
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    while gray.shape[0] >= 2 * th and gray.shape[1] >= 2 * tw:
        hh, hw = gray.shape[0] // 2, gray.shape[1] // 2
        gray = cv2.erode(cv2.resize(gray[:2 * hh, :2 * hw], (hw, hh), interpolation=cv2.INTER_AREA),
                         np.ones((2, 2), np.uint8))
    if gray.shape != (th, tw):
        gray = resample.resize(gray, (tw, th))
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
    4x scale, so that a step is a quarter of a pixel. Resizes in integers (vision/resample.py): the same image
    on every machine.
    """
    h, w = digit.shape
    if stroke > 0:
        big_scale = FINE * BOX / max(h, w)
        big = resample.resize(digit, (max(1, round(w * big_scale)), max(1, round(h * big_scale))),
                              area=big_scale < 1)  # longer side 80
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
    small = resample.resize(digit, size, area=scale < 1)  # (<=20, <=20), longer side 20
    m = cv2.moments(small)
    if m["m00"] <= 0:
        cx, cy = size[0] / 2, size[1] / 2
    else:
        cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    shift = np.array([[1, 0, round(CENTRE - cx)], [0, 1, round(CENTRE - cy)]], np.float32)  # whole pixels: no blur
    return cv2.warpAffine(small, shift, (MNIST_SIZE, MNIST_SIZE), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def read_region(frame: np.ndarray, cfg: PreprocessConfig, region: Rect | None = None) -> Prepared:
    """Steps 1-9 on one region: `region` (a square of the frame, read as the camera path reads its guide
    square), else the central square of roi < 1, else (roi 1) the whole picture framed on the digit."""
    fraction = cfg.reading.fraction
    whole = region is None and fraction >= 1.0  # the whole picture: its border is its own, not a cut through it
    roi = (0, 0, frame.shape[1], frame.shape[0]) if whole else region or roi_box(frame.shape[0], frame.shape[1],
                                                                                     fraction)
    x0, y0, rw, rh = roi
    n = cfg.work_size
    gray = _shrink(to_gray(frame[y0:y0 + rh, x0:x0 + rw]), n)  # (h, w) uint8, longer side n
    k = round(n * cfg.background) | 1
    ink_kind = cfg.reading.ink
    if ink_kind == "light" or (ink_kind == "auto" and _ink_is_light(gray) and (not whole or _border_is_dark(gray))):
        gray = cv2.bitwise_not(gray)
    # Paper: a grey closing wider than any stroke erases the ink but keeps a shadow's edge where it is.
    square = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    paper = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, square)
    pad = k // 2 + 1 if whole else 0
    if pad:  # the paper continued all round (a shadow too), so that the closing finds paper beside a stroke
        # that reaches the picture's border, as it does inside
        h, w = gray.shape
        padded = cv2.copyMakeBorder(paper, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        padded[pad:pad + h, pad:pad + w] = gray
        gray, paper = padded, cv2.morphologyEx(padded, cv2.MORPH_CLOSE, square)
    inner: Rect = (pad, pad, gray.shape[1] - 2 * pad, gray.shape[0] - 2 * pad)  # the picture in `gray`
    # Ink as the share of the paper's light it absorbs (0-255): the same in shadow, in dim light and in full light.
    depth = cv2.subtract(paper, gray)  # (H, W) uint8, grey levels below the paper
    ink = cv2.divide(depth, np.maximum(paper, np.uint8(16)), scale=255)  # (H, W) uint8
    seen = _view(ink, inner)
    border = max(int(seen[0].max()), int(seen[-1].max()), int(seen[:, 0].max()), int(seen[:, -1].max()))
    if border > 24:  # a rule crosses the region's edge (fainter marks there are below any threshold)
        ink = _without_rules(ink, n, inner, whole)
        seen = _view(ink, inner)
    otsu, _ = cv2.threshold(seen, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    # What noise alone makes: the median of the region, which is mostly paper; a picture framed on a bold digit
    # can be half ink, so there also twice its first quartile (the median of noise alone is 2.1x its quartile).
    noise_ink, noise = _noise(seen, whole), _noise(_view(depth, inner), whole)  # in ink shares, in grey levels
    level = max(otsu, 255 * cfg.min_contrast, 3.0 * noise_ink)
    min_area = (0.03 * n) ** 2  # specks below ~3 % of the region's side squared are noise
    hysteresis = cfg.picture_hysteresis if whole else cfg.hysteresis
    mask = _ink_mask(ink, depth, level, noise, hysteresis, min_area, whole)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)

    # Pixel area of a mark: the polygon through the edge pixels' centres plus half its perimeter.
    blobs = [(cv2.contourArea(c) + cv2.arcLength(c, True) / 2 + 1, rect_of(cv2.boundingRect(c)), c) for c in contours]
    blobs = [b for b in blobs if b[0] >= min_area or max(b[1][2:]) >= 0.08 * n]  # a thin pen's stroke is long
    if not blobs:
        return Prepared(None, roi, None, "blank")
    if len(blobs) > cfg.max_blobs:
        return Prepared(None, roi, None, "clutter")
    # A speck of noise at the edge is not a digit cut off by it.
    crossing = "touches edge" if any(max(b[1][2:]) >= cfg.min_size * n and touches_edge(b[1], inner)
                                     for b in blobs) else "blank"
    # A shadow (or the sheet's edge) is a step in the paper: a jump of a quarter of its light within 4 pixels.
    steps = cv2.compare(cv2.morphologyEx(paper, cv2.MORPH_GRADIENT, np.ones((9, 9), np.uint8)),
                        np.right_shift(paper, 2), cv2.CMP_GT)

    def shadow(b: tuple) -> bool:
        return shadow_corner(b[2], gray, paper, steps)

    if whole:
        if cv2.countNonZero(steps):  # only then can a mark be a shadow's corner
            blobs = [b for b in blobs if not shadow(b)]
        group = picture_digit(blobs, inner, cfg.min_size * n)
        if group is None:
            return Prepared(None, roi, None, crossing if blobs else "blank")
        box, chosen = group
    else:
        # A region's edge cuts through the scene: a mark across it is cut off.
        inside = [b for b in blobs if not touches_edge(b[1], inner)]
        if cv2.countNonZero(steps):
            inside = [b for b in inside if not shadow(b)]
        if not inside:
            return Prepared(None, roi, None, crossing)
        box, chosen = digit_blobs(max(inside, key=lambda b: b[0]), inside)
    marks = np.zeros(gray.shape, np.uint8)  # only the digit's own marks, not a neighbour's
    cv2.drawContours(marks, chosen, -1, 255, thickness=cv2.FILLED)
    bx, by, bw, bh = box
    f = max(rw, rh) / n
    frame_box = (x0 + round((bx - pad) * f), y0 + round((by - pad) * f), max(1, round(bw * f)), max(1, round(bh * f)))
    longer = max(bw, bh) / n
    if longer < cfg.min_size:
        return Prepared(None, roi, frame_box, "too small")
    if longer > cfg.max_size and not whole:  # a digit may fill a picture, not a region of a larger scene
        return Prepared(None, roi, frame_box, "too large")

    keep = cv2.dilate(marks[by:by + bh, bx:bx + bw], np.ones((3, 3), np.uint8))  # and their soft edge
    digit = cv2.bitwise_and(ink[by:by + bh, bx:bx + bw], keep)  # (bh, bw) uint8
    _, core, _, _ = cv2.minMaxLoc(digit)
    return Prepared(to_mnist(_stretch(digit, level * 0.5, core * 0.8), cfg.stroke), roi, frame_box)


def _view(image: np.ndarray, rect: Rect) -> np.ndarray:
    x, y, w, h = rect
    return image[y:y + h, x:x + w]


def _ink_mask(ink: np.ndarray, depth: np.ndarray, level: float, noise: float, hysteresis: float, min_area: float,
              whole: bool = False) -> np.ndarray:
    """(H, W) uint8 mask, 255 on ink: `ink` above `level` and out of the noise (`noise`: the paper's median
    depth), grown by hysteresis."""
    _, mask = cv2.threshold(ink, level, 255, cv2.THRESH_BINARY)
    # Sensor noise is so many grey levels everywhere, so it is a larger share of a shadow's dim light:
    # ink must also stand out of the noise in grey levels.
    _, clear = cv2.threshold(depth, 2.0 * noise + 2, 255, cv2.THRESH_BINARY)
    mask = cv2.bitwise_and(mask, clear)
    # Hysteresis: the faint stretches of a ballpoint's line that join clear ink are ink too, unless they
    # run off to the region's edge (then they are a shadow's edge or noise, and only the clear part counts;
    # a whole picture's border is no region's edge).
    _, weak = cv2.threshold(ink, hysteresis * level, 255, cv2.THRESH_BINARY)
    weak = cv2.bitwise_and(weak, clear)
    # 16-bit labels where they cannot run out (8-connected marks are at most one in each 2x2 block): OpenCV then
    # labels in one pass, three times faster than with its 32-bit labels and statistics.
    wide = (weak.shape[0] + 1) * (weak.shape[1] + 1) // 4 >= 1 << 16
    count, labels = cv2.connectedComponents(weak, connectivity=8, ltype=cv2.CV_32S if wide else cv2.CV_16U)
    clear_pixels = np.bincount(labels[mask > 0].ravel(), minlength=count)  # (count,) clear ink in each faint mark
    grown = clear_pixels >= min_area / 3  # grown from a mark, not from a speck of noise; label 0 is the background
    if not whole:  # and not from a mark that runs off the region's edge
        grown[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = False
    joined = grown.astype(np.uint8) * 255
    if count <= 256:  # the usual case: a lookup table is 5x faster than indexing
        return cv2.max(mask, cv2.LUT(labels.astype(np.uint8), np.pad(joined, (0, 256 - count))))
    return cv2.max(mask, joined[labels])


def _without_rules(ink: np.ndarray, n: int, inner: Rect, whole: bool = False) -> np.ndarray:
    """Ink minus ruled or squared paper's lines: thin marks that run straight, level or upright, for n/10 pixels.

    A 1 x L opening keeps what holds a level run of L pixels; a 5 x L one keeps only what is also 5 pixels
    thick. Their difference is a thin level line (a rule), not the thick bar of a 7 or a 5 drawn with a pen.
    Only lines that reach the region's edge are rules: a thin pen's 1 is straight too, but inside. In a whole
    picture framed tightly a digit's strokes reach the border too (a 1 top to bottom, a 7's bar side to side),
    so there rules are what paper has and a digit has not: two or more parallel lines across the picture.
    """
    length = n // 10
    found = []
    for thin, thick in (((length, 1), (length, 5)), ((1, length), (5, length))):  # level rules, then upright
        kept = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, thin))
        solid = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, thick))
        found.append(cv2.subtract(kept, solid))
    lines = cv2.max(*found)
    if whole:  # each way apart: lines that repeat, as paper's do
        rules = []
        for axis, way in enumerate(found):
            _, marked = cv2.threshold(way, 8, 255, cv2.THRESH_BINARY)
            contours, _ = cv2.findContours(marked, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            edge = [c for c in contours if touches_edge(rect_of(cv2.boundingRect(c)), inner)]
            across = [c for c in edge if cv2.boundingRect(c)[2 + axis] >= 0.9 * inner[2 + axis]]  # side to side
            rules += edge if len(across) >= 2 or len(edge) >= 3 else []
    else:
        _, marked = cv2.threshold(lines, 8, 255, cv2.THRESH_BINARY)
        contours, _ = cv2.findContours(marked, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        rules = [c for c in contours if touches_edge(rect_of(cv2.boundingRect(c)), inner)]
    if not rules:
        return ink
    keep = np.zeros_like(ink)
    cv2.drawContours(keep, rules, -1, 255, cv2.FILLED)
    return cv2.subtract(ink, cv2.bitwise_and(lines, keep))
