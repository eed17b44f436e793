"""A request's identity in the journal: its canonical JSON text and its fingerprint.

Exported by `mce.effects`. Secrets never change either (they are redacted first).
"""

from __future__ import annotations

import hashlib
import json
import json.encoder as _json_encoder
from typing import Any

from mce._secrets import Secret, redact
from mce.codec import encode


def canonical(request: Any) -> str:
    """The canonical JSON text of a (redacted) request: sorted keys, no spaces.

    >>> canonical({"b": 1, "a": (1, 2)})
    '{"a":{"$tuple":[1,2]},"b":1}'
    """
    return json.dumps(
        encode(redact(request), "request"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _fingerprint_default(value: Any) -> Any:
    if type(value) is Secret:
        return "<secret>"
    return encode(value, "request")


# What `json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
# default=_fingerprint_default)` runs, made once: `json.dumps` builds a new encoder (and
# its C encoder) per call, a third of fingerprinting a small request - and every effect
# is fingerprinted when it is built, on replay too. It has no cycle check (markers
# None): a request that contains itself ends in RecursionError, and `fingerprint`
# hands it to that very `json.dumps` call, which names the cycle.
_C_ENCODER: Any = getattr(_json_encoder, "c_make_encoder", None)  # None: no C accelerator
_FINGERPRINT_TEXT: Any = (
    None
    if _C_ENCODER is None
    else _C_ENCODER(  # markers, default, encoder, indent, separators, sort_keys, skipkeys, nan
        None,
        _fingerprint_default,
        _json_encoder.encode_basestring,
        None,
        ":",
        ",",
        True,
        False,
        True,
    )
)


def fingerprint(request: Any) -> str:
    """A short hash identifying a request; secrets do not change it.

    It hashes the request's JSON text with sorted keys (so tuples and lists
    holding the same items, or the keys 1 and "1", fingerprint alike).

    >>> fingerprint({"q": "x", "key": Secret("a")}) == fingerprint({"q": "x", "key": Secret("b")})
    True
    >>> fingerprint({"a": 1, "b": [2]}) == fingerprint({"b": [2], "a": 1})
    True
    """
    try:
        try:
            if _FINGERPRINT_TEXT is None:
                raise RecursionError  # no C encoder: json.dumps it is
            text = "".join(_FINGERPRINT_TEXT(request, 0))
        except RecursionError:  # a request that contains itself: json.dumps says so
            text = json.dumps(
                request,
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
                default=_fingerprint_default,
            )
    except TypeError:  # mixed-type keys, or a value that cannot be journaled: say which
        text = canonical(request)
    # surrogatepass: a lone surrogate (a truncated emoji escape) still fingerprints
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
