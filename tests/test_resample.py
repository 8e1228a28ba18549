"""vision/resample.py: resizes in exact integer arithmetic, the same pixels everywhere, close to OpenCV's usual ones.

Each mode against a slow reference written from its definition pixel by pixel (linear: OpenCV's INTER_LINEAR_EXACT,
area: the exact mean of the covered area), on random and edge sizes; and the browser's port (web/app/cvlite.js,
run by Node where it is installed) against Python, bit for bit."""

from __future__ import annotations

import base64
import json
import math
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitsum_edge.vision import resample

CVLITE = Path(resample.__file__).resolve().parents[1] / "web" / "app" / "cvlite.js"


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (5, 5), 2)


def _linear_taps(src: int, dst: int) -> list[tuple[int, int, int]]:
    """Per output pixel: first and second source pixel, the second one's weight in 1/256."""
    scale = 1 / (dst / src)
    taps = []
    for d in range(dst):
        x = scale * (d + 0.5) - 0.5  # IEEE doubles, in this order
        i = math.floor(x)
        if i < 0 or src == 1:
            taps.append((0, 0, 0))
        elif i >= src - 1:
            taps.append((src - 1, src - 1, 0))
        else:
            taps.append((i, i + 1, round((x - i) * 256)))  # half to even
    return taps


def slow_linear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    (h, w), (dw, dh) = image.shape, size
    p = image.astype(int).tolist()
    out = np.zeros((dh, dw), np.uint8)
    for y, (y0, y1, b) in enumerate(_linear_taps(h, dh)):
        for x, (x0, x1, a) in enumerate(_linear_taps(w, dw)):
            total = ((256 - b) * ((256 - a) * p[y0][x0] + a * p[y0][x1])
                     + b * ((256 - a) * p[y1][x0] + a * p[y1][x1]))
            out[y, x] = (total + (1 << 15)) >> 16
    return out


