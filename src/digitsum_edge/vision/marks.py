"""Which marks are the digit: where a mark lies (at an edge, along a side, in the middle), how wide its pen is,
whether it is a shadow's corner, and the digit's marks gathered from them (vision/preprocess.py finds the marks).

A mark is (area in pixels, bounding box (x, y, w, h), OpenCV contour), in the preprocessing's working pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

Rect = tuple[int, int, int, int]  # x, y, w, h
Mark = tuple  # (area: float, box: Rect, contour: np.ndarray)


def rect_of(values) -> Rect:
    x, y, w, h = values
    return int(x), int(y), int(w), int(h)


def touches_edge(rect: Rect, inner: Rect) -> bool:
    """The mark's box reaches the edge of `inner` (the region, or the picture within its padding)."""
    x, y, w, h = rect
    ix, iy, iw, ih = inner
    return x <= ix or y <= iy or x + w >= ix + iw or y + h >= iy + ih


def along_side(box: Rect, rect: Rect) -> bool:
    """The box is a band along a side of `rect`: touches it, runs along 90 % of it, a third of the way in at most."""
    bx, by, bw, bh = box
    x, y, w, h = rect
    level = (by <= y or by + bh >= y + h) and bw >= 0.9 * w and bh <= h / 3
    return level or ((bx <= x or bx + bw >= x + w) and bh >= 0.9 * h and bw <= w / 3)


def central_box(box: Rect, rect: Rect) -> bool:
    """The box's centre lies in the middle half of `rect`, across and down."""
    bx, by, bw, bh = box
    x, y, w, h = rect
    return abs(bx + bw / 2 - x - w / 2) <= w / 4 and abs(by + bh / 2 - y - h / 2) <= h / 4


def central(contour: np.ndarray, rect: Rect) -> bool:
    """The mark's centre of mass, or its box's centre, lies in the middle half of `rect`, across and down (a 7
    framed tightly has its mass up and right, its box all over the picture)."""
    m = cv2.moments(contour)
    bx, by, bw, bh = cv2.boundingRect(contour)
    centres = [(bx + bw / 2, by + bh / 2)]
    if m["m00"] > 0:  # a hairline's outline encloses nothing
        centres.append((m["m10"] / m["m00"], m["m01"] / m["m00"]))
    x, y, w, h = rect
    return any(abs(cx - x - w / 2) <= w / 4 and abs(cy - y - h / 2) <= h / 4 for cx, cy in centres)


def mark_width(blob: tuple) -> float:
    """How wide a mark's strokes are: twice its area over its outline's length."""
    return 2.0 * blob[0] / max(cv2.arcLength(blob[2], True), 1.0)


def shadow_corner(contour: np.ndarray, gray: np.ndarray, paper: np.ndarray, steps: np.ndarray) -> bool:
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


def digit_blobs(seed: tuple, joinable: list) -> tuple[Rect, list]:
    """The seed mark and the marks close to it, and to those (a digit drawn in several strokes, or a thin stroke
    the threshold broke into pieces), and their box. joinable: the marks that may join it."""
    x, y, w, h = seed[1]
    chosen = [seed[2]]
    rest = sorted((b for b in joinable if b is not seed), key=lambda b: -b[0])
    joined = True
    while joined:  # until no mark is close to the growing box: a piece next to a piece next to the digit joins
        joined = False
        for b in list(rest):
            bx, by, bw, bh = b[1]
            margin = 0.4 * max(w, h)
            if bx < x + w + margin and x - margin < bx + bw and by < y + h + margin and y - margin < by + bh:
                x1, y1 = min(x, bx), min(y, by)
                x, y, w, h = x1, y1, max(x + w, bx + bw) - x1, max(y + h, by + bh) - y1
                chosen.append(b[2])
                rest.remove(b)
                joined = True
    return (x, y, w, h), chosen


def picture_digit(blobs: list, inner: Rect, min_side: float) -> tuple[Rect, list] | None:
    """The digit in a whole picture: its marks gathered into groups (each from its largest mark, with the marks
    near it drawn with a pen about as wide: half to 1.5 times), then the group that holds a mark inside the
    picture at least `min_side` long, else one whose box is central, the largest; None: only marks off the
    middle at the border.

    A whole picture's border is its own, not a cut through the scene: a digit framed tightly reaches it, or is
    cut by it into pieces that each reach it (a broken stroke). What lies at the border off the middle is the
    sheet's edge, a finger or the table; a band along a whole side (the sheet's edge) never leads a group (a 1's
    foot framed tightly joins its stem), and a band of shade is wider than the pen.
    """
    pool, best, best_rank = list(blobs), None, None
    while seeds := [b for b in pool if not along_side(b[1], inner)]:  # a band along a side joins, never leads
        seed = max(seeds, key=lambda b: b[0])
        width = mark_width(seed)
        box, chosen = digit_blobs(seed, [b for b in pool if b is seed or 0.5 * width <= mark_width(b) <= 1.5 * width])
        members = [b for b in pool if any(b[2] is c for c in chosen)]
        pool = [b for b in pool if not any(b[2] is c for c in chosen)]
        inside = any(not touches_edge(b[1], inner) and max(b[1][2:]) >= min_side for b in members)
        middle = central_box(box, inner) or any(central(b[2], inner) for b in members)
        if not (inside or middle):
            continue
        rank = (inside, sum(b[0] for b in members))
        if best_rank is None or rank > best_rank:
            best, best_rank = (box, chosen), rank
    return best
