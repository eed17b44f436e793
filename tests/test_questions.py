"""Human in the loop: ask() ends a run Waiting; resuming with answers continues it exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.lowlevel
import pytest
from pydantic import BaseModel

from mce import (
    AnswerInvalid,
    Err,
    Failures,
    Journal,
    Ok,
    Question,
    Step,
    Waiting,
    ask,
    collect,
    effect,
    fail,
    par,
    pure,
    put,
    run,
    share,
    traverse,
)
from mce.events import TraceEvent

pytestmark = pytest.mark.anyio


class Counted:
    """Handlers that count how often each request ran live (async: they really await)."""

    def __init__(self) -> None:
        self.calls: Counter[Any] = Counter()

    def handlers(self) -> dict[str, Any]:
        async def work(request: Any) -> Any:
            await anyio.lowlevel.checkpoint()  # a real await: the branch gets a task
            self.calls[request] += 1
            return request

        return {"work": work}


def work(name: str) -> Step[Any, Any, Any]:
    return effect("work", name)


def approval_flow() -> Step[Any, Any, Any]:
    return (
        work("plan")
        .then(lambda plan: put(plan).then(lambda _: ask(f"Run {plan}?", into=bool, id="approve")))
        .then(lambda yes: work("costly") if yes else pure("skipped"))
    )


async def test_a_question_ends_the_run_waiting_and_nothing_after_it_runs() -> None:
    counted, j = Counted(), Journal()
    out = await run(approval_flow(), None, handlers=counted.handlers(), journal=j)
    assert isinstance(out, Waiting)
    assert out.questions == (Question("Run plan?", "1", {"type": "boolean"}, "approve"),)
    assert out.state == "plan"  # where the run stopped
    assert not out.ok and out.rejected == () and out.unused == ()
    assert counted.calls == Counter({"plan": 1})
    # Everything done so far is journaled; the question itself is not (it is open).
    assert [e["kind"] for e in j.load()[1]] == ["work"]
    assert out.report is not None and out.report.live_calls == 1


async def test_resume_with_the_answer_continues_exactly_there_and_replay_needs_no_answers() -> None:
    counted, j = Counted(), Journal()
    await run(approval_flow(), None, handlers=counted.handlers(), journal=j)
    out = await run(
        approval_flow(),
        None,
        handlers=counted.handlers(),
        journal=j,
        mode="resume",
        answers={"approve": True},
    )
    assert out == Ok("costly", "plan")
    assert counted.calls == Counter({"plan": 1, "costly": 1})  # nothing ran twice
    assert [e["kind"] for e in j.load()[1]] == ["work", "mce.ask", "work"]
    replayed = await run(approval_flow(), None, journal=j, mode="replay")
    assert replayed == Ok("costly", "plan")
    assert replayed.report is not None and replayed.report.live_calls == 0
    assert counted.calls == Counter({"plan": 1, "costly": 1})


async def test_a_position_answers_too() -> None:
    counted, j = Counted(), Journal()
    await run(approval_flow(), None, handlers=counted.handlers(), journal=j)
    out = await run(
        approval_flow(), None, handlers=counted.handlers(), journal=j, mode="resume",
        answers={"1": False},
    )  # fmt: skip
    assert out == Ok("skipped", "plan")
    assert counted.calls == Counter({"plan": 1})


async def test_a_wrong_answer_is_rejected_and_the_question_stays_open() -> None:
    counted, j = Counted(), Journal()
    prog = work("a").then(lambda _: ask("How many?", into=int, id="n")).then(work)
    await run(prog, None, handlers=counted.handlers(), journal=j)
    out = await run(
        prog, None, handlers=counted.handlers(), journal=j, mode="resume", answers={"n": "many"}
    )
    assert isinstance(out, Waiting)
    assert [q.key for q in out.questions] == ["n"]
    (rejected,) = out.rejected
    assert isinstance(rejected, AnswerInvalid)
    assert (rejected.key, rejected.position, rejected.answer) == ("n", "1", "many")
    assert "valid integer" in str(rejected)
    assert [e["kind"] for e in j.load()[1]] == ["work"]  # nothing journaled for it
    out = await run(
        prog, None, handlers=counted.handlers(), journal=j, mode="resume", answers={"n": 3}
    )
    assert out == Ok(3, None)
    assert counted.calls == Counter({"a": 1, 3: 1})


async def test_an_answer_for_no_question_is_reported_unused() -> None:
    j = Journal()
    prog = ask("Go?", into=bool, id="go")
    out = await run(prog, None, journal=j, answers={"og": True})
    assert isinstance(out, Waiting)
    assert out.unused == ("og",)


class Plan(BaseModel):
    steps: list[str]
    budget: int


async def test_structured_answers_are_validated_into_the_type_live_and_on_replay() -> None:
    j = Journal()
    prog = ask("Edit the plan", into=Plan, id="plan").map(lambda p: (type(p).__name__, p.budget))
    first = await run(prog, None, journal=j)
    assert isinstance(first, Waiting)
    assert first.questions[0].schema["required"] == ["steps", "budget"]
    out = await run(
        prog, None, journal=j, mode="resume", answers={"plan": {"steps": ["a"], "budget": "7"}}
    )
    assert out == Ok(("Plan", 7), None)
    assert await run(prog, None, journal=j, mode="replay") == Ok(("Plan", 7), None)


async def test_questions_in_parallel_branches_wait_together_and_siblings_finish(
    anyio_backend: str,
) -> None:
    counted, j = Counted(), Journal()

    def prog() -> Step[Any, Any, Any]:
        return work("before").then(
            lambda _: par(
                work("left").then(lambda _: ask("Left ok?", into=bool, id="left")),
                work("middle").then(lambda m: work(m + "!")),
                work("right").then(lambda _: ask("Pick", into=Literal["x", "y"])),
            )
        )

    out = await run(prog(), None, handlers=counted.handlers(), journal=j)
    assert isinstance(out, Waiting)
    assert [(q.key, q.position) for q in out.questions] == [("left", "1/0/1"), ("1/2/1", "1/2/1")]
    # The sibling without a question ran to its end.
    assert counted.calls == Counter({"before": 1, "left": 1, "middle": 1, "middle!": 1, "right": 1})
    # One answer given: the other question still waits; nothing re-runs.
    half = await run(
        prog(), None, handlers=counted.handlers(), journal=j, mode="resume", answers={"left": True}
    )
    assert isinstance(half, Waiting)
    assert [q.key for q in half.questions] == ["1/2/1"]
    out = await run(
        prog(), None, handlers=counted.handlers(), journal=j, mode="resume", answers={"1/2/1": "y"}
    )
    assert out == Ok((True, "middle!", "y"), None)
    assert set(counted.calls.values()) == {1}
    assert (await run(prog(), None, journal=j, mode="replay")) == out


async def test_a_failing_sibling_ends_the_block_whatever_the_answer(anyio_backend: str) -> None:
    counted = Counted()
    prog = par(ask("Go?", into=bool), work("x").then(lambda _: fail("broken")))
    out = await run(prog, None, handlers=counted.handlers(), journal=Journal())
    assert out == Err("broken")


async def test_collect_waits_and_keeps_its_errors_for_the_resume(anyio_backend: str) -> None:
    counted, j = Counted(), Journal()
    prog = collect([ask("Go?", into=bool, id="go"), work("x").then(lambda _: fail("bad"))])
    assert isinstance(await run(prog, None, handlers=counted.handlers(), journal=j), Waiting)
    out = await run(
        prog, None, handlers=counted.handlers(), journal=j, mode="resume", answers={"go": True}
    )
    assert out == Err(Failures(("bad",), (1,)))
    assert counted.calls == Counter({"x": 1})


async def test_an_id_answers_every_question_with_that_id(anyio_backend: str) -> None:
    counted, j = Counted(), Journal()
    prog = traverse(["a", "b"], lambda x: work(x).then(lambda _: ask("ok?", into=bool, id="ok")))
    out = await run(prog, None, handlers=counted.handlers(), journal=j)
    assert isinstance(out, Waiting)
    assert [q.position for q in out.questions] == ["0/0/1", "0/1/1"]
    out = await run(
        prog, None, handlers=counted.handlers(), journal=j, mode="resume", answers={"ok": True}
    )
    assert out == Ok((True, True), None)
    assert counted.calls == Counter({"a": 1, "b": 1})


async def test_questions_inside_a_shared_step_and_a_timeout() -> None:
    counted, j = Counted(), Journal()
    shared = share(work("s").then(lambda _: ask("Shared?", into=int, id="s")))
    prog = par(shared, shared.map(lambda n: n * 10), ask("In time?", into=str, id="t").timeout(60))
    out = await run(prog, None, handlers=counted.handlers(), journal=j)
    assert isinstance(out, Waiting)
    assert sorted(q.key for q in out.questions) == ["s", "t"]
    out = await run(
        prog, None, handlers=counted.handlers(), journal=j, mode="resume",
        answers={"s": 4, "t": "yes"},
    )  # fmt: skip
    assert out == Ok((4, 40, "yes"), None)
    assert counted.calls == Counter({"s": 1})


async def test_an_answer_given_up_front_is_used_in_a_live_run() -> None:
    out = await run(ask("Go?", into=bool, id="go"), None, answers={"go": True})
    assert out == Ok(True, None)


async def test_a_replay_of_a_waiting_journal_waits_again() -> None:
    counted, j = Counted(), Journal()
    await run(approval_flow(), None, handlers=counted.handlers(), journal=j)
    again = await run(approval_flow(), None, journal=j, mode="replay")
    assert isinstance(again, Waiting) and again.questions[0].key == "approve"


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="look like a position"):
        ask("Go?", into=bool, id="3")
    with pytest.raises(ValueError, match="non-empty question"):
        ask("", into=bool)
    with pytest.raises(TypeError, match="pydantic cannot validate"):
        ask("Go?", into=object())
    prog = ask("Go?", into=bool)
    with pytest.raises(ValueError, match="takes no answers"):
        anyio.run(lambda: run(prog, None, journal=Journal(), mode="replay", answers={"0": True}))
    with pytest.raises(TypeError, match="strings"):
        anyio.run(lambda: run(prog, None, answers={0: True}))  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="answer its questions"):
        Waiting((Question("Go?", "0", {}),)).to_result()


WORKFLOW = """
    from pathlib import Path

    from mce import ask, effect, pure

    LOG = Path(__file__).with_name("calls.log")


    def _work(name):
        with LOG.open("a") as f:
            f.write(name + "\\n")
        return name


    mce_handlers = {"work": _work}


    def flow():
        return (
            effect("work", "plan")
            .then(lambda plan: ask(f"Run {plan}?", into=bool, id="approve"))
            .then(lambda yes: effect("work", "costly") if yes else pure("skipped"))
        )
