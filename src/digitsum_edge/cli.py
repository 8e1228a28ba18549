"""`digitsum-edge`: a thin click front; each command builds a config and calls one library function."""

from __future__ import annotations

import logging
import sys

import click

from digitsum_edge import __version__
from digitsum_edge.apps.command import live, predict
from digitsum_edge.bench.command import bench
from digitsum_edge.errors import DigitsumError
from digitsum_edge.export.command import export
from digitsum_edge.serve.command import serve
from digitsum_edge.synth.command import synth
from digitsum_edge.train.command import train
from digitsum_edge.web.command import web


class _OneLineErrors(click.Group):
    """Every error a user can cause ends as one line on stderr and a non-zero exit, never a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # pipeline order, not alphabetical

    def main(self, args=None, prog_name=None, **extra):  # type: ignore[override]  # exits, never returns
        extra.pop("standalone_mode", None)
        try:
            result = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:
            click.echo(e.format_message(), err=True)
            sys.exit(2)
        except click.ClickException as e:  # bad options: click's own message, without the usage block
            ctx = getattr(e, "ctx", None)  # set on usage errors
            hint = f" (see '{ctx.command_path} --help')" if ctx else ""
            click.echo(f"error: {e.format_message()}{hint}", err=True)
            sys.exit(e.exit_code)
        except DigitsumError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except (KeyboardInterrupt, click.Abort):
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)


class _Stderr(logging.Handler):
    """Log records as lines on stderr (through click, so tests' runners capture them); notes say so."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "note: " if record.levelno == logging.WARNING else ""
        click.echo(prefix + record.getMessage(), err=True)


def configure_logging(verbosity: int) -> None:
    """The package logger at INFO (progress, summaries), WARNING with -q (notes only), DEBUG with -v."""
    logger = logging.getLogger("digitsum_edge")
    logger.handlers = [_Stderr()]
    logger.propagate = False
    logger.setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="digitsum-edge")
@click.option("-v", "--verbose", is_flag=True, help="Also print debugging detail.")
@click.option("-q", "--quiet", is_flag=True, help="Print only results, notes and errors (no progress).")
def main(verbose: bool, quiet: bool) -> None:
    """Read a handwritten digit and add a number to it, from training to a camera.

    \b
    digitsum-edge train              train the dual-output model -> runs/model.pt
    digitsum-edge export runs/model.pt   verified, simplified ONNX -> runs/model.onnx
    digitsum-edge live --rand 7      webcam (or video, image, folder) -> digit and sum
    digitsum-edge predict IMG --rand 3   still images -> JSON lines
    digitsum-edge bench              PyTorch against ONNX Runtime: latency beside accuracy
    digitsum-edge synth OUT          camera-like frames of MNIST digits, for demos and tests
    digitsum-edge serve              the model as an HTTP service on Ray Serve, with a webcam page
    digitsum-edge web                a static web app that reads digits in the browser, offline
    """
    configure_logging(-1 if quiet else int(verbose))


for command in (train, export, live, predict, synth, bench, serve, web):
    main.add_command(command)
