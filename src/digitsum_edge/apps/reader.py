"""The reader API: `load` a model once, then `read` camera frames or `predict` batches of 28x28 images.

    reader = digitsum_edge.load()                       # the built-in model (or load("runs/model.onnx"))
    reading = reader.read(frame_bgr, rand=7)             # Reading: digit, sum, confidences, box, ms
    prediction = reader.predict(images, rand=3)          # Prediction: digits and sums as arrays

Everything the reader needs comes from the .onnx file and its metadata; torch is never imported.
A reading whose digit confidence is below `min_confidence` is marked `uncertain` (JSON and overlay), so a
smudge or a badly lit digit shows as a guess instead of a confident wrong digit.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from digitsum_edge import onnx_contract
from digitsum_edge.engine import builtin
from digitsum_edge.engine.backend import Backend
from digitsum_edge.engine.factory import open_model
from digitsum_edge.errors import DigitsumError, InvalidInput
from digitsum_edge.vision.frame import prepare
from digitsum_edge.vision.preprocess import DEFAULT, Prepared, PreprocessConfig, Rect
from digitsum_edge.vision.settings import BY_SOURCE, MIN_CONFIDENCE, ReadingSettings
from digitsum_edge.vision.stills import Candidate, choice_score, doubtful


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
    ms: float = 0.0  # the whole reading (prepare_ms + infer_ms), milliseconds
    region: Rect = (0, 0, 0, 0)  # the region read, (x, y, w, h) in frame pixels
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
    prepare_ms: float = 0.0  # stage 1, frame -> 28x28
    infer_ms: float = 0.0  # stage 2, the model (in serve: with the wait for a batch)
    candidates: list[dict] = field(default_factory=list)  # a still (roi 1): the groups of marks considered, each
    # with its box, the square read around it, its geometry score, digit and confidence, and which was chosen

    @property
    def roi(self) -> Rect:
        """Deprecated alias of `region` (the pixel rectangle read; `roi` names the fraction in ReadingSettings)."""
        import warnings

        warnings.warn("Reading.roi is renamed Reading.region", DeprecationWarning, stacklevel=2)
        return self.region

    def to_dict(self) -> dict:
        """The reading's fields of a `live` / `predict` JSON line (which adds frame, source and provider)."""
        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 4)

        return {"found": self.found, "digit": self.digit, "digit_confidence": r(self.digit_confidence),
                "rand": self.rand, "sum": self.sum, "sum_confidence": r(self.sum_confidence),
                "ms": round(self.ms, 3), "prepare_ms": round(self.prepare_ms, 3),
                "infer_ms": round(self.infer_ms, 3), "box": list(self.box) if self.found and self.box else None,
                "reason": self.reason or None, "uncertain": self.uncertain, "candidates": self.candidates}


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


@dataclass
class PreparedFrame:
    """The first stage's output: what the preprocessing found, and what it cost."""

    prep: Prepared
    prepare_ms: float  # frame -> 28x28, milliseconds


