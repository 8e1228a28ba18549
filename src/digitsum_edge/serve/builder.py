"""The service as a Ray Serve application, built by one function for every way of deploying it:

    digitsum-edge serve --model m.onnx                  # the CLI: service.start() calls application()
    serve run digitsum_edge.serve:app model=m.onnx       # Ray's CLI calls app({"model": "m.onnx"})
    serve run config.yaml / serve deploy config.yaml     # import_path: digitsum_edge.serve:app, args: {...}

app(args) validates its arguments with the same code as the CLI: the types of ServeConfig's fields (pydantic),
check_config, the token's rules (serve/auth.py), the model's contract check and the page's build. Under Ray's
`serve run IMPORT_PATH` (no Ray yet) a bad argument is one line `error: ...` and exit 1, before Ray starts; inside
a cluster's build task it is the application's one-line deployment error (`serve status`).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitsum_edge import __version__
from digitsum_edge.errors import DigitsumError
from digitsum_edge.serve import auth
from digitsum_edge.serve.config import (
    LOCAL,
    READING_ARGS,
    UNBOUNDED_PAGE,
    ServeConfig,
    check_config,
    reading_args,
    serves_page,
    with_reading,
)

if TYPE_CHECKING:
    from ray.serve import Application

    from digitsum_edge.serve.page import Page

IMPORT_PATH = "digitsum_edge.serve:app"
APP_NAME = "digitsum-edge"  # the Ray Serve application
DRAIN_TIMEOUT_S = 10  # replicas finish what they hold within this at stop or at an update
# Where Ray starts and how: the CLI's business. A config file says these in its http_options and `ray start`.
NOT_APP_ARGS = ("address", "haproxy")
READING_TYPES = {"roi": float, "ink": str, "min_confidence": float}  # checked again by ReadingSettings
APP_ARGS = tuple(f.name for f in fields(ServeConfig) if f.name not in (*NOT_APP_ARGS, "reading")) + READING_ARGS


def application(cfg: ServeConfig, model_bytes: bytes, page: Page, token: auth.TokenSource) -> Application:
    """The deployment with its options, bound to the model's bytes, the page and where the token is."""
    from digitsum_edge.serve.deployment import DigitsumService

    return DigitsumService.options(  # type: ignore[attr-defined]  # @serve.deployment made it a Deployment
        num_replicas=cfg.replicas,
        # Connections a replica holds, mostly waiting for their bodies: a slow upload must not take the
        # place of a quick request. The work itself is bounded inside (--max-queued, --max-inflight-mb).
        max_ongoing_requests=1024,
        max_queued_requests=256,
        backpressure_config={"status_code": 503, "retry_after_s": 1},
        ray_actor_options={"num_cpus": 1},
        graceful_shutdown_wait_loop_s=0.5,  # Ctrl-C: finish what is in flight, then stop within seconds
        graceful_shutdown_timeout_s=DRAIN_TIMEOUT_S,
    ).bind(cfg, model_bytes, Path(cfg.model).name, page, token)


def config_from_args(args: dict[str, Any]) -> ServeConfig:
    """A builder's arguments (strings from `serve run ... key=value`, or a config file's typed values) as a checked
    ServeConfig: pydantic for the types, then check_config as for the CLI (the port is the cluster's, not checked)."""
    import pydantic

    unknown = sorted(set(args) - set(APP_ARGS))
    if unknown:
        raise DigitsumError(f"unknown argument(s) {', '.join(unknown)} (known: {', '.join(APP_ARGS)})")
    # The reading's arguments typed one by one (ReadingSettings checks their values), then the rest as ServeConfig.
    typed = {name: _typed(pydantic, READING_TYPES[name], args[name], name) for name in READING_ARGS if name in args}
    cfg = _typed(pydantic, ServeConfig, with_reading(args | typed), "")
    check_config(cfg, listen=False)
    return cfg


def _typed(pydantic, kind: Any, value: Any, name: str) -> Any:
    """value validated as `kind` by pydantic; else one DigitsumError naming the argument."""
    try:
        return pydantic.TypeAdapter(kind).validate_python(value)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or name
        raise DigitsumError(f"argument {where}: {first['msg']} (got {first.get('input')!r})") from None


