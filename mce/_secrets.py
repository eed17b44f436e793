"""Secrets: request values that never reach a journal, a trace or an error message.

`Secret(value)` marks a value; `redact` is the request as journals and
traces see it, `reveal` as handlers see it; `scrub` and `scrub_error`
remove secrets' text from error messages. All are exported by `mce.effects`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, final

import attrs


@final
class Secret:
    """A request value that must never reach a journal or a trace.

    Handlers receive the real value; the journal and the request's
    fingerprint see `"<secret>"` instead.

    >>> Secret("sk-123")
    Secret('***')
    >>> redact({"key": Secret("sk-123"), "q": 1})
    {'key': '<secret>', 'q': 1}
    >>> reveal({"key": Secret("sk-123")})
    {'key': 'sk-123'}
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.value == self.value

    def __hash__(self) -> int:
        return hash(("mce.Secret", self.value))


def _walk(value: Any, leaf: Callable[[Secret], Any]) -> Any:
    t = type(value)
    if t is Secret:
        return leaf(value)
    if t is dict:
        return {k: _walk(v, leaf) for k, v in value.items()}
    if t is list:
        return [_walk(v, leaf) for v in value]
    if t is tuple:
        return tuple(_walk(v, leaf) for v in value)
    return value


def _has_secret(value: Any) -> bool:
    t = type(value)
    if t is Secret:
        return True
    if t is dict:
        return any(_has_secret(v) for v in value.values())
    if t is list or t is tuple:
        return any(_has_secret(v) for v in value)
    return False


def redact(request: Any) -> Any:
    """The request as journals and traces see it: every `Secret` replaced by `"<secret>"`.

    >>> redact([Secret(1), 2])
    ['<secret>', 2]
    """
    return _walk(request, lambda _s: "<secret>") if _has_secret(request) else request


def reveal(request: Any) -> Any:
    """The request as handlers see it: every `Secret` replaced by its value.

    >>> reveal((Secret("k"),))
    ('k',)
    """
    return _walk(request, lambda s: s.value) if _has_secret(request) else request


def secret_values(request: Any) -> list[str]:
    """The text of every `Secret` in a request (what `scrub` must remove from error text).

    >>> secret_values({"key": Secret("sk-123"), "n": [Secret(42)], "q": "x"})
    ['sk-123', '42']
    """
    found: list[str] = []
    if _has_secret(request):
        _walk(request, lambda s: found.append(str(s.value)))
    return found


SCRUBBED: Final = "<secret>"
_MIN_SECRET = 4  # shorter values would blank out ordinary words


def scrub(text: str, secrets: Iterable[Any]) -> str:
    """`text` with every occurrence of each secret replaced by `"<secret>"`.

    For error messages that may echo a credential (a 401 body repeating the
    API key, an exception quoting a header). Secrets are the text of the
    values given (a `Secret` is unwrapped); values shorter than 4 characters
    are left alone, as they would blank out ordinary words.

    >>> scrub("bad key sk-123 (Bearer sk-123)", ["sk-123"])
    'bad key <secret> (Bearer <secret>)'
    >>> scrub("token abcd1234", [Secret("abcd1234"), None, ""])
    'token <secret>'
    """
    values = {str(v.value if type(v) is Secret else v) for v in secrets if v is not None}
    for value in sorted((v for v in values if len(v) >= _MIN_SECRET), key=len, reverse=True):
        text = text.replace(value, SCRUBBED)
    return text


def scrub_error(error: Any, secrets: Iterable[Any]) -> Any:
    """An error value with `scrub` applied to its text: strings, and the str fields of
    attrs classes (such as `EffectError`, `LLMError`, `ToolError`), dicts, lists and tuples.

    >>> from mce.effects import EffectError
    >>> scrub_error(EffectError("api", "0", "denied for sk-123", "PermissionError"), ["sk-123"])
    EffectError(kind='api', position='0', message='denied for <secret>', exception_type='PermissionError')
    """
    values = [v for v in secrets if v is not None]
    if not values:
        return error
    return _scrub_value(error, values, 0)


def _scrub_value(value: Any, secrets: list[Any], depth: int) -> Any:
    if isinstance(value, str):
        return scrub(value, secrets)
    if depth > 20:
        return value
    if attrs.has(type(value)):
        changes = {}
        for a in attrs.fields(type(value)):
            if not a.init:
                continue
            old = getattr(value, a.name)
            new = _scrub_value(old, secrets, depth + 1)
            if new is not old:
                changes[a.name.lstrip("_") if a.alias is None else a.alias] = new
        return attrs.evolve(value, **changes) if changes else value
    if type(value) is dict:
        return {k: _scrub_value(v, secrets, depth + 1) for k, v in value.items()}
    if type(value) is list:
        return [_scrub_value(v, secrets, depth + 1) for v in value]
    if type(value) is tuple:
        return tuple(_scrub_value(v, secrets, depth + 1) for v in value)
    return value
