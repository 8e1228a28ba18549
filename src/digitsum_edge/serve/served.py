"""How a replica answers the page's routes: from memory (each file kept plain and gzipped since the replica
started), with ETag and 304, HEAD, the security headers, and a budget of its own, so that page downloads never
take the API's capacity: at most PAGE_SLOTS responses at once per replica (others wait up to the read timeout,
then 503), each sent in chunks that the client must take within the read timeout, or the connection is dropped.

asyncio and the standard library only: the deployment holds one ServedPage, and tests call it directly.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from digitsum_edge.serve.limits import RETRY_AFTER_S, Unavailable
from digitsum_edge.serve.page import INDEX, Page

PAGE_SLOTS = 4  # page responses one replica sends at once (HAProxy's page backend: the same maxconn per replica)
PAGE_WAITING = 256  # page requests waiting for a slot per replica; beyond, 503 at once
CHUNK = 64 * 1024  # what one send hands the server: a slow reader holds no more than this (and socket buffers)
# Every response carries these; the page's files add their CSP and the cross-origin isolation headers
SECURITY = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
HSTS = {"Strict-Transport-Security": "max-age=31536000"}  # only over HTTPS (browsers ignore it over http)
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class PageAnswer:
    """One page route's answer: status, headers, body (empty for HEAD and 304)."""

    status: int
    headers: dict[str, str]
    body: bytes = b""


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


def _matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match (a list of ETags, weak ones too, or *) names this representation."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


class ServedPage:
    """The page's files in a replica, both forms in memory, and its own budget of connections."""

    def __init__(self, page: Page, https: bool, send_timeout_s: float) -> None:
        from digitsum_edge.web.build import ISOLATION, content_type

        self.unavailable = page.unavailable
        self.send_timeout_s = send_timeout_s
        self.security = {**SECURITY, **(HSTS if https else {})}
        self.files: dict[str, tuple[bytes, bytes]] = {  # name -> (plain, gzipped): inflated once, here
            name: (gzip.decompress(packed), packed) for name, packed in page.files.items()}
        self.common = {name: {"Content-Type": content_type(name), "Cache-Control": "no-cache",
                              "Vary": "Accept-Encoding", "Accept-Ranges": "none", **ISOLATION, **self.security,
                              "Content-Security-Policy": page.csp} for name in page.files}
        self.etags = {name: f'"{sha[:32]}"' for name, sha in page.sha256.items()}
        self.slots = asyncio.Semaphore(PAGE_SLOTS)
        self.waiting = 0

    def answer(self, method: str, path: str, accept_encoding: str | None,
               if_none_match: str | None) -> PageAnswer | None:
        """GET or HEAD of `path` ("/" is index.html); None: not a file the build wrote."""
        name = path.lstrip("/") or INDEX
        if self.unavailable is not None and name == INDEX:
            error = json.dumps({"error": f"the page is unavailable: {self.unavailable}"}).encode()
            return PageAnswer(503, {"Content-Type": "application/json", **self.security}, error)
        if name not in self.files:
            return None
        plain, packed = self.files[name]
        gzipped = takes_gzip(accept_encoding)
        etag = self.etags[name][:-1] + ('-gz"' if gzipped else '"')  # one per representation
        headers = {**self.common[name], "ETag": etag}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        if _matches(if_none_match, etag):
            return PageAnswer(304, headers)
        body = packed if gzipped else plain
        headers["Content-Length"] = str(len(body))
        return PageAnswer(200, headers, b"" if method == "HEAD" else body)

    async def slot(self) -> None:
        """Wait for one of the page's slots (up to the send timeout); 503 when too many wait or none frees."""
        if self.waiting >= PAGE_WAITING:
            raise Unavailable(f"the page is busy; retry after {RETRY_AFTER_S} s")
        self.waiting += 1
        try:
            await asyncio.wait_for(self.slots.acquire(), self.send_timeout_s)
        except asyncio.TimeoutError:
            raise Unavailable(f"the page is busy; retry after {RETRY_AFTER_S} s") from None
        finally:
            self.waiting -= 1

    async def send(self, answer: PageAnswer, send: Send) -> bool:
        """Send `answer` (a slot taken by slot(), given back here) in chunks, each taken by the client within the
        send timeout; False when the client was too slow (the connection is then dropped)."""
        try:
            await send({"type": "http.response.start", "status": answer.status,
                        "headers": [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]})
            view = memoryview(answer.body)
            for start in range(0, len(view), CHUNK):
                await asyncio.wait_for(send({"type": "http.response.body", "body": bytes(view[start:start + CHUNK]),
                                             "more_body": True}), self.send_timeout_s)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            self.slots.release()
