"""OpenTelemetry spans for a run (extra `otel`: `pip install "mce[otel]"`).

`OTelTrace` is a `trace=` callback: it turns a run's trace events into
spans as they happen - one span for the run, one per `.named` step and one
per effect. A span's parent is the innermost named step still open on the
effect's path through the program (else the run), so the branches of a
parallel block are siblings under the step that started them.

Model calls (`llm.*` effects) follow the OpenTelemetry GenAI semantic
conventions: the span is named `chat {model}` and carries
`gen_ai.operation.name`, `gen_ai.provider.name` (and the older
`gen_ai.system`), `gen_ai.request.model`, `gen_ai.response.model`,
`gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens` and
`gen_ai.response.finish_reasons`. Tool calls (`tool.*` effects) are
`execute_tool {name}` spans with `gen_ai.tool.name`. Every effect span has
`mce.position`, `mce.branch`, `mce.effect.kind` and `mce.replayed`. A failed
effect or step sets the span's status to ERROR with the error's type and
kind (never its message) and `error.type`.

Only those fields become attributes: no request, prompt, reply or argument
value is ever copied into a span, so a secret cannot leak through one.

>>> from opentelemetry.sdk.trace import TracerProvider
>>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
>>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
>>> from mce import effect, run_sync
>>> exporter = InMemorySpanExporter()
>>> provider = TracerProvider()
>>> provider.add_span_processor(SimpleSpanProcessor(exporter))
>>> with OTelTrace(provider) as trace:
...     out = run_sync(effect("tool.search", {"q": "mce"}, handler=str).named("look"), None, trace=trace)
>>> [span.name for span in exporter.get_finished_spans()]
['execute_tool search', 'look', 'mce.run']
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final

try:
    from opentelemetry import trace as _otel
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'mce.otel needs OpenTelemetry: pip install "mce[otel]" '
        "(opentelemetry-api and opentelemetry-sdk)"
    ) from exc

from mce.events import TraceEvent

__all__ = ["OTelTrace"]

_log = logging.getLogger("mce")
_NS: Final = 1_000_000_000


def _ns(seconds: float) -> int:
    return int(seconds * _NS)


def _fields(value: Any) -> Mapping[str, Any]:
    """The fields of a reply or error: an attrs instance, or its journaled (encoded) form."""
    if isinstance(value, Mapping):
        inner = value.get("fields")
        if "$attrs" in value and isinstance(inner, Mapping):
            return inner
        return value
    slots = getattr(type(value), "__attrs_attrs__", None)
    if slots is not None:
        return {a.name: getattr(value, a.name) for a in slots}
    return {}


def _error_type(error: Any) -> tuple[str, str]:
    """(type name, kind) of an error value, without its message."""
    if isinstance(error, Mapping) and "$attrs" in error:
        name = str(error["$attrs"]).rpartition(":")[2] or "error"
    elif isinstance(error, Mapping):
        name = "error"
    else:
        name = type(error).__name__
    kind = _fields(error).get("kind")
    return name, kind if isinstance(kind, str) else ""


def _usage(result: Mapping[str, Any]) -> Mapping[str, Any]:
    return _fields(result.get("usage")) if result.get("usage") is not None else {}


class OTelTrace:
    """A `trace=` callback that records a run as OpenTelemetry spans (see the module docstring).

    Use it as a context manager around the run: entering starts the run's
    span, leaving ends it (with an ERROR status if an exception escaped).
    `tracer_provider` defaults to the global one; `provider` is the value of
    `gen_ai.provider.name` for model calls (mce talks to OpenAI-compatible
    endpoints, hence `"openai"`). Call `outcome(out)` to record how the run
    ended on its span.

    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    >>> from mce import fail, run_sync
    >>> exporter = InMemorySpanExporter()
    >>> provider = TracerProvider()
    >>> provider.add_span_processor(SimpleSpanProcessor(exporter))
    >>> with OTelTrace(provider, name="nightly") as trace:
    ...     trace.outcome(run_sync(fail("no"), None, trace=trace))
    >>> [(s.name, s.status.status_code.name) for s in exporter.get_finished_spans()]
    [('nightly', 'ERROR')]
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        name: str = "mce.run",
        provider: str = "openai",
    ) -> None:
        self._tracer = _otel.get_tracer("mce", tracer_provider=tracer_provider)
        self._name = name
        self._provider = provider
        self._run: Span | None = None
        self._effects: dict[str, Span] = {}
        self._retries: dict[str, int] = {}  # failed attempts reported so far, per effect
        self._steps: dict[str, list[Span]] = {}  # open named steps, innermost last, per branch

    # -- the run span

    def start(self) -> None:
        """Start the run's span (done by `with`, or by the first event)."""
        if self._run is None:
            self._run = self._tracer.start_span(self._name, kind=SpanKind.INTERNAL)

    def outcome(self, out: Any) -> None:
        """Record a run's `Outcome` on the run span: its status, and the error's type."""
        self.start()
        assert self._run is not None
        if getattr(out, "ok", False):
            self._run.set_status(Status(StatusCode.OK))
        else:
            name, kind = _error_type(getattr(out, "error", None))
            self._run.set_attribute("error.type", name)
            self._run.set_status(Status(StatusCode.ERROR, f"{name} {kind}".strip()))

    def close(self) -> None:
        """End the run's span, and any span a cancelled run left open."""
        for span in self._effects.values():
            span.set_status(Status(StatusCode.ERROR, "never finished"))
            span.end()
        for stack in self._steps.values():
            for span in reversed(stack):
                span.set_status(Status(StatusCode.ERROR, "never finished"))
                span.end()
        self._effects.clear()
        self._steps.clear()
        if self._run is not None:
            self._run.end()
            self._run = None

    def __enter__(self) -> OTelTrace:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and self._run is not None:
            self._run.set_attribute("error.type", type(exc).__name__)
            self._run.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        self.close()

    # -- events

    def _parent(self, branch: str) -> Span:
        """The innermost open named step on `branch`'s path, else the run."""
        while True:
            stack = self._steps.get(branch)
            if stack:
                return stack[-1]
            if not branch:
                assert self._run is not None
                return self._run
            longest = ""
            for other in self._steps:
                if other and branch.startswith(other + "/") and len(other) > len(longest):
                    longest = other
            branch = longest

    def _start(self, name: str, event: TraceEvent, kind: SpanKind) -> Span:
        parent = _otel.set_span_in_context(self._parent(event.branch))
        return self._tracer.start_span(name, context=parent, kind=kind, start_time=_ns(event.time))

    def __call__(self, event: TraceEvent) -> None:
        self.start()
        if event.event == "step.start":
            span = self._start(event.name, event, SpanKind.INTERNAL)
            span.set_attribute("mce.branch", event.branch)
            self._steps.setdefault(event.branch, []).append(span)
        elif event.event == "step.end":
            stack = self._steps.get(event.branch)
            if stack:
                span = stack.pop()
                if event.ok is False:
                    span.set_status(Status(StatusCode.ERROR, "the step failed"))
                span.end(end_time=_ns(event.time))
        elif event.event == "effect.start":
            self._effects[event.position] = self._effect_span(event)
        elif event.event == "effect.retry":
            if event.position in self._effects:
                self._retries[event.position] = self._retries.get(event.position, 0) + 1
                self._effects[event.position].add_event(
                    "retry",
                    {"mce.attempt": self._retries[event.position]},
                    timestamp=_ns(event.time),
                )
        elif event.event == "effect.end":
            if event.position in self._effects:
                span = self._effects.pop(event.position)
            else:  # an end without a start (a trace attached mid-run)
                span = self._effect_span(event)
            self._finish(span, event)
        else:
            _log.debug("mce.otel: ignoring trace event %r", event.event)

    def _effect_span(self, event: TraceEvent) -> Span:
        kind = event.name
        request = _fields(event.request)
        if kind.startswith("llm."):
            operation = kind[len("llm.") :]
            model = request.get("model")
            name = f"{operation} {model}" if isinstance(model, str) else operation
            span = self._start(name, event, SpanKind.CLIENT)
            span.set_attribute("gen_ai.operation.name", operation)
            span.set_attribute("gen_ai.provider.name", self._provider)
            span.set_attribute("gen_ai.system", self._provider)
            if isinstance(model, str):
                span.set_attribute("gen_ai.request.model", model)
            for key in ("temperature", "max_tokens", "top_p", "seed"):
                value = request.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    span.set_attribute(f"gen_ai.request.{key}", value)
        elif kind.startswith("tool."):
            tool = kind[len("tool.") :]
            span = self._start(f"execute_tool {tool}", event, SpanKind.INTERNAL)
            span.set_attribute("gen_ai.operation.name", "execute_tool")
            span.set_attribute("gen_ai.tool.name", tool)
        else:
            span = self._start(kind, event, SpanKind.INTERNAL)
        span.set_attribute("mce.effect.kind", kind)
        span.set_attribute("mce.position", event.position)
        span.set_attribute("mce.branch", event.branch)
        span.set_attribute("mce.replayed", event.replayed)
        return span

    def _finish(self, span: Span, event: TraceEvent) -> None:
        result = _fields(event.result)
        attempts = result.get("attempts")
        if not isinstance(attempts, int):
            attempts = self._retries.get(event.position, 0) + 1
        self._retries.pop(event.position, None)
        if attempts > 1:
            span.set_attribute("mce.attempts", attempts)
        if event.ok is False:
            name, kind = _error_type(event.result)
            span.set_attribute("error.type", kind or name)
            span.set_status(Status(StatusCode.ERROR, f"{name} {kind}".strip()))
        elif event.name.startswith("llm."):
            model = result.get("model")
            if isinstance(model, str):
                span.set_attribute("gen_ai.response.model", model)
            usage = _usage(result)
            for theirs, ours in (
                ("prompt_tokens", "gen_ai.usage.input_tokens"),
                ("completion_tokens", "gen_ai.usage.output_tokens"),
            ):
                count = usage.get(theirs)
                if isinstance(count, int):
                    span.set_attribute(ours, count)
            reason = result.get("finish_reason")
            if isinstance(reason, str):
                span.set_attribute("gen_ai.response.finish_reasons", (reason,))
        span.end(end_time=_ns(event.time))
