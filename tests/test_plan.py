"""Plans: the IR, validation of untrusted input, as-soon-as-ready execution, codegen."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mce import Err, Journal, Ok, run, run_sync
from mce.plan import Plan, PlanInvalid, Ref, TaskFailed, Template, compile, to_python, validate
from mce.plan.ir import ID, parse_string
from mce.tools import Registry, tool

log: list[tuple[str, str, float]] = []


@tool
def const(value: int) -> int:
    "A constant."
    return value


@tool
def inc(x: int) -> int:
    "Add one."
    return x + 1


@tool
def add(a: int, b: int) -> int:
    "Add two numbers."
    return a + b


@tool
def words(text: str) -> list[str]:
    "Split text into words."
    return text.split()


@tool
async def wait(name: str, ms: int) -> str:
    "Sleep, recording start and end."
    log.append((name, "start", anyio.current_time()))
    await anyio.sleep(ms / 1000)
    log.append((name, "end", anyio.current_time()))
    return name


@tool
def explode(x: int) -> int:
    "Always fails."
    raise RuntimeError(f"boom {x}")


TOOLS = Registry([const, inc, add, words, wait, explode])


def problems(plan: Any, **limits: int) -> list[str]:
    return [str(p) for p in validate(plan, TOOLS, **limits)]


def test_round_trip_and_schema_file() -> None:
    data = {
        "tasks": [
            {"id": "a", "tool": "const", "args": {"value": 1}},
            {"id": "b", "tool": "inc", "args": {"x": "$a"}, "deps": ["a"]},
            {"id": "c", "tool": "words", "args": {"text": "$$literal dollars"}},
        ],
        "output": {"first": "$a", "all": ["$b", "$c.0"]},
    }
    plan = Plan.from_json(json.dumps(data))
    assert plan.to_json() == data
    assert Plan.from_json(plan.to_json_text()) == plan
    from mce.plan import PLAN_SCHEMA

    published = json.loads((Path(__file__).parent.parent / "docs" / "plan.schema.json").read_text())
    assert published == PLAN_SCHEMA


def test_every_problem_at_once_each_naming_its_task() -> None:
    plan = {
        "tasks": [
            {"id": "a", "tool": "const", "args": {"value": "one"}},
            {"id": "a", "tool": "const", "args": {"value": 1}},
            {"id": "b", "tool": "nope", "args": {}},
            {"id": "c", "tool": "inc", "args": {"x": "$ghost"}},
            {"id": "d", "tool": "add", "args": {"a": 1, "c": 2}},
            {"id": "e", "tool": "inc", "args": {"x": "$f"}},
            {"id": "f", "tool": "inc", "args": {"x": "$g"}},
            {"id": "g", "tool": "inc", "args": {"x": "$e"}},
            {"id": "h", "tool": "inc", "args": {"x": "$h"}},
            {"id": "i", "tool": "inc", "args": {"x": 1}, "deps": ["zzz"]},
        ],
        "output": "$missing",
    }
    found = problems(plan)
    expected = [
        "task 'a': duplicate task id",
        "task 'a': argument value: expected an integer, got 'one'",
        "task 'b': unknown tool 'nope'",
        "task 'c': argument 'x' refers to unknown task 'ghost'",
        "task 'd': tool 'add' has no argument 'c'",
        "task 'd': missing required argument 'b' for tool 'add'",
        "task 'e': cycle: e -> f -> g -> e",
        "task 'h': depends on itself",
        "task 'i': depends on unknown task 'zzz'",
        "the output refers to unknown task 'missing'",
    ]
    for message in expected:
        assert any(f.startswith(message) for f in found), (message, found)
    with pytest.raises(PlanInvalid) as info:
        compile(plan, TOOLS)
    assert len(info.value.problems) == len(found)


def test_reference_types_are_checked_when_known() -> None:
    plan = {
        "tasks": [
            {"id": "w", "tool": "words", "args": {"text": "a b"}},
            {"id": "n", "tool": "inc", "args": {"x": "$w"}},
        ],
        "output": "$n",
    }
    # words returns list[str], which is not a simple type: not checked until it runs
    assert problems(plan) == []
    plan["tasks"][0] = {"id": "w", "tool": "wait", "args": {"name": "x", "ms": 1}}
    assert problems(plan) == ["task 'n': argument 'x' expects int but task 'w' returns str"]


def test_limits() -> None:
    chain = {
        "tasks": [{"id": "t0", "tool": "const", "args": {"value": 0}}]
        + [{"id": f"t{i}", "tool": "inc", "args": {"x": f"$t{i - 1}"}} for i in range(1, 6)],
        "output": "$t5",
    }
    assert any(
        "longest chain has 6 tasks; the limit is 3" in p for p in problems(chain, max_depth=3)
    )
    assert any("6 tasks; the limit is 4" in p for p in problems(chain, max_tasks=4))
    fan = {
        "tasks": [{"id": "root", "tool": "const", "args": {"value": 0}}]
        + [{"id": f"f{i}", "tool": "inc", "args": {"x": "$root"}} for i in range(5)],
        "output": None,
    }
    assert "task 'root': 5 tasks depend on it; the limit is 2" in problems(fan, max_fan_out=2)
    assert problems(chain) == [] and problems(fan) == []


def test_runs_with_references_fields_and_deps() -> None:
    plan = {
        "tasks": [
            {"id": "w", "tool": "words", "args": {"text": "monads compose nicely"}},
            {"id": "one", "tool": "const", "args": {"value": 1}},
            {"id": "two", "tool": "add", "args": {"a": "$one", "b": "$one"}},
            {"id": "three", "tool": "inc", "args": {"x": "$two"}, "deps": ["w"]},
        ],
        "output": {"first_word": "$w.0", "total": "$three", "list": ["$one", "$two"]},
    }
    out = run_sync(compile(plan, TOOLS), None)
    assert out == Ok({"first_word": "monads", "total": 3, "list": [1, 2]}, None)


def test_starts_each_task_as_soon_as_its_inputs_are_ready() -> None:
    log.clear()
    plan = {
        "tasks": [
            {"id": "fast", "tool": "wait", "args": {"name": "fast", "ms": 10}},
            {"id": "slow", "tool": "wait", "args": {"name": "slow", "ms": 200}},
            {"id": "next", "tool": "wait", "args": {"name": "$fast", "ms": 10}},
        ],
        "output": ["$next", "$slow"],
    }
    out = run_sync(compile(plan, TOOLS), None)
    assert out.ok
    times = {(name, what): t for name, what, t in log}
    # "next" (second run of name "fast") starts right after "fast" ends, long before "slow" ends
    starts = sorted(t for name, what, t in log if name == "fast" and what == "start")
    assert starts[1] < times[("slow", "end")] - 0.1


def test_limit_bounds_concurrent_tasks() -> None:
    log.clear()
    tasks = [{"id": f"t{i}", "tool": "wait", "args": {"name": f"t{i}", "ms": 20}} for i in range(6)]
    run_sync(compile({"tasks": tasks, "output": None}, TOOLS, limit=2), None)
    running, peak = 0, 0
    for _name, what, _t in sorted(log, key=lambda e: (e[2], e[1] == "start")):
        running += 1 if what == "start" else -1
        peak = max(peak, running)
    assert peak == 2


def test_failing_task_fails_the_plan_naming_it() -> None:
    plan = {
        "tasks": [
            {"id": "ok", "tool": "const", "args": {"value": 1}},
            {"id": "bad", "tool": "explode", "args": {"x": "$ok"}},
        ],
        "output": "$bad",
    }
    out = run_sync(compile(plan, TOOLS), None)
    assert isinstance(out, Err) and isinstance(out.error, TaskFailed)
    assert out.error.task == "bad" and "boom 1" in str(out.error)
    missing = {"tasks": [{"id": "w", "tool": "words", "args": {"text": "a"}}], "output": "$w.5"}
    out = run_sync(compile(missing, TOOLS), None)
    assert isinstance(out, Err) and "has no field '5'" in str(out.error)


def test_positions_derive_from_task_ids_and_replay() -> None:
    plan = {
        "tasks": [
            {"id": "a", "tool": "const", "args": {"value": 2}},
            {"id": "b", "tool": "inc", "args": {"x": "$a"}},
        ],
        "output": "$b",
    }
    j = Journal()
    step = compile(plan, TOOLS)
    live = run_sync(step, None, journal=j)
    assert sorted(e["pos"] for e in j.load()[1]) == ["s:task:a/0", "s:task:b/0"]
    assert run_sync(step, None, journal=j, mode="replay") == live


# ---------------------------------------------------------------- generated plans


@st.composite
def valid_plans(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 8))
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        earlier = [t["id"] for t in tasks]
        choice = draw(st.sampled_from(["const", "inc", "add"] if earlier else ["const"]))
        if choice == "const":
            args: dict[str, Any] = {"value": draw(st.integers(-5, 5))}
        elif choice == "inc":
            args = {"x": "$" + draw(st.sampled_from(earlier))}
        else:
            args = {"a": "$" + draw(st.sampled_from(earlier)), "b": draw(st.integers(0, 3))}
        task: dict[str, Any] = {"id": f"t{i}", "tool": choice, "args": args}
        if earlier and draw(st.booleans()):
            task["deps"] = [draw(st.sampled_from(earlier))]
        tasks.append(task)
    draw(st.randoms()).shuffle(tasks)  # listed in any order; the DAG decides
    ids = [t["id"] for t in tasks]
    output = draw(st.sampled_from([f"${ids[0]}", [f"${i}" for i in ids], {"last": f"${ids[-1]}"}]))
    return {"tasks": tasks, "output": output}


def _entries(j: Journal) -> dict[str, Any]:
    return {e["pos"]: (e["kind"], e["fp"], e.get("ok")) for e in j.load()[1]}


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(valid_plans(), st.one_of(st.none(), st.integers(1, 3)))
def test_generated_code_equals_compiled_plan(plan: dict[str, Any], limit: int | None) -> None:
    assert validate(plan, TOOLS) == []
    namespace: dict[str, Any] = {}
    exec(compile_source(to_python(plan)), namespace)
    generated = namespace["build"](TOOLS, limit=limit)
    ja, jb = Journal(), Journal()
    a = run_sync(compile(plan, TOOLS, limit=limit), None, journal=ja)
    b = run_sync(generated, None, journal=jb)
    assert a == b and a.ok
    assert _entries(ja) == _entries(jb)


def compile_source(source: str) -> Any:
    import builtins

    return builtins.compile(source, "<generated plan>", "exec")


def test_generated_code_passes_ruff_format_and_mypy_strict(tmp_path: Path) -> None:
    plan = {
        "tasks": [
            {"id": "w", "tool": "words", "args": {"text": "a b"}},
            {"id": "n-1", "tool": "const", "args": {"value": 3}},
            {"id": "s", "tool": "add", "args": {"a": "$n-1", "b": 2}, "deps": ["w"]},
        ],
        "output": {
            "words": "$w",
            "sum": "$s",
            "nested": [{"x": "$w.0"}, None, True, 1.5, float("nan"), float("-inf")],
            'say "\U0001f600"': 'it\'s ${w.1}, "$s"\n',
        },
    }
    path = tmp_path / "generated_plan.py"
    path.write_text(to_python(plan))
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--line-length", "88", str(path)],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    from mypy import api

    out, err, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "c"), str(path)]
    )
    assert status == 0, out + err


# ---------------------------------------------------------------- untrusted input

json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=15,
)
plausible = st.fixed_dictionaries(
    {
        "tasks": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.one_of(
                        st.sampled_from(["a", "b", "c"]), st.text(max_size=4), st.integers()
                    ),
                    "tool": st.one_of(
                        st.sampled_from(
                            ["const", "inc", "add", "explode", "os.system", "__import__"]
                        ),
                        json_values,
                    ),
                    "args": st.one_of(
                        st.dictionaries(
                            st.sampled_from(["x", "a", "b", "value", "__class__"]),
                            st.one_of(st.sampled_from(["$a", "$b.x", "$$", "$c.0"]), json_values),
                            max_size=3,
                        ),
                        json_values,
                    ),
                },
                optional={
                    "deps": st.one_of(
                        st.lists(st.sampled_from(["a", "b", "c", "z"]), max_size=3), json_values
                    )
                },
            ),
            max_size=5,
        ),
        "output": st.one_of(st.sampled_from(["$a", "$b", ["$a", "$c"]]), json_values),
    }
)


@given(st.one_of(json_values, plausible, json_values.map(json.dumps), st.text(max_size=30)))
def test_untrusted_plans_are_rejected_cleanly_and_nothing_runs(data: Any) -> None:
    ran: list[str] = []

    def guard(name: str) -> Any:
        return lambda args: ran.append(name)

    guards = {f"tool.{name}": guard(name) for name in TOOLS.names}
    try:
        step = compile(data, TOOLS)
    except PlanInvalid as invalid:
        assert invalid.problems and all(str(p) for p in invalid.problems)
        assert ran == []
        return
    # A valid plan: only registry tools can run, and only now.
    assert ran == []
    run_sync(step, None, handlers=guards)
    assert set(ran) <= set(TOOLS.names)


# ---------------------------------------------------------------- references inside strings


@tool
def echo(text: str) -> str:
    "Return the text."
    return text


@tool
def num(x: float) -> float:
    "Return the number."
    return x


@tool
def record(name: str) -> dict[str, Any]:
    "A record with a total."
    return {"name": name, "total": 10}


SYNTAX_TOOLS = Registry([const, inc, add, words, echo, num, record])


def test_references_inside_strings_are_dependencies_and_interpolated() -> None:
    log.clear()
    plan = {
        "tasks": [
            {"id": "a", "tool": "const", "args": {"value": 4}},
            {"id": "b", "tool": "record", "args": {"name": "B"}},
            {"id": "1", "tool": "words", "args": {"text": "x y"}},
            {"id": "m", "tool": "echo", "args": {"text": "max($a, $b.total) / 2 costs $$3"}},
            {"id": "n", "tool": "echo", "args": {"text": "${1}s: $1 and ${b.name}x"}},
        ],
        "output": {"m": "$m", "n": "$n", "line": "done: $m"},
    }
    assert [str(p) for p in validate(plan, SYNTAX_TOOLS)] == []
    parsed = Plan.from_json(plan)
    assert {t.id: t.needs() for t in parsed.tasks}["m"] == ["a", "b"]
    assert Plan.from_json(parsed.to_json()) == parsed
    out = run_sync(compile(plan, SYNTAX_TOOLS), None)
    assert out.value == {
        "m": "max(4, 10) / 2 costs $3",
        "n": '["x", "y"]s: ["x", "y"] and Bx',
        "line": "done: max(4, 10) / 2 costs $3",
    }


def test_nothing_that_looks_like_a_reference_stays_literal() -> None:
    plan = {
        "tasks": [
            {"id": "a", "tool": "echo", "args": {"text": "costs 5$"}},
            {"id": "b", "tool": "echo", "args": {"text": "${a"}},
            {"id": "c", "tool": "echo", "args": {"text": "see $ghost here"}},
            {"id": "d", "tool": "echo", "args": {"text": "$-x"}},
        ],
        "output": "total: $nobody",
    }
    found = problems_with(plan, SYNTAX_TOOLS)
    assert "task 'a': argument 'text': '$' at offset 7 of 'costs 5$' is not a reference" in found[0]
    assert any(p.startswith("task 'b': argument 'text': '$' at offset 0") for p in found)
    assert any(p.startswith("task 'd': argument 'text': '$' at offset 0") for p in found)
    # a well-formed reference to a task that does not exist is a dangling reference
    plan["tasks"] = plan["tasks"][2:3]
    assert problems_with(plan, SYNTAX_TOOLS) == [
        "task 'c': argument 'text' refers to unknown task 'ghost'",
        "the output refers to unknown task 'nobody'",
    ]


def problems_with(plan: Any, tools: Registry) -> list[str]:
    return [str(p) for p in validate(plan, tools)]


def test_ids_are_matched_whole() -> None:
    for bad in ["a\n", "-a", "a-", "", "a b", "x" * 65]:
        plan = {"tasks": [{"id": bad, "tool": "const", "args": {"value": 1}}], "output": None}
        assert any("'id' must be" in p for p in problems(plan)), bad
    for good in ["1", "42", "a-b", "a_b", "_", "x" * 64]:
        plan = {
            "tasks": [{"id": good, "tool": "const", "args": {"value": 1}}],
            "output": f"${good}",
        }
        assert problems(plan) == [], good


text_parts = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=6),
    st.from_regex(ID, fullmatch=True).map(lambda i: ("ref", i)),
)


@given(st.lists(text_parts, max_size=6))
def test_strings_round_trip_through_the_plan_text(parts: list[Any]) -> None:
    value = Template(tuple(Ref(p[1]) if isinstance(p, tuple) else p for p in parts if p != ""))
    text = value.text
    parsed = parse_string(text)
    joined: list[Any] = []
    for p in value.parts:  # adjacent literals merge when parsed
        if isinstance(p, str) and joined and isinstance(joined[-1], str):
            joined[-1] += p
        else:
            joined.append(p)
    if not any(isinstance(p, Ref) for p in joined):
        assert parsed == "".join(joined)
    elif len(joined) == 1:
        assert parsed == joined[0]
    else:
        assert parsed == Template(tuple(joined))


# ---------------------------------------------------------------- untrusted input, continued


def test_validation_is_iterative_on_a_long_chain_listed_consumers_first() -> None:
    n = 1500
    chain = {
        "tasks": [
            {"id": f"t{i}", "tool": "inc", "args": {"x": f"$t{i - 1}"}} for i in range(n - 1, 0, -1)
        ]
        + [{"id": "t0", "tool": "const", "args": {"value": 0}}],
        "output": f"$t{n - 1}",
    }
    found = problems(chain)
    assert f"the plan has {n} tasks; the limit is 200" in found
    assert f"the longest chain has {n} tasks; the limit is 50" in found
    chain["tasks"][-1]["args"] = {"x": f"$t{n - 1}"}  # close the loop
    chain["tasks"][-1]["tool"] = "inc"
    assert any(p.startswith("task 't") and "cycle: " in p for p in problems(chain))
    assert validate(chain, TOOLS, max_tasks=n, max_depth=n) != []


def test_deeply_nested_json_is_a_plan_problem() -> None:
    for text in ["[" * 100_000, '{"tasks": [], "output": ' + "[" * 50_000 + "]" * 50_000 + "}"]:
        with pytest.raises(PlanInvalid) as info:
            compile(text, TOOLS)
        assert "nests" in str(info.value)
    nested: Any = 1
    for _ in range(40):
        nested = [nested]
    found = problems(
        {"tasks": [{"id": "a", "tool": "const", "args": {"value": nested}}], "output": None}
    )
    assert found == ["task 'a': 'args' must be plain JSON: it nests deeper than 32 levels"]
    found = problems(
        {"tasks": [{"id": "a", "tool": "words", "args": {"text": "\ud800"}}], "output": None}
    )
    assert found == [
        "task 'a': 'args' must be plain JSON: the text '\\ud800' is not valid Unicode (a lone surrogate)"
    ]


def test_a_field_path_reaches_data_never_methods() -> None:
    plan = {
        "tasks": [
            {"id": "a", "tool": "echo", "args": {"text": "hi"}},
            {"id": "b", "tool": "echo", "args": {"text": "$a.upper"}},
        ],
        "output": "$b",
    }
    assert problems_with(plan, SYNTAX_TOOLS) == []
    out = run_sync(compile(plan, SYNTAX_TOOLS), None)
    assert isinstance(out, Err) and isinstance(out.error, TaskFailed)
    assert "$a.upper: the output of task 'a' has no field 'upper'" in str(out.error)
    out = run_sync(
        compile({"tasks": plan["tasks"][:1], "output": "$a.__class__"}, SYNTAX_TOOLS), None
    )
    assert isinstance(out, Err) and "has no field '__class__'" in str(out.error)


# ---------------------------------------------------------------- to_python equals compile


def _same_run(plan: dict[str, Any], tools: Registry, limit: int | None = None) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile_source(to_python(plan)), namespace)
    generated = namespace["build"](tools, limit=limit)
    ja, jb = Journal(), Journal()
    a = run_sync(compile(plan, tools, limit=limit), None, journal=ja)
    b = run_sync(generated, None, journal=jb)
    assert repr(a) == repr(b)
    assert _entries(ja) == _entries(jb)
    return a


def test_to_python_keeps_look_alike_ids_apart() -> None:
    plan = {
        "tasks": [
            {"id": "a-b", "tool": "const", "args": {"value": 1}},
            {"id": "a_b", "tool": "const", "args": {"value": 2}},
            {"id": "a_b_2", "tool": "const", "args": {"value": 3}},
        ],
        "output": ["$a-b", "$a_b", "$a_b_2"],
    }
    assert _same_run(plan, TOOLS).value == [1, 2, 3]


def test_to_python_renders_any_text_and_non_finite_numbers() -> None:
    plan = {
        "tasks": [
            {
                "id": "e",
                "tool": "echo",
                "args": {"text": "smile \U0001f600 \u2028 \x00 \\ \" ' $$"},
            },
            {"id": "n", "tool": "num", "args": {"x": float("nan")}},
            {"id": "i", "tool": "num", "args": {"x": float("inf")}},
            {"id": "j", "tool": "num", "args": {"x": float("-inf")}},
        ],
        "output": {"\U0001f600 key": "$e", "nums": ["$n", "$i", "$j"]},
    }
    out = _same_run(plan, SYNTAX_TOOLS)
    assert out.value["\U0001f600 key"] == "smile \U0001f600 \u2028 \x00 \\ \" ' $"
    assert repr(out.value["nums"]) == "[nan, inf, -inf]"


texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)


@st.composite
def unicode_plans(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(st.lists(st.from_regex(ID, fullmatch=True), min_size=1, max_size=6, unique=True))
    tasks: list[dict[str, Any]] = []
    for i, task_id in enumerate(ids):
        earlier = ids[:i]
        kind = draw(
            st.sampled_from(
                ["echo", "num", "const", "inc"] if earlier else ["echo", "num", "const"]
            )
        )
        if kind == "echo":
            parts = draw(
                st.lists(
                    st.one_of(
                        texts.map(lambda t: t.replace("$", "$$")),
                        st.sampled_from(earlier or ["$$"]).map(
                            lambda r: r if r == "$$" else "<${" + r + "}>"
                        ),
                    ),
                    max_size=4,
                )
            )
            args: dict[str, Any] = {"text": "".join(parts)}
        elif kind == "num":
            args = {"x": draw(st.floats())}
        elif kind == "const":
            args = {"value": draw(st.integers(-3, 3))}
        else:
            sources = [t["id"] for t in tasks if t["tool"] in ("const", "inc")]
            args = {"x": "$" + draw(st.sampled_from(sources))} if sources else {"x": 1}
        tasks.append({"id": task_id, "tool": kind, "args": args})
    draw(st.randoms()).shuffle(tasks)
    output = {
        draw(texts): "$" + ids[0],
        "all": [f"${i}" for i in ids],
        "line": "".join(f"${{{i}}}|" for i in ids),
    }
    return {"tasks": tasks, "output": output}


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(unicode_plans(), st.one_of(st.none(), st.integers(1, 3)))
def test_generated_code_equals_compiled_plan_for_any_ids_and_text(
    plan: dict[str, Any], limit: int | None
) -> None:
    assert problems_with(plan, SYNTAX_TOOLS) == []
    assert _same_run(plan, SYNTAX_TOOLS, limit).ok


# ---------------------------------------------------------------- failure policy

gate: dict[str, anyio.Event] = {}


@tool
async def after_failure(name: str) -> str:
    "Wait until `fails` has failed."
    await gate["failed"].wait()
    return name


@tool
async def fails(x: int) -> int:
    "Fail, letting `after_failure` go on."
    gate["failed"].set()  # an event-loop object: set on the loop, so the tool is async
    raise RuntimeError(f"boom {x}")


POLICY_TOOLS = Registry([const, inc, add, after_failure, fails])
POLICY_PLAN = {
    "tasks": [
        {"id": "one", "tool": "const", "args": {"value": 1}},
        {"id": "late", "tool": "after_failure", "args": {"name": "independent"}},
        {"id": "bad", "tool": "fails", "args": {"x": "$one"}},
        {"id": "child", "tool": "inc", "args": {"x": "$bad"}},
        {"id": "grandchild", "tool": "add", "args": {"a": "$child", "b": "$one"}},
    ],
    "output": ["$late", "$grandchild"],
}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_on_error_continue_keeps_independent_tasks_running(backend: Any) -> None:
    from mce.plan import PlanFailed

    async def main() -> Any:
        gate["failed"] = anyio.Event()
        return await run(compile(POLICY_PLAN, POLICY_TOOLS, on_error="continue"), None, journal=j)

    j = Journal()
    out = anyio.run(main, backend=backend)
    assert isinstance(out, Err) and isinstance(out.error, PlanFailed)
    failed = out.error
    assert [f.task for f in failed.failures] == ["bad"] and "boom 1" in str(failed)
    assert failed.skipped == ("child", "grandchild")
    assert failed.results == {"one": 1, "late": "independent"}
    ran = {e["pos"].split("/")[0] for e in j.load()[1]}
    assert ran == {"s:task:one", "s:task:late", "s:task:bad"}  # the dependents never started

    async def replay() -> Any:
        gate["failed"] = anyio.Event()  # never set: a replay makes no live call
        return await run(
            compile(POLICY_PLAN, POLICY_TOOLS, on_error="continue"), None, journal=j, mode="replay"
        )

    assert anyio.run(replay, backend=backend) == out


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_on_error_fail_fast_cancels_independent_tasks(backend: Any) -> None:
    async def main() -> Any:
        gate["failed"] = anyio.Event()
        plan = {**POLICY_PLAN, "tasks": [*POLICY_PLAN["tasks"], blocked]}
        return await run(compile(plan, Registry([*POLICY_TOOLS, block])), None)

    blocked = {"id": "blocked", "tool": "block", "args": {}}
    out = anyio.run(main, backend=backend)
    assert isinstance(out, Err) and isinstance(out.error, TaskFailed) and out.error.task == "bad"


@tool
async def block() -> None:
    "Wait forever (until cancelled)."
    await anyio.Event().wait()


def test_continue_with_no_failure_is_the_plain_result_and_codegen_agrees() -> None:
    plan = {"tasks": POLICY_PLAN["tasks"][:1], "output": {"v": "$one"}}
    assert run_sync(compile(plan, POLICY_TOOLS, on_error="continue"), None) == Ok({"v": 1}, None)
    namespace: dict[str, Any] = {}
    gate["failed"] = anyio.Event()
    exec(compile_source(to_python(POLICY_PLAN)), namespace)
    generated = namespace["build"](POLICY_TOOLS, on_error="continue")
    ja = Journal()
    b = run_sync(generated, None, journal=ja)
    gate["failed"] = anyio.Event()
    jb = Journal()
    a = run_sync(compile(POLICY_PLAN, POLICY_TOOLS, on_error="continue"), None, journal=jb)
    assert a == b and not a.ok and _entries(ja) == _entries(jb)
    with pytest.raises(ValueError, match='on_error must be "fail_fast" or "continue"'):
        compile(plan, POLICY_TOOLS, on_error="ignore")  # type: ignore[arg-type]


def test_compile_retry_retries_each_task_and_replays() -> None:
    from mce import RetryPolicy

    tries: list[int] = []

    @tool
    def shaky(x: int) -> int:
        "Fail on the first try."
        tries.append(x)
        if len(tries) == 1:
            raise ConnectionError("reset")
        return x * 10

    plan = {"tasks": [{"id": "s", "tool": "shaky", "args": {"x": 2}}], "output": "$s"}
    policy = RetryPolicy(attempts=2, backoff=0, jitter=False)
    j = Journal()
    out = run_sync(compile(plan, [shaky], retry=policy), None, journal=j)
    assert out == Ok(20, None) and tries == [2, 2]
    assert [("err" in e, e["pos"]) for e in j.load()[1]] == [
        (True, "s:task:s/0"),
        (False, "s:task:s/1"),
    ]
    assert run_sync(compile(plan, [shaky], retry=policy), None, journal=j, mode="replay") == out
    assert tries == [2, 2]
    namespace: dict[str, Any] = {}
    exec(compile_source(to_python(plan)), namespace)
    tries.clear()
    jb = Journal()
    assert run_sync(namespace["build"](Registry([shaky]), retry=policy), None, journal=jb) == out
    assert _entries(j) == _entries(jb)
