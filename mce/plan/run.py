"""Running a plan: each task starts as soon as what it needs is ready.

Every task is a shared step (`share`, keyed `task:<id>`, so its effects are
journaled at positions derived from its id): it waits for the tasks it
references or depends on, fills their outputs into its arguments, and calls
its tool. The plan forces every task concurrently - there is no barrier
between "levels" - with at most `limit` tasks started at once, and yields
its output with every reference filled in. A task that fails fails the plan
with `TaskFailed` naming it.

`task` and `finish` are the building blocks that both `compile` and the code
`to_python` generates use, so the two build identical workflows.

>>> from mce import run_sync
>>> from mce.tools import tool
>>> @tool
... def double(x: int) -> int:
...     return 2 * x
>>> plan = {"tasks": [{"id": "a", "tool": "double", "args": {"x": 2}},
...                   {"id": "b", "tool": "double", "args": {"x": "$a"}}], "output": ["$a", "$b"]}
>>> run_sync(compile(plan, [double]), None).value
[4, 8]
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Never, final

import attrs
from attrs import frozen

from mce.plan._schedule import after, all_of, ready_first
from mce.plan.ir import Plan, Ref, Template, refs_in
from mce.plan.validate import PlanInvalid, topological_order, validate
from mce.retry import RetryPolicy
from mce.schema import to_json
from mce.step import Step, fail, gather, pure, share
from mce.tools import Registry, Tool


@final
@frozen
class TaskFailed:
    """A plan's task failed: its id, tool, and the tool's error.

    >>> str(TaskFailed("b", "search", "timeout"))
    "task 'b' (search) failed: timeout"
    """

    task: str
    tool: str
    error: Any

    def __str__(self) -> str:
        return f"task {self.task!r} ({self.tool}) failed: {self.error}"


@final
@frozen
class PlanFailed:
    """Under `on_error="continue"`: some tasks failed; everything that could finish did.

    `failures` are the tasks that failed themselves, `skipped` the tasks not
    started because something they need failed, `results` the outputs of the
    tasks that finished (by id).

    >>> print(PlanFailed((TaskFailed("b", "search", "timeout"),), ("c",), {"a": 1}))
    1 task failed (task 'b' (search) failed: timeout); skipped because they need it: ['c']
    """

    failures: tuple[TaskFailed, ...]
    skipped: tuple[str, ...] = ()
    results: Mapping[str, Any] = attrs.field(factory=dict)

    def __str__(self) -> str:
        n = len(self.failures)
        text = f"{n} task{'s' if n != 1 else ''} failed ({'; '.join(map(str, self.failures))})"
        if self.skipped:
            text += f"; skipped because they need it: {list(self.skipped)}"
        return text


OnError = Literal["fail_fast", "continue"]
"""What a failing task does to the rest of a plan: cancel it all, or let independent tasks go on."""


@final
@frozen
class _Done:
    task: str
    value: Any


@final
@frozen
class _Failed:
    task: str
    error: TaskFailed


@final
@frozen
class _Skipped:
    task: str


def _check_on_error(on_error: object) -> None:
    if on_error not in ("fail_fast", "continue"):
        raise ValueError(f'on_error must be "fail_fast" or "continue", got {on_error!r}')


class MissingField(LookupError):
    """A reference's field path does not exist in the referenced task's output."""


def _data_fields(value: Any) -> tuple[str, ...]:
    """The names of a record's data fields (attrs, dataclass, pydantic, named tuple)."""
    cls = type(value)
    if attrs.has(cls):
        return tuple(f.name for f in attrs.fields(cls))
    if dataclasses.is_dataclass(value):
        return tuple(f.name for f in dataclasses.fields(value))
    model_fields = getattr(cls, "model_fields", None)
    if isinstance(model_fields, dict):
        return tuple(model_fields)
    named = getattr(cls, "_fields", None)
    if isinstance(value, tuple) and isinstance(named, tuple):
        return tuple(n for n in named if isinstance(n, str))
    return ()


def _field(value: Any, part: str, ref: Ref) -> Any:
    # Only data: a key, an index, or a record's declared field - never a
    # method or any other attribute, which a plan from a model could name.
    if isinstance(value, Mapping):
        if part in value:
            return value[part]
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes) and part.isdigit():
        index = int(part)
        if index < len(value):
            return value[index]
    elif part in _data_fields(value):
        return getattr(value, part)
    raise MissingField(f"{ref.text}: the output of task {ref.task!r} has no field {part!r}")