class DigitReader:
    """A camera frame in three timed stages: `prepare` (frame -> 28x28), `infer` (28x28 -> logits through the
    model's backend) and `reading` (logits -> Reading); `read` runs all three, serve batches between them."""

    def __init__(self, backend: Backend, *, settings: ReadingSettings = BY_SOURCE,
                 tuning: PreprocessConfig = DEFAULT):
        self.backend = backend
        self.settings = settings.for_source(still=False)  # roi None: read frames as a camera's
        self.preprocess = replace(tuning, reading=self.settings)  # what vision/ reads a frame with
        if backend.info.input_size != onnx_contract.IMAGE_SIZE:
            raise DigitsumError(f"{backend.path} wants {backend.info.input_size}x{backend.info.input_size} "
                                "images; the camera pipeline makes 28x28")
        self.infer(np.zeros((1, 28, 28), np.uint8), 0)  # warm-up: the first run allocates, keep it off frame 0

    @property
    def min_confidence(self) -> float:
        """Readings with a digit confidence below it are marked uncertain."""
        return self.settings.min_confidence

    @property
    def info(self) -> onnx_contract.ModelInfo:
        """The model's metadata (normalisation, class counts, rand range, precision, test accuracy)."""
        return self.backend.info

    @property
    def provider(self) -> str:
        """"cuda" or "cpu": where the runtime really runs the model."""
        return self.backend.provider

    def check_rand(self, rand: int) -> int:
        """rand must be an integer in 0 .. num_rand-1 of this model."""
        onnx_contract.check_rand(rand, self.info.num_rand)
        return int(rand)

    def prepare(self, frame_bgr: np.ndarray) -> PreparedFrame:
        """Stage 1: find the digit in the frame's region of interest and make it look like MNIST."""
        if not isinstance(frame_bgr, np.ndarray) or frame_bgr.dtype != np.uint8 or frame_bgr.ndim not in (2, 3) \
                or min(frame_bgr.shape[:2]) < 1 or (frame_bgr.ndim == 3 and frame_bgr.shape[2] not in (1, 3, 4)):
            raise InvalidInput("frame must be a uint8 image array, (H, W) gray or (H, W, 3) BGR, got "
                               f"{getattr(frame_bgr, 'dtype', type(frame_bgr).__name__)} "
                               f"{getattr(frame_bgr, 'shape', '')}")
        started = time.perf_counter()
        prep = prepare(frame_bgr, self.preprocess)
        return PreparedFrame(prep, (time.perf_counter() - started) * 1e3)

    def infer(self, mnist: np.ndarray, rand: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 2: uint8 (N, 28, 28) white-on-black images and one rand or one each -> digit_logits (N, 10),
        sum_logits (N, 19)."""
        return self.backend.logits(mnist, rand)

    def reading(self, framed: PreparedFrame, rand: int, logits: tuple[np.ndarray, np.ndarray] | None = None,
                infer_ms: float = 0.0) -> Reading:
        """Stage 3: the Reading of a prepared frame from its (1, 10) and (1, 19) logits (None: no digit)."""
        prep, prepare_ms = framed.prep, framed.prepare_ms
        chosen = next((c for c in prep.candidates if c.chosen), None)
        if prep.mnist is not None and chosen is not None and chosen.steady is not None:
            assert logits is not None, "a frame with a digit is read with its logits"
            probs = softmax(logits[0][0])
            chosen.digit, chosen.confidence = int(probs.argmax()), float(probs.max())
            if doubtful(chosen, chosen.confidence):  # a still's guide square, unsure: no digit (vision/stills.py)
                chosen.chosen, chosen.prep = False, replace(chosen.prep, reason="unsteady")
                prep = replace(prep, mnist=None, box=None, reason="unsteady")
        reading = Reading(prep.mnist is not None, rand, prepare_ms + infer_ms, prep.region, prep.box, prep.mnist,
                          reason=prep.reason, prepare_ms=prepare_ms, infer_ms=infer_ms,
                          candidates=[c.to_dict() for c in prep.candidates])
        if prep.mnist is None:
            return reading
        assert logits is not None, "a frame with a digit is read with its logits"
        return finish(reading, softmax(logits[0][0]), softmax(logits[1][0]), self.min_confidence)

    def read(self, frame_bgr: np.ndarray, rand: int) -> Reading:
        """Find the digit in the frame's region of interest and read it, with `rand` added."""
        rand = self.check_rand(rand)
        framed = self.prepare(frame_bgr)
        if framed.prep.mnist is None:
            return self.reading(framed, rand)
        started = time.perf_counter()
        found = [c for c in framed.prep.candidates if c.prep.mnist is not None]
        if len(found) > 1:  # a still with several digit-like marks: the model's confidence weighs in
            framed, logits = self._choose(framed, found, rand)
        else:
            assert framed.prep.mnist is not None  # a found digit always has its 28x28 image
            logits = self.infer(framed.prep.mnist[None], rand)
            for c in found:
                c.digit, c.confidence = int(logits[0][0].argmax()), float(softmax(logits[0][0]).max())
        return self.reading(framed, rand, logits, (time.perf_counter() - started) * 1e3)

    def _choose(self, framed: PreparedFrame, found: list[Candidate],
                rand: int) -> tuple[PreparedFrame, tuple[np.ndarray, np.ndarray]]:
        """Read every candidate's 28x28 in one batch and take the one whose geometry score times the model's
        digit confidence is highest (vision/stills.py)."""
        digit_logits, sum_logits = self.infer(np.stack([c.prep.mnist for c in found if c.prep.mnist is not None]),
                                              rand)
        probs = softmax(digit_logits)
        for c, p in zip(found, probs, strict=True):
            c.digit, c.confidence, c.chosen = int(p.argmax()), float(p.max()), False
        best = max(range(len(found)), key=lambda i: choice_score(found[i]))
        found[best].chosen = True
        prep = replace(framed.prep, mnist=found[best].prep.mnist, box=found[best].prep.box)
        return replace(framed, prep=prep), (digit_logits[best:best + 1], sum_logits[best:best + 1])

    def predict(self, images: np.ndarray, rand: int | np.ndarray) -> Prediction:
        """A batch of MNIST-like images, uint8 (N, 28, 28) white on black, with one rand or one per image."""
        images = np.asarray(images)
        return Prediction.from_logits(*self.infer(images[None] if images.ndim == 2 else images, rand))

    def with_rand(self, reading: Reading, rand: int) -> Reading:
        """The same frame read again with another rand (the model only, not the preprocessing)."""
        rand = self.check_rand(rand)
        if not reading.found:
            return replace(reading, rand=rand)
        started = time.perf_counter()
        assert reading.mnist is not None  # a found digit always has its 28x28 image
        digit_logits, sum_logits = self.infer(reading.mnist[None], rand)
        infer_ms = (time.perf_counter() - started) * 1e3
        return finish(replace(reading, rand=rand, infer_ms=infer_ms, ms=reading.prepare_ms + infer_ms),
                      softmax(digit_logits[0]), softmax(sum_logits[0]), self.min_confidence)


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


def load(model: str | os.PathLike | None = None, provider: str = "auto", threads: int | None = None,
         *positional: float | str, settings: ReadingSettings | None = None, roi: float | None = None,
         ink: str | None = None, min_confidence: float | None = None) -> DigitReader:
    """Open a digitsum-edge .onnx (or .tflite) file once and return a reader for camera frames and image batches.

    provider: "auto" (CUDA when onnxruntime can really use it, else CPU), "cuda" or "cpu". threads:
    onnxruntime intra-op threads (None: its default). settings: how frames are read (vision/settings.py
    `ReadingSettings`: roi, ink, min_confidence, search); or, as a shorthand, roi (side of the central square
    of a frame that is read, as a fraction of the shorter side; 1: the whole picture, searched for its digit),
    ink ("dark" on light paper, "light" on dark, or "auto") and min_confidence (a digit read with less
    confidence is marked uncertain), not both. model None: ./runs/model.onnx when it exists, else the model
    built into the package (engine/builtin.py). A file that is not a digitsum-edge model, or a bad setting,
    raises DigitsumError with one clear line. roi, ink and min_confidence by position (as before
    ReadingSettings) still work for one release, with a DeprecationWarning.
    """
    if positional:
        import warnings

        if len(positional) > 3:
            raise TypeError(f"load takes at most 6 arguments by position, got {3 + len(positional)}")
        warnings.warn("load's roi, ink and min_confidence by position are deprecated: pass settings=ReadingSettings"
                      "(...) or them by keyword", DeprecationWarning, stacklevel=2)
        named: dict[str, Any] = dict(zip(("roi", "ink", "min_confidence"), positional, strict=False))
        roi, ink = named.get("roi", roi), named.get("ink", ink)
        min_confidence = named.get("min_confidence", min_confidence)
    given = [name for name, value in (("roi", roi), ("ink", ink), ("min_confidence", min_confidence))
             if value is not None]
    if settings is not None and given:
        raise InvalidInput(f"load takes settings or {', '.join(given)}, not both")
    if settings is None:
        base = BY_SOURCE
        settings = ReadingSettings(roi=roi, ink=base.ink if ink is None else ink,
                                   min_confidence=base.min_confidence if min_confidence is None else min_confidence)
    path, _ = builtin.resolve(model)
    return DigitReader(open_model(path, provider, threads), settings=settings)
