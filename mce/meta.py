"""Meta-agents: models that write workflows, which mce validates and runs.

* `compile_and_join(task, tools, ...)` - LLMCompiler style: a planner model
  writes a plan (structured output in the plan JSON schema), mce validates
  and compiles it into an as-soon-as-ready DAG and runs it, and a joiner
  model either answers from the results or asks for a new plan, given what
  failed. Invalid plans are sent back to the planner with every problem.
* `meta_agent(task, sub_agents, budget=...)` - the MCE paper's meta-agent: a
  model decomposes the task into sub-tasks for named sub-agents (each a
  function `instruction -> Step`), they run concurrently inside the
  parent's run, under one `Budget`, and a model writes the synthesis.

Everything they do is effects, so a meta-agent's run is journaled and
replays exactly.

>>> from mce import run_sync
>>> from mce.llm import ScriptedModel, json_reply, say, scripted_handler
>>> from mce.tools import tool
>>> @tool
... def square(x: int) -> int:
...     return x * x
>>> model = ScriptedModel().queue(
...     json_reply({"tasks": [{"id": "a", "tool": "square", "args": {"x": 7}}], "output": "$a"}),
...     json_reply({"action": "answer", "answer": "49", "reason": "computed"}),
... )
>>> out = run_sync(compile_and_join("7 squared?", [square]), None, handlers={"llm.chat": scripted_handler(model)})
>>> out.value.answer, out.value.rounds
('49', 1)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, final

from attrs import frozen

from mce._plan_reuse import _Finished, _reused, _with_earlier
from mce._runtime.subrun import run_child
from mce.budget import Budget, within_budget
from mce.effects import effect
from mce.llm import LLMError, Usage, chat, structured
from mce.plan import PLAN_SCHEMA, Plan, PlanInvalid, validate
from mce.plan.ir import load_json
from mce.plan.run import Observations, observe
from mce.schema import to_json
from mce.step import Step, fail, gather, pure
from mce.tools import Registry, Tool

MetaErrorKind = Literal["no_valid_plan", "out_of_replans", "unknown_agent"]
"""Why a meta-agent gave up (`MetaError.kind`)."""


@final
@frozen
class MetaError:
    """A meta-agent gave up: why, and the problems or failures of its last attempt."""

    kind: MetaErrorKind
    message: str
    details: tuple[str, ...] = ()


@final
@frozen
class Decision:
    """The joiner's verdict on a round's results."""

    action: Literal["answer", "replan"]
    answer: str = ""
    reason: str = ""


@final
@frozen
class JoinResult:
    """The final answer, the plans tried, and how many rounds it took."""

    answer: str
    plans: tuple[dict[str, Any], ...]
    rounds: int
    results: Any = None


def _tool_lines(registry: Registry) -> str:
    return "\n".join(
        f"- {t.name}: {t.description} Arguments: {json.dumps(t.parameters['properties'])}"
        for t in registry
    )


def default_planner(
    task: str, registry: Registry, feedback: list[str], *, model: str | None = None
) -> Step[object, LLMError, Any]:
    """Ask a model for a plan in the plan JSON schema; the value is the raw plan JSON.

    >>> from mce import run_sync
    >>> from mce.llm import ScriptedModel, json_reply, scripted_handler
    >>> model = ScriptedModel().queue(json_reply({"tasks": [], "output": None}))
    >>> run_sync(default_planner("t", Registry(), []), None, handlers={"llm.chat": scripted_handler(model)}).value
    {'tasks': [], 'output': None}
    >>> model.requests[0]["response_format"]["json_schema"]["name"]
    'plan'
    """
    system = (
        "You plan tool calls as a DAG. Reply with a JSON plan: tasks with an id, a tool and "
        'args; an argument "$id" (or "$id.field") uses another task\'s output; independent '
        "tasks run in parallel. Tools:\n" + _tool_lines(registry)
    )
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": task},
    ]
    messages += [{"role": "user", "content": note} for note in feedback]
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "plan", "schema": PLAN_SCHEMA},
    }

    def parse(reply: Any) -> Any:
        try:
            return pure(load_json(reply.content or ""))
        except PlanInvalid:
            return pure(reply.content)  # validation reports why it is not a plan

    return chat(messages, model=model, response_format=response_format).then(parse)


def default_joiner(
    task: str, plan: dict[str, Any], outcome: Any, *, model: str | None = None
) -> Step[object, LLMError, Decision]:
    """Ask a model whether the results answer the task (or a new plan is needed).

    >>> from mce import run_sync
    >>> from mce.llm import ScriptedModel, json_reply, scripted_handler
    >>> model = ScriptedModel().queue(json_reply({"action": "answer", "answer": "42"}))
    >>> run_sync(default_joiner("t", {}, 42), None, handlers={"llm.chat": scripted_handler(model)}).value
    Decision(action='answer', answer='42', reason='')
    """
    prompt = (
        f"Task: {task}\nPlan: {json.dumps(plan)}\nResults: {json.dumps(to_json(outcome), default=str)}\n"
        'Answer the task from the results (action "answer"), or ask for a new plan '
        '(action "replan") and say why.'
    )
    return structured([{"role": "user", "content": prompt}], Decision, model=model)


Planner = Callable[[str, Registry, list[str]], Step[Any, Any, Any]]
Joiner = Callable[[str, dict[str, Any], Any], Step[Any, Any, Decision]]


def compile_and_join(
    task: str,
    tools: Registry | Iterable[Tool],
    *,
    planner: Planner | None = None,
    joiner: Joiner | None = None,
    max_replans: int = 2,
    limit: int | None = None,
    model: str | None = None,
) -> Step[object, Any, JoinResult]:
    """Plan, validate, run, join; replan on invalid plans, failed tasks or the joiner's request.

    At most `1 + max_replans` plans are tried; then `MetaError("out_of_replans")`.
    Each plan runs to the end (`on_error="continue"`: a failure cancels
    nothing). A replan is asked for with the previous plan and the
    observations so far - each task's result or error - and keeps its work:
    a task that finished is not run again when the new plan keeps it (same
    id, tool and arguments) or refers to it by id without redefining it -
    unless a task it was computed from is redefined: then it runs again.

    >>> from mce import run_sync
    >>> from mce.llm import ScriptedModel, say, scripted_handler
    >>> never = ScriptedModel().when(matches=lambda ms: True, reply=say("no plan"))
    >>> run_sync(compile_and_join("t", [], max_replans=0), None,
    ...          handlers={"llm.chat": scripted_handler(never)}).error.kind
    'out_of_replans'
    """
    if max_replans < 0:
        raise ValueError(f"max_replans must be >= 0, got {max_replans}")
    registry = tools if isinstance(tools, Registry) else Registry(tools)
    plan_with: Planner = planner or (lambda t, r, f: default_planner(t, r, f, model=model))
    join_with: Joiner = joiner or (lambda t, p, o: default_joiner(t, p, o, model=model))
    loop = _Replanning(task, registry, plan_with, join_with, max_replans, limit)
    agent: Step[object, Any, JoinResult] = loop.attempt(0, [], (), {})
    return agent


@final
@frozen
class _Replanning:
    """`compile_and_join`'s rounds: plan, check the plan, run it, judge the observations."""

    task: str
    registry: Registry
    plan_with: Planner
    join_with: Joiner
    max_replans: int
    limit: int | None

    def attempt(
        self,
        round_: int,
        feedback: list[str],
        plans: tuple[dict[str, Any], ...],
        finished: _Finished,
    ) -> Any:
        if round_ > self.max_replans:
            return fail(
                MetaError("out_of_replans", f"no answer after {round_} plans", tuple(feedback))
            )
        return self.plan_with(self.task, self.registry, feedback).then(
            lambda raw: self.check(raw, round_, feedback, plans, finished)
        )

    def check(
        self,
        raw: Any,
        round_: int,
        feedback: list[str],
        plans: tuple[dict[str, Any], ...],
        finished: _Finished,
    ) -> Any:
        full = _with_earlier(raw, finished)
        problems = validate(full, self.registry)
        if problems:
            note = "Your plan was invalid:\n" + "\n".join(f"- {p}" for p in problems)
            return self.attempt(round_ + 1, [*feedback, note], plans, finished)
        plan = Plan.from_json(full)
        own = Plan.from_json(raw)
        plan, reuse = _reused(plan, own, finished)
        tried = (*plans, own.to_json())
        return observe(plan, self.registry, limit=self.limit, reuse=reuse).then(
            lambda seen: self.judge(seen, plan, round_, feedback, tried, finished)
        )

    def judge(
        self,
        seen: Observations,
        plan: Plan,
        round_: int,
        feedback: list[str],
        tried: tuple[dict[str, Any], ...],
        finished: _Finished,
    ) -> Any:
        by_id = {t.id: t for t in plan.tasks}
        finished = {**finished, **{n: (by_id[n], v) for n, v in seen.results.items()}}
        context = (
            f"The previous plan was: {json.dumps(tried[-1])}\n"
            f"Observations so far:\n{seen.describe()}\n"
            "A finished task can be used by its id ($id) without redefining it; it will not "
            "run again. Give new tasks new ids."
        )
        if not seen.ok:
            note = f"Running the plan failed.\n{context}\nMake a new plan."
            return self.attempt(round_ + 1, [*feedback, note], tried, finished)

        def decide(decision: Decision) -> Any:
            if decision.action == "answer":
                return pure(JoinResult(decision.answer, tried, round_ + 1, seen.output))
            note = (
                f"The last plan's results were not enough: {decision.reason}.\n{context}\n"
                "Make a new plan."
            )
            return self.attempt(round_ + 1, [*feedback, note], tried, finished)

        return self.join_with(self.task, tried[-1], seen.output).then(decide)


