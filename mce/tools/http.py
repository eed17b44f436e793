"""HTTP tools on httpx: GET and POST JSON, only to hosts you allow.

`HttpTools(allow=[...])` makes two tools, `http_get_json` and
`http_post_json`, with a timeout, a cap on the response size, a bound on
concurrent connections, and a required host allowlist: a request to any
other host fails (a `ToolError`) without being sent. Entries are host names
(`api.example.com`), optionally with a port (`127.0.0.1:8080`), or
`*.example.com` for subdomains.

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
from collections.abc import Iterable
from typing import Any, final
from urllib.parse import urlsplit

import anyio
import httpx

from mce.tools import Tool


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
        self._limiter: anyio.CapacityLimiter | None = None
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

    def _limit(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_connections)
        return self._limiter

    async def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.check_url(url)
        async with (
            self._limit(),
            httpx.AsyncClient(timeout=self.timeout, headers=self.headers) as client,
            client.stream(method, url, **kwargs) as response,
        ):
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise ValueError(f"response from {url} is larger than {self.max_bytes} bytes")
            if response.status_code >= 400:
                preview = bytes(body[:200]).decode(errors="replace")
                raise RuntimeError(f"HTTP {response.status_code} from {url}: {preview}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ValueError(f"response from {url} is not JSON: {exc}") from None

    async def _get(self, url: str, params: dict[str, str] | None = None) -> Any:
        return await self._request("GET", url, params=params)

    async def _post(self, url: str, body: dict[str, Any] | None = None) -> Any:
        return await self._request("POST", url, json=body)


__all__ = [
    "HttpTools",
]
