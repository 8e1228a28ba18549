"""Load on `digitsum-edge serve`: N concurrent clients for T seconds against 1 and 2 replicas, beside the
ceiling measured in the same run (the same work in one process, without HTTP, on the same cores).

/v1/read: 640x480 JPEG camera frames (synth) -> decode + `live`'s preprocessing + inference; the ceiling
is the same decode + read in this process on one thread per core. /v1/predict: batches of 28x28 MNIST test
images; its ceiling is onnxruntime's session.run at the same batch size on all cores. Every server is a
`digitsum-edge serve` subprocess on 127.0.0.1, stopped with SIGTERM.
Goals on a 2-core machine: /v1/read >= 50 % of its ceiling, p99 <= 50 ms, no errors; /v1/predict
images/s within 2x of onnxruntime in-process; 300 clients at once on /v1/read: accepted requests p99 <= 250 ms,
the rest refused at once with 503 and Retry-After (never queued for seconds). Typical run: about three minutes.

    .venv/bin/python benchmarks/serve_load.py --model runs/model.onnx --json docs/serve_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import signal
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
import onnxruntime

from digitsum_edge import mnist
from digitsum_edge.apps.reader import load
from digitsum_edge.engine.factory import open_model
from digitsum_edge.files import write_json
from serve_clients import CLI, SharedMachine, background_cpu_share, camera_jpegs, closed_loop, free_port, say


def _threads_for(seconds: float, threads: int, work) -> tuple[int, float]:
    """Run work(index) in `threads` threads until `seconds` pass; (calls, elapsed)."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def loop(t: int) -> None:
        i = t
        while time.perf_counter() < stop:
            work(t, i)
            counts[t] += 1
            i += threads

    started = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts), time.perf_counter() - started


def read_ceiling(model: str, jpegs: list[bytes], threads: int, seconds: float) -> dict:
    """JPEG decode + preprocessing + inference in this process, one reader per thread (cv2 and onnxruntime
    release the GIL, the Python between them does not), no HTTP."""
    cv2.setNumThreads(1)
    readers = [load(model, "cpu", 1) for _ in range(threads)]

    def work(t: int, i: int) -> None:
        frame = cv2.imdecode(np.frombuffer(jpegs[i % len(jpegs)], np.uint8), cv2.IMREAD_COLOR)
        readers[t].read(frame, i % 10)

    _threads_for(1.0, threads, work)  # warm-up
    calls, elapsed = _threads_for(seconds, threads, work)
    return {"threads": threads, "frames": calls, "seconds": round(elapsed, 2),
            "frames_per_s": round(calls / elapsed, 1)}


def _one_process(model: str, jpegs: list[bytes], seconds: float) -> int:
    return read_ceiling(model, jpegs, 1, seconds)["frames"]


def read_ceiling_processes(model: str, jpegs: list[bytes], processes: int, seconds: float) -> dict:
    """The same work in `processes` processes, one thread each: no GIL shared, what the cores give at most."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        counts = list(pool.map(_one_process, [model] * processes, [jpegs] * processes, [seconds] * processes))
    return {"processes": processes, "frames": sum(counts), "frames_per_s": round(sum(counts) / seconds, 1)}


def predict_ceiling(model: str, images: np.ndarray, batch: int, threads: int, seconds: float) -> dict:
    """The model's backend at `batch` images with `threads` intra-op threads, in this process."""
    backend = open_model(model, "cpu", threads)
    image = backend.normalize(images[:batch])  # (batch, 1, 28, 28) float32
    rand = np.arange(batch, dtype=np.int64) % backend.info.num_rand
    _threads_for(0.5, 1, lambda t, i: backend.run(image, rand))
    calls, elapsed = _threads_for(seconds, 1, lambda t, i: backend.run(image, rand))
    return {"batch": batch, "threads": threads, "calls": calls, "images_per_s": round(calls * batch / elapsed, 1)}


