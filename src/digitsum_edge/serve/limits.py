"""What one replica lets a request cost: a deadline and a minimum rate for its body (HTTP 408), body bytes held at
once and requests waiting for work (HTTP 503 with Retry-After beyond either), so that no client, slow or
greedy, can stall the others or grow the replica's memory without bound.

asyncio only (no Ray): the deployment holds one of each, and tests call them directly.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from digitsum_edge.errors import DigitsumError
from digitsum_edge.serve.protocol import BadRequest

RETRY_AFTER_S = 1  # what a refused client is told to wait before it tries again
GRACE_S = 1.0  # the minimum upload rate is enforced after this much time (connection set-up, a first chunk)


class Unavailable(DigitsumError):
    """The replica is full (body bytes or waiting requests): HTTP 503 with Retry-After; try again soon."""


class Unauthorized(DigitsumError):
    """No bearer token, or not the service's: HTTP 401."""


def check_token(authorization: str | None, token: str | None, path: str) -> None:
    """/v1 and /v2 routes want `Authorization: Bearer <token>` when the service has one; others stay open."""
    if token is None or not path.startswith(("/v1/", "/v2")):
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized(f"{path} needs the header Authorization: Bearer <token> (the service's token)"
                           if not authorization else "the bearer token is not this service's")


class TooSlow(DigitsumError):
    """The request did not arrive within its deadline or at the minimum rate: HTTP 408."""


class Gate:
    """At most `limit` units held at once (requests, bytes); more is refused at once instead of waiting."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit, self.what, self.held, self.refused = limit, what, 0, 0

    def take(self, amount: int = 1) -> None:
        if self.held + amount > self.limit and self.held > 0:  # one request alone always passes
            self.refused += 1
            raise Unavailable(f"the service is busy ({self.what}); retry after {RETRY_AFTER_S} s")
        self.held += amount

    def give(self, amount: int = 1) -> None:
        self.held -= amount

    @contextmanager
    def enter(self, amount: int = 1) -> Iterator[None]:
        self.take(amount)
        try:
            yield
        finally:
            self.give(amount)


@dataclass
class BodyRules:
    """How a request body must arrive."""

    max_bytes: int  # larger bodies are refused (400)
    deadline_s: float  # the whole body within this time (408)
    min_rate: float  # bytes per second on average, once GRACE_S has passed (408)


async def read_body(chunks: AsyncIterator[bytes], declared: int | None, rules: BodyRules, budget: Gate) -> bytes:
    """Read a body under `rules`. Its bytes are taken from `budget` as they come (the declared length up front);
    on return the body's length is held there, and the caller gives it back once the request is answered."""
    if declared is not None and declared > rules.max_bytes:
        raise BadRequest(f"the body is {declared:,} bytes; the limit is {rules.max_bytes:,} (--max-body-mb)")
    taken = 0
    try:
        if declared:
            budget.take(declared)
            taken = declared
        parts: list[bytes] = []
        size, started = 0, time.monotonic()
        iterator = chunks.__aiter__()
        while True:
            elapsed = time.monotonic() - started
            # the sooner of: the deadline, and the moment the bytes so far fall below the minimum rate
            wait = min(rules.deadline_s - elapsed, GRACE_S + size / rules.min_rate - elapsed)
            if wait <= 0:
                raise _too_slow(size, declared, rules)
            try:
                chunk = await asyncio.wait_for(iterator.__anext__(), wait)
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                raise _too_slow(size, declared, rules) from None
            size += len(chunk)
            if size > rules.max_bytes:
                raise BadRequest(f"the body is over the limit of {rules.max_bytes:,} bytes (--max-body-mb)")
            if size > taken:  # chunked, or more than declared: count the bytes as they come
                budget.take(size - taken)
                taken = size
            parts.append(chunk)
        budget.give(taken - size)
        taken = size
        return b"".join(parts)
    except BaseException:
        budget.give(taken)
        raise


def _too_slow(size: int, declared: int | None, rules: BodyRules) -> TooSlow:
    of = f" of {declared:,}" if declared is not None else ""
    return TooSlow(f"the request body did not arrive in time ({size:,}{of} bytes; the whole body within "
                   f"{rules.deadline_s:g} s, at least {rules.min_rate / 1024:g} KiB/s: --read-timeout-s, "
                   f"--min-upload-kbps)")
