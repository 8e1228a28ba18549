"""A still picture read whole (roi 1): the one digit anywhere in it, from a tenth of its shorter side up to
filling it, on shadowed, ruled, tinted or textured paper, and none on a blank sheet (docs/stills.md).

The whole picture shrunk to 128 pixels (vision/preprocess.py) loses a digit a tenth of its shorter side (10
pixels there, below min_size), and its shadow and rule heuristics are tuned for a picture framed on the
digit. So, first, its marks are looked for at a finer scale (SEARCH pixels on the longer side): ink as the
share of the paper's light it absorbs under a grey closing (a shadow's step stays paper), thin straight lines
that reach the border taken out (rules, a margin line), a threshold above the noise, shadows' corners dropped,
marks gathered into groups by nearness, those inside apart from those at the border. Each group inside is a
candidate, read through the region path (the camera's guide square, which reads the camera conditions at
98 %) on a square around it, the group about 40 % of its side; a digit found there must be found again in a
larger square (a piece of a rule or of a shadow's corner mostly is not). Among the candidates that hold a
digit the score is geometry: the largest, the most central, drawn in strokes (not a blot); the reader
(apps/reader.py) weighs it with the model's confidence. A picture whose digit fills it or reaches its
border (a crop) has no such candidate but a crop-like group: it is read whole, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from digitsum_edge.vision.marks import Rect, along_side, digit_blobs, rect_of, shadow_corner, touches_edge
from digitsum_edge.vision.preprocess import (
    Prepared,
    PreprocessConfig,
    _border_is_dark,
    _ink_is_light,
    _ink_mask,
    _noise,
    _shrink,
    _without_rules,
    read_region,
    roi_box,
    to_gray,
)
from digitsum_edge.vision.settings import ROI

SEARCH = 192  # the picture's longer side, in pixels, when its marks are looked for
PAPER = 0.12  # the paper estimate's closing, as a share of SEARCH: wider than a marker's stroke at that scale
OTSU_CAP = 96  # ink absorbing 38 % of the paper's light is ink whatever Otsu says
MIN_MARK = 0.08  # a group of marks shorter than this share of the shorter side is a speck, not a digit
FILL = 0.4  # a candidate's box is this share of the square read around it (camera frames: 0.3-0.65)
MIN_REGION = 0.5  # the square read is at least this share of the shorter side
MARGIN = 0.02  # a digit read within this share of the shorter side of the border is cut by it
CROP = 0.45  # a group longer than this share of the shorter side is a digit framed tightly (read whole)
WIDE = 1.6  # a group wider than this many times its height is no digit (a shadow's edge across)
THIN = 0.1  # a group narrower than this share of its height and of the picture's width is a line: a 1 in a crop
# is wider (0.15 of its height and up), or fills more of a narrow picture
OFF = 0.375  # a crop's digit has its box's centre in the middle three quarters of the picture, across and down
DENSE = 0.07  # a group across the picture both ways is a digit if its ink covers this share of its box
FRAME = 0.05  # a digit read whole that reaches this close to every side fills the picture: a crop
CROSS = 0.2  # a group across the picture one way (a shadow's or the sheet's edge, a margin line) only if this share
WIDER = 1.4  # a digit found in a candidate's square must be found again in a square this much larger
MOST = 4  # candidates read through the region path, the most ink first
GUIDE_SURE = 0.7  # the guide square's reading, found there only (not in a WIDER square), needs this confidence


def constants() -> dict:
    """The search's constants as the browser's port (web/app/stills.js) reads them from digitsum.json."""
    names = ("SEARCH", "PAPER", "OTSU_CAP", "MIN_MARK", "FILL", "MIN_REGION", "MARGIN", "CROP", "WIDE", "THIN", "OFF",
             "DENSE", "CROSS", "FRAME", "WIDER", "MOST", "GUIDE_SURE")
    return {name: globals()[name] for name in names} | {"GUIDE": ROI}


@dataclass
class Candidate:
    """A group of marks inside the picture, and what the region path found in a square around it."""

    box: Rect  # the marks' box, frame pixels
    region: Rect  # the square read around them, frame pixels
    ink: float  # the marks' area, in search pixels
    prep: Prepared  # the region path's reading of the square (its mnist None when it is no contender)
    score: float = 0.0  # geometry: share of the candidates' size, closeness to the centre, strokes not a blot (0-1)
    confidence: float | None = None  # the model's digit confidence, once read (apps/reader.py)
    digit: int | None = None
    chosen: bool = False  # the one the reading took
    steady: bool | None = None  # the guide square's reading (step 5): its digit found again in a WIDER square

    def to_dict(self) -> dict:
        """The candidate in a reading's JSON line."""
        return {"box": list(self.prep.box or self.box), "region": list(self.region), "score": round(self.score, 4),
                "digit": self.digit, "confidence": None if self.confidence is None else round(self.confidence, 4),
                "reason": self.prep.reason or None, "chosen": self.chosen}


