"""What the serve benchmarks (serve_load.py, serve_abuse.py, cluster.py) and the serve tests share: the camera
frames they send, a free port and whether one is free, the replica's process and its memory, the machine and its
other load beside the figures, and the clients: closed-loop load, slow uploads, and the page's slow and flooding
clients. Everything goes to 127.0.0.1 and every loop is bounded in time. A script's own folder is on sys.path when
it runs as `python benchmarks/X.py`; the tests find this module through pytest's `pythonpath` (pyproject.toml)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import platform
import socket
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from digitsum_edge.bench.report import cpu_name, module_version
from digitsum_edge.errors import DigitsumError
from digitsum_edge.serve.config import check_port_free
from digitsum_edge.synth.frames import frames, pick_digits
from digitsum_edge.timing import cpu_snapshot, others_cpu_share, summarize

CLI = Path(sys.executable).with_name("digitsum-edge")
PAGE_FILE = "/vendor/ort-wasm-simd-threaded.wasm"  # the page's largest file (14 MB, 3.7 MB gzipped)


def camera_jpegs(count: int, seed: int, quality: int = 90) -> list[bytes]:
    """`count` 640x480 synth frames as a webcam page sends them: JPEG bytes."""
    digits, labels = pick_digits(count, seed)
    return [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
            for frame, _ in frames(digits, labels, seed=seed)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be listened on now (the check `serve` itself makes before it starts)."""
    try:
        check_port_free("127.0.0.1", port)
    except DigitsumError:
        return False
    return True


def rss_mb(pid: int) -> float:
    """The resident memory of process `pid` in MB (0 where /proc says none)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def replica_pid(pids: list[int]) -> int:
    """The Ray Serve replica's process among `pids` (a service's session)."""
    return next(p for p in pids if b"ServeReplica" in Path(f"/proc/{p}/cmdline").read_bytes())


def say(text: str) -> None:
    """A progress line on stderr (stdout is the report)."""
    print(text, file=sys.stderr, flush=True)


# ---- the machine beside the figures: it is shared ---------------------------------------------------------------

def background_cpu_share() -> float | None:
    """Other processes' share of the CPUs over 2 s now (None where it cannot be read)."""
    start = cpu_snapshot()
    time.sleep(2.0)
    share = others_cpu_share(start, cpu_snapshot())
    return None if share is None else round(share, 3)


class SharedMachine:
    """The machine a serve benchmark runs on, which other people's work shares: made just before the run, it
    measures that other load (2 s) and notes the CPU counters, for the report's header and footer."""

    def __init__(self) -> None:
        self.background_before = background_cpu_share()
        self.start = cpu_snapshot()

    def header(self, **versions: str | None) -> dict:
        """The CPU, cores, platform, `versions` (name -> version), Ray's version, the other load before the run."""
        return {"cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(), **versions,
                "ray": module_version("ray"), "background_cpu_share_before": self.background_before}

    def footer(self) -> dict:
        """Every other process's CPU share since the start (the service and Ray's processes included: they are
        not this process's children), then other people's work alone, measured after the run."""
        return {"cpu_share_not_this_process": others_cpu_share(self.start, cpu_snapshot()),
                "background_cpu_share_after": background_cpu_share()}


# ---- clients ----------------------------------------------------------------------------------------------------

async def closed_loop(url: str, bodies: list[bytes], clients: int, seconds: float, images_per_request: int) -> dict:
    """`clients` connections, each sending its next request as soon as the last one was answered."""
    import aiohttp

    latencies: list[float] = []
    refused: list[float] = []  # 503 or 429 with Retry-After: the service said when to come back
    errors: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def client(c: int, until: float, record: bool) -> None:
            i = c
            while time.perf_counter() < until:
                body = bodies[i % len(bodies)]
                i += clients
                started = time.perf_counter()
                told_to_wait = False
                try:
                    async with session.post(f"{url}?rand={i % 10}", data=body) as response:
                        await response.read()
                        ok = response.status == 200
                        kind = f"HTTP {response.status}"
                        told_to_wait = response.status in (429, 503) and "Retry-After" in response.headers
                except aiohttp.ClientError as e:
                    ok, kind = False, type(e).__name__
                if record and ok:
                    latencies.append(time.perf_counter() - started)
                elif record and told_to_wait:
                    refused.append(time.perf_counter() - started)
                elif record:
                    errors[kind] = errors.get(kind, 0) + 1
                if told_to_wait:
                    await asyncio.sleep(0.05)  # a client told to wait does not hammer at once

        warm = time.perf_counter() + min(2.0, seconds / 4)
        await asyncio.gather(*(client(c, warm, False) for c in range(clients)))
        started = time.perf_counter()
        cpu = time.process_time()
        await asyncio.gather(*(client(c, started + seconds, True) for c in range(clients)))
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - cpu
    timing = summarize(latencies, 1) if latencies else None
    refusal = summarize(refused, 1) if refused else None
    return {"clients": clients, "seconds": round(elapsed, 2), "requests": len(latencies),
            "errors": sum(errors.values()), "error_kinds": errors, "refused_retry_after": len(refused),
            "refused_p99_ms": round(refusal.p99_ms, 2) if refusal else None,
            "requests_per_s": round(len(latencies) / elapsed, 1),
            "images_per_s": round(len(latencies) * images_per_request / elapsed, 1),
            "p50_ms": round(timing.median_ms, 2) if timing else None,
            "p90_ms": round(timing.p90_ms, 2) if timing else None,
            "p99_ms": round(timing.p99_ms, 2) if timing else None,
            "client_cpu_share": round(client_cpu / elapsed / (os.cpu_count() or 1), 3)}


