"""`digitsum-edge live | predict | synth`: options -> config -> one library call (cv2/onnxruntime load late)."""

from __future__ import annotations

import click

from digitsum_edge.runtime.session import DEFAULT_MODEL, PROVIDERS

_rand = click.option("--rand", type=click.IntRange(0, 9), default=None,
                     help="The number added to the digit, 0-9 [default: a new random one per digit].")
_model = click.option("--model", type=click.Path(dir_okay=False), default=DEFAULT_MODEL, show_default=True,
                      help="ONNX file written by `digitsum-edge export`.")
_provider = click.option("--provider", type=click.Choice(PROVIDERS), default="auto", show_default=True,
                         help="auto: CUDA when onnxruntime can really use it, else CPU.")
_threads = click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
                        help="onnxruntime and OpenCV threads; one is fastest for this small model.")
_ink = click.option("--ink", type=click.Choice(["auto", "dark", "light"]), default="auto", show_default=True,
                    help="dark ink on light paper, light on dark, or decide per frame.")
_seed = click.option("--seed", type=int, default=None, help="Seed of the random rand.")


def _err(message: str) -> None:
    click.echo(message, err=True)


@click.command()
@click.option("--source", default="0", show_default=True,
              help="Camera index, video file, image file or folder of images.")
@_model
@_rand
@_provider
@_threads
@click.option("--window/--no-window", default=None,
              help="Show the window, or run headless [default: a window when a display exists].")
@click.option("--jsonl", type=click.Path(dir_okay=False), default=None,
              help="Write the JSON lines to this file [default: stdout when headless].")
@click.option("--save-video", type=click.Path(dir_okay=False), default=None,
              help="Write the annotated frames to this .mp4 or .avi.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N frames.")
@click.option("--roi", type=click.FloatRange(0, 1, min_open=True), default=0.6, show_default=True,
              help="Side of the central square that is read, as a fraction of the frame's shorter side.")
@_ink
@click.option("--smooth", type=click.IntRange(min=1), default=1, show_default=True,
              help="Average the confidences over the last N frames of the same digit (1: off).")
@_seed
@click.option("--snapshot-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder for snapshots saved with the s key.")
@click.option("--force", is_flag=True, help="Replace existing --jsonl / --save-video files.")
def live(source: str, model: str, rand: int | None, provider: str, threads: int | None, window: bool | None,
         jsonl: str | None, save_video: str | None, max_frames: int | None, roi: float, ink: str, smooth: int,
         seed: int | None, snapshot_dir: str, force: bool) -> None:
    """Read a digit held up to a camera (or in a video, image or folder) and add --rand to it.

    \b
    Window keys: q/Esc quit, 0-9 set rand, r random rand, space pause (next image), s snapshot.
    Headless (--no-window, or no display): one JSON line per frame.
    """
    import statistics

    from digitsum_edge.runtime.live import LiveConfig, run

    result = run(LiveConfig(
        source=source, model=model, rand=rand, provider=provider, threads=threads, window=window, jsonl=jsonl,
        save_video=save_video, max_frames=max_frames, roi=roi, ink=ink, smooth=smooth, seed=seed,
        snapshot_dir=snapshot_dir, force=force), log=_err)
    ms = sorted(result.read_ms) or [0.0]
    _err(f"{result.frames} frames, {result.found} with a digit | read {statistics.median(ms):.2f} ms median "
         f"(preprocessing + inference) | {result.provider}"
         + "".join(f" | wrote {path}" for path in result.outputs))


@click.command()
@click.argument("images", nargs=-1, type=click.Path())
@_model
@_rand
@_provider
@_threads
@click.option("--roi", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Side of the central square that is read, as a fraction of the image's shorter side.")
@_ink
@_seed
@click.option("--jsonl", type=click.Path(dir_okay=False), default=None,
              help="Write the JSON lines to this file instead of stdout.")
@click.option("--force", is_flag=True, help="Replace an existing --jsonl file.")
def predict(images: tuple[str, ...], model: str, rand: int | None, provider: str, threads: int | None, roi: float,
            ink: str, seed: int | None, jsonl: str | None, force: bool) -> None:
    """Read the digit in each still IMAGE (or folder of images): one JSON line per image."""
    from digitsum_edge.runtime.predict import PredictConfig, run

    run(PredictConfig(images=images, model=model, rand=rand, provider=provider, threads=threads, roi=roi,
                      ink=ink, seed=seed, jsonl=jsonl, force=force), log=_err)


def _size(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        width = height = 0
    if width < 32 or height < 32:
        raise click.BadParameter(f"expected WIDTHxHEIGHT of at least 32x32, like 640x480, got {value!r}")
    return width, height


@click.command()
@click.argument("out", type=click.Path())
@click.option("--count", type=click.IntRange(min=1), default=60, show_default=True, help="Digits to show.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same frames.")
@click.option("--format", "format_", type=click.Choice(["video", "images"]), default=None,
              help="[default: video for .mp4/.avi, else a folder of PNG images]")
@click.option("--fps", type=click.FloatRange(min=1, max=120), default=15.0, show_default=True)
@click.option("--hold", type=click.IntRange(min=1), default=5, show_default=True,
              help="Video frames per digit (same scene, fresh noise).")
@click.option("--blank", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Fraction of digits replaced by blank paper (label null).")
@click.option("--size", callback=_size, default="640x480", show_default=True, help="Frame size WIDTHxHEIGHT.")
@click.option("--force", is_flag=True, help="Replace an existing OUT.")
def synth(out: str, count: int, seed: int, format_: str | None, fps: float, hold: int, blank: float,
          size: tuple[int, int], force: bool) -> None:
    """Write camera-like frames of MNIST test digits (a video or a folder of images) with their labels."""
    from digitsum_edge.runtime.synth import SynthConfig, labels_path, run

    path, frames = run(SynthConfig(out=out, count=count, seed=seed, format=format_, fps=fps, hold=hold,
                                   blank=blank, width=size[0], height=size[1], force=force))
    labels = path / "labels.json" if path.is_dir() else labels_path(path)
    _err(f"wrote {path} ({frames} frames of {size[0]}x{size[1]}) and {labels}")
