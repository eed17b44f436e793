"""Tools: typed functions turned into journaled, schema'd, validated effects.

`@tool` turns an async or sync function into a `Tool`: calling it returns a
`Step` (effect kind `"tool.<name>"`) instead of running it. The JSON schema
of its parameters comes from the type hints (through pydantic: models,
dataclasses, attrs classes, enums, dates, `Annotated[..., Field(...)]`),
with descriptions from `Field` or the docstring's `Args:` section, for tool
calling. Arguments are validated when the step runs, before the function is
called: invalid ones fail with a `ToolError` listing every bad field with
its path; an exception raised by the function, or a timeout, is a
`ToolError` too - all on the error channel. A `Secret` is accepted wherever
a `str` is expected: the function gets the value, the journal never does.
A declared return type is what the workflow receives, on a live run and
on replay alike (the journal holds its JSON form).

The signature is checked when the tool is defined (every parameter passed
by name, every type hint resolved); the schema and the validator are built
on first use - a call that runs, `schema()`, `parameters` - so that a module
of tools, and a workflow built from it, load without pydantic.

>>> from mce import run_sync
>>> @tool
... def add(a: int, b: int = 1) -> int:
...     "Add two integers."
...     return a + b
>>> run_sync(add(2, b=3), None)
Ok(value=5, state=None)
>>> print(run_sync(add.call({"a": "two", "c": 3}), None).error)
tool 'add': invalid_arguments: 2 invalid fields: a: expected an integer, got 'two'; c: unexpected argument (it takes ['a', 'b'])
>>> add.schema()["function"]["parameters"]["properties"]["b"]
{'type': 'integer', 'default': 1}
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final, overload

import anyio
from anyio.lowlevel import RunVar
from typing_extensions import ParamSpec
from typing_extensions import TypeVar as DefaultTypeVar

# `ToolError`'s field types are resolved here, its public home, when a
# journal is decoded: `FieldError` must be a name of this module.
from mce._field_error import FieldError as FieldError
from mce._secrets import _has_secret
from mce._signature import named_parameters
from mce.effects import (
    EffectError,
    EffectFailed,
    declare_kind,
    effect,
    reveal,
)
from mce.executors import run_in_thread
from mce.step import Step, defer, fail, pure
from mce.tools._errors import ToolError as ToolError
from mce.tools._errors import ToolErrorKind as ToolErrorKind
from mce.tools._errors import _invalid
from mce.tools._registry import Registry as Registry

if TYPE_CHECKING:
    from mce.schema import FunctionSchema, Schema

# `mce.schema` (pydantic) is imported where a schema is first needed, never
# when a tool is defined or a step calling it is built.

_A = TypeVar("_A")
# Defaults, so that a bare `Tool` annotation means "some tool".
_P = ParamSpec("_P", default=...)
_R = DefaultTypeVar("_R", default=Any)

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _as_declared(tool: str, returns: Schema[Any], value: Any) -> Step[object, ToolError, Any]:
    from mce.schema import SchemaError

    try:
        return pure(returns.validate(value))
    except SchemaError as exc:
        return fail(_invalid(tool, "invalid_result", exc))


_UNSET: Any = object()
_NO_DEADLINE = contextlib.nullcontext()


_JSON_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool}


@final
class Tool(Generic[_P, _R]):
    """A function callable by workflows and models; calling it builds a `Step`.

    `arguments` is its `mce.schema.FunctionSchema` (built once, on first
    use); `returns` the `Schema` of its declared return type, or None.

    A `Tool[P, R]` keeps the function's parameters `P` and its (awaited)
    return type `R` for type checkers: calling it checks the arguments and
    gives a state-free `Step[object, ToolError | EffectError, R]` (an
    `EffectError` only when a `handlers=` override raises a plain exception
    or an executor fails).

    >>> from mce import run_sync
    >>> double = Tool(lambda x: 2 * x, name="double")
    >>> run_sync(double(4), None).value
    8
    """

    # Set by `from_schema` for a tool whose implementation lives elsewhere.
    _check: Callable[[dict[str, Any]], None] | None = None
    _remote_handler: Callable[[dict[str, Any]], Awaitable[Any]] | None = None

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        remote: bool = False,
        limit: int | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"tool name {self.name!r} must be 1-64 letters, digits, _ or -")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"tool {self.name!r}: timeout must be > 0, got {timeout!r}")
        try:
            self.signature, _hints = named_parameters(fn, self.name)
        except TypeError as exc:
            raise TypeError(f"tool {exc}") from None
        self._arguments: FunctionSchema | None = None
        self._description = description
        self._params: list[tuple[str, Any, bool]] | None = None
        self._parameters: dict[str, Any] | None = None
        self._returns: Schema[Any] | None = _UNSET
        self.timeout = timeout
        self.remote = remote
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"tool {self.name!r}: limit must be an int >= 1, got {limit!r}")
        self.limit = limit
        # One limiter per event loop run: a limiter is bound to the loop it is used on.
        self._limiter: RunVar[anyio.CapacityLimiter] = RunVar(f"mce.tool.{self.name}.limit")
        self.kind = f"tool.{self.name}"
        declare_kind(self.kind)  # a handler for it is never "unknown"
        self.is_async = inspect.iscoroutinefunction(fn)

    def __repr__(self) -> str:
        return f"<tool {self.name}>"

    @property
    def arguments(self) -> FunctionSchema:
        """The parameters' schema and validator, built on first use."""
        made = self._arguments
        if made is None:
            from mce.schema import FunctionSchema

            try:
                made = self._arguments = FunctionSchema(self.fn, name=self.name)
            except TypeError as exc:
                raise TypeError(f"tool {exc}") from None
        return made

    @property
    def description(self) -> str:
        """What the tool does, for a model: as given, else the docstring's summary."""
        if self._description is None:
            self._description = self.arguments.description
        return self._description

    @description.setter
    def description(self, value: str) -> None:
        self._description = value

    @property
    def params(self) -> list[tuple[str, Any, bool]]:
        """(name, type, required) of every parameter."""
        if self._params is None:
            self._params = [(p.name, p.type, p.required) for p in self.arguments.parameters]
        return self._params

    @params.setter
    def params(self, value: list[tuple[str, Any, bool]]) -> None:
        self._params = value

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments (an object)."""
        if self._parameters is None:
            self._parameters = self.arguments.json_schema
        return self._parameters

    @parameters.setter
    def parameters(self, value: dict[str, Any]) -> None:
        self._parameters = value

    @property
    def returns(self) -> Schema[Any] | None:
        """The `Schema` of the declared return type, or None."""
        if self._returns is _UNSET:
            self._returns = self.arguments.returns
        return self._returns

    @returns.setter
    def returns(self, value: Schema[Any] | None) -> None:
        self._returns = value

    @classmethod
    def from_schema(
        cls,
        name: str,
        parameters: dict[str, Any],
        handler: Callable[[dict[str, Any]], Awaitable[Any]],
        *,
        description: str = "",
        kind: str | None = None,
        check: Callable[[dict[str, Any]], None] | None = None,
    ) -> Tool:
        """A tool described by a JSON schema, whose calls go to `handler` (a remote tool, say).

        The schema is kept as given. `check` validates the arguments
        (raising `SchemaError`); by default only required arguments are
        checked. `handler` gets the arguments as JSON; its exceptions are not
        turned into `ToolError`s (an exception is an `EffectError`), so it
        raises `EffectFailed(ToolError(...))` for a failure of the tool
        itself. `kind` is the effect kind (default `"tool.<name>"`).

        >>> from mce import run_sync
        >>> async def remote(args):
        ...     return args["q"].upper()
        >>> shout = Tool.from_schema("shout", {"type": "object", "properties": {"q": {"type": "string"}},
        ...                          "required": ["q"]}, remote, kind="rpc:shout")
        >>> run_sync(shout(q="hi"), None).value, shout.kind
        ('HI', 'rpc:shout')
        >>> run_sync(shout.call({}), None).error.message
        'missing required argument'
        """
        if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
            raise ValueError(
                f"tool {name!r}: parameters must be a JSON object schema, got {parameters!r}"
            )
        made = cls(handler, name=name, description=description)
        properties = parameters.get("properties") or {}
        required = set(parameters.get("required") or ())
        made.parameters = parameters
        made.params = [
            (
                n,
                _JSON_TYPES.get(str(p.get("type")), Any) if isinstance(p, dict) else Any,
                n in required,
            )
            for n, p in properties.items()
        ]
        made.signature = inspect.Signature(
            [
                inspect.Parameter(
                    n,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=inspect.Parameter.empty if req else None,
                )
                for n, _, req in made.params
                if n.isidentifier()
            ]
        )
        if kind is not None:
            made.kind = kind
            declare_kind(kind)

        def require(arguments: dict[str, Any]) -> None:
            from mce.schema import SchemaError

            for n in parameters.get("required") or ():
                if n not in arguments:
                    raise SchemaError(n, "missing required argument")

        made._check = check if check is not None else require
        made._remote_handler = handler
        made.returns = None  # the result is the remote's, not described by `handler`
        return made

    def schema(self) -> dict[str, Any]:
        """The tool as OpenAI's tool-calling API describes it."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Typed keyword arguments from JSON arguments; `SchemaError` lists every bad field.

        `Secret`s are checked by their value, which no error message repeats.
        """
        from mce.schema import SchemaError

        if self._check is not None:
            if not isinstance(arguments, dict):
                raise SchemaError("", f"arguments must be a JSON object, got {arguments!r}")
            self._check(arguments)
            return dict(arguments)
        try:
            return self.arguments.validate(arguments)
        except SchemaError:
            if not _has_secret(arguments):
                raise
        return self.arguments.validate(reveal(arguments), show_input=False)

    def validate_argument(self, name: str, value: Any) -> Any:
        """One argument checked alone (`SchemaError` with paths under `name`)."""
        if self._check is not None:  # described by a JSON schema: its simple types only
            from mce.schema import Schema

            tp = next((t for n, t, _ in self.params if n == name), Any)
            return Schema.of(tp).validate(value, name)
        return self.arguments.validate_argument(name, value)

    def __call__(
        self, *args: _P.args, **kwargs: _P.kwargs
    ) -> Step[object, ToolError | EffectError, _R]:
        """A step that calls the tool with these arguments (validated when it runs).

        The arguments are turned into JSON when the step runs.
        """
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"tool {self.name!r}: {exc}") from None
        given = bound.arguments

        def build() -> Step[Any, ToolError | EffectError, Any]:
            from mce.schema import to_json

            return self.call({k: to_json(v) for k, v in given.items()})

        return defer(build)

    def call(self, arguments: dict[str, Any]) -> Step[object, ToolError | EffectError, _R]:
        """A step that calls the tool with JSON `arguments` (as a model sends them)."""

        def build() -> Step[Any, ToolError | EffectError, Any]:
            from mce.schema import SchemaError

            try:
                kwargs = self.validate(arguments)
            except SchemaError as exc:
                return fail(_invalid(self.name, "invalid_arguments", exc))
            # Validated once, here: the handler runs the function with these -
            # unless it runs elsewhere (remote), or a secret must be revealed
            # first: then it validates the arguments it is given, revealed.
            revalidate = self.remote or _has_secret(arguments)
            handler = self.handle if revalidate else self._with(kwargs)
            called = effect(
                self.kind, arguments, error=ToolError, handler=handler, remote=self.remote
            )
            returns = self.returns
            if returns is None:
                return called
            # the recorded (JSON) result as the declared type, live and on replay alike
            return called.then(lambda value: _as_declared(self.name, returns, value))

        return defer(build)

    async def handle(self, arguments: dict[str, Any]) -> Any:
        """The tool's own handler: validate the arguments, run the function (a `ToolError` on failure).

        With a `limit`, at most that many calls of this tool run at once in
        one event loop; the others wait their turn. With a declared return
        type, the value is returned in its JSON form.
        """
        from mce.schema import SchemaError

        try:
            kwargs = self.validate(arguments)
        except SchemaError as exc:
            raise EffectFailed(_invalid(self.name, "invalid_arguments", exc)) from None
        return await self._limited(kwargs)

    def _with(self, kwargs: dict[str, Any]) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        """A handler that runs the function with `kwargs`, already validated from its arguments."""

        async def handle(arguments: dict[str, Any]) -> Any:
            return await self._limited(kwargs)

        return handle

    async def _limited(self, kwargs: dict[str, Any]) -> Any:
        if self.limit is None:
            return await self._handle(kwargs)
        try:
            limiter = self._limiter.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(self.limit)
            self._limiter.set(limiter)
        async with limiter:
            return await self._handle(kwargs)

    async def _handle(self, kwargs: dict[str, Any]) -> Any:
        from mce.schema import SchemaError

        if self._remote_handler is not None:
            return await self._remote_handler(kwargs)
        deadline: anyio.CancelScope | None = None
        # No timeout, no cancel scope: entering one costs more than the rest of the call.
        limit = _NO_DEADLINE if self.timeout is None else anyio.fail_after(self.timeout)
        try:
            with limit as deadline:
                if self.is_async:
                    result = await self.fn(**kwargs)
                else:
                    # A sync function may block: a worker thread, under the run's thread limit.
                    (result,) = await run_in_thread(lambda: (self.fn(**kwargs),))
                    if inspect.isawaitable(result):
                        result = await result
        except TimeoutError as exc:
            # Only the tool's own deadline is a "timeout"; a TimeoutError the
            # function raised itself (a client library's) is a failure.
            if deadline is None or not deadline.cancelled_caught:
                raise EffectFailed(
                    ToolError(self.name, "failed", str(exc), exception_type=type(exc).__qualname__)
                ) from None
            raise EffectFailed(
                ToolError(self.name, "timeout", f"no result within {self.timeout} s")
            ) from None
        except EffectFailed:
            raise
        except Exception as exc:
            raise EffectFailed(
                ToolError(self.name, "failed", str(exc), exception_type=type(exc).__qualname__)
            ) from None
        if self.returns is None:
            return result
        try:
            return self.returns.dump(result)
        except SchemaError as exc:
            raise EffectFailed(_invalid(self.name, "invalid_result", exc)) from None


@final
class ToolDecorator:
    """What `tool(name=..., ...)` returns: a decorator keeping types as bare `@tool` does.

    >>> decorate = tool(name="twice")
    >>> decorate(lambda x: 2 * x).name
    'twice'
    """

    def __init__(self, make: Callable[[Callable[..., Any]], Tool[..., Any]]) -> None:
        self._make = make

    @overload
    def __call__(self, fn: Callable[_P, Awaitable[_A]], /) -> Tool[_P, _A]: ...
    @overload
    def __call__(self, fn: Callable[_P, _A], /) -> Tool[_P, _A]: ...
    def __call__(self, fn: Callable[..., Any], /) -> Tool[..., Any]:
        return self._make(fn)


@overload
def tool(fn: Callable[_P, Awaitable[_A]], /) -> Tool[_P, _A]: ...
@overload
def tool(fn: Callable[_P, _A], /) -> Tool[_P, _A]: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    remote: bool = False,
    limit: int | None = None,
) -> ToolDecorator: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    remote: bool = False,
    limit: int | None = None,
) -> Tool[..., Any] | ToolDecorator:
    """Make a function a `Tool` (see the module docstring). Use bare or with options.

    `remote=True` marks a tool to run on a cluster executor when one is used.
    `limit=k` lets at most k calls of the tool run at once (per event loop).

    >>> @tool(name="lookup", timeout=5)
    ... async def find(key: str) -> str:
    ...     return key
    >>> find.name, find.timeout
    ('lookup', 5)
    """

    def wrap(f: Callable[..., Any]) -> Tool[..., Any]:
        return Tool(
            f, name=name, description=description, timeout=timeout, remote=remote, limit=limit
        )

    return wrap(fn) if fn is not None else ToolDecorator(wrap)


__all__ = ["Registry", "Tool", "ToolDecorator", "ToolError", "ToolErrorKind", "tool"]
