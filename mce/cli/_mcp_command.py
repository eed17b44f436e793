"""`mce mcp serve`: tools and workflows as an MCP server (the `mcp` extra)."""

from __future__ import annotations

import argparse

from mce.cli._errors import UsageError
from mce.cli._targets import _import


def cmd_mcp(args: argparse.Namespace) -> int:
    try:
        from mce.mcp._server import serve_command
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    try:
        start = serve_command(args.target, _import, args.journal_dir, args.http, args.name)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    start()
    return 0
