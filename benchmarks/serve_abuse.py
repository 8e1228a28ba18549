"""`digitsum-edge serve` against hostile clients and ordinary operations: replays each case, prints one table
row per case (what was done, what happened, the goal) and writes the figures as JSON.

Cases: stopping by `kill -TERM -- -PGID` (and a restart on the same port); 200 slow uploads (1 byte/s) and 200
idle connections held open beside a quiet /v1/read client; 16 costly images (40 MP 16-bit RGBA PNGs, refused,
and 24 MP 8-bit PNGs, decoded) beside it; 128 concurrent maximum-size requests of each route, with the
replica's memory; 300 clients at once on /v1/read; what listens where; malformed v2 requests; and 100 clients of the
page (half reading nothing, half downloading again and again) beside an authenticated /v1/read client: over
HAProxy, over HTTPS through HAProxy, and over HTTPS through Ray's proxy (--no-haproxy), with every process's
memory (`--cases page`: only these). Everything goes to 127.0.0.1, every loop is bounded in count and time, and
the service is stopped by its pid.
The machine is shared: other processes' CPU share is recorded beside the figures.

    .venv/bin/python benchmarks/serve_abuse.py --model runs/model.onnx --json docs/serve_abuse.json
    .venv/bin/python benchmarks/serve_abuse.py --cases page --model runs/model.onnx --json docs/serve_page_abuse.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np

from digitsum_edge import mnist
from digitsum_edge.bench.report import module_version
from digitsum_edge.files import write_json
from digitsum_edge.serve.processes import in_session
from digitsum_edge.serve.processes import listening as processes_listening
from digitsum_edge.timing import summarize
from serve_clients import (
    CLI,
    PAGE_FILE,
    SharedMachine,
    camera_jpegs,
    free_port,
    page_load,
    port_is_free,
    replica_pid,
    rss_mb,
    say,
    slow_clients,
)

# ---- the service and its processes ----------------------------------------------------------------------------

class Service:
    """`digitsum-edge serve` in its own session on 127.0.0.1."""

    def __init__(self, model: str, port: int | None = None, *options: str, env: dict | None = None) -> None:
        self.port = port or free_port()
        self.url = f"{'https' if '--ssl-certfile' in options else 'http'}://127.0.0.1:{self.port}"
        self.log = Path(f"/tmp/serve_abuse_{self.port}.log")
        with open(self.log, "w") as out:
            self.process = subprocess.Popen([str(CLI), "serve", "--model", model, "--port", str(self.port),
                                             *options], stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"serve exited:\n{self.log.read_text()}")
            if "serving " in self.log.read_text() and _status(f"{self.url}/healthz", timeout=2)[0] == 200:
                return
            time.sleep(0.3)
        self.kill()
        raise SystemExit("serve was not ready in 180 s")

    def processes(self) -> list[int]:
        """Processes of its session still running (itself, Ray's, the replica's, HAProxy)."""
        return in_session(self.process.pid)

    def replica_pid(self) -> int:
        return replica_pid(self.processes())

    def stop(self, how: str = "SIGTERM") -> dict:
        """SIGTERM to the command (`driver`) or to its process group; seconds to exit, the end of its log."""
        started = time.monotonic()
        if how == "group":
            os.killpg(self.process.pid, signal.SIGTERM)
        else:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - started
        deadline = time.monotonic() + 5
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        left = len(self.processes())
        self.kill()
        return {"seconds": round(took, 2), "exit": code, "stopped": self.log.read_text().rstrip().endswith("stopped"),
                "processes_left": left, "port_free": port_is_free(self.port)}

    def kill(self) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _status(url: str, body: bytes | None = None, timeout: float = 30) -> tuple[int, float, dict]:
    """(status, seconds, headers) of one request; 0 when it failed to answer."""
    import ssl
    import urllib.error
    import urllib.request

    started = time.monotonic()
    unverified = ssl._create_unverified_context()  # the run's own self-signed certificate
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=timeout,
                                    context=unverified) as response:
            response.read()
            return response.status, time.monotonic() - started, dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, time.monotonic() - started, dict(e.headers)
    except OSError:
        return 0, time.monotonic() - started, {}


class MemoryWatch:
    """The peak RSS of one process, sampled every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.running = pid, rss_mb(pid), True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.05)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return round(self.peak, 1)


