"""The live window for real, under a virtual X display (Xvfb): a video played in it to its end, and a
screenshot of the window checked against the frame and the overlay it must show.

Skipped, with the reason, where Xvfb is not installed (`scripts/install-test-deps.sh` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitsum_edge.synth.frames import pick_digits, write_images, write_video
from helpers import ctrl_c_works

SCREEN = (800, 600)  # the Xvfb screen, width x height: room for the 640x480 window and its frame
FRAME = (640, 480)  # synth frames, width x height; the window shows them 1:1
# What apps/overlay.py draws on a 640x480 frame, in RGB as the screenshot is (its colours are BGR).
GREEN, CYAN, WHITE = (80, 220, 80), (0, 220, 255), (255, 255, 255)
ROI = (176, 96, 288)  # --roi 0.6: the region read, a 288-pixel square at (176, 96), drawn green when found
INSET = (10, 112)  # the 28x28 model input, 4x (112x112) at (10, 10), in a white frame
BAND = 78  # the readout band: the bottom 78 rows, darkened to 30 %
NO_XVFB = ("Xvfb is not installed (scripts/install-test-deps.sh, as root with apt-get, installs it); "
           "the window is tested only under it")

# Checked here too, before the session's tiny model is trained for tests that would be skipped anyway.
pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None, reason=NO_XVFB)


@pytest.fixture
def xvfb_display() -> Iterator[str]:
    """Start Xvfb on a free display number (it reports the number itself) and stop it afterwards."""
    if shutil.which("Xvfb") is None:
        pytest.skip(NO_XVFB)
    read_end, write_end = os.pipe()
    # -noreset: by default the server resets when its last client leaves (the window probe of `live`, a
    # screenshot), and a client connecting meanwhile is refused
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                               "-nolisten", "tcp", "-noreset"], pass_fds=(write_end,), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as pipe:
            number = pipe.readline().strip()  # written once the server accepts connections
        if not number:
            pytest.skip("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def live_command(source: Path, model: Path, *options: object) -> list[str]:
    """`digitsum-edge live --window` on SOURCE, as a user runs it."""
    return [sys.executable, "-c", "from digitsum_edge.cli import main; main()", "live", "--window",
            "--source", str(source), "--model", str(model), *map(str, options)]


def window_env(display: str) -> dict[str, str]:
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    return env


def grab(display: str) -> np.ndarray:
    """The whole X screen, (H, W, 3) uint8 RGB, through Pillow's XCB screen grab."""
    from PIL import ImageGrab

    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))


