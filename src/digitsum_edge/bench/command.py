"""Placeholder: `bench` is being written (issue 5)."""

import click

from digitsum_edge.errors import DigitsumError


@click.command()
def bench() -> None:
    """PyTorch against ONNX Runtime (not yet available)."""
    raise DigitsumError("bench is not available yet")