def groups(gray: np.ndarray, cfg: PreprocessConfig) -> tuple[list[tuple[Rect, float, bool]], float]:
    """The picture's groups of marks: (box in frame pixels, ink area in search pixels, inside the picture), and
    the frame pixels per search pixel."""
    n = SEARCH
    small = _shrink(gray, n)
    h, w = small.shape
    if cfg.reading.ink == "light" or (cfg.reading.ink == "auto" and _ink_is_light(small) and _border_is_dark(small)):
        small = cv2.bitwise_not(small)
    k = round(n * PAPER) | 1
    square = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    pad = k // 2 + 1  # the paper continued all round, so that a mark at the border has paper beyond it
    padded = cv2.copyMakeBorder(cv2.morphologyEx(small, cv2.MORPH_CLOSE, square), pad, pad, pad, pad,
                                cv2.BORDER_REPLICATE)
    padded[pad:pad + h, pad:pad + w] = small
    paper = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, square)
    inner: Rect = (pad, pad, w, h)
    depth = cv2.subtract(paper, padded)
    share = cv2.divide(depth, np.maximum(paper, np.uint8(16)), scale=255)
    # Rules: for a digit inside the picture every thin straight line that reaches its border (a margin line too);
    # for a digit framed tightly only lines that repeat (its own strokes reach the border).
    scene = crop = share
    seen = share[pad:pad + h, pad:pad + w]
    if max(int(seen[0].max()), int(seen[-1].max()), int(seen[:, 0].max()), int(seen[:, -1].max())) > 24:
        scene, crop = (_without_rules(share, n, inner, whole) for whole in (False, True))
    noise = _noise(depth[pad:pad + h, pad:pad + w], False)
    min_area = (0.015 * n) ** 2
    blobs = []
    # Faint ink that joins clear ink grows it, but inside the picture not out to its border (a rule, a shadow)
    for inside, ink in ((True, scene), (False, crop)):
        seen = ink[pad:pad + h, pad:pad + w]  # the threshold of each from its own ink (a grid left in the crop's)
        otsu, _ = cv2.threshold(seen, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        # Otsu, at most OTSU_CAP: a dark band (a sleeve, the table) beside the paper can pull it above a pen's stroke
        level = max(min(otsu, OTSU_CAP), 255 * cfg.min_contrast, 3.0 * _noise(seen, False))
        marked = _ink_mask(ink, depth, level, noise, cfg.picture_hysteresis, min_area, whole=not inside)
        contours, _ = cv2.findContours(marked, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        marks = [(cv2.contourArea(c) + cv2.arcLength(c, True) / 2 + 1, rect_of(cv2.boundingRect(c)), c)
                 for c in contours]
        blobs += [b for b in marks if b[0] >= min_area and touches_edge(b[1], inner) != inside]
    # A shadow's edge and corners (a step in the paper) are not ink, as in the region path.
    steps = cv2.compare(cv2.morphologyEx(paper, cv2.MORPH_GRADIENT, np.ones((9, 9), np.uint8)),
                        np.right_shift(paper, 2), cv2.CMP_GT)
    if cv2.countNonZero(steps):
        blobs = [b for b in blobs if not shadow_corner(b[2], padded, paper, steps)]
    f = max(gray.shape) / n
    found = []
    for inside in (True, False):  # marks inside and marks at the border apart: a sleeve or a shadow along the
        pool = [b for b in blobs if touches_edge(b[1], inner) != inside]  # border never swallows the digit
        while pool:
            seed = max(pool, key=lambda b: b[0])
            (bx, by, bw, bh), chosen = digit_blobs(seed, pool)
            members = [b for b in pool if any(b[2] is c for c in chosen)]
            pool = [b for b in pool if not any(b[2] is c for c in chosen)]
            box = (round((bx - pad) * f), round((by - pad) * f), max(1, round(bw * f)), max(1, round(bh * f)))
            found.append((box, sum(b[0] for b in members), inside and not touches_edge((bx, by, bw, bh), inner)))
    return found, f


def square_around(box: Rect, height: int, width: int, wider: float = 1.0) -> Rect:
    """The square read around a box: the box FILL of its side (at least MIN_REGION of the shorter side; `wider`
    times that; at most all of it), centred on the box and moved inside the picture."""
    x, y, w, h = box
    short = min(height, width)
    side = int(min(short, wider * max(MIN_REGION * short, max(w, h) / FILL)))
    sx = min(max(round(x + w / 2 - side / 2), 0), width - side)
    sy = min(max(round(y + h / 2 - side / 2), 0), height - side)
    return sx, sy, side, side


def centrality(box: Rect, height: int, width: int) -> float:
    """1 at the picture's centre, falling to 0.5 at its corners."""
    x, y, w, h = box
    dx, dy = (x + w / 2) / width - 0.5, (y + h / 2) / height - 0.5
    return 1.0 - float(np.hypot(dx, dy)) / (2 * np.hypot(0.5, 0.5))


def choice_score(candidate: Candidate) -> float:
    """How the reader chooses among candidates that hold a digit: geometry times the model's confidence."""
    return candidate.score * (candidate.confidence or 0.0)


def crop_like(box: Rect, density: float, height: int, width: int, cross: float = CROSS) -> bool:
    """A group of marks as a digit framed tightly is: long (CROP of the shorter side at least), not much wider than
    tall (WIDE: a shadow's edge across the sheet is) nor a thin line (THIN: a margin line; a 1 is wider), near the
    middle of the picture (OFF: it is framed on it), not a band along a side (the sheet's edge, a sleeve), and,
    across the picture both ways, ink over DENSE of its box at least (a shadow over most of the sheet has ink
    along its edges only), across it one way, over CROSS (a digit that crosses the picture fills the picture's
    side: a shadow's soft edge, the sheet's edge or a margin line is a thin band across a large box).
    density: ink area over box area."""
    x, y, w, h = box
    short = min(height, width)
    picture = (0, 0, width, height)
    if max(w, h) < CROP * short or w > WIDE * h or w < THIN * min(h, width) or along_side(box, picture) \
            or abs(x + w / 2 - width / 2) > OFF * width or abs(y + h / 2 - height / 2) > OFF * height:
        return False
    across, down = crosses(box, height, width)
    return density >= (DENSE if across and down else cross if across or down else 0.0)


def crosses(box: Rect, height: int, width: int) -> tuple[bool, bool]:
    """The box runs across the picture (from side to side), and down it (from top to bottom)."""
    x, y, w, h = box
    edge = 0.01 * min(height, width) + 1
    return x <= edge and x + w >= width - edge, y <= edge and y + h >= height - edge


def steady(frame: np.ndarray, cfg: PreprocessConfig, marks: Rect, found: Rect) -> bool:
    """The digit found at `found` is found again, in the same place, in a square WIDER times larger around `marks`:
    a piece of a rule, of a grid or of a shadow's corner read as a digit in one square mostly is not in the other."""
    height, width = frame.shape[:2]
    again = read_region(frame, cfg, square_around(marks, height, width, WIDER))
    return again.mnist is not None and again.box is not None and same_place(again.box, found)


def doubtful(candidate: Candidate, confidence: float) -> bool:
    """The guide square's reading of a still found in that square only, and read with less than GUIDE_SURE
    confidence: a shadow's corner or a piece of a margin line on a blank sheet mostly, rarely a digit (tuning
    seeds 123-162 and 123-127, seed-0 model: 16 of the 20 blank sheets read there, 1 of the 109 digits)."""
    return candidate.steady is False and confidence < GUIDE_SURE


def fills(box: Rect, height: int, width: int) -> bool:
    """A digit framed tightly: its box reaches within FRAME of the picture's side at every side (its groups of marks
    may be pieces of it: a 4's stem and arms, a 9's loop and tail, a 7's bar and stem that reach three sides)."""
    x, y, w, h = box
    gap_x, gap_y = FRAME * width, FRAME * height
    return x <= gap_x and y <= gap_y and x + w >= width - gap_x and y + h >= height - gap_y


def same_place(a: Rect, b: Rect) -> bool:
    """Two boxes overlap on half of the larger one at least."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    overlap = max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))
    return overlap >= 0.5 * max(aw * ah, bw * bh)


def prepare_still(frame: np.ndarray, cfg: PreprocessConfig) -> Prepared:
    """The digit anywhere in a whole picture (roi 1): each candidate group of marks read through the region
    path; the best by geometry leads (the reader may weigh the model's confidence in). None holds a digit but
    the marks are a digit framed tightly: the picture is read whole, as before."""
    height, width = frame.shape[:2]
    found, f = groups(to_gray(frame), cfg)
    short = min(height, width)
    inside = [(box, ink) for box, ink, within in found if within and MIN_MARK * short <= max(box[2:]) < CROP * short]
    inside = sorted(inside, key=lambda c: -c[1])[:MOST]
    candidates = [Candidate(box, region, ink, read_region(frame, cfg, region))
                  for box, ink in inside for region in [square_around(box, height, width)]]
    margin = round(MARGIN * short)
    for c in candidates:  # a digit against the picture's border is cut by it (a shadow's corner); one found in
        where = c.prep.box  # one square only is unsteady: neither is a digit
        if c.prep.mnist is None or where is None:
            continue
        if touches_edge(where, (margin, margin, width - 2 * margin, height - 2 * margin)):
            c.prep = replace(c.prep, mnist=None, reason="touches edge")
        elif not steady(frame, cfg, c.box, where):
            c.prep = replace(c.prep, mnist=None, reason="unsteady")
    digits = [c for c in candidates if c.prep.mnist is not None]
    total = sum(max(c.box[2:]) for c in digits) or 1.0
    for c in digits:  # larger, nearer the middle, and strokes rather than a filled blot (a smudge, a thumb)
        density = c.ink * f * f / (c.box[2] * c.box[3])
        c.score = max(c.box[2:]) / total * centrality(c.prep.box or c.box, height, width) * min(1.0, 2 * (1 - density))
    if digits:
        best = max(digits, key=lambda c: c.score)
        best.chosen = True
        p = best.prep
        return Prepared(p.mnist, (0, 0, width, height), p.box, p.reason, candidates)
    marks = [(box, ink) for box, ink, _ in found if max(box[2:]) >= MIN_MARK * short]
    # No mark at all in a picture much longer than wide: a digit framed tightly whose stroke fills it (a 1, a bold
    # marker's stroke), wider than the closing here
    densities = {box: ink * f * f / (box[2] * box[3]) for box, ink in marks}
    crops = [box for box, ink in marks if crop_like(box, densities[box], height, width)]
    # a fainter group across the picture one way is a digit framed tightly too (a 7's bar and stem reach three
    # sides) when the whole reading's digit fills the picture; a shadow's edge does not
    faint = [box for box, ink in marks if crop_like(box, densities[box], height, width, DENSE)]
    # Marks across the whole picture both ways (rules or a shadow joined to a digit held in the middle, so that no
    # group inside held it): the guide square a camera reads, before the picture is taken for a crop
    guide = roi_box(height, width, ROI)
    strip = max(height, width) >= 2 * short  # a picture much longer than wide is framed on its digit (a 1)
    sheet = bool(crops) and not strip and all(all(crosses(box, height, width)) for box in crops)
    centre = Candidate(guide, guide, 0.0, read_region(frame, cfg, guide)) if sheet else None
    if (centre is None or centre.prep.mnist is None) and (faint or (not marks and strip)):
        whole = read_region(frame, cfg)
        whole.candidates = candidates + ([centre] if centre else [])
        # not a sleeve or a margin, and the mark that made the picture look like a crop (a grid's patch, a band of
        # shadow, when the whole reading takes a shadow's or the sheet's edge, is not the same place), or a digit
        # that fills the picture
        if whole.box is not None and not along_side(whole.box, (0, 0, width, height)) \
                and (not faint or any(same_place(whole.box, box) for box in crops)
                     or fills(whole.box, height, width)):
            return whole
    # Last, the guide square a camera reads (a digit held in the middle, its marks joined to a shadow's at the border)
    centre = centre or Candidate(guide, guide, 0.0, read_region(frame, cfg, guide))
    candidates.append(centre)
    if centre.prep.mnist is not None:
        centre.chosen = True
        assert centre.prep.box is not None  # a found digit always has its box
        centre.steady = steady(frame, cfg, centre.prep.box, centre.prep.box)
        return Prepared(centre.prep.mnist, (0, 0, width, height), centre.prep.box, "", candidates)
    reasons = [c.prep.reason for c in candidates]
    return Prepared(None, (0, 0, width, height), None, max(reasons, key=reasons.count) if reasons else "blank",
                    candidates)
