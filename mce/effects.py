"""Effects: requests to handlers chosen at run time, journaled by position.

`effect(kind, request)` is a step whose value comes from the handler that
`run(..., handlers={kind: handler})` registers for `kind` (or from the
handler the effect carries itself, as tools do). Building the step calls
nothing. A handler is an async or sync callable taking the request; an
exception it raises becomes an `EffectError` on the error channel, and a
handler that wants a typed error of its own raises `EffectFailed(error)`.

Time and randomness are effects too (`now`, `random`, `uuid`, `sleep`), so
they replay exactly.

>>> from mce import run_sync
>>> double = effect("double", {"x": 21})
>>> run_sync(double, None, handlers={"double": lambda req: req["x"] * 2})
Ok(value=42, state=None)
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, Final, Never, TypeVar, final, get_origin, overload

from attrs import frozen

from mce._fingerprint import canonical as canonical
from mce._fingerprint import fingerprint as fingerprint
from mce._retry_reporting import report_retry as report_retry
from mce._retry_reporting import retry_reporting as retry_reporting
from mce._retry_reporting import stop_retry_reporting as stop_retry_reporting
from mce._runtime.nodes import EFFECT as EFFECT
from mce._secrets import SCRUBBED as SCRUBBED
from mce._secrets import Secret as Secret
from mce._secrets import redact as redact
from mce._secrets import reveal as reveal
from mce._secrets import scrub as scrub
from mce._secrets import scrub_error as scrub_error
from mce._secrets import secret_values as secret_values
from mce.step import Step

_E = TypeVar("_E")
_A = TypeVar("_A")

Handler = Callable[[Any], Any] | Callable[[Any], Awaitable[Any]]
"""A handler: takes the request, returns (or awaits) the effect's value."""


NOW: Final = "mce.now"
RANDOM: Final = "mce.random"
UUID: Final = "mce.uuid"
SLEEP: Final = "mce.sleep"


@final
@frozen
class EffectError:
    """A handler raised: the effect's kind and position, the message and the exception type.

    >>> str(EffectError("search", "0/2", "timed out", "TimeoutError"))
    "effect 'search' at 0/2 failed: TimeoutError: timed out"
    """

    kind: str
    position: str
    message: str
    exception_type: str

    def __str__(self) -> str:
        return (
            f"effect {self.kind!r} at {self.position} failed: {self.exception_type}: {self.message}"
        )


class EffectFailed(Exception):
    """Raised by a handler to put its own typed `error` on the error channel.

    >>> from mce import run_sync
    >>> def refuse(req):
    ...     raise EffectFailed({"code": 429})
    >>> run_sync(effect("api", {}), None, handlers={"api": refuse})
    Err(error={'code': 429}, state=None)
    """

    def __init__(self, error: Any) -> None:
        super().__init__(error)
        self.error = error


class MissingHandler(LookupError):
    """No handler is registered for an effect's kind: a configuration bug.

    >>> str(MissingHandler("search", "0"))
    "no handler for effect 'search' at position 0; pass run(..., handlers={'search': ...})"
    """

    def __init__(self, kind: str, position: str) -> None:
        super().__init__(
            f"no handler for effect {kind!r} at position {position}; "
            f"pass run(..., handlers={{{kind!r}: ...}})"
        )
        self.kind = kind
        self.position = position


class UnusedHandler(UserWarning):
    """A handler given to `run` for an effect kind the run never asked for (a misspelling?).

    A warning, not an error, because a run may legitimately skip an effect
    (a tool the model chose not to call); pytest's `-W error` (or
    `filterwarnings = error`) makes it fail a test.

    >>> import warnings
    >>> from mce import run_sync
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = run_sync(effect("kind.a", 1), None, handlers={"kind.a": str, "kind.b": str})
    >>> caught[0].category.__name__, str(caught[0].message)
    ('UnusedHandler', "handlers={'kind.b': ...} was never used: no effect of that kind exists (did you mean 'kind.a'?)")
    """


