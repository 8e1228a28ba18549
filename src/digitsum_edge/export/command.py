"""`digitsum-edge export`: options -> ExportConfig -> export.pipeline.run (onnx imported only when it runs)."""

from __future__ import annotations

import click

from digitsum_edge.export.config import ExportConfig

_D = ExportConfig(checkpoint="")


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="The .onnx file [default: beside CHECKPOINT, .onnx suffix].")
@click.option("--opset", type=click.IntRange(min=13, max=23), default=_D.opset, show_default=True)
@click.option("--static-batch", type=click.IntRange(min=1), default=None,
              help="Fix the batch axis to N instead of a dynamic 'batch' axis.")
@click.option("--no-simplify", is_flag=True, help="Skip onnxsim.")
@click.option("--int8", is_flag=True,
              help="Also write OUT.int8.onnx: static QDQ int8, calibrated on training images.")
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
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the summary as JSON.")
@click.option("--force", is_flag=True, help="Replace existing output files.")
def export(checkpoint: str, out: str | None, opset: int, static_batch: int | None, no_simplify: bool,
           int8: bool, fp16: bool, calibration_images: int, verify_images: int, tolerance: float,
           data_dir: str | None, json_path: str | None, force: bool) -> None:
    """Export CHECKPOINT to ONNX, simplify it, and verify it against PyTorch before writing it."""
    from digitsum_edge.export.pipeline import run
    from digitsum_edge.files import write_json

    result = run(ExportConfig(
        checkpoint=checkpoint, out=out, opset=opset, static_batch=static_batch, simplify=not no_simplify,
        int8=int8, fp16=fp16, calibration_images=calibration_images, verify_images=verify_images,
        tolerance=tolerance, data_dir=data_dir, force=force), log=lambda m: click.echo(m, err=True))
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if result.nodes_simplified is not None:
        click.echo(f"onnxsim: {result.nodes_exported} -> {result.nodes_simplified} nodes", err=True)
    for f in result.files:
        m = f.comparison.metrics
        click.echo(f"{f.path} | {f.precision} | {f.size_bytes / 1024:.1f} KiB | {f.nodes} nodes | "
                   f"opset {result.opset} | "
                   f"max diff {max(f.comparison.max_abs_diff.values()):.1e} | digit {m['digit_accuracy']:.2%} "
                   f"sum {m['sum_accuracy']:.2%} on {f.comparison.pairs:,} pairs")
    click.echo(f"exported and verified in {result.seconds:.1f} s", err=True)
    if json_path:
        write_json(json_path, result.to_dict())
