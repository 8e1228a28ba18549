"""The reader API: `load` a model once, then `read` camera frames or `predict` batches of 28x28 images.

    reader = digitsum_edge.load("runs/model.onnx")      # provider "auto": CUDA when usable, else CPU
    reading = reader.read(frame_bgr, rand=7)             # Reading: digit, sum, confidences, box, ms
    prediction = reader.predict(images, rand=3)          # Prediction: digits and sums as arrays

Everything the reader needs comes from the .onnx file and its metadata; torch is never imported.
A reading whose digit confidence is below `min_confidence` is marked `uncertain` (JSON and overlay), so a
smudge or a badly lit digit shows as a guess instead of a confident wrong digit.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np

from digitsum_edge import onnx_contract
from digitsum_edge.errors import DigitsumError, InvalidInput
from digitsum_edge.runtime import defaults
from digitsum_edge.runtime.defaults import MIN_CONFIDENCE
from digitsum_edge.runtime.preprocess import Prepared, PreprocessConfig, Rect, prepare
from digitsum_edge.runtime.session import LoadedModel, open_model


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
    uncertain: bool = False  # a digit was found but read with less than the reader's min_confidence

    def to_dict(self) -> dict:
        """The reading's fields of a `live` / `predict` JSON line (which adds frame, source and provider)."""
        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 4)

        return {"found": self.found, "digit": self.digit, "digit_confidence": r(self.digit_confidence),
                "rand": self.rand, "sum": self.sum, "sum_confidence": r(self.sum_confidence),
                "ms": round(self.ms, 3), "box": list(self.box) if self.found and self.box else None,
                "reason": self.reason or None, "uncertain": self.uncertain}


def json_line(frame: int, source: str, reading: Reading, provider: str) -> dict:
    """One line of `live` and `predict` output: frame number and source, the reading, the provider."""
    return {"frame": frame, "source": source, **reading.to_dict(), "provider": provider}


@dataclass
class Prediction:
    """A batch of 28x28 images read at once."""

    digits: np.ndarray  # (N,) int64
    sums: np.ndarray  # (N,) int64, digit + rand as the sum head reads it
    digit_probs: np.ndarray  # (N, 10) float64
    sum_probs: np.ndarray  # (N, 19) float64

    @classmethod
    def from_logits(cls, digit_logits: np.ndarray, sum_logits: np.ndarray) -> Prediction:
        """From the model's (N, 10) and (N, 19) logits."""
        digit_probs, sum_probs = softmax(digit_logits), softmax(sum_logits)
        return cls(digit_probs.argmax(1), sum_probs.argmax(1), digit_probs, sum_probs)

    @property
    def digit_confidences(self) -> np.ndarray:
        return self.digit_probs.max(axis=1)

    @property
    def sum_confidences(self) -> np.ndarray:
        return self.sum_probs.max(axis=1)


class DigitReader:
    """Preprocess a camera frame and run the ONNX model on it; normalisation comes from the file's metadata."""

    def __init__(self, model: LoadedModel, preprocess: PreprocessConfig | None = None,
                 min_confidence: float = MIN_CONFIDENCE):
        self.model = model
        self.preprocess = preprocess or PreprocessConfig()
        self.min_confidence = min_confidence  # readings below it are marked uncertain
        info = model.info
        self._rand = np.zeros(1, np.int64)
        if info.input_size != onnx_contract.IMAGE_SIZE:
            raise DigitsumError(f"{model.path} wants {info.input_size}x{info.input_size} images; "
                                "the camera pipeline makes 28x28")
        self.classify(np.zeros((28, 28), np.uint8), 0)  # warm-up: the first run allocates, keep it off frame 0

    @property
    def provider(self) -> str:
        """"cuda" or "cpu": where onnxruntime really runs the model."""
        return self.model.provider

    def check_rand(self, rand: int) -> int:
        """rand must be an integer in 0 .. num_rand-1 of this model."""
        onnx_contract.check_rand(rand, self.model.info.num_rand)
        return int(rand)

    def classify(self, mnist: np.ndarray, rand: int) -> tuple[np.ndarray, np.ndarray]:
        """(28, 28) uint8 white-on-black -> digit probabilities (10,) and sum probabilities (19,)."""
        info = self.model.info
        image = onnx_contract.normalize(mnist[None, None], info.mean, info.std)  # (1, 1, 28, 28) float32
        self._rand[0] = rand
        digit_logits, sum_logits = self.model.session.run(list(onnx_contract.OUTPUTS),
                                                          {"image": image, "rand": self._rand})
        return softmax(digit_logits[0]), softmax(sum_logits[0])

    def predict(self, images: np.ndarray, rand: int | np.ndarray) -> Prediction:
        """A batch of MNIST-like images, uint8 (N, 28, 28) white on black, with one rand or one per image."""
        info = self.model.info
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        size = info.input_size
        if images.ndim != 3 or images.shape[1:] != (size, size) or images.dtype != np.uint8:
            raise InvalidInput(f"images must be uint8 (N, {size}, {size}), got {images.dtype} {images.shape}")
        rands = np.broadcast_to(np.asarray(rand), (len(images),)) if np.ndim(rand) == 0 else np.asarray(rand)
        if rands.shape != (len(images),):
            raise InvalidInput(f"rand must be one integer or one per image ({len(images)}), got shape {rands.shape}")
        onnx_contract.check_rand(rands, info.num_rand)
        digit_logits, sum_logits = self.model.session.run(list(onnx_contract.OUTPUTS), {
            "image": onnx_contract.normalize(images[:, None], info.mean, info.std),
            "rand": rands.astype(np.int64)})
        return Prediction.from_logits(digit_logits, sum_logits)

    def read(self, frame_bgr: np.ndarray, rand: int) -> Reading:
        """Find the digit in the frame's region of interest and read it, with `rand` added."""
        rand = self.check_rand(rand)
        if not isinstance(frame_bgr, np.ndarray) or frame_bgr.dtype != np.uint8 or frame_bgr.ndim not in (2, 3) \
                or min(frame_bgr.shape[:2]) < 1 or (frame_bgr.ndim == 3 and frame_bgr.shape[2] not in (1, 3, 4)):
            raise InvalidInput("frame must be a uint8 image array, (H, W) gray or (H, W, 3) BGR, got "
                               f"{getattr(frame_bgr, 'dtype', type(frame_bgr).__name__)} "
                               f"{getattr(frame_bgr, 'shape', '')}")
        started = time.perf_counter()
        prep = prepare(frame_bgr, self.preprocess)
        return self.reading(prep, rand, started, None if prep.mnist is None else self.classify(prep.mnist, rand))

    def reading(self, prep: Prepared, rand: int, started: float,
                probs: tuple[np.ndarray, np.ndarray] | None = None) -> Reading:
        """The Reading of a prepared frame: `probs` (digit and sum probabilities) when it holds a digit; `ms`
        counts from `started` (before preprocessing) to now."""
        ms = (time.perf_counter() - started) * 1e3
        if prep.mnist is None:
            return Reading(False, rand, ms, prep.roi, prep.box, reason=prep.reason)
        assert probs is not None, "a frame with a digit is read with its probabilities"
        return finish(Reading(True, rand, ms, prep.roi, prep.box, prep.mnist), *probs, self.min_confidence)

    def with_rand(self, reading: Reading, rand: int) -> Reading:
        """The same frame read again with another rand (the model only, not the preprocessing)."""
        rand = self.check_rand(rand)
        if not reading.found:
            return replace(reading, rand=rand)
        started = time.perf_counter()
        assert reading.mnist is not None  # a found digit always has its 28x28 image
        digit_probs, sum_probs = self.classify(reading.mnist, rand)
        ms = reading.ms + (time.perf_counter() - started) * 1e3
        return finish(replace(reading, rand=rand, ms=ms), digit_probs, sum_probs, self.min_confidence)


