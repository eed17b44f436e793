"""mce tools and workflows that the end-to-end tests serve with `mce mcp serve`."""

from __future__ import annotations

from attrs import frozen

from mce import Step, fail, pure
from mce.llm import ScriptedModel, chat, say, scripted_handler
from mce.mcp import workflow
from mce.tools import tool


@frozen
class DivisionByZero:
    """A typed error: its message is what an MCP client sees."""

    numerator: float

    def __str__(self) -> str:
        return f"cannot divide {self.numerator} by zero"


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


@workflow
def divide(a: float, b: float) -> Step[None, DivisionByZero, float]:
    """Divide a by b (a workflow that fails with a typed error on b = 0)."""
    return fail(DivisionByZero(a)) if b == 0 else pure(a / b)


@workflow(handlers={"llm.chat": scripted_handler(ScriptedModel().when("capital", say("Lisbon.")))})
def ask(question: str, words: int = 3) -> Step[None, object, dict[str, object]]:
    """Ask the (scripted) model, then count the words of its answer with a tool."""
    return chat([question]).then(
        lambda reply: word_count(text=reply.content or "").map(
            lambda n: {"answer": reply.content, "words": n, "limit": words}
        )
    )


served = [word_count, divide, ask]
