"""Click option parsers shared by the commands (click only: importing this keeps --help instant)."""

from __future__ import annotations

from collections.abc import Callable

import click

Callback = Callable[[click.Context, click.Parameter, str], tuple[int, ...]]


def positive_ints(example: str, unique: bool = False) -> Callback:
    """A callback parsing '16,32,64' into (16, 32, 64); anything else is a usage error naming `example`."""

    def parse(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
        try:
            numbers = tuple(int(v) for v in value.split(","))
        except ValueError:
            numbers = ()
        if not numbers or min(numbers) < 1:
            raise click.BadParameter(f"expected comma-separated positive {example}, got {value!r}")
        return tuple(dict.fromkeys(numbers)) if unique else numbers  # unique: in the order given, each once

    return parse
