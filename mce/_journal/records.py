"""The typed form of a journal: its `Header` and one `Record` per effect or decision.

`Record.to_json` and `header_json` give the JSON objects of the file format
(docs/journal-format.md); `lines` turns those into checksummed lines.

>>> Record("0", "k", "f", True, 1).to_json()
{'pos': '0', 'kind': 'k', 'fp': 'f', 'ok': 1}
>>> header_json(Header("r", 7, 0.0))
{'mce_journal': 2, 'run': 'r', 'seed': 7, 't0': 0.0}
"""

from __future__ import annotations

from typing import Any, final

from attrs import field, frozen
from attrs import fields as attrs_fields

__all__ = [
    "FORMATS",
    "HEADER_KEY",
    "VERSION",
    "Header",
    "Record",
    "build_record",
    "check_seed",
    "header_json",
]

HEADER_KEY = "mce_journal"
"""The header line's key; its value is the format version."""
VERSION = 2
"""The format version this mce writes."""
FORMATS = (1, 2)
"""The format versions this mce reads (1: no checksums)."""


@final
@frozen
class Header:
    """The first record of a journal: the run it belongs to and its seed.

    >>> Header(run="r1", seed=7, t0=0.0).version
    2
    """

    run: str
    seed: int
    t0: float
    version: int = VERSION


@final
@frozen
class Record:
    """One completed effect (or scheduling decision) at a position.

    `value` is the result when `ok` is true and the error otherwise, both in
    the JSON form `mce.codec.encode` gives; `req` is the request in the same
    form (secrets redacted), `fp` its fingerprint. `line` is where the
    record was read from (0 when it was not read from a file); it takes no
    part in equality.

    >>> r = Record(pos="1/0", kind="search", fp="ab", ok=True, value=[1, 2])
    >>> r.branch is None and r == Record("1/0", "search", "ab", True, [1, 2], line=9)
    True
    """

    pos: str
    kind: str
    fp: str
    ok: bool
    value: Any
    req: Any = None
    t0: float | None = None
    t1: float | None = None
    branch: str | None = None
    line: int = field(default=0, eq=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The record as its version-2 JSON object (without checksum or request reference).

        >>> Record("0", "k", "f", False, "boom").to_json()
        {'pos': '0', 'kind': 'k', 'fp': 'f', 'err': 'boom'}
        """
        data: dict[str, Any] = {"pos": self.pos, "kind": self.kind, "fp": self.fp}
        data["ok" if self.ok else "err"] = self.value
        if self.req is not None:
            data["req"] = self.req
        for key in ("t0", "t1", "branch"):
            v = getattr(self, key)
            if v is not None:
                data[key] = v
        return data


def header_json(header: Header) -> dict[str, Any]:
    """The header as its JSON object (without checksum).

    >>> header_json(Header("r", 1, 2.5, version=1))
    {'mce_journal': 1, 'run': 'r', 'seed': 1, 't0': 2.5}
    """
    return {HEADER_KEY: header.version, "run": header.run, "seed": header.seed, "t0": header.t0}


def check_seed(seed: object) -> int | None:
    """`seed` if it is a valid `run(seed=...)` (an int, not a bool, or None); else `TypeError`.

    >>> check_seed(7), check_seed(None)
    (7, None)
    >>> check_seed(1.5)
    Traceback (most recent call last):
    ...
    TypeError: run(seed=...) must be an int, got 1.5 (float)
    """
    if seed is None:
        return None
    if isinstance(seed, int) and not isinstance(seed, bool):
        return int(seed)
    raise TypeError(f"run(seed=...) must be an int, got {seed!r} ({type(seed).__name__})")


_SLOTS = {a.name: Record.__dict__[a.name].__set__ for a in attrs_fields(Record)}
_SET_POS, _SET_KIND, _SET_FP, _SET_OK = _SLOTS["pos"], _SLOTS["kind"], _SLOTS["fp"], _SLOTS["ok"]
_SET_VALUE, _SET_REQ, _SET_T0, _SET_T1 = _SLOTS["value"], _SLOTS["req"], _SLOTS["t0"], _SLOTS["t1"]
_SET_BRANCH, _SET_LINE = _SLOTS["branch"], _SLOTS["line"]
_new = object.__new__


def build_record(
    pos: str,
    kind: str,
    fp: str,
    ok: bool,
    value: Any,
    req: Any,
    t0: Any,
    t1: Any,
    branch: Any,
    line: int,
) -> Record:
    """`Record(...)` for values already checked: loading a journal builds one per line, and
    attrs' frozen `__init__` (a by-name `object.__setattr__` per field) would be a large share
    of replaying a journal; the slots are set directly instead. Same object, same invariants.

    >>> build_record("0", "k", "", True, 1, None, None, None, None, 3) == Record("0", "k", "", True, 1)
    True
    """
    r: Record = _new(Record)
    _SET_POS(r, pos)
    _SET_KIND(r, kind)
    _SET_FP(r, fp)
    _SET_OK(r, ok)
    _SET_VALUE(r, value)
    _SET_REQ(r, req)
    _SET_T0(r, t0)
    _SET_T1(r, t1)
    _SET_BRANCH(r, branch)
    _SET_LINE(r, line)
    return r