def _text(value: Any) -> str:
    """A value as it is interpolated into a template: a string as itself, else JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(to_json(value), ensure_ascii=False, default=str)


def fill(template: Any, outputs: Mapping[str, Any]) -> Any:
    """`template` with every `Ref` replaced by the referenced output (or field of it).

    >>> fill({"q": Ref("a", ("title",)), "t": Template(("n=", Ref("b")))}, {"a": {"title": "mce"}, "b": [1]})
    {'q': 'mce', 't': 'n=[1]'}
    """
    if isinstance(template, Ref):
        value = outputs[template.task]
        for part in template.path:
            value = _field(value, part, template)
        return value
    if isinstance(template, Template):
        return "".join(p if isinstance(p, str) else _text(fill(p, outputs)) for p in template.parts)
    if isinstance(template, list):
        return [fill(v, outputs) for v in template]
    if isinstance(template, dict):
        return {k: fill(v, outputs) for k, v in template.items()}
    return template


def task(
    task_id: str,
    tool: Tool,
    args: dict[str, Any],
    needs: Mapping[str, Step[Any, Any, Any]],
    *,
    on_error: OnError = "fail_fast",
    retry: RetryPolicy | None = None,
) -> Step[object, TaskFailed, Any]:
    """One task: wait for `needs` (task id -> its step), fill them into `args`, call `tool`.

    With `retry`, the tool call is retried under that policy (each attempt
    journaled).
    The step is shared under the key `task:<task_id>`: it runs once per run
    however many tasks use it. With `on_error="continue"` it never fails:
    its value records whether it finished, failed, or was skipped because a
    task it needs did not finish (for `finish` to sort out); `needs` must
    then be tasks made with `"continue"` too.

    >>> from mce import run_sync
    >>> from mce.tools import tool
    >>> @tool
    ... def inc(x: int) -> int:
    ...     return x + 1
    >>> one = task("one", inc, {"x": 0}, {})
    >>> two = task("two", inc, {"x": Ref("one")}, {"one": one})
    >>> run_sync(finish([one, two], [Ref("one"), Ref("two")], {"one": one, "two": two}), None).value
    [1, 2]
    """
    _check_on_error(on_error)
    names = list(needs)

    def call(values: tuple[Any, ...]) -> Step[object, Any, Any]:
        try:
            filled = fill(args, dict(zip(names, values, strict=True)))
        except MissingField as exc:
            return fail(TaskFailed(task_id, tool.name, str(exc)))
        return tool.call(filled) if retry is None else tool.call(filled).retry(retry)

    def named(e: Any) -> TaskFailed:
        return e if isinstance(e, TaskFailed) else TaskFailed(task_id, tool.name, e)

    inputs = all_of([needs[n] for n in names])
    if on_error == "fail_fast":
        return share(inputs.then(call).map_error(named), key=f"task:{task_id}")

    def guarded(values: tuple[Any, ...]) -> Step[object, Never, Any]:
        if any(not isinstance(v, _Done) for v in values):
            return pure(_Skipped(task_id))
        ran = call(tuple(v.value for v in values)).map_error(named)
        return ran.map(lambda v: _Done(task_id, v)).recover(lambda e: pure(_Failed(task_id, e)))

    return share(inputs.then(guarded), key=f"task:{task_id}")


def finish(
    tasks: Sequence[Step[Any, Any, Any]],
    output: Any,
    needs: Mapping[str, Step[Any, Any, Any]],
    *,
    limit: int | None = None,
    on_error: OnError = "fail_fast",
) -> Step[object, TaskFailed | PlanFailed, Any]:
    """Run every task (at most `limit` started at a time) and yield `output` filled in.

    With `on_error="continue"` (tasks made by `task(..., on_error="continue")`)
    a failure cancels nothing: independent tasks run to the end, and then
    the plan fails with `PlanFailed` listing what failed, what was skipped
    and every result that was made.

    >>> from mce import pure, run_sync
    >>> a = pure({"n": 3})
    >>> run_sync(finish([a], {"n": Ref("a", ("n",))}, {"a": a}), None).value
    {'n': 3}
    """
    return _finish(tasks, output, needs, limit, on_error, None)


def _finish(
    tasks: Sequence[Step[Any, Any, Any]],
    output: Any,
    needs: Mapping[str, Step[Any, Any, Any]],
    limit: int | None,
    on_error: OnError,
    inputs: Sequence[Sequence[Step[Any, Any, Any]]] | None,
) -> Step[object, TaskFailed | PlanFailed, Any]:
    """`finish`; with `inputs` (the tasks each task needs), a task is forced once they are done.

    Every task is a shared step that waits for its inputs anyway; forcing
    it only once they have finished spares the run a task (and its wait)
    for every task not ready yet, so that the first tasks start after the
    plan's branches have been set up - not after every task has been
    started and has begun to wait. Which tasks run, with what, and every
    journal position are the same either way.
    """
    _check_on_error(on_error)
    names = list(needs)

    def result(values: tuple[Any, ...]) -> Step[object, TaskFailed, Any]:
        try:
            return pure(fill(output, dict(zip(names, values, strict=True))))
        except MissingField as exc:
            return fail(TaskFailed("output", "-", str(exc)))

    if inputs is None:
        every = gather(list(tasks), limit=limit)
    else:
        branches = [after(i, t) for t, i in zip(tasks, inputs, strict=True)]
        every = ready_first(branches, [not i for i in inputs], limit)
    if on_error == "fail_fast":
        return every.then(lambda _: all_of([needs[n] for n in names]).then(result))

    def settle(outcomes: tuple[Any, ...]) -> Step[object, TaskFailed | PlanFailed, Any]:
        done = {o.task: o.value for o in outcomes if isinstance(o, _Done)}
        failures = tuple(o.error for o in outcomes if isinstance(o, _Failed))
        if failures:
            skipped = tuple(o.task for o in outcomes if isinstance(o, _Skipped))
            return fail(PlanFailed(failures, skipped, done))
        return all_of([needs[n] for n in names]).then(
            lambda values: result(tuple(v.value for v in values))
        )

    return every.then(settle)


def _steps(
    plan: Plan,
    registry: Registry,
    on_error: OnError,
    retry: RetryPolicy | None,
    reuse: Mapping[str, Any],
) -> tuple[dict[str, Step[Any, Any, Any]], list[list[Step[Any, Any, Any]]]]:
    """Every task's step, in topological order, and the steps each one needs."""
    by_id = {t.id: t for t in plan.tasks}
    steps: dict[str, Step[Any, Any, Any]] = {}
    inputs: list[list[Step[Any, Any, Any]]] = []
    for name in topological_order(by_id):
        t = by_id[name]
        if name in reuse:  # finished in an earlier plan of the same run: not run again
            value = reuse[name]
            steps[name] = pure(value if on_error == "fail_fast" else _Done(name, value))
            inputs.append([])
            continue
        needs = {n: steps[n] for n in t.needs()}
        steps[name] = task(name, registry[t.tool], t.args, needs, on_error=on_error, retry=retry)
        inputs.append(list(needs.values()))
    return steps, inputs