# ---- clients ----------------------------------------------------------------------------------------------------

async def quiet_reads(url: str, jpegs: list[bytes], seconds: float, token: str | None = None) -> dict:
    """One client reading one frame after the other for `seconds` (with the bearer token): its latencies."""
    import aiohttp

    latencies, statuses = [], {}
    until = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
        i = 0
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                async with session.post(f"{url}/v1/read?rand={i % 10}", data=jpegs[i % len(jpegs)], headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=30)) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                status = 0
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                latencies.append(time.perf_counter() - started)
            i += 1
    timing = summarize(latencies, 1) if latencies else None
    return {"requests": i, "statuses": statuses, "p50_ms": round(timing.median_ms, 1) if timing else None,
            "p99_ms": round(timing.p99_ms, 1) if timing else None}


async def many(url: str, bodies: list[bytes], clients: int, seconds: float) -> dict:
    """`clients` concurrent clients for `seconds`: accepted latency, refusals (503 + Retry-After) and theirs."""
    import aiohttp

    accepted, refused, other = [], [], {}
    until = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def client(c: int) -> None:
            i = c
            while time.monotonic() < until:
                started = time.perf_counter()
                try:
                    async with session.post(f"{url}?rand={i % 10}", data=bodies[i % len(bodies)]) as response:
                        await response.read()
                        took = time.perf_counter() - started
                        if response.status == 200:
                            accepted.append(took)
                        elif response.status in (429, 503) and "Retry-After" in response.headers:
                            refused.append(took)
                            await asyncio.sleep(float(response.headers["Retry-After"]))  # as it was told
                        else:
                            other[response.status] = other.get(response.status, 0) + 1
                except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                    other[type(e).__name__] = other.get(type(e).__name__, 0) + 1
                i += clients

        await asyncio.gather(*(client(c) for c in range(clients)))
    ok = summarize(accepted, 1) if accepted else None
    no = summarize(refused, 1) if refused else None
    return {"clients": clients, "seconds": seconds, "accepted": len(accepted), "refused_503": len(refused),
            "other": other, "accepted_per_s": round(len(accepted) / seconds, 1),
            "accepted_p50_ms": round(ok.median_ms, 1) if ok else None,
            "accepted_p99_ms": round(ok.p99_ms, 1) if ok else None,
            "refused_p99_ms": round(no.p99_ms, 1) if no else None}


# ---- the cases --------------------------------------------------------------------------------------------------

def case_stop(model: str) -> dict:
    """`kill -TERM -- -PGID`, then a new service on the same port at once."""
    service = Service(model)
    stopped = service.stop("group")
    started = time.monotonic()
    again = Service(model, service.port)
    stopped["restart_ready_s"] = round(time.monotonic() - started, 1)
    stopped["restart_stop"] = again.stop()
    return stopped


def _hold_open(port: int, count: int, seconds: float, answer: multiprocessing.Queue) -> None:
    """In a process of its own: `count` slow uploads and `count` idle connections held open together."""
    async def both() -> tuple:
        return await asyncio.gather(slow_clients(port, count, seconds, idle=False),
                                    slow_clients(port, count, seconds, idle=True))

    answer.put(asyncio.run(both()))


def case_slow(service: Service, jpegs: list[bytes], seconds: float) -> dict:
    """200 slow uploads and 200 idle connections (from another process) beside one quiet reader; /healthz."""
    quiet = asyncio.run(quiet_reads(service.url, jpegs, seconds / 2))
    answer: multiprocessing.Queue = multiprocessing.Queue()
    holder = multiprocessing.Process(target=_hold_open, args=(service.port, 200, seconds, answer))
    holder.start()
    time.sleep(1.5)
    beside = asyncio.run(quiet_reads(service.url, jpegs, seconds - 3))
    health = _status(f"{service.url}/healthz", None, 8)
    slow, idle = answer.get(timeout=seconds + 60)
    holder.join(10)
    return {"quiet": quiet, "slow_uploads": slow, "idle": idle, "beside": beside,
            "healthz_status": health[0], "healthz_s": round(health[1], 2)}