# ---------------------------------------------------------------- meta-agent


@final
@frozen
class Subtask:
    """One piece of the work, for one sub-agent."""

    agent: str
    instruction: str


@final
@frozen
class Decomposition:
    """How a model splits a task among sub-agents."""

    subtasks: list[Subtask]


@final
@frozen
class MetaResult:
    """The synthesis, and what each sub-agent returned."""

    answer: str
    subtasks: tuple[Subtask, ...]
    results: tuple[Any, ...]


SubAgent = Callable[[str], Step[Any, Any, Any]]


def meta_agent(
    task: str,
    sub_agents: Mapping[str, SubAgent],
    *,
    budget: Budget | None = None,
    model: str | None = None,
) -> Step[object, Any, MetaResult]:
    """Decompose `task` with a model, run the sub-agents concurrently, synthesize - under `budget`.

    `sub_agents` maps names (shown to the model) to functions from an
    instruction to a `Step`. The budget covers every call the whole
    meta-agent makes, sub-agents included: exceeding it cancels what is
    still running and fails with `BudgetExceeded`.

    >>> from mce import pure, run_sync
    >>> from mce.llm import ScriptedModel, json_reply, say, scripted_handler
    >>> model = ScriptedModel().queue(
    ...     json_reply({"subtasks": [{"agent": "echo", "instruction": "hi"}]}), say("done: HI"))
    >>> out = run_sync(meta_agent("t", {"echo": lambda text: pure(text.upper())}), None,
    ...                handlers={"llm.chat": scripted_handler(model)})
    >>> out.value.results, out.value.answer
    (('HI',), 'done: HI')
    """
    names = sorted(sub_agents)
    decompose_prompt = (
        f"Task: {task}\nSplit it into subtasks for these agents: {', '.join(names)}. "
        "Subtasks for different agents run in parallel."
    )

    def spawn(plan: Decomposition) -> Any:
        unknown = [s.agent for s in plan.subtasks if s.agent not in sub_agents]
        if unknown:
            return fail(
                MetaError(
                    "unknown_agent", f"the model chose unknown agents {unknown}", tuple(names)
                )
            )
        # named, so a trace, the timeline and OpenTelemetry show which agent ran what
        runs = gather(
            [sub_agents[s.agent](s.instruction).named(f"agent {s.agent}") for s in plan.subtasks]
        )
        return runs.then(lambda results: synthesize(plan, results))

    def synthesize(plan: Decomposition, results: tuple[Any, ...]) -> Any:
        lines = [
            f"[{s.agent}] {s.instruction}: {json.dumps(to_json(r), default=str)}"
            for s, r in zip(plan.subtasks, results, strict=True)
        ]
        prompt = (
            f"Task: {task}\nResults of the sub-agents:\n"
            + "\n".join(lines)
            + "\nWrite the final answer."
        )
        return chat([{"role": "user", "content": prompt}], model=model).map(
            lambda reply: MetaResult(reply.content or "", tuple(plan.subtasks), results)
        )

    work = structured(
        [{"role": "user", "content": decompose_prompt}], Decomposition, model=model
    ).then(spawn)
    result: Step[object, Any, MetaResult] = (
        within_budget(work, budget) if budget is not None else work
    )
    return result


