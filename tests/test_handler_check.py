"""Handlers given to `run` that the run never asks for are reported; a misspelling at once."""

from __future__ import annotations

import warnings
from typing import Any

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
def test_a_handler_for_a_kind_that_does_not_exist_is_reported_at_the_end(backend: str) -> None:
    with pytest.warns(
        UnusedHandler, match=r"'tool\.search_web'.*no effect of that kind exists.*'tool\.search'"
    ):
        out = run_sync(
            search("x"),
            None,
            handlers={"tool.search_web": str, "tool.search": lambda req: "fake"},
            backend=backend,  # type: ignore[arg-type]
        )
    assert out == Ok("fake", None)


def test_handlers_for_real_kinds_a_run_does_not_use_are_not_reported() -> None:
    @tool
    def other(q: str) -> str:
        return q

    with warnings.catch_warnings():
        warnings.simplefilter("error", UnusedHandler)
        shared = {"tool.search": lambda req: "fake", "tool.other": str, "llm.chat": str}
        assert run_sync(search("x"), None, handlers=shared) == Ok("fake", None)


def test_no_report_for_used_handlers_failed_runs_or_replays() -> None:
    j = Journal()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnusedHandler)
        out = run_sync(effect("k", 1), None, handlers={"k": lambda r: r + 1}, journal=j)
        assert out == Ok(2, None)
        assert run_sync(effect("k", 1), None, handlers={"k": str}, journal=j, mode="replay") == out
        failed = run_sync(fail("early").then(lambda _: effect("k", 1)), None, handlers={"k": str})
        assert isinstance(failed, Err)


def test_revealed_secrets_are_scrubbed_from_handler_errors(tmp_path: Any) -> None:
    from mce import EffectFailed, Secret

    token = "tok-9d8c7b6a5f4e"

    def leaky(request: dict[str, Any]) -> Any:
        raise PermissionError(f"denied: token {request['token']} has expired")

    def typed(request: dict[str, Any]) -> Any:
        raise EffectFailed({"code": 401, "detail": f"bad token {request['token']}"})

    path = tmp_path / "j.jsonl"
    prog = effect("api", {"token": Secret(token)}).recover(
        lambda e: effect("api2", {"token": Secret(token)}).map(lambda v: (e, v))
    )
    out = run_sync(prog, None, handlers={"api": leaky, "api2": typed}, journal=path)
    assert isinstance(out, Err)
    assert out.error == {"code": 401, "detail": "bad token <secret>"}
    text = path.read_text()
    assert token not in text and "denied: token <secret> has expired" in text


def test_a_tool_error_quoting_a_secret_argument_is_scrubbed(tmp_path: Any) -> None:
    from mce import Secret

    @tool
    def login(user: str, password: str) -> str:
        raise PermissionError(f"wrong password {password} for {user}")

    path = tmp_path / "j.jsonl"
    out = run_sync(login("ana", Secret("hunter2-xyz")), None, journal=path)
    assert isinstance(out, Err) and out.error.message == "wrong password <secret> for ana"
    assert "hunter2-xyz" not in path.read_text()
