"""digitsum-edge: read a handwritten digit, add a number to it, on the edge.

    import digitsum_edge
    reader = digitsum_edge.load()                   # runs/model.onnx if it exists, else the built-in model
    reader = digitsum_edge.load("runs/model.onnx", provider="auto")
    reader = digitsum_edge.load(settings=digitsum_edge.ReadingSettings(roi=1.0, ink="dark"))  # how it reads
    reading = reader.read(frame_bgr, rand=7)        # a camera frame -> Reading (digit, sum, confidences, box)
    prediction = reader.predict(images, rand=3)     # uint8 (N, 28, 28) -> Prediction (digits, sums)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.3.0"
__all__ = ["DigitReader", "DigitsumError", "InvalidInput", "Prediction", "Reading", "ReadingSettings", "__version__",
           "load"]

if TYPE_CHECKING:
    from digitsum_edge.apps.reader import DigitReader, Prediction, Reading, load
    from digitsum_edge.errors import DigitsumError, InvalidInput
    from digitsum_edge.vision.settings import ReadingSettings


def __getattr__(name: str) -> object:
    """The public names, imported on first use: `import digitsum_edge` (and the CLI's --help) stays instant."""
    if name in ("DigitsumError", "InvalidInput"):
        from digitsum_edge import errors

        return getattr(errors, name)
    if name == "ReadingSettings":
        from digitsum_edge.vision.settings import ReadingSettings

        return ReadingSettings
    if name in ("DigitReader", "Prediction", "Reading", "load"):
        from digitsum_edge.apps import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'digitsum_edge' has no attribute {name!r}")
