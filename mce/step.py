"""The program algebra: `Step[S, E, A]`, a workflow as a value.

A `Step` denotes `S -> Async[Either[E, (A, S)]]`, the stack
`StateT S (EitherT E Async)`: it reads and writes a state `S`, may fail
with an error `E`, and may await. Building a `Step` does nothing; `mce.run`
interprets it. Sequencing is `.then` (monadic bind); independent steps are
combined applicatively with `par`, `gather`, `traverse` and `collect`, which
run concurrently.

>>> from mce import run_sync
>>> prog = get().then(lambda n: put(n + 1)).then(lambda _: gets(lambda n: n * 10))
>>> run_sync(prog, 1)
Ok(value=20, state=2)
"""

from __future__ import annotations

# Why this module is longer than most: `Step`, its node classes and their
# constructors are one closed algebra. The nodes subclass `Step` and `Step`'s
# methods build nodes on the bind hot path, so splitting them would mean an
# import cycle or a lookup per bind. The applicatives live in mce/_applicatives.py.
import types
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Never, TypeVar, TypeVarTuple, final, overload

# Node tags are defined once, in the closed node module.
from mce._runtime.nodes import (
    COLLECT,
    DEFER,
    FAIL,
    GET,
    GETS,
    LIFT,
    MAP,
    MAP_ERROR,
    MODIFY,
    NAMED,
    PAR,
    PURE,
    PUT,
    RECOVER,
    SHARE,
    THEN,
    TIMEOUT,
)
from mce.errors import StepTimeout

if TYPE_CHECKING:
    from mce.retry import RetryPolicy

_new = object.__new__
_FunctionType = types.FunctionType

_S = TypeVar("_S")
_S_contra = TypeVar("_S_contra", contravariant=True)
_E_co = TypeVar("_E_co", covariant=True)
_A_co = TypeVar("_A_co", covariant=True)
_S2 = TypeVar("_S2")
_E = TypeVar("_E")
_E2 = TypeVar("_E2")
_A = TypeVar("_A")
_B = TypeVar("_B")
_C = TypeVar("_C")
_D = TypeVar("_D")
_F = TypeVar("_F")
_G = TypeVar("_G")
_X = TypeVar("_X")
_Ts = TypeVarTuple("_Ts")


