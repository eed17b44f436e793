"""Plans: workflows as data - validated, compiled to as-soon-as-ready DAGs, rendered as code.

>>> from mce import run_sync
>>> from mce.tools import tool
>>> @tool
... def shout(text: str) -> str:
...     return text.upper()
>>> plan = Plan.from_json({"tasks": [{"id": "a", "tool": "shout", "args": {"text": "hi"}}], "output": "$a"})
>>> run_sync(compile(plan, [shout]), None).value
'HI'
"""

from mce.plan.codegen import to_python as to_python
from mce.plan.edits import Add as Add
from mce.plan.edits import Edit as Edit
from mce.plan.edits import EditRejected as EditRejected
from mce.plan.edits import GraphView as GraphView
from mce.plan.edits import Remove as Remove
from mce.plan.edits import Rewire as Rewire
from mce.plan.edits import SetOutput as SetOutput
from mce.plan.edits import Update as Update
from mce.plan.ir import PLAN_SCHEMA as PLAN_SCHEMA
from mce.plan.ir import Plan as Plan
from mce.plan.ir import Ref as Ref
from mce.plan.ir import Task as Task
from mce.plan.ir import Template as Template
from mce.plan.ir import template as template
from mce.plan.live import Event as Event
from mce.plan.live import live as live
from mce.plan.live import stream_plan as stream_plan
from mce.plan.llmcompiler import parse_llmcompiler as parse_llmcompiler
from mce.plan.run import PlanFailed as PlanFailed
from mce.plan.run import TaskFailed as TaskFailed
from mce.plan.run import compile as compile
from mce.plan.run import fill as fill
from mce.plan.run import finish as finish
from mce.plan.run import task as task
from mce.plan.validate import PlanInvalid as PlanInvalid
from mce.plan.validate import Problem as Problem
from mce.plan.validate import validate as validate

__all__ = [
    "PLAN_SCHEMA",
    "Add",
    "Edit",
    "EditRejected",
    "Event",
    "GraphView",
    "Plan",
    "PlanFailed",
    "PlanInvalid",
    "Problem",
    "Ref",
    "Remove",
    "Rewire",
    "SetOutput",
    "Task",
    "TaskFailed",
    "Template",
    "Update",
    "compile",
    "fill",
    "finish",
    "live",
    "parse_llmcompiler",
    "stream_plan",
    "task",
    "template",
    "to_python",
    "validate",
]