def _png16(side: int) -> bytes:
    """A 16-bit RGBA PNG of side x side that compresses to little (a flat grey)."""
    image = np.full((side, side, 4), 30000, np.uint16)
    return cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()


def case_costly_images(service: Service, jpegs: list[bytes], seconds: float) -> dict:
    """16 at once, in turn for `seconds`: 40 MP 16-bit RGBA PNGs (refused) and 24 MP 8-bit grey PNGs (decoded,
    in their own lane), beside one quiet reader."""
    huge = _png16(6320)
    big = cv2.imencode(".png", np.full((4000, 6000), 200, np.uint8))[1].tobytes()
    quiet = asyncio.run(quiet_reads(service.url, jpegs, 3))

    async def together() -> tuple:
        costly = asyncio.create_task(many(f"{service.url}/v1/read", [huge, big], 16, seconds))
        await asyncio.sleep(0.5)
        beside = await quiet_reads(service.url, jpegs, seconds - 1)
        return await costly, beside

    costly, beside = asyncio.run(together())
    refused = _status(f"{service.url}/v1/read?rand=1", huge)
    return {"huge_png_bytes": len(huge), "big_png_bytes": len(big), "huge_status": refused[0],
            "huge_answer_ms": round(refused[1] * 1e3, 1), "costly": costly, "quiet": quiet, "beside": beside}


def _biggest_bodies(max_images: int) -> dict[str, tuple[str, bytes]]:
    """The largest body each route takes: --max-images images, a noisy 8 MB JPEG, an ~8 MB v2 JSON."""
    images = np.resize(mnist.load("test").images, (max_images, 28, 28))
    noise = np.random.default_rng(0).integers(0, 256, (1950, 1950, 3), np.uint8)  # 7.5 MB at quality 100
    jpeg = cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
    n = 1100  # about 7.8 MB of JSON numbers ("-0.4242, " each)
    v2 = json.dumps({"inputs": [
        {"name": "image", "datatype": "FP32", "shape": [n, 1, 28, 28], "data": [-0.4242] * (n * 784)},
        {"name": "rand", "datatype": "INT64", "shape": [n], "data": [3] * n}]}).encode()
    return {"/v1/predict": ("/v1/predict", images.tobytes()), "/v1/read": ("/v1/read", jpeg),
            "/v2 infer": ("/v2/models/digitsum/infer", v2)}


def case_memory(service: Service, max_images: int, seconds: float) -> dict:
    """128 concurrent maximum-size requests of each route: the replica's peak and settled memory."""
    pid = service.replica_pid()
    time.sleep(1)
    idle = round(rss_mb(pid), 1)
    rows = {}
    for name, (path, body) in _biggest_bodies(max_images).items():
        watch = MemoryWatch(pid)
        load = asyncio.run(many(f"{service.url}{path}", [body], 128, seconds))
        peak = watch.stop()
        time.sleep(3)
        rows[name] = {"body_bytes": len(body), "peak_mb": peak, "after_mb": round(rss_mb(pid), 1), **load}
    return {"idle_mb": idle, "routes": rows}


def _overload(url: str, clients: int, seconds: float, answer: multiprocessing.Queue) -> None:
    """In a process of its own: `clients` clients on /v1/read that honour Retry-After."""
    answer.put(asyncio.run(many(f"{url}/v1/read", camera_jpegs(32, seed=1), clients, seconds)))


def case_overload(service: Service, jpegs: list[bytes], clients: int, seconds: float) -> dict:
    """`clients` at once on /v1/read from one process, and one quiet client beside them in this one: the quiet
    client's latency is the service's (the loaded process's own figures include its event loop's lag on the
    same cores)."""
    answer: multiprocessing.Queue = multiprocessing.Queue()
    load = multiprocessing.Process(target=_overload, args=(service.url, clients, seconds, answer))
    load.start()
    time.sleep(1.5)
    beside = asyncio.run(quiet_reads(service.url, jpegs, seconds - 3))
    result = answer.get(timeout=seconds + 60)
    load.join(10)
    return {**result, "beside": beside}


