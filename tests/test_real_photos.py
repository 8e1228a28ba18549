"""Photos people take of one digit: framed tightly, any shape, thin broken strokes; the whole picture is read.

Each failure mode of real photos has a test on a small picture drawn here; the tests at the end use
../shared/data/real-photos when it is there (skipped, with the reason, when not).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from digitsum_edge.vision.frame import prepare
from digitsum_edge.vision.preprocess import PreprocessConfig
from digitsum_edge.vision.settings import ReadingSettings

WHOLE = PreprocessConfig(reading=ReadingSettings(roi=1.0))  # what predict and live on an image use
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-photos"


def sheet(h: int, w: int, level: int = 200, seed: int = 0) -> np.ndarray:
    """Grey paper with a little sensor noise, (h, w, 3) uint8."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(level, 3, (h, w, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)


def ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    return cv2.boundingRect(cv2.findNonZero((image > 60).astype(np.uint8)))


def test_a_digit_framed_tightly_is_a_digit_not_an_edge_or_too_large() -> None:
    """A 0 that touches all four sides of its picture and fills it: in a camera region that is a cut-off mark, in a
    picture of its own it is the digit."""
    photo = sheet(160, 120)
    cv2.ellipse(photo, (60, 80), (56, 76), 0, 0, 360, (40, 40, 40), 9)  # reaches every border
    prep = prepare(photo, WHOLE)
    assert prep.mnist is not None, prep.reason
    assert prep.box is not None and prep.box[2] >= 110 and prep.box[3] >= 150  # the whole 0, not a piece
    _x, _y, w, h = ink_box(prep.mnist)
    assert h >= 19 and 12 <= w <= 17  # an upright oval, 20 high
    assert prep.mnist[10:18, 11:17].max() < 60  # with its hole
    framed = np.full((480, 640, 3), 200, np.uint8)  # the same picture in a camera frame, across the region's edge
    framed[160:320, 120:240] = photo
    cut = prepare(framed, PreprocessConfig(reading=ReadingSettings(roi=0.6)))
    assert cut.mnist is None or cut.box is None or cut.box[2] < 60  # at most the arc inside the region, never the 0


def test_a_tight_seven_keeps_its_bar_and_a_tight_one_its_stem() -> None:
    """Strokes that run along the border of a tight crop are the digit's, not ruled paper's lines."""
    seven = sheet(150, 110)
    cv2.line(seven, (2, 3), (107, 3), (50, 50, 50), 5)  # the bar, along the top border
    cv2.line(seven, (107, 3), (40, 147), (50, 50, 50), 5)  # the stem, down to the bottom border
    prep = prepare(seven, WHOLE)
    assert prep.mnist is not None
    x, y, w, h = ink_box(prep.mnist)
    assert w >= 13 and h >= 19  # bar and stem: as wide as a 7, not a 1
    assert prep.mnist[y:y + 3, x:x + w].mean() > 100  # the bar is there, across the top

    one = sheet(150, 30)
    cv2.line(one, (15, 0), (15, 149), (50, 50, 50), 6)
    prep = prepare(one, WHOLE)
    assert prep.mnist is not None and ink_box(prep.mnist)[3] >= 19


@pytest.mark.parametrize(("h", "w"), [(111, 157), (157, 111)])
def test_a_non_square_picture_is_read_whole(h: int, w: int) -> None:
    """A scan cell wider (or taller) than high: a digit near its sides is read whole, not cut to the central
    square (which made a 2 lose its foot)."""
    cell = sheet(h, w, 230)
    # a wide "Z": its ends lie outside the central square of the cell
    x0, x1, y0, y1 = 6, w - 7, 8, h - 9
    cv2.polylines(cell, [np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.int32)], False, (30, 30, 30), 4)
    prep = prepare(cell, WHOLE)
    assert prep.mnist is not None, prep.reason
    assert prep.region == (0, 0, w, h)  # the region read is the whole picture
    bx, by, bw, bh = prep.box
    assert bx <= x0 + 2 and by <= y0 + 2 and bx + bw >= x1 - 2 and by + bh >= y1 - 2
    _x, _y, iw, ih = ink_box(prep.mnist)
    assert max(iw, ih) >= 19 and abs(iw / ih - (x1 - x0) / (y1 - y0)) < 0.3 * (x1 - x0) / (y1 - y0)


