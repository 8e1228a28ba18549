"""One training step, owned here and reused: the loop calls it for every batch, benchmarks/train_step.py times it.

    optimizer = make_optimizer(model, cfg)
    x = batch_images(pixels, cfg, generator)          # augmentation + normalisation, channels_last
    loss, digit_logits, sum_logits = train_step(model, optimizer, x, digit_true, rand, cfg.label_smoothing, bf16)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from digitsum_edge.model import DigitSumNet
from digitsum_edge.onnx_contract import normalize
from digitsum_edge.train.augment import random_affine, random_stroke_width
from digitsum_edge.train.config import TrainConfig


def make_optimizer(model: DigitSumNet, cfg: TrainConfig, fused: bool = True) -> torch.optim.AdamW:
    """AdamW over the model's own parameter groups (the sum head at its larger learning rate); fused: one kernel
    for all parameters."""
    return torch.optim.AdamW(model.param_groups(cfg.lr, cfg.sum_head_lr_scale), lr=cfg.lr,
                             weight_decay=cfg.weight_decay, fused=fused)


def batch_images(pixels: torch.Tensor, cfg: TrainConfig, generator: torch.Generator | None,
                 size: int | None = None) -> torch.Tensor:
    """(B, 1, 28, 28) float pixels 0-255 -> augmented (when cfg.augment) and MNIST-normalised, channels_last;
    size: the whole image at size x size pixels instead (progressive resizing's low-resolution epochs)."""
    if cfg.augment:
        assert generator is not None, "augmentation draws from the batch's own generator"
        pixels = random_affine(pixels, generator, elastic_px=cfg.elastic, size=size)
        if cfg.stroke:
            pixels = random_stroke_width(pixels, generator, cfg.stroke)
    elif size and size != pixels.shape[-1]:
        pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return normalize(pixels).contiguous(memory_format=torch.channels_last)


Model = Callable[..., tuple[torch.Tensor, torch.Tensor]]  # DigitSumNet or its torch.compile'd form


def train_step(model: Model, optimizer: torch.optim.Optimizer, x: torch.Tensor, digit_true: torch.Tensor,
               rand: torch.Tensor, label_smoothing: float, bf16: bool,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward (bf16 autocast when asked), both heads' label-smoothed cross-entropy, backward, optimizer step.
    Returns the detached loss and the (B, 10) and (B, 19) logits."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        digit_logits, sum_logits = model(x, rand)
        loss = F.cross_entropy(digit_logits.float(), digit_true, label_smoothing=label_smoothing) \
            + F.cross_entropy(sum_logits.float(), digit_true + rand, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), digit_logits, sum_logits