def build(
    plan: Plan,
    registry: Registry,
    *,
    limit: int | None = None,
    on_error: OnError = "fail_fast",
    retry: RetryPolicy | None = None,
) -> Step[object, TaskFailed | PlanFailed, Any]:
    """The workflow of an already validated plan (tasks in topological order)."""
    steps, inputs = _steps(plan, registry, on_error, retry, {})
    output_needs = {r.task: steps[r.task] for r in _refs(plan.output)}
    return _finish(list(steps.values()), plan.output, output_needs, limit, on_error, inputs)


@final
@frozen
class Observations:
    """What running a plan showed: each task's result or error, the tasks skipped, the output.

    `output` is None unless every task the output needs finished (`ok`).

    >>> Observations(True, 3, {"a": 3}).ok
    True
    """

    ok: bool
    output: Any = None
    results: Mapping[str, Any] = attrs.field(factory=dict)
    errors: Mapping[str, TaskFailed] = attrs.field(factory=dict)
    skipped: tuple[str, ...] = ()
    problem: str | None = None

    def describe(self) -> str:
        """The observations as text for a planner or a joiner."""
        lines = [
            f"- task {k}: {json.dumps(to_json(v), default=str)[:300]}"
            for k, v in self.results.items()
        ]
        lines += [f"- task {k} failed: {e.error}" for k, e in self.errors.items()]
        lines += [f"- task {k} did not run (it needs a failed task)" for k in self.skipped]
        if self.problem:
            lines.append(f"- {self.problem}")
        return "\n".join(lines)


