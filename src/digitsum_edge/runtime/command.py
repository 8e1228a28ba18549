"""Placeholder: `live`, `predict` and `synth` are being written (issue 4)."""

import click

from digitsum_edge.errors import DigitsumError


@click.command()
def live() -> None:
    """Read a handwritten digit from a camera, video, image or folder (not yet available)."""
    raise DigitsumError("live is not available yet")


@click.command()
def predict() -> None:
    """Read digits from still images (not yet available)."""
    raise DigitsumError("predict is not available yet")


@click.command()
def synth() -> None:
    """Generate camera-like frames of MNIST digits (not yet available)."""
    raise DigitsumError("synth is not available yet")
