"""`@tool` keeps the parameters and the (awaited) return type; error kinds are Literals."""

# fmt: off
# (an expected error's marker stays on the line the checkers report)

from typing import assert_type

from mce import EffectError, Step, tool
from mce.tools import ToolError

from ._state import Desk


@tool
def add(a: int, b: int = 1) -> int:
    return a + b


@tool(name="lookup", timeout=5)
async def find(key: str) -> list[str]:
    return [key]


ok: Step[Desk, ToolError | EffectError, int] = add(1, b=2)
found: Step[Desk, ToolError | EffectError, list[str]] = find("k")
add("one")  # E: mypy[arg-type] pyright[reportArgumentType]
add(1, c=2)  # E: mypy[call-arg] pyright[reportCallIssue]
find()  # E: mypy[call-arg] pyright[reportCallIssue]
wrong: Step[Desk, ToolError | EffectError, str] = add(1)  # E: mypy[assignment] pyright[reportAssignmentType]
ToolError("add", "oops", "message")  # E: mypy[arg-type] pyright[reportArgumentType]


def recovered() -> Step[Desk, ToolError | EffectError, int]:
    return add(1).recover(lambda e: add(0) if e.kind == "timeout" else add(2))


assert_type(recovered(), Step[Desk, ToolError | EffectError, int])
