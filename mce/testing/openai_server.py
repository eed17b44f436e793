"""A small OpenAI-compatible HTTP server on loopback, answering from a `ScriptedModel`.

It speaks enough of the chat-completions API for the official `openai`
client (text, tool calls, JSON replies; `GET /v1/models`), and can inject
faults - a status code with `Retry-After`, a hung response - so that tests
drive the real client over real HTTP, offline.

    with OpenAIServer(ScriptedModel().when("hi", say("hello"))) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test")

From the command line, with rules in JSON (see `mce.llm.scripted.from_rules`:
match on the turn number or on the last message of any role; reply with
text, JSON, or one or several parallel tool calls) - a two-turn tool agent:

    [{"turn": 1, "tool_calls": [{"name": "forecast", "arguments": {"city": "Porto"}},
                                {"name": "forecast", "arguments": {"city": "Lisbon"}}]},
     {"turn": 2, "role": "tool", "reply": "Sunny in both."}]

    python -m mce.testing.openai_server --port 8000 [--rules rules.json] [--call-tools]

`--call-tools` makes the default reply call every offered tool with
schema-valid arguments, then answer (like pydantic-ai's `TestModel`). A
model with `per_token` set streams its replies on that schedule, a token
(`chars_per_token` characters) at a time.

>>> with OpenAIServer(ScriptedModel()) as server:
...     server.base_url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, final

from attrs import frozen

from mce.llm.scripted import ScriptedModel, from_rules
from mce.llm.stream import pieces


@final
@frozen
class Fault:
    """One injected failure: an HTTP status (with `Retry-After` and other headers), or a hang.

    `body` is the error message of an OpenAI-style error body; `raw` replaces
    the whole body (for a 200 that is not a valid completion).
    """

    status: int | None = None
    retry_after: float | str | None = None
    hang: float | None = None
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    raw: str | None = None


@final
class OpenAIServer:
    """The server; a context manager that starts it on a free loopback port."""

    def __init__(
        self,
        model: ScriptedModel,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
    ) -> None:
        self.model = model
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.hits = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._closed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        host = self._httpd.server_address[0]
        return f"http://{host if isinstance(host, str) else host.decode()}:{self.port}/v1"

    def fail_next(
        self,
        status: int | None = None,
        *,
        retry_after: float | str | None = None,
        hang: float | None = None,
        times: int = 1,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        raw: str | None = None,
    ) -> OpenAIServer:
        """Make the next `times` requests fail with `status` (or hang for `hang` seconds).

        `retry_after` is sent as the `Retry-After` header (a number, or any
        text, such as an HTTP date or garbage); `headers` are sent too; `raw`
        is sent as the whole body instead of an OpenAI-style error.

        >>> with OpenAIServer(ScriptedModel()) as server:
        ...     server.fail_next(200, raw="not JSON")._faults[0].raw
        'not JSON'
        """
        if status is None and hang is None:
            raise ValueError("fail_next() needs a status or hang=")
        extra = tuple((headers or {}).items())
        for _ in range(times):
            self._faults.append(Fault(status, retry_after, hang, body, extra, raw))
        return self

    def wait_connections_closed(self, timeout: float = 5.0) -> int:
        """Wait until clients have closed every connection (at most `timeout` s); how many are open.

        >>> with OpenAIServer(ScriptedModel()) as server:
        ...     server.wait_connections_closed(timeout=0)
        0
        """
        with self._closed:
            self._closed.wait_for(lambda: self.connections == 0, timeout)
            return self.connections

    def start(self) -> OpenAIServer:
        self._thread = threading.Thread(
            target=lambda: self._httpd.serve_forever(poll_interval=0.05),
            name="mce-openai-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling (on server threads)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            self.hits += 1
            return self._faults.popleft() if self._faults else None

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.requests.append(body)
            message = self.model.respond(body)
        payload: dict[str, Any] = {"role": "assistant", "content": message.content}
        if message.tool_calls:
            payload["tool_calls"] = [c.to_dict() for c in message.tool_calls]
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": message.model or body.get("model") or self.model.name,
            "choices": [{"index": 0, "message": payload, "finish_reason": message.finish_reason}],
            "usage": {
                "prompt_tokens": message.usage.prompt_tokens,
                "completion_tokens": message.usage.completion_tokens,
                "total_tokens": message.usage.total_tokens,
            },
        }


def _handler_for(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    """The request handler class of one server (`http.server` builds one per request)."""

    class Handler(_Handler):
        mock = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    """Answers the OpenAI routes from `mock`, the `OpenAIServer` (`self.server` is the HTTP one)."""

    mock: OpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.mock._lock:
            self.mock.connections += 1

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.mock._closed:
                self.mock.connections -= 1
                self.mock._closed.notify_all()

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode(), headers)

    def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_paced(self, completion: dict[str, Any], include_usage: bool) -> None:
        """A streamed reply written as the model writes it: a token every `per_token` s."""
        model = self.mock.model
        events = _events(completion, include_usage, model.chars_per_token)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        start = time.monotonic()
        k = 0
        for event, is_token in events:
            if is_token:
                k += 1
                delay = start + k * model.per_token - time.monotonic()
                if delay > 0 and self.mock._stopping.wait(delay):
                    return
            data = f"data: {json.dumps(event)}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        done = b"data: [DONE]\n\n"
        self.wfile.write(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")
        self.wfile.flush()

    def _authorized(self) -> bool:
        if self.mock.api_key is None:
            return True
        if self.headers.get("Authorization") == f"Bearer {self.mock.api_key}":
            return True
        self._send(401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
        return False

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path.rstrip("/").endswith("/models"):
            self._send(
                200, {"object": "list", "data": [{"id": self.mock.model.name, "object": "model"}]}
            )
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        with self.mock._lock:
            self.mock.in_flight += 1
            self.mock.max_in_flight = max(self.mock.max_in_flight, self.mock.in_flight)
        try:
            self._post()
        finally:
            with self.mock._lock:
                self.mock.in_flight -= 1

    def _post(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self._authorized():
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        fault = self.mock._next_fault()
        if fault is not None and self._faulted(fault):
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(
                400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}}
            )
            return
        completion = self.mock.completion(body)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            if self.mock.model.per_token > 0:
                self._send_paced(completion, include_usage)
                return
            data = _sse(completion, include_usage).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._send(200, completion)

    def _faulted(self, fault: Fault) -> bool:
        """Play an injected fault: hang, then answer with its status (True if it answered)."""
        if fault.hang is not None:
            self.mock._stopping.wait(fault.hang)
        if fault.status is None:
            return False
        headers = dict(fault.headers)
        if isinstance(fault.retry_after, str):
            headers["Retry-After"] = fault.retry_after
        elif fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.raw is not None:
            self._send_raw(fault.status, fault.raw.encode(), headers)
            return True
        message = fault.body or f"injected {fault.status}"
        self._send(
            fault.status,
            {"error": {"message": message, "type": "server_error"}},
            headers,
        )
        return True


def _sse(completion: dict[str, Any], include_usage: bool) -> str:
    """A completion as the server-sent events of a streamed reply (word by word)."""
    events = _events(completion, include_usage, None)
    return "".join(f"data: {json.dumps(e)}\n\n" for e, _ in events) + "data: [DONE]\n\n"


def _events(
    completion: dict[str, Any], include_usage: bool, chars_per_token: int | None
) -> list[tuple[dict[str, Any], bool]]:
    """The chunks of a streamed reply, each marked if it is a token of text.

    The text goes word by word, or (`chars_per_token`) in the scripted model's tokens.
    """
    base = {k: completion[k] for k in ("id", "created", "model")} | {
        "object": "chat.completion.chunk"
    }
    choice = completion["choices"][0]
    message = choice["message"]

    def event(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return base | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    text = message.get("content") or ""
    split = (
        re.findall(r"\S+\s*|\s+", text)
        if chars_per_token is None
        else pieces(text, chars_per_token)
    )
    events = [event({"role": "assistant"})]
    events += [event({"content": piece}) for piece in split]
    for index, call_ in enumerate(message.get("tool_calls") or ()):
        head = {"index": index, "id": call_["id"], "type": "function"}
        events.append(
            event(
                {
                    "tool_calls": [
                        head | {"function": {"name": call_["function"]["name"], "arguments": ""}}
                    ]
                }
            )
        )
        arguments = call_["function"]["arguments"]
        half = len(arguments) // 2
        for part in (arguments[:half], arguments[half:]):
            events.append(
                event({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
            )
    events.append(event({}, choice["finish_reason"]))
    if include_usage:
        events.append(base | {"choices": [], "usage": completion["usage"]})
    return [(e, "content" in e["choices"][0]["delta"] if e["choices"] else False) for e in events]


def _model_from_rules(path: str | None, call_tools: bool = False) -> ScriptedModel:
    if path is None:
        return ScriptedModel(call_tools=call_tools)
    with open(path) as f:
        data = json.load(f)
    try:
        return from_rules(data, call_tools=call_tools)
    except ValueError as exc:
        raise SystemExit(f"{path}: {exc}") from None


def main(argv: list[str] | None = None) -> None:
    """Serve from the command line: `python -m mce.testing.openai_server --port 8000`."""
    parser = argparse.ArgumentParser(description="A scripted OpenAI-compatible server on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--rules", help="a JSON file of rules for the scripted model")
    parser.add_argument("--api-key", help="require this bearer token")
    parser.add_argument(
        "--call-tools",
        action="store_true",
        help="by default, call every offered tool with schema-valid arguments, then answer",
    )
    args = parser.parse_args(argv)
    model = _model_from_rules(args.rules, args.call_tools)
    server = OpenAIServer(model, host=args.host, port=args.port, api_key=args.api_key)
    print(f"serving the scripted model at {server.base_url}", flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


__all__ = ["Fault", "OpenAIServer", "main"]

if __name__ == "__main__":
    main()
