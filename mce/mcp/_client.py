"""The MCP client: an MCP server's tools as mce tools, called as journaled effects."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, final

import anyio
import jsonschema
import mcp_types
from anyio.abc import TaskGroup
from mcp import Client, StdioServerParameters
from mcp.server import Server as _SdkServer
from mcp.server.mcpserver import MCPServer as _SdkMCPServer

from mce.effects import EffectError, EffectFailed, MissingHandler, effect
from mce.schema import SchemaError
from mce.step import Step
from mce.tools import Tool, ToolError

_log = logging.getLogger("mce.mcp")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NOT_A_NAME_CHAR = re.compile(r"[^A-Za-z0-9_-]")

Target = StdioServerParameters | str | _SdkServer[Any] | _SdkMCPServer[Any]
"""What a `Connection` talks to: a command (stdio), a URL (streamable HTTP) or an in-process SDK server."""


class NotConnected(MissingHandler):
    """A live MCP call outside `async with connection:`: a configuration bug, raised out of `run`.

    >>> str(NotConnected("fs", "mcp:fs/read"))
    "MCP server 'fs' is not open for effect 'mcp:fs/read': run the workflow inside `async with connection:`"
    """

    def __init__(self, server: str, kind: str) -> None:
        LookupError.__init__(
            self,
            f"MCP server {server!r} is not open for effect {kind!r}: "
            "run the workflow inside `async with connection:`",
        )
        self.kind = kind
        self.position = ""


def _describe(exc: BaseException) -> str:
    """The exception's type and message, looking inside task groups' one-exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def _text(result: mcp_types.CallToolResult) -> str:
    parts = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        else:
            parts.append(
                json.dumps(block.model_dump(mode="json", by_alias=True, exclude_none=True))
            )
    return "\n".join(parts)


def result_value(result: mcp_types.CallToolResult) -> Any:
    """The value of a successful MCP tool result, as JSON.

    Its structured content when the server sends some; otherwise the text
    of its content (non-text blocks as JSON objects, one per line).

    >>> result_value(mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text="hi")]))
    'hi'
    >>> result_value(mcp_types.CallToolResult(content=[], structured_content={"n": 1}))
    {'n': 1}
    """
    if result.structured_content is not None:
        return result.structured_content
    return _text(result)


def _checker(name: str, schema: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """A function raising `SchemaError` that lists every way `arguments` break `schema`."""
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"MCP tool {name!r} has an invalid input schema: {exc.message}") from None
    validator = validator_class(schema)

    def check(arguments: dict[str, Any]) -> None:
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if errors:
            paths = [".".join(str(p) for p in e.absolute_path) for e in errors]
            message = "; ".join(
                f"{path}: {e.message}" if path else e.message
                for path, e in zip(paths, errors, strict=True)
            )
            raise SchemaError(paths[0], message)

    return check