PAGE_TOKEN = "page-abuse-token-0123456789"


def _rss_all(service: Service) -> dict[int, float]:
    found = {}
    for pid in service.processes():
        with contextlib.suppress(OSError):
            found[pid] = rss_mb(pid)
    return found


PAGE_MODES = {"HAProxy": (False, ()), "HTTPS, HAProxy": (True, ()),  # mode -> (https, serve's options)
              "HTTPS, Ray's proxy (--no-haproxy: no page)": (True, ("--no-haproxy",)),
              "HTTPS, Ray's proxy, page asked for (--no-haproxy --page-without-haproxy)":
                  (True, ("--no-haproxy", "--page-without-haproxy"))}


def case_page(model: str, mode: str, clients: int, seconds: float, folder: Path) -> dict:
    """The page beside the API: a quiet authenticated /v1/read client alone, then beside `clients` page clients
    (half slow, half flooding); every process's memory before, at its peak, and after."""
    https, chosen = PAGE_MODES[mode]
    options = ["--web", str(folder / "web"), *chosen]
    if https:  # a self-signed certificate for 127.0.0.1, as a site without a CA makes one
        cert, key = folder / "cert.pem", folder / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        options += ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    service = Service(model, None, *options, env={"DIGITSUM_EDGE_TOKEN": PAGE_TOKEN})
    try:
        jpegs = camera_jpegs(32, seed=1)
        asyncio.run(quiet_reads(service.url, jpegs, 2, PAGE_TOKEN))  # warm-up
        quiet = asyncio.run(quiet_reads(service.url, jpegs, seconds, PAGE_TOKEN))
        idle = _rss_all(service)
        peaks = dict(idle)
        answer: multiprocessing.Queue = multiprocessing.Queue()
        kinds = [True] * (clients // 2) + [False] * (clients - clients // 2)  # the slow ones first
        load = multiprocessing.Process(target=page_load, args=("127.0.0.1", service.port, https, kinds, seconds + 4,
                                                                answer))
        load.start()
        running = True

        def watch() -> None:
            while running:
                for pid, mb in _rss_all(service).items():
                    peaks[pid] = max(peaks.get(pid, 0.0), mb)
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        time.sleep(2)
        beside = asyncio.run(quiet_reads(service.url, jpegs, seconds, PAGE_TOKEN))
        slow, flood = answer.get(timeout=seconds + 120)
        load.join(10)
        running = False
        watcher.join()
        time.sleep(5)
        after = _rss_all(service)
        names = {pid: Path(f"/proc/{pid}/comm").read_text().strip() for pid in after}
        memory = [{"process": names[pid], "idle_mb": round(idle.get(pid, 0), 1), "peak_mb": round(peaks[pid], 1),
                   "after_mb": round(after[pid], 1)} for pid in after if pid in peaks]
        grew = max((m["peak_mb"] - m["idle_mb"] for m in memory), default=0.0)
        kept = max((m["after_mb"] - m["idle_mb"] for m in memory), default=0.0)
        return {"mode": mode, "clients": clients, "quiet": quiet,
                "beside": beside, "slow": slow, "flood": flood, "memory": memory,
                "largest_growth_mb": round(grew, 1), "largest_kept_mb": round(kept, 1)}
    finally:
        service.stop()


def case_listening(service: Service) -> dict:
    """Every TCP port the service's processes listen on, with its address; HAProxy's admin socket's mode."""
    listening = [{"process": name, "address": address, "port": port}
                 for name, address, port in processes_listening(service.processes())]
    sockets = [(str(p), oct(p.stat().st_mode & 0o777), oct(p.parents[1].stat().st_mode & 0o777))
               for p in Path("/tmp").glob("dse-*/*/admin.sock")]
    return {"listening": listening, "admin_sockets": sockets,
            "all_interfaces": [r for r in listening if r["address"] in ("0.0.0.0", "::")]}


def _png_header(width: int, height: int, depth: int, colour: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def case_malformed(service: Service) -> dict:
    """The v2 and rand cases that gave 500s or were read silently: their statuses and messages."""
    image = {"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": [0.0] * 784}
    rand = {"name": "rand", "datatype": "INT64", "shape": [1], "data": [3]}
    binary = {k: v for k, v in image.items() if k != "data"}
    cases = {
        "shape [2^32, 2^32]": [{**image, "shape": [2**32, 2**32]}, rand],
        "parameters a string": [{**image, "parameters": "x"}, rand],
        "parameters a list": [{**image, "parameters": [1]}, rand],
        "binary_data_size 3136.0": [{**binary, "parameters": {"binary_data_size": 3136.0}}, rand],
        "rand 3.7": [image, {**rand, "data": [3.7]}], 'rand "5"': [image, {**rand, "data": ["5"]}],
        "rand true": [image, {**rand, "data": [True]}]}
    rows = {}
    url = f"{service.url}/v2/models/digitsum/infer"
    for name, inputs in cases.items():
        rows[name] = _answer(url, json.dumps({"inputs": inputs}).encode())
    rows["nesting 100,000 deep"] = _answer(url, b'{"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], '
                                                b'"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}")
    rows["/v1/read?rand=3.7"] = _answer(f"{service.url}/v1/read?rand=3.7", b"\xff\xd8\xff")
    rows["/v1/read?rand=%2B5"] = _answer(f"{service.url}/v1/read?rand=%2B5", b"\xff\xd8\xff")
    return rows


def _answer(url: str, body: bytes) -> dict:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=30) as response:
            return {"status": response.status, "error": None}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "error": json.loads(e.read()).get("error")}


# ---- the table --------------------------------------------------------------------------------------------------

def table(r: dict) -> str:
    s, slow, img, mem, over, net = r["stop"], r["slow"], r["costly"], r["memory"], r["overload"], r["listening"]
    rows = ["| case | what happened | goal |", "| --- | --- | --- |"]
    rows.append(f"| `kill -TERM -- -PGID` | exit {s['exit']} in {s['seconds']} s, \"stopped\": {s['stopped']}, "
                f"{s['processes_left']} processes left, port free: {s['port_free']}; restart on the port ready in "
                f"{s['restart_ready_s']} s | within 10 s, nothing left |")
    up, idle = slow["slow_uploads"], slow["idle"]
    rows.append(f"| 200 uploads at 1 byte/s + 200 idle connections | quiet /v1/read p99 {slow['quiet']['p99_ms']} ms "
                f"alone, {slow['beside']['p99_ms']} ms beside them ({slow['beside']['requests']} reads); slow: "
                f"{up['outcomes']} after ~{up['answered_after_s']} s; idle: {idle['outcomes']}; /healthz "
                f"{slow['healthz_status']} in {slow['healthz_s']} s | p99 within 2x of quiet |")
    c = img["costly"]
    rows.append(f"| 16 concurrent costly PNGs (40 MP 16-bit RGBA; 24 MP 8-bit grey) | 16-bit: HTTP "
                f"{img['huge_status']} in {img['huge_answer_ms']} ms; {c['accepted']} decoded, {c['refused_503']} "
                f"told to retry (503); quiet /v1/read p99 {img['quiet']['p99_ms']} ms alone, "
                f"{img['beside']['p99_ms']} ms beside | a normal read is not held up |")
    for name, m in mem["routes"].items():
        rows.append(f"| 128 concurrent maximum-size {name} ({m['body_bytes'] / 1e6:.1f} MB) | replica peak "
                    f"{m['peak_mb']:.0f} MB (idle {mem['idle_mb']:.0f} MB), {m['after_mb']:.0f} MB after; "
                    f"{m['accepted']} answered, {m['refused_503']} 503 + Retry-After, other {m['other']} | "
                    f"under 1 GB, back to idle |")
    b = over["beside"]
    rows.append(f"| {over['clients']} clients on /v1/read for {over['seconds']:g} s (honouring Retry-After) | "
                f"{over['accepted_per_s']} accepted/s, {over['refused_503']} refused with 503 + Retry-After, other "
                f"{over['other']}; a client beside them: p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms, statuses "
                f"{b['statuses']} (the 300 clients' own p99: {over['accepted_p99_ms']} ms accepted, "
                f"{over['refused_p99_ms']} ms refused, with their event loop's lag) | accepted p99 <= 250 ms |")
    wide = ", ".join(f"{x['process']}:{x['port']}" for x in net["all_interfaces"]) or "none"
    modes = ", ".join(f"{m} in a {d} folder" for _, m, d in net["admin_sockets"]) or "none found"
    rows.append(f"| what listens | {len(net['listening'])} ports, on every interface: {wide}; admin socket "
                f"{modes} | nothing on all interfaces; socket 0600 |")
    bad = r["malformed"]
    rows.append(f"| malformed v2 / rand | statuses {sorted({v['status'] for v in bad.values()})} for {len(bad)} "
                f"cases | every one a 400 |")
    return "\n".join(rows + page_table(r).splitlines()[2:])


def page_table(r: dict) -> str:
    """The page's rows: its clients beside the API, in each mode."""
    rows = ["| case | what happened | goal |", "| --- | --- | --- |"]
    for p in r.get("page", []):
        b, q = p["beside"], p["quiet"]
        rows.append(f"| {p['clients']} page clients on {PAGE_FILE} ({p['mode']}): half read nothing, half "
                    f"download it again and again | authenticated /v1/read p99 {q['p99_ms']} ms alone, "
                    f"{b['p99_ms']} ms beside them, statuses {b['statuses']}; slow: {p['slow']}; flooding: "
                    f"{p['flood']}; memory: largest growth {p['largest_growth_mb']} MB (one process), largest "
                    f"kept after {p['largest_kept_mb']} MB | p99 within 2x of alone, no 503; back within 50 MB |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/model.onnx")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each timed case")
    parser.add_argument("--overload-clients", type=int, default=300)
    parser.add_argument("--page-clients", type=int, default=100)
    parser.add_argument("--cases", choices=("all", "page"), default="all",
                        help="page: only the page's clients beside the API, in both modes")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    shared = SharedMachine()
    jpegs = camera_jpegs(32, seed=1)
    result: dict = {"machine": {**shared.header(), "onnxruntime": module_version("onnxruntime")}, "config": vars(args)}
    if args.cases == "all":
        _all_cases(args, jpegs, result)
    import tempfile

    result["page"] = []
    for mode in PAGE_MODES:
        say(f"{args.page_clients} page clients ({mode})")
        with tempfile.TemporaryDirectory(prefix="serve-abuse-") as folder:
            result["page"].append(case_page(args.model, mode, args.page_clients, args.seconds, Path(folder)))
    result["machine"].update(shared.footer())
    print(table(result) if args.cases == "all" else page_table(result))
    if args.json:
        write_json(args.json, result)


def _all_cases(args: argparse.Namespace, jpegs: list[bytes], result: dict) -> None:
    say("stop: kill -TERM -- -PGID, then a restart on the port")
    result["stop"] = case_stop(args.model)
    service = Service(args.model)
    try:
        max_images = json.loads(urllib_get(f"{service.url}/v1/model"))["serving"]["max_images"]
        say("listening sockets")
        result["listening"] = case_listening(service)
        say("malformed requests")
        result["malformed"] = case_malformed(service)
        say("slow and idle connections")
        result["slow"] = case_slow(service, jpegs, args.seconds + 5)
        say("costly images")
        result["costly"] = case_costly_images(service, jpegs, args.seconds)
        say("memory under maximum-size requests")
        result["memory"] = case_memory(service, max_images, args.seconds / 2)
        say(f"{args.overload_clients} clients")
        result["overload"] = case_overload(service, jpegs, args.overload_clients, args.seconds)
    finally:
        result["final_stop"] = service.stop()


def urllib_get(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


if __name__ == "__main__":
    main()
