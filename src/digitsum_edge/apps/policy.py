"""What `live` and `predict` do between readings: smooth a digit's confidence over frames, pick rand.

Policy of the command-line loops, not of the reader API: the reader reads one frame as asked.
"""

from __future__ import annotations

import numpy as np

from digitsum_edge import onnx_contract
from digitsum_edge.apps.reader import DigitReader, Reading, finish
from digitsum_edge.vision.settings import MIN_CONFIDENCE


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
        self._rng = np.random.default_rng(seed)
        self._num_rand = num_rand
        self._auto = fixed is None
        self._value = self.draw() if fixed is None else fixed
        self._last: int | None = None

    @property
    def value(self) -> int:
        """The rand in use now."""
        return self._value

    def draw(self) -> int:
        """A new random rand, in use from now on."""
        self._value = int(self._rng.integers(0, self._num_rand))
        return self._value

    def fix(self, value: int) -> int:
        """Use `value` (clipped to the model's range) from now on, and stop drawing new ones."""
        self._value, self._auto = min(max(value, 0), self._num_rand - 1), False
        return self._value

    def for_image(self, index: int) -> int:
        """Still images: each gets a new random rand (the first the one drawn at the start), unless fixed."""
        return self._value if not self._auto or index == 0 else self.draw()

    def update(self, reader: DigitReader, reading: Reading) -> Reading:
        """After a frame: draw a new rand if a new digit showed up, and re-read it with that rand."""
        if not self._auto:
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
