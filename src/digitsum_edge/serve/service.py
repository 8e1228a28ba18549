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
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from digitsum_edge.errors import DigitsumError, first_line
from digitsum_edge.serve import auth
from digitsum_edge.serve.builder import APP_NAME, DRAIN_TIMEOUT_S, application, read_model
from digitsum_edge.serve.config import LOCAL, UNBOUNDED_PAGE, ServeConfig, check_config, serves_page, uses_haproxy
from digitsum_edge.serve.page import Page, load_page, unserved_page
from digitsum_edge.serve.processes import LocalRun, haproxy_binary, write_haproxy_shim
from digitsum_edge.serve.served import PAGE_SLOTS

QUIET = {"log_level": "WARNING", "enable_access_log": False}  # Ray's own log files: no line per request
HAPROXY_CLIENT_TIMEOUT_S = 30  # a client silent this long mid-request is dropped (Ray's default: an hour)
HAPROXY_SERVER_TIMEOUT_S = 60  # a replica silent this long mid-answer is given up (Ray's default: never)
QUEUE_TIMEOUT_MS = 100  # HAProxy: a request finds a replica with room within this, or gets 503 + Retry-After
STOP_GRACE_S = 0.5  # after a signal, how long Ray's own processes get to show whether it reached them too
log = logging.getLogger(__name__)
_local: LocalRun | None = None  # the local service this process runs: its mark and private folder
_page = Page()  # the page the service offers at / (or why none)
_token: str | None = None  # the service's bearer token (None: --no-token on a loopback host, or said outright)


