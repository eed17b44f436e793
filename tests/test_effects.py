"""Effects: handlers, typed errors, built-ins, secrets, positions."""

from __future__ import annotations

import json
import uuid as uuidlib
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mce import (
    EffectError,
    EffectFailed,
    Err,
    Journal,
    MissingHandler,
    Ok,
    Secret,
    effect,
    fail,
    gather,
    now,
    par,
    pure,
    random,
    run,
    share,
    sleep,
    traverse,
    uuid,
)

pytestmark = pytest.mark.anyio


async def test_sync_and_async_handlers_and_precedence() -> None:
    async def slow_double(req: dict[str, int]) -> int:
        await anyio.sleep(0)
        return req["x"] * 2

    prog = par(effect("double", {"x": 2}), effect("inc", 5, handler=lambda n: n + 1))
    out = await run(prog, None, handlers={"double": slow_double})
    assert out == Ok((4, 6), None)
    # handlers= overrides the effect's own handler
    out = await run(effect("inc", 5, handler=lambda n: n + 1), None, handlers={"inc": lambda n: -n})
    assert out == Ok(-5, None)


async def test_building_calls_no_handler() -> None:
    calls: list[Any] = []
    prog = effect("x", 1, handler=calls.append).then(lambda _: effect("x", 2, handler=calls.append))
    assert calls == []
    await run(prog, None)
    assert calls == [1, 2]


async def test_handler_exception_is_an_effect_error_value() -> None:
    def broken(req: Any) -> None:
        raise ConnectionError("refused")

    out = await run(pure(0).then(lambda _: effect("fetch", {"u": 1}, handler=broken)), None)
    assert out == Err(EffectError("fetch", "0", "refused", "ConnectionError"))
    recovered = effect("fetch", {}, handler=broken).recover(lambda e: pure(e.exception_type))
    assert await run(recovered, None) == Ok("ConnectionError", None)


async def test_effect_failed_carries_a_typed_error() -> None:
    def limited(req: Any) -> None:
        raise EffectFailed(("rate_limited", 30))

    assert await run(effect("api", None, handler=limited), None) == Err(("rate_limited", 30))


async def test_missing_handler_is_a_bug_naming_kind_and_position() -> None:
    with pytest.raises(
        MissingHandler, match=r"no handler for effect 'search' at position 0/0/0"
    ) as info:
        await run(pure(1).then(lambda _: par(effect("search", "q"), pure(2))), None)
    assert "the effect 'search' at branch 0" in info.value.__notes__[0]


async def test_unjournalable_request_is_refused_when_built() -> None:
    with pytest.raises(TypeError, match=r"request\['x'\]: cannot journal a object"):
        effect("k", {"x": object()})
    with pytest.raises(ValueError, match="non-empty string kind"):
        effect("", 1)


async def test_builtins_now_sleep_uuid() -> None:
    out = await run(par(now(), sleep(0.001), uuid()), None)
    assert isinstance(out, Ok)
    t, nothing, u = out.value
    assert t > 1.7e9 and nothing is None
    assert uuidlib.UUID(u).version == 4
    with pytest.raises(ValueError, match="seconds >= 0"):
        sleep(-1)


async def test_random_is_seeded_per_position_not_per_completion_order() -> None:
    async def jitter(req: float) -> None:
        await anyio.sleep(req)

    def branch(delay: float) -> Any:
        return effect("wait", delay, handler=jitter).then(lambda _: random())

    a = await run(gather([branch(0.003), branch(0.0), branch(0.001)]), None, seed=42)
    b = await run(gather([branch(0.0), branch(0.003), branch(0.002)]), None, seed=42)
    c = await run(gather([branch(0.0), branch(0.0), branch(0.0)]), None, seed=43)
    assert isinstance(a, Ok) and isinstance(b, Ok) and isinstance(c, Ok)
    assert a.value == b.value != c.value
    assert len(set(a.value)) == 3 and all(0 <= x < 1 for x in a.value)