class Step(Generic[_S_contra, _E_co, _A_co]):
    """A workflow that reads/writes state `S`, may fail with `E` and yields `A`.

    Steps are immutable values built from the constructors in this module;
    running one is `mce.run`'s job.

    >>> from mce import run_sync
    >>> run_sync(pure(2).map(lambda x: x + 1), None)
    Ok(value=3, state=None)
    """

    __slots__ = ()
    _tag: int

    def map(self, f: Callable[[_A_co], _B]) -> Step[_S_contra, _E_co, _B]:
        """Apply a pure function to the value.

        >>> from mce import run_sync
        >>> run_sync(pure("a").map(str.upper), None).value
        'A'
        """
        return _Map(self, f)

    @overload
    def then(
        self: Step[object, _E, _A], f: Callable[[_A], Step[_S2, _E2, _B]]
    ) -> Step[_S2, _E | _E2, _B]: ...
    @overload
    def then(
        self, f: Callable[[_A_co], Step[_S_contra, _E2, _B]]
    ) -> Step[_S_contra, _E_co | _E2, _B]: ...
    def then(self, f: Callable[[Any], Step[Any, Any, Any]]) -> Step[Any, Any, Any]:
        """Monadic bind: feed the value to `f`, which returns the next step.

        Both steps work on the same state type. A step that works with any
        state (`Step[object, ...]`, such as `pure(x)`) fits wherever a state
        type is expected; followed by `.then`, it takes the state type of
        what follows.

        >>> from mce import run_sync
        >>> run_sync(pure(2).then(lambda x: pure(x * 5)), None).value
        10
        """
        return _Then(self, f)

    @overload
    def recover(
        self: Step[object, _E, _A], f: Callable[[_E], Step[_S2, _E2, _B]]
    ) -> Step[_S2, _E2, _A | _B]: ...
    @overload
    def recover(
        self, f: Callable[[_E_co], Step[_S_contra, _E2, _B]]
    ) -> Step[_S_contra, _E2, _A_co | _B]: ...
    def recover(self, f: Callable[[Any], Step[Any, Any, Any]]) -> Step[Any, Any, Any]:
        """Handle an error: `f` gets it and returns the step to run instead.

        The handler runs from the state as it was when this step started
        (the failed attempt's state changes are rolled back).

        >>> from mce import run_sync
        >>> attempt = put(99).then(lambda _: fail("oops"))
        >>> run_sync(attempt.recover(lambda e: gets(lambda s: (e, s))), 1)
        Ok(value=('oops', 1), state=1)
        """
        return _Recover(self, f)

    def map_error(self, f: Callable[[_E_co], _E2]) -> Step[_S_contra, _E2, _A_co]:
        """Apply a pure function to the error, if there is one.

        >>> from mce import run_sync
        >>> run_sync(fail(404).map_error(lambda c: f"status {c}"), None)
        Err(error='status 404', state=None)
        """
        return _MapError(self, f)

    def named(self, label: str) -> Step[_S_contra, _E_co, _A_co]:
        """Attach a label, used in traces and in the notes on raised bugs.

        >>> pure(1).named("one").label
        'one'
        """
        if not isinstance(label, str) or not label:
            raise ValueError(f"named() needs a non-empty string label, got {label!r}")
        return _Named(self, label)

    def timeout(self, seconds: float) -> Step[_S_contra, _E_co | StepTimeout, _A_co]:
        """Fail with `StepTimeout` if this step has not finished within `seconds`.

        The timer cancels the step at its next await; on timeout the state is
        the one the step started from.

        >>> import anyio
        >>> from mce import run_sync
        >>> slow = lift(lambda: anyio.sleep(5))
        >>> run_sync(slow.timeout(0.01), None)
        Err(error=StepTimeout(seconds=0.01, label=None), state=None)
        """
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(f"timeout() needs a number of seconds, got {seconds!r}")
        if not seconds > 0:
            raise ValueError(f"timeout() needs seconds > 0, got {seconds!r}")
        return _Timeout(self, float(seconds))

    def retry(self, policy: RetryPolicy) -> Step[_S_contra, _E_co, _A_co]:
        """Try this step again while it fails with an error `policy` retries (`mce.RetryPolicy`).

        Built from `recover` and the journaled `sleep`/`random` effects:
        each attempt is a named step in the trace and replays from the
        journal. The error, when every attempt failed, is the last one's.

        >>> from mce import RetryPolicy, effect, run_sync
        >>> tries = iter([ValueError("no"), ValueError("no"), "yes"])
        >>> def handler(request):
        ...     outcome = next(tries)
        ...     if isinstance(outcome, Exception):
        ...         raise outcome
        ...     return outcome
        >>> run_sync(effect("ask", None, handler=handler).retry(RetryPolicy(backoff=0)), None).value
        'yes'
        """
        from mce.retry import retry

        return retry(self, policy)

    @property
    def label(self) -> str | None:
        """The label given by the outermost `.named(...)`, if any.

        >>> pure(0).label is None
        True
        """
        return None


# ---------------------------------------------------------------- nodes
# Private, slotted, set once in __init__ and never mutated.


@final
class _Pure(Step[Any, Never, Any]):
    __slots__ = ("value",)
    _tag = PURE

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"pure({self.value!r})"


@final
class _Fail(Step[Any, Any, Never]):
    __slots__ = ("error",)
    _tag = FAIL

    def __init__(self, error: object) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"fail({self.error!r})"


@final
class _Get(Step[Any, Never, Any]):
    __slots__ = ()
    _tag = GET

    def __repr__(self) -> str:
        return "get()"


@final
class _Put(Step[Any, Never, None]):
    __slots__ = ("state",)
    _tag = PUT

    def __init__(self, state: object) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"put({self.state!r})"