@final
class HandlerTable(dict[str, Any]):
    """The `handlers=` of one run, noting which kinds the run asks for.

    When the run asks for a kind that has no handler here but closely
    resembles one that has never been used (`tool.serach` for
    `tool.search`), it warns `UnusedHandler` at once - before the effect's
    own (real) handler runs. `report_unused()`, at the end of a successful
    live run, warns about every handler never asked for whose kind does not
    exist at all, naming the nearest kind that does.

    >>> import warnings
    >>> table = HandlerTable({"tool.serach": print})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     table.get("tool.search") is None
    True
    >>> print(caught[0].message)
    handlers={'tool.serach': ...} is never used by this run, which asks for 'tool.search' - a misspelling? (the effect runs with its own handler)
    """

    def __init__(self, handlers: Any = ()) -> None:
        super().__init__(handlers)
        self.asked: set[str] = set()
        self._reported: set[str] = set()

    def get(self, kind: str, default: Any = None) -> Any:
        if kind not in self.asked:
            self.asked.add(kind)
            if kind not in self:
                self._near_miss(kind)
        return super().get(kind, default)

    def _near_miss(self, kind: str) -> None:
        unused = [k for k in self if k not in self.asked and k not in self._reported]
        for near in difflib.get_close_matches(kind, unused, n=1, cutoff=0.8):
            self._reported.add(near)
            warnings.warn(
                f"handlers={{{near!r}: ...}} is never used by this run, which asks for "
                f"{kind!r} - a misspelling? (the effect runs with its own handler)",
                UnusedHandler,
                stacklevel=2,
            )

    def report_unused(self) -> None:
        """Warn `UnusedHandler` for each handler the run never asked for whose kind no
        effect in this process has (no tool, no `effect(...)` of that kind: see
        `declare_kind`), naming the nearest kind that exists.

        A handler for a real kind this run happened not to use (a table shared
        by several workflows, a tool the model did not call) is not reported.

        >>> import warnings
        >>> declare_kind("tool.forecast_weather")
        >>> table = HandlerTable({"tool.forecast_weathr": print, "llm.chat": print})
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     table.report_unused()
        >>> for w in caught: print(w.message)
        handlers={'tool.forecast_weathr': ...} was never used: no effect of that kind exists (did you mean 'tool.forecast_weather'?)
        """
        for kind in self:
            if kind in self.asked or kind in self._reported or kind in _KNOWN_KINDS:
                continue
            self._reported.add(kind)
            near = difflib.get_close_matches(kind, sorted(_KNOWN_KINDS), n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            warnings.warn(
                f"handlers={{{kind!r}: ...}} was never used: no effect of that kind exists{hint}",
                UnusedHandler,
                stacklevel=2,
            )


_KNOWN_KINDS: set[str] = {NOW, RANDOM, UUID, SLEEP, "llm.chat"}  # built in, and mce.llm's


def declare_kind(kind: str) -> None:
    """Record that effects of `kind` exist (tools and `effect(...)` do it), so that a
    handler for it is not reported as unknown when a run does not use it.

    >>> declare_kind("search")
    >>> "search" in known_kinds()
    True
    """
    _KNOWN_KINDS.add(kind)


def known_kinds() -> frozenset[str]:
    """Every effect kind declared so far in this process (see `declare_kind`).

    >>> "mce.now" in known_kinds()
    True
    """
    return frozenset(_KNOWN_KINDS)


@final
class _Effect(Step[Any, Any, Any]):
    __slots__ = ("error", "fp", "handler", "into", "kind", "remote", "request")
    _tag = EFFECT

    def __init__(
        self,
        kind: str,
        request: Any,
        handler: Handler | None,
        remote: bool = False,
        into: type[Any] | None = None,
        error: type[Any] | None = None,
    ) -> None:
        self.kind = kind
        self.request = request
        self.handler = handler
        self.remote = remote
        self.into = into  # the declared value type: what a replay decodes the value as
        self.error = error  # the declared error type (besides EffectError), likewise
        # Computed once, when the step is built: it also proves the request
        # can be journaled, so a bad request fails here rather than mid-run.
        self.fp = fingerprint(request)

    def __repr__(self) -> str:
        return f"effect({self.kind!r}, {redact(self.request)!r})"


@overload
def effect(
    kind: str,
    request: Any = None,
    *,
    into: type[_A],
    error: type[_E],
    handler: Handler | None = None,
    remote: bool = False,
) -> Step[object, EffectError | _E, _A]: ...
@overload
def effect(
    kind: str,
    request: Any = None,
    *,
    into: type[_A],
    error: None = None,
    handler: Handler | None = None,
    remote: bool = False,
) -> Step[object, EffectError, _A]: ...
@overload
def effect(
    kind: str,
    request: Any = None,
    *,
    into: None = None,
    error: type[_E],
    handler: Handler | None = None,
    remote: bool = False,
) -> Step[object, EffectError | _E, Any]: ...
@overload
def effect(
    kind: str,
    request: Any = None,
    *,
    into: None = None,
    error: None = None,
    handler: Handler | None = None,
    remote: bool = False,
) -> Step[object, Any, Any]: ...
def effect(
    kind: str,
    request: Any = None,
    *,
    into: type[Any] | None = None,
    error: type[Any] | None = None,
    handler: Handler | None = None,
    remote: bool = False,
) -> Step[Any, Any, Any]:
    """A step whose value comes from the handler for `kind`, called with `request`.

    For type checkers, `into` declares the type of the handler's value and
    `error` the type of the errors it raises as `EffectFailed(error)`:
    `effect("k", req, into=int)` is a `Step[object, EffectError, int]`, and with
    `error=E` the error type is `EffectError | E`. Neither is checked at run
    time; `into` is kept on the step (`.into`) for decoders. An effect with
    neither is untyped: `Step[object, Any, Any]`.

    The request must be JSON-compatible (tuples, sets, bytes, attrs classes
    and dataclasses are fine too); mark secret parts with `Secret`. The
    effect is journaled at its position in the program. `handler` is used
    when `run(..., handlers=...)` has none for `kind`. `remote=True` lets a
    cluster executor (`mce.executors.ray.RayExecutor`) run the handler on a
    worker; the result is journaled on the driver either way.

    >>> from mce import run_sync
    >>> echo = effect("echo", "hi", handler=lambda req: req.upper())
    >>> run_sync(echo, None)
    Ok(value='HI', state=None)
    >>> run_sync(echo, None, handlers={"echo": lambda req: req * 2})
    Ok(value='hihi', state=None)
    >>> count = effect("count", "abc", into=int, handler=len)  # a Step[object, EffectError, int]
    >>> run_sync(count.map(lambda n: n + 1), None).value
    4
    """
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"effect() needs a non-empty string kind, got {kind!r}")
    if handler is not None and not callable(handler):
        raise TypeError(f"effect({kind!r}, handler=...) must be callable, got {handler!r}")
    if into is not None or error is not None:
        for name, declared in (("into", into), ("error", error)):
            if declared is not None and not (
                isinstance(declared, type) or get_origin(declared) is not None
            ):
                raise TypeError(f"effect({kind!r}, {name}=...) needs a type, got {declared!r}")
    _KNOWN_KINDS.add(kind)
    return _Effect(kind, request, handler, remote, into, error)


