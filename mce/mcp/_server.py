"""The MCP server: mce tools and whole workflows served as MCP tools, one journaled run per call."""

from __future__ import annotations

import inspect
import json
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, final, overload

import anyio
import mcp_types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

from mce import Waiting, run
from mce.effects import Handler
from mce.schema import SchemaError, to_json
from mce.step import Step, fail
from mce.tools import Registry, Tool, ToolError

JOURNAL_META = "mce/journal"
"""The `_meta` key of a tool result naming the journal file of its run (when journaled)."""


def _arguments_of(build: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in for `build` with its parameters and docstring but no return type.

    A workflow's return type is a `Step`: a program, not a value a schema describes.
    """

    def arguments(**kwargs: Any) -> Any:
        return build(**kwargs)

    # Resolved without the return annotation, which may name types only a
    # type checker imports.
    annotations = dict(getattr(build, "__annotations__", {}))
    annotations.pop("return", None)

    def holder() -> None: ...

    holder.__annotations__ = annotations
    hints = typing.get_type_hints(holder, globalns=getattr(build, "__globals__", None))
    signature = inspect.signature(build)
    arguments.__signature__ = signature.replace(  # type: ignore[attr-defined]
        return_annotation=inspect.Signature.empty
    )
    arguments.__annotations__ = hints
    arguments.__name__ = arguments.__qualname__ = getattr(build, "__name__", "workflow")
    arguments.__doc__ = inspect.getdoc(build)
    return arguments


@final
class Workflow:
    """A workflow served as one MCP tool: `build`'s parameters are the tool's arguments.

    `build` takes typed arguments (described and validated like a `@tool`'s)
    and returns the `Step` to run from `state`, with `handlers`.

    >>> from mce import pure
    >>> wf = Workflow(lambda n: pure(n * 2), name="double")
    >>> wf.name, wf.parameters["required"]
    ('double', ['n'])
    """

    def __init__(
        self,
        build: Callable[..., Step[Any, Any, Any]],
        *,
        name: str | None = None,
        description: str | None = None,
        state: Any = None,
        handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        if not callable(build):
            raise TypeError(f"Workflow needs a function returning a Step, got {build!r}")
        self._signature = Tool(_arguments_of(build), name=name, description=description)
        self.build = build
        self.name = self._signature.name
        self.description = self._signature.description
        self.parameters = self._signature.parameters
        self.state = state
        self.handlers = dict(handlers or {})

    def __repr__(self) -> str:
        return f"<workflow {self.name}>"

    def step(self, arguments: dict[str, Any]) -> Step[Any, Any, Any]:
        """The step one call runs: `build` applied to the validated `arguments`.

        Invalid arguments give a step failing with a `ToolError`.

        >>> from mce import pure, run_sync
        >>> def double(n: int) -> Step[None, ToolError, int]:
        ...     return pure(n * 2)
        >>> wf = Workflow(double)
        >>> run_sync(wf.step({"n": 21}), None).value
        42
        >>> print(run_sync(wf.step({"n": "x"}), None).error)
        tool 'double': invalid_arguments at n: expected an integer, got 'x'
        """
        try:
            kwargs = self._signature.validate(arguments)
        except SchemaError as exc:
            return fail(ToolError(self.name, "invalid_arguments", exc.message, path=exc.path))
        built = self.build(**kwargs)
        if not isinstance(built, Step):
            raise TypeError(
                f"workflow {self.name!r}: {self.build!r} returned {built!r}, not a Step"
            )
        return built


@overload
def workflow(build: Callable[..., Step[Any, Any, Any]], /) -> Workflow: ...
@overload
def workflow(
    *,
    name: str | None = None,
    description: str | None = None,
    state: Any = None,
    handlers: Mapping[str, Handler] | None = None,
) -> Callable[[Callable[..., Step[Any, Any, Any]]], Workflow]: ...
def workflow(
    build: Callable[..., Step[Any, Any, Any]] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    state: Any = None,
    handlers: Mapping[str, Handler] | None = None,
) -> Workflow | Callable[[Callable[..., Step[Any, Any, Any]]], Workflow]:
    """Make a function returning a `Step` a `Workflow` to serve. Use bare or with options.

    >>> from mce import pure
    >>> @workflow(state=0)
    ... def greet(who: str) -> Step[int, str, str]:
    ...     "Greet someone."
    ...     return pure(f"hello {who}")
    >>> greet.name, greet.description, greet.state
    ('greet', 'Greet someone.', 0)
    """

    def wrap(f: Callable[..., Step[Any, Any, Any]]) -> Workflow:
        return Workflow(f, name=name, description=description, state=state, handlers=handlers)

    return wrap(build) if build is not None else wrap


Servable = Tool | Workflow | Registry | Iterable[Tool | Workflow]
"""What `server` serves: tools, workflows, a `Registry`, or a list of them."""


def _items(served: Servable) -> dict[str, Tool | Workflow]:
    if isinstance(served, Tool | Workflow):
        served = [served]
    items: dict[str, Tool | Workflow] = {}
    try:
        listed = list(served)
    except TypeError:
        raise TypeError(
            f"serve tools, workflows, a Registry or a list of them; got {served!r}"
        ) from None
    for item in listed:
        if not isinstance(item, Tool | Workflow):
            raise TypeError(
                f"an MCP server serves @tool tools and workflows (mce.mcp.workflow), got {item!r}"
            )
        if item.name in items:
            raise ValueError(f"two served tools are named {item.name!r}")
        items[item.name] = item
    return items


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


async def _call(
    item: Tool | Workflow,
    arguments: dict[str, Any],
    shared: Mapping[str, Handler],
    folder: Path | None,
) -> mcp_types.CallToolResult:
    """One served call: one mce run of `item` (journaled to a new file in `folder`, if any)."""
    run_handlers = dict(shared)
    if isinstance(item, Workflow):
        step, state = item.step(arguments), item.state
        run_handlers.update(item.handlers)
    else:
        step, state = item.call(arguments), None
    meta: dict[str, Any] | None = None
    journal: Path | None = None
    if folder is not None:
        journal = folder / f"{item.name}-{uuid.uuid4().hex}.jsonl"
        meta = {JOURNAL_META: journal.name}
    out = await run(step, state, handlers=run_handlers, journal=journal)
    if isinstance(out, Waiting):  # a served call cannot be resumed: say what it asked
        asked = "; ".join(f"{q.key}: {q.text}" for q in out.questions)
        text = f"the workflow stopped at questions for a person ({asked})"
    elif not out.ok:
        text = str(out.error)  # type: ignore[union-attr]
    if not out.ok:
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(type="text", text=text)], is_error=True, _meta=meta
        )
    value = to_json(out.value)  # type: ignore[union-attr]
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(type="text", text=_text(value))],
        structured_content=value if isinstance(value, dict) else None,
        _meta=meta,
    )


def server(
    served: Servable,
    *,
    name: str = "mce",
    journal_dir: str | Path | None = None,
    handlers: Mapping[str, Handler] | None = None,
) -> Server[Any]:
    """An MCP server (the official SDK's `Server`) whose tools are mce tools and workflows.

    Each call is one mce run: a tool's call, or a workflow's step from its
    state. With `journal_dir`, every run is journaled to a new file there,
    named in the result's `_meta` under `"mce/journal"`. A value is sent as
    text (JSON unless it is a string), and as structured content when it is
    a JSON object; an `Err` is an `isError` result whose text is the typed
    error's message. `handlers` are given to every run (a workflow's own
    handlers win).

    >>> from mce.tools import tool
    >>> @tool
    ... def add(a: int, b: int) -> int:
    ...     "Add two integers."
    ...     return a + b
    >>> import anyio
    >>> from mcp import Client
    >>> async def main():  # the SDK's client, in process
    ...     async with Client(server([add], name="calc")) as client:
    ...         return (await client.call_tool("add", {"a": 2, "b": 3})).content[0].text
    >>> anyio.run(main)
    '5'
    """
    items = _items(served)
    shared = dict(handlers or {})
    folder = Path(journal_dir) if journal_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    listing = [
        mcp_types.Tool(name=i.name, description=i.description or None, input_schema=i.parameters)
        for i in items.values()
    ]

    async def list_tools(
        _ctx: ServerRequestContext[Any], _params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListToolsResult:
        return mcp_types.ListToolsResult(tools=listing)

    def input_schema(tool_name: str) -> dict[str, Any] | None:
        item = items.get(tool_name)
        return None if item is None else item.parameters

    async def call_tool(
        _ctx: ServerRequestContext[Any], params: mcp_types.CallToolRequestParams
    ) -> mcp_types.CallToolResult:
        item = items.get(params.name)
        if item is None:
            error = ToolError(
                params.name, "unknown_tool", f"no such tool; available: {list(items)}"
            )
            return mcp_types.CallToolResult(
                content=[mcp_types.TextContent(type="text", text=str(error))], is_error=True
            )
        return await _call(item, dict(params.arguments or {}), shared, folder)

    return Server(
        name,
        get_tool_input_schema=input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def _serve_stdio(srv: Server[Any]) -> None:
    """Serve `srv` on this process's stdin and stdout until the client closes them."""
    async with stdio_server() as (read_stream, write_stream):
        await srv.run(read_stream, write_stream, srv.create_initialization_options())


async def _serve_http(srv: Server[Any], host: str, port: int) -> None:
    """Serve `srv` over streamable HTTP at `http://host:port/mcp` until cancelled (uvicorn: asyncio)."""
    import uvicorn

    app = srv.streamable_http_app(host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()


def serve(
    served: Servable | Server[Any],
    *,
    transport: Literal["stdio", "http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str = "mce",
    journal_dir: str | Path | None = None,
    handlers: Mapping[str, Handler] | None = None,
) -> None:
    """Serve tools and workflows (or a `server(...)`) over stdio or HTTP; what `mce mcp serve` runs.

    It returns when the client closes stdin (stdio), or runs until
    interrupted (HTTP, at `http://host:port/mcp`).

    >>> serve([], transport="smoke")
    Traceback (most recent call last):
    ...
    ValueError: transport must be 'stdio' or 'http', got 'smoke'
    """
    if transport not in ("stdio", "http"):
        raise ValueError(f"transport must be 'stdio' or 'http', got {transport!r}")
    if isinstance(served, Server):
        if journal_dir is not None or handlers is not None:
            raise ValueError("serve(server(...)): give journal_dir and handlers to server()")
        srv = served
    else:
        srv = server(served, name=name, journal_dir=journal_dir, handlers=handlers)
    if transport == "stdio":
        anyio.run(_serve_stdio, srv)
    else:
        anyio.run(_serve_http, srv, host, port)


def serve_command(
    target: str,
    load: Callable[[str], Any],
    journal_dir: str | None,
    http: str | None,
    name: str,
) -> Callable[[], None]:
    """`mce mcp serve`: check the command line and build the server; the result serves it.

    `load` imports a module (or file) by name. Bad input is a `ValueError`
    or `TypeError` raised here, before anything is served. The module's
    `mce_handlers` (a dict, or a function returning one) go to every run.

    >>> from importlib import import_module
    >>> serve_command("mce.tools:tool", import_module, None, None, "mce")
    Traceback (most recent call last):
    ...
    TypeError: mce.tools:tool: serve tools, workflows, a Registry or a list of them; got <function tool at ...>
    >>> serve_command("mce.tools:Registry", import_module, None, "8000", "mce")
    Traceback (most recent call last):
    ...
    ValueError: --http takes HOST:PORT (like 127.0.0.1:8000), got '8000'
    """
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected MODULE:ATTR (like flows.tools:served), got {target!r}")
    module = load(module_name)
    if not hasattr(module, attr):
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}")
    handlers = getattr(module, "mce_handlers", {})
    if callable(handlers):
        handlers = handlers()
    if not isinstance(handlers, dict):
        raise TypeError(f"{module_name}.mce_handlers must be a dict of handlers")
    host, port = "127.0.0.1", 8000
    if http is not None:
        host, _, port_text = http.rpartition(":")
        if not host or not port_text.isdigit():
            raise ValueError(f"--http takes HOST:PORT (like 127.0.0.1:8000), got {http!r}")
        port = int(port_text)
    try:
        srv = server(getattr(module, attr), name=name, journal_dir=journal_dir, handlers=handlers)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{target}: {exc}") from None
    transport: Literal["stdio", "http"] = "stdio" if http is None else "http"
    return lambda: serve(srv, transport=transport, host=host, port=port)


__all__ = [
    "JOURNAL_META",
    "Workflow",
    "serve",
    "server",
    "workflow",
]
