"""Human in the loop: `ask(question, into=T)` pauses a run until a person answers.

A question is an effect. In a live run with no answer for it, the branch
that asks stops there; everything done so far is journaled, sibling
branches of a parallel block run on (to their end or to questions of their
own), and the run ends `Waiting` with every open question - its id, its
position and the JSON schema an answer must match (derived from `into` by
pydantic). Resuming the same journal with the answers
(`run(..., mode="resume", answers={id_or_position: value})`, or
`mce run --resume --answer ID=JSON`) serves every recorded effect from the
journal - nothing before the question runs again - validates each answer
against its question's type, journals it, and continues from exactly there.
A replay needs no answers: they are in the journal.

>>> from mce import Journal, run_sync
>>> j = Journal()
>>> prog = ask("Proceed?", into=bool, id="go").map(lambda yes: "done" if yes else "stopped")
>>> out = run_sync(prog, None, journal=j)
>>> out.questions[0].id, out.questions[0].schema
('go', {'type': 'boolean'})
>>> run_sync(prog, None, journal=j, mode="resume", answers={"go": True})
Ok(value='done', state=None)
>>> run_sync(prog, None, journal=j, mode="replay")
Ok(value='done', state=None)
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final, Never, TypeVar, final, overload

from attrs import field, frozen

from mce.effects import _Effect
from mce.step import Step

if TYPE_CHECKING:  # pydantic is imported when a question is asked, not with mce
    from pydantic import TypeAdapter

__all__ = ["ASK", "AnswerInvalid", "Question", "ask"]

_T = TypeVar("_T")

ASK: Final = "mce.ask"
"""The effect kind of a question (what the journal records an answer under)."""

_LOOKS_LIKE_POSITION = re.compile(r"^[0-9/]+$|^s:")


@final
@frozen
class Question:
    """An open question of a waiting run: what to answer, and where it was asked.

    `id` is the name given to `ask(..., id=...)` (None if none was given),
    `position` is where in the program the question stands (stable across
    runs), and `schema` is the JSON schema an answer must match. Answer it
    by id or by position.

    >>> q = Question("Approve?", "2", {"type": "boolean"}, "approve")
    >>> q.key
    'approve'
    >>> Question("Approve?", "2", {"type": "boolean"}).key
    '2'
    """

    text: str
    position: str
    schema: dict[str, Any] = field(hash=False)
    id: str | None = None

    @property
    def key(self) -> str:
        """What to answer it by: its id, or its position when it has none."""
        return self.id if self.id is not None else self.position


@final
@frozen
class AnswerInvalid:
    """An answer that does not match its question's schema: the question stays open.

    A waiting run lists the answers it rejected (`Waiting.rejected`), each
    naming the question and what was wrong; nothing was journaled for them.

    >>> str(AnswerInvalid("go", "3", True, "Input should be a valid integer"))
    "answer 'go' to the question at position 3 is invalid: Input should be a valid integer (got True)"
    """

    key: str
    position: str
    answer: Any = field(hash=False)
    reason: str

    def __str__(self) -> str:
        return (
            f"answer {self.key!r} to the question at position {self.position} is invalid: "
            f"{self.reason} (got {self.answer!r})"
        )


class _Validator:
    """An ask's answer check: the raw answer in, its JSON form out (what the journal keeps)."""

    __slots__ = ("adapter",)

    def __init__(self, adapter: TypeAdapter[Any]) -> None:
        self.adapter = adapter

    def __call__(self, answer: Any) -> Any:
        return self.adapter.dump_python(self.adapter.validate_python(answer), mode="json")


@overload
def ask(question: str, *, into: type[_T], id: str | None = None) -> Step[object, Never, _T]: ...
@overload
def ask(question: str, *, into: Any, id: str | None = None) -> Step[object, Never, Any]: ...
def ask(question: str, *, into: Any, id: str | None = None) -> Step[object, Never, Any]:
    """A question for a person; its value is the answer, validated as `into`.

    `into` is any type pydantic can validate (bool, str, int, Literal[...],
    an enum, a pydantic model, a dataclass, a TypedDict, list[...]...); the
    question carries its JSON schema. `id` names the question so that
    answers can be given by name (an id answers every question with that
    id; a position answers exactly one). With no answer available, the run
    ends `Waiting` (see the module docstring).

    >>> from mce import run_sync
    >>> from typing import Literal
    >>> out = run_sync(ask("Which model?", into=Literal["small", "large"]), None)
    >>> out.questions
    (Question(text='Which model?', position='0', schema={'enum': ['small', 'large'], 'type': 'string'}, id=None),)
    >>> run_sync(ask("Which model?", into=Literal["small", "large"]), None, answers={"0": "large"})
    Ok(value='large', state=None)
    """
    if not isinstance(question, str) or not question:
        raise ValueError(f"ask() needs a non-empty question string, got {question!r}")
    if id is not None and (not isinstance(id, str) or not id or _LOOKS_LIKE_POSITION.match(id)):
        raise ValueError(
            f"ask(id=...) must be a non-empty string that does not look like a position "
            f"(digits and '/'), got {id!r}"
        )
    try:
        from pydantic import TypeAdapter

        adapter: TypeAdapter[Any] = TypeAdapter(into)
        schema = adapter.json_schema()
    except Exception as exc:  # pydantic raises several kinds for a type it cannot handle
        raise TypeError(
            f"ask({question!r}, into={into!r}): pydantic cannot validate this type: {exc}"
        ) from None
    request = {"question": question, "id": id, "schema": schema}
    validator = _Validator(adapter)
    # The journal keeps the answer's JSON form; the same conversion turns it
    # into `into` live, on resume and on replay, so all three agree.
    asked: Step[object, Never, Any] = _Effect(ASK, request, validator)
    return asked.map(adapter.validate_python)
