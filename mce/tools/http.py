"""HTTP tools on httpx: GET and POST JSON, only to hosts you allow.

`HttpTools(allow=[...])` makes two tools, `http_get_json` and
`http_post_json`, with a required host allowlist: a request to any other
host fails (a `ToolError`) without being sent. Entries are host names
(`api.example.com`), optionally with a port (`127.0.0.1:8080`), or
`*.example.com` for subdomains.

Each request has a total deadline (`timeout`: connecting, sending and
reading the whole body, however slowly the server trickles it); the
response is capped at `max_bytes` both on the wire and once decompressed,
checked while it streams (a gzip bomb stops at the cap); redirects are not
followed - any 3xx is a `ToolError`, as is any status >= 400. The values of
`headers` (credentials) are scrubbed from every error message.

>>> http = HttpTools(allow=["api.example.com"])
>>> [t.name for t in http.tools]
['http_get_json', 'http_post_json']
>>> http.check_url("https://evil.example.net/x")
Traceback (most recent call last):
...
PermissionError: host 'evil.example.net' is not allowed (allowed: ['api.example.com'])
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from typing import Any, final
from urllib.parse import urlsplit

import anyio
import httpx

from mce._perloop import PerLoop
from mce.effects import EffectFailed, scrub
from mce.tools import Tool, ToolError, ToolErrorKind

_ACCEPT_ENCODING = "gzip, deflate"  # only what is decoded here, under the size cap


class _TooLarge(Exception):
    pass


class _Decoder:
    """Incremental content decoding that never produces more than it is allowed to."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._z: Any = None
        if encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._z = zlib.decompressobj()
        elif encoding not in ("", "identity"):
            raise ValueError(f"unsupported Content-Encoding {encoding!r}")
        self._first = True

    def feed(self, data: bytes, limit: int) -> bytes:
        """Decode `data`, returning at most `limit` bytes (more input left means over the cap)."""
        if self._z is None:
            return data[:limit] if len(data) > limit else data
        try:
            out: bytes = self._z.decompress(data, limit)
        except zlib.error:
            if not (self._first and self.encoding == "deflate"):
                raise
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send
            out = self._z.decompress(data, limit)
        self._first = False
        if self._z.unconsumed_tail:
            raise _TooLarge
        return out

    def flush(self, limit: int) -> bytes:
        if self._z is None:
            return b""
        out: bytes = self._z.decompress(b"", limit)
        if self._z.unconsumed_tail or len(out) >= limit:
            raise _TooLarge
        return out


