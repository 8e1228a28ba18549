"""Pictures of a training run: curves.png (loss, accuracies per epoch) and errors.png (misclassified digits)."""

from __future__ import annotations

import os

import numpy as np

from digitsum_edge.files import atomic_path


def plot_curves(history: list[dict], path: str | os.PathLike) -> None:
    """Training loss and test digit/sum accuracy per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss (digit + sum)")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    for key, label in [("train_digit_accuracy", "train digit"), ("digit_accuracy", "test digit"),
                       ("sum_accuracy", "test sum (all 10 rands)")]:
        ax_acc.plot(epochs, [100 * h[key] for h in history], "o-", label=label)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_ylim(max(90.0, min(100 * h["train_digit_accuracy"] for h in history) - 1), 100)
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower right")
    fig.suptitle("digitsum-edge training")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def plot_errors(images: np.ndarray, labels: np.ndarray, digit_pred: np.ndarray,
                path: str | os.PathLike, max_images: int = 64) -> int:
    """A grid of misclassified test digits titled true->predicted; returns how many were wrong."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wrong = np.flatnonzero(digit_pred != labels)
    shown = wrong[:max_images]
    ncol = 8
    fig, ax = plt.subplots(figsize=(8, 1.2 + 1.1 * max(1, -(-len(shown) // ncol))))
    if len(shown):
        cell = 28 + 2  # a 2-pixel grey border around every digit
        rows = -(-len(shown) // ncol)
        grid = np.full((rows * cell + 2, ncol * cell + 2), 128, np.uint8)
        for k, idx in enumerate(shown):
            y, x = 2 + (k // ncol) * cell, 2 + (k % ncol) * cell
            grid[y:y + 28, x:x + 28] = images[idx]
        ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        for k, idx in enumerate(shown):
            ax.text((k % ncol) * cell + 3, (k // ncol) * cell + 9, f"{labels[idx]}>{digit_pred[idx]}",
                    color="yellow", fontsize=8, fontweight="bold")
    ax.set_axis_off()
    ax.set_title(f"{len(wrong)} of {len(labels)} test digits misread (true>predicted), first {len(shown)}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return len(wrong)
