"""Training images that went through the runtime: MNIST training digits drawn as camera frames, then prepared.

The model reads what vision/preprocess.py makes of a photo, not an MNIST image: strokes re-widened, contrast
stretched, a shadow's or a rule's leftovers. `prepared(count, seed)` draws `count` training digits into
640x480 frames with the conditions of `synth --conditions` (taken in turn; no blank sheets), reads each back
to 28x28 as `live` does, and keeps those where a digit was found, with their labels; `mix` appends them to
the training set. Test digits are never drawn, so the test set stays unseen. Measured with 6,000
(docs/commands/live.md, real photos): no better on real photos, broken strokes or camera conditions, so it is
off by default.
"""

from __future__ import annotations

import logging

import numpy as np

from digitsum_edge import mnist

log = logging.getLogger(__name__)


def prepared(count: int, seed: int, train: mnist.Split) -> mnist.Split:
    """(<= count, 28, 28) uint8 images, white on black as the runtime makes them, and their labels."""
    from digitsum_edge.synth.conditions import CONDITIONS, render
    from digitsum_edge.vision.frame import prepare

    names = [name for name in CONDITIONS if name != "blank"]
    rng = np.random.default_rng([seed, 17])
    picks = rng.choice(len(train), size=count, replace=count > len(train))
    images, labels = [], []
    for i, pick in enumerate(picks):
        label = int(train.labels[pick])
        frame = render(names[i % len(names)], train.images[pick], label, np.random.default_rng([seed, 17, i]))
        prep = prepare(frame)
        if prep.mnist is not None:
            images.append(prep.mnist)
            labels.append(label)
    log.info(f"{len(images):,} of {count:,} camera frames of training digits prepared back to 28x28")
    return mnist.Split(np.stack(images) if images else np.zeros((0, 28, 28), np.uint8),
                       np.asarray(labels, train.labels.dtype))


def mix(train: mnist.Split, count: int, seed: int) -> mnist.Split:
    """The training set with `count` prepared camera frames of its own digits appended (0: unchanged)."""
    if count <= 0:
        return train
    extra = prepared(count, seed, train)
    return mnist.Split(np.concatenate([train.images, extra.images]), np.concatenate([train.labels, extra.labels]))
