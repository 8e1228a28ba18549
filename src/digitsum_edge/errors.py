"""The one exception type for problems a user can cause and fix."""


class DigitsumError(Exception):
    """Bad input (path, option, corrupt file, missing device): the CLI prints it as one line, exit 1."""

    exit_code = 1


EXIT_SKIPPED = 3  # live and predict: every readable image was read, and some could not be (each named on stderr)


class Interrupted(DigitsumError):
    """Ctrl-C after the work in progress was saved: exit 130 like any interrupted command."""

    exit_code = 130


def first_line(e: BaseException, limit: int = 160) -> str:
    """An exception's first line (its type name if it has no text), short enough for a one-line error."""
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]


class InvalidInput(DigitsumError, ValueError):
    """A value passed to the API that the model cannot take (a rand out of range, a wrong image shape)."""
