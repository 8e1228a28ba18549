"""`digitsum-edge live | predict`: options (named like the config fields) -> one library call; cv2 and
onnxruntime load only then."""

from __future__ import annotations

import click

from digitsum_edge.engine import builtin
from digitsum_edge.engine.backend import PROVIDERS
from digitsum_edge.errors import EXIT_SKIPPED
from digitsum_edge.vision import settings as defaults
from digitsum_edge.vision.settings import with_settings

_rand = click.option("--rand", type=click.IntRange(0, 9), default=None,
                     help="The number added to the digit, 0-9 [default: a new random one per digit].")
_model = click.option("--model", type=click.Path(dir_okay=False), default=None,
                      help=f"ONNX file written by `digitsum-edge export` {builtin.HELP}.")
_provider = click.option("--provider", type=click.Choice(PROVIDERS), default="auto", show_default=True,
                         help="auto: CUDA when onnxruntime can really use it, else CPU.")
_threads = click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
                        help="onnxruntime and OpenCV threads; one is fastest for this small model.")
_ink = click.option("--ink", type=click.Choice(defaults.INKS), default=defaults.INK, show_default=True,
                    help="dark ink on light paper, light on dark, or decide per frame.")
_seed = click.option("--seed", type=int, default=None, help="Seed of the random rand.")
_min_confidence = click.option("--min-confidence", type=click.FloatRange(0, 1), default=defaults.MIN_CONFIDENCE,
                               show_default=True,
                               help="A digit read with less confidence is reported as uncertain (JSON "
                                    "\"uncertain\": true, a question mark on the overlay).")


def _err(message: str) -> None:
    click.echo(message, err=True)


def _with_settings(options: dict[str, object]) -> dict[str, object]:
    """The options with --roi, --ink and --min-confidence made into the one ReadingSettings (checked here, once)."""
    from digitsum_edge.errors import InvalidInput

    try:
        return with_settings(options)
    except InvalidInput as e:
        raise click.UsageError(str(e)) from None


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
@click.option("--roi", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Side of the central square that is read, as a fraction of the frame's shorter side; 1: the "
                   "whole frame, any shape, its border its own (a photo framed on its digit) "
                   f"[default: {defaults.ROI} for a camera, video or stream; {defaults.STILL_ROI:g} (whole) for an "
                   "image or folder, as predict].")
@_ink
@_min_confidence
@click.option("--smooth", type=click.IntRange(min=1), default=1, show_default=True,
              help="Average the confidences over the last N frames of the same digit (1: off).")
@_seed
@click.option("--snapshot-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder for snapshots saved with the s key.")
@click.option("--force", is_flag=True, help="Replace existing --jsonl / --save-video files.")
@click.option("--latest-frame", is_flag=True,
              help="Camera or stream: always read the newest frame, skipping those there was no time for.")
def live(**options: object) -> int:
    """Read a digit held up to a camera (or in a video, image or folder) and add --rand to it.

    \b
    Window keys: q/Esc quit, 0-9 set rand, r random rand, space pause (next image), s snapshot.
    Headless (--no-window, or no display): one JSON line per frame.
    Exit status: 0 done; 3 some images of a folder could not be read (each named on stderr, the rest read);
    1 an error (nothing read); 130 interrupted.
    """
    from digitsum_edge.apps.live import LiveConfig, run

    result = run(LiveConfig(**_with_settings(options)))  # type: ignore[arg-type]  # click checked the types
    _err(result.summary())
    return EXIT_SKIPPED if result.skipped else 0


@click.command()
@click.argument("images", nargs=-1, type=click.Path())
@_model
@_rand
@_provider
@_threads
@click.option("--roi", type=click.FloatRange(0, 1, min_open=True), default=defaults.STILL_ROI, show_default=True,
              help="1: the whole image, any shape (a digit may reach its border); less: the central square of "
                   "that fraction of the shorter side, whose edge cuts.")
@_ink
@_min_confidence
@_seed
@click.option("--json", is_flag=True,
              help="JSON lines on stdout even on a terminal [default: one line a person reads on a terminal, JSON "
                   "lines when stdout is a pipe or file].")
@click.option("--jsonl", type=click.Path(dir_okay=False), default=None,
              help="Write the JSON lines to this file (a terminal still shows the readings).")
@click.option("--labels", default=None,
              help="Score the images: a CSV of file,digit (digit empty or none: no digit), a synth labels.json, "
                   "or 'names' (file names start with the digit, or with 'blank').")
@click.option("--report", type=click.Path(file_okay=False), default=None,
              help="With --labels: report.json, confusion.png and the misread images (misread/) go here [default: "
                   "predict_report]; without: each photo beside the 28x28 image the model read (pictures/).")
@click.option("--save", type=click.Path(file_okay=False), default=None,
              help="Save each image annotated as live draws it (region, digit box, model input, reading) in this "
                   "folder, numbered as the lines: 0001_photo.jpg ...")
@click.option("--force", is_flag=True, help="Replace an existing --jsonl file, write into a used --report or --save.")
def predict(**options: object) -> int:
    """Read the digit in each still IMAGE (or folder of images): one line per image.

    \b
    On a terminal: image 1/5 photo.jpg: 7 (0.95) + 3 = 10 (0.97) 12.3ms (digit, confidence, rand, sum).
    Piped, with --json, or to --jsonl FILE: one JSON line per image.

    \b
    With --labels: the accuracy per folder, a confusion matrix (confusion.png) and each misread image
    beside the 28x28 image the model read (misread/), in --report.
    Exit status: 0 every image read; 3 some could not be read (each named on stderr, the rest read); 1 an error
    (nothing read).
    """
    from digitsum_edge.apps.predict import PredictConfig, run

    result = run(PredictConfig(**_with_settings(options)))  # type: ignore[arg-type]  # click checked the types
    if result.summary():
        _err(result.summary())
    return EXIT_SKIPPED if result.skipped else 0