@final
class Connection:
    """One MCP server, reached over stdio, streamable HTTP or in process; its tools as mce tools.

    An async context manager: `async with connection:` around a run opens
    the connection when the run first needs it live and closes it on exit.
    A replay never needs it, so a recorded run replays with the server
    stopped. `tools()` is a step listing the server's tools (journaled) as
    mce `Tool`s, usable in `react`, plans and `par`; each call is an effect
    of kind `"mcp:<name>/<tool>"`. A result with `isError` is a `ToolError`,
    a failure to reach the server an `EffectError`.

    >>> from mce import run
    >>> from mce.mcp import server
    >>> from mce.tools import tool
    >>> @tool
    ... def add(a: int, b: int) -> int:
    ...     "Add two integers."
    ...     return a + b
    >>> calc = Connection("calc", server([add]))  # an in-process server, for the example
    >>> async def main():
    ...     async with calc:
    ...         return await run(calc.tools().then(lambda tools: tools[0](a=2, b=3)), None)
    >>> anyio.run(main).value
    '5'
    """

    def __init__(self, name: str, target: Target, *, timeout: float | None = None) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"an MCP server's name must be 1-64 letters, digits, _ or -, got {name!r}"
            )
        if not isinstance(target, StdioServerParameters | str | _SdkServer | _SdkMCPServer):
            raise TypeError(
                f"Connection {name!r}: target must be StdioServerParameters, a URL or an MCP "
                f"server, got {target!r}"
            )
        if timeout is not None and not timeout > 0:
            raise ValueError(f"Connection {name!r}: timeout must be > 0, got {timeout!r}")
        self.name = name
        self.target = target
        self.timeout = timeout
        self._tg: TaskGroup | None = None
        self._ready: anyio.Event | None = None
        self._closing: anyio.Event | None = None
        self._client: Client | None = None
        self._failure: BaseException | None = None
        self._reported = False

    def __repr__(self) -> str:
        return f"<mcp connection {self.name}>"

    def kind(self, tool: str) -> str:
        """The effect kind of a call to `tool` on this server.

        >>> stdio("fs", "fs-server").kind("read_file")
        'mcp:fs/read_file'
        """
        return f"mcp:{self.name}/{tool}"

    # ------------------------------------------------------------ the connection

    async def __aenter__(self) -> Connection:
        if self._tg is not None:
            raise RuntimeError(f"MCP connection {self.name!r} is already open")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._closing = anyio.Event()
        self._ready = None
        self._failure = None
        self._reported = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._tg = self._tg, None
        assert tg is not None and self._closing is not None
        self._closing.set()
        try:
            suppressed = await tg.__aexit__(exc_type, exc, tb)
        finally:
            self._ready = None
        failure = self._failure
        if failure is not None and not self._reported:
            # Calls see a broken connection as an EffectError; one that broke
            # when no call needed it is still worth a word.
            _log.warning("MCP connection %r failed: %s", self.name, _describe(failure))
        return suppressed

    async def _own(self) -> None:
        # The SDK client's transport (a subprocess, an HTTP stream) lives in
        # task groups that must be entered and left by one task: this one.
        assert self._ready is not None and self._closing is not None
        try:
            # No timeout on the handshake: starting a server may take a while.
            async with Client(self.target) as client:
                self._client = client
                self._ready.set()
                await self._closing.wait()
        except Exception as exc:
            self._failure = exc
        finally:
            self._client = None
            self._ready.set()

    async def _session(self, kind: str) -> Client:
        if self._tg is None:
            raise NotConnected(self.name, kind)
        if self._ready is None:
            self._ready = anyio.Event()
            self._tg.start_soon(self._own)
        await self._ready.wait()
        if self._client is None:
            self._reported = True
            failure = self._failure
            if failure is None:  # the connection was closed meanwhile
                raise ConnectionError(f"MCP server {self.name!r}: the connection is closed")
            raise ConnectionError(
                f"cannot reach MCP server {self.name!r}: {_describe(failure)}"
            ) from failure
        return self._client

    async def _call(self, tool: str, label: str, arguments: dict[str, Any]) -> Any:
        kind = self.kind(tool)
        client = await self._session(kind)
        try:
            result = await client.call_tool(tool, arguments, read_timeout_seconds=self.timeout)
        except Exception as exc:
            self._reported = True
            if self._failure is not None:
                raise ConnectionError(
                    f"MCP server {self.name!r} broke: {_describe(self._failure)}"
                ) from exc
            raise
        if result.is_error:
            raise EffectFailed(ToolError(label, "failed", _text(result)))
        return result_value(result)

    async def _list(self, _request: Any) -> list[dict[str, Any]]:
        client = await self._session(f"mcp:{self.name}")
        listed: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            with anyio.fail_after(self.timeout):
                page = await client.list_tools(cursor=cursor)
            for t in page.tools:
                listed.append(
                    {
                        "name": t.name,
                        "description": t.description or t.title or "",
                        "inputSchema": t.input_schema,
                    }
                )
            cursor = page.next_cursor
            if cursor is None:
                return listed
            if cursor in seen:  # a server paging in a circle would be asked forever
                raise ConnectionError(
                    f"MCP server {self.name!r} listed its tools in a loop: "
                    f"the cursor {cursor!r} came back after {len(seen) + 1} pages"
                )
            seen.add(cursor)

    # ------------------------------------------------------------ steps

    def tools(self, *, prefix: str = "") -> Step[object, EffectError, list[Tool]]:
        """A step listing the server's tools as mce `Tool`s (the listing is journaled).

        Tool names keep the server's spelling where a model allows it
        (letters, digits, `_`, `-`); other characters become `_`, and
        `prefix` is put in front (to tell several servers apart). The effect
        kind keeps the server's own name: `"mcp:<server>/<tool>"`.

        >>> isinstance(stdio("fs", "fs-server").tools(), Step)
        True
        """
        listing = effect(f"mcp:{self.name}", "tools/list", handler=self._list)
        return listing.map(lambda specs: self.tools_from(specs, prefix=prefix))

    def tools_from(self, specs: Sequence[Mapping[str, Any]], *, prefix: str = "") -> list[Tool]:
        """Tools from a listing (`name`, `description`, `inputSchema` each), as `tools()` makes them.

        >>> fs = stdio("fs", "fs-server")
        >>> [t.name for t in fs.tools_from([{"name": "files.read"}], prefix="fs_")]
        ['fs_files_read']
        >>> fs.tools_from([{"name": "a.b"}, {"name": "a_b"}])
        Traceback (most recent call last):
        ...
        ValueError: MCP server 'fs': tools 'a.b' and 'a_b' would both be called 'a_b'
        """
        made: dict[str, Tool] = {}
        origins: dict[str, str] = {}
        for spec in specs:
            remote_name = spec["name"]
            name = _NOT_A_NAME_CHAR.sub("_", prefix + remote_name)[:64]
            if name in made:
                raise ValueError(
                    f"MCP server {self.name!r}: tools {origins[name]!r} and {remote_name!r} "
                    f"would both be called {name!r}"
                )
            origins[name] = remote_name
            schema = dict(spec.get("inputSchema") or {"type": "object"})
            made[name] = Tool.from_schema(
                name,
                schema,
                self._handler(remote_name, name),
                description=spec.get("description") or "",
                kind=self.kind(remote_name),
                check=_checker(remote_name, schema),
            )
        return list(made.values())

    def _handler(self, tool: str, label: str) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        async def call(arguments: dict[str, Any]) -> Any:
            return await self._call(tool, label, arguments)

        call.__qualname__ = f"mcp:{self.name}/{tool}"
        return call

    def call(
        self, tool: str, arguments: Mapping[str, Any] | None = None
    ) -> Step[object, ToolError | EffectError, Any]:
        """A step calling `tool` on the server with JSON `arguments`, without listing the tools.

        >>> stdio("fs", "fs-server").call("read_file", {"path": "a.txt"})
        effect('mcp:fs/read_file', {'path': 'a.txt'})
        """
        return effect(self.kind(tool), dict(arguments or {}), handler=self._handler(tool, tool))


def stdio(
    name: str,
    command: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
) -> Connection:
    """A `Connection` to a server the run starts as a subprocess and talks to over stdio.

    `env` is added to the SDK's default environment (which is minimal: pass
    what the server needs, like `PYTHONPATH`). `timeout` bounds each call.

    >>> import sys
    >>> stdio("fs", sys.executable, "fs_server.py", "/tmp").target.args
    ['fs_server.py', '/tmp']
    """
    params = StdioServerParameters(
        command=command, args=list(args), env=dict(env) if env is not None else None, cwd=cwd
    )
    return Connection(name, params, timeout=timeout)


def http(name: str, url: str, *, timeout: float | None = None) -> Connection:
    """A `Connection` to a server over streamable HTTP at `url` (like `http://host:8000/mcp`).

    >>> http("web", "http://127.0.0.1:8000/mcp").kind("search")
    'mcp:web/search'
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"http({name!r}, ...) needs an http(s) URL, got {url!r}")
    return Connection(name, url, timeout=timeout)


__all__ = ["Connection", "NotConnected", "http", "result_value", "stdio"]
