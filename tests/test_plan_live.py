"""Live plans: edits under invariants while the graph runs, journaled, replayed and resumed."""

from __future__ import annotations

import operator
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mce import Err, Journal, Ok, ReplayDivergence, run_sync
from mce.llm import ScriptedModel, json_reply, scripted_handler, structured
from mce.plan import (
    Add,
    EditRejected,
    Event,
    GraphView,
    PlanFailed,
    PlanInvalid,
    Remove,
    Rewire,
    SetOutput,
    Task,
    TaskFailed,
    Update,
    live,
)
from mce.plan.edits import Graph, edit_from_json, edit_to_json
from mce.plan.ir import Plan, Ref, parse_refs
from mce.plan.validate import _cycle
from mce.tools import Registry, tool

BACKENDS = ["asyncio", "trio"]
calls: list[str] = []


@tool
async def deploy(service: str, version: int) -> str:
    "Deploy a version of a service."
    calls.append(f"deploy {service} v{version}")
    await anyio.sleep(0)
    if version < 2:
        raise RuntimeError(f"image {service}:{version} not found")
    return f"{service} v{version}"


@tool
async def build(service: str) -> int:
    "Build a service; its version."
    calls.append(f"build {service}")
    await anyio.sleep(0)
    return 1


@tool
def health(target: str) -> str:
    "Check a deployment."
    calls.append(f"health {target}")
    return f"ok: {target}"


OPS = Registry([deploy, build, health])
CONSTELLATION = {
    "tasks": [
        {"id": "build", "tool": "build", "args": {"service": "api"}},
        {"id": "deploy", "tool": "deploy", "args": {"service": "api", "version": "$build"}},
        {"id": "check", "tool": "health", "args": {"target": "$deploy"}},
    ],
    "output": {"deployed": "$check"},
}


def fixer(event: Event, view: GraphView) -> list[Any]:
    """UFO^3's repair: a failed deploy gets a redeploy, and the health check moves to it."""
    if event.ok or event.task != "deploy":
        return []
    return [
        {
            "op": "add",
            "task": {"id": "redeploy", "tool": "deploy", "args": {"service": "api", "version": 2}},
        },
        {"op": "rewire", "task": "check", "old": "deploy", "new": "redeploy"},
    ]