def app(args: dict[str, Any]) -> Application:
    """Ray Serve's application builder (import path digitsum_edge.serve:app): ServeConfig's fields as arguments."""
    import ray

    try:
        cfg = config_from_args(args)
        token = auth.resolve_token(cfg.token_file, cfg.no_token, cfg.host)
        from digitsum_edge.serve.page import load_page, unserved_page

        model_bytes = read_model(cfg)
        # Ray's `serve run`/`serve deploy`: the cluster's own ingress, Ray's Python proxy unless it was started
        # otherwise, and never HAProxy's page backend of `digitsum-edge serve`: the page only when asked for
        page = load_page(cfg.model, cfg.web) if serves_page(cfg, haproxy=False) else unserved_page(UNBOUNDED_PAGE)
    except DigitsumError as e:
        if not ray.is_initialized():  # Ray's `serve run IMPORT_PATH`, before it starts Ray: one line, exit 1
            raise SystemExit(f"error: {e}") from None
        raise
    # A token file is read by each replica (its path must exist on their nodes); a token from the environment is
    # read from the replicas' own environment (Ray passes the one `ray start` or `serve run` had): neither is
    # pickled into Ray's deployment arguments.
    source = auth.TokenSource(path=str(Path(cfg.token_file).resolve())) if cfg.token_file and token else \
        auth.TokenSource(env=auth.ENV) if token else auth.TokenSource()
    return application(cfg, model_bytes, page, source)


def read_model(cfg: ServeConfig) -> bytes:
    """Open the model here first, so a bad file is one line before Ray starts; replicas get its bytes."""
    from digitsum_edge.apps.reader import load

    load(cfg.model, provider="cpu", threads=1, settings=cfg.reading)  # the contract check that every replica repeats
    return Path(cfg.model).read_bytes()


def config_file(cfg: ServeConfig) -> dict[str, Any]:
    """The Serve config file (`serve run FILE`, `serve deploy FILE`, a RayService's serveConfigV2) for `cfg`."""
    defaults = ServeConfig()
    flat, default = asdict(cfg) | reading_args(cfg), asdict(defaults) | reading_args(defaults)
    args = {name: value for name, value in flat.items()  # the port is http_options' alone
            if name in APP_ARGS and name != "port" and value != default[name]}
    args["model"] = str(Path(cfg.model).resolve())  # the builder runs elsewhere: absolute paths
    for name in ("token_file", "web", "ssl_certfile", "ssl_keyfile"):
        if args.get(name):
            args[name] = str(Path(args[name]).resolve())
    http: dict[str, Any] = {"host": cfg.host, "port": cfg.port}
    if cfg.ssl_certfile:
        http |= {"ssl_certfile": args["ssl_certfile"], "ssl_keyfile": args["ssl_keyfile"]}
    return {"proxy_location": "HeadOnly" if cfg.address != LOCAL else "EveryNode", "http_options": http,
            "logging_config": {"log_level": "WARNING", "enable_access_log": False},
            "applications": [{"name": APP_NAME, "route_prefix": "/", "import_path": IMPORT_PATH, "args": args}]}


def print_config(cfg: ServeConfig) -> str:
    """The config file as YAML, after the checks `serve` itself makes (the token's, the model's); the token's value
    is never in it: a --token-file's path is, or a comment that DIGITSUM_EDGE_TOKEN must be set where Ray starts."""
    import yaml  # type: ignore[import-untyped]  # Ray Serve's own dependency

    check_config(cfg, listen=False)
    token = auth.resolve_token(cfg.token_file, cfg.no_token, cfg.host)
    read_model(cfg)
    where = (f"# the token: {auth.ENV} must be set in the environment of every Ray node (ray start, the pods)\n"
             if token is not None and cfg.token_file is None else "")
    return (f"# Ray Serve config for digitsum-edge {__version__}: serve run FILE | serve deploy FILE\n{where}"
            + yaml.safe_dump(config_file(cfg), sort_keys=False))
