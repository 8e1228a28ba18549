"""What the CLI tests share: run the command as a user would, and check the one-line error contract."""

from __future__ import annotations

import os
import signal

from click.testing import CliRunner, Result

from digitsum_edge.cli import main


def ctrl_c_works() -> None:
    """A subprocess's preexec_fn: SIGINT as in a terminal, even where the tests run with it ignored (a shell starts
    a background job, `pytest &` in a script, with SIGINT ignored, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def invoke(*args: object) -> Result:
    """`digitsum-edge ARGS...` through click's runner."""
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result: Result, *fragments: str, started: bool = False) -> None:
    """Exit != 0, no traceback, exactly one `error: ...` line naming the problem.

    A run that had `started` may have printed `note:`/`provider:` lines on stderr (and results on stdout)
    before it; then only stderr is checked, and the error must be its last line.
    """
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = (result.stderr if started else result.output).strip().splitlines()
    if started:
        assert all(line.startswith(("note: ", "provider: ")) for line in lines[:-1]), result.output
        lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


class RunsCode:
    """Unpickling this runs `os.system(command)`: what a checkpoint from a stranger can do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class ExecsCode:
    """Unpickling this runs Python source with `exec`."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self):
        return exec, (self.source,)
