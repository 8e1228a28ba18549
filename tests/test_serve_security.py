"""`serve`'s token and page rules without Ray: where the token may come from (and where it may not), which files
the page serves (the build's file list only: no dotfile, symlink or later addition), its headers, ETag and 304,
HEAD, and the page's own budget of slots and its send timeout."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

from digitsum_edge.errors import DigitsumError
from digitsum_edge.serve import auth
from digitsum_edge.serve.limits import Unavailable
from digitsum_edge.serve.page import Page, content_security_policy
from digitsum_edge.serve.served import PAGE_SLOTS, ServedPage

TOKEN = "a-long-enough-token-0123"


def _file(tmp_path: Path, text: str, mode: int) -> str:
    path = tmp_path / f"token{len(list(tmp_path.iterdir()))}"
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def test_a_token_cannot_be_off_by_accident(tmp_path: Path) -> None:
    resolve = auth.resolve_token
    assert resolve(None, False, "127.0.0.1", {auth.ENV: TOKEN}) == TOKEN
    assert resolve(None, False, "127.0.0.1", {}) is None  # this machine only: allowed without
    assert resolve(None, True, "0.0.0.0", {}) is None  # said outright
    assert resolve(_file(tmp_path, TOKEN + "\n", 0o600), False, "0.0.0.0", {}) == TOKEN
    bad = [((None, False, "127.0.0.1", {auth.ENV: ""}), "DIGITSUM_EDGE_TOKEN is set but empty"),
           ((None, False, "127.0.0.1", {auth.ENV: "  "}), "set but empty"),
           ((None, False, "0.0.0.0", {}), "--host 0.0.0.0 is reachable from other machines"),
           ((None, False, "192.168.1.5", {}), "or say --no-token"),
           ((None, False, "::", {}), "reachable"),
           ((None, True, "0.0.0.0", {auth.ENV: TOKEN}), "--no-token, but a token is given"),
           ((None, False, "127.0.0.1", {auth.ENV: "short"}), "at least 16"),
           ((_file(tmp_path, TOKEN, 0o644), False, "127.0.0.1", {}), "readable by every user"),
           ((_file(tmp_path, "\n", 0o600), False, "127.0.0.1", {}), "is empty"),
           ((_file(tmp_path, TOKEN, 0o600), False, "127.0.0.1", {auth.ENV: TOKEN}), "keep one"),
           ((str(tmp_path / "nothing"), False, "127.0.0.1", {}), "No such file")]
    for args, fragment in bad:
        with pytest.raises(DigitsumError, match=fragment):
            resolve(*args)  # type: ignore[arg-type]
    assert "auth on" in auth.describe(TOKEN, None) and "auth OFF" in auth.describe(None, None)
    assert auth.is_loopback("::1") and auth.is_loopback("localhost") and not auth.is_loopback("example.org")


def test_replicas_get_a_private_file_not_the_token(tmp_path: Path) -> None:
    private = tmp_path / "run"
    private.mkdir(mode=0o700)
    source = auth.TokenSource.for_replicas(TOKEN, None, private)
    assert source.value is None and source.path is not None and TOKEN not in repr(source)
    assert os.stat(source.path).st_mode & 0o777 == 0o600 and source.load() == TOKEN
    given = _file(tmp_path, TOKEN, 0o600)
    assert auth.TokenSource.for_replicas(TOKEN, given, private).path == given  # --token-file: its own path
    on_cluster = auth.TokenSource.for_replicas(TOKEN, None, None)  # no shared folder: the value, never printed
    assert on_cluster.load() == TOKEN and TOKEN not in repr(on_cluster)
    assert auth.TokenSource().load() is None


INDEX = '<!doctype html><style>\n  body { margin: 0; }\n</style><script src="app.js"></script>'


def _page(**files: bytes) -> Page:
    named = {name.replace("__", "/"): data for name, data in files.items()}
    return Page({n: gzip.compress(d) for n, d in named.items()}, {n: hashlib.sha256(d).hexdigest()
                                                                  for n, d in named.items()},
                content_security_policy(INDEX))


def test_page_answers_etags_304_head_and_headers() -> None:
    wasm = os.urandom(300_000)
    served = ServedPage(_page(**{"index.html": INDEX.encode(), "vendor__x.wasm": wasm}), https=True,
                        send_timeout_s=1)
    plain = served.answer("GET", "/vendor/x.wasm", None, None)
    packed = served.answer("GET", "/vendor/x.wasm", "br, gzip", None)
    assert plain is not None and packed is not None
    assert plain.body == wasm and gzip.decompress(packed.body) == wasm and packed.headers["Content-Encoding"] == "gzip"
    assert plain.headers["ETag"] != packed.headers["ETag"]  # one per representation
    assert served.answer("GET", "/vendor/x.wasm", None, plain.headers["ETag"]).status == 304  # type: ignore[union-attr]
    assert served.answer("GET", "/vendor/x.wasm", "gzip", f'W/{packed.headers["ETag"]}, "x"').status == 304  # type: ignore[union-attr]
    assert served.answer("GET", "/vendor/x.wasm", "gzip", plain.headers["ETag"]).status == 200  # type: ignore[union-attr]
    head = served.answer("HEAD", "/", None, None)
    assert head is not None and head.body == b"" and head.headers["Content-Length"] == str(len(INDEX))
    headers = head.headers
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self' 'wasm-unsafe-eval'" in csp
    style = hashlib.sha256(b"\n  body { margin: 0; }\n").digest()
    import base64

    assert f"'sha256-{base64.b64encode(style).decode()}'" in csp  # the inline style, by its hash only
    assert "unsafe-inline" not in csp
    plain_http = ServedPage(_page(**{"index.html": b"x"}), https=False, send_timeout_s=1)
    assert "Strict-Transport-Security" not in plain_http.answer("GET", "/", None, None).headers  # type: ignore[union-attr]
    for path in ("/.env", "/nothing.js", "/vendor/../index.html", "/index.html/"):
        assert served.answer("GET", path, None, None) is None, path


def test_the_page_has_its_own_slots_and_drops_a_client_that_reads_nothing() -> None:
    body = os.urandom(5 * 64 * 1024)
    served = ServedPage(_page(**{"index.html": body}), https=False, send_timeout_s=0.2)
    answer = served.answer("GET", "/", None, None)
    assert answer is not None
    sent: list[int] = []

    async def stuck(message: dict) -> None:  # a client that takes the headers and one chunk, then nothing
        sent.append(len(message.get("body", b"")))
        if len(sent) > 2:
            await asyncio.sleep(60)

    async def reader(message: dict) -> None:
        sent.append(len(message.get("body", b"")))

    async def run() -> tuple[bool, bool, float]:
        for _ in range(PAGE_SLOTS):
            await served.slot()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(Unavailable):  # all slots held: the next waits up to the timeout, then 503
            await served.slot()
        waited = loop.time() - started
        for _ in range(PAGE_SLOTS):
            served.slots.release()
        await served.slot()
        dropped = await served.send(answer, stuck)
        await served.slot()
        whole = await served.send(answer, reader)
        return dropped, whole, waited

    dropped, whole, waited = asyncio.run(run())
    assert dropped is False and whole is True and 0.15 < waited < 2
    assert sum(sent) == 2 * 64 * 1024 + len(body)  # the stuck client got two chunks; the reader all of it
    assert served.slots._value == PAGE_SLOTS  # every slot given back


def test_the_build_lists_its_files_and_only_those_are_served(tiny_onnx: Path, tmp_path: Path) -> None:
    from browser_helpers import npm_files_or_skip
    from digitsum_edge.web import build

    npm_files_or_skip()
    folder = tmp_path / "web"
    build.run(build.WebConfig(out=str(folder), model=str(tiny_onnx)))
    written = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    listed = json.loads((folder / build.FILE_LIST).read_text())["files"]
    assert set(listed) == written - {build.FILE_LIST}
    (folder / ".env").write_text("SECRET=1")  # what the probe placed there
    (folder / "hostname.txt").symlink_to("/etc/hostname")
    (folder / "vendor" / "later.js").write_text("1")
    served = build.built_files(folder)
    assert set(served) == {*listed, build.FILE_LIST} and all(not n.startswith(".") for n in served)
    sha = hashlib.sha256(tiny_onnx.read_bytes()).hexdigest()
    assert build.stale(folder, sha) is None  # later additions change nothing: they are never served
    (folder / "app.js").write_text("changed")
    assert build.stale(folder, sha) == "app.js was changed since it was built"
    (folder / "app.js").unlink()
    (folder / "app.js").symlink_to("/etc/hostname")
    assert build.stale(folder, sha) == "app.js is a symbolic link since it was built"
    assert build.ensure(build.WebConfig(out=str(folder), model=str(tiny_onnx)))  # built anew
    assert not (folder / ".env").exists() and not (folder / "app.js").is_symlink()
