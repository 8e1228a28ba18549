"""Training options: one dataclass, defaults in one place, each field a CLI option."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

from digitsum_edge.layout import RUNS

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "bf16", "fp32")  # auto: bf16 autocast where it pays (CUDA with bf16, CPUs with AMX)


@dataclass
class TrainConfig:
    default_epochs: ClassVar[int] = 12

    epochs: int | None = None  # passes over the training set (None: 12, or the resumed run's own)
    batch_size: int = 128  # images per optimiser step
    lr: float = 4e-3  # peak AdamW learning rate (warm-up, then cosine decay to zero)
    sum_head_lr_scale: float = 10.0  # the sum table needs entries of order ten; Adam moves a weight ~lr a step
    weight_decay: float = 5e-4  # AdamW decoupled weight decay
    label_smoothing: float = 0.1  # cross-entropy label smoothing, both heads (+0.05 pp accuracy measured)
    warmup: float = 0.1  # fraction of all steps spent warming the learning rate up
    augment: bool = True  # per-image random rotation (+-10 deg), scale (0.9-1.1), shift (+-2 px); no flips
    stroke: float = 0.0  # with augment: blend each image up to this far towards a thicker or thinner stroke
    elastic: float = 0.0  # with augment: also a smooth random warp of up to this many pixels (0: off)
    prepared: int = 0  # also train on this many training digits drawn as camera frames, prepared back (0: off)
    low_res_epochs: int = 0  # progressive resizing: the first N epochs train on the whole digit at low_res pixels
    low_res: int = 20  # side of the low-resolution epochs' images (the network ends in a global pool: any size)
    ema: float = 0.0  # decay of an exponential moving average of the weights, which is what is saved (0: off)
    channels: tuple[int, ...] = (16, 24, 48, 96)  # conv widths of the digit reader (see ModelConfig)
    stem_stride: int = 1  # 2: the first conv strides by 2 instead of the first max-pool (see ModelConfig)
    seed: int = 0  # seeds init, shuffling, rand and augmentation: same seed, same model on CPU
    device: str = "auto"  # auto (cuda if available) | cpu | cuda
    precision: str = "auto"  # auto: bf16 autocast where it pays (CUDA, CPUs with AMX) | bf16 | fp32
    threads: int | None = None  # CPU threads for torch (default: torch's own choice)
    compile: bool = False  # torch.compile the model (CUDA only; ignored on CPU)
    limit: int | None = None  # train on the first N training images only (quick experiments, tests)
    holdout: int = 0  # evaluate on the last N training images (not trained on) instead of the test set: tuning
    eval_images: int | None = None  # evaluate on the first N test (or held-out) images only (quick runs, tests)
    data_dir: str | None = None  # folder with the four MNIST IDX files; default: the copy in the package
    out: str = RUNS  # output folder: model.pt, metrics.json, curves.png, errors.png
    resume: str | None = None  # checkpoint to continue from
    force: bool = False  # replace an existing out/model.pt instead of refusing

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
