"""Serve a folder written by `digitsum-edge web` as a static host should: with COOP/COEP, so the page is
cross-origin isolated (onnxruntime-web's threads, a fine timer), and the .wasm/.mjs types the browser wants.

    python -m digitsum_edge.web.host runs/web                   # http://127.0.0.1:8000/ on this computer
    python -m digitsum_edge.web.host runs/web --bind 0.0.0.0    # also a phone on the same network

Browsers give the camera only to https:// pages and http://localhost; a phone opening http://LAN-ADDRESS:8000/
reads a photo with the page's photo button instead. Standard library only.
"""

from __future__ import annotations

import argparse
import functools
import http.server
from pathlib import Path
from typing import Any

from digitsum_edge.web.build import CONTENT_TYPES, ISOLATION

DEFAULT_PORT = 8000


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.extensions_map = {**self.extensions_map, **CONTENT_TYPES}  # whatever the system's mime.types says
        super().__init__(*args, **kwargs)  # answers the request

    def end_headers(self) -> None:
        for name, value in ISOLATION.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")  # a rebuilt app is seen at once (the service worker caches)
        super().end_headers()


def command(folder: str | Path, bind: str = "127.0.0.1", port: int = DEFAULT_PORT) -> str:
    """The command line that serves `folder`, as `digitsum-edge web` prints it."""
    extra = ("" if bind == "127.0.0.1" else f" --bind {bind}") + ("" if port == DEFAULT_PORT else f" --port {port}")
    return f"python -m digitsum_edge.web.host {folder}{extra}"


def serve(folder: str | Path, bind: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve `folder` until Ctrl-C."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise SystemExit(f"error: {folder} holds no index.html (write the app with `digitsum-edge web {folder}`)")
    handler = functools.partial(_Handler, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer((bind, port), handler)
    except OSError as e:
        raise SystemExit(f"error: cannot listen on {bind}:{port}: {e.strerror or e} (choose another --port)") from None
    host, bound = server.server_address[:2]
    shown = "127.0.0.1" if str(host) in ("0.0.0.0", "::") else str(host)
    print(f"serving {folder} on http://{shown}:{bound}/ with COOP/COEP (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m digitsum_edge.web.host", description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the folder `digitsum-edge web` wrote (runs/web)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on; 0.0.0.0: every network")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0: any free port")
    args = parser.parse_args()
    serve(args.folder, args.bind, args.port)


if __name__ == "__main__":
    main()