def test_a_thin_stroke_broken_into_pieces_is_read_as_one_digit() -> None:
    """An 8 in faint, thin ballpoint that skips: four arcs with gaps between them, none touching another; the
    digit is all of them (before, the largest arc alone was read, an 8 as a 1)."""
    photo = sheet(300, 220, 215)
    ink = (120, 120, 120)  # faint: 44 % of the paper's light
    for cy, ry in ((85, 62), (215, 68)):
        for start, end in ((-60, 75), (105, 240), (240, 285)):  # arcs with gaps of 15-30 degrees
            cv2.ellipse(photo, (110, cy), (70, ry), 0, start, end, ink, 2, cv2.LINE_AA)
    prep = prepare(photo, WHOLE)
    assert prep.mnist is not None, prep.reason
    _bx, by, bw, bh = prep.box
    assert by <= 30 and by + bh >= 275 and bw >= 120  # both loops, both sides
    _, _, w, h = ink_box(prep.mnist)
    assert h >= 19 and w >= 9  # an 8's outline at 28x28, not a stroke


def test_the_sheet_edge_along_a_side_is_not_the_digit() -> None:
    """A photo with the table showing along its top: the band is not the digit, the small digit in the middle is."""
    photo = sheet(300, 300, 210)
    photo[:40] = 110  # the table beyond the sheet's edge
    cv2.line(photo, (150, 120), (150, 230), (40, 40, 40), 5)  # a 1
    prep = prepare(photo, WHOLE)
    assert prep.mnist is not None and prep.box is not None
    _bx, by, bw, bh = prep.box
    assert by >= 100 and bh <= 130 and bw <= 30
    empty = sheet(300, 300, 210)
    empty[:40] = 110
    assert prepare(empty, WHOLE).mnist is None  # the band alone: no digit
    assert prepare(sheet(200, 150), WHOLE).reason == "blank"


def test_light_ink_framed_tightly_and_a_bold_digit_are_told_apart() -> None:
    """A black marker 1 that covers more of its crop than the paper does is dark ink; a white stroke on black
    (an MNIST-like PNG) is light ink."""
    bold = sheet(140, 50, 220)
    cv2.rectangle(bold, (8, 0), (41, 139), (30, 30, 30), cv2.FILLED)  # 68 % of the picture
    prep = prepare(bold, WHOLE)
    assert prep.mnist is not None and ink_box(prep.mnist)[3] >= 19
    light = np.zeros((56, 56, 3), np.uint8)
    cv2.line(light, (28, 8), (28, 48), (255, 255, 255), 5)
    prep = prepare(light, WHOLE)
    assert prep.mnist is not None and ink_box(prep.mnist)[3] >= 19


def _real_photos() -> list[tuple[Path, int]]:
    if not (REAL / "labels.csv").is_file():
        pytest.skip(f"real photos not here ({REAL}): the development set lives outside the project")
    rows = [line.split(",") for line in (REAL / "labels.csv").read_text().splitlines()[1:] if line.strip()]
    return [(REAL / row[0], int(row[1])) for row in rows if row[1].strip().isdigit()]


