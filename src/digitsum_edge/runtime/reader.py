"""One frame and one rand -> a Reading: the digit, digit + rand, their confidences, and the time it took."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from digitsum_edge.errors import DigitsumError
from digitsum_edge.runtime.preprocess import PreprocessConfig, Rect, prepare
from digitsum_edge.runtime.session import LoadedModel


def check_options(rand: int | None, roi: float, ink: str) -> None:
    """Reject a bad --rand, --roi or --ink (shared by live and predict) before any model or file is opened."""
    if rand is not None and not 0 <= rand <= 9:
        raise DigitsumError(f"--rand must be in 0-9, got {rand}")
    if not 0 < roi <= 1:
        raise DigitsumError(f"--roi must be in (0, 1], got {roi}")
    if ink not in ("dark", "light", "auto"):
        raise DigitsumError(f"--ink must be dark, light or auto, got {ink!r}")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64 for stable confidences."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@dataclass
class Reading:
    """What the model read in one frame; digit fields are None when no digit was found."""

    found: bool
    rand: int
    ms: float  # preprocessing + inference, milliseconds
    roi: Rect  # the region read, (x, y, w, h) in frame pixels
    box: Rect | None = None  # the digit's bounding box in frame pixels
    mnist: np.ndarray | None = None  # (28, 28) uint8, what the model saw
    digit: int | None = None
    digit_confidence: float | None = None
    sum: int | None = None
    sum_confidence: float | None = None
    reason: str = ""  # why no digit was found
    digit_probs: np.ndarray | None = None  # (10,) float64
    sum_probs: np.ndarray | None = None  # (19,) float64

    def to_json(self, frame: int, source: str, provider: str) -> dict:
        """The JSON line of `live` and `predict`."""
        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 4)

        return {"frame": frame, "source": source, "found": self.found, "digit": self.digit,
                "digit_confidence": r(self.digit_confidence), "rand": self.rand, "sum": self.sum,
                "sum_confidence": r(self.sum_confidence), "ms": round(self.ms, 3),
                "box": list(self.box) if self.found and self.box else None,
                "reason": self.reason or None, "provider": provider}


class DigitReader:
    """Preprocess a camera frame and run the ONNX model on it; normalisation comes from the file's metadata."""

    def __init__(self, model: LoadedModel, preprocess: PreprocessConfig | None = None):
        self.model = model
        self.preprocess = preprocess or PreprocessConfig()
        info = model.info
        self._scale = np.float32(1.0 / (255.0 * info.std))  # image = pixel / (255 std) - mean / std
        self._shift = np.float32(info.mean / info.std)
        self._rand = np.zeros(1, np.int64)
        if info.input_size != 28:
            raise DigitsumError(f"{model.path} wants {info.input_size}x{info.input_size} images; "
                                "the camera pipeline makes 28x28")
        self.classify(np.zeros((28, 28), np.uint8), 0)  # warm-up: the first run allocates, keep it off frame 0

    def check_rand(self, rand: int) -> int:
        """rand must be an integer in 0 .. num_rand-1 of this model."""
        top = self.model.info.num_rand - 1
        if isinstance(rand, bool) or not isinstance(rand, (int, np.integer)) or not 0 <= rand <= top:
            raise DigitsumError(f"rand must be an integer in 0-{top}, got {rand!r}")
        return int(rand)

    def classify(self, mnist: np.ndarray, rand: int) -> tuple[np.ndarray, np.ndarray]:
        """(28, 28) uint8 white-on-black -> digit probabilities (10,) and sum probabilities (19,)."""
        image = mnist.astype(np.float32)[None, None] * self._scale - self._shift  # (1, 1, 28, 28)
        self._rand[0] = rand
        digit_logits, sum_logits = self.model.session.run(None, {"image": image, "rand": self._rand})
        return softmax(digit_logits[0]), softmax(sum_logits[0])

    def read(self, frame_bgr: np.ndarray, rand: int) -> Reading:
        """Find the digit in the frame's region of interest and read it, with `rand` added."""
        rand = self.check_rand(rand)
        started = time.perf_counter()
        prep = prepare(frame_bgr, self.preprocess)
        if prep.mnist is None:
            return Reading(False, rand, (time.perf_counter() - started) * 1e3, prep.roi, prep.box,
                           reason=prep.reason)
        digit_probs, sum_probs = self.classify(prep.mnist, rand)
        ms = (time.perf_counter() - started) * 1e3
        return finish(Reading(True, rand, ms, prep.roi, prep.box, prep.mnist), digit_probs, sum_probs)

    def with_rand(self, reading: Reading, rand: int) -> Reading:
        """The same frame read again with another rand (the model only, not the preprocessing)."""
        rand = self.check_rand(rand)
        if not reading.found:
            return replace(reading, rand=rand)
        started = time.perf_counter()
        digit_probs, sum_probs = self.classify(reading.mnist, rand)
        ms = reading.ms + (time.perf_counter() - started) * 1e3
        return finish(replace(reading, rand=rand, ms=ms), digit_probs, sum_probs)


def finish(reading: Reading, digit_probs: np.ndarray, sum_probs: np.ndarray) -> Reading:
    """Fill the digit, sum and confidences from probabilities."""
    reading.digit_probs, reading.sum_probs = digit_probs, sum_probs
    reading.digit = int(digit_probs.argmax())
    reading.digit_confidence = float(digit_probs[reading.digit])
    reading.sum = int(sum_probs.argmax())
    reading.sum_confidence = float(sum_probs[reading.sum])
    return reading


class Smoother:
    """Average the probabilities of the last `frames` readings of one digit with one rand (live view)."""

    def __init__(self, frames: int):
        self.frames = frames
        self._history: list[tuple[np.ndarray, np.ndarray]] = []
        self._rand: int | None = None

    def __call__(self, reading: Reading) -> Reading:
        if self.frames <= 1:
            return reading
        if not reading.found or reading.rand != self._rand:
            self._history.clear()  # a gap or a new rand starts over
        self._rand = reading.rand
        if not reading.found:
            return reading
        self._history = [*self._history[-(self.frames - 1):], (reading.digit_probs, reading.sum_probs)]
        digit_probs = np.mean([d for d, _ in self._history], axis=0)
        sum_probs = np.mean([s for _, s in self._history], axis=0)
        return finish(reading, digit_probs, sum_probs)
