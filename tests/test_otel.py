"""OpenTelemetry spans from trace events, checked with the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason='needs the otel extra: pip install "mce[otel]"')

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mce import Journal, Secret, effect, par, run_sync
from mce.llm import ScriptedModel, chat, say, scripted_handler
from mce.otel import OTelTrace
from mce.tools import tool

SECRET = "sk-live-never-in-a-span-9876"
BACKENDS = ["asyncio", "trio"]


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@tool
def search(query: str) -> list[str]:
    """Search the web."""
    return [f"hit for {query}"]


@tool
def broken(url: str) -> str:
    """Always fails."""
    raise ConnectionError(f"cannot reach {url}")


def by_name(finished: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    out = {s.name: s for s in finished}
    assert len(out) == len(finished), [s.name for s in finished]
    return out


def parent_of(span: ReadableSpan, finished: tuple[ReadableSpan, ...]) -> str | None:
    if span.parent is None:
        return None
    return next(s.name for s in finished if s.context.span_id == span.parent.span_id)


def program(handler: Any) -> Any:
    """A model call, then two named sub-agents in parallel, each calling a tool."""
    agent_a = search("a").named("agent a")
    agent_b = effect("tool.fetch", {"url": "b"}, handler=lambda r: "page").named("agent b")
    return (
        chat(["plan it"], model="gpt-test", temperature=0.5)
        .then(lambda _: par(agent_a, agent_b).named("research"))
        .named("meta")
    )


def handlers() -> dict[str, Any]:
    model = ScriptedModel().queue(say("a plan"))
    return {"llm.chat": scripted_handler(model)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_span_per_run_step_and_effect_parented_by_position(
    spans: tuple[TracerProvider, InMemorySpanExporter], backend: str
) -> None:
    provider, exporter = spans
    with OTelTrace(provider) as trace:
        out = run_sync(program(None), None, handlers=handlers(), trace=trace, backend=backend)
        trace.outcome(out)
    assert out.ok
    finished = exporter.get_finished_spans()
    named = by_name(finished)
    assert set(named) == {
        "mce.run",
        "meta",
        "chat gpt-test",
        "research",
        "agent a",
        "agent b",
        "execute_tool search",
        "execute_tool fetch",
    }
    # one trace, rooted at the run
    assert len({s.context.trace_id for s in finished}) == 1
    assert parent_of(named["mce.run"], finished) is None
    assert parent_of(named["meta"], finished) == "mce.run"
    assert parent_of(named["chat gpt-test"], finished) == "meta"
    assert parent_of(named["research"], finished) == "meta"
    # the two branches are siblings under the step that started them
    assert parent_of(named["agent a"], finished) == "research"
    assert parent_of(named["agent b"], finished) == "research"
    assert parent_of(named["execute_tool search"], finished) == "agent a"
    assert parent_of(named["execute_tool fetch"], finished) == "agent b"
    assert named["mce.run"].status.status_code is StatusCode.OK
    # spans sit inside their parents in time
    for span in finished:
        up = parent_of(span, finished)
        if up is not None:
            assert named[up].start_time <= span.start_time <= span.end_time <= named[up].end_time


def test_llm_spans_follow_the_genai_conventions(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    with OTelTrace(provider) as trace:
        run_sync(program(None), None, handlers=handlers(), trace=trace)
    span = by_name(exporter.get_finished_spans())["chat gpt-test"]
    attributes = dict(span.attributes or {})
    assert span.kind is SpanKind.CLIENT
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-test"
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.response.model"] == "gpt-test"  # the scripted model echoes it
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    tool_span = by_name(exporter.get_finished_spans())["execute_tool search"]
    assert tool_span.attributes is not None
    assert tool_span.attributes["gen_ai.tool.name"] == "search"
    assert tool_span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_span.attributes["mce.position"] == "1/0/0"


def test_replayed_effects_are_spans_too(spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = spans
    journal = Journal()
    run_sync(program(None), None, handlers=handlers(), journal=journal)
    with OTelTrace(provider) as trace:
        assert run_sync(program(None), None, journal=journal, mode="replay", trace=trace).ok
    span = by_name(exporter.get_finished_spans())["chat gpt-test"]
    assert span.attributes is not None
    assert span.attributes["mce.replayed"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)


@pytest.mark.parametrize("backend", BACKENDS)
def test_failures_set_the_span_status(
    spans: tuple[TracerProvider, InMemorySpanExporter], backend: str
) -> None:
    provider, exporter = spans
    with OTelTrace(provider) as trace:
        out = run_sync(
            par(search("x"), broken("http://down").named("fetcher")),
            None,
            trace=trace,
            backend=backend,
        )
        trace.outcome(out)
    assert not out.ok
    named = by_name(exporter.get_finished_spans())
    failed = named["execute_tool broken"]
    assert failed.status.status_code is StatusCode.ERROR
    assert str(failed.status.description).startswith("ToolError")
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == str(failed.status.description).split()[-1]
    assert named["fetcher"].status.status_code is StatusCode.ERROR
    assert named["mce.run"].status.status_code is StatusCode.ERROR
    assert named["mce.run"].attributes is not None
    assert named["mce.run"].attributes["error.type"] == "ToolError"
    # the error's message (which may echo anything) is not copied into the span
    assert "http://down" not in str(failed.status.description)


def test_an_exception_out_of_the_run_ends_every_span_with_an_error(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans

    def bug(_: Any) -> Any:
        raise ZeroDivisionError("bug")

    with pytest.raises(ZeroDivisionError), OTelTrace(provider) as trace:
        run_sync(effect("k", 1, handler=str).named("outer").map(bug), None, trace=trace)
    named = by_name(exporter.get_finished_spans())
    assert named["mce.run"].status.status_code is StatusCode.ERROR
    assert named["mce.run"].attributes is not None
    assert named["mce.run"].attributes["error.type"] == "ZeroDivisionError"
    assert all(s.end_time is not None for s in exporter.get_finished_spans())


def test_secrets_never_become_attributes(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    model = ScriptedModel().queue(say(f"echo {SECRET}"))
    step = chat([f"my key is {SECRET}"], model="gpt-test", api_key=Secret(SECRET)).then(
        lambda _: effect(
            "tool.fetch",
            {"headers": {"Authorization": Secret(f"Bearer {SECRET}")}, "q": SECRET},
            handler=lambda r: SECRET,
        )
    )
    with OTelTrace(provider) as trace:
        assert run_sync(step, None, handlers={"llm.chat": scripted_handler(model)}, trace=trace).ok
    for span in exporter.get_finished_spans():
        everything = repr(dict(span.attributes or {})) + span.name + str(span.status.description)
        everything += repr([dict(e.attributes or {}) for e in span.events])
        assert SECRET not in everything, span.name


def test_trace_events_carry_redacted_requests() -> None:
    events: list[Any] = []
    run_sync(
        effect("k", {"key": Secret(SECRET)}, handler=lambda r: "ok"), None, trace=events.append
    )
    assert all(SECRET not in repr(e) for e in events)
    assert events[-1].request == {"key": "<secret>"} and events[-1].result == "ok"


def test_retries_are_span_events_and_attempts_an_attribute(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    from mce.trace import TraceEvent

    provider, exporter = spans
    with OTelTrace(provider) as trace:
        trace(TraceEvent("effect.start", 1.0, "0", "llm.chat", request={"model": "m"}))
        trace(TraceEvent("effect.retry", 1.5, "0", "llm.chat", ok=False))
        trace(TraceEvent("effect.retry", 2.0, "0", "llm.chat", ok=False))
        trace(TraceEvent("effect.end", 3.0, "0", "llm.chat", ok=True, result={"model": "m"}))
    span = by_name(exporter.get_finished_spans())["chat m"]
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("retry", {"mce.attempt": 1}),
        ("retry", {"mce.attempt": 2}),
    ]
    assert span.attributes is not None and span.attributes["mce.attempts"] == 3
    assert (span.start_time, span.end_time) == (1_000_000_000, 3_000_000_000)