def _task_runs(j: Journal) -> list[str]:
    return sorted(e["pos"].split("/")[0] for e in j.load()[1] if e["pos"].startswith("s:task:"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failed_deploy_is_repaired_while_the_graph_runs(backend: Any) -> None:
    calls.clear()
    j = Journal()
    step = live(CONSTELLATION, OPS, editor=fixer, on_error="continue")
    out = run_sync(step, None, journal=j, backend=backend)
    assert out == Ok({"deployed": "ok: api v2"}, None)
    assert calls == ["build api", "deploy api v1", "deploy api v2", "health api v2"]
    # every task ran once; the edit is in the journal
    assert _task_runs(j) == ["s:task:build", "s:task:check", "s:task:deploy", "s:task:redeploy"]
    edits = [e for e in j.load()[1] if e["kind"] == "plan.edit"]
    assert len(edits) == 1 and edits[0]["req"]["after"] == "deploy"
    calls.clear()
    assert run_sync(step, None, journal=j, mode="replay", backend=backend) == out
    assert calls == []  # a replay runs nothing


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_resumed_run_continues_the_edited_graph(backend: Any) -> None:
    calls.clear()
    full = Journal()
    step = live(CONSTELLATION, OPS, editor=fixer, on_error="continue")
    out = run_sync(step, None, journal=full, backend=backend)
    header, entries = full.load()
    cut = next(i for i, e in enumerate(entries) if e["kind"] == "plan.edit") + 1
    for keep in range(cut, len(entries)):  # crash anywhere after the edit was recorded
        crashed = Journal()
        crashed.write([header, *entries[:keep]] if header else entries[:keep])
        calls.clear()
        resumed = run_sync(step, None, journal=crashed, mode="resume", backend=backend)
        assert resumed == out
        assert len(calls) == len([e for e in entries[keep:] if e["pos"].startswith("s:task:")])


def test_an_editor_that_answers_differently_diverges_on_replay() -> None:
    j = Journal()
    run_sync(live(CONSTELLATION, OPS, editor=fixer, on_error="continue"), None, journal=j)

    def other(event: Event, view: GraphView) -> list[Any]:
        edits = fixer(event, view)
        if edits:
            edits[0]["task"]["args"]["version"] = 3
        return edits

    with pytest.raises(ReplayDivergence):
        run_sync(
            live(CONSTELLATION, OPS, editor=other, on_error="continue"),
            None,
            journal=j,
            mode="replay",
        )


def test_an_editor_can_be_a_step_that_asks_a_model() -> None:
    model = ScriptedModel().queue(
        json_reply({"edits": fixer(Event("deploy", False), GraphView({}, {}, {}, {}, None))})
    )

    def ask(event: Event, view: GraphView) -> Any:
        if event.ok:
            return []
        return structured(
            [{"role": "user", "content": f"{event.task} failed: {event.error}"}],
            dict[str, list[dict[str, Any]]],
        ).map(lambda d: d["edits"])

    j = Journal()
    handlers = {"llm.chat": scripted_handler(model)}
    out = run_sync(
        live(CONSTELLATION, OPS, editor=ask, on_error="continue"),
        None,
        journal=j,
        handlers=handlers,
    )
    assert out == Ok({"deployed": "ok: api v2"}, None)
    assert (
        run_sync(
            live(CONSTELLATION, OPS, editor=ask, on_error="continue"),
            None,
            journal=j,
            mode="replay",
        )
        == out
    )


def test_without_a_repair_the_failure_policy_decides() -> None:
    out = run_sync(live(CONSTELLATION, OPS), None)
    assert isinstance(out, Err) and isinstance(out.error, TaskFailed) and out.error.task == "deploy"
    out = run_sync(live(CONSTELLATION, OPS, on_error="continue"), None)
    assert isinstance(out, Err) and isinstance(out.error, PlanFailed)
    assert out.error.skipped == ("check",) and out.error.results == {"build": 1}
    # the editor saw the failure but the output still needs it
    out = run_sync(live(CONSTELLATION, OPS, editor=lambda e, v: [], on_error="continue"), None)
    assert isinstance(out, Err) and isinstance(out.error, PlanFailed)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            Update("build", args={"service": "web"}),
            "task 'build' is done; only pending tasks change",
        ),
        (Remove("deploy"), "task 'deploy' is failed; only pending tasks change"),
        (Add(Task("build", "build", {"service": "x"})), "task id 'build' is already used"),
        (Add(Task("x", "build", {"service": Ref("ghost")})), "would refer to unknown task 'ghost'"),
        (Add(Task("x", "nope", {})), "unknown tool 'nope'"),
        (Add(Task("x", "build", {"service": 3})), "expected a string"),
        (Remove("check"), "the output still refers to task 'check'"),
        (Update("check", deps=("check",)), "would depend on itself"),
        (Rewire("check", "build", "deploy"), "does not use task 'build'"),
        (SetOutput(Ref("nobody")), "the output would refer to unknown task 'nobody'"),
        ({"op": "frobnicate"}, "'op' must be one of"),
    ],
)
def test_every_invariant_is_checked_with_an_error_naming_the_edit(edit: Any, reason: str) -> None:
    def editor(event: Event, view: GraphView) -> list[Any]:
        return [edit] if event.task == "deploy" else []

    out = run_sync(live(CONSTELLATION, OPS, editor=editor, on_error="continue"), None)
    assert isinstance(out, Err) and isinstance(out.error, EditRejected), out
    assert reason in out.error.reason
    assert out.error.after == "deploy"
    shown = edit if isinstance(edit, dict) else edit_to_json(edit)
    assert out.error.edit == shown and str(shown) in str(out.error)


def test_a_cycle_through_pending_tasks_is_rejected() -> None:
    plan = Plan.from_json(
        {
            "tasks": [
                {"id": "a", "tool": "t"},
                {"id": "b", "tool": "t", "args": {"x": "$a"}},
                {"id": "c", "tool": "t", "args": {"x": "$b"}},
            ],
            "output": None,
        }
    )
    graph = Graph.start(plan)
    rejected = graph.apply(Update("a", deps=("c",)), None)
    assert rejected is not None and rejected.reason == "it would make a cycle: a -> c -> b -> a"
    assert graph.tasks["a"].deps == ()


def test_limit_bounds_running_tasks_and_new_tasks_wait_their_turn() -> None:
    running, peak = [0], [0]

    @tool
    async def step(n: int) -> int:
        "A unit of work."
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await anyio.sleep(0.005)
        running[0] -= 1
        return n

    plan = {
        "tasks": [{"id": f"t{i}", "tool": "step", "args": {"n": i}} for i in range(5)],
        "output": None,
    }

    def more(event: Event, view: GraphView) -> list[Any]:
        if not event.task.startswith("t"):
            return []
        return [Add(Task(f"u{event.task[1:]}", "step", {"n": parse_refs(f"${event.task}")}))]

    out = run_sync(live(plan, [step], editor=more, limit=2), None)
    assert out == Ok(None, None) and peak[0] == 2


