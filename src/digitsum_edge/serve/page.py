"""The page `serve` offers at /: the web app of `digitsum-edge web` (reading on the device, or on this service), built
for the served model before Ray starts, or reused when its folder holds the app for that very model file.

Its files travel to the replicas as gzipped bytes (a replica's node may not share this disk) and are answered with
their content types and the cross-origin isolation headers. Without npm's files the service runs without a page.
"""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from digitsum_edge.errors import DigitsumError, first_line

log = logging.getLogger(__name__)
FOLDER = "serve-web"  # in the cache folder, where --web is not given
INDEX = "index.html"


@dataclass(frozen=True)
class PageAnswer:
    """One page route's answer: status, headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Page:
    """The app's files, gzipped (path under / -> bytes), or why there is no page."""

    files: dict[str, bytes] = field(default_factory=dict)
    unavailable: str | None = None

    def answer(self, path: str, accept_encoding: str | None) -> PageAnswer | None:
        """The file at `path` ("" is index.html), gzipped when the client takes gzip; None: no such file."""
        from digitsum_edge.web.build import ISOLATION, content_type

        name = path.lstrip("/") or INDEX
        if self.unavailable is not None and name == INDEX:
            error = json.dumps({"error": f"the page is unavailable: {self.unavailable}"})
            return PageAnswer(503, {"Content-Type": "application/json"}, error.encode())
        if name not in self.files:
            return None
        headers = {"Content-Type": content_type(name), "Cache-Control": "no-cache", "Vary": "Accept-Encoding",
                   **ISOLATION}
        if takes_gzip(accept_encoding):
            return PageAnswer(200, {**headers, "Content-Encoding": "gzip"}, self.files[name])
        return PageAnswer(200, headers, gzip.decompress(self.files[name]))  # curl without --compressed


def takes_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding header takes gzip (and not with q=0)."""
    for item in (accept_encoding or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        weight = params.strip().lower()
        if not weight.startswith("q="):
            return True
        try:
            return float(weight[2:]) > 0
        except ValueError:
            return False
    return False


def folder_for(web: str | None) -> Path:
    """Where the app is kept: --web, or a folder in the cache that the web command's npm files also use."""
    from digitsum_edge.web.build import CACHE

    return Path(web) if web else CACHE / FOLDER


def load_page(model: str, web: str | None) -> Page:
    """The app for `model`, reused or built in its folder, gzipped; without it, one line and a Page that says why."""
    from digitsum_edge.web.build import WebConfig, ensure

    folder = folder_for(web)
    try:
        built = ensure(WebConfig(out=str(folder), model=model))
        files = {str(p.relative_to(folder)): gzip.compress(p.read_bytes(), 6)
                 for p in sorted(folder.rglob("*")) if p.is_file()}
    except (DigitsumError, OSError) as e:
        reason = first_line(e)
        log.warning(f"the page at / is unavailable ({reason}); the API is served without it")
        return Page(unavailable=reason)
    log.info(f"page: the web app {'built' if built else 'as built before'} in {folder} for {Path(model).name}")
    return Page(files)
