"""Scoring: sum labels are digit + rand, every image meets every rand, consistency is digit-relative."""

from __future__ import annotations

import numpy as np

from digitsum_edge.evaluate import exhaustive_pairs, score


def onehot(indices: list[int], classes: int) -> np.ndarray:
    return np.eye(classes)[indices]


def test_exhaustive_pairs_cover_every_image_with_every_rand() -> None:
    image_index, rand = exhaustive_pairs(3)
    assert list(zip(image_index, rand, strict=True))[:11] == [(0, r) for r in range(10)] + [(1, 0)]
    assert len(rand) == 30 and set(map(tuple, np.stack([image_index, rand], 1).tolist())) == {
        (i, r) for i in range(3) for r in range(10)}


def test_sum_label_is_digit_plus_rand_and_consistency_follows_the_digit_head() -> None:
    digit_true = np.array([3, 7, 9, 0])
    rand = np.array([4, 9, 9, 0])
    digit_logits = onehot([3, 7, 8, 0], 10)  # third digit misread as 8
    sum_logits = onehot([7, 16, 17, 1], 19)  # right, right, = misread digit + rand, wrong
    result = score(digit_logits, sum_logits, digit_true, rand)
    assert result["digit_accuracy"] == 0.75
    assert result["sum_accuracy"] == 0.5  # 7 = 3 + 4 and 16 = 7 + 9; 17 != 9 + 9; 1 != 0 + 0
    assert result["sum_consistency"] == 0.75  # only the last disagrees with digit head + rand
    assert result["pairs"] == 4