def _environment(cfg: ServeConfig, run: LocalRun | None) -> None:
    """Ray reads these when it is imported and passes them to the processes of a Ray instance it starts."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network beyond what the user asked for
    # ray.shutdown flushes task events to the GCS for up to 5 s, also when the GCS is gone: stop sooner
    os.environ.setdefault("RAY_task_events_shutdown_flush_timeout_ms", "500")
    if run is not None:
        run.mark()
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
        os.environ["RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S"] = str(HAPROXY_CLIENT_TIMEOUT_S)
        # a replica silent this long mid-answer is given up (none by default); the page's backend has its own
        os.environ["RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S"] = str(HAPROXY_SERVER_TIMEOUT_S)
        if run is not None:
            _private_haproxy(cfg, run)


def _private_haproxy(cfg: ServeConfig, run: LocalRun) -> None:
    """HAProxy's configuration, admin socket and state in the run's private folder (removed at stop), run
    through the shim that binds its stats and metrics to 127.0.0.1, adds `timeout http-request`, and ends
    it with the worker that started it."""
    folder = run.folder
    for name, file in (("CONFIG_FILE_LOC", "haproxy.cfg"), ("SOCKET_PATH", "admin.sock"),
                       ("SERVER_STATE_FILE", "server-state"), ("METRICS_SOCKET_PATH", "metrics.sock")):
        os.environ[f"RAY_SERVE_HAPROXY_{name}"] = str(folder / file)
    os.environ["RAY_SERVE_HAPROXY_SERVER_STATE_BASE"] = str(folder)
    binary = haproxy_binary()
    if binary is None:  # Ray Serve will say that it found none
        return
    shim = write_haproxy_shim(run, binary, [
        "--stats-port", os.environ["RAY_SERVE_HAPROXY_STATS_PORT"],
        "--metrics-port", os.environ["RAY_SERVE_HAPROXY_METRICS_PORT"],
        "--read-timeout-s", str(cfg.read_timeout_s),
        "--replica-maxconn", str(cfg.max_queued), "--queue-timeout-ms", str(QUEUE_TIMEOUT_MS),
        "--page-maxconn", str(PAGE_SLOTS), *(["--tls-pem", str(_tls_pem(cfg, run))] if cfg.ssl_certfile else [])])
    os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"] = str(shim)


def _tls_pem(cfg: ServeConfig, run: LocalRun) -> Path:
    """The certificate chain and its key in one file (what HAProxy's `crt` reads), 0600 in the private folder."""
    assert cfg.ssl_certfile and cfg.ssl_keyfile
    path = run.folder / "tls.pem"
    try:
        chain, key = Path(cfg.ssl_certfile).read_text(), Path(cfg.ssl_keyfile).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DigitsumError(f"cannot read the certificate or its key: {e}") from None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(chain.rstrip("\n") + "\n" + key)
    return path


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
            # "local": a new instance even where `ray start` left a cluster (or its stale address file)
            ray.init(address="local" if local else cfg.address, **options)
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
    global _local, _page, _token
    check_config(cfg)
    _token = auth.resolve_token(cfg.token_file, cfg.no_token, cfg.host)
    os.environ.pop(auth.ENV, None)  # Ray's processes and HAProxy inherit this environment: not the token
    model_bytes = read_model(cfg)
    _page = (load_page(cfg.model, cfg.web)  # before Ray: a page that cannot be built is one line, and no page
             if serves_page(cfg, uses_haproxy(cfg)) else unserved_page(UNBOUNDED_PAGE))
    _local = LocalRun() if cfg.address == LOCAL else None
    try:
        _environment(cfg, _local)
        _quiet_ray()
        from ray import serve

        _init_ray(cfg)
    except BaseException:  # Ray did not start: what was made for it (the private folder) goes too
        if _local is not None:
            _local.end()
            _local = None
        raise
    _quiet_ray()  # ray.init configured its loggers again
    _private_ray_token()
    if cfg.replicas > (os.cpu_count() or 1) and cfg.address == LOCAL:
        log.warning(f"{cfg.replicas} replicas on {os.cpu_count()} cores: they share the cores")
    try:
        host, port = _start_serve(cfg)
        app = application(cfg, model_bytes, _page,
                          auth.TokenSource.for_replicas(_token, cfg.token_file, _local.folder if _local else None))
        serve.run(app, name=APP_NAME, route_prefix="/", logging_config=QUIET)
    except BaseException as e:  # Ctrl-C while starting too: nothing is left running
        with _uninterrupted():
            stop()
        if isinstance(e, Exception):
            raise DigitsumError(f"Ray Serve could not start the service: {first_line(e)}") from None
        raise
    return f"{'https' if cfg.ssl_certfile else 'http'}://{host}:{port}"


def _private_ray_token() -> None:
    """Ray's own cluster token (~/.ray/auth_token, written by a new local instance) readable by its owner only."""
    path = Path.home() / ".ray" / "auth_token"
    try:
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except OSError:  # none, or not ours
        pass


def _start_serve(cfg: ServeConfig) -> tuple[str, int]:
    """Start Serve's HTTP ingress (a cluster where Serve runs already keeps its own); where it listens."""
    from ray import serve

    http = {"host": cfg.host, "port": cfg.port}
    if cfg.ssl_certfile and not uses_haproxy(cfg):  # HAProxy ends the TLS itself (the shim's bind line)
        http |= {"ssl_certfile": cfg.ssl_certfile, "ssl_keyfile": cfg.ssl_keyfile}
    serve_logger = logging.getLogger("ray.serve")
    serve_logger.setLevel(logging.ERROR)  # its warning that a running Serve keeps its port: ours is clearer
    try:
        # On a cluster, one HTTP proxy on the head node: every node's own proxy would take the same port, which
        # nodes sharing a machine (or a test) cannot, and clients need one address anyway.
        serve.start(http_options=http, logging_config=QUIET,
                    proxy_location=None if cfg.address == LOCAL else "HeadOnly")
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
    this process started ends with it, with Serve's controller, proxy and HAProxy; a cluster keeps running.

    When a signal reached Ray's own processes too (`kill` of the process group, a service manager's stop of
    every process), there is no Serve left to ask: what is left of the local instance is ended at once."""
    global _local
    import ray
    from ray import serve

    run, _local = _local, None
    try:
        if ray.is_initialized() and _ray_alive(run):
            _within(lambda: serve.delete(APP_NAME), DRAIN_TIMEOUT_S + 5, run)
    finally:
        started = time.monotonic()
        if run is not None and not _ray_alive(run, 0):  # broken already: nothing left to drain
            run.end(timeout_s=1)  # Ray's processes, workers and HAProxy first: ray.shutdown waits for a dead GCS
        log.debug(f"stop: processes ended in {time.monotonic() - started:.1f} s")
        ray.shutdown()
        log.debug(f"stop: ray.shutdown after {time.monotonic() - started:.1f} s")
        if run is not None:
            run.end(timeout_s=2)  # anything Ray did not end (HAProxy of a killed worker), and the private folder


def _ray_alive(run: LocalRun | None, grace_s: float = STOP_GRACE_S) -> bool:
    """Whether the local Ray instance's own processes (GCS, raylet, ...) still run after `grace_s`; a
    cluster joined with --address is taken to run."""
    if run is None:
        return True
    from ray._private import worker  # no public view of the processes ray.init started

    node = worker._global_node
    groups: list = list(node.all_processes.values()) if node else []
    processes: list = [info.process for infos in groups for info in infos]
    deadline = time.monotonic() + grace_s
    while True:
        if any(process.poll() is not None for process in processes):
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)


def _within(call: object, timeout_s: float, run: LocalRun | None) -> None:
    """Run `call` in a thread; give up when it passes `timeout_s` or Ray's processes die under it."""
    done = threading.Event()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            call()  # type: ignore[operator]
        except BaseException as e:  # reported below
            failure.append(e)
        finally:
            done.set()

    threading.Thread(target=target, daemon=True, name="digitsum-stop").start()
    deadline = time.monotonic() + timeout_s
    while not done.wait(0.1) and time.monotonic() < deadline:
        if not _ray_alive(run, 0):
            return
    if failure:
        raise failure[0]


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
                 f"batches of up to {cfg.max_batch} images within {cfg.batch_wait_ms:g} ms | "
                 f"{'no page' if _page.unavailable else f'page {url}/'} | "
                 f"{auth.describe(_token, cfg.token_file)}{f' | API docs {url}/docs' if cfg.api_docs else ''} | "
                 f"Ctrl-C stops")
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