def test_every_real_photo_shows_a_digit_and_tight_crops_of_them_too() -> None:
    """No "no digit" on a photo of one digit (140 photos and drawings), nor on the photo cropped to the digit's
    box (it then reaches every border), nor on a 157x111-shaped cell around it."""
    missed = []
    for path, _ in _real_photos():
        photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
        prep = prepare(photo, WHOLE)
        if prep.mnist is None or prep.box is None:
            missed.append((path.name, prep.reason))
            continue
        x, y, w, h = prep.box
        m = max(1, round(0.01 * max(w, h)))  # a pixel or two of paper: the strokes reach every border
        tight = photo[max(y - m, 0):y + h + m, max(x - m, 0):x + w + m]
        cx, cy, ch = x + w // 2, y + h // 2, round(1.1 * h)  # a 157x111-shaped cell around it
        cw = round(ch * 157 / 111)
        cell = photo[max(cy - ch // 2, 0):cy + ch // 2, max(cx - cw // 2, 0):cx + cw // 2]
        for name, picture in (("tight", tight), ("cell", cell)):
            if prepare(picture, WHOLE).mnist is None:
                missed.append((str(path.relative_to(REAL)), name))
    assert not missed, missed


def test_real_photos_touch_edge_and_too_large_only_inside_a_larger_frame() -> None:
    """"touches edge" and "too large" still mean cut off by, or filling, a region inside a larger frame: a real
    photo's digit across the camera region's edge, or over 95 % of it, is refused; the same digit on its own
    is read."""
    path, _ = _real_photos()[0]
    photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
    prep = prepare(photo, WHOLE)
    assert prep.mnist is not None and prep.box is not None
    x, y, w, h = prep.box
    digit = cv2.resize(photo[y:y + h, x:x + w], (200, 240))
    frame = np.full((480, 640, 3), int(np.median(photo)), np.uint8)
    frame[30:270, 90:290] = digit  # across the top-left corner of the central 288 x 288 region
    assert prepare(frame, PreprocessConfig(reading=ReadingSettings(roi=0.6))).reason == "touches edge"
    assert prepare(frame[30:270, 90:290], WHOLE).mnist is not None
    # "too large": the digit's box over 95 % of a camera region without reaching its edge; alone, it is a digit
    side = 288  # the central square of a 640x480 frame at roi 0.6
    big = cv2.resize(photo[y:y + h, x:x + w], (round(0.97 * side * w / max(w, h)), round(0.97 * side * h / max(w, h))))
    frame = np.full((480, 640, 3), int(np.median(photo)), np.uint8)
    bh, bw = big.shape[:2]
    frame[240 - bh // 2:240 - bh // 2 + bh, 320 - bw // 2:320 - bw // 2 + bw] = big
    assert prepare(frame, PreprocessConfig(reading=ReadingSettings(roi=0.6))).reason == "too large"
    assert prepare(big, WHOLE).mnist is not None


def test_predict_reads_a_folder_of_folders_and_live_an_image_whole(tmp_path: Path, tiny_onnx: Path) -> None:
    """`predict FOLDER` looks into subfolders (one per person) and reads each photo whole; so does `live` on an
    image, by default (the CLI as a user runs it), while a video's frames are read in their central square."""
    import json

    from helpers import invoke

    for person, seed in (("ann", 1), ("bob", 2)):
        (tmp_path / "photos" / person).mkdir(parents=True)
        photo = sheet(160, 120, seed=seed)
        cv2.ellipse(photo, (60, 80), (56, 76), 0, 0, 360, (40, 40, 40), 9)  # a 0 framed tightly
        assert cv2.imwrite(str(tmp_path / "photos" / person / "0_tight.png"), photo)
    result = invoke("predict", tmp_path / "photos", "--model", tiny_onnx, "--rand", 2, "--labels", "names",
                    "--report", tmp_path / "report")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2 and all('"found": true' in line for line in lines)
    assert any(row.startswith(str(tmp_path / "photos" / "ann")) for row in result.stderr.splitlines())

    def live(source: Path, *options: object) -> list[dict]:
        done = invoke("live", "--source", source, "--model", tiny_onnx, "--no-window", "--rand", 1, *options)
        assert done.exit_code == 0, done.output
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

    image = tmp_path / "photos" / "ann" / "0_tight.png"
    for source in (image, tmp_path / "photos"):  # an image, a folder of them: the whole picture, as predict
        readings = live(source)
        assert readings and all(r["found"] and r["box"][2] >= 110 for r in readings)  # the whole 0
    assert not live(image, "--roi", 0.6)[0]["found"]  # asked for the camera's central square: the 0 is cut off
    video = tmp_path / "tight.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (120, 160))
    for _ in range(3):
        writer.write(photo)
    writer.release()
    readings = live(video)  # a video's frames are scenes: their central 0.6 square cuts the 0
    assert len(readings) == 3 and not any(r["found"] for r in readings)
