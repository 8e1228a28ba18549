"""How a frame is read: `ReadingSettings`, the one object for the reading's options, and their defaults. Owned
here alone and importable without numpy or OpenCV (the CLI builds it for --help).

Built and checked once where a read is asked for (the CLI's options of `live`, `predict` and `serve`, an API
call's `digitsum_edge.load(...)`, serve's config), then passed whole: to the reader, into the preprocessing
(PreprocessConfig.reading), and to the browser as JSON (`as_json`, in the web app's digitsum.json and GET
/v1/model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

ROI = 0.6  # side of the central square of a camera frame that is read, as a fraction of the shorter side
STILL_ROI = 1.0  # a still image (`predict`) is usually framed on the digit: read all of it
INKS = ("auto", "dark", "light")  # dark ink on light paper, light ink on dark, or decided per frame
INK = "auto"
MIN_CONFIDENCE = 0.5  # a digit read with less confidence is reported as uncertain (docs/commands/live.md)


@dataclass(frozen=True)
class ReadingSettings:
    """What a reading depends on besides the model and the picture. A bad value is one InvalidInput naming it,
    raised when the settings are made, before any file is opened."""

    # Side of the square that is read, as a fraction of the picture's shorter side; 1: the whole picture, searched
    # for its digit (a still). None: the source decides (ROI for a camera, a video or a stream, STILL_ROI for an
    # image); a reader given None reads frames as a camera's.
    roi: float | None = None
    ink: str = INK  # "dark" ink on light paper, "light" ink on a dark background, or "auto" per picture
    min_confidence: float = MIN_CONFIDENCE  # a digit read with less confidence is marked uncertain
    search: bool = True  # roi 1: look for the digit anywhere in the picture (vision/stills.py); False: read the
    # whole picture as one region framed on the digit (a crop)

    def __post_init__(self) -> None:
        from digitsum_edge.errors import InvalidInput

        if self.roi is not None and (isinstance(self.roi, bool) or not isinstance(self.roi, (int, float))
                                     or not 0 < self.roi <= 1):
            raise InvalidInput(f"roi must be in (0, 1], got {self.roi!r}")
        if isinstance(self.min_confidence, bool) or not isinstance(self.min_confidence, (int, float)) \
                or not 0 <= self.min_confidence <= 1:
            raise InvalidInput(f"min_confidence must be in [0, 1], got {self.min_confidence!r}")
        if self.ink not in INKS:
            raise InvalidInput(f"ink must be one of {', '.join(INKS)}, got {self.ink!r}")
        if not isinstance(self.search, bool):
            raise InvalidInput(f"search must be true or false, got {self.search!r}")

    def for_source(self, still: bool) -> ReadingSettings:
        """These settings with the roi decided: as given, else STILL_ROI for a still image and ROI otherwise."""
        return self if self.roi is not None else replace(self, roi=STILL_ROI if still else ROI)

    @property
    def fraction(self) -> float:
        """The roi a reader uses: as given, else a camera's."""
        return ROI if self.roi is None else float(self.roi)

    def as_json(self) -> dict:
        """The settings as the browser reads them (the web app's digitsum.json, serve's GET /v1/model)."""
        return {"roi": self.fraction, "ink": self.ink, "inks": list(INKS), "min_confidence": self.min_confidence,
                "search": self.search}


CAMERA = ReadingSettings(roi=ROI)  # a camera's frames: the central square
STILL = ReadingSettings(roi=STILL_ROI)  # a still image: the whole picture, searched
BY_SOURCE = ReadingSettings()  # roi decided by the source (live)
OPTIONS = ("roi", "ink", "min_confidence")  # the settings as a command line or a config file names them, flat


def with_settings(options: Mapping[str, Any], base: ReadingSettings = BY_SOURCE) -> dict[str, Any]:
    """`options` (the CLI's, a Serve builder's arguments) with OPTIONS made into one ReadingSettings under
    "reading", the ones not given from `base`; a bad value is one InvalidInput, here."""
    given = {name: options[name] for name in OPTIONS if name in options}
    return {**{k: v for k, v in options.items() if k not in OPTIONS}, "reading": replace(base, **given)}
