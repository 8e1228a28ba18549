"""Run as Ray Serve's HAProxy: adjust the configuration Ray wrote, then exec the real HAProxy, which ends with
the Ray worker that started it (PR_SET_PDEATHSIG), so a killed worker cannot leave it holding the port.

    python -m digitsum_edge.serve.haproxy_shim --binary HAPROXY --stats-port P --metrics-port M \\
        --read-timeout-s 10 -- -db -f haproxy.cfg ...

What it changes (Ray 2.60 writes none of it as an option):
- the stats page and the Prometheus exporter listen on 127.0.0.1 only (Ray binds them to every interface);
- the admin socket is mode 600 (Ray: 666), in a folder of mode 700;
- `timeout http-request`: headers and the start of the body within --read-timeout-s (HAProxy answers 408),
  with `option http-buffer-request` so a slow body is held here, not in a replica;
- at most --replica-maxconn requests at once in each replica; others wait at most --queue-timeout-ms here,
  then get 503 with Retry-After (Ray turns every 503 into a bare 500): overload is answered, not queued;
- the page's files (every path but the API's) go through a backend of their own: the same replicas, at most
  --page-maxconn downloads in each at once, others wait up to --page-queue-ms, each with `timeout server`, so a
  flood of page downloads, or clients that read nothing, never takes the API's --replica-maxconn places;
- with --tls-pem, the service's port speaks HTTPS only (TLS 1.2 and later, HTTP/1.1): HAProxy ends the TLS,
  so an HTTPS service has the same bounds as a plain one;
- 408 and 503 answer with one line of JSON, {"error": "..."}, like the service itself.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1
RETRY_AFTER_S = 1
ERRORS = {408: ("Request Time-out", "the request did not arrive in time (--read-timeout-s)"),
          503: ("Service Unavailable", "the service cannot take this request now (busy, or a replica is starting); "
                                       f"retry after {RETRY_AFTER_S} s")}


def error_page(status: int) -> str:
    """HAProxy's errorfile for `status`: a whole HTTP response with a JSON body."""
    reason, message = ERRORS[status]
    body = json.dumps({"error": message})
    retry = f"Retry-After: {RETRY_AFTER_S}\r\n" if status == 503 else ""
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nCache-Control: no-cache\r\n"
            f"{retry}Connection: close\r\nContent-Length: {len(body)}\r\n\r\n{body}")


API_PATHS = "path_beg /v1/ /v2/", "path /v2 /healthz /docs /openapi.json"  # the rest is the page's
PAGE_SUFFIX = "-page"


def page_backends(config: str, page_maxconn: int, page_queue_ms: int, page_timeout_s: float) -> str:
    """Each Ray Serve application backend gets a twin for the page's paths, with its own limits."""
    blocks = re.findall(r"(?ms)^backend (\S+)\n(.*?)(?=^\S|\Z)", config)
    apps = [(name, body) for name, body in blocks if "server SERVE_REPLICA" in body]
    for name, body in apps:
        twin = re.sub(r"(?m)( maxconn )\d+$", rf"\g<1>{page_maxconn}", body)
        limits = f"    timeout queue {page_queue_ms}ms\n    timeout server {max(1, round(page_timeout_s * 1000))}ms\n"
        config = config.rstrip("\n") + f"\nbackend {name}{PAGE_SUFFIX}\n{limits}{twin.rstrip()}\n"
        rule = f"use_backend {name} if is_{name}"
        config = config.replace(f"    {rule}\n", f"    use_backend {name}{PAGE_SUFFIX} if is_{name} !digitsum_api\n"
                                                f"    {rule}\n", 1)
    if apps:
        acls = "".join(f"    acl digitsum_api {paths}\n" for paths in API_PATHS)
        config = re.sub(r"(?m)^(frontend http_frontend\n(?:\s+bind .*\n)?)", rf"\g<1>{acls}", config, count=1)
    return config


def adjust(config: str, stats_port: int, metrics_port: int, read_timeout_s: float, replica_maxconn: int,
           queue_timeout_ms: int, errors: dict[int, Path], page_maxconn: int = 4, tls_pem: Path | None = None) -> str:
    """The configuration with the changes above; an unknown layout is left as it was."""
    if tls_pem is not None:
        config = re.sub(r"(?m)^(frontend http_frontend\n\s+bind \S+)\s*$",
                        rf"\g<1> ssl crt {tls_pem} alpn http/1.1 ssl-min-ver TLSv1.2", config, count=1)
    config = re.sub(r"(stats socket \S+ mode )666", r"\g<1>600", config)
    for port in (stats_port, metrics_port):
        config = re.sub(rf"(?m)^(\s*bind )(\*|0\.0\.0\.0|)?:{port}\s*$", rf"\g<1>127.0.0.1:{port}", config)
    config = re.sub(r"(?m)^(\s*server SERVE_REPLICA\S* \S+ check\b.*)$", rf"\g<1> maxconn {replica_maxconn}", config)
    config = re.sub(r"(?m)^\s*errorfile 503 .*\n", "", config)
    timeout = f"{max(1, round(read_timeout_s * 1000))}ms"
    added = [f"timeout http-request {timeout}", "option http-buffer-request", f"timeout queue {queue_timeout_ms}ms",
             *(f"errorfile {status} {path}" for status, path in sorted(errors.items()))]
    config = re.sub(r"(?m)^defaults\s*$", "defaults\n" + "".join(f"    {line}\n" for line in added).rstrip("\n"),
                    config, count=1)
    return page_backends(config, page_maxconn, max(1, round(read_timeout_s * 1000)), read_timeout_s)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="haproxy_shim")
    parser.add_argument("--binary", required=True)
    parser.add_argument("--stats-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--read-timeout-s", type=float, required=True)
    parser.add_argument("--replica-maxconn", type=int, required=True)
    parser.add_argument("--queue-timeout-ms", type=int, required=True)
    parser.add_argument("--page-maxconn", type=int, required=True)
    parser.add_argument("--tls-pem", type=Path, default=None)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    if "-f" in args:
        path = Path(args[args.index("-f") + 1])
        errors = {status: path.with_name(f"{status}.json.http") for status in ERRORS}
        for status, page in errors.items():
            page.write_text(error_page(status))
        text = adjust(path.read_text(), options.stats_port, options.metrics_port, options.read_timeout_s,
                      options.replica_maxconn, options.queue_timeout_ms, errors, options.page_maxconn,
                      options.tls_pem)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(text)
        os.replace(temporary, path)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)  # kept across exec: ends with its parent
    os.execv(options.binary, [options.binary, *args])


if __name__ == "__main__":
    main(sys.argv[1:])
