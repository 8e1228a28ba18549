"""The Ray Serve deployment: a FastAPI ingress whose replicas each hold one ONNX Runtime session, and one
`@serve.batch` method through which every request's images reach the model.

Routes: POST /v1/read (an image, `live`'s reading), POST /v1/predict (a batch of 28x28 images), the Open
Inference Protocol under /v2, GET /healthz, GET /v1/model, and GET / (the web app, serve/page.py).

No `from __future__ import annotations` here: FastAPI reads the route signatures' annotations as objects.
"""

import asyncio
import contextlib
import ctypes
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import ray
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from ray import serve
from starlette.exceptions import HTTPException

from digitsum_edge import onnx_contract
from digitsum_edge.apps.reader import Prediction, PreparedFrame, load
from digitsum_edge.errors import DigitsumError, first_line
from digitsum_edge.onnx_contract import MODEL_NAME, MODEL_VERSION
from digitsum_edge.serve import images as image_bodies
from digitsum_edge.serve import protocol
from digitsum_edge.serve.auth import TokenSource
from digitsum_edge.serve.config import ServeConfig, max_body_bytes, max_inflight_bytes
from digitsum_edge.serve.limits import (
    RETRY_AFTER_S,
    BodyRules,
    Gate,
    TooSlow,
    Unauthorized,
    Unavailable,
    check_token,
    read_body,
)
from digitsum_edge.serve.page import Page
from digitsum_edge.serve.protocol import BadRequest
from digitsum_edge.serve.served import PageAnswer, ServedPage

# /docs and /openapi.json are routes below that answer only with `serve --api-docs` (404 otherwise)
api = FastAPI(title="digitsum-edge", summary="A handwritten digit, and the digit plus rand",
              docs_url=None, redoc_url=None, openapi_url=None)
api.router.redirect_slashes = False  # /app.js/ is a 404, not a redirect to a URL built from the Host header
_V2_MODEL = f"/v2/models/{MODEL_NAME}"
LARGE_IMAGE = 8 * 2**20  # decoded bytes above which an image waits in its own lane, not before small ones
LARGE_WAITING = 2  # large images waiting for that lane at once per replica (503 + Retry-After beyond)
TRIM_AFTER = 2**20  # once bodies this large are all answered, the heap is given back to the system
PROBE_TIMEOUT_S = 2.0  # /healthz: one image through the batcher and the model within this, or 503


@api.exception_handler(DigitsumError)
async def _bad_request(request: Request, e: DigitsumError) -> JSONResponse:
    """Every refusal of a request is HTTP 400 and one line; the replica goes on serving."""
    return JSONResponse({"error": str(e)}, status_code=400)


