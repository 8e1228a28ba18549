"""How a frame is read by default, owned here alone and importable without numpy or OpenCV.

The CLI's options (`live`, `predict`, `serve`), the preprocessing config, the reader API and the serve page
(which gets them as JSON from GET /v1/model) all read these; nothing else spells them.
"""

from __future__ import annotations

ROI = 0.6  # side of the central square of a camera frame that is read, as a fraction of the shorter side
STILL_ROI = 1.0  # a still image (`predict`) is usually framed on the digit: read all of it
INKS = ("auto", "dark", "light")  # dark ink on light paper, light ink on dark, or decided per frame
INK = "auto"
MIN_CONFIDENCE = 0.5  # a digit read with less confidence is reported as uncertain (docs/commands/live.md)


def check_reading(roi: float, ink: str, min_confidence: float, rand: int | None = None) -> None:
    """roi in (0, 1], ink one of INKS, min_confidence in [0, 1], rand None or 0-9; else one InvalidInput naming
    the argument (live, predict and serve check their options with it before any file is opened)."""
    from digitsum_edge.errors import InvalidInput

    if rand is not None:
        from digitsum_edge.onnx_contract import check_rand

        check_rand(rand)
    if not 0 < roi <= 1:
        raise InvalidInput(f"roi must be in (0, 1], got {roi}")
    if not 0 <= min_confidence <= 1:
        raise InvalidInput(f"min_confidence must be in [0, 1], got {min_confidence}")
    if ink not in INKS:
        raise InvalidInput(f"ink must be one of {', '.join(INKS)}, got {ink!r}")


def as_json() -> dict:
    """The defaults as the serve page reads them."""
    return {"roi": ROI, "ink": INK, "inks": list(INKS), "min_confidence": MIN_CONFIDENCE}