def observe(
    plan: Plan,
    registry: Registry,
    *,
    limit: int | None = None,
    retry: RetryPolicy | None = None,
    reuse: Mapping[str, Any] | None = None,
) -> Step[object, Never, Observations]:
    """Run a validated plan to the end whatever fails (`on_error="continue"`) and report everything.

    Tasks in `reuse` (id -> value) are not run: their values are used as they are.

    >>> from mce import run_sync
    >>> from mce.tools import tool
    >>> @tool
    ... def half(x: int) -> int:
    ...     return 10 // x
    >>> plan = Plan.from_json({"tasks": [{"id": "a", "tool": "half", "args": {"x": 0}},
    ...                                  {"id": "b", "tool": "half", "args": {"x": 2}}], "output": "$b"})
    >>> seen = run_sync(observe(plan, Registry([half])), None).value
    >>> seen.ok, seen.output, dict(seen.results), list(seen.errors)
    (True, 5, {'b': 5}, ['a'])
    """
    steps, inputs = _steps(plan, registry, "continue", retry, dict(reuse or {}))

    def settle(outcomes: tuple[Any, ...]) -> Step[object, Never, Observations]:
        results = {o.task: o.value for o in outcomes if isinstance(o, _Done)}
        errors = {o.task: o.error for o in outcomes if isinstance(o, _Failed)}
        skipped = tuple(o.task for o in outcomes if isinstance(o, _Skipped))
        if any(r.task not in results for r in refs_in(plan.output)):
            return pure(Observations(False, None, results, errors, skipped))
        try:
            output = fill(plan.output, results)
        except MissingField as exc:
            return pure(Observations(False, None, results, errors, skipped, str(exc)))
        return pure(Observations(True, output, results, errors, skipped))

    branches = [after(i, t) for t, i in zip(steps.values(), inputs, strict=True)]
    return ready_first(branches, [not i for i in inputs], limit).then(settle)


def _refs(value: Any) -> list[Ref]:
    seen: dict[str, Ref] = {}
    for r in refs_in(value):
        seen.setdefault(r.task, r)
    return list(seen.values())


def compile(
    plan: Plan | dict[str, Any] | str,
    tools: Registry | Iterable[Tool],
    *,
    limit: int | None = None,
    on_error: OnError = "fail_fast",
    retry: RetryPolicy | None = None,
    **limits: int,
) -> Step[object, TaskFailed | PlanFailed, Any]:
    """Validate `plan` against `tools` and build its workflow; `PlanInvalid` lists the problems.

    `limit` bounds how many tasks start at once; `max_tasks`, `max_fan_out`
    and `max_depth` are passed to `validate`. `on_error="fail_fast"` (the
    default) fails the plan with the first `TaskFailed`, cancelling the
    rest; `"continue"` keeps independent tasks running, skips the tasks
    that need a failed one, and fails with `PlanFailed` once all is settled.
    `retry` retries every task's tool call under that `RetryPolicy`.

    >>> compile({"tasks": [{"id": "a", "tool": "nope"}], "output": "$a"}, [])
    Traceback (most recent call last):
    ...
    mce.plan.validate.PlanInvalid: the plan is invalid (1 problem):
      - task 'a': unknown tool 'nope' (available: [])
    """
    registry = tools if isinstance(tools, Registry) else Registry(tools)
    problems = validate(plan, registry, **limits)
    if problems:
        raise PlanInvalid(problems)
    parsed = plan if isinstance(plan, Plan) else Plan.from_json(plan)
    if limit is not None and limit < 1:
        raise ValueError(f"compile(limit=...) needs limit >= 1, got {limit}")
    _check_on_error(on_error)
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"compile(retry=...) needs a RetryPolicy, got {retry!r}")
    return build(parsed, registry, limit=limit, on_error=on_error, retry=retry)


def output_needs(plan: Plan) -> list[str]:
    """Ids of the tasks the plan's output refers to, in first-seen order."""
    return [r.task for r in _refs(plan.output)]


__all__ = [
    "MissingField",
    "Observations",
    "OnError",
    "PlanFailed",
    "TaskFailed",
    "build",
    "compile",
    "fill",
    "finish",
    "observe",
    "output_needs",
    "task",
]
