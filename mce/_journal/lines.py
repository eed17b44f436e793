"""One journal line: a record's canonical JSON text with a CRC-32 of that text spliced in.

Version-2 lines end with `,"sum":"<8 hex digits>"}` (docs/journal-format.md,
"The checksum"): the CRC-32 of the line's JSON text without that member.

>>> line = encode_line({"pos": "0", "kind": "k", "fp": "", "ok": 1})
>>> line
b'{"pos":"0","kind":"k","fp":"","ok":1,"sum":"399402a1"}\\n'
>>> summed(line[:-1]), sum_holds(line[:-1]), sum_holds(line[:-1].replace(b"1", b"2", 1))
(True, True, False)
"""

from __future__ import annotations

import json
import zlib
from typing import Any

__all__ = ["ASCII_ENCODER", "SUM_FIELD", "SUM_TAIL", "encode_line", "sum_holds", "summed"]

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
ASCII_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)
"""Compact JSON with every non-ASCII character escaped."""
# `_ENCODER.encode` makes a C encoder on every call, a third of the cost of a
# record's line; this one is made once (no circular check: values are JSON).
_encode_c = getattr(json.encoder, "c_make_encoder", None)
_ENCODE = (
    _encode_c(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    if _encode_c is not None
    else lambda data, _level: (_ENCODER.encode(data),)
)
_SUM = b',"sum":"'  # every version-2 line ends with ,"sum":"<8 hex digits>"}
SUM_TAIL = len(_SUM) + 8 + 2
SUM_FIELD = _SUM + b'%08x"}'  # the field, given the CRC-32 of the line without it


def summed(raw: bytes) -> bool:
    """Whether the line (without its newline) ends with a checksum field (a version-2 line).

    >>> summed(b'{"a":1,"sum":"00000000"}'), summed(b'{"a":1}')
    (True, False)
    """
    return raw[-SUM_TAIL:-10] == _SUM


def sum_holds(raw: bytes) -> bool:
    """Whether the line ends with a checksum field that matches the rest of the line.

    >>> sum_holds(b'{"a":1,"sum":"00000000"}')
    False
    """
    # The line's last 18 bytes must be exactly the field `encode_line` writes for
    # the CRC-32 of the rest (with its `}` put back): one comparison checks the
    # field's form, its 8 lowercase hex digits and their value.
    return raw[-SUM_TAIL:] == SUM_FIELD % zlib.crc32(raw[:-SUM_TAIL] + b"}")


def encode_line(data: dict[str, Any]) -> bytes:
    """A record's version-2 line: its JSON text with a CRC-32 of that text spliced in.

    A lone surrogate (what `json.loads` gives for a truncated emoji escape)
    is written escaped, so the file stays UTF-8:

    >>> encode_line({"ok": "\\ud83d"})
    b'{"ok":"\\\\ud83d","sum":"..."}\\n'
    """
    try:
        text = "".join(_ENCODE(data, 0)).encode()
    except UnicodeEncodeError:  # a lone surrogate: escaped, so the file stays UTF-8
        text = ASCII_ENCODER.encode(data).encode()
    return text[:-1] + SUM_FIELD % zlib.crc32(text) + b"\n"