def now() -> Step[object, Never, float]:
    """The wall-clock time (seconds since the epoch), journaled so it replays.

    >>> from mce import run_sync
    >>> run_sync(now(), None).value > 1.7e9
    True
    """
    return _Effect(NOW, None, None)


def random() -> Step[object, Never, float]:
    """A float in [0, 1), seeded per run and per position: replays exactly.

    With `run(..., seed=s)` the values are the same on every live run too,
    whatever order parallel branches complete in.

    >>> from mce import par, run_sync
    >>> a = run_sync(par(random(), random()), None, seed=7).value
    >>> a == run_sync(par(random(), random()), None, seed=7).value and a[0] != a[1]
    True
    """
    return _Effect(RANDOM, None, None)


def uuid() -> Step[object, Never, str]:
    """A random UUID (version 4, as text), seeded like `random`.

    >>> from mce import run_sync
    >>> len(run_sync(uuid(), None, seed=1).value)
    36
    """
    return _Effect(UUID, None, None)


def sleep(seconds: float) -> Step[object, Never, None]:
    """Sleep, as an effect: a replay does not wait.

    >>> from mce import run_sync
    >>> run_sync(sleep(0.001), None)
    Ok(value=None, state=None)
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError(f"sleep() needs a number of seconds >= 0, got {seconds!r}")
    return _Effect(SLEEP, float(seconds), None)


def token_usage(value: Any) -> tuple[int, int] | None:
    """(prompt, completion) tokens an effect's value reports through `.usage`, if any.

    >>> from mce.llm import AssistantMessage, Usage
    >>> token_usage(AssistantMessage("hi", usage=Usage(3, 1))), token_usage(42)
    ((3, 1), None)
    """
    usage = getattr(value, "usage", None)
    if usage is None:
        return None
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    return prompt, completion


__all__ = [
    "SCRUBBED",
    "EffectError",
    "EffectFailed",
    "Handler",
    "HandlerTable",
    "MissingHandler",
    "NOW",
    "RANDOM",
    "SLEEP",
    "Secret",
    "UUID",
    "UnusedHandler",
    "canonical",
    "declare_kind",
    "effect",
    "fingerprint",
    "known_kinds",
    "now",
    "random",
    "redact",
    "report_retry",
    "retry_reporting",
    "reveal",
    "scrub",
    "scrub_error",
    "secret_values",
    "sleep",
    "stop_retry_reporting",
    "token_usage",
    "uuid",
]
