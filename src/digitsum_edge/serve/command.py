"""`digitsum-edge serve`: options (named like ServeConfig's fields) -> serve.service.run; Ray loads only then."""

from __future__ import annotations

import click

from digitsum_edge.engine.backend import PROVIDERS
from digitsum_edge.serve.config import LOCAL, ServeConfig, with_reading
from digitsum_edge.vision import settings as defaults

_D = ServeConfig()


def _no_token_on_command_line(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """--token is refused: a command line is seen by `ps` and kept by Ray as its job's entrypoint."""
    if value is not None:
        raise click.UsageError("--token is not taken on the command line (ps shows it, and Ray keeps it as the job's "
                               "entrypoint): set DIGITSUM_EDGE_TOKEN or use --token-file FILE")


@click.command()
@click.option("--model", type=click.Path(dir_okay=False), default=_D.model, show_default=True,
              help="ONNX file written by `digitsum-edge export`.")
@click.option("--host", default=_D.host, show_default=True, help="Address the HTTP server listens on.")
@click.option("--port", type=click.IntRange(1, 65535), default=_D.port, show_default=True)
@click.option("--replicas", type=click.IntRange(min=1), default=_D.replicas, show_default=True,
              help="Copies of the model (Ray actors), each with one ONNX Runtime session.")
@click.option("--max-batch", type=click.IntRange(min=1), default=_D.max_batch, show_default=True,
              help="Most images in one model call (Ray Serve batching).")
@click.option("--batch-wait-ms", type=click.FloatRange(0, 1000), default=_D.batch_wait_ms, show_default=True,
              help="How long a batch waits for more requests.")
@click.option("--address", default=_D.address, show_default=True,
              help=f"{LOCAL}: start a Ray instance here; auto or ray://HOST:10001: join that Ray cluster.")
@click.option("--haproxy/--no-haproxy", default=_D.haproxy, show_default=True,
              help="Local instance: Ray Serve's high-throughput mode (HAProxy in front of the replicas); "
                   "--no-haproxy: Ray's Python proxy.")
@click.option("--provider", type=click.Choice(PROVIDERS), default=_D.provider, show_default=True,
              help="auto: CUDA when onnxruntime can really use it on the replica's node, else CPU.")
@click.option("--threads", type=click.IntRange(min=1), default=_D.threads, show_default=True,
              help="Per replica: image decoding and preprocessing threads (onnxruntime uses one).")
@click.option("--roi", type=click.FloatRange(0, 1, min_open=True), default=_D.reading.roi, show_default=True,
              help="/v1/read: side of the central square read, as a fraction of the shorter side (as in live).")
@click.option("--ink", type=click.Choice(defaults.INKS), default=_D.reading.ink, show_default=True,
              help="/v1/read: dark ink on light paper, light on dark, or decide per image.")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=_D.reading.min_confidence, show_default=True,
              help="/v1/read: a digit read with less confidence is reported as uncertain (as in live).")
@click.option("--max-body-mb", type=click.FloatRange(0, 1024, min_open=True), default=_D.max_body_mb,
              show_default=True, help="Larger request bodies are refused (HTTP 400).")
@click.option("--read-timeout-s", type=click.FloatRange(1, 3600), default=_D.read_timeout_s, show_default=True,
              help="A request's headers and body must arrive within this time (HTTP 408 after it).")
@click.option("--min-upload-kbps", type=click.FloatRange(0, 1e6, min_open=True), default=_D.min_upload_kbps,
              show_default=True, help="A body must arrive at least this fast on average (KiB/s; HTTP 408 below).")
@click.option("--max-images", type=click.IntRange(min=1), default=_D.max_images, show_default=True,
              help="Most images in one /v1/predict or /v2 request (HTTP 400 beyond).")
@click.option("--max-inflight-mb", type=click.FloatRange(0, 65536, min_open=True), default=_D.max_inflight_mb,
              show_default=True, help="Per replica: request body bytes held at once (HTTP 503 + Retry-After beyond).")
@click.option("--max-queued", type=click.IntRange(min=1), default=_D.max_queued, show_default=True,
              help="Per replica: requests at once (HAProxy lets this many through and holds others up to 100 ms), "
                   "beyond: HTTP 503 + Retry-After.")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="Every /v1 and /v2 route wants `Authorization: Bearer TOKEN` (401 otherwise), TOKEN being this "
                   "file's one line (mode 0600); or set DIGITSUM_EDGE_TOKEN. /healthz and the page stay open (open it "
                   "as URL/#token=TOKEN).")
@click.option("--no-token", is_flag=True, default=False,
              help="Serve /v1 and /v2 without a token on a --host that other machines reach (said at start).")
@click.option("--token", hidden=True, default=None, expose_value=False, callback=_no_token_on_command_line)
@click.option("--ssl-certfile", type=click.Path(dir_okay=False), default=None,
              help="Serve HTTPS with this PEM certificate (browsers on other machines give the page the camera "
                   "only over HTTPS).")
@click.option("--ssl-keyfile", type=click.Path(dir_okay=False), default=None, help="The certificate's PEM key.")
@click.option("--web", type=click.Path(file_okay=False), default=None,
              help="Keep the page (the web app for --model) in this folder: reused when built for this model file, "
                   "built again otherwise [default: a folder in ~/.cache/digitsum-edge].")
@click.option("--api-docs", is_flag=True, default=False,
              help="Also serve /docs (Swagger UI, which loads its script from a CDN) and /openapi.json.")
@click.option("--page-without-haproxy", is_flag=True, default=False,
              help="Serve the page at / also where Ray's Python proxy is the ingress (--no-haproxy, --address): that "
                   "proxy keeps each page download in memory until its client reads it, so page clients are not "
                   "bounded there [default: the page only behind HAProxy; the API is served either way].")
@click.option("--print-config", is_flag=True, default=False,
              help="Check these options, print the Ray Serve config file for them (import_path "
                   "digitsum_edge.serve:app; for `serve run FILE`, `serve deploy FILE`, a RayService) and exit.")
def serve(print_config: bool, **options: object) -> None:
    """Serve the model over HTTP on Ray Serve: the web app, /v1/read, and the KServe v2 protocol.

    \b
    POST /v1/read?rand=7       PNG/JPEG bytes -> digit, sum, confidences, box (as `live`)
    POST /v1/predict?rand=3    N x 28 x 28 uint8 pixels -> digits and sums
    POST /v2/models/digitsum/infer   Open Inference Protocol (Triton / KServe clients)
    GET  /                     the web app (reads on the phone, or here);  GET /healthz, /v1/model
    Ctrl-C stops the service and shuts Ray down.
    """
    from digitsum_edge.extras import require

    require("serve", "serve")
    cfg = ServeConfig(**with_reading(options))  # click checked the types
    if print_config:
        from digitsum_edge.serve.builder import print_config as write

        click.echo(write(cfg), nl=False)
        return
    from digitsum_edge.serve.service import run

    run(cfg)