def finish(reading: Reading, digit_probs: np.ndarray, sum_probs: np.ndarray,
           min_confidence: float = MIN_CONFIDENCE) -> Reading:
    """Fill the digit, sum, confidences and `uncertain` (digit confidence below min_confidence) from
    probabilities."""
    reading.digit_probs, reading.sum_probs = digit_probs, sum_probs
    reading.digit = int(digit_probs.argmax())
    reading.digit_confidence = float(digit_probs[reading.digit])
    reading.sum = int(sum_probs.argmax())
    reading.sum_confidence = float(sum_probs[reading.sum])
    reading.uncertain = reading.digit_confidence < min_confidence
    return reading


class Smoother:
    """Average the probabilities of the last `frames` readings of one digit with one rand (live view)."""

    def __init__(self, frames: int, min_confidence: float = MIN_CONFIDENCE):
        self.frames = frames
        self.min_confidence = min_confidence
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
        assert reading.digit_probs is not None and reading.sum_probs is not None  # set by finish()
        self._history = [*self._history[-(self.frames - 1):], (reading.digit_probs, reading.sum_probs)]
        digit_probs = np.mean([d for d, _ in self._history], axis=0)
        sum_probs = np.mean([s for _, s in self._history], axis=0)
        return finish(reading, digit_probs, sum_probs, self.min_confidence)


class RandPicker:
    """A fixed rand, or a new random one for every new digit (after a gap, or when the digit changes)."""

    def __init__(self, fixed: int | None, seed: int | None, num_rand: int = onnx_contract.NUM_RAND):
        self.rng = np.random.default_rng(seed)
        self.num_rand = num_rand
        self.auto = fixed is None
        self.value = self.draw() if fixed is None else fixed
        self._last: int | None = None

    def draw(self) -> int:
        self.value = int(self.rng.integers(0, self.num_rand))
        return self.value

    def update(self, reader: DigitReader, reading: Reading) -> Reading:
        """After a frame: draw a new rand if a new digit showed up, and re-read it with that rand."""
        if not self.auto:
            return reading
        if not reading.found:
            if self._last is not None:
                self.draw()  # the digit left: the next one gets a new rand
            self._last = None
            return reading
        if self._last is not None and reading.digit != self._last:
            reading = reader.with_rand(reading, self.draw())
        self._last = reading.digit
        return reading


def load(model: str | os.PathLike, provider: str = "auto", threads: int | None = None, roi: float = defaults.ROI,
         ink: str = defaults.INK, min_confidence: float = MIN_CONFIDENCE) -> DigitReader:
    """Open a digitsum-edge .onnx file once and return a reader for camera frames and image batches.

    provider: "auto" (CUDA when onnxruntime can really use it, else CPU), "cuda" or "cpu". threads:
    onnxruntime intra-op threads (None: its default). roi: side of the central square of a frame that
    is read, as a fraction of the shorter side. ink: "dark" on light paper, "light" on dark, or "auto".
    min_confidence: a digit read with less confidence than this is marked uncertain.
    A file that is not a digitsum-edge model raises DigitsumError with one clear line.
    """
    defaults.check_reading(roi, ink, min_confidence)
    return DigitReader(open_model(model, provider, threads), PreprocessConfig(roi=roi, ink=ink), min_confidence)