def wait_for_window(display: str, background: np.ndarray, live: subprocess.Popen, timeout: float = 60.0,
                    fail: bool = True) -> tuple[np.ndarray, tuple[int, int]] | None:
    """The screen once a frame-sized window shows the same picture in two grabs; (screen, window's x, y). After
    `timeout` s without it: the test fails, saying what live said, or (fail=False) None, live left running."""
    deadline, last, seen = time.monotonic() + timeout, None, "nothing"
    while time.monotonic() < deadline:
        if live.poll() is not None:
            pytest.fail(f"live exited ({live.returncode}) before its window showed: {live.communicate()[1]}")
        screen = grab(display)
        ys, xs = np.nonzero(np.any(screen != background, axis=2))
        if len(xs):
            x, y, size = int(xs.min()), int(ys.min()), (int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
            seen = f"a {size[0]}x{size[1]} region at ({x}, {y})"
            if size == FRAME and last is not None and np.array_equal(screen, last):
                return screen, (x, y)
        last = screen
        time.sleep(0.1)
    if not fail:
        return None
    live.send_signal(signal.SIGINT)  # say what live said about it
    try:
        said = live.communicate(timeout=10)[1]
    except subprocess.TimeoutExpired:
        live.kill()
        said = live.communicate()[1]
    pytest.fail(f"no {FRAME[0]}x{FRAME[1]} window on the display within {timeout:.0f} s; it showed {seen}; "
                f"live said: {said.strip()[-800:]!r}")


def near(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int) -> np.ndarray:
    """Pixels (..., 3) within `tolerance` of `colour` in every channel."""
    return np.all(np.abs(pixels.astype(int) - colour) <= tolerance, axis=-1)


def rectangle_drawn(window: np.ndarray, rect: tuple[int, int, int, int], colour: tuple[int, int, int],
                    tolerance: int) -> float:
    """The smallest fraction, over the four sides of rect (x, y, w, h), of points drawn in `colour`
    (within 2 pixels across the side: lines are anti-aliased)."""
    x, y, w, h = rect
    x1, y1 = x + w - 1, y + h - 1
    sides = [window[y - 2:y + 3, x + 4:x1 - 3], window[y1 - 2:y1 + 3, x + 4:x1 - 3],  # rows across: axis 0
             window[y + 4:y1 - 3, x - 2:x + 3].swapaxes(0, 1), window[y + 4:y1 - 3, x1 - 2:x1 + 3].swapaxes(0, 1)]
    return min(float(near(side, colour, tolerance).any(axis=0).mean()) for side in sides)


def check_window(window: np.ndarray, frame: np.ndarray, box: list[int]) -> None:
    """The (480, 640, 3) RGB window shows `frame` 1:1 with the overlay of a found digit in `box` on it."""
    height, width = frame.shape[:2]
    assert window.std() > 10 and len(np.unique(window.reshape(-1, 3), axis=0)) > 1000, "the window is blank"

    # The frame itself, pixel for pixel, wherever the overlay draws nothing.
    untouched = np.ones((height, width), bool)
    untouched[:INSET[0] + INSET[1] + 40, :INSET[0] + INSET[1] + 10] = False  # model input and its label
    untouched[height - BAND:] = False
    rx, ry, side = ROI
    for x, y, w, h, margin in ((rx, ry, side, side, 4), (*box, 3)):
        untouched[y - margin:y + h + margin, x - margin:x + w + margin] = False
        untouched[y + margin:y + h - margin, x + margin:x + w - margin] = True
    difference = np.abs(window.astype(int) - frame)[untouched].max()
    assert difference <= 2, f"the window is not the frame 1:1 outside the overlay (differs by up to {difference})"

    # The region read, green (a digit was found), and the digit's box, cyan.
    assert rectangle_drawn(window, (rx, ry, side, side), GREEN, 30) > 0.95, "no green region box"
    assert rectangle_drawn(window, tuple(box), CYAN, 50) > 0.9, "no cyan digit box"

    # The readout band: the frame darkened to 30 % under green (digit), white and cyan (sum) text.
    band, under = window[height - BAND:].astype(int), frame[height - BAND:].astype(int)
    assert band.mean() < 0.4 * under.mean() + 5, "no dark readout band"
    assert np.mean(np.abs(band - (under * 0.3).astype(int)).max(axis=2) <= 2) > 0.7, "the band is not the frame dimmed"
    for colour, name in ((GREEN, "green digit"), (WHITE, "white rand"), (CYAN, "cyan sum")):
        assert near(band, colour, 40).sum() > 40, f"no {name} text in the readout band"

    # The model input: a 28x28 grey image enlarged 4x (4x4 blocks of one grey), dark ground and bright
    # strokes, inside a white frame.
    pad, size = INSET
    inset = window[pad:pad + size, pad:pad + size].astype(int)
    assert (inset.max(axis=2) - inset.min(axis=2)).max() <= 2, "the model input is not grey"
    blocks = inset[..., 1].reshape(28, 4, 28, 4)
    assert (blocks.max(axis=(1, 3)) - blocks.min(axis=(1, 3))).max() <= 2, "the model input is not 28x28 enlarged 4x"
    assert np.mean(inset < 60) > 0.3 and np.mean(inset > 180) > 0.03, "the model input shows no digit"
    border = np.concatenate([window[pad - 1, pad - 1:pad + size + 1], window[pad + size, pad - 1:pad + size + 1],
                             window[pad - 1:pad + size + 1, pad - 1], window[pad - 1:pad + size + 1, pad + size]])
    assert near(border, WHITE, 2).all(), "no white frame around the model input"


def test_window_mode_plays_a_video_to_its_end(xvfb_display: str, tiny_onnx: Path, tmp_path: Path) -> None:
    video = tmp_path / "short.mp4"
    digits, labels = pick_digits(3, seed=8)
    write_video(video, digits, labels, seed=8, fps=30, hold=4)
    out = tmp_path / "window.jsonl"
    done = subprocess.run(live_command(video, tiny_onnx, "--rand", 4, "--jsonl", out), env=window_env(xvfb_display),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "| window" in done.stderr and "Traceback" not in done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 12 and all(line["rand"] == 4 for line in lines)


def test_window_screenshot_shows_the_frame_and_the_reading(xvfb_display: str, tiny_onnx: Path,
                                                           tmp_path: Path) -> None:
    """A still image waits in the window (paused) until a key; the test grabs the screen, then Ctrl-C ends it.

    The window (640x480, cropped from the screen) is saved as tmp_path/window.png, and copied to
    $DIGITSUM_SCREENSHOT when that is set and the checks passed (to refresh docs/live.png).
    """
    from PIL import Image, features

    if not features.check("xcb"):
        pytest.skip("Pillow was built without XCB: it cannot grab the X screen")
    digits, labels = pick_digits(1, seed=3)  # a 3 that the region finder finds (found depends on no model)
    names = write_images(tmp_path / "still", digits, labels, seed=3)
    image = tmp_path / "still" / next(iter(names))
    frame = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
    assert frame.shape == (FRAME[1], FRAME[0], 3)
    background = grab(xvfb_display)
    # Now and then a Qt window under Xvfb is mapped but never painted on a busy CPU (a bare OpenCV window too,
    # without this project's code): then live is stopped and started once more.
    for attempt in (1, 2):
        out = tmp_path / f"still{attempt}.jsonl"
        live = subprocess.Popen(live_command(image, tiny_onnx, "--rand", 7, "--roi", 0.6, "--jsonl", out),
                                env=window_env(xvfb_display), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, preexec_fn=ctrl_c_works)
        try:
            shown = wait_for_window(xvfb_display, background, live, timeout=30 if attempt == 1 else 60,
                                    fail=attempt == 2)
        finally:
            if live.poll() is None:
                live.send_signal(signal.SIGINT)  # Ctrl-C: ends the run, keeping what it read
            try:
                stderr = live.communicate(timeout=30)[1]
            except subprocess.TimeoutExpired:
                live.kill()
                stderr = live.communicate()[1]
        if shown is not None:
            break
        print("the window was not painted within 30 s: live started once more")
    assert shown is not None
    screen, (x, y) = shown
    window = screen[y:y + FRAME[1], x:x + FRAME[0]]
    Image.fromarray(screen).save(tmp_path / "screen.png")
    Image.fromarray(window).save(tmp_path / "window.png")

    lines = stderr.strip().splitlines()
    assert live.returncode == 130, stderr
    assert "Traceback" not in stderr and [line for line in lines if line.startswith("error:")] == lines[-1:], stderr
    assert lines[-1].startswith("error: interrupted after 1 frames; kept"), stderr
    reading = json.loads(out.read_text())  # one line: the one frame
    assert reading["found"] and reading["rand"] == 7, reading
    check_window(window, frame, reading["box"])

    if os.environ.get("DIGITSUM_SCREENSHOT"):
        shutil.copyfile(tmp_path / "window.png", os.environ["DIGITSUM_SCREENSHOT"])
