"""`digitsum-edge serve` options: one dataclass, defaults in one place, each field a CLI option.

Importing this loads nothing heavy (no Ray, onnxruntime or OpenCV): the CLI builds it for --help.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitsum_edge.engine.backend import PROVIDERS
from digitsum_edge.errors import DigitsumError
from digitsum_edge.layout import DEFAULT_MODEL
from digitsum_edge.vision.settings import CAMERA, ReadingSettings, with_settings
from digitsum_edge.vision.settings import OPTIONS as READING_ARGS  # ServeConfig.reading's fields, named flat

LOCAL = "local"  # --address local: start a Ray instance in this process (the default)
_CLUSTER = re.compile(r"^(auto|ray://[^\s/:]+(:\d{1,5})?|[^\s/:]+:\d{1,5})$")


@dataclass
class ServeConfig:
    """What `digitsum-edge serve` runs and where it listens."""

    model: str = DEFAULT_MODEL  # a .onnx file written by `digitsum-edge export`; its bytes go to every replica
    host: str = "127.0.0.1"  # where the HTTP proxy listens (0.0.0.0: every interface)
    port: int = 8000
    replicas: int = 1  # copies of the model, each a Ray actor with one ONNX Runtime session
    max_batch: int = 64  # images run in one ONNX Runtime call at most (Ray Serve's @serve.batch)
    batch_wait_ms: float = 2.0  # how long a batch waits for more requests once the first arrived
    address: str = LOCAL  # local: a new Ray instance here; auto or ray://HOST:10001: join that cluster
    # A local instance runs Ray Serve's high-throughput mode: HAProxy in front of replicas that speak HTTP
    # themselves (RAY_SERVE_ENABLE_HA_PROXY, RAY_SERVE_THROUGHPUT_OPTIMIZED); False: Ray's Python proxy.
    # A cluster joined with --address has its own setting (the environment its `ray start` ran in).
    haproxy: bool = True
    provider: str = "auto"  # auto | cuda | cpu, on each replica's node
    threads: int = 1  # per replica: image decoding and preprocessing threads (onnxruntime runs on one thread)
    # /v1/read reads frames as `live` reads a camera's: --roi, --ink, --min-confidence (flat, as READING_ARGS, on
    # the command line and in a Serve config file's args)
    reading: ReadingSettings = CAMERA
    max_body_mb: float = 8.0  # larger request bodies are refused with HTTP 400
    # No client may stall the others: a request's headers and body must arrive within read_timeout_s, and its
    # body at least min_upload_kbps on average (HTTP 408 otherwise; HAProxy's `timeout http-request` too).
    read_timeout_s: float = 10.0
    min_upload_kbps: float = 64.0
    # Bounded cost: images per request (HTTP 400 beyond), and per replica the body bytes held at once and the
    # requests waiting for decoding or the model (HTTP 503 with Retry-After beyond: answered, not queued).
    max_images: int = 4096
    max_inflight_mb: float = 64.0
    max_queued: int = 16  # also HAProxy's maxconn per replica: more waits at most 100 ms there, then 503
    # With a token, every /v1 and /v2 route wants `Authorization: Bearer TOKEN` (401 otherwise); /healthz and the
    # page stay open. The token comes from DIGITSUM_EDGE_TOKEN or this file (mode 0600), never from a command line
    # (serve/auth.py); a --host other machines reach needs one, or no_token said outright.
    token_file: str | None = None
    no_token: bool = False
    # HTTPS: browsers give a page the camera only over https:// (or from localhost), so the page on other
    # machines and phones needs these. HAProxy ends the TLS (TLS 1.2 and later); with --no-haproxy, Ray's proxy.
    ssl_certfile: str | None = None  # PEM certificate (chain)
    ssl_keyfile: str | None = None  # PEM private key
    # The page at / is the web app (`digitsum-edge web`) for this model, kept in this folder: reused when it holds
    # the app for this very model file, built again otherwise. None: a folder in ~/.cache/digitsum-edge.
    web: str | None = None
    api_docs: bool = False  # /docs (Swagger UI, from a CDN) and /openapi.json: off unless asked for
    # The page's downloads are bounded by HAProxy started here (a backend of its own, timeouts). Ray's Python proxy
    # (--no-haproxy, a cluster joined with --address, Ray's `serve run`/`serve deploy` of the builder) keeps every
    # download in its memory until the client has read it: there the page is off unless this says otherwise.
    page_without_haproxy: bool = False


def with_reading(options: dict[str, Any]) -> dict[str, Any]:
    """Options (the CLI's, a builder's arguments) with READING_ARGS made into `reading` (a camera's by default)."""
    return with_settings(options, CAMERA)


def reading_args(cfg: ServeConfig) -> dict[str, Any]:
    """cfg.reading as flat options."""
    return {name: getattr(cfg.reading, name) for name in READING_ARGS}


def uses_haproxy(cfg: ServeConfig) -> bool:
    """Ray Serve's HAProxy ingress: asked for, on a Ray instance started here (HTTPS too: HAProxy ends the TLS)."""
    return cfg.haproxy and cfg.address == LOCAL


UNBOUNDED_PAGE = ("Ray's Python proxy would hold every page download in memory until its client read it; the page "
                  "is served with HAProxy (serve's default) or --page-without-haproxy, or host it apart: "
                  "digitsum-edge web DIR, then python -m digitsum_edge.web.host DIR")


def serves_page(cfg: ServeConfig, haproxy: bool) -> bool:
    """Whether / serves the web app: behind HAProxy started here (`haproxy`), or where it is asked for outright."""
    return haproxy or cfg.page_without_haproxy


def check_config(cfg: ServeConfig, listen: bool = True) -> None:
    """Reject bad options before Ray starts (the model itself is opened next, also before Ray); `listen`: the
    port must be free here (not for an application deployed onto a running Serve, whose proxy holds it)."""
    if cfg.provider not in PROVIDERS:
        raise DigitsumError(f"unknown provider {cfg.provider!r} (choose from {', '.join(PROVIDERS)})")
    if not 1 <= cfg.port <= 65535:
        raise DigitsumError(f"--port must be in 1-65535, got {cfg.port}")
    for name in ("replicas", "max_batch", "threads", "max_images", "max_queued"):
        if getattr(cfg, name) < 1:
            raise DigitsumError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if not 0 <= cfg.batch_wait_ms <= 1000:
        raise DigitsumError(f"--batch-wait-ms must be in 0-1000, got {cfg.batch_wait_ms}")
    if not 0 < cfg.max_body_mb <= 1024:
        raise DigitsumError(f"--max-body-mb must be in (0, 1024], got {cfg.max_body_mb}")
    if not cfg.max_body_mb <= cfg.max_inflight_mb <= 65536:
        raise DigitsumError(f"--max-inflight-mb must be at least --max-body-mb ({cfg.max_body_mb:g}) and at most "
                            f"65536, got {cfg.max_inflight_mb:g}")
    if not 1 <= cfg.read_timeout_s <= 3600:
        raise DigitsumError(f"--read-timeout-s must be in 1-3600, got {cfg.read_timeout_s:g}")
    if not 0 < cfg.min_upload_kbps <= 1e6:
        raise DigitsumError(f"--min-upload-kbps must be in (0, 1e6], got {cfg.min_upload_kbps:g}")
    if cfg.address != LOCAL and not _CLUSTER.match(cfg.address):
        raise DigitsumError(f"--address must be local, auto, ray://HOST[:PORT] or HOST:PORT, got {cfg.address!r}")
    if bool(cfg.ssl_certfile) != bool(cfg.ssl_keyfile):
        raise DigitsumError("HTTPS needs both --ssl-certfile and --ssl-keyfile")
    for path in (cfg.ssl_certfile, cfg.ssl_keyfile):
        if path and not Path(path).is_file():
            raise DigitsumError(f"{path} does not exist" if not Path(path).exists() else f"{path} is not a file")
    if listen and cfg.address == LOCAL:
        check_port_free(cfg.host, cfg.port)


def check_port_free(host: str, port: int) -> None:
    """The HTTP port can be bound here; otherwise Ray's proxy would retry for a minute, then fail obscurely."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise DigitsumError(f"--host {host}: {e.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as e:
            raise DigitsumError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def max_body_bytes(cfg: ServeConfig) -> int:
    return int(cfg.max_body_mb * 1024 * 1024)


def max_inflight_bytes(cfg: ServeConfig) -> int:
    return int(cfg.max_inflight_mb * 1024 * 1024)
