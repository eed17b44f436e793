"""@tool, schemas, validation before the call, typed errors, the registry."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import anyio
import pytest
from attrs import frozen

from mce import Err, Journal, Ok, gather, run_sync
from mce.schema import SchemaError, convert, schema_of
from mce.tools import Registry, Tool, ToolError, tool


@frozen
class Filter:
    field: str
    op: Literal["eq", "lt", "gt"] = "eq"


@dataclasses.dataclass(frozen=True)
class Page:
    number: int
    size: int | None = None


calls: list[Any] = []


@tool
def search(
    query: str, filters: list[Filter], limit: int = 10, page: Page | None = None
) -> list[str]:
    """Search the catalogue.

    Longer description that the model does not need.
    """
    calls.append((query, filters, limit, page))
    return [f"{query}-{i}" for i in range(min(limit, 2))]


def test_schema_from_type_hints() -> None:
    params = search.schema()["function"]["parameters"]
    assert search.schema()["function"]["description"] == "Search the catalogue."
    assert params["required"] == ["query", "filters"]
    assert params["properties"]["limit"] == {"type": "integer", "default": 10}
    assert params["properties"]["filters"]["items"]["properties"]["op"] == {
        "type": "string",
        "enum": ["eq", "lt", "gt"],
        "default": "eq",
    }
    assert params["properties"]["page"]["anyOf"][1] == {"type": "null"}
    assert params["additionalProperties"] is False


def test_valid_call_converts_to_typed_values() -> None:
    calls.clear()
    out = run_sync(
        search.call({"query": "q", "filters": [{"field": "a", "op": "lt"}], "page": {"number": 2}}),
        None,
    )
    assert out == Ok(["q-0", "q-1"], None)
    assert calls == [("q", [Filter("a", "lt")], 10, Page(2))]


@pytest.mark.parametrize(
    ("arguments", "path", "message"),
    [
        ({"filters": []}, "query", "missing required argument"),
        ({"query": 1, "filters": []}, "query", "expected a string"),
        (
            {"query": "q", "filters": [{"field": "a"}, {"field": "b", "op": "ne"}]},
            "filters[1].op",
            "expected one of",
        ),
        (
            {"query": "q", "filters": [{"field": "a", "extra": 1}]},
            "filters[0].extra",
            "unexpected field",
        ),
        ({"query": "q", "filters": [], "limit": "five"}, "limit", "expected an integer"),
        ({"query": "q", "filters": [], "nope": 1}, "nope", "unexpected argument"),
    ],
)
def test_bad_arguments_fail_before_the_tool_runs(
    arguments: dict[str, Any], path: str, message: str
) -> None:
    calls.clear()
    out = run_sync(search.call(arguments), None)
    assert isinstance(out, Err) and isinstance(out.error, ToolError)
    assert out.error.kind == "invalid_arguments" and out.error.path == path
    assert message in out.error.message
    assert calls == []


def test_python_callers_pass_typed_values() -> None:
    out = run_sync(search("q", [Filter("x")], limit=1), None)
    assert out == Ok(["q-0"], None)
    with pytest.raises(TypeError, match="tool 'search'"):
        search("q", [], 1, None, "extra")


def test_exceptions_and_timeouts_become_tool_errors() -> None:
    @tool
    def broken(x: int) -> int:
        raise KeyError("missing")

    @tool(timeout=0.05)
    async def slow(x: int) -> int:
        await anyio.sleep(10)
        return x

    @tool(timeout=0.05)
    def slow_sync(x: int) -> int:
        import time

        time.sleep(0.3)
        return x

    out = run_sync(broken(1), None)
    assert out == Err(ToolError("broken", "failed", "'missing'", exception_type="KeyError"))
    assert run_sync(slow(1), None) == Err(ToolError("slow", "timeout", "no result within 0.05 s"))
    assert run_sync(slow_sync(1), None).error.kind == "timeout"  # type: ignore[union-attr]


def test_tools_are_journaled_and_replay() -> None:
    calls.clear()
    j = Journal()
    prog = gather([search("a", []), search("b", [])])
    live = run_sync(prog, None, journal=j)
    assert [e["kind"] for e in j.load()[1]] == ["tool.search", "tool.search"]
    assert run_sync(prog, None, journal=j, mode="replay") == live
    assert len(calls) == 2


def test_handlers_override_a_tools_own_handler() -> None:
    calls.clear()
    out = run_sync(
        search("a", []), None, handlers={"tool.search": lambda args: ["fake " + args["query"]]}
    )
    assert out == Ok(["fake a"], None) and calls == []


def test_registry() -> None:
    reg = Registry([search])
    assert reg.names == ["search"] and len(reg) == 1 and reg["search"] is search
    assert run_sync(reg.call("search", '{"query": "z", "filters": []}'), None).ok
    bad = run_sync(reg.call("search", '{"query": '), None)
    assert isinstance(bad, Err) and "not valid JSON" in bad.error.message
    with pytest.raises(ValueError, match="already registered"):
        reg.add(search)
    with pytest.raises(TypeError, match="@tool"):
        reg.add(print)  # type: ignore[arg-type]


def test_tool_definition_errors() -> None:
    with pytest.raises(ValueError, match="tool name"):
        tool(name="has space")(lambda: None)
    with pytest.raises(TypeError, match=r"\*args"):

        @tool
        def variadic(*xs: int) -> None: ...

    with pytest.raises(ValueError, match="timeout"):
        tool(name="zero", timeout=0)(lambda: None)


def test_schema_and_convert_cover_the_supported_types() -> None:
    assert schema_of(tuple[int, str])["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert schema_of(dict[str, float]) == {
        "type": "object",
        "additionalProperties": {"type": "number"},
    }
    assert convert({"a": 1}, dict[str, float]) == {"a": 1.0}
    assert convert([1, "x"], tuple[int, str]) == (1, "x")
    assert convert(None, int | None) is None
    with pytest.raises(SchemaError, match=r"\[1\]: expected a string"):
        convert([1, 2], tuple[int, str])
    with pytest.raises(SchemaError, match="expected true or false"):
        convert("maybe", bool)

    class Opaque:
        pass

    with pytest.raises(TypeError, match="cannot derive"):
        schema_of(Opaque)


def test_a_timeout_error_raised_by_the_function_is_a_failure_not_the_tools_timeout() -> None:
    # Only the tool's own deadline is kind "timeout"; a TimeoutError the
    # function raises (a client library's, say) is a failure naming its type.
    @tool
    def fetch(url: str) -> str:
        "Fetch."
        raise TimeoutError(f"read from {url} timed out")

    @tool(timeout=30)
    def fetch_bounded(url: str) -> str:
        "Fetch, within 30 s."
        raise TimeoutError(f"read from {url} timed out")

    expected = "read from x timed out"
    assert run_sync(fetch("x"), None) == Err(
        ToolError("fetch", "failed", expected, exception_type="TimeoutError")
    )
    assert run_sync(fetch_bounded("x"), None) == Err(
        ToolError("fetch_bounded", "failed", expected, exception_type="TimeoutError")
    )


def test_a_name_ending_in_a_newline_is_refused() -> None:
    # `$` in a regex also matches before a final newline.
    with pytest.raises(ValueError, match="tool name"):
        tool(name="add\n")(lambda a: a)
    with pytest.raises(ValueError, match="tool name"):
        Tool.from_schema("add\n", {"type": "object"}, lambda arguments: None)


def test_a_journaled_tool_error_listing_bad_fields_replays() -> None:
    # A tool error listing bad fields, journaled as an effect's error (a
    # remote tool's own check, say), is decoded on replay by the types
    # ToolError declares: FieldError must resolve where ToolError lives.
    from mce import effect
    from mce.effects import EffectFailed
    from mce.schema import FieldError

    bad = (FieldError("q", "too short"), FieldError("n", "too big"))

    def remote(args: Any) -> Any:
        raise EffectFailed(ToolError("shout", "invalid_arguments", "2 invalid fields", errors=bad))

    call = effect("tool.shout", {"q": "x", "n": 9}, handler=remote, error=ToolError)
    journal = Journal()
    live = run_sync(call, None, journal=journal)
    assert isinstance(live, Err) and live.error.errors == bad
    assert run_sync(call, None, journal=journal, mode="replay") == live
