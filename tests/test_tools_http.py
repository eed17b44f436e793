"""HTTP tools against a loopback JSON server: allowlist, size cap, errors, limits."""

from __future__ import annotations

import json
import threading
import time
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


def test_timeout(base: str) -> None:
    out = run_sync(
        HttpTools(allow=["10.255.255.1"], timeout=0.1).get_json("http://10.255.255.1/"), None
    )
    assert isinstance(out, Err) and out.error.kind == "failed"


def test_connection_limit(base: str) -> None:
    state["peak"] = 0
    http = tools(base, max_connections=2)
    out = run_sync(gather([http.get_json(f"{base}/slow") for _ in range(6)]), None)
    assert out.ok and state["peak"] == 2
