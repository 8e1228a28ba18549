"""`digitsum-edge serve` stops cleanly whatever stops it: SIGTERM or SIGINT to the command or to its whole
process group, and the shipped systemd unit's stop (KillMode=mixed: SIGTERM to the command; and systemd's
default, every process at once). Each ends within 10 s with "stopped", leaves no process of its own (Ray's and
HAProxy included) and frees the port; a new service starts on that port at once.

Each case starts its own service (local Ray, one replica): marked slow."""

from __future__ import annotations

import os
import shlex
import signal
import time
from pathlib import Path

import pytest

from serve_clients import free_port, port_is_free
from serve_helpers import CLI, ServeProcess, get, session_processes, wait_until

pytest.importorskip("ray.serve", reason="the serve extra is not installed")
pytestmark = pytest.mark.slow
STOPPED_WITHIN_S = 10
UNIT = Path(__file__).parents[1] / "scripts" / "digitsum-edge-serve.service"


def _unit() -> dict[str, str]:
    """The [Service] settings of the shipped unit file."""
    settings = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
    return settings


def _send(server: ServeProcess, how: str) -> None:
    pid = server.process.pid
    if how == "TERM-driver":
        os.kill(pid, signal.SIGTERM)
    elif how == "INT-driver":
        os.kill(pid, signal.SIGINT)
    elif how == "TERM-group":  # `kill -TERM -- -PGID`
        os.killpg(pid, signal.SIGTERM)
    elif how == "INT-group":  # Ctrl-C in a terminal
        os.killpg(pid, signal.SIGINT)
    elif how == "systemd-unit":  # KillMode=mixed: KillSignal to the main process only
        assert _unit()["KillMode"] == "mixed"
        os.kill(pid, getattr(signal, _unit()["KillSignal"]))
    elif how == "systemd-default":  # KillMode=control-group: SIGTERM to every process of the service at once
        for each in session_processes(pid):
            os.kill(each, signal.SIGTERM)


def _assert_stopped(server: ServeProcess, sent_at: float, private: list[Path]) -> None:
    try:
        code = server.process.wait(STOPPED_WITHIN_S + 5)
    except Exception:
        server.kill()
        raise
    took = time.monotonic() - sent_at
    log = server.log.read_text()
    assert took <= STOPPED_WITHIN_S, (took, log)
    assert code == 0 and log.rstrip().endswith("stopped"), (code, log)
    assert wait_until(lambda: not session_processes(server.process.pid), 3), \
        [Path(f"/proc/{p}/cmdline").read_bytes()[:80] for p in session_processes(server.process.pid)]
    assert port_is_free(server.port)
    assert not [folder for folder in private if folder.exists()]  # HAProxy's files and admin socket removed


def _private_folders(server: ServeProcess) -> list[Path]:
    """The service's private folders (mode 0700): those whose HAProxy configuration listens on its port."""
    found = [cfg.parents[1] for cfg in Path("/tmp").glob("dse-*/*/haproxy.cfg")
             if f"127.0.0.1:{server.port}" in cfg.read_text()]
    assert found and all(folder.stat().st_mode & 0o777 == 0o700 for folder in found)
    return found


@pytest.mark.parametrize("how", ["TERM-group", "TERM-driver", "INT-driver", "INT-group", "systemd-unit",
                                 "systemd-default"])
def test_every_stop_ends_everything_and_frees_the_port(how: str, tiny_onnx: Path, tmp_path: Path) -> None:
    command, port = None, free_port()
    if how.startswith("systemd"):  # the unit's own ExecStart, with this test's model and a free port
        command = shlex.split(_unit()["ExecStart"])
        assert Path(command[0]).name == "digitsum-edge" and command[1] == "serve"
        command[0] = str(CLI)
        command[command.index("--model") + 1] = str(tiny_onnx)
        command[command.index("--port") + 1] = str(port)
    server = ServeProcess(tiny_onnx, tmp_path / "serve.log", "--provider", "cpu", port=port, command=command)
    assert get(f"{server.url}/healthz")[0] == 200
    private = _private_folders(server)
    sent_at = time.monotonic()
    _send(server, how)
    _assert_stopped(server, sent_at, private)
    if how == "TERM-group":  # the port is free for a new service at once
        again = ServeProcess(tiny_onnx, tmp_path / "again.log", "--provider", "cpu", port=server.port)
        assert get(f"{again.url}/healthz")[0] == 200
        assert again.stop() == 0
