"""The annotated frame: region read, digit box, the 28x28 model input enlarged, digit, rand, sum, speed; in a still,
the other candidate marks (grey boxes with their digit, confidence and score, vision/stills.py).

Region colour: green, a digit read; yellow, a digit read with less than --min-confidence (shown with a
question mark and "uncertain"); amber, no digit.
"""

from __future__ import annotations

import cv2
import numpy as np

from digitsum_edge.apps.reader import Reading

GREEN, AMBER, CYAN, WHITE, GREY = (80, 220, 80), (0, 170, 255), (255, 220, 0), (255, 255, 255), (170, 170, 170)
YELLOW = (0, 230, 255)  # an uncertain reading
FONT = cv2.FONT_HERSHEY_SIMPLEX
KEYS = "q quit | 0-9 rand | r random | space pause | s snapshot"


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int],
          thickness: int = 1) -> int:
    """Anti-aliased text with a dark outline; returns its width in pixels."""
    if thickness > 1:  # an outline keeps large text readable on any background; small text sits on the band
        cv2.putText(image, text, org, FONT, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, org, FONT, scale, colour, thickness, cv2.LINE_AA)
    return cv2.getTextSize(text, FONT, scale, thickness)[0][0]


def _pct(value: float | None) -> str:
    return "" if value is None else f" {100 * value:.0f}%"


def draw(frame: np.ndarray, reading: Reading, fps: float | None = None, paused: bool = False,
         provider: str = "", keys: bool = False) -> np.ndarray:
    """A copy of the (H, W, 3) BGR frame with the reading drawn on it."""
    out = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    h, w = out.shape[:2]
    u = max(0.5, min(h, w * 0.75) / 480)  # layout unit: 1 at 640x480
    line = max(1, round(2 * u))

    x, y, rw, rh = reading.region
    region = (YELLOW if reading.uncertain else GREEN) if reading.found else AMBER
    cv2.rectangle(out, (x, y), (x + rw - 1, y + rh - 1), region, line, cv2.LINE_AA)
    for c in reading.candidates:  # a still's other digit-like marks, with their digit and score
        if c["chosen"]:
            continue
        cx, cy, cw, ch = c["box"]
        cv2.rectangle(out, (cx, cy), (cx + cw - 1, cy + ch - 1), GREY, 1, cv2.LINE_AA)
        said = f"{c['digit']} {100 * c['confidence']:.0f}%" if c["digit"] is not None else c["reason"] or ""
        _text(out, f"{said} score {c['score']:.2f}", (cx, max(cy - 4, 12)), 0.4 * u, GREY)
    if reading.box is not None:
        bx, by, bw, bh = reading.box
        cv2.rectangle(out, (bx, by), (bx + bw - 1, by + bh - 1), CYAN if reading.found else GREY, 1, cv2.LINE_AA)

    side = round(112 * u)  # the 28x28 model input, 4x
    if side + 20 * u < h * 0.6 and side * 2 < w:
        pad = round(10 * u)
        inset = reading.mnist if reading.mnist is not None else np.zeros((28, 28), np.uint8)
        big = cv2.cvtColor(cv2.resize(inset, (side, side), interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
        out[pad:pad + side, pad:pad + side] = big
        cv2.rectangle(out, (pad - 1, pad - 1), (pad + side, pad + side), WHITE, 1)
        label_y = pad + side + round(18 * u)
        cv2.rectangle(out, (pad - 1, pad + side + 1), (pad + side, label_y + round(6 * u)), (0, 0, 0), cv2.FILLED)
        _text(out, "model input", (pad + round(4 * u), label_y), 0.45 * u, WHITE)

    band = round(78 * u)  # a dark band at the bottom for the readout
    out[h - band:] = (out[h - band:] * 0.3).astype(np.uint8)
    big, small = 0.75 * u, 0.45 * u
    thick = max(1, round(2 * u))
    ty = h - band + round(32 * u)
    tx = round(12 * u)
    if reading.found and reading.uncertain:  # a guess, not a confident digit
        tx += _text(out, f"digit {reading.digit}?{_pct(reading.digit_confidence)}", (tx, ty), big, YELLOW, thick)
        tx += _text(out, f" + {reading.rand} = {reading.sum}?", (tx, ty), big, WHITE, thick)
        _text(out, "  uncertain", (tx, ty), big * 0.8, YELLOW, thick)
    elif reading.found:
        tx += _text(out, f"digit {reading.digit}{_pct(reading.digit_confidence)}", (tx, ty), big, GREEN, thick)
        tx += _text(out, f"  + rand {reading.rand}  = ", (tx, ty), big, WHITE, thick)
        _text(out, f"sum {reading.sum}{_pct(reading.sum_confidence)}", (tx, ty), big, CYAN, thick)
    else:
        why = f" ({reading.reason})" if reading.reason else ""
        tx += _text(out, f"no digit{why}", (tx, ty), big, AMBER, thick)
        _text(out, f"   rand {reading.rand}", (tx, ty), big, WHITE, thick)
    status = [f"{fps:.1f} fps" if fps else "", f"{reading.ms:.2f} ms read", provider, "PAUSED" if paused else ""]
    _text(out, " | ".join(s for s in status if s), (round(12 * u), h - band + round(56 * u)), small, WHITE)
    if keys:
        _text(out, KEYS, (round(12 * u), h - band + round(72 * u)), small * 0.9, GREY)
    return out


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` scaled to fit `size` (W, H) whole, its aspect kept, centred on black: a video has one frame size."""
    h, w = image.shape[:2]
    if (w, h) == size:
        return image
    scale = min(size[0] / w, size[1] / h)
    fit = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((size[1], size[0], 3), np.uint8)
    y, x = (size[1] - fit.shape[0]) // 2, (size[0] - fit.shape[1]) // 2
    out[y:y + fit.shape[0], x:x + fit.shape[1]] = fit
    return out
