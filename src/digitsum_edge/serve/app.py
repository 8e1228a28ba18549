"""Start Ray (a local instance, or join a cluster), run the service on Ray Serve, and shut down cleanly.

    url = start(cfg)   # returns once every replica has its model loaded
    stop()             # the application, Serve and (when this process started it) Ray itself
    run(cfg)           # start, wait for Ctrl-C or SIGTERM, stop: what `digitsum-edge serve` does
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from digitsum_edge.errors import DigitsumError, first_line
from digitsum_edge.serve.config import LOCAL, ServeConfig, check_config, uses_haproxy

APP_NAME = "digitsum-edge"  # the Ray Serve application
QUIET = {"log_level": "WARNING", "enable_access_log": False}  # Ray's own log files: no line per request
log = logging.getLogger(__name__)


def read_model(cfg: ServeConfig) -> bytes:
    """Open the model here first, so a bad file is one line before Ray starts; replicas get its bytes."""
    from digitsum_edge.runtime.reader import load

    load(cfg.model, "cpu", 1, cfg.roi, cfg.ink)  # the contract check that every replica repeats
    return Path(cfg.model).read_bytes()


def _environment(cfg: ServeConfig) -> None:
    """Ray reads these when it is imported and passes them to the processes of a Ray instance it starts."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network beyond what the user asked for
    if uses_haproxy(cfg):  # Ray Serve's documented high-throughput mode
        os.environ.setdefault("RAY_SERVE_ENABLE_HA_PROXY", "1")
        os.environ.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")
        # Replicas behind HAProxy wait this long for outside load balancers to forget them before they stop
        # (30 s by default); here HAProxy is ours and stops with them.
        os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")
        # HAProxy's stats and Prometheus ports and Ray's fallback proxy ports are fixed by default (8404, 9101,
        # 8500, 9500): free ones let two services (or a test beside a demo) run on one machine.
        for name in ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT",
                     "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT", "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT"):
            os.environ.setdefault(name, str(_free_port()))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def _quiet_ray() -> None:
    for name in ("ray", "ray.serve"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # A new local instance gets Ray's token authentication, as it should; its warning that it did is noise here
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)


def _init_ray(cfg: ServeConfig) -> None:
    import ray

    local = cfg.address == LOCAL
    options: dict = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                     "configure_logging": True}
    if local:  # every replica reserves one CPU: let a small machine hold as many replicas as asked for
        options |= {"num_cpus": max(os.cpu_count() or 1, cfg.replicas), "object_store_memory": 256 * 2**20}
    on_term = signal.getsignal(signal.SIGTERM)
    try:
        with warnings.catch_warnings():  # Ray Client warns about a time-out before it raises it: one line here
            warnings.simplefilter("ignore")
            ray.init(address=None if local else cfg.address, **options)
    except Exception as e:  # ConnectionError, TimeoutError, ValueError from a bad or dead address
        hint = (" (is Ray Client listening there? A cluster with token authentication also needs "
                "RAY_AUTH_MODE=token and its token)" if cfg.address.startswith("ray://") else "")
        raise DigitsumError(f"cannot {'start Ray' if local else f'join the Ray cluster at {cfg.address}'}: "
                            f"{first_line(e)}{hint}") from None
    finally:  # ray.init puts its own SIGTERM handler (a stack dump and exit) in place of the caller's
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)


