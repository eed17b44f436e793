"""MCP both ways: an MCP server's tools as mce tools, and mce tools and workflows as an MCP server.

Needs the optional extra: `pip install "mce[mcp]"` (the official `mcp` SDK).

Client - `stdio(...)`, `http(...)` or `Connection(name, target)` name a
server; `async with connection:` around a run opens it when the run first
needs it and closes it after. `connection.tools()` is a journaled step
whose value is the server's tools as mce `Tool`s (effect kind
`"mcp:<server>/<tool>"`), for `react`, plans and `par`. An `isError`
result is a `ToolError`; a transport failure an `EffectError`. A recorded
run replays with no server at all.

Server - `server(tools_and_workflows, journal_dir=...)` builds an MCP
server (the SDK's `Server`) where each call is one journaled mce run;
`serve(...)` and `mce mcp serve MODULE:ATTR` run it over stdio or HTTP.

>>> import anyio
>>> from mce import run
>>> from mce.tools import tool
>>> @tool
... def add(a: int, b: int) -> int:
...     "Add two integers."
...     return a + b
>>> calc = Connection("calc", server([add]))
>>> async def main():
...     async with calc:
...         return await run(calc.call("add", {"a": 1, "b": 2}), None)
>>> anyio.run(main).value
'3'
"""

from __future__ import annotations

try:
    import mcp as _sdk  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError(
        'mce.mcp needs the official MCP SDK: pip install "mce[mcp]"', name=exc.name
    ) from exc

from mce.mcp._client import Connection as Connection
from mce.mcp._client import NotConnected as NotConnected
from mce.mcp._client import Target as Target
from mce.mcp._client import http as http
from mce.mcp._client import result_value as result_value
from mce.mcp._client import stdio as stdio
from mce.mcp._server import JOURNAL_META as JOURNAL_META
from mce.mcp._server import Servable as Servable
from mce.mcp._server import Workflow as Workflow
from mce.mcp._server import serve as serve
from mce.mcp._server import server as server
from mce.mcp._server import workflow as workflow

__all__ = [
    "JOURNAL_META",
    "Connection",
    "NotConnected",
    "Servable",
    "Target",
    "Workflow",
    "http",
    "result_value",
    "serve",
    "server",
    "stdio",
    "workflow",
]
