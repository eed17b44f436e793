"""Schemas and validation on pydantic: every supported type as a tool parameter,
descriptions, defaults, strict structured output, every bad field reported,
typed results through a file journal, Secrets for str parameters, positional-only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import attrs
import pytest
from pydantic import BaseModel, ConfigDict, Field

from mce import Err, FileJournal, Ok, Secret, gather, run_sync
from mce.llm import LLMError, ScriptedModel, json_reply, scripted_handler, structured
from mce.plan import validate as validate_plan
from mce.schema import (
    FieldError,
    FunctionSchema,
    Schema,
    SchemaError,
    parse_docstring,
    response_format,
)
from mce.tools import Tool, ToolError, tool

# ----------------------------------------------------------------------------- the types


class Address(BaseModel):
    """Where to deliver."""

    street: str
    zip: Annotated[str, Field(pattern=r"^\d{4}-\d{3}$", description="Postal code")]
    floor: int = 0


@dataclasses.dataclass(frozen=True)
class Window:
    start: dt.datetime
    hours: float = 1.0


@attrs.frozen
class Line:
    sku: str
    qty: int = 1


class Contact(TypedDict):
    email: str
    phone: NotRequired[str]


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


@attrs.frozen
class Node:
    name: str
    children: tuple[Node, ...] = ()


U1 = uuid.UUID("12345678-1234-5678-1234-567812345678")

# (type, schema snapshot, good JSON, its typed value, bad JSON, the errors it gives)
CASES: list[tuple[str, Any, dict[str, Any], Any, Any, Any, list[str]]] = [
    (
        "pydantic model",
        Address,
        {
            "type": "object",
            "title": "Address",
            "description": "Where to deliver.",
            "properties": {
                "street": {"type": "string"},
                "zip": {
                    "type": "string",
                    "description": "Postal code",
                    "pattern": r"^\d{4}-\d{3}$",
                },
                "floor": {"type": "integer", "default": 0},
            },
            "required": ["street", "zip"],
        },
        {"street": "Rua A", "zip": "1000-001"},
        Address(street="Rua A", zip="1000-001"),
        {"street": 5, "zip": "1000", "floor": "two"},
        [
            "x.street: expected a string, got 5",
            "x.zip: String should match pattern",
            "x.floor: expected an integer, got 'two'",
        ],
    ),
    (
        "dataclass",
        Window,
        {
            "type": "object",
            "title": "Window",
            "additionalProperties": False,
            "properties": {
                "start": {"type": "string", "format": "date-time"},
                "hours": {"type": "number", "default": 1.0},
            },
            "required": ["start"],
        },
        {"start": "2026-11-25T10:00:00Z"},
        Window(dt.datetime(2026, 11, 25, 10, tzinfo=dt.UTC)),
        {"start": "noon", "hours": "long", "minutes": 3},
        [
            "x.start: should be a valid datetime",
            "x.hours: expected a number, got 'long'",
            "x.minutes: unexpected field",
        ],
    ),
    (
        "attrs class",
        Line,
        {
            "type": "object",
            "title": "Line",
            "additionalProperties": False,
            "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "default": 1}},
            "required": ["sku"],
        },
        {"sku": "A1"},
        Line("A1"),
        {"qty": 1.5},
        ["x.sku: missing required field", "x.qty: expected an integer, got 1.5"],
    ),
    (
        "TypedDict",
        Contact,
        {
            "type": "object",
            "title": "Contact",
            "additionalProperties": False,
            "properties": {"email": {"type": "string"}, "phone": {"type": "string"}},
            "required": ["email"],
        },
        {"email": "a@b.pt", "phone": "+351"},
        {"email": "a@b.pt", "phone": "+351"},
        {"phone": 351, "fax": "x"},
        [
            "x.email: missing required field",
            "x.phone: expected a string, got 351",
            "x.fax: unexpected field",
        ],
    ),
    (
        "Enum",
        Priority,
        {"type": "string", "title": "Priority", "enum": ["low", "high"]},
        "high",
        Priority.HIGH,
        "urgent",
        ["x: expected one of 'low' or 'high', got 'urgent'"],
    ),
    (
        "Literal",
        Literal["json", "text"],
        {"type": "string", "enum": ["json", "text"]},
        "text",
        "text",
        "xml",
        ["x: expected one of 'json' or 'text', got 'xml'"],
    ),
    (
        "datetime",
        dt.datetime,
        {"type": "string", "format": "date-time"},
        "2026-11-25T10:30:00",
        dt.datetime(2026, 11, 25, 10, 30),
        "yesterday",
        ["x: should be a valid datetime"],
    ),
    (
        "date",
        dt.date,
        {"type": "string", "format": "date"},
        "2026-11-25",
        dt.date(2026, 11, 25),
        "2026-13-01",
        ["x: should be a valid date"],
    ),
    (
        "UUID",
        uuid.UUID,
        {"type": "string", "format": "uuid"},
        str(U1),
        U1,
        "not-a-uuid",
        ["x: should be a valid UUID"],
    ),
    (
        "set",
        set[int],
        {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
        [3, 1, 3],
        {1, 3},
        [1, "b", "c"],
        ["x[1]: expected an integer, got 'b'", "x[2]: expected an integer, got 'c'"],
    ),
    (
        "Annotated Field",
        Annotated[int, Field(ge=1, le=5, description="Stars")],
        {"type": "integer", "description": "Stars", "maximum": 5, "minimum": 1},
        4,
        4,
        9,
        ["x: should be less than or equal to 5, got 9"],
    ),
]
IDS = [c[0] for c in CASES]


def identity_tool(tp: Any) -> Tool:
    """A tool taking one parameter `x` of type `tp` and returning it."""

    def echo(x: Any) -> Any:
        "Return x."
        return x

    echo.__annotations__ = {"x": tp, "return": tp}
    return tool(echo)


@pytest.mark.parametrize(
    ("label", "tp", "snapshot", "good", "typed", "bad", "errors"), CASES, ids=IDS
)
def test_every_type_as_a_tool_parameter(
    label: str,
    tp: Any,
    snapshot: dict[str, Any],
    good: Any,
    typed: Any,
    bad: Any,
    errors: list[str],
) -> None:
    t = identity_tool(tp)
    assert t.parameters == {
        "type": "object",
        "properties": {"x": snapshot},
        "required": ["x"],
        "additionalProperties": False,
    }
    assert run_sync(t.call({"x": good}), None) == Ok(typed, None)
    out = run_sync(t.call({"x": bad}), None)
    assert isinstance(out, Err) and isinstance(out.error, ToolError)
    assert out.error.kind == "invalid_arguments"
    # every bad field, with its path (pydantic's wording may grow: compare the start)
    got = [str(e) for e in out.error.errors]
    assert len(got) == len(errors)
    for g, e in zip(got, errors, strict=True):
        assert g.startswith(e), (g, e)
        assert g in str(out.error)  # and each reaches the message a model reads


def test_python_callers_pass_typed_values_of_every_type() -> None:
    @tool
    def book(
        where: Address, when: Window, lines: list[Line], who: Contact, p: Priority, day: dt.date
    ) -> str:
        "Book a delivery."
        return f"{where.street} {when.hours} {lines[0].qty} {who['email']} {p.value} {day}"

    out = run_sync(
        book(
            Address(street="R", zip="1000-001"),
            Window(dt.datetime(2026, 1, 1)),
            [Line("A", 2)],
            {"email": "e@x"},
            Priority.LOW,
            dt.date(2026, 1, 2),
        ),
        None,
    )
    assert out == Ok("R 1.0 2 e@x low 2026-01-02", None)


def test_all_errors_of_a_nested_record_are_reported_with_paths() -> None:
    @tool
    def order(lines: list[Line], to: Address) -> int:
        "Place an order."
        return len(lines)

    out = run_sync(
        order.call({"lines": [{"sku": "a"}, {"sku": 1, "qty": "x"}, {}], "to": {"zip": "9"}}), None
    )
    assert isinstance(out, Err)
    assert [e.path for e in out.error.errors] == [
        "lines[1].sku",
        "lines[1].qty",
        "lines[2].sku",
        "to.street",
        "to.zip",
    ]
    assert out.error.path is None and out.error.message.startswith("5 invalid fields: ")


def test_recursive_types() -> None:
    s = Schema(Node)
    schema = s.json_schema()
    assert schema["type"] == "object" and schema["title"] == "Node"
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert s.validate({"name": "a", "children": [{"name": "b"}]}) == Node("a", (Node("b"),))
    with pytest.raises(SchemaError) as caught:
        s.validate({"name": "a", "children": [{"name": 1}, {"nom": "c"}]})
    assert [e.path for e in caught.value.errors] == [
        "children[0].name",
        "children[1].name",
        "children[1].nom",
    ]


def _positive(instance: Any, attribute: Any, value: int) -> None:
    if value <= 0:
        raise TypeError(f"{attribute.name} must be positive")


@attrs.frozen
class Checked:
    n: int = attrs.field(validator=_positive)
    label: str = attrs.field(converter=str.upper, default="x")
    twice: int = attrs.field(default=attrs.Factory(lambda self: self.n * 2, takes_self=True))


@dataclasses.dataclass
class Range:
    lo: int
    hi: int

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise ValueError("lo > hi")


def test_a_class_that_rejects_checked_values_is_a_field_error_not_a_crash() -> None:
    s = Schema(list[Checked])
    assert s.validate([{"n": 2, "label": "a"}]) == [Checked(2, "A", 4)]
    assert s.json_schema()["items"]["required"] == ["n"]
    with pytest.raises(SchemaError) as caught:
        s.validate([{"n": 1}, {"n": -1}])
    assert str(caught.value) == "[1]: Checked rejected these values: n must be positive"
    with pytest.raises(SchemaError, match=r"^r: Range rejected these values: lo > hi$"):
        Schema(Range).validate({"lo": 2, "hi": 1}, "r")
    assert Schema(Range).dump(Range(1, 2)) == {"lo": 1, "hi": 2}


class Opaque:
    pass


def test_types_pydantic_cannot_describe_are_a_clear_error_on_first_use() -> None:
    # The schema is built on first use (so that defining tools needs no pydantic).
    @tool
    def use(thing: Opaque) -> None: ...

    with pytest.raises(TypeError, match="tool 'use': cannot derive a JSON schema"):
        use.schema()
    with pytest.raises(TypeError, match="tool 'use': cannot derive a JSON schema"):
        run_sync(use.call({"thing": 1}), None)

    @tool
    def make() -> Opaque: ...

    with pytest.raises(TypeError, match="tool 'make': return type: cannot derive a JSON schema"):
        run_sync(make(), None)


# ----------------------------------------------------------------------------- descriptions


def test_descriptions_come_from_field_and_docstring_args() -> None:
    @tool
    def search(
        query: str,
        limit: Annotated[int, Field(ge=1, description="From Field.")] = 10,
        since: dt.date | None = None,
    ) -> list[str]:
        """Search the catalogue.

        More detail the model does not need.

        Args:
            query: Words to look for,
                over two lines.
            limit: Ignored: Field's description wins.
            since (date): Only items added after this day.

        Returns:
            The matching names.
        """
        return []

    assert search.description == "Search the catalogue."
    assert search.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "Words to look for, over two lines."},
            "limit": {"type": "integer", "description": "From Field.", "minimum": 1, "default": 10},
            "since": {
                "anyOf": [{"type": "string", "format": "date"}, {"type": "null"}],
                "description": "Only items added after this day.",
                "default": None,
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }


def test_sphinx_docstrings_and_a_summary_that_runs_into_args() -> None:
    assert parse_docstring(":param q: The query.\n:param int n: How many.") == (
        "",
        {"q": "The query.", "n": "How many."},
    )
    assert parse_docstring("Find things.\nArgs:\n    q: The query.\n") == (
        "Find things.",
        {"q": "The query."},
    )


def test_defaults_appear_in_the_schema_and_apply_when_left_out() -> None:
    seen = []

    @tool
    def fetch(url: str, retries: int = 3, mode: Priority = Priority.LOW, tags: tuple[str, ...] = ("a",),
              opaque: object = object()) -> None:  # fmt: skip
        "Fetch."
        seen.append((retries, mode, tags))

    props = fetch.parameters["properties"]
    assert props["retries"]["default"] == 3
    assert props["mode"]["default"] == "low"
    assert props["tags"]["default"] == ["a"]
    assert "default" not in props["opaque"]  # a default JSON cannot say is left out
    assert run_sync(fetch.call({"url": "u"}), None).ok
    assert seen == [(3, Priority.LOW, ("a",))]


# ----------------------------------------------------------------------------- structured output


@attrs.frozen
class Trip:
    city: str
    days: int
    stops: list[Line]
    note: str | None = None


def _objects(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for v in node.values():
            found.extend(_objects(v))
    elif isinstance(node, list):
        for v in node:
            found.extend(_objects(v))
    return found


def test_structured_output_request_is_strict() -> None:
    model = ScriptedModel().queue(
        json_reply({"city": "Porto", "days": 2, "stops": [], "note": None})
    )
    out = run_sync(
        structured(["Plan a trip"], Trip), None, handlers={"llm.chat": scripted_handler(model)}
    )
    assert out == Ok(Trip("Porto", 2, []), None)
    fmt = model.requests[0]["response_format"]
    assert fmt == {
        "type": "json_schema",
        "json_schema": {
            "name": "Trip",
            "strict": True,
            "schema": {
                "type": "object",
                "title": "Trip",
                "additionalProperties": False,
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "stops": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "title": "Line",
                            "additionalProperties": False,
                            "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
                            "required": ["sku", "qty"],
                        },
                    },
                    "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
                "required": ["city", "days", "stops", "note"],
            },
        },
    }
    for obj in _objects(fmt["json_schema"]["schema"]):
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])


class Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")
    tags: set[str]
    name: Annotated[str, Field(min_length=2)] = "x"


@pytest.mark.parametrize(
    ("into", "why"),
    [
        (dict[str, int], "the value is an object with free-form keys"),
        (list[Line], "the top level is not an object"),
        (Annotated[Trip, "x"], None),
    ],
)
def test_strict_falls_back_when_the_type_cannot_be_strict(into: Any, why: str | None) -> None:
    fmt = response_format(into)["json_schema"]
    assert ("strict" in fmt) is (why is None)
    assert Schema(into).not_strict_because() == why


def test_strict_fallback_for_free_form_fields_and_dropped_keywords() -> None:
    @attrs.frozen
    class Scores:
        by_name: dict[str, int]

    assert Schema(Scores).not_strict_because() == "by_name is an object with free-form keys"
    assert "strict" not in response_format(Scores)["json_schema"]
    with pytest.raises(TypeError, match="free-form keys"):
        response_format(Scores, strict=True)
    assert "strict" not in response_format(Trip, strict=False)["json_schema"]
    # keywords strict mode rejects are left out; validation still checks them
    strict = Schema(Loose).strict_json_schema()
    assert strict is not None
    assert strict["properties"] == {
        "tags": {"type": "array", "items": {"type": "string"}},
        "name": {"type": "string"},
    }
    with pytest.raises(SchemaError, match="name: String should have at least 2 characters"):
        Schema(Loose).validate({"tags": [], "name": "a"})


def test_a_structured_repair_hears_of_every_bad_field() -> None:
    model = ScriptedModel().queue(
        json_reply({"city": 1, "days": "two", "stops": [{"qty": 1}]}),
        json_reply({"city": 1, "days": "two", "stops": [{"qty": 1}]}),
    )
    out = run_sync(
        structured(["Plan"], Trip, repairs=1), None, handlers={"llm.chat": scripted_handler(model)}
    )
    assert isinstance(out, Err) and isinstance(out.error, LLMError)
    assert out.error.kind == "invalid_output"
    for path in ["city", "days", "stops[0].sku"]:
        assert f"{path}: " in out.error.message
    repair = model.requests[1]["messages"][-1]["content"]
    for path in ["city", "days", "stops[0].sku"]:
        assert f"{path}: " in repair


def test_structured_rejects_hostile_nesting_with_a_typed_error() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    model = ScriptedModel().queue(deep)
    out = run_sync(
        structured(["x"], list[Any], repairs=0),
        None,
        handlers={"llm.chat": scripted_handler(model)},
    )
    assert isinstance(out, Err) and out.error.kind == "invalid_output"


# ----------------------------------------------------------------------------- journal round trip


class Receipt(BaseModel):
    id: uuid.UUID
    when: dt.date
    total: float
    priority: Priority


@dataclasses.dataclass(frozen=True)
class Slot:
    day: dt.date
    hours: float


@tool
def make_receipt(n: int) -> Receipt:
    "A receipt."
    return Receipt(id=U1, when=dt.date(2026, 1, n), total=n * 1.5, priority=Priority.HIGH)


@tool
def make_slot(n: int) -> Slot:
    "A slot."
    return Slot(dt.date(2026, 2, n), 2.0)


@tool
def make_lines(n: int) -> tuple[Line, ...]:
    "Lines."
    return tuple(Line(f"s{i}", i) for i in range(n))


@tool
def make_days(n: int) -> set[dt.date]:
    "Days."
    return {dt.date(2026, 3, i + 1) for i in range(n)}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_typed_results_round_trip_through_a_file_journal(tmp_path: Path, backend: Any) -> None:
    prog = gather([make_receipt(3), make_slot(4), make_lines(2), make_days(2)])
    path = tmp_path / "run.jsonl"
    live = run_sync(prog, None, journal=FileJournal(path), backend=backend)
    expected = (
        Receipt(id=U1, when=dt.date(2026, 1, 3), total=4.5, priority=Priority.HIGH),
        Slot(dt.date(2026, 2, 4), 2.0),
        (Line("s0", 0), Line("s1", 1)),
        {dt.date(2026, 3, 1), dt.date(2026, 3, 2)},
    )
    assert live == Ok(expected, None)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    recorded = {r["kind"]: r["ok"] for r in records if "ok" in r}
    assert recorded["tool.make_receipt"] == {
        "id": str(U1),
        "when": "2026-01-03",
        "total": 4.5,
        "priority": "high",
    }
    replayed = run_sync(prog, None, journal=FileJournal(path), mode="replay", backend=backend)
    assert replayed == live
    assert [type(v) for v in replayed.value] == [Receipt, Slot, tuple, set]
    assert replayed.report.live_calls == 0


def test_a_result_that_is_not_the_declared_type_is_a_tool_error() -> None:
    @tool
    def count(s: str) -> int:
        "Count."
        return "many"  # type: ignore[return-value]

    out = run_sync(count("x"), None)
    assert isinstance(out, Err) and out.error.kind == "invalid_result"
    assert "expected a value of int, got 'many'" in out.error.message
    # a test's fake handler is held to the declared type as well
    fake = run_sync(count("x"), None, handlers={"tool.count": lambda args: "7"})
    assert fake == Ok(7, None)
    bad = run_sync(count("x"), None, handlers={"tool.count": lambda args: "lots"})
    assert isinstance(bad, Err) and bad.error.kind == "invalid_result"


def test_a_fake_handler_may_return_instances_of_the_declared_type() -> None:
    fakes = {
        "tool.make_slot": lambda args: Slot(dt.date(2026, 5, 1), 3.0),
        "tool.make_lines": lambda args: [Line("f", 1)],
        "tool.make_receipt": lambda args: {
            "id": str(U1),
            "when": "2026-05-02",
            "total": 1,
            "priority": "low",
        },
    }
    out = run_sync(gather([make_slot(1), make_lines(1), make_receipt(1)]), None, handlers=fakes)
    assert out == Ok(
        (
            Slot(dt.date(2026, 5, 1), 3.0),
            (Line("f", 1),),
            Receipt(id=U1, when=dt.date(2026, 5, 2), total=1.0, priority=Priority.LOW),
        ),
        None,
    )
    assert Schema(list[Line]).validate([Line("a"), Line("b", 2)]) == [Line("a"), Line("b", 2)]

    def count_lines(lines: list[Line]) -> int:
        return len(lines)

    assert FunctionSchema(count_lines).validate({"lines": [Line("a")]}) == {"lines": [Line("a")]}


# ----------------------------------------------------------------------------- Secret for str


def test_a_secret_is_accepted_for_a_str_parameter_and_never_journaled(tmp_path: Path) -> None:
    seen = []

    @tool
    def login(user: str, token: str, scopes: list[str]) -> str:
        "Log in."
        seen.append(token)
        return f"hello {user}"

    key = "sk-very-secret-123"
    prog = login("ana", Secret(key), [Secret("read")])
    path = tmp_path / "run.jsonl"
    assert run_sync(prog, None, journal=FileJournal(path)) == Ok("hello ana", None)
    assert seen == [key]
    text = path.read_text()
    assert key not in text and "read" not in text and "<secret>" in text
    again = run_sync(
        login("ana", Secret(key), [Secret("read")]), None, journal=FileJournal(path), mode="replay"
    )
    assert again == Ok("hello ana", None) and seen == [key]


def test_a_secret_of_the_wrong_type_fails_without_showing_its_value() -> None:
    @tool
    def limit(n: int, key: str) -> int:
        "Limit."
        return n

    out = run_sync(limit.call({"n": Secret("sk-not-a-number"), "key": Secret(5)}), None)
    assert isinstance(out, Err) and out.error.kind == "invalid_arguments"
    assert [e.path for e in out.error.errors] == ["n", "key"]
    assert "sk-not-a-number" not in repr(out.error)


# ----------------------------------------------------------------------------- definition errors


def test_positional_only_parameters_are_rejected_when_decorated() -> None:
    with pytest.raises(
        TypeError, match=r"tool 'add': parameter 'a' is positional-only \(before '/'\)"
    ):

        @tool
        def add(a: int, /, b: int) -> int:
            return a + b


def test_function_schema_rejects_what_a_model_cannot_call() -> None:
    def variadic(*xs: int) -> None: ...

    with pytest.raises(TypeError, match=r"\*args and \*\*kwargs"):
        FunctionSchema(variadic)


def test_schema_error_needs_an_error() -> None:
    with pytest.raises(ValueError, match="takes FieldErrors"):
        SchemaError()
    assert str(SchemaError(FieldError("", "bad"))) == "value: bad"
    one = SchemaError("a.b", "expected a string")  # the one-error shorthand
    assert one.errors == (FieldError("a.b", "expected a string"),) and one.path == "a.b"


# ----------------------------------------------------------------------------- plans


@tool
def deliver(to: Address, on: dt.date, priority: Priority = Priority.LOW) -> str:
    "Deliver."
    return "ok"


def test_plan_arguments_are_checked_against_the_declared_types() -> None:
    plan = {
        "tasks": [
            {"id": "a", "tool": "deliver", "args": {"to": {"street": "R", "zip": "1"}, "on": "2026-02-30"}},
            {"id": "b", "tool": "deliver", "args": {"to": {"street": "R", "zip": "1000-001"}, "on": "2026-02-03", "priority": "high"}},
        ],
        "output": "$b",
    }  # fmt: skip
    problems = [str(p) for p in validate_plan(plan, [deliver])]
    assert len(problems) == 2
    assert problems[0].startswith("task 'a': argument to.zip: String should match pattern")
    assert problems[1].startswith("task 'a': argument on: should be a valid date")


def test_the_error_classes_keep_their_public_names() -> None:
    """They are defined in a private module, but a journal records a `FieldError` (inside a
    `ToolError`) by its module path, and tracebacks print `mce.schema.SchemaError`."""
    from mce.codec import encode
    from mce.effects import fingerprint

    error = ToolError("t", "invalid_arguments", "bad", errors=(FieldError("a", "b"),))
    assert encode(error, "value")["fields"]["errors"]["$tuple"][0]["$attrs"] == (
        "mce.schema:FieldError"
    )
    # what mce computed before the split: requests recorded then still replay
    assert fingerprint(error) == "eca2c91cf0d2ebaac14aa5578b802643"
    assert f"{SchemaError.__module__}.{SchemaError.__qualname__}" == "mce.schema.SchemaError"
