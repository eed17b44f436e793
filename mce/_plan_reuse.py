"""Replanning keeps finished work: which earlier tasks a new plan can refer to and reuse.

Used by `mce.meta.compile_and_join` between rounds: `_with_earlier` adds
the finished tasks a new plan does not redefine (so its `$id`s reach them),
`_reused` says which results it reuses and cuts the plan to what runs.
"""

from __future__ import annotations

from typing import Any

from mce.plan import Plan, Task
from mce.plan.ir import refs_in
from mce.plan.validate import topological_order

_Finished = dict[str, tuple[Task, Any]]  # task id -> (its definition, its result), per run


def _with_earlier(raw: Any, finished: _Finished) -> Any:
    """The plan plus the finished tasks it does not redefine (so `$id` reaches them)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("tasks"), list) or not finished:
        return raw
    mine = {t.get("id") for t in raw["tasks"] if isinstance(t, dict)}
    earlier = [
        Plan((definition,), None).to_json()["tasks"][0]
        for name, (definition, _) in finished.items()
        if name not in mine
    ]
    return {**raw, "tasks": [*raw["tasks"], *earlier]}


def _reused(plan: Plan, own: Plan, finished: _Finished) -> tuple[Plan, dict[str, Any]]:
    """`plan` (the new plan with the earlier tasks) cut to what runs, and the results it reuses.

    A finished task is reused when the new plan keeps it as it was and
    everything it was computed from is reused too: one built on a task the
    new plan redefines runs again, on the new value. Earlier work the new
    plan (`own`, as the planner wrote it) does not use and cannot reuse is
    left out (not run again for nothing).
    """
    by_id = {t.id: t for t in plan.tasks}
    reuse: dict[str, Any] = {}
    for name in topological_order(by_id):
        t = by_id[name]
        if name in finished and finished[name][0] == t and all(n in reuse for n in t.needs()):
            reuse[name] = finished[name][1]
    used: set[str] = set()
    todo = [r.task for r in refs_in(own.output)] + [n for t in own.tasks for n in t.needs()]
    while todo:
        name = todo.pop()
        if name not in used and name in by_id:
            used.add(name)
            todo.extend(by_id[name].needs())
    mine = {t.id for t in own.tasks}
    kept = tuple(t for t in plan.tasks if t.id in mine or t.id in reuse or t.id in used)
    return Plan(kept, plan.output), reuse