"""


def test_a_paused_run_resumes_in_a_fresh_process_with_no_effect_run_twice(tmp_path: Path) -> None:
    (tmp_path / "flowmod.py").write_text(textwrap.dedent(WORKFLOW))
    journal = tmp_path / "run.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}

    def mce(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "mce", "run", "flowmod:flow", "--journal", str(journal)]
        return subprocess.run([*command, *args], capture_output=True, text=True, env=env)

    first = mce()
    assert first.returncode == 3, first.stderr
    assert "approve (position 1): Run plan?" in first.stdout
    assert (tmp_path / "calls.log").read_text().split() == ["plan"]
    bad = mce("--mode", "resume", "--answer", "approve=42")
    assert bad.returncode == 3 and "rejected: answer 'approve'" in bad.stdout
    second = mce("--mode", "resume", "--answer", "approve=true")
    assert second.returncode == 0, second.stderr
    assert "ok: 'costly'" in second.stdout
    assert (tmp_path / "calls.log").read_text().split() == ["plan", "costly"]
    records = [json.loads(line) for line in journal.read_text().splitlines()[1:]]
    assert [(r["kind"], r.get("ok")) for r in records] == [
        ("work", "plan"),
        ("mce.ask", True),
        ("work", "costly"),
    ]


async def test_a_bounded_block_starts_its_other_branches_while_one_waits(
    anyio_backend: str,
) -> None:
    counted, j = Counted(), Journal()
    prog = traverse(
        ["a", "b", "c"], lambda x: work(x).then(lambda _: ask(f"{x}?", into=int)), limit=1
    )
    out = await run(prog, None, handlers=counted.handlers(), journal=j)
    assert isinstance(out, Waiting)
    assert [q.text for q in out.questions] == ["a?", "b?", "c?"]
    assert counted.calls == Counter({"a": 1, "b": 1, "c": 1})
    answers = {q.position: n for n, q in enumerate(out.questions)}
    done = await run(
        prog, None, handlers=counted.handlers(), journal=j, mode="resume", answers=answers
    )
    assert done == Ok((0, 1, 2), None)
    assert counted.calls == Counter({"a": 1, "b": 1, "c": 1})


async def test_nested_blocks_and_recover_do_not_swallow_a_question(anyio_backend: str) -> None:
    counted, j = Counted(), Journal()
    inner = par(work("deep"), ask("Deep?", into=bool, id="deep"))
    prog = par(work("top"), inner.recover(lambda e: pure(("recovered", e))))
    out = await run(prog, None, handlers=counted.handlers(), journal=j)
    assert isinstance(out, Waiting)
    assert [(q.key, q.position) for q in out.questions] == [("deep", "0/1/0/1/0")]
    done = await run(
        prog, None, handlers=counted.handlers(), journal=j, mode="resume", answers={"deep": False}
    )
    assert done == Ok(("top", ("deep", False)), None)
    assert counted.calls == Counter({"deep": 1, "top": 1})


async def test_an_open_question_ends_its_trace_with_ok_none() -> None:
    events: list[TraceEvent] = []
    await run(ask("Go?", into=bool), None, trace=events.append)
    assert [(e.event, e.name, e.ok) for e in events] == [
        ("effect.start", "mce.ask", None),
        ("effect.end", "mce.ask", None),
    ]


async def test_a_waiting_run_leaves_every_finished_effect_durable_in_its_file(
    tmp_path: Path, anyio_backend: str
) -> None:
    # The siblings' last records are written in the background (deferred);
    # the run still ends only once they are on disk.
    counted, path = Counted(), tmp_path / "run.jsonl"
    prog = par(work("a"), work("b"), ask("Go?", into=bool, id="go"), work("c"))
    out = await run(prog, None, handlers=counted.handlers(), journal=path)
    assert isinstance(out, Waiting)
    records = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    assert sorted(r["ok"] for r in records) == ["a", "b", "c"]
    done = await run(
        prog, None, handlers=counted.handlers(), journal=path, mode="resume", answers={"go": True}
    )
    assert done == Ok(("a", "b", True, "c"), None)
    assert counted.calls == Counter({"a": 1, "b": 1, "c": 1})


async def test_a_sub_agent_that_asks_is_an_effect_error_naming_the_question() -> None:
    from mce.meta import remote_agent

    helper = remote_agent("helper", lambda text: ask(f"{text}?", into=str))
    out = await run(helper("Which city"), None)
    assert isinstance(out, Err)
    assert "cannot wait for a person (it asked: Which city?)" in str(out.error)
