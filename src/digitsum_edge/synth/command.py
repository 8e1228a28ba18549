"""`digitsum-edge synth`: options (named like SynthConfig's fields) -> synth.frames.run; cv2 loads only then."""

from __future__ import annotations

import click


def _size(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        width = height = 0
    if width < 32 or height < 32:
        raise click.BadParameter(f"expected WIDTHxHEIGHT of at least 32x32, like 640x480, got {value!r}")
    return width, height


def _conditions(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    from digitsum_edge.synth.conditions import parse  # cv2 and numpy: only when asked

    try:
        return parse(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command()
@click.argument("out", type=click.Path())
@click.option("--count", type=click.IntRange(min=1), default=60, show_default=True, help="Digits to show.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same frames.")
@click.option("--format", type=click.Choice(["video", "images"]), default=None,
              help="[default: video for .mp4/.avi, else a folder of PNG images]")
@click.option("--fps", type=click.FloatRange(min=1, max=120), default=15.0, show_default=True)
@click.option("--hold", type=click.IntRange(min=1), default=5, show_default=True,
              help="Video frames per digit (same scene, fresh noise).")
@click.option("--blank", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Fraction of digits replaced by blank paper (label null).")
@click.option("--size", callback=_size, default="640x480", show_default=True, help="Frame size WIDTHxHEIGHT.")
@click.option("--conditions", callback=_conditions, default=None,
              help="Camera conditions taken in turn, comma-separated or 'all': plain, shadow, pen, marker, writers, "
                   "tilt, lined, dark, motion, small, printed, blank [default: plain frames]. The labels file "
                   "records each frame's condition.")
@click.option("--force", is_flag=True, help="Replace an existing OUT.")
def synth(size: tuple[int, int], **options: object) -> None:
    """Write camera-like frames of MNIST test digits (a video or a folder of images) with their labels.

    \b
    --conditions shadow,pen,marker,... draws what users hold up to a webcam: a hard shadow edge, a thin
    ballpoint, a thick marker, other hands, a tilted sheet, ruled paper, low light, motion blur, a small
    digit off-centre, printed digits, blank sheets. A new seed gives new frames.
    """
    from digitsum_edge.synth.frames import SynthConfig, run

    run(SynthConfig(width=size[0], height=size[1], **options))  # type: ignore[arg-type]  # click checked them
