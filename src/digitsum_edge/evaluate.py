"""Exhaustive evaluation: every test image with every rand value, scored the same way for every backend."""

from __future__ import annotations

from typing import Any

import numpy as np

from digitsum_edge.onnx_contract import OUTPUTS, normalize


def exhaustive_pairs(num_images: int, num_rand: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (image_index, rand), both (num_images * num_rand,) int64, image-major order."""
    image_index = np.repeat(np.arange(num_images, dtype=np.int64), num_rand)
    rand = np.tile(np.arange(num_rand, dtype=np.int64), num_images)
    return image_index, rand


def score(digit_logits: np.ndarray, sum_logits: np.ndarray, digit_true: np.ndarray,
          rand: np.ndarray) -> dict[str, float]:
    """Digit and sum accuracy and sum consistency (argmax sum == argmax digit + rand), fractions of 1."""
    digit_pred = np.asarray(digit_logits).argmax(axis=1)
    sum_pred = np.asarray(sum_logits).argmax(axis=1)
    digit_true = np.asarray(digit_true).astype(np.int64)
    rand = np.asarray(rand).astype(np.int64)
    return {
        "digit_accuracy": float(np.mean(digit_pred == digit_true)),
        "sum_accuracy": float(np.mean(sum_pred == digit_true + rand)),
        "sum_consistency": float(np.mean(sum_pred == digit_pred + rand)),
        "pairs": len(rand),
    }


def torch_exhaustive(model, images: np.ndarray, labels: np.ndarray, device: str = "cpu",
                     batch_size: int = 2000) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Score a DigitSumNet on all (image, rand) pairs of uint8 (N, 28, 28) images.

    Returns (metrics, digit_logits (P, 10), sum_logits (P, 19)) with P = N * num_rand in
    `exhaustive_pairs` order.
    """
    import torch

    was_training = model.training
    model.eval()
    digit_chunks, sum_chunks = [], []
    for start in range(0, len(images), batch_size):
        x = normalize(torch.from_numpy(images[start:start + batch_size, None])).to(device)  # (B, 1, 28, 28)
        digit_pairs, sum_pairs = model.exhaustive_logits(x)
        digit_chunks.append(digit_pairs.cpu())
        sum_chunks.append(sum_pairs.cpu())
    model.train(was_training)
    digit_logits = torch.cat(digit_chunks).numpy()
    sum_logits = torch.cat(sum_chunks).numpy()
    image_index, rand = exhaustive_pairs(len(images), model.config.num_rand)
    metrics = score(digit_logits, sum_logits, np.asarray(labels)[image_index], rand)
    return metrics, digit_logits, sum_logits


def batched_logits(run, images: np.ndarray, rand: np.ndarray, mean: float, std: float, batch_size: int = 4096,
                   pad: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`run(image, rand) -> (digit_logits, sum_logits)` over uint8 (P, 28, 28) images and int64 (P,) rand.

    Normalisation comes from the caller (a file's metadata, not training code). With `pad`, every call
    gets exactly `batch_size` rows (static batch, torch.compile): the last chunk is padded and the
    padding dropped from the results.
    """
    digit_chunks, sum_chunks = [], []
    for start in range(0, len(rand), batch_size):
        x = normalize(images[start:start + batch_size, None], mean, std)  # (B, 1, 28, 28) float32
        r = rand[start:start + batch_size].astype(np.int64)
        n = len(r)
        if pad and n < batch_size:
            x = np.concatenate([x, np.zeros((batch_size - n, *x.shape[1:]), np.float32)])
            r = np.concatenate([r, np.zeros(batch_size - n, np.int64)])
        digit_logits, sum_logits = run(x, r)
        digit_chunks.append(digit_logits[:n])
        sum_chunks.append(sum_logits[:n])
    return np.concatenate(digit_chunks), np.concatenate(sum_chunks)


def compare_logits(got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...],
                   ) -> tuple[dict[str, float], dict[str, float]]:
    """Per head: (largest |got - want|, fraction of rows with the same argmax), keyed by output name."""
    max_abs_diff, argmax_agreement = {}, {}
    for name, g, w in zip(OUTPUTS, got, want, strict=True):
        max_abs_diff[name] = float(np.abs(g - w).max())
        argmax_agreement[name] = float(np.mean(g.argmax(1) == w.argmax(1)))
    return max_abs_diff, argmax_agreement


def backend_exhaustive(backend: Any, images: np.ndarray, labels: np.ndarray,
                       ) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Like torch_exhaustive, for an exported file through its runtime backend (engine/backend.py)."""
    image_index, rand = exhaustive_pairs(len(images), backend.info.num_rand)
    digit_logits, sum_logits = backend.logits(images[image_index], rand)
    return score(digit_logits, sum_logits, np.asarray(labels)[image_index], rand), digit_logits, sum_logits