@final
class _Modify(Step[Any, Never, None]):
    __slots__ = ("f",)
    _tag = MODIFY

    def __init__(self, f: Callable[[Any], Any]) -> None:
        self.f = f

    def __repr__(self) -> str:
        return f"modify({_callable_name(self.f)})"


@final
class _Gets(Step[Any, Never, Any]):
    __slots__ = ("f",)
    _tag = GETS

    def __init__(self, f: Callable[[Any], Any]) -> None:
        self.f = f

    def __repr__(self) -> str:
        return f"gets({_callable_name(self.f)})"


@final
class _Then(Step[Any, Any, Any]):
    __slots__ = ("f", "step")
    _tag = THEN

    def __init__(self, step: Step[Any, Any, Any], f: Callable[[Any], Any]) -> None:
        self.step = step
        self.f = f

    def __repr__(self) -> str:
        return f"{self.step!r}.then({_callable_name(self.f)})"


@final
class _Map(Step[Any, Any, Any]):
    __slots__ = ("f", "step")
    _tag = MAP

    def __init__(self, step: Step[Any, Any, Any], f: Callable[[Any], Any]) -> None:
        self.step = step
        self.f = f

    def __repr__(self) -> str:
        return f"{self.step!r}.map({_callable_name(self.f)})"


@final
class _Recover(Step[Any, Any, Any]):
    __slots__ = ("f", "step")
    _tag = RECOVER

    def __init__(self, step: Step[Any, Any, Any], f: Callable[[Any], Any]) -> None:
        self.step = step
        self.f = f

    def __repr__(self) -> str:
        return f"{self.step!r}.recover({_callable_name(self.f)})"


@final
class _MapError(Step[Any, Any, Any]):
    __slots__ = ("f", "step")
    _tag = MAP_ERROR

    def __init__(self, step: Step[Any, Any, Any], f: Callable[[Any], Any]) -> None:
        self.step = step
        self.f = f

    def __repr__(self) -> str:
        return f"{self.step!r}.map_error({_callable_name(self.f)})"


@final
class _Named(Step[Any, Any, Any]):
    __slots__ = ("name", "step")
    _tag = NAMED

    def __init__(self, step: Step[Any, Any, Any], name: str) -> None:
        self.step = step
        self.name = name

    @property
    def label(self) -> str | None:
        return self.name

    def __repr__(self) -> str:
        return f"{self.step!r}.named({self.name!r})"


@final
class _Defer(Step[Any, Any, Any]):
    """A step computed when the interpreter reaches it (do-notation, recursion)."""

    __slots__ = ("origin", "thunk")
    _tag = DEFER

    def __init__(self, thunk: Callable[[], Step[Any, Any, Any]], origin: object) -> None:
        self.thunk = thunk
        self.origin = origin

    def __repr__(self) -> str:
        return f"defer({_callable_name(self.origin)})"


@final
class _Lift(Step[Any, Never, Any]):
    """Built by `lift` alone (without an `__init__`: a chain builds one per step).

    It calls `thunk()` when `arg` is `_NO_ARG`, else `thunk(arg, *more)`:
    `lift`'s own parameters, kept as they came (no tuple for one argument).
    `call` is the reference; the interpreter's hot paths inline it.
    """

    __slots__ = ("arg", "more", "thunk")
    _tag = LIFT
    thunk: Callable[..., Any]
    arg: Any
    more: tuple[Any, ...]

    def call(self) -> Any:
        """Call the lifted callable with its arguments.

        >>> lift(list).call(), lift(len, (1, 2)).call(), lift(divmod, 7, 2).call()
        ([], 2, (3, 1))
        """
        arg = self.arg
        if arg is _NO_ARG:
            return self.thunk()
        return self.thunk(arg, *self.more)

    def __repr__(self) -> str:
        args = () if self.arg is _NO_ARG else (self.arg, *self.more)
        return f"lift({', '.join([_callable_name(self.thunk), *map(repr, args)])})"


