"""Journal files named on the command line: is it a journal, can it be written, never overwrite one."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mce.cli._errors import UsageError
from mce.journal import HEADER_KEY

_HEADER_START = b'{"' + HEADER_KEY.encode() + b'"'


def _looks_like_journal(path: Path) -> str | None:
    """None if `path` starts like an mce journal, else why it is not one."""
    try:
        with open(path, "rb") as f:
            first = f.readline(1 << 20)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not first.strip():
        return "it is empty" if not first else "its first line is blank"
    if first.startswith(_HEADER_START):
        return None  # a header (perhaps torn by a crash mid-write: the journal module decides)
    try:
        record = json.loads(first)
    except ValueError:
        return "its first line is not JSON"
    if isinstance(record, dict) and (
        HEADER_KEY in record or {"pos", "kind", "fp"} <= record.keys()
    ):
        return None
    return "its first line is neither a journal header nor an entry"


def _existing_journal(text: str) -> Path:
    """The journal file named on the command line; bad input if missing or not a journal."""
    path = Path(text)
    if not path.is_file():
        raise UsageError(f"no such journal: {text}")
    why = _looks_like_journal(path)
    if why is not None:
        raise UsageError(f"{text} is not an mce journal ({why})")
    return path


def _check_writable(path: Path, what: str) -> None:
    """Bad input unless `path` can be created or appended to (its directories included)."""
    if path.exists():
        if not path.is_file() or not os.access(path, os.W_OK):
            raise UsageError(f"cannot write {what} {path}: not a writable file")
        return
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {what} {path}: {ancestor} is not a writable directory")


def _write_output(output: str, text: str, *, journal: Path) -> None:
    """Write a rendered page, never over a journal, with a clear error when it cannot."""
    target = Path(output)
    if target.exists() and (
        target.resolve() == journal.resolve()
        or (target.is_file() and _looks_like_journal(target) is None)
    ):
        raise UsageError(f"refusing to overwrite the journal {output}; choose another -o path")
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