@final
class HttpTools:
    """A pair of JSON HTTP tools restricted to an allowlist (see the module docstring)."""

    def __init__(
        self,
        *,
        allow: Iterable[str],
        timeout: float = 10.0,
        max_bytes: int = 1_000_000,
        max_connections: int = 10,
        headers: dict[str, str] | None = None,
        prefix: str = "http",
    ) -> None:
        self.allow = [a.lower() for a in allow]
        if not self.allow:
            raise ValueError("HttpTools needs a non-empty allow= list of hosts")
        if max_bytes < 1 or max_connections < 1 or not timeout > 0:
            raise ValueError("timeout, max_bytes and max_connections must be positive")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_connections = max_connections
        self.headers = dict(headers or {})
        self._limiters: PerLoop[anyio.CapacityLimiter] = PerLoop(
            lambda: anyio.CapacityLimiter(max_connections)
        )
        self.get_json = Tool(
            self._get,
            name=f"{prefix}_get_json",
            description="GET a URL and return its JSON body.",
        )
        self.post_json = Tool(
            self._post,
            name=f"{prefix}_post_json",
            description="POST a JSON body to a URL and return the JSON reply.",
        )

    @property
    def tools(self) -> list[Tool]:
        return [self.get_json, self.post_json]

    def check_url(self, url: str) -> None:
        """Raise `PermissionError` unless `url` is http(s) to an allowed host."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise PermissionError(f"only http and https URLs are allowed, got {url!r}")
        host = (parts.hostname or "").lower()
        with_port = f"{host}:{parts.port}" if parts.port else host
        for entry in self.allow:
            if entry in (host, with_port):
                return
            if entry.startswith("*.") and host.endswith(entry[1:]):
                return
        raise PermissionError(f"host {host!r} is not allowed (allowed: {self.allow})")

    def _fail(
        self, tool: Tool, kind: ToolErrorKind, message: str, exception_type: str | None
    ) -> EffectFailed:
        secrets = [v for v in self.headers.values()]
        secrets += [v.split(" ", 1)[1] for v in self.headers.values() if " " in v]
        text = scrub(message, secrets)
        return EffectFailed(ToolError(tool.name, kind, text, exception_type=exception_type))

    async def _request(self, tool: Tool, method: str, url: str, **kwargs: Any) -> Any:
        self.check_url(url)
        async with self._limiters.get():
            try:
                with anyio.fail_after(self.timeout):
                    status, location, body = await self._fetch(method, url, **kwargs)
            except TimeoutError:
                raise self._fail(
                    tool,
                    "timeout",
                    f"no complete response from {url} within {self.timeout:g} s",
                    "TimeoutError",
                ) from None
            except _TooLarge as exc:
                raise self._fail(tool, "failed", str(exc), "ValueError") from None
            except (httpx.HTTPError, OSError, ValueError, zlib.error) as exc:
                raise self._fail(
                    tool, "failed", f"{method} {url}: {exc}", type(exc).__qualname__
                ) from None
        if 300 <= status < 400:
            raise self._fail(
                tool,
                "failed",
                f"HTTP {status} from {url}: redirects are not followed (Location: {location})",
                None,
            )
        if status >= 400:
            preview = bytes(body[:200]).decode(errors="replace")
            raise self._fail(tool, "failed", f"HTTP {status} from {url}: {preview}", None)
        try:
            return json.loads(body)
        except RecursionError:
            raise self._fail(
                tool, "failed", f"response from {url} is JSON nested too deeply", "RecursionError"
            ) from None
        except ValueError as exc:
            raise self._fail(
                tool, "failed", f"response from {url} is not JSON: {exc}", "ValueError"
            ) from None

    async def _fetch(self, method: str, url: str, **kwargs: Any) -> tuple[int, str, bytes]:
        """Status, Location and the body, read under both caps."""
        cap = self.max_bytes
        async with (
            httpx.AsyncClient(
                timeout=self.timeout, headers=self.headers, follow_redirects=False
            ) as client,
            client.stream(
                method, url, headers={"Accept-Encoding": _ACCEPT_ENCODING}, **kwargs
            ) as response,
        ):
            encoding = response.headers.get("content-encoding", "").strip().lower()
            decoder = _Decoder(encoding)
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > cap:
                raise _TooLarge(f"response from {url} is larger than {cap} bytes (on the wire)")
            wire = 0
            body = bytearray()
            over = False
            # Decode at most `cap` bytes; read at most `cap` bytes from the wire.
            # The stream is read to its end either way: leaving httpx's stream
            # early would hand its inner async generators to the garbage
            # collector (which trio reports), so past the wire cap the
            # connection is closed and the stream ends on the next read.
            wire_cap_hit = False
            broken: zlib.error | None = None
            try:
                async for chunk in response.aiter_raw():
                    if wire_cap_hit:
                        continue
                    wire += len(chunk)
                    if wire > cap:
                        wire_cap_hit = True
                        stream = response.stream
                        assert isinstance(stream, httpx.AsyncByteStream)
                        await stream.aclose()
                        continue
                    if not over and broken is None:
                        try:
                            body += decoder.feed(chunk, cap - len(body) + 1)
                            over = len(body) > cap
                        except _TooLarge:
                            over = True
                        except zlib.error as exc:  # raised after the stream is drained
                            broken = exc
            except (httpx.HTTPError, httpx.StreamError, OSError):
                if not wire_cap_hit:
                    raise
            if wire_cap_hit:
                raise _TooLarge(f"response from {url} is larger than {cap} bytes (on the wire)")
            if broken is not None:
                raise broken
            if not over:
                try:
                    body += decoder.flush(cap - len(body) + 1)
                except _TooLarge:
                    over = True
            if over or len(body) > cap:
                raise _TooLarge(
                    f"response from {url} is larger than {cap} bytes once decoded ({encoding})"
                )
            return response.status_code, response.headers.get("location", ""), bytes(body)

    async def _get(self, url: str, params: dict[str, str] | None = None) -> Any:
        return await self._request(self.get_json, "GET", url, params=params)

    async def _post(self, url: str, body: dict[str, Any] | None = None) -> Any:
        return await self._request(self.post_json, "POST", url, json=body)


__all__ = [
    "HttpTools",
]
