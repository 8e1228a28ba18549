"""Camera frames of what people really hold up to a webcam: shadows, thin pens, thick markers, tilted sheets,
ruled paper, low light, motion blur, small digits, printed digits, other hands, and blank sheets.

Each condition changes one thing from `plain` (an MNIST test digit as `synth` draws it). A frame is built as
a camera sees paper: albedo (white paper, ruled lines, ink that absorbs some colours) -> the sheet's pose
(a perspective view when tilted) -> illumination (a gradient, a spot, a hard shadow, dim light) -> motion
blur, lens blur, sensor noise, JPEG. Every random choice comes from the `rng` given, so a seed gives one
frame, and fresh seeds give fresh frames: a test set is generated, never a fixed list of pictures.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from digitsum_edge import mnist
from digitsum_edge.synth.camera import lighting, sensor, sleeve
from digitsum_edge.vision.preprocess import BOX, roi_box
from digitsum_edge.vision.settings import ROI

CONDITIONS = {  # name -> what a frame of it shows (docs/commands/live.md and `synth --help` quote these)
    "plain": "an MNIST digit in dark ink on unevenly lit paper (what `synth` draws without --conditions)",
    "shadow": "a hard shadow edge (a hand or a lamp) across the sheet",
    "pen": "thin ballpoint strokes, blue or black",
    "marker": "thick felt marker, black, blue or red",
    "writers": "other hands: slanted, stretched, warped, re-stroked; half of them low-resolution scans upscaled",
    "tilt": "the sheet tilted away from the camera: a perspective view, the table beside it",
    "lined": "ruled or squared paper, sometimes a red margin",
    "dark": "low light: a dim, noisy frame",
    "motion": "motion blur",
    "small": "a small digit off-centre in the region read",
    "printed": "a printed digit in one of 13 fonts",
    "blank": "no digit: plain, ruled, squared, shadowed or dim paper",
}
BLANK_KINDS = ("plain", "lined", "squared", "shadow", "dark")
FONTS = (  # 8 Hershey faces and 5 of them in italics: 13 fonts
    *(getattr(cv2, f"FONT_HERSHEY_{n}") for n in ("SIMPLEX", "PLAIN", "DUPLEX", "COMPLEX", "TRIPLEX",
                                                   "COMPLEX_SMALL", "SCRIPT_SIMPLEX", "SCRIPT_COMPLEX")),
    *(getattr(cv2, f"FONT_HERSHEY_{n}") | cv2.FONT_ITALIC for n in ("SIMPLEX", "PLAIN", "DUPLEX", "COMPLEX",
                                                                      "TRIPLEX")))
BLACK_INK = np.array([0.8, 0.8, 0.8], np.float32)  # absorbed share of B, G, R light
BLUE_INK = np.array([0.3, 0.7, 0.85], np.float32)  # passes blue, absorbs green and red
RED_INK = np.array([0.8, 0.85, 0.15], np.float32)  # passes red


def parse(names: str) -> tuple[str, ...]:
    """'shadow,pen' -> ('shadow', 'pen'); 'all' -> every condition; an unknown name raises ValueError."""
    chosen = tuple(CONDITIONS) if names.strip() == "all" else tuple(n.strip() for n in names.split(",") if n.strip())
    unknown = [n for n in chosen if n not in CONDITIONS]
    if not chosen or unknown:
        raise ValueError(f"unknown condition {', '.join(unknown) or repr(names)} (choose from "
                         f"{', '.join(CONDITIONS)} or all)")
    return chosen


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a bool mask -> its one-pixel skeleton (bool), vectorised."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            c = img[1:-1, 1:-1]
            p = [img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:], img[2:, 2:],  # N, NE, E, SE
                 img[2:, 1:-1], img[2:, :-2], img[1:-1, :-2], img[:-2, :-2]]  # S, SW, W, NW
            neighbours = sum(q.astype(np.int32) for q in p)
            transitions = sum(((p[i] == 0) & (p[(i + 1) % 8] == 1)).astype(np.int32) for i in range(8))
            n, e, s, w = p[0], p[2], p[4], p[6]
            # step 0 keeps a pixel whose N, E, S or E, S, W are all set; step 1 the same turned round
            gone = ((n & e & s) | (e & s & w)) if step == 0 else ((n & e & w) | (n & s & w))
            drop = (c == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & (gone == 0)
            if drop.any():
                c[drop] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def _upscaled(digit: np.ndarray, scale: float) -> np.ndarray:
    """(28, 28) uint8 -> float32 coverage 0-1 at frame scale, (28*scale, 28*scale); mass centre at the middle."""
    n = max(28, round(28 * scale))
    return cv2.resize(digit.astype(np.float32) / 255.0, (n, n), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _restroke(coverage: np.ndarray, width: float) -> np.ndarray:
    """Draw the digit again with a round pen `width` frame pixels wide along its skeleton (anti-aliased)."""
    skeleton = thin(coverage > 0.45).astype(np.float32)
    radius = max(0, round((width - 1) / 2))
    if radius:
        skeleton = np.asarray(cv2.dilate(skeleton, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)))
    return np.asarray(cv2.GaussianBlur(skeleton, (0, 0), 0.6))


def _elastic(coverage: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """A smooth random warp (another hand's wobble): displacements up to ~`amount` pixels."""
    n = coverage.shape[0]
    field = [cv2.resize(rng.uniform(-1, 1, (5, 5)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC)
             for _ in range(2)]
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    return cv2.remap(coverage, xx + amount * field[0], yy + amount * field[1], cv2.INTER_LINEAR)


def _printed(label: int, height: float, rng: np.random.Generator) -> np.ndarray:
    """A printed digit, about `height` pixels tall, in one of FONTS; float32 coverage, tightly cropped."""
    font = FONTS[int(rng.integers(len(FONTS)))]
    (_, text_h), _ = cv2.getTextSize(str(label), font, 1.0, 1)
    font_scale = height / max(text_h, 1)
    thickness = max(1, round(font_scale * rng.uniform(0.8, 2.5)))
    size = round(height * 3)
    canvas = np.zeros((size, size), np.uint8)
    cv2.putText(canvas, str(label), (size // 4, size * 3 // 4), font, font_scale, 255, thickness, cv2.LINE_AA)
    x, y, w, h = cv2.boundingRect(cv2.findNonZero(canvas))
    return np.pad(canvas[y:y + h, x:x + w].astype(np.float32) / 255.0, 4)


def _stroke(condition: str, digit: np.ndarray, label: int, side: int,
            rng: np.random.Generator) -> tuple[np.ndarray, float, np.ndarray]:
    """The digit's ink coverage at frame scale, its half extent and the colour it absorbs, for `condition`."""
    darkness = rng.uniform(0.6, 0.9) * rng.uniform(0.85, 1.0, 3).astype(np.float32)  # `plain`'s bluish black
    fraction = rng.uniform(0.16, 0.28) if condition == "small" else rng.uniform(0.3, 0.65)
    if condition == "printed":
        stroke = _printed(label, fraction * side, rng)
        return stroke, 0.55 * float(np.hypot(*stroke.shape)), darkness
    scale = fraction * side / BOX  # frame pixels per MNIST pixel: the 20-pixel box covers `fraction`
    coverage = _upscaled(digit, scale)
    if condition == "pen":  # a ballpoint: 1.8-4 px whatever the digit's size, lighter and uneven
        coverage = _restroke(coverage, rng.uniform(1.8, 4.0))
        coverage *= cv2.resize(rng.uniform(0.6, 1.0, (6, 6)).astype(np.float32), coverage.shape[::-1])
        darkness = (BLUE_INK if rng.random() < 0.5 else BLACK_INK) * np.float32(rng.uniform(0.7, 1.05))
    elif condition == "marker":  # a felt tip: strokes a sixth to a quarter of the digit's height (MNIST: a seventh)
        coverage = _restroke(coverage, rng.uniform(0.16, 0.28) * BOX * scale)
        darkness = (BLACK_INK, BLUE_INK, RED_INK)[int(rng.integers(3))] * np.float32(rng.uniform(0.95, 1.15))
    elif condition == "writers":  # another hand: slant, width, wobble and pen of its own
        n = coverage.shape[0]
        shear, squash = rng.uniform(-0.35, 0.35), rng.uniform(0.75, 1.2)
        affine = np.array([[squash, shear, n / 2 * (1 - squash - shear)], [0, 1, 0]], np.float32)
        coverage = cv2.warpAffine(coverage, affine, (n, n), flags=cv2.INTER_LINEAR)
        coverage = _elastic(coverage, rng, rng.uniform(1.0, 2.5) * scale)
        coverage = _restroke(coverage, rng.uniform(0.07, 0.2) * BOX * scale)
    else:
        pen = int(rng.integers(-1, 2)) * round(scale / 4)  # plain's thinner or thicker pen
        if pen:
            element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (abs(pen) * 2 + 1,) * 2)
            coverage = (cv2.dilate if pen > 0 else cv2.erode)(coverage, element)
    return coverage.clip(0, 1), 15 * scale, np.minimum(darkness, 0.97)


def _rules(albedo: np.ndarray, rng: np.random.Generator, squared: bool) -> None:
    """Ruled (or squared) paper in place: faint blue or grey lines, sometimes a red margin."""
    h, w = albedo.shape[:2]
    spacing = rng.uniform(10, 24) if squared else rng.uniform(14, 36)
    colour = (np.array([0.12, 0.3, 0.45]) if rng.random() < 0.6 else np.full(3, 0.35)) * rng.uniform(0.5, 1.2)
    thickness = int(rng.integers(1, 3))
    angle = np.deg2rad(rng.uniform(-6, 6))
    lines = np.zeros((h, w), np.float32)
    reach = 2 * max(h, w)
    cx, cy = w / 2, h / 2
    dx, dy = np.cos(angle), np.sin(angle)
    offset = rng.uniform(0, spacing)
    for k in range(-int(reach / spacing), int(reach / spacing) + 1):
        t = k * spacing + offset  # horizontal rules, then (squared) vertical ones
        for (ax, ay), (nx, ny) in [((dx, dy), (-dy, dx))] + ([((-dy, dx), (dx, dy))] if squared else []):
            x0, y0 = cx + nx * t, cy + ny * t
            p, q = (x0 - ax * reach, y0 - ay * reach), (x0 + ax * reach, y0 + ay * reach)
            cv2.line(lines, (round(p[0]), round(p[1])), (round(q[0]), round(q[1])), 1.0, thickness, cv2.LINE_AA)
    albedo *= 1 - lines[..., None] * colour.astype(np.float32)
    if not squared and rng.random() < 0.4:  # a red margin line down the left of the sheet
        margin = np.zeros((h, w), np.float32)
        x = round(rng.uniform(0.05, 0.3) * w)
        cv2.line(margin, (x, 0), (x + round(np.tan(angle) * h), h), 1.0, thickness + 1, cv2.LINE_AA)
        albedo *= 1 - margin[..., None] * (RED_INK * 0.6)


def _shadow(h: int, w: int, roi: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """(h, w) float32 illumination factor: 1 in the light, 0.3-0.6 behind a hard edge through the region."""
    rx, ry, side, _ = roi
    px, py = rx + side * rng.uniform(0.15, 0.85), ry + side * rng.uniform(0.15, 0.85)  # the edge crosses here
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    inside = (xx - px) * np.cos(angle) + (yy - py) * np.sin(angle) > 0
    if rng.random() < 0.35:  # the corner of a hand or a book: two edges meeting in the region
        other = angle + rng.uniform(0.3, 0.7) * np.pi
        inside &= (xx - px) * np.cos(other) + (yy - py) * np.sin(other) > 0
    light = np.where(inside, np.float32(rng.uniform(0.3, 0.6)), np.float32(1.0))
    return cv2.GaussianBlur(light, (0, 0), rng.uniform(0.5, 3.0))


def _tilt(f: float, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """3x3 homography of the sheet's plane, rotated 20-45 degrees out of the image plane, seen from `f`."""
    ax, ay = rng.uniform(-1, 1, 2)
    norm = max(np.hypot(ax, ay), 1e-6)
    tilt = np.deg2rad(rng.uniform(20, 45))
    rx, ry, rz = tilt * ax / norm, tilt * ay / norm, np.deg2rad(rng.uniform(-10, 10))
    rot, _ = cv2.Rodrigues(np.array([rx, ry, rz]))
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    plane = np.column_stack([rot[:, 0], rot[:, 1], [0, 0, f]])  # plane point (u - w/2, v - h/2, 0) at depth f
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]])
    return k @ plane @ centre


def render(condition: str, digit: np.ndarray | None, label: int | None, rng: np.random.Generator,
           size: tuple[int, int] = (640, 480), noise_rng: np.random.Generator | None = None,
           roi: float = ROI, blank_kind: str | None = None) -> np.ndarray:
    """One (H, W, 3) uint8 BGR frame of `condition` showing `digit` ((28, 28) MNIST image; `label` for printed
    digits), or no digit when `digit` is None or the condition is "blank" (a sheet of `blank_kind`, one of
    BLANK_KINDS; None: drawn from `rng`)."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}")
    width, height = size
    noise_rng = noise_rng or rng
    roi_rect = roi_box(height, width, roi)
    rx, ry, side, _ = roi_rect
    kind = condition
    if condition == "blank":
        digit = None
        drawn = BLANK_KINDS[int(rng.integers(len(BLANK_KINDS)))]
        kind = blank_kind or drawn
    pad = round(0.3 * max(width, height)) if kind == "tilt" else 0  # a tilted sheet shows more of the plane
    albedo = np.ones((height + 2 * pad, width + 2 * pad, 3), np.float32)
    if kind in ("lined", "squared"):
        _rules(albedo, rng, squared=kind == "squared" or rng.random() < 0.35)
    if digit is not None and (label is not None or condition != "printed"):
        stroke, reach, darkness = _stroke(kind, digit, int(label or 0), side, rng)
        room = max(0.0, side / 2 - reach)
        cx = pad + rx + side / 2 + rng.uniform(-room, room)
        cy = pad + ry + side / 2 + rng.uniform(-room, room)
        sh, sw = stroke.shape
        warp = cv2.getRotationMatrix2D((sw / 2, sh / 2), rng.uniform(-12, 12), 1.0)
        warp[:, 2] += np.array([cx - sw / 2, cy - sh / 2])
        ink = cv2.warpAffine(stroke, warp, albedo.shape[1::-1], flags=cv2.INTER_LINEAR)
        albedo *= 1 - ink[..., None] * darkness
    if kind == "tilt":
        sheet = np.zeros(albedo.shape[:2], np.float32)  # the sheet ends somewhere beyond the frame
        sx0, sy0 = (rng.uniform(0.3, 1.0, 2) * pad).astype(int)
        sx1, sy1 = (albedo.shape[1] - rng.uniform(0.3, 1.0) * pad, albedo.shape[0] - rng.uniform(0.3, 1.0) * pad)
        sheet[sy0:int(sy1), sx0:int(sx1)] = 1
        table = rng.uniform(0.15, 0.5) * rng.uniform(0.8, 1.0, 3).astype(np.float32)
        albedo = albedo * sheet[..., None] + table * (1 - sheet[..., None])
        shift = np.array([[1, 0, -pad], [0, 1, -pad], [0, 0, 1]], np.float64)
        homography = _tilt(rng.uniform(450, 750), width, height, rng) @ shift
        albedo = np.asarray(cv2.warpPerspective(albedo, homography, (width, height), flags=cv2.INTER_LINEAR,
                                                borderMode=cv2.BORDER_CONSTANT,
                                                borderValue=tuple(float(t) for t in table)))
    light = lighting(rng, width, height)  # (H, W, 3) illumination, 130-225 on average
    if kind == "dark":
        light *= rng.uniform(0.2, 0.45)  # a webcam's auto exposure keeps dim paper at 25-100
    if kind == "shadow":
        light *= _shadow(height, width, roi_rect, rng)[..., None]
    image = albedo * light
    sleeve(image, rng, rx)
    if kind == "motion":
        length = int(rng.integers(6, 19))
        kernel = np.zeros((length, length), np.float32)
        angle = rng.uniform(0, np.pi)
        c = (length - 1) / 2
        cv2.line(kernel, (round(c - c * np.cos(angle)), round(c - c * np.sin(angle))),
                 (round(c + c * np.cos(angle)), round(c + c * np.sin(angle))), 1.0, 1, cv2.LINE_AA)
        image = cv2.filter2D(image, -1, kernel / kernel.sum())
    frame = cv2.GaussianBlur(np.clip(image, 0, 255).astype(np.uint8), (0, 0), noise_rng.uniform(0.4, 1.4))
    if kind == "writers" and rng.random() < 0.5:  # a low-resolution scan, upscaled
        factor = rng.uniform(2.5, 5.0)
        small = cv2.resize(frame, (round(width / factor), round(height / factor)), interpolation=cv2.INTER_AREA)
        _, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 80))])
        interpolation = cv2.INTER_NEAREST if rng.random() < 0.5 else cv2.INTER_LINEAR
        scan = np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
        frame = cv2.resize(scan, (width, height), interpolation=interpolation)
    sigma = noise_rng.uniform(4, 12) if kind == "dark" else noise_rng.uniform(2, 8)
    return sensor(frame, noise_rng, int(noise_rng.integers(2**31)), sigma)


def sample(condition: str, count: int, seed: int, size: tuple[int, int] = (640, 480),
           roi: float = ROI) -> Iterator[tuple[np.ndarray, int | None]]:
    """`count` fresh frames of one condition for a seed: (BGR frame, label or None), MNIST test digits.

    The same (condition, seed) gives the same frames (the first `count` of them: frame i does not depend on
    `count`); each seed gives new digits, placements and lighting.
    """
    index = list(CONDITIONS).index(condition)
    test = mnist.load("test")
    for i in range(count):
        scene = np.random.default_rng([seed, index, i])
        pick = int(scene.integers(len(test)))
        label = None if condition == "blank" else int(test.labels[pick])
        yield render(condition, test.images[pick], label, scene, size, roi=roi), label
