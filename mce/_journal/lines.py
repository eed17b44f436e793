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

__all__ = [
    "ASCII_ENCODER",
    "SUM_FIELD",
    "SUM_TAIL",
    "encode_line",
    "record_line",
    "sum_holds",
    "summed",
]

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


_string = json.encoder.encode_basestring  # the C function `_ENCODE` uses, when there is one
_int_repr = int.__repr__  # what `_ENCODE` writes for an int


def _json(value: Any) -> str:
    """One value's JSON text, exactly as `_ENCODE` writes it inside a record."""
    return "".join(_ENCODE(value, 0))


_LINE = b'%s,"sum":"%08x"}\n'


def record_line(
    pos: Any, kind: Any, fp: Any, ok: bool, value: Any, req: Any, t0: Any, t1: Any, branch: Any
) -> bytes | None:
    """The line `encode_line` makes of a record's JSON object, made from its fields directly.

    The same bytes, without the object: the fixed keys are spliced around each
    field's JSON text (`req`, `t0`, `t1` and `branch` left out when None, as
    `Record.to_json` does), and the checksum is taken the same way. None when
    the text holds a lone surrogate: `encode_line` escapes the whole line then.

    >>> record_line("0", "k", "", True, 1, None, None, None, None) == encode_line(
    ...     {"pos": "0", "kind": "k", "fp": "", "ok": 1})
    True
    """
    if (
        type(t0) is float
        and type(t1) is float
        and type(branch) is str
        and t0 - t0 == 0.0  # finite: `!r` writes them as `_ENCODE` does
        and t1 - t1 == 0.0
        and req is not None
    ):  # an effect's record: every field there, most often plain
        t = type(value)
        v = _string(value) if t is str else _int_repr(value) if t is int else _json(value)
        t = type(req)
        r = _string(req) if t is str else _int_repr(req) if t is int else _json(req)
        text = (
            f'{{"pos":{_string(pos) if type(pos) is str else _json(pos)}'
            f',"kind":{_string(kind) if type(kind) is str else _json(kind)}'
            f',"fp":{_string(fp) if type(fp) is str else _json(fp)}'
            f',"{"ok" if ok else "err"}":{v},"req":{r}'
            f',"t0":{t0!r},"t1":{t1!r},"branch":{_string(branch)}'
        )
    else:
        text = (
            f'{{"pos":{_json(pos)},"kind":{_json(kind)},"fp":{_json(fp)}'
            f',"{"ok" if ok else "err"}":{_json(value)}'
        )
        if req is not None:
            text += ',"req":' + _json(req)
        if t0 is not None:
            text += ',"t0":' + _json(t0)
        if t1 is not None:
            text += ',"t1":' + _json(t1)
        if branch is not None:
            text += ',"branch":' + _json(branch)
    try:
        data = text.encode()
    except UnicodeEncodeError:
        return None
    return _LINE % (data, zlib.crc32(data + b"}"))
