"""Handlers given to `run` that the run never asks for are reported; a misspelling at once."""

from __future__ import annotations

import warnings

import pytest

from mce import Err, Journal, Ok, UnusedHandler, effect, fail, run_sync
from mce.tools import tool

calls: list[str] = []


@tool
def search(q: str) -> str:
    calls.append(q)  # the "real" tool a test meant to replace
    return f"real results for {q}"


def test_a_misspelled_handler_stops_the_run_before_the_real_tool_runs() -> None:
    calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnusedHandler)
        with pytest.raises(UnusedHandler, match=r"'tool\.serach'.*asks for 'tool\.search'"):
            run_sync(search("mce"), None, handlers={"tool.serach": lambda req: "fake"})
    assert calls == []


def test_a_misspelling_is_reported_once_when_warnings_are_not_errors() -> None:
    calls.clear()
    with pytest.warns(UnusedHandler, match="misspelling") as caught:
        out = run_sync(search("a").then(lambda _: search("b")), None, handlers={"tool.serch": str})
    assert out == Ok("real results for b", None) and calls == ["a", "b"]
    assert len(caught) == 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_handler_the_run_never_uses_is_reported_at_the_end(backend: str) -> None:
    with pytest.warns(UnusedHandler, match=r"'llm\.chat'.*never used.*asked for 'tool\.search'"):
        out = run_sync(
            search("x"),
            None,
            handlers={"llm.chat": str, "tool.search": lambda req: "fake"},
            backend=backend,  # type: ignore[arg-type]
        )
    assert out == Ok("fake", None)


def test_no_report_for_used_handlers_failed_runs_or_replays() -> None:
    j = Journal()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnusedHandler)
        out = run_sync(effect("k", 1), None, handlers={"k": lambda r: r + 1}, journal=j)
        assert out == Ok(2, None)
        assert run_sync(effect("k", 1), None, handlers={"k": str}, journal=j, mode="replay") == out
        failed = run_sync(fail("early").then(lambda _: effect("k", 1)), None, handlers={"k": str})
        assert isinstance(failed, Err)
