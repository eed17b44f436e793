"""A record's line made from its fields (`record_line`, `FileJournal.line`) against the generic encoder.

The generic encoder is the reference: a record's JSON object (`Record.to_json`),
a request stored as a reference to an earlier one (`Conversations`), then
`encode_line`. The fast path must write the same bytes for every record, hostile
values included (unicode, lone surrogates, big ints, NaN and infinities, nested
containers, keys that are not strings), and the lines must load back to the
records that were written.
"""

from __future__ import annotations

import enum
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mce._journal.conversations import Conversations
from mce._journal.lines import encode_line, record_line
from mce._journal.loading import parse_lines, split_lines
from mce.journal import FileJournal, Header, Record


class Colour(enum.IntEnum):
    RED = 1


def fields(r: Record) -> tuple[Any, ...]:
    return (r.pos, r.kind, r.fp, r.ok, r.value, r.req, r.t0, r.t1, r.branch)


_HOSTILE = ["\u2028", "é", "😀", "\x00", '"', "\\", "\x7f", "\ud83d", "\udc00", "$tuple", "</"]
texts = st.one_of(
    st.text(max_size=8),
    st.sampled_from(_HOSTILE),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=2),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=2**64, max_value=10**300),
    st.floats(),  # NaN and the infinities too
    st.sampled_from([0.0, -0.0, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, Colour.RED]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(texts, inner, max_size=4),
        st.dictionaries(st.one_of(st.integers(), st.booleans(), st.none()), inner, max_size=3),
    ),
    max_leaves=12,
)
conversation = st.builds(
    lambda messages, extra: {"messages": messages, **extra},
    st.lists(st.sampled_from(["a", "b", {"role": "user", "content": "é"}]), max_size=4),
    st.dictionaries(st.sampled_from(["model", "n"]), scalars, max_size=2),
)
times = st.one_of(st.none(), st.floats(), st.integers(), st.sampled_from([1.7e9 + 0.1234567]))
# A record's pos, kind and fp are strs; anything else (a Record built by hand) is written
# as the generic encoder writes it.
names = st.one_of(texts, texts, st.integers(), st.none(), st.lists(st.integers(), max_size=2))


def records_of(names: st.SearchStrategy[Any]) -> st.SearchStrategy[Record]:
    return st.builds(
        Record,
        pos=names,
        kind=names,
        fp=names,
        ok=st.booleans(),
        value=values,
        req=st.one_of(st.none(), values, conversation),
        t0=times,
        t1=times,
        branch=st.one_of(st.none(), texts),
    )


records = records_of(names)
_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _surrogate_pair(value: Any) -> bool:
    """Whether a text in `value` holds a surrogate pair written as two code points.

    Such a text is written escaped, as `\\ud800\\udc00`, which JSON reads back as
    the one character the pair encodes: it never comes out of `json.loads`, and
    does not load back as itself (by either encoder).
    """
    if type(value) is str:
        return _PAIR.search(value) is not None
    if type(value) is list:
        return any(_surrogate_pair(v) for v in value)
    if type(value) is dict:
        return any(_surrogate_pair(k) or _surrogate_pair(v) for k, v in value.items())
    return False


# What a journal file can hold and load back: non-empty positions and kinds, each once.
loadable = st.lists(
    records.filter(
        lambda r: (
            type(r.pos) is type(r.kind) is type(r.fp) is str
            and bool(r.pos)
            and bool(r.kind)
            and not any(_surrogate_pair(f) for f in fields(r))
        )
    ),
    max_size=6,
    unique_by=lambda r: r.pos,
)


def generic_line(record: Record) -> bytes:
    return encode_line(record.to_json())


def generic_lines(records: list[Record]) -> bytes:
    """What `FileJournal.lines` wrote before it made lines from fields: the reference."""
    conversations = Conversations()
    out = []
    for record in records:
        data = record.to_json()
        conversations.compact(record, data)
        out.append(encode_line(data))
        conversations.remember(record)
    return b"".join(out)


def same(a: Record, b: Record) -> bool:
    """Equal records, NaN equal to NaN (the JSON texts of both say the same)."""
    return a == b or generic_line(a) == generic_line(b)


@settings(max_examples=400, deadline=None)
@given(records)
def test_record_line_writes_the_generic_encoders_bytes(record: Record) -> None:
    made = record_line(*fields(record))
    expected = generic_line(record)
    if made is None:  # a lone surrogate: the generic encoder escapes the whole line
        assert expected.isascii()
        with pytest.raises(UnicodeEncodeError):
            json.dumps(record.to_json(), ensure_ascii=False).encode()  # the text holds one
    else:
        assert made == expected


@settings(max_examples=150, deadline=None)
@given(loadable)
def test_journal_lines_are_the_generic_lines_and_load_back(
    tmp_path_factory: pytest.TempPathFactory, written: list[Record]
) -> None:
    path = Path(tmp_path_factory.mktemp("lines")) / "run.jsonl"
    journal = FileJournal(path)
    header = Header("r", 1, 0.5)
    by_fields = b"".join(journal.line(*fields(r)) for r in written)
    assert by_fields == generic_lines(written)  # requests referenced as before, same bytes
    journal.write_lines(encode_line({"mce_journal": 2, "run": "r", "seed": 1, "t0": 0.5}))
    journal.write_lines(by_fields)
    journal.close()
    lines, torn_at = split_lines(path.read_bytes())
    assert torn_at is None
    loaded_header, loaded = parse_lines(lines, str(path))
    assert loaded_header == header
    assert len(loaded) == len(written)
    assert all(same(a, b) for a, b in zip(loaded, written, strict=True))


def test_the_same_line_with_the_record_or_without() -> None:
    journal = FileJournal("unused.jsonl")
    record = Record("1/0", "io", "ab", True, {"x": [1, 2.5]}, 7, 1.5, 2.5, "1")
    assert journal.line(*fields(record)) == journal.lines([record]) == generic_line(record)


@pytest.mark.parametrize("where", ["value", "req"])
def test_an_int_too_long_to_write_fails_as_the_generic_encoder_does(where: str) -> None:
    huge = 10**5000  # past Python's limit on int-to-text conversion
    value, req = (huge, None) if where == "value" else (1, huge)
    record = Record("0", "k", "", True, value, req, 1.0, 2.0, "")
    with pytest.raises(ValueError) as generic:
        generic_line(record)
    with pytest.raises(ValueError) as fast:
        record_line(*fields(record))
    assert type(fast.value) is type(generic.value)


@pytest.mark.parametrize("t", [math.nan, math.inf, -math.inf])
def test_non_finite_times_are_spelled_as_json_does(t: float) -> None:
    for t0, t1 in ((t, t), (t, 1.5), (1.5, t)):  # either one, or both
        record = Record("0", "k", "", True, 1, 1, t0, t1, "")
        assert record_line(*fields(record)) == generic_line(record)
        assert b"NaN" in generic_line(record) or b"Infinity" in generic_line(record)


def test_a_value_the_encoder_gives_in_several_pieces_is_written_whole() -> None:
    # The C encoder hands back a long value's text in pieces (past 100,000 of them).
    record = Record("0", "k", "", True, list(range(60_000)), 1, 1.5, 2.5, "")
    line = record_line(*fields(record))
    assert line == generic_line(record)
    assert line is not None and line.startswith(b'{"pos":"0","kind":"k","fp":"","ok":[0,1,2,')