@final
@frozen
class SubAgentRun:
    """What a sub-agent wrapped by `remote_agent` did: the journaled value of its effect.

    `ok` and `result` (its value or its error); `effects`, the journal
    records of every effect it made (positions relative to the sub-agent);
    `calls` and `usage`, what it used - charged to every budget around it;
    `exhausted`, which part of that budget's allowance ran out, if any.

    >>> SubAgentRun(True, 42, (), 0, Usage(0, 0)).result
    42
    """

    ok: bool
    result: Any
    effects: tuple[dict[str, Any], ...]
    calls: int
    usage: Usage
    exhausted: str | None = None

    @property
    def __mce_subrun__(self) -> tuple[int, str | None]:
        """What `mce.budget` charges to the enclosing budgets, beyond the tokens in `usage`."""
        return self.calls, self.exhausted


def remote_agent(name: str, agent: SubAgent, handlers: Mapping[str, Any] | None = None) -> SubAgent:
    """A sub-agent that runs as one effect (kind `"agent.<name>"`), remotely on a cluster executor.

    The sub-agent's whole run happens inside the effect's handler - on a Ray
    worker under `RayExecutor`, here otherwise - with `handlers`. It runs
    under what every enclosing budget still allows, and the calls and tokens
    it uses count against each of them. Its effects are recorded in the
    parent's journal inside the effect's value (a `SubAgentRun`), and its
    trace events reach the parent's tracer (in this process) with positions
    under the effect's; the parent replays without re-running it.

    >>> from mce import pure, run_sync
    >>> shout = remote_agent("shout", lambda text: pure(text.upper()))
    >>> run_sync(shout("hi"), None).value
    'HI'
    """
    table = dict(handlers or {})

    async def handler(request: dict[str, Any]) -> SubAgentRun:
        done = await run_child(agent(request["instruction"]), table)
        return SubAgentRun(
            done.ok,
            done.result,
            done.records,
            done.calls,
            Usage(done.prompt_tokens, done.completion_tokens),
            done.exhausted,
        )

    def unwrap(done: SubAgentRun) -> Step[object, Any, Any]:
        return pure(done.result) if done.ok else fail(done.result)

    def start(instruction: str) -> Step[object, Any, Any]:
        return effect(
            f"agent.{name}",
            {"instruction": instruction},
            handler=handler,
            remote=True,
            into=SubAgentRun,  # replayed as what it is: the journal names no class
        ).then(unwrap)

    return start


__all__ = [
    "Decision",
    "Decomposition",
    "JoinResult",
    "Joiner",
    "MetaError",
    "MetaErrorKind",
    "MetaResult",
    "PlanInvalid",
    "Planner",
    "SubAgent",
    "SubAgentRun",
    "Subtask",
    "compile_and_join",
    "default_joiner",
    "default_planner",
    "meta_agent",
    "remote_agent",
]
