"""A small filesystem-like MCP server, written with the official MCP SDK.

It serves the files of one folder, read-only: `list_files` and `read_file`.
A path outside the folder is refused with a tool error (an `isError`
result). `05_mcp_agent.py` starts it over stdio.

Run it:  python examples/mcp_fs_server.py FOLDER              (stdio)
         python examples/mcp_fs_server.py FOLDER --port 8000  (streamable HTTP)
"""

from __future__ import annotations

import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

ROOT = Path.cwd()  # the served folder: set from the command line
app = MCPServer("files", log_level="WARNING")


def _inside(path: str) -> Path:
    full = (ROOT / path).resolve()
    if not full.is_relative_to(ROOT):
        raise ToolError(f"{path!r} is outside the served folder")
    if not full.is_file():
        raise ToolError(f"no such file: {path!r}")
    return full


@app.tool()
def list_files() -> list[str]:
    """List the files of the folder (paths relative to it)."""
    return sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file())


@app.tool()
def read_file(path: str) -> str:
    """Read a text file of the folder.

    Args:
        path: the file's path, relative to the folder.
    """
    return _inside(path).read_text()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        ROOT = Path(sys.argv[1]).resolve()
    if "--port" in sys.argv:
        app.run("streamable-http", port=int(sys.argv[sys.argv.index("--port") + 1]))
    else:
        app.run()