@api.exception_handler(Unavailable)
async def _busy(request: Request, e: Unavailable) -> JSONResponse:
    """Full (bytes held or requests waiting): answered at once with when to try again, not queued for seconds."""
    return JSONResponse({"error": str(e)}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


@api.exception_handler(TooSlow)
async def _too_slow(request: Request, e: TooSlow) -> JSONResponse:
    """A body that did not arrive in time: 408, and the connection is closed."""
    return JSONResponse({"error": str(e)}, status_code=408, headers={"Connection": "close"})


@api.middleware("http")
async def _token(request: Request, call_next) -> Response:  # call_next: Starlette's next handler
    """With a token, /v1 and /v2 want it (401 with one JSON line); /healthz and the page do not. Every answer
    carries the security headers (served.py)."""
    security = getattr(request.app.state, "security", {})
    try:
        check_token(request.headers.get("authorization"), getattr(request.app.state, "token", None), request.url.path)
    except Unauthorized as e:
        return JSONResponse({"error": str(e)}, status_code=401, headers={"WWW-Authenticate": "Bearer", **security})
    response = await call_next(request)
    response.headers.update(security)
    return response


@api.exception_handler(HTTPException)
async def _http_error(request: Request, e: HTTPException) -> JSONResponse:
    """Unknown routes and methods keep the same shape of error: {"error": "..."}."""
    return JSONResponse({"error": f"{e.detail}: {request.method} {request.url.path}"}, status_code=e.status_code)


@api.exception_handler(Exception)
async def _internal_error(request: Request, e: Exception) -> JSONResponse:
    """A bug or a failing model call: HTTP 500, still one line of JSON (Ray logs the traceback)."""
    return JSONResponse({"error": f"internal error: {first_line(e)}"}, status_code=500)


def _trim_heap() -> None:
    """glibc keeps freed memory of the pool's threads in their arenas: return it, so the replica settles back to
    its idle size after a burst of large requests (elsewhere, nothing to do)."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _lower_priority() -> None:
    """This thread (Linux: a thread has its own nice value) yields the cores to the replica's other threads."""
    with contextlib.suppress(OSError, AttributeError):  # not permitted, or not Linux: the lane still bounds it
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _rows(items: list[tuple[np.ndarray, np.ndarray]]) -> int:
    """The size of a batch is its images, not its requests (a request may carry many)."""
    return sum(len(rand) for _, rand in items)


# Defined before the deployment: Ray Serve pickles the class with the module globals it has at that point
class _PageResponse(Response):
    """A page file sent by ServedPage.send: in chunks, within the page's slot and send timeout."""

    def __init__(self, page: ServedPage, answer: PageAnswer) -> None:  # no super().__init__: nothing to render
        self.page, self.answer, self.status_code = page, answer, answer.status
        self.background = None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await self.page.send(self.answer, send)


@serve.deployment(name=MODEL_NAME)
@serve.ingress(api)
class DigitsumService:
    """One replica: the model, a thread pool for decoding and preprocessing, and the batched model call."""

    def __init__(self, cfg: ServeConfig, model_bytes: bytes, model_name: str, page: Page,
                 token: TokenSource) -> None:
        import cv2

        cv2.setNumThreads(1)  # parallelism comes from the pool and from replicas, not from inside OpenCV
        with tempfile.TemporaryDirectory(prefix="digitsum-serve-") as folder:  # the replica's node may not
            path = Path(folder) / model_name  # share the driver's disk: the file travels as bytes
            path.write_bytes(model_bytes)
            # One onnxruntime thread: a batch of 64 28x28 images takes about a millisecond, and a second
            # thread spinning beside the decoding threads costs more than it gives; replicas add cores.
            self.reader = load(path, provider=cfg.provider, threads=1, settings=cfg.reading)
        self.cfg, self.info, self.backend = cfg, self.reader.info, self.reader.backend
        api.state.token = token.load()  # read by the _token middleware (one service per replica process)
        self.model_file = {"name": model_name, "bytes": len(model_bytes),
                           "sha256": hashlib.sha256(model_bytes).hexdigest()}
        self.max_body = max_body_bytes(cfg)
        self.rules = BodyRules(self.max_body, cfg.read_timeout_s, cfg.min_upload_kbps * 1024)
        self.held_bytes = Gate(max_inflight_bytes(cfg), "request bodies held")
        self.waiting = Gate(cfg.max_queued, "requests waiting for decoding or the model")
        self.pool = ThreadPoolExecutor(cfg.threads, thread_name_prefix="digitsum-read")
        self.large_pool = ThreadPoolExecutor(1, thread_name_prefix="digitsum-large",  # big images: own lane,
                                             initializer=_lower_priority)  # behind the camera frames for a core
        self.large_waiting = Gate(LARGE_WAITING, "large images waiting to be decoded")
        # /v1/read: a large JPEG is decoded reduced while the region read keeps 4x the reader's working size
        self.keep = int(4 * self.reader.preprocess.work_size / cfg.reading.fraction)
        self.rng = np.random.default_rng()
        self.page = ServedPage(page, bool(cfg.ssl_certfile), cfg.read_timeout_s)  # the web app, from memory
        api.state.security = self.page.security
        self.model_calls = self.images = 0  # how well requests were batched, in /v1/model
        # @serve.batch's documented setters; its type hints show only the wrapped method
        self.infer.set_max_batch_size(cfg.max_batch)  # type: ignore[attr-defined]
        self.infer.set_batch_wait_timeout_s(cfg.batch_wait_ms / 1e3)  # type: ignore[attr-defined]

    @serve.batch(batch_size_fn=_rows)
    async def infer(self, items: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Ray Serve's batching: (images, rand (n,) int64) per request -> logits each. Images are uint8
        (n, 28, 28) pixels, normalised here a batch at a time, or (n, 1, 28, 28) float32 already normalised."""
        images = [self.backend.normalize(i) if i.dtype == np.uint8 else i for i, _ in items]
        image = np.concatenate(images) if len(items) > 1 else images[0]
        rand = np.concatenate([r for _, r in items]) if len(items) > 1 else items[0][1]
        digit_logits, sum_logits = self.backend.run(image, rand)
        self.model_calls += 1
        ends = np.cumsum([len(r) for _, r in items])[:-1]
        return list(zip(np.split(digit_logits, ends), np.split(sum_logits, ends), strict=True))

    async def logits(self, image: np.ndarray, rand: np.ndarray, count: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Any number of images: through the batcher in pieces of at most max_batch (`count`: in /v1/model's
        images, which health probes are not)."""
        step = self.cfg.max_batch
        self.images += len(rand) if count else 0
        if len(rand) <= step:
            return await self.infer((image, rand))
        parts = await asyncio.gather(*(self.infer((image[i:i + step], rand[i:i + step]))
                                       for i in range(0, len(rand), step)))
        return np.concatenate([d for d, _ in parts]), np.concatenate([s for _, s in parts])

    @asynccontextmanager
    async def body(self, request: Request) -> AsyncIterator[bytes]:
        """The request body, read under the deadline and minimum rate (408), refused (400) past --max-body-mb;
        its bytes count against --max-inflight-mb (503) until the request is answered."""
        if request.headers.get("content-encoding", "identity") != "identity":
            raise BadRequest(f"Content-Encoding {request.headers['content-encoding']!r} is not supported")
        declared = request.headers.get("content-length", "")
        data = await read_body(request.stream(), int(declared) if declared.isdigit() else None, self.rules,
                               self.held_bytes)
        try:
            yield data
        finally:
            self.held_bytes.give(len(data))
            if self.held_bytes.held == 0 and len(data) >= TRIM_AFTER:
                _trim_heap()

    def _prepare(self, data: bytes) -> PreparedFrame:
        """In a pool: decode the image, then the reader's first stage, as `live` reads a frame."""
        return self.reader.prepare(image_bodies.decode_image(data, self.keep))

    async def _framed(self, data: bytes) -> PreparedFrame:
        """Decode and prepare in the pool; an image costly to decode waits in its own lane, not before others."""
        header = image_bodies.image_header(data)
        factor = image_bodies.reduction(header, self.keep)
        image_bodies.check_decode(header, factor)
        loop = asyncio.get_running_loop()
        if header.decode_bytes(factor) <= LARGE_IMAGE:
            return await loop.run_in_executor(self.pool, self._prepare, data)
        with self.large_waiting.enter():
            return await loop.run_in_executor(self.large_pool, self._prepare, data)

    @api.post("/v1/read")
    async def read(self, request: Request) -> JSONResponse:
        """PNG or JPEG bytes, ?rand=N -> the fields of a `live` JSON line."""
        rand = protocol.parse_rand(request.query_params.get("rand"), 1, self.info.num_rand, self.rng)
        async with self.body(request) as data:
            with self.waiting.enter():
                framed = await self._framed(data)
                logits, infer_ms = None, 0.0
                if framed.prep.mnist is not None:  # the reader's second stage, batched with other requests'
                    started = time.perf_counter()
                    logits = await self.logits(framed.prep.mnist[None], rand)
                    infer_ms = (time.perf_counter() - started) * 1e3
        reading = self.reader.reading(framed, int(rand[0]), logits, infer_ms)
        return JSONResponse({**reading.to_dict(), "provider": self.reader.provider})

    @api.post("/v1/predict")
    async def predict(self, request: Request) -> JSONResponse:
        """N x 28 x 28 uint8 pixels (white on black), ?rand=N or ?rand=a,b,c -> digits and sums."""
        async with self.body(request) as data:
            images = protocol.parse_images(data, self.info.input_size, self.cfg.max_images)
            rand = protocol.parse_rand(request.query_params.get("rand"), len(images), self.info.num_rand, self.rng)
            with self.waiting.enter():
                read = Prediction.from_logits(*await self.logits(images, rand))
        return JSONResponse({"rand": rand.tolist(), "digits": read.digits.tolist(),
                             "digit_confidences": read.digit_confidences.round(4).tolist(),
                             "sums": read.sums.tolist(), "sum_confidences": read.sum_confidences.round(4).tolist()})

    async def probe(self, timeout_s: float) -> None:
        """One blank image through the batcher and the model within `timeout_s`: can this replica answer?"""
        size = self.info.input_size
        await asyncio.wait_for(self.logits(np.zeros((1, size, size), np.uint8), np.zeros(1, np.int64), False),
                               timeout_s)

    async def check_health(self) -> None:
        """Ray Serve's periodic health check (and HAProxy's through it): the model answers."""
        await self.probe(5 * PROBE_TIMEOUT_S)

    @api.get("/healthz")
    async def healthz(self) -> JSONResponse:
        """Ready (200) when this replica has its model loaded and answers a model call now; 503 otherwise."""
        state = {"model": self.model_file["name"], "provider": self.reader.provider}
        try:
            await self.probe(PROBE_TIMEOUT_S)
        except Exception as e:  # a stuck or failing model call
            return JSONResponse({"status": "unavailable", **state, "error": first_line(e)}, status_code=503,
                                headers={"Retry-After": str(RETRY_AFTER_S)})
        return JSONResponse({"status": "ready", **state})

    @api.get("/v1/model")
    async def model(self) -> dict:
        """The model's metadata and how it is served."""
        return {"name": MODEL_NAME, "version": MODEL_VERSION, "file": self.model_file, "provider":
                self.reader.provider, "inputs": list(onnx_contract.INPUTS), "outputs": list(onnx_contract.OUTPUTS),
                "metadata": asdict(self.info), "num_sums": self.info.num_sums,
                "serving": {"replicas": self.cfg.replicas, "max_batch": self.cfg.max_batch,
                            "batch_wait_ms": self.cfg.batch_wait_ms, "threads": self.cfg.threads,
                            **self.cfg.reading.as_json(), "max_body_bytes": self.max_body,
                            "max_images": self.cfg.max_images, "max_queued": self.cfg.max_queued,
                            "max_inflight_bytes": self.held_bytes.limit, "read_timeout_s": self.cfg.read_timeout_s,
                            "token": api.state.token is not None},
                "replica": {"id": serve.get_replica_context().replica_id.unique_id,
                            "node_id": ray.get_runtime_context().get_node_id(),
                            "model_calls": self.model_calls, "images": self.images,
                            "held_bytes": self.held_bytes.held, "waiting": self.waiting.held,
                            "refused_busy": self.held_bytes.refused + self.waiting.refused
                            + self.large_waiting.refused}}

    # ---- Open Inference Protocol (KServe v2) -------------------------------------------------------------

    @api.get("/v2")
    async def v2_server(self) -> dict:
        return protocol.server_metadata()

    @api.get("/v2/health/live")
    @api.get("/v2/health/ready")
    async def v2_health(self) -> Response:
        return Response(status_code=200)

    @api.get(_V2_MODEL)
    @api.get(f"{_V2_MODEL}/versions/{{version}}")
    async def v2_model(self, version: str = MODEL_VERSION) -> dict:
        self._check_version(version)
        return protocol.model_metadata(self.info, MODEL_NAME, MODEL_VERSION)

    @api.get(f"{_V2_MODEL}/ready")
    @api.get(f"{_V2_MODEL}/versions/{{version}}/ready")
    async def v2_model_ready(self, version: str = MODEL_VERSION) -> Response:
        self._check_version(version)
        return Response(status_code=200)

    @api.post(f"{_V2_MODEL}/infer")
    @api.post(f"{_V2_MODEL}/versions/{{version}}/infer")
    async def v2_infer(self, request: Request, version: str = MODEL_VERSION) -> Response:
        """Tensors in, logits out: image FP32 [N, 1, 28, 28] and rand INT64 [N] -> digit_logits, sum_logits."""
        self._check_version(version)
        async with self.body(request) as body:
            with self.waiting.enter():  # JSON parsing in the pool: a large body is not parsed on the event loop
                parsed = await asyncio.get_running_loop().run_in_executor(
                    self.pool, protocol.parse_infer, body, request.headers.get(protocol.HEADER_LENGTH), self.info,
                    self.cfg.max_images)
                digit_logits, sum_logits = await self.logits(parsed.image, parsed.rand)
        content, headers = protocol.infer_response(
            parsed, dict(zip(onnx_contract.OUTPUTS, (digit_logits, sum_logits), strict=True)), MODEL_NAME,
            MODEL_VERSION)
        return Response(content, headers=headers)

    def _check_version(self, version: str) -> None:
        if version != MODEL_VERSION:
            raise BadRequest(f"model {MODEL_NAME!r} has version {MODEL_VERSION} only, not {version!r}")

    # ---- The web app (last: its one-segment route must not take /v2 or /healthz) --------------------------

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi(self) -> JSONResponse:
        """The OpenAPI schema, with `serve --api-docs` only."""
        self._check_docs()
        return JSONResponse(api.openapi())

    @api.get("/docs", include_in_schema=False)
    async def docs(self) -> HTMLResponse:
        """Swagger UI (its script and style come from a CDN), with `serve --api-docs` only."""
        self._check_docs()
        return get_swagger_ui_html(openapi_url="/openapi.json", title="digitsum-edge API")

    def _check_docs(self) -> None:
        if not self.cfg.api_docs:
            raise HTTPException(404, "Not Found")

    # ---- The web app (last: its one-segment route must not take /v2 or /healthz) --------------------------

    @api.api_route("/", methods=["GET", "HEAD"])
    @api.api_route("/{name}", methods=["GET", "HEAD"])
    @api.api_route("/vendor/{name}", methods=["GET", "HEAD"])
    async def page_file(self, request: Request) -> Response:
        """The web app: index.html at /, the files its build wrote beside it (404 for others), from memory."""
        answer = self.page.answer(request.method, request.url.path, request.headers.get("accept-encoding"),
                                  request.headers.get("if-none-match"))
        if answer is None:
            raise HTTPException(404, "Not Found")
        if not answer.body:  # HEAD, 304
            return Response(status_code=answer.status, headers=answer.headers)
        await self.page.slot()  # the page's own budget: 503 + Retry-After when it stays full
        return _PageResponse(self.page, answer)