async def test_secrets_reach_handlers_but_never_the_journal(tmp_path: Path) -> None:
    seen: list[Any] = []
    key = "sk-live-0123456789abcdef"
    request = {"q": "weather", "headers": {"authorization": Secret(f"Bearer {key}")}}
    path = tmp_path / "run.jsonl"
    out = await run(effect("api", request, handler=seen.append), None, journal=path)
    assert out.ok
    assert seen == [{"q": "weather", "headers": {"authorization": f"Bearer {key}"}}]
    text = path.read_text()
    assert key not in text and "<secret>" in text
    # a different secret does not change the fingerprint: the replay matches
    other = {"q": "weather", "headers": {"authorization": Secret("Bearer other")}}
    assert (await run(effect("api", other), None, journal=path, mode="replay")).ok


def _positions(journal: Journal) -> list[str]:
    return sorted(e["pos"] for e in journal.load()[1])


async def test_positions_follow_program_structure() -> None:
    e = lambda name: effect("k", name, handler=lambda r: r)  # noqa: E731
    prog = (
        e("a")
        .then(
            lambda _: par(
                e("b"), e("c").then(lambda _: e("d")), traverse([1, 2], lambda i: e(f"t{i}"))
            )
        )
        .then(lambda _: e("z"))
    )
    j = Journal()
    await run(prog, None, journal=j)
    assert _positions(j) == ["0", "1/0/0", "1/1/0", "1/1/1", "1/2/0/0/0", "1/2/0/1/0", "2"]
    by_pos = {x["pos"]: x for x in j.load()[1]}
    assert by_pos["1/1/1"]["req"] == "d" and by_pos["1/1/1"]["branch"] == "1/1"


async def test_recursion_and_loops_number_effects_in_order() -> None:
    def loop(n: int) -> Any:
        if n == 0:
            return pure("done")
        return effect("tick", n, handler=lambda r: r).then(lambda _: loop(n - 1))

    j = Journal()
    await run(loop(3), None, journal=j)
    assert [(e["pos"], e["req"]) for e in j.load()[1]] == [("0", 3), ("1", 2), ("2", 1)]


async def test_shared_steps_are_positioned_by_key() -> None:
    calls: list[str] = []
    fetch = share(effect("fetch", "doc", handler=lambda r: calls.append(r) or r.upper()), key="doc")
    j = Journal()
    prog = par(fetch.map(len), fetch.map(str.lower))
    assert await run(prog, None, journal=j) == Ok((3, "doc"), None)
    assert calls == ["doc"] and _positions(j) == ["s:doc/0"]


async def test_journal_records_errors_and_times() -> None:
    j = Journal()
    out = await run(effect("bad", 1, handler=lambda r: 1 / 0), None, journal=j)
    assert isinstance(out, Err) and out.error.exception_type == "ZeroDivisionError"
    header, entries = j.load()
    assert header is not None and "seed" in header
    (entry,) = entries
    assert "err" in entry and entry["t1"] >= entry["t0"] and "run" in header
    json.dumps(entries)  # plain JSON


async def test_fail_short_circuits_before_effects() -> None:
    calls: list[int] = []
    prog = fail("stop").then(lambda _: effect("x", 1, handler=calls.append))
    assert await run(prog, None) == Err("stop")
    assert calls == []


# ------------------------------------------------------------- fingerprints


def _by_definition(request: Any) -> str:
    """The fingerprint as docs/journal-format.md defines it, with json.dumps per call."""
    import hashlib

    from mce._fingerprint import _fingerprint_default

    text = json.dumps(
        request,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_fingerprint_default,
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.builds(Secret, st.text()),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(_json_values)
def test_a_fingerprint_is_the_hash_of_the_sorted_json_text(request: Any) -> None:
    from mce.effects import fingerprint

    assert fingerprint(request) == _by_definition(request)


def test_a_request_that_contains_itself_is_refused_when_the_effect_is_built() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        effect("k", {"items": loop})