def _covered(src: int, dst: int, d: int) -> list[tuple[int, int]]:
    """Output pixel d's source pixels and how much of each it covers, in 1 / dst of a pixel."""
    start, end = d * src, (d + 1) * src
    return [(i, min(end, (i + 1) * dst) - max(start, i * dst)) for i in range(start // dst, -(-end // dst))]


def slow_area(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    (h, w), (dw, dh) = image.shape, size
    p = image.astype(int).tolist()
    out = np.zeros((dh, dw), np.uint8)
    for y in range(dh):
        for x in range(dw):
            total = sum(wy * wx * p[i][j] for i, wy in _covered(h, dh, y) for j, wx in _covered(w, dw, x))
            out[y, x] = (2 * total + w * h) // (2 * w * h)  # the mean, rounded half up
    return out


EDGE_SIZES = [((1, 1), (5, 3)), ((1, 9), (3, 1)), ((9, 1), (1, 4)), ((3, 5), (64, 64)), ((5, 3), (256, 7)),
              ((480, 640), (320, 240)), ((7, 7), (14, 14)), ((2, 2), (1, 1)), ((33, 47), (47, 33)),
              ((144, 144), (128, 128)), ((240, 320), (192, 144)), ((30, 17), (80, 45)), ((10, 10), (10, 10)),
              ((255, 3), (2, 256))]


def _random_sizes(count: int, seed: int, most: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    return [((int(h), int(w)), (int(dw), int(dh))) for h, w, dw, dh in rng.integers(1, most, (count, 4))]


def _whole_sizes(count: int, seed: int, most: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Sizes whose linear weights are whole numbers of 1/256 (dst divides 128 src), shrinking or growing."""
    rng = np.random.default_rng(seed)
    out = []
    for h, w in rng.integers(1, most, (count, 2)):
        dw, dh = (int(rng.choice([d for d in range(1, 4 * most) if 128 * int(n) % d == 0])) for n in (w, h))
        out.append(((int(h), int(w)), (dw, dh)))
    return out


@pytest.mark.parametrize(("shape", "size"), EDGE_SIZES + _random_sizes(40, 7, 90) + _whole_sizes(30, 6, 90))
def test_linear_is_exactly_its_definition(shape: tuple[int, int], size: tuple[int, int]) -> None:
    image = _image(*shape, seed=shape[0] * 7 + size[0])
    ours = resample.resize(image, size)
    assert ours.shape == (size[1], size[0]) and ours.dtype == np.uint8
    assert np.array_equal(ours, slow_linear(image, size))


def _shrink(pair: tuple[tuple[int, int], tuple[int, int]]) -> tuple[tuple[int, int], tuple[int, int]]:
    (h, w), (dw, dh) = pair
    return (h, w), (min(dw, w), min(dh, h))


AREA_SIZES = ([_shrink(p) for p in EDGE_SIZES[:4] + EDGE_SIZES[7:] + _random_sizes(40, 8, 90)]
              + [((257, 257), (13, 20)), ((256, 257), (20, 13))])  # in float64, and in float32 at its largest sums


@pytest.mark.parametrize(("shape", "size"), AREA_SIZES)
def test_area_is_exactly_the_mean_of_the_covered_area(shape: tuple[int, int], size: tuple[int, int]) -> None:
    image = _image(*shape, seed=1)
    assert np.array_equal(resample.resize(image, size, area=True), slow_area(image, size))
    white = np.full(shape, 255, np.uint8)  # the largest sums
    assert (resample.resize(white, size, area=True) == 255).all()


@pytest.mark.parametrize(("shape", "size"), [((144, 144), (128, 128)), ((240, 320), (128, 96)), ((30, 17), (80, 45))])
def test_linear_is_opencvs_usual_one_within_a_grey_level(shape: tuple[int, int], size: tuple[int, int]) -> None:
    image = _image(*shape)
    diff = np.abs(resample.resize(image, size).astype(int) - cv2.resize(image, size, interpolation=cv2.INTER_LINEAR))
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
    # a half-way value rounds up, whatever the machine: (1 + 2) / 2, as an area and as a linear resize
    assert resample.resize(np.array([[1, 2]], np.uint8), (1, 1), area=True).tolist() == [[2]]
    assert resample.resize(np.array([[1, 2]], np.uint8), (1, 1)).tolist() == [[2]]
    flat = np.full((33, 47), 77, np.uint8)
    for size, area in (((20, 13), True), ((80, 61), False), ((13, 5), False)):
        assert (resample.resize(flat, size, area) == 77).all()


# cvlite.js under Node: stdin [[h, w, dw, dh, area, base64 pixels]...] -> stdout [base64 pixels...]
NODE_RESAMPLE = """
require(process.argv[1]);
const cv = globalThis.cvlite;
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(([h, w, dw, dh, area, pixels]) => {
    const src = new cv.Mat(h, w), dst = new cv.Mat();
    src.data.set(Buffer.from(pixels, "base64"));
    cv.resample(src, dst, new cv.Size(dw, dh), area);
    return Buffer.from(dst.data).toString("base64");
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def test_the_browsers_port_gives_the_same_pixels() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cvlite.js's resample is checked in the browser tests only")
    sizes = EDGE_SIZES[:10] + _random_sizes(150, 9, 120) + _whole_sizes(40, 10, 120)
    cases = [(shape, size, area) for area in (False, True) for shape, size in sizes]
    images = [_image(*shape, seed=i) for i, (shape, _, _) in enumerate(cases)]
    request = [[*shape, *size, area, base64.b64encode(image.tobytes()).decode()]
               for (shape, size, area), image in zip(cases, images, strict=True)]
    done = subprocess.run([node, "-e", NODE_RESAMPLE, str(CVLITE)], input=json.dumps(request), capture_output=True,
                          text=True, timeout=60, check=True)
    for (shape, size, area), image, pixels in zip(cases, images, json.loads(done.stdout), strict=True):
        page = np.frombuffer(base64.b64decode(pixels), np.uint8).reshape(size[1], size[0])
        assert np.array_equal(page, resample.resize(image, size, area)), (shape, size, area)
