"""LLMCompiler's numbered plan format: read, validated, compiled; every bad line named."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mce import run_sync
from mce.plan import PlanInvalid, compile, parse_llmcompiler, validate
from mce.tools import Registry, tool

AGES = {"Barack Obama": 63, "Michelle Obama": 60}


@tool
def search(query: str) -> str:
    "Look a person's age up."
    return f"{query} is {AGES[query]} years old"


@tool
def math(problem: str, context: list[str] | None = None) -> str:
    "Solve a small problem given context."
    ages = [int(c.split(" is ")[1].split()[0]) for c in context or []]
    return f"{problem} = {ages[0] - ages[1]}"


TOOLS = Registry([search, math])

HOTPOT = """Question: How much older is Barack Obama than Michelle Obama?
Thought: I need both ages, then the difference.
1. search("Barack Obama")
2. search('Michelle Obama')
Thought: Now the difference.
3. math("age of ${1} minus $2", ["$1", $2])
4. join()<END_OF_PLAN>
"""


def test_reads_and_runs_an_llmcompiler_plan() -> None:
    plan = parse_llmcompiler(HOTPOT, TOOLS)
    assert [(t.id, t.tool, t.needs()) for t in plan.tasks] == [
        ("1", "search", []),
        ("2", "search", []),
        ("3", "math", ["1", "2"]),
    ]
    assert validate(plan, TOOLS) == []
    out = run_sync(compile(plan, TOOLS), None)
    assert out.value["3"] == (
        "age of Barack Obama is 63 years old minus Michelle Obama is 60 years old = 3"
    )
    assert set(out.value) == {"1", "2", "3"}


def test_keyword_arguments_and_no_registry() -> None:
    plan = parse_llmcompiler('1. search(query="x")\n2. math("p", context=[$1])')
    assert plan.to_json()["tasks"][1]["args"] == {"0": "p", "context": ["$1"]}


def test_every_malformed_line_is_reported_with_its_number() -> None:
    text = "\n".join(
        [
            '1. search("a")',  # 1 fine
            "1. search('again')",  # 2 duplicate number
            "2. search(__import__('os').system('x'))",  # 3 not a literal
            '3. search("unterminated)',  # 4 syntax
            "4. math(" + "[" * 100 + "]" * 100 + ")",  # 5 too deep
            "this is prose",  # 6 not a call
            '5. search("costs 5$")',  # 7 a lone dollar
            "6. search(*xs)",  # 8 starred
            "7. join()",  # 9
            '8. search("late")',  # 10 after join
        ]
    )
    with pytest.raises(PlanInvalid) as info:
        parse_llmcompiler(text, TOOLS)
    lines = [str(p).split(":")[0] for p in info.value.problems]
    assert lines == [f"line {n}" for n in (2, 3, 4, 5, 6, 7, 8, 10)]
    messages = "\n".join(str(p) for p in info.value.problems)
    assert "task 1 is numbered again (first on line 1)" in messages
    assert "is not a literal value" in messages
    assert "nest deeper than 32 levels" in messages
    assert "'$' at offset 7 of 'costs 5$'" in messages
    assert "text after join() on line 9" in messages


@given(st.text(max_size=200))
def test_any_text_is_a_plan_or_plan_invalid(text: str) -> None:
    try:
        parse_llmcompiler(text, TOOLS)
    except PlanInvalid as invalid:
        assert invalid.problems


@given(
    st.lists(
        st.sampled_from(
            [
                "1. search(",
                "[",
                "(",
                "{",
                '"',
                "$1",
                "${",
                ")",
                "]",
                "}",
                ",",
                "'",
                "\n",
                "join()",
                "2. math(",
            ]
        ),
        max_size=40,
    )
)
def test_fragments_of_calls_are_a_plan_or_plan_invalid(parts: list[str]) -> None:
    try:
        parse_llmcompiler("".join(parts), TOOLS)
    except PlanInvalid as invalid:
        assert invalid.problems


def test_brackets_inside_a_string_argument_are_text_not_nesting() -> None:
    # 40 "(" inside a quoted query are characters of the query, not 40
    # levels of nesting: the line is read, and the query kept as written.
    query = "(" * 40 + "x" + ")" * 3
    plan = parse_llmcompiler(f'1. search("{query}")\n2. join()', TOOLS)
    assert plan.tasks[0].args == {"query": query}
    nested = "[" * 40 + "]" * 40
    with pytest.raises(PlanInvalid, match="nest deeper"):
        parse_llmcompiler(f"1. math('p', {nested})", TOOLS)


def test_lines_are_split_at_newlines_only_as_the_streaming_reader_does() -> None:
    # str.splitlines would also split at U+2028, U+0085, form feeds...
    # inside a quoted argument; a streamed plan splits at "\n" only.
    query = "Barack\u2028Obama\x85\x0c\x1c"
    plan = parse_llmcompiler(f'1. search("{query}")\r\n2. join()\r\n', TOOLS)
    assert plan.tasks[0].args == {"query": query}
    with pytest.raises(PlanInvalid, match="line 3: cannot read"):
        parse_llmcompiler('1. search("a")\n\n3. search(\u20282)', TOOLS)


@pytest.mark.parametrize(
    "line",
    ['1. search("x"), search("y")', '1. search("x") + search("y")', '1. search("x")("y")'],
)
def test_a_line_that_is_more_than_one_call_is_a_problem_not_a_crash(line: str) -> None:
    # The arguments' closing parenthesis is not the line's last one: the
    # line is reported, never a crash and never a call read half-way.
    with pytest.raises(PlanInvalid, match="line 1: expected one call"):
        parse_llmcompiler(line, TOOLS)


@pytest.mark.parametrize(
    "text, line",
    [
        ('1. search($2)\n2. search("Barack Obama")\n3. join()', 1),
        ('1. search("Barack Obama")\n2. math("x", ["$2"])\n3. join()', 2),
        ('1. search("Barack Obama")\n2. math("$1 and ${3}")\n3. search("x")', 2),
        ('1. search("Barack Obama")\n2. math("x", ["$9"])', 2),
    ],
)
def test_a_reference_to_a_later_or_missing_task_is_rejected_as_stream_plan_does(
    text: str, line: int
) -> None:
    # The same text, read whole or streamed, is the same plan or the same error.
    from mce.plan.live import stream_plan

    with pytest.raises(PlanInvalid) as read:
        parse_llmcompiler(text, TOOLS)
    problems = [str(p) for p in read.value.problems]

    async def planner() -> Any:
        yield text

    streamed = run_sync(stream_plan(planner, TOOLS), None)
    assert not streamed.ok and isinstance(streamed.error, PlanInvalid)
    assert problems == [str(p) for p in streamed.error.problems]
    assert f"line {line}: " in problems[0] and "no earlier line" in problems[0]
