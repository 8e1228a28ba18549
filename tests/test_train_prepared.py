"""train --prepared: training digits drawn as camera frames and read back by the runtime's preprocessing."""

from __future__ import annotations

import numpy as np

from digitsum_edge import mnist
from digitsum_edge.train.prepared import mix, prepared


def test_prepared_digits_are_what_the_runtime_makes_of_training_digits() -> None:
    train = mnist.load("train")
    small = mnist.Split(train.images[:200], train.labels[:200])
    out = prepared(24, seed=3, train=small)
    assert 20 <= len(out) <= 24 and out.images.shape[1:] == (28, 28) and out.images.dtype == np.uint8
    assert set(out.labels.tolist()) <= set(small.labels.tolist())
    assert (out.images[:, :2].max(axis=(1, 2)) == 0).all() and (out.images.max(axis=(1, 2)) >= 240).all()
    assert len({image.tobytes() for image in out.images}) == len(out)  # every frame drawn and read afresh
    again = prepared(24, seed=3, train=small)
    assert np.array_equal(out.images, again.images)  # a seed gives the same images
    mixed = mix(small, 24, seed=3)
    assert len(mixed) == len(small) + len(out) and np.array_equal(mixed.images[:200], small.images)
    assert mix(small, 0, seed=3) is small
