"""`digitsum-edge serve` as a subprocess for the serve tests: start on a free port, Ctrl-C, HTTP requests."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers import ctrl_c_works
from serve_clients import CLI, free_port

START_TIMEOUT = 180  # seconds for Ray and the replica to come up on a busy 2-core machine
STOP_TIMEOUT = 60


def session_processes(sid: int) -> list[int]:
    """Processes of session `sid` (the server and everything Ray started for it) that still run."""
    from digitsum_edge.serve.processes import in_session

    return in_session(sid)


class ServeProcess:
    """`digitsum-edge serve` in its own session on a free port (or `port`); stop() is Ctrl-C. `command` replaces
    `digitsum-edge serve --model MODEL --port PORT` (a unit file's ExecStart)."""

    def __init__(self, model: Path, log: Path, *options: object, port: int | None = None,
                 command: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"{'https' if '--ssl-certfile' in options else 'http'}://127.0.0.1:{self.port}"
        self.log = log
        command = command or [str(CLI), "serve", "--model", str(model), "--port", str(self.port)]
        with open(log, "w") as err:
            self.process = subprocess.Popen([*command, *map(str, options)], stdout=err, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=ctrl_c_works, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}:\n{log.read_text()}")
            try:  # ready: the replica answers and the command says it serves (its start-up is over)
                if "serving " in log.read_text() and get(f"{self.url}/healthz", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.kill()
        pytest.fail(f"serve was not ready within {START_TIMEOUT} s:\n{log.read_text()}")

    def stop(self) -> int:
        """Ctrl-C as a terminal sends it, SIGINT to every process of the group (Ray's too); the exit status."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"serve did not stop within {STOP_TIMEOUT} s of SIGINT:\n{self.log.read_text()}")

    def kill(self) -> None:
        for pid in session_processes(self.process.pid):
            os.kill(pid, signal.SIGKILL)


def wait_until(check, timeout_s: float, step_s: float = 0.1) -> bool:
    """Poll `check()` until it is true or `timeout_s` passes; its last answer."""
    deadline = time.monotonic() + timeout_s
    while not (ok := check()) and time.monotonic() < deadline:
        time.sleep(step_s)
    return bool(ok)


def request(url: str, body: bytes | None = None, headers: dict | None = None, method: str | None = None,
            timeout: float = 30) -> tuple[int, bytes, dict]:
    """(status, body, headers) of one HTTP request; error statuses are answers too."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    unverified = ssl._create_unverified_context()  # the tests' own self-signed certificate
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=unverified) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def get(url: str, timeout: float = 30) -> tuple[int, bytes, dict]:
    return request(url, timeout=timeout)