def start(cfg: ServeConfig) -> str:
    """Start Ray and the service; return its URL once every replica is ready. On failure nothing is left."""
    check_config(cfg)
    model_bytes = read_model(cfg)
    _environment(cfg)
    _quiet_ray()
    from ray import serve

    from digitsum_edge.serve.deployment import DigitsumService

    _init_ray(cfg)
    _quiet_ray()  # ray.init configured its loggers again
    if cfg.ssl_certfile and cfg.haproxy and cfg.address == LOCAL:
        log.warning("HTTPS is served by Ray's Python proxy: Ray Serve's HAProxy mode has no TLS here")
    if cfg.replicas > (os.cpu_count() or 1) and cfg.address == LOCAL:
        log.warning(f"{cfg.replicas} replicas on {os.cpu_count()} cores: they share the cores")
    try:
        host, port = _start_serve(cfg)
        app = DigitsumService.options(  # type: ignore[attr-defined]  # @serve.deployment made it a Deployment
            num_replicas=cfg.replicas,
            # enough requests in each replica to fill a batch while others are being decoded
            max_ongoing_requests=max(2 * cfg.max_batch, 8),
            ray_actor_options={"num_cpus": 1},
            graceful_shutdown_wait_loop_s=0.5,  # Ctrl-C: finish what is in flight, then stop within seconds
            graceful_shutdown_timeout_s=10,
        ).bind(cfg, model_bytes, Path(cfg.model).name)
        serve.run(app, name=APP_NAME, route_prefix="/", logging_config=QUIET)
    except BaseException as e:  # Ctrl-C while starting too: nothing is left running
        with _uninterrupted():
            stop()
        if isinstance(e, Exception):
            raise DigitsumError(f"Ray Serve could not start the service: {first_line(e)}") from None
        raise
    return f"{'https' if cfg.ssl_certfile else 'http'}://{host}:{port}"


def _start_serve(cfg: ServeConfig) -> tuple[str, int]:
    """Start Serve's HTTP ingress (a cluster where Serve runs already keeps its own); where it listens."""
    from ray import serve

    http = {"host": cfg.host, "port": cfg.port}
    if cfg.ssl_certfile:
        http |= {"ssl_certfile": cfg.ssl_certfile, "ssl_keyfile": cfg.ssl_keyfile}
    serve_logger = logging.getLogger("ray.serve")
    serve_logger.setLevel(logging.ERROR)  # its warning that a running Serve keeps its port: ours is clearer
    try:
        serve.start(http_options=http, logging_config=QUIET)
    finally:
        serve_logger.setLevel(logging.WARNING)
    return _served_at(cfg)


def _served_at(cfg: ServeConfig) -> tuple[str, int]:
    """Where Serve's HTTP proxy listens: on a cluster where Serve already runs, its own host and port."""
    try:
        from ray.serve.context import _get_global_client  # no public getter for the running HTTP options

        client = _get_global_client()
        assert client is not None
        host, port = str(client.http_config.host), int(client.http_config.port)
    except Exception:  # private API: trust the options
        return cfg.host, cfg.port
    if (host, port) != (cfg.host, cfg.port):
        log.warning(f"Ray Serve already runs on this cluster and listens on {host}:{port}; "
                    f"--host {cfg.host} --port {cfg.port} do not apply")
    return host, port


def stop() -> None:
    """Delete the application (its replicas finish the requests they hold), then leave Ray: a Ray instance
    this process started ends with it, with Serve's controller and proxy; a cluster keeps running."""
    import ray
    from ray import serve

    try:
        if ray.is_initialized():
            serve.delete(APP_NAME)
    finally:
        ray.shutdown()


def run(cfg: ServeConfig) -> None:
    """Serve until Ctrl-C or SIGTERM, then shut down cleanly (a second Ctrl-C does not cut that short).

    SIGTERM (a service manager's stop) is Ctrl-C here, also while starting: nothing is left running.
    """
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        url = start(cfg)
        where = "a local Ray instance" if cfg.address == LOCAL else f"the Ray cluster at {cfg.address}"
        ingress = "HAProxy" if uses_haproxy(cfg) else "Ray Serve's"
        log.info(f"serving {cfg.model} at {url} on {where} ({ingress} ingress): {cfg.replicas} replica(s), "
                 f"batches of up to {cfg.max_batch} images within {cfg.batch_wait_ms:g} ms | page {url}/ | "
                 f"API {url}/docs | Ctrl-C stops")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        with _uninterrupted():
            log.info("stopping: shutting Ray Serve down")
            stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    log.info("stopped")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ignore Ctrl-C while shutting down: a second one (or the terminal's to every process) must not cut
    the shutdown short and leave Ray's processes behind."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
