"""Outcomes: equality by value, conversion to and from returns.Result."""

from __future__ import annotations

from returns.result import Failure, Success

from mce import Err, Ok, Outcome, fail, pure, run_sync


def test_equality_by_value_and_err_state_is_diagnostic() -> None:
    assert Ok(1, "s") == Ok(1, "s")
    assert Ok(1, "s") != Ok(1, "t")
    assert Err("e", 1) == Err("e", 2)
    assert Err("e", 1) != Err("f", 1)
    assert Ok(1, None) != Err(1, None)
    assert hash(Ok(1, "s")) == hash(Ok(1, "s"))


def test_round_trip_through_returns() -> None:
    ok = run_sync(pure(3), "s")
    assert ok.to_result() == Success((3, "s"))
    assert Outcome.from_result(ok.to_result()) == ok
    err = run_sync(fail("x"), "s")
    assert err.to_result() == Failure("x")
    back = Outcome.from_result(err.to_result(), state="s")
    assert back == err and back.state == "s"


def test_ok_flag() -> None:
    assert Ok(1, None).ok and not Err(1).ok
