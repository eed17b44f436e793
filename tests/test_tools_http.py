"""HTTP tools against a loopback JSON server: allowlist, size cap, errors, limits."""

from __future__ import annotations

import gzip
import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mce import Err, Ok, gather, run_sync
from mce.tools import ToolError
from mce.tools.http import HttpTools

state: dict[str, Any] = {"in_flight": 0, "peak": 0}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        with lock:
            state["in_flight"] += 1
            state["peak"] = max(state["peak"], state["in_flight"])
        try:
            if self.path.startswith("/big"):
                self._reply(200, b"[" + b"1," * 5000 + b"1]")
            elif self.path.startswith("/missing"):
                self._reply(404, b'{"error": "nope"}')
            elif self.path.startswith("/text"):
                self._reply(200, b"hello")
            elif self.path.startswith("/hang"):
                time.sleep(1)
                self._reply(200, b"{}")
            elif self.path.startswith("/slow"):
                time.sleep(0.05)
                self._reply(200, b"{}")
            else:
                self._reply(200, json.dumps({"path": self.path}).encode())
        finally:
            with lock:
                state["in_flight"] -= 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._reply(200, json.dumps({"echo": json.loads(body)}).encode())


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def tools(base: str, **options: Any) -> HttpTools:
    return HttpTools(allow=[base.removeprefix("http://")], **options)


def test_get_and_post_json(base: str) -> None:
    http = tools(base)
    assert run_sync(http.get_json(f"{base}/x", {"q": "1"}), None) == Ok({"path": "/x?q=1"}, None)
    assert run_sync(http.post_json(f"{base}/p", {"a": [1]}), None) == Ok({"echo": {"a": [1]}}, None)


def test_hosts_not_allowed_are_refused_before_sending(base: str) -> None:
    http = HttpTools(allow=["api.example.com", "*.trusted.org"])
    out = run_sync(http.get_json(f"{base}/x"), None)
    assert isinstance(out, Err) and isinstance(out.error, ToolError)
    assert out.error.exception_type == "PermissionError" and "not allowed" in out.error.message
    http.check_url("https://docs.trusted.org/a")
    with pytest.raises(PermissionError, match="only http and https"):
        http.check_url("file:///etc/passwd")
    with pytest.raises(ValueError, match="allow="):
        HttpTools(allow=[])


def test_size_cap_status_and_non_json(base: str) -> None:
    http = tools(base, max_bytes=1000)
    big = run_sync(http.get_json(f"{base}/big"), None)
    assert isinstance(big, Err) and "larger than 1000 bytes" in big.error.message
    missing = run_sync(http.get_json(f"{base}/missing"), None)
    assert isinstance(missing, Err) and "HTTP 404" in missing.error.message
    text = run_sync(http.get_json(f"{base}/text"), None)
    assert isinstance(text, Err) and "not JSON" in text.error.message


def test_timeout(hostile: str) -> None:
    out = run_sync(tools(hostile, timeout=0.1).get_json(f"{hostile}/trickle"), None)
    assert isinstance(out, Err) and out.error.kind == "timeout"


def test_connection_limit(base: str) -> None:
    state["peak"] = 0
    http = tools(base, max_connections=2)
    out = run_sync(gather([http.get_json(f"{base}/slow") for _ in range(6)]), None)
    assert out.ok and state["peak"] == 2


# -- hostile servers: trickled bodies, compression bombs, redirects, echoed credentials

BOMB_SIZE = 50_000_000
_bomb: list[bytes] = []


def bomb() -> bytes:
    """A gzip body of ~50 KB that inflates to 50 MB of JSON."""
    if not _bomb:
        _bomb.append(gzip.compress(b'{"a": "' + b" " * BOMB_SIZE + b'"}', compresslevel=9))
    return _bomb[0]


class Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/trickle"):
            body = b'{"a": "' + b"x" * 17 + b'"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(len(body)):  # one byte every 0.5 s: 13 s in all
                try:
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                except OSError:
                    return  # the client gave up
                if stop.wait(0.5):
                    return
        elif self.path.startswith(("/bomb", "/gzip", "/corrupt")):
            data = bomb() if self.path.startswith("/bomb") else gzip.compress(b'{"ok": true}')
            if self.path.startswith("/corrupt"):
                data = data[:10] + b"\xff" * 40 + data[10:]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path.startswith("/endless"):  # chunked, no length, never ends
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            piece = b" " * 8192
            while not stop.is_set():
                try:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                except OSError:
                    return  # the client gave up
        elif self.path.startswith("/redirect"):
            data = b'{"moved": "here is a body"}'
            self.send_response(302)
            self.send_header("Location", "http://elsewhere.example/x")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path.startswith("/echo-auth"):
            data = json.dumps({"error": f"bad token: {self.headers.get('Authorization')}"}).encode()
            self.send_response(403)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)


stop = threading.Event()


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    stop.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    stop.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_trickling_server_hits_the_total_deadline(hostile: str, backend: str) -> None:
    # Every byte arrives well within the 1 s timeout; the whole body takes 13 s.
    out = run_sync(tools(hostile, timeout=1).get_json(f"{hostile}/trickle"), None, backend=backend)  # type: ignore[arg-type]
    assert isinstance(out, Err) and isinstance(out.error, ToolError), out
    assert out.error.kind == "timeout" and "within 1 s" in out.error.message


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_compression_bomb_is_stopped_while_it_inflates(hostile: str, backend: str) -> None:
    http = tools(hostile, max_bytes=100_000)
    assert len(bomb()) < 100_000  # under the cap on the wire
    tracemalloc.start()
    try:
        out = run_sync(http.get_json(f"{hostile}/bomb"), None, backend=backend)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(out, Err) and "larger than 100000 bytes" in out.error.message
    assert peak < 10_000_000  # it stopped inflating at the cap, far below the 50 MB body
    assert run_sync(http.get_json(f"{hostile}/gzip"), None) == Ok({"ok": True}, None)
    corrupt = run_sync(http.get_json(f"{hostile}/corrupt"), None, backend=backend)  # type: ignore[arg-type]
    assert isinstance(corrupt, Err) and corrupt.error.exception_type == "error"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_bytes_on_the_wire_are_capped(hostile: str, backend: str) -> None:
    http = tools(hostile, max_bytes=10_000)
    out = run_sync(http.get_json(f"{hostile}/bomb"), None, backend=backend)  # type: ignore[arg-type]
    assert isinstance(out, Err) and "larger than 10000 bytes (on the wire)" in out.error.message
    endless = run_sync(http.get_json(f"{hostile}/endless"), None, backend=backend)  # type: ignore[arg-type]
    assert (
        isinstance(endless, Err)
        and "larger than 10000 bytes (on the wire)" in endless.error.message
    )


def test_a_redirect_is_an_error_not_a_value(hostile: str) -> None:
    out = run_sync(tools(hostile).get_json(f"{hostile}/redirect"), None)
    assert isinstance(out, Err) and isinstance(out.error, ToolError)
    assert "HTTP 302" in out.error.message and "elsewhere.example" in out.error.message


def test_error_bodies_echoing_headers_are_scrubbed(hostile: str, tmp_path: Any) -> None:
    token = "tok-3f9a8b7c6d5e"
    http = tools(hostile, headers={"Authorization": f"Bearer {token}"})
    path = tmp_path / "http.jsonl"
    out = run_sync(http.get_json(f"{hostile}/echo-auth"), None, journal=path)
    assert isinstance(out, Err) and "HTTP 403" in out.error.message
    assert token not in str(out.error) and "<secret>" in out.error.message
    assert token not in path.read_text()


def test_the_same_tools_serve_runs_on_both_backends(base: str) -> None:
    http = tools(base, max_connections=2)
    for backend in ["asyncio", "trio", "asyncio", "trio"]:
        out = run_sync(
            gather([http.get_json(f"{base}/slow") for _ in range(3)]), None, backend=backend
        )  # type: ignore[arg-type]
        assert out.ok, (backend, out)