def test_bad_arguments_are_rejected_when_built() -> None:
    with pytest.raises(PlanInvalid):
        live({"tasks": [{"id": "a", "tool": "nope"}], "output": None}, OPS)
    with pytest.raises(ValueError, match="on_error"):
        live(CONSTELLATION, OPS, on_error="later")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        live(CONSTELLATION, OPS, limit=0)
    with pytest.raises(TypeError, match="editor"):
        live(CONSTELLATION, OPS, editor="fix it")  # type: ignore[arg-type]


# ---------------------------------------------------------------- properties

IDS = ["a", "b", "c", "d", "e", "f"]


@st.composite
def graphs_and_edits(draw: st.DrawFn) -> tuple[Graph, list[Any]]:
    tasks = []
    for i, name in enumerate(IDS[: draw(st.integers(1, 6))]):
        needs = draw(st.lists(st.sampled_from(IDS[:i]), max_size=2, unique=True)) if i else []
        tasks.append({"id": name, "tool": "t", "args": {"x": [f"${n}" for n in needs]}})
    graph = Graph.start(Plan.from_json({"tasks": tasks, "output": f"${tasks[-1]['id']}"}))
    for name in graph.tasks:
        graph.status[name] = draw(st.sampled_from(["pending", "running", "done", "failed"]))
    ref = st.sampled_from([*IDS, "g", "h"])
    edit = st.one_of(
        st.builds(
            lambda i, ns: Add(Task(i, "t", {"x": [Ref(n) for n in ns]})),
            ref,
            st.lists(ref, max_size=2),
        ),
        st.builds(Remove, ref),
        st.builds(lambda i, ns: Update(i, deps=tuple(ns)), ref, st.lists(ref, max_size=2)),
        st.builds(
            lambda i, ns: Update(i, args={"x": [Ref(n) for n in ns]}),
            ref,
            st.lists(ref, max_size=2),
        ),
        st.builds(Rewire, ref, ref, ref),
        st.builds(lambda ns: SetOutput([Ref(n) for n in ns]), st.lists(ref, max_size=2)),
    )
    return graph, draw(st.lists(edit, max_size=8))


def _snapshot(graph: Graph) -> Any:
    return (dict(graph.tasks), dict(graph.status), graph.output, set(graph.ever))


@given(graphs_and_edits())
def test_edits_keep_the_invariants_or_change_nothing(case: tuple[Graph, list[Any]]) -> None:
    graph, edits = case
    for edit in edits:
        assert edit_from_json(edit_to_json(edit)) == edit
        before = _snapshot(graph)
        rejected = graph.apply(edit, None)
        after = _snapshot(graph)
        if rejected is not None:
            assert after == before and rejected.reason
            continue
        live_tasks = graph.live()
        assert _cycle(live_tasks) is None
        for t in live_tasks.values():
            assert all(n in live_tasks for n in t.needs())
        from mce.plan.ir import refs_in

        assert all(r.task in live_tasks for r in refs_in(graph.output))
        for name, state in before[1].items():  # only pending tasks changed
            if state != "pending":
                assert graph.tasks[name] == before[0][name] and graph.status[name] == state
        assert set(graph.ever) >= before[3]


@tool
async def work(name: str, ms: int, inputs: list[Any]) -> str:
    "Work for ms milliseconds."
    await anyio.sleep(ms / 1000)
    if ms == 13:
        raise RuntimeError(f"{name} broke")
    return name


@st.composite
def live_runs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    tasks = []
    n = draw(st.integers(1, 5))
    for i in range(n):
        needs = (
            draw(st.lists(st.sampled_from([f"t{j}" for j in range(i)]), max_size=2, unique=True))
            if i
            else []
        )
        ms = draw(st.sampled_from([0, 1, 2, 3, 13]))
        tasks.append(
            {
                "id": f"t{i}",
                "tool": "work",
                "args": {"name": f"t{i}", "ms": ms, "inputs": [f"${x}" for x in needs]},
            }
        )
    reactions: dict[str, list[dict[str, Any]]] = {}
    for i in range(n):
        if draw(st.booleans()):
            ms = draw(st.sampled_from([0, 1, 2]))
            reactions[f"t{i}"] = [
                {
                    "op": "add",
                    "task": {
                        "id": f"x{i}",
                        "tool": "work",
                        "args": {
                            "name": f"x{i}",
                            "ms": ms,
                            "inputs": [f"$t{i}"] if draw(st.booleans()) else [],
                        },
                    },
                }
            ]
    return {"tasks": tasks, "output": [f"$t{i}" for i in range(n)]}, reactions


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(live_runs(), st.sampled_from(BACKENDS))
def test_edited_runs_replay_and_resume_exactly(case: Any, backend: str) -> None:
    plan, reactions = case

    def editor(event: Event, view: GraphView) -> list[Any]:
        return reactions.get(event.task, []) if event.ok else []

    step = live(plan, [work], editor=editor, on_error="continue")
    j = Journal()
    out = run_sync(step, None, journal=j, backend=backend)
    assert run_sync(step, None, journal=j, mode="replay", backend=backend) == out
    header, entries = j.load()
    keep = len(entries) // 2
    crashed = Journal()
    crashed.write([header, *entries[:keep]] if header else entries[:keep])
    assert run_sync(step, None, journal=crashed, mode="resume", backend=backend) == out
    assert run_sync(step, None, journal=crashed, mode="replay", backend=backend) == out