@final
class _Par(Step[Any, Any, tuple[Any, ...]]):
    """Applicative combination of branches, run concurrently.

    Either `steps` is given, or `items` and `f` (traverse builds each branch
    when it starts, so a bounded traverse over many items stays small).
    """

    __slots__ = ("f", "items", "limit", "mode", "steps")
    _tag = PAR

    def __init__(
        self,
        steps: tuple[Step[Any, Any, Any], ...] | None,
        items: tuple[Any, ...] | None,
        f: Callable[[Any], Step[Any, Any, Any]] | None,
        limit: int | None,
        mode: int,
    ) -> None:
        self.steps = steps
        self.items = items
        self.f = f
        self.limit = limit
        self.mode = mode

    def __len__(self) -> int:
        if self.steps is not None:
            return len(self.steps)
        assert self.items is not None
        return len(self.items)

    def __repr__(self) -> str:
        name = "collect" if self.mode == COLLECT else "par"
        if self.steps is not None:
            return f"{name}({', '.join(map(repr, self.steps))})"
        return f"traverse(<{len(self)} items>, {_callable_name(self.f)})"


@final
class _Timeout(Step[Any, Any, Any]):
    __slots__ = ("seconds", "step")
    _tag = TIMEOUT

    def __init__(self, step: Step[Any, Any, Any], seconds: float) -> None:
        self.step = step
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"{self.step!r}.timeout({self.seconds})"


@final
class _Share(Step[Any, Any, Any]):
    __slots__ = ("key", "step")
    _tag = SHARE

    def __init__(self, step: Step[Any, Any, Any], key: str | None) -> None:
        self.step = step
        self.key = key

    def __repr__(self) -> str:
        return f"share({self.step!r})"


def _callable_name(f: object) -> str:
    return getattr(f, "__qualname__", None) or repr(f)


# ---------------------------------------------------------------- constructors


def pure(value: _A) -> Step[object, Never, _A]:
    """A step that yields `value` and changes nothing.

    >>> from mce import run_sync
    >>> run_sync(pure(None), 0)
    Ok(value=None, state=0)
    """
    return _Pure(value)


def fail(error: _E) -> Step[object, _E, Never]:
    """A step that fails with `error`; the rest of the sequence is skipped.

    >>> from mce import run_sync
    >>> run_sync(fail("no").map(lambda x: x + 1), 0)
    Err(error='no', state=0)
    """
    return _Fail(error)


def get() -> Step[_S, Never, _S]:
    """A step whose value is the current state.

    >>> from mce import run_sync
    >>> run_sync(get(), "s").value
    's'
    """
    return _THE_GET


_THE_GET: Step[Any, Never, Any] = _Get()


def gets(f: Callable[[_S], _A]) -> Step[_S, Never, _A]:
    """A step whose value is `f(state)`.

    >>> from mce import run_sync
    >>> run_sync(gets(len), "abc").value
    3
    """
    return _Gets(f)


def put(state: _S) -> Step[_S, Never, None]:
    """A step that replaces the state.

    >>> from mce import run_sync
    >>> run_sync(put(7), 0)
    Ok(value=None, state=7)
    """
    return _Put(state)


def modify(f: Callable[[_S], _S]) -> Step[_S, Never, None]:
    """A step that replaces the state with `f(state)`.

    >>> from mce import run_sync
    >>> run_sync(modify(lambda n: n + 1), 1).state
    2
    """
    return _Modify(f)


class _NoArg:
    """The type of `_NO_ARG`: one instance, kept by copies and pickles (compared by identity)."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "_NO_ARG"  # pickle and copy refer to the module's one instance


_NO_ARG: Any = _NoArg()
"""`lift`'s default for its first argument: none given."""


