"""An MCP server written with the official SDK, for the end-to-end tests.

    python tests/support/mcp_server.py LOG              serve over stdio
    python tests/support/mcp_server.py LOG --port N     serve streamable HTTP on 127.0.0.1:N

The process appends "start PID" to LOG when it starts and a line per tool
call, so a test can tell whether the server ran or was called at all (a
replay must not call it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

app = MCPServer("calc", log_level="WARNING")
LOG: Path | None = None  # set when run as a script


def _log(line: str) -> None:
    assert LOG is not None, "run this module as a script: it logs to the file it is given"
    with LOG.open("a") as f:
        f.write(line + "\n")


@app.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    _log(f"add {a} {b}")
    return a + b


@app.tool()
def shout(text: str) -> str:
    """Upper-case a text."""
    _log(f"shout {text}")
    return text.upper()


@app.tool()
def divide(a: float, b: float) -> float:
    """Divide a by b; dividing by zero is a tool error (isError)."""
    _log(f"divide {a} {b}")
    if b == 0:
        raise ToolError("division by zero")
    return a / b


@app.tool(name="files.count")
def count_files(pattern: str = "*") -> int:
    """A tool whose name a model API would not accept as is."""
    _log(f"files.count {pattern}")
    return 0


@app.tool()
async def wait(seconds: float) -> str:
    """Answer after some time (longer than a client's timeout, in the tests)."""
    _log(f"wait {seconds}")
    await anyio.sleep(seconds)
    return "waited"


@app.tool()
def crash() -> str:
    """Kill the server process mid-call (a transport failure for the client)."""
    _log("crash")
    os._exit(3)


if __name__ == "__main__":
    LOG = Path(sys.argv[1])
    _log(f"start {os.getpid()}")
    if "--port" in sys.argv:
        app.run("streamable-http", port=int(sys.argv[sys.argv.index("--port") + 1]))
    else:
        app.run()
