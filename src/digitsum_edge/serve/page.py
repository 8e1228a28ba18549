"""The page `serve` offers at /: the web app of `digitsum-edge web` (reading on the device, or on this service), built
for the served model before Ray starts, or reused when its folder holds the app for that very model file.

Only the files the build wrote are served (its files.json: names and SHA-256s), never a dotfile, a symlink or a
file added later. They travel to the replicas gzipped once here (a replica's node may not share this disk); each
replica keeps both forms in memory (served.py), so no request compresses or inflates anything. Without npm's files
the service runs without a page.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from digitsum_edge.errors import DigitsumError, first_line

log = logging.getLogger(__name__)
FOLDER = "serve-web"  # in the cache folder, where --web is not given
INDEX = "index.html"


@dataclass(frozen=True)
class Page:
    """The app's files, gzipped (path under / -> bytes), their SHA-256s, the CSP that index.html passes, or why
    there is no page."""

    files: dict[str, bytes] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    csp: str = ""
    unavailable: str | None = None


def unserved_page(reason: str) -> Page:
    """No page, by choice: one line saying why (the API is served)."""
    log.warning(f"the page at / is not served: {reason}")
    return Page(unavailable=reason)


def content_security_policy(index_html: str) -> str:
    """What the page may load: its own files only; the inline <style> of index.html by its hash; WebAssembly
    compiled (onnxruntime-web), workers and the camera's stream; never framed, no plugin, no form."""
    styles = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                      for s in re.findall(r"<style>(.*?)</style>", index_html, re.DOTALL))
    return ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
            f"style-src 'self'{' ' + styles if styles else ''}; img-src 'self' data: blob:; "
            "media-src 'self' blob: mediastream:; connect-src 'self'; worker-src 'self' blob:; "
            "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def folder_for(web: str | None) -> Path:
    """Where the app is kept: --web, or a folder in the cache that the web command's npm files also use."""
    from digitsum_edge.web.build import CACHE

    return Path(web) if web else CACHE / FOLDER


def load_page(model: str, web: str | None) -> Page:
    """The app for `model`, reused or built in its folder, gzipped; without it, one line and a Page that says why."""
    from digitsum_edge.web.build import WebConfig, built_files, ensure

    folder = folder_for(web)
    try:
        built = ensure(WebConfig(out=str(folder), model=model))
        files = built_files(folder)
    except (DigitsumError, OSError) as e:
        reason = first_line(e)
        log.warning(f"the page at / is unavailable ({reason}); the API is served without it")
        return Page(unavailable=reason)
    log.info(f"page: the web app {'built' if built else 'as built before'} in {folder} for {Path(model).name}")
    return Page({name: gzip.compress(data, 6) for name, data in files.items()},
                {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
                content_security_policy(files[INDEX].decode()) if INDEX in files else "")