@overload
def lift(thunk: Callable[[*_Ts], Awaitable[_A]], *args: *_Ts) -> Step[object, Never, _A]: ...
@overload
def lift(thunk: Callable[[*_Ts], _A], *args: *_Ts) -> Step[object, Never, _A]: ...
# mypy cannot match `*args: *_Ts` overloads against any implementation, even
# `(thunk: Any, *args: Any)`; callers are checked against the overloads alone.
def lift(  # type: ignore[misc]
    thunk: Callable[..., Any], arg: Any = _NO_ARG, *more: Any
) -> Step[object, Never, Any]:
    """Lift an async (or sync) callable, with the arguments to call it with, into a step.

    The step calls `thunk(*args)` each time it runs - never while building
    it - and awaits what an async callable returns. An exception it raises
    is a bug and propagates out of `run`; effects that fail in expected ways
    belong on the error channel instead.

    Passing the arguments here rather than in a closure (`lift(fetch, url)`,
    not `lift(lambda: fetch(url))`) spares a function object per step, like
    anyio's `start_soon(fn, *args)`; they are the values given now, where a
    closure would read its variables when the step runs. Type checkers match
    them against `thunk`'s parameters; arguments that do not fit raise a
    `TypeError` when the step runs, as a bug of the lifted callable.

    >>> import anyio
    >>> from mce import run_sync
    >>> async def fetch(page: int = 1) -> str:
    ...     await anyio.sleep(0)
    ...     return f"data {page}"
    >>> run_sync(lift(fetch), None).value
    'data 1'
    >>> run_sync(pure(2).then(lambda n: lift(fetch, n)), None).value
    'data 2'
    """
    # The arguments come as `arg, *more` rather than `*args`: the node keeps
    # them as they are, with no tuple for one argument (see `_Lift`).
    if type(thunk) is not _FunctionType and not callable(thunk):
        if arg is _NO_ARG:
            raise TypeError(f"lift() needs a zero-argument callable, got {thunk!r}")
        args = (arg, *more)
        raise TypeError(
            f"lift() needs a callable to call with the {len(args)} argument(s) {args!r}, "
            f"got {thunk!r}"
        )
    node = _Lift()
    node.thunk = thunk
    node.arg = arg
    node.more = more
    return node


def defer(thunk: Callable[[], Step[_S, _E, _A]]) -> Step[_S, _E, _A]:
    """A step built only when it runs (for recursion and per-run setup).

    >>> from mce import run_sync
    >>> def countdown(n: int) -> Step[int, Never, int]:
    ...     if n == 0:
    ...         return pure(0)
    ...     return modify(lambda s: s + 1).then(lambda _: defer(lambda: countdown(n - 1)))
    >>> run_sync(countdown(3), 0).state
    3
    """
    return _Defer(thunk, thunk)


def share(step: Step[_S, _E, _A], key: str | None = None) -> Step[_S, _E, _A]:
    """Run `step` at most once per run, however many consumers use it.

    The first consumer to reach it starts it (from that consumer's state);
    every consumer gets its value or error. Its state changes are discarded:
    a shared step computes a value, like a future in a DAG.

    Its effects are journaled under `key` (default: the step's `.named`
    label, else the order in which shared steps are first reached), so name
    shared steps that several parallel branches may reach first.

    >>> from mce import run_sync
    >>> calls = []
    >>> s = share(lift(lambda: calls.append(1) or len(calls)))
    >>> run_sync(par(s, s, s.map(str)), None).value, len(calls)
    ((1, 1, '1'), 1)
    """
    if not isinstance(step, Step):
        raise TypeError(f"share() needs a Step, got {step!r}")
    if key is not None and (not isinstance(key, str) or not key):
        raise ValueError(f"share(key=...) needs a non-empty string, got {key!r}")
    return _Share(step, key)


# The applicative combinators (par, gather, traverse, collect) live in
# mce/_applicatives.py, which builds this module's `_Par` node; imported last
# because that module needs `Step` and the node classes defined above.
from mce._applicatives import collect, gather, par, traverse  # noqa: E402

__all__ = [
    "Step",
    "collect",
    "defer",
    "fail",
    "gather",
    "get",
    "gets",
    "lift",
    "modify",
    "par",
    "pure",
    "put",
    "share",
    "traverse",
]