async def slow_clients(port: int, count: int, seconds: float, idle: bool) -> dict:
    """`count` connections that send headers (Content-Length 100,000) and then 1 byte a second, or nothing;
    what each one got back (the status, "closed", "reset", "refused" or "held to the end") and when."""
    outcomes: dict[str, int] = {}
    times: list[float] = []

    async def one() -> None:
        started = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            outcomes["refused"] = outcomes.get("refused", 0) + 1
            return
        writer.write(b"POST /v1/read?rand=1 HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                     b"Content-Length: 100000\r\n\r\n")
        status = "held to the end"
        until = started + seconds
        try:
            while time.monotonic() < until:
                if not idle:
                    writer.write(b"\xff")
                    await writer.drain()
                try:
                    line = await asyncio.wait_for(reader.readline(), 1.0)
                except asyncio.TimeoutError:
                    continue
                status = line.decode(errors="replace").split(" ")[1] if line else "closed"
                times.append(time.monotonic() - started)
                break
        except OSError:
            status = "reset"
        finally:
            writer.close()
        outcomes[status] = outcomes.get(status, 0) + 1

    await asyncio.gather(*(one() for _ in range(count)))
    return {"connections": count, "outcomes": outcomes,
            "answered_after_s": round(float(np.median(times)), 1) if times else None}


async def page_clients(host: str, port: int, https: bool, kinds: list[bool], seconds: float) -> tuple[dict, dict]:
    """One client on the page's largest file per entry of `kinds`, started in that order, for `seconds`: slow ones
    (True) ask for it (half gzipped, half plain) and read nothing; flooding ones (False) download it whole, again
    and again. What the slow ones got, and what the flooding ones got."""
    import ssl

    context = ssl._create_unverified_context() if https else None
    got: tuple[dict[str, int], dict[str, int]] = ({}, {})
    until = time.monotonic() + seconds

    async def one(i: int, slow: bool) -> None:  # i: its place among the clients of its kind
        outcomes = got[0] if slow else got[1]

        def count_(what: str) -> None:
            outcomes[what] = outcomes.get(what, 0) + 1

        while time.monotonic() < until:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context), 10)
            except (OSError, asyncio.TimeoutError):
                count_("refused")
                await asyncio.sleep(0.5)
                continue
            gzipped = "Accept-Encoding: gzip\r\n" if i % 2 else ""
            writer.write(f"GET {PAGE_FILE} HTTP/1.1\r\nHost: x\r\n{gzipped}Connection: close\r\n\r\n".encode())
            try:
                status = (await asyncio.wait_for(reader.readline(), 15)).split(b" ")[1].decode()
                if slow:  # read nothing more; hold the connection until the server drops it or the case ends
                    while time.monotonic() < until and not reader.at_eof():
                        await asyncio.sleep(1)
                        if reader.at_eof():
                            break
                    count_(f"{status} held" if not reader.at_eof() else f"{status} dropped by the server")
                    return
                while await asyncio.wait_for(reader.read(2**16), 15):
                    pass
                count_(status)
            except (OSError, asyncio.TimeoutError, IndexError):
                count_("reset" if not slow else "dropped by the server")
                if slow:
                    return
            finally:
                writer.close()

    await asyncio.gather(*(one(kinds[:n].count(slow), slow) for n, slow in enumerate(kinds)))
    return got


def page_load(host: str, port: int, https: bool, kinds: list[bool], seconds: float,
              answer: multiprocessing.Queue) -> None:
    """In a process of its own: page_clients(...); puts (slow, flooding) outcomes."""
    answer.put(asyncio.run(page_clients(host, port, https, kinds, seconds)))
