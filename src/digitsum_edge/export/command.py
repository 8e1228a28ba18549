"""`digitsum-edge export`: options (named like ExportConfig's fields) -> export.pipeline.run; onnx loads only then."""

from __future__ import annotations

import click

from digitsum_edge.export.config import FORMATS, ExportConfig

_D = ExportConfig(checkpoint="")


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))  # with --format c: the int8 .tflite
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="The fp32 file [default: beside CHECKPOINT, .onnx or .tflite suffix].")
@click.option("--format", type=click.Choice(list(FORMATS)), default=_D.format, show_default=True,
              help="onnx, or litert: a .tflite file for LiteRT (phones); litert-int8 is litert --int8; c: C99 "
                   "source for a microcontroller from the int8 .tflite given in place of CHECKPOINT.")
@click.option("--opset", type=click.IntRange(min=13, max=23), default=_D.opset, show_default=True)
@click.option("--static-batch", type=click.IntRange(min=1), default=None,
              help="Fix the batch axis to N instead of a dynamic 'batch' axis.")
@click.option("--simplify/--no-simplify", default=_D.simplify, show_default=True, help="Simplify with onnxsim.")
@click.option("--int8", is_flag=True,
              help="Also write OUT.int8.onnx (static QDQ int8, calibrated on training images); with litert "
                   "OUT.int8.tflite, full integer for TFLite Micro, and its C array.")
@click.option("--fp16", is_flag=True,
              help="Also write OUT.fp16.onnx: fp16 inside, fp32 in/out; for the CUDA provider.")
@click.option("--calibration-images", type=click.IntRange(min=1), default=_D.calibration_images,
              show_default=True, help="Training images used to calibrate int8.")
@click.option("--verify-images", type=click.IntRange(min=1), default=_D.verify_images, show_default=True,
              help="Test images compared with PyTorch, each with every rand 0-9.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=_D.tolerance, show_default=True,
              help="Largest allowed fp32 logit difference.")
@click.option("--data-dir", type=click.Path(), default=None,
              help="MNIST folder for verification and calibration [default: the copy in the package].")
@click.option("--json", type=click.Path(dir_okay=False), default=None, help="Also write the summary as JSON.")
@click.option("--triton", type=click.Path(file_okay=False), default=None,
              help="Also write a Triton model repository into this folder (digitsum/config.pbtxt, 1/model.onnx).")
@click.option("--force", is_flag=True, help="Replace existing output files.")
@click.option("--core", default=_D.core, show_default=True,
              help="--format c: cortex-m4, cortex-m7 or cortex-m55 (named in the files; the code is the same).")
def export(**options: object) -> None:
    """Export CHECKPOINT to ONNX (or LiteRT), and verify it against PyTorch before writing it."""
    from digitsum_edge.extras import require

    if options["format"] == "c":  # from the int8 .tflite: no torch, no conversion
        require("litert-export", "export --format c")
        from digitsum_edge.export.c_export import run as run_c

        click.echo(run_c(ExportConfig(**options)).summary())  # type: ignore[arg-type]
        return
    require("train", "export")
    if str(options["format"]).startswith("litert"):
        require("litert-export", "export --format litert")
    from digitsum_edge.export.pipeline import run

    click.echo(run(ExportConfig(**options)).summary())  # type: ignore[arg-type]  # click checked the types
