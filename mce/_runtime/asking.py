"""Questions while a run runs: the answers given to it, and those it still waits for.

An `ask` effect with no recorded answer comes here (`Answers.take`): an
answer given to `run(..., answers=...)` is validated by the question's type
and returned in its JSON form (the journal records it); without one, or
with an invalid one, the question is kept open and `Unanswered` stops the
branch that asked. Parallel blocks let their other branches run on
(`mce._runtime.parallel`), and `run` ends `Waiting` with every open question.

>>> from mce.questions import ask
>>> a = Answers({"go": 1})
>>> a.take(ask("n?", into=int, id="go"), "0")
1
>>> try:
...     a.take(ask("m?", into=int), "1")
... except Unanswered as stop:
...     stop.question.position
'1'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mce.effects import _Effect
from mce.questions import AnswerInvalid, Question


class Answers:
    """One run's answers, and the questions it could not answer."""

    __slots__ = ("_given", "open", "rejected", "used")

    def __init__(self, given: Mapping[str, Any]) -> None:
        self._given = dict(given)
        self.open: list[Question] = []
        self.rejected: list[AnswerInvalid] = []
        self.used: set[str] = set()

    def take(self, node: Any, position: str) -> Any:
        """The JSON form of the answer to the ask at `position`, validated; `Unanswered` if none."""
        if type(node) is not _Effect:  # an ask() step: the effect under its conversion
            node = node.step
        request = node.request
        question = Question(request["question"], position, request["schema"], request["id"])
        for key in (position, question.id):
            if key is not None and key in self._given:
                self.used.add(key)
                answer = self._given[key]
                from pydantic import ValidationError  # loaded only once a question is answered

                try:
                    return node.handler(answer)
                except ValidationError as exc:
                    reason = "; ".join(
                        f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}"
                        for e in exc.errors()
                    )
                    self.rejected.append(AnswerInvalid(key, position, answer, reason))
                break
        self.open.append(question)
        raise Unanswered(question)

    def unused(self) -> tuple[str, ...]:
        """Answers given for no question this run reached (a mistyped id, say)."""
        return tuple(sorted(k for k in self._given if k not in self.used))


class Unanswered(Exception):
    """Raised inside the runtime where a question has no answer: its branch stops there.

    Never leaves `run`: the run ends `Waiting` instead.
    """

    def __init__(self, question: Question | None) -> None:
        where = "a parallel block" if question is None else f"position {question.position}"
        super().__init__(f"a question at {where} has no answer")
        self.question = question
        self.state: Any = None


def position_order(position: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that puts positions in program order ('2/10' after '2/9').

    >>> sorted(["2/10", "2/9", "10"], key=position_order)
    ['2/9', '2/10', '10']
    """
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in position.split("/"))