def ceilings(model: str, jpegs: list[bytes], images: np.ndarray, batch: int, cores: int, seconds: float) -> dict:
    """Every in-process figure the service is compared with; predict's is the better of 1 and all threads."""
    predict = [predict_ceiling(model, images, batch, t, seconds / 3) for t in sorted({1, cores})]
    return {"read": read_ceiling(model, jpegs, cores, seconds / 2),
            "read_one_thread": read_ceiling(model, jpegs, 1, seconds / 3),
            "read_processes": read_ceiling_processes(model, jpegs, cores, seconds / 2),
            "predict": max(predict, key=lambda p: p["images_per_s"]), "predict_all": predict}


def start_server(model: str, replicas: int, port: int, args: argparse.Namespace) -> subprocess.Popen:
    command = [str(CLI), "-q", "serve", "--model", model, "--port", str(port), "--replicas", str(replicas),
               "--max-batch", str(args.max_batch), "--batch-wait-ms", str(args.batch_wait_ms),
               "--threads", str(args.threads)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"serve exited: {server.stderr.read() if server.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("serve did not become ready in 180 s")


def stop_server(server: subprocess.Popen) -> float:
    """SIGTERM, as a service manager stops it (SIGINT may be ignored in a script's background job); seconds
    until it exited."""
    started = time.perf_counter()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(90)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        raise SystemExit("serve did not stop within 90 s of SIGTERM") from None
    return round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/model.onnx")
    parser.add_argument("--replicas", default="1,2", help="comma-separated replica counts")
    parser.add_argument("--clients", type=int, default=8, help="concurrent /v1/read clients")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per load run")
    parser.add_argument("--frames", type=int, default=64, help="distinct 640x480 JPEG frames sent in turn")
    parser.add_argument("--batch", type=int, default=256, help="images per /v1/predict request")
    parser.add_argument("--predict-clients", type=int, default=4)
    parser.add_argument("--max-batch", type=int, default=256, help="serve --max-batch")
    parser.add_argument("--batch-wait-ms", type=float, default=2.0, help="serve --batch-wait-ms")
    parser.add_argument("--threads", type=int, default=1, help="serve --threads (per replica)")
    parser.add_argument("--overload-clients", type=int, default=300,
                        help="/v1/read clients at once against the first replica count (0: no overload run)")
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    shared = SharedMachine()  # other processes' load just before the run
    jpegs = camera_jpegs(args.frames, seed=0)
    images = mnist.load("test").images
    batches = [images[i:i + args.batch].tobytes() for i in range(0, 8 * args.batch, args.batch)]
    # The ceilings before and after the load runs: the machine's other load drifts, the mean is compared with
    before = ceilings(args.model, jpegs, images, args.batch, cores, args.seconds)
    say(f"ceiling: /v1/read work {before['read']['frames_per_s']:.0f} frames/s ({cores} threads in one "
         f"process), predict {before['predict']['images_per_s']:.0f} images/s")
    runs = []
    for replicas in (int(r) for r in args.replicas.split(",")):
        port = free_port()
        started = time.perf_counter()
        server = start_server(args.model, replicas, port, args)
        ready_s = round(time.perf_counter() - started, 1)
        try:
            url = f"http://127.0.0.1:{port}"
            read = asyncio.run(closed_loop(f"{url}/v1/read", jpegs, args.clients, args.seconds, 1))
            predict = asyncio.run(closed_loop(f"{url}/v1/predict", batches, args.predict_clients, args.seconds / 2,
                                        args.batch))
            overload = None
            if args.overload_clients and not runs:  # what too many clients get: answers, or 503 at once
                overload = asyncio.run(closed_loop(f"{url}/v1/read", jpegs, args.overload_clients, args.seconds / 2, 1))
                say(f"{args.overload_clients} clients: {overload['requests_per_s']:.0f} req/s accepted, p99 "
                     f"{overload['p99_ms']} ms; {overload['refused_retry_after']} refused with Retry-After "
                     f"(p99 {overload['refused_p99_ms']} ms), {overload['errors']} errors")
        finally:
            stopped_s = stop_server(server)
        runs.append({"replicas": replicas, "ready_s": ready_s, "stop_s": stopped_s, "read": read, "predict": predict,
                     **({"overload": overload} if overload else {})})
        say(f"{replicas} replica(s): /v1/read {read['requests_per_s']:.0f} req/s, p50 {read['p50_ms']} ms, p99 "
             f"{read['p99_ms']} ms, {read['errors']} errors | /v1/predict {predict['images_per_s']:.0f} images/s, "
             f"{predict['errors']} errors")
    after = ceilings(args.model, jpegs, images, args.batch, cores, args.seconds)
    ceiling = {"read": _mean(before, after, "read", "frames_per_s"),
               "read_processes": _mean(before, after, "read_processes", "frames_per_s"),
               "predict": _mean(before, after, "predict", "images_per_s"), "before": before, "after": after}
    for run in runs:
        run["read"]["share_of_ceiling"] = round(run["read"]["requests_per_s"] / ceiling["read"], 3)
        run["read"]["share_of_process_ceiling"] = round(run["read"]["requests_per_s"] / ceiling["read_processes"], 3)
        run["predict"]["share_of_ceiling"] = round(run["predict"]["images_per_s"] / ceiling["predict"], 3)
    result = {
        "machine": {**shared.header(python=platform.python_version(), onnxruntime=onnxruntime.__version__),
                    "background_cpu_share_after": background_cpu_share()},
        "config": {**vars(args), "frame": "640x480 JPEG q90",
                   "read_ceiling": f"cv2.imdecode + DigitReader.read in one process, {cores} threads, one reader "
                                   f"each; read_processes: the same in {cores} processes",
                   "predict_ceiling": f"session.run in one process, batch {args.batch}, the better of 1 and "
                                      f"{cores} intra-op threads"},
        "ceiling": ceiling, "runs": runs,
        "goals": {"read_share_of_ceiling": 0.5, "read_p99_ms": 50, "errors": 0, "predict_share_of_ceiling": 0.5,
                  "overload_accepted_p99_ms": 250}}
    print(table(result))
    if args.json:
        write_json(args.json, result)


def _mean(before: dict, after: dict, key: str, field: str) -> float:
    return round((before[key][field] + after[key][field]) / 2, 1)


def table(result: dict) -> str:
    """The README table: the ceilings (mean of before and after), then one row per endpoint and replica count."""
    c, config = result["ceiling"], result["config"]
    rows = ["| what | clients | requests/s | images/s | p50 ms | p99 ms | errors | of the ceiling |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            f"| ceiling: JPEG decode + read, one process, {result['machine']['cores']} threads, no HTTP | - | "
            f"{c['read']:,.0f} | {c['read']:,.0f} | - | - | - | 100 % |",
            f"| (the same in {result['machine']['cores']} processes) | - | {c['read_processes']:,.0f} | "
            f"{c['read_processes']:,.0f} | - | - | - | |",
            f"| ceiling: session.run, batch {config['batch']}, one process | - | - | {c['predict']:,.0f} | - | - | - "
            "| 100 % |"]
    for run in result["runs"]:
        for name, key in (("/v1/read, 640x480 JPEG", "read"), (f"/v1/predict, {config['batch']} images", "predict")):
            r = run[key]
            rows.append(f"| {name}, {run['replicas']} replica{'s' * (run['replicas'] > 1)} | {r['clients']} | "
                        f"{r['requests_per_s']:,.0f} | {r['images_per_s']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | "
                        f"{r['errors']} | {r['share_of_ceiling']:.0%} |")
        if "overload" in run:
            o = run["overload"]
            rows.append(f"| /v1/read, {o['clients']} clients at once, {run['replicas']} replica"
                        f"{'s' * (run['replicas'] > 1)}: accepted (and refused with 503 + Retry-After) | "
                        f"{o['clients']} | {o['requests_per_s']:,.0f} ({o['refused_retry_after'] / o['seconds']:,.0f}"
                        f" refused/s, p99 {o['refused_p99_ms']} ms) | {o['images_per_s']:,.0f} | {o['p50_ms']} | "
                        f"{o['p99_ms']} | {o['errors']} | |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