@pytest.mark.parametrize("backend", BACKENDS)
def test_edits_as_python_objects_read_references_like_their_json_form(backend: Any) -> None:
    # `Add(Task(..., {"target": "$redeploy"}))` must mean what
    # `{"op": "add", "task": {..., "args": {"target": "$redeploy"}}}` means: a
    # reference (a dependency, interpolated), never the literal text "$redeploy".
    def as_objects(event: Event, view: GraphView) -> list[Any]:
        if event.ok or event.task != "deploy":
            return []
        return [
            Add(Task("redeploy", "deploy", {"service": "api", "version": 2})),
            Add(Task("recheck", "health", {"target": "after $redeploy, $$1"})),
            Update("check", args={"target": "$redeploy"}),
            SetOutput({"deployed": "$check", "again": "$recheck"}),
        ]

    def as_json(event: Event, view: GraphView) -> list[Any]:
        if event.ok or event.task != "deploy":
            return []
        return [
            {
                "op": "add",
                "task": {
                    "id": "redeploy",
                    "tool": "deploy",
                    "args": {"service": "api", "version": 2},
                },
            },
            {
                "op": "add",
                "task": {
                    "id": "recheck",
                    "tool": "health",
                    "args": {"target": "after $redeploy, $$1"},
                },
            },
            {"op": "update", "task": "check", "args": {"target": "$redeploy"}},
            {"op": "output", "output": {"deployed": "$check", "again": "$recheck"}},
        ]

    outs = []
    for editor in (as_objects, as_json):
        calls.clear()
        j = Journal()
        step = live(CONSTELLATION, OPS, editor=editor, on_error="continue")
        outs.append(run_sync(step, None, journal=j, backend=backend))
        assert run_sync(step, None, journal=j, mode="replay", backend=backend) == outs[-1]
    assert outs[0] == Ok({"deployed": "ok: api v2", "again": "ok: after api v2, $1"}, None), outs[0]
    assert outs[0] == outs[1]


def test_an_edit_object_with_a_stray_dollar_is_rejected_naming_it() -> None:
    def stray(event: Event, view: GraphView) -> list[Any]:
        return [] if event.ok else [Update("check", args={"target": "costs 5$"})]

    out = run_sync(live(CONSTELLATION, OPS, editor=stray, on_error="continue"), None)
    assert isinstance(out, Err) and isinstance(out.error, EditRejected)
    assert out.error.after == "deploy"
    assert "'$' at offset 7 of 'costs 5$' is not a reference" in out.error.reason


def test_the_editor_view_cannot_change_the_graph_behind_the_invariants() -> None:
    seen: list[str] = []

    def meddler(event: Event, view: GraphView) -> list[Any]:
        if event.task != "build":
            return []
        check = view.tasks["check"]
        for attempt in (
            lambda: operator.setitem(check.args, "target", "meddled"),
            lambda: operator.delitem(check.args, "target"),
            lambda: operator.setitem(view.tasks, "check", Task("check", "health", {"target": "x"})),
            lambda: operator.setitem(view.status, "deploy", "done"),
            lambda: operator.setitem(view.output, "deployed", "meddled"),
        ):
            with pytest.raises(TypeError):
                attempt()
            seen.append("refused")
        # a copy is the editor's own, and an edit built from it goes through the checks
        return [Update("check", args={**check.args, "target": "$deploy"})]

    calls.clear()
    out = run_sync(live(CONSTELLATION, OPS, editor=meddler, on_error="continue"), None)
    assert seen == ["refused"] * 5
    assert isinstance(out, Err) and isinstance(out.error, PlanFailed)  # deploy v1 fails
    assert calls == ["build api", "deploy api v1"]
