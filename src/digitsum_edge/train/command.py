"""`digitsum-edge train`: options (named like TrainConfig's fields) -> train.loop.run; torch loads only then."""

from __future__ import annotations

import click

from digitsum_edge.options import positive_ints
from digitsum_edge.train.config import DEVICES, PRECISIONS, TrainConfig

_D = TrainConfig()


@click.command()
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help=f"Passes over the training set [default: {TrainConfig.default_epochs}; "
                   "with --resume: the run's own].")
@click.option("--batch-size", type=click.IntRange(min=2), default=_D.batch_size, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=_D.lr, show_default=True,
              help="Peak AdamW learning rate (warm-up, then cosine decay).")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=_D.weight_decay, show_default=True)
@click.option("--warmup", type=click.FloatRange(min=0, max=1), default=_D.warmup, show_default=True,
              help="Fraction of steps spent warming the learning rate up.")
@click.option("--label-smoothing", type=click.FloatRange(min=0, max=0.5), default=_D.label_smoothing,
              show_default=True)
@click.option("--sum-head-lr-scale", type=click.FloatRange(min=0, min_open=True),
              default=_D.sum_head_lr_scale, show_default=True, help="Learning-rate multiplier of the sum table.")
@click.option("--device", type=click.Choice(DEVICES), default=_D.device, show_default=True,
              help="auto: CUDA (bf16 autocast) when available, else CPU.")
@click.option("--precision", type=click.Choice(PRECISIONS), default=_D.precision, show_default=True,
              help="auto: bf16 autocast where it pays (CUDA with bf16, CPUs with AMX); fp32 elsewhere.")
@click.option("--seed", type=int, default=_D.seed, show_default=True,
              help="Same seed, same model on one machine with the same thread count.")
@click.option("--out", type=click.Path(file_okay=False), default=_D.out, show_default=True,
              help="Folder for model.pt, metrics.json, curves.png, errors.png.")
@click.option("--resume", type=click.Path(dir_okay=False), default=None,
              help="Continue an interrupted run from its checkpoint, with the run's own settings "
                   "(only --epochs, --device, --precision, --threads may differ).")
@click.option("--data-dir", type=click.Path(), default=None,
              help="Folder with the four MNIST IDX files (gzip or not) [default: the copy in the package].")
@click.option("--stroke", type=click.FloatRange(0, 1), default=_D.stroke, show_default=True,
              help="Stroke-width augmentation: blend up to this far towards a 1-pixel thicker or thinner stroke.")
@click.option("--elastic", type=click.FloatRange(0, 4), default=_D.elastic, show_default=True,
              help="Elastic augmentation: a smooth random warp of up to this many pixels (another hand's wobble).")
@click.option("--low-res-epochs", type=click.IntRange(min=0), default=_D.low_res_epochs, show_default=True,
              help="Progressive resizing: train the first N epochs on whole digits at --low-res pixels.")
@click.option("--low-res", type=click.IntRange(8, 28), default=_D.low_res, show_default=True,
              help="Side in pixels of the low-resolution epochs' images.")
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), default=_D.ema, show_default=True,
              help="Keep an exponential moving average of the weights with this decay and save it (0: off).")
@click.option("--channels", callback=positive_ints("widths like 16,32,64"), default=",".join(map(str, _D.channels)),
              show_default=True,
              help="Conv widths of the digit reader, one per stage.")
@click.option("--stem-stride", type=click.IntRange(1, 2), default=_D.stem_stride, show_default=True,
              help="2: the first conv strides by 2 in place of the first max-pool (less work at 28x28).")
@click.option("--augment/--no-augment", default=_D.augment, show_default=True,
              help="Random rotation/scale/shift of every training image.")
@click.option("--limit", type=click.IntRange(min=2), default=None,
              help="Train on the first N training images only (quick runs).")
@click.option("--holdout", type=click.IntRange(min=0), default=_D.holdout, show_default=True,
              help="Evaluate on the last N training images (left out of training) instead of the test set.")
@click.option("--eval-images", type=click.IntRange(min=1), default=None,
              help="Evaluate on the first N test (or held-out) images only (quick runs) [default: all].")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch.")
@click.option("--compile", is_flag=True, help="torch.compile the model (CUDA only).")
@click.option("--force", is_flag=True, help="Replace an existing OUT/model.pt.")
def train(**options: object) -> None:
    """Train the digit + sum model on MNIST and write a self-describing checkpoint."""
    from digitsum_edge.extras import require

    require("train", "train")
    from digitsum_edge.train.loop import run

    click.echo(run(TrainConfig(**options)).summary())  # type: ignore[arg-type]  # click checked the types
