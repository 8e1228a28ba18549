"""Where `serve`'s bearer token comes from, and where it goes: it cannot be off by accident.

    token = resolve_token(cfg)          # DIGITSUM_EDGE_TOKEN or --token-file; None only with --no-token
    source = TokenSource.for_replicas(cfg, token, folder)   # what the replicas are given: a path, rarely the value
    source.load()                        # in a replica: the token (or None)

An empty DIGITSUM_EDGE_TOKEN, an empty or world-readable token file, a token beside --no-token, and a host that
other machines reach without a token (and without --no-token) are each one line before Ray starts. The token never
travels on a command line (Ray keeps the driver's as its job's entrypoint; `ps` shows it), and the variable is
taken out of this process's environment before Ray starts, so Ray's processes and HAProxy do not inherit it.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from digitsum_edge.errors import DigitsumError

ENV = "DIGITSUM_EDGE_TOKEN"
MIN_LENGTH = 16
HINT = "python -c 'import secrets; print(secrets.token_urlsafe())'"
FILE_NAME = "token"  # in a local run's private folder (0700), mode 0600


def check_token(token: str, where: str) -> str:
    """A usable token: at least 16 printable characters without spaces."""
    if len(token) < MIN_LENGTH or not token.isprintable() or " " in token:
        raise DigitsumError(f"{where}: the token must be at least {MIN_LENGTH} printable characters without "
                            f"spaces (e.g. {HINT})")
    return token


def read_token_file(path: str) -> str:
    """The token in `path` (one line; a trailing newline is dropped); refused when others may read the file."""
    file = Path(path)
    try:
        mode = file.stat().st_mode
        text = file.read_text()
    except OSError as e:
        raise DigitsumError(f"--token-file {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        raise DigitsumError(f"--token-file {path} is not a file")
    if mode & stat.S_IROTH:
        raise DigitsumError(f"--token-file {path} is readable by every user: chmod 600 {path}")
    token = text.rstrip("\r\n")
    if not token:
        raise DigitsumError(f"--token-file {path} is empty")
    return check_token(token, f"--token-file {path}")


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host` (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to any interface
        return False


def resolve_token(token_file: str | None, no_token: bool, host: str, environ: dict[str, str] | None = None) -> \
        str | None:
    """The service's token: from --token-file, else DIGITSUM_EDGE_TOKEN; None only where that is safe or asked."""
    from_env = (os.environ if environ is None else environ).get(ENV)
    if from_env is not None and not from_env.strip():
        raise DigitsumError(f"{ENV} is set but empty: unset it, or give a token ({HINT})")
    if token_file is not None and from_env is not None:
        raise DigitsumError(f"both {ENV} and --token-file give a token: keep one")
    token = read_token_file(token_file) if token_file is not None else (
        check_token(from_env, ENV) if from_env is not None else None)
    if no_token and token is not None:
        raise DigitsumError(f"--no-token, but a token is given ({'--token-file' if token_file else ENV}): keep one")
    if token is None and not no_token and not is_loopback(host):
        raise DigitsumError(f"--host {host} is reachable from other machines: give a token ({ENV} or --token-file), "
                            f"or say --no-token to serve /v1 and /v2 to anyone who reaches it")
    return token


def describe(token: str | None, token_file: str | None) -> str:
    """The start line's words on authentication."""
    if token is None:
        return "auth OFF: /v1 and /v2 answer anyone who reaches this port"
    return f"auth on: /v1 and /v2 want the bearer token (from {'--token-file ' + token_file if token_file else ENV})"


@dataclass(frozen=True)
class TokenSource:
    """What a replica is given to find the token: a file it reads at start (kept out of Ray's pickled
    deployment arguments), or, where no file can reach it, the value itself."""

    path: str | None = None
    value: str | None = None
    env: str | None = None  # a config deployment: the replica's own environment variable of this name

    @classmethod
    def for_replicas(cls, token: str | None, token_file: str | None, private: Path | None) -> TokenSource:
        """--token-file: its path; a local run: a 0600 copy in its private folder; a cluster: the value."""
        if token is None:
            return cls()
        if token_file is not None:
            return cls(path=str(Path(token_file).resolve()))
        if private is not None:
            path = private / FILE_NAME
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(token)
            return cls(path=str(path))
        return cls(value=token)

    def load(self) -> str | None:
        """In a replica: the token, or None when the service has none."""
        if self.path is not None:
            return read_token_file(self.path)
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise DigitsumError(f"{self.env} is not set in the replica's environment (set it where Ray starts)")
            return check_token(value, self.env)
        return self.value

    def __repr__(self) -> str:  # never the value, in a log line or a traceback
        return f"TokenSource(path={self.path!r}, env={self.env!r}, value={'***' if self.value else None})"
