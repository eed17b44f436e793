"""The result of running a workflow: `Ok(value, state)`, `Err(error, state)` or `Waiting`.

`Waiting` is the outcome of a run that stopped at questions for a person
(`mce.questions.ask`); resuming its journal with the answers continues it.

`Err.state` is the last state seen before the failure. It is there for
debugging only, so it takes no part in equality: two `Err`s are equal when
their errors are.

>>> Ok(1, "s") == Ok(1, "s")
True
>>> Err("boom", state=1) == Err("boom", state=2)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, Never, TypeVar, final

from attrs import field, frozen

if TYPE_CHECKING:  # imported when converting: `import mce` stays fast without it
    from returns.result import Result

if TYPE_CHECKING:
    from mce.questions import AnswerInvalid, Question

_S_co = TypeVar("_S_co", covariant=True)
_E_co = TypeVar("_E_co", covariant=True)
_A_co = TypeVar("_A_co", covariant=True)
_S = TypeVar("_S")
_E = TypeVar("_E")
_A = TypeVar("_A")


class Outcome(Generic[_S_co, _E_co, _A_co]):
    """Base of `Ok`, `Err` and `Waiting`; converts to and from `returns.result.Result`.

    >>> from returns.result import Failure, Success
    >>> Ok(2, "s").to_result()
    <Success: (2, 's')>
    >>> Outcome.from_result(Success((2, "s")))
    Ok(value=2, state='s')
    >>> Outcome.from_result(Failure("e"), state="s")
    Err(error='e', state='s')
    """

    __slots__ = ()

    @property
    def ok(self) -> bool:
        """True for `Ok`, False for `Err` and `Waiting`.

        >>> Ok(1, None).ok, Err("e", None).ok
        (True, False)
        """
        return isinstance(self, Ok)

    def to_result(self) -> Result[tuple[_A_co, _S_co], _E_co]:
        """`Success((value, state))` for `Ok`, `Failure(error)` for `Err`.

        A `Waiting` run has neither a value nor an error: converting it is a
        `ValueError` (answer its questions and resume it first).

        >>> Err("e", None).to_result()
        <Failure: e>
        """
        from returns.result import Failure, Success

        if isinstance(self, Ok):
            return Success((self.value, self.state))
        if isinstance(self, Waiting):
            keys = ", ".join(q.key for q in self.questions)
            raise ValueError(
                f"a waiting run has no result yet: answer its questions ({keys}) and resume it"
            )
        assert isinstance(self, Err)
        return Failure(self.error)

    @staticmethod
    def from_result(
        result: Result[tuple[_A, _S], _E], state: _S | None = None
    ) -> Ok[_S, _A] | Err[_S, _E]:
        """Build an outcome from a `returns` result.

        A `Failure` carries no state, so `state` (default None) becomes the
        `Err`'s diagnostic state.

        >>> from returns.result import Success
        >>> Outcome.from_result(Success(("v", 0)))
        Ok(value='v', state=0)
        """
        from returns.result import Success

        if isinstance(result, Success):
            value, new_state = result.unwrap()
            return Ok(value, new_state)
        return Err(result.failure(), state)


@final
@frozen
class RunReport:
    """What a run did: effects, live calls, time, tokens. Attached to its outcome.

    `effect_seconds` sums the time live effects took; with parallel branches
    it exceeds `wall_seconds`, and their ratio is the speed-up parallelism gave.

    >>> r = RunReport(effects=3, live_calls=3, replayed=0, wall_seconds=1.0, effect_seconds=2.5)
    >>> r.parallel_speedup, r.total_tokens
    (2.5, 0)
    """

    effects: int = 0
    live_calls: int = 0
    replayed: int = 0
    wall_seconds: float = 0.0
    effect_seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def parallel_speedup(self) -> float:
        """Effect time over wall time (1.0 when nothing took time)."""
        return self.effect_seconds / self.wall_seconds if self.wall_seconds > 0 else 1.0

    def summary(self) -> str:
        """One line for humans.

        >>> RunReport(4, 4, 0, 0.5, 1.5, 10, 5).summary()
        '4 effects (4 live, 0 replayed) in 0.50 s wall, 1.50 s of effect time (3.0x from parallelism), 15 tokens'
        """
        timing = f"{self.wall_seconds:.2f} s wall"
        if self.live_calls:
            timing += (
                f", {self.effect_seconds:.2f} s of effect time "
                f"({self.parallel_speedup:.1f}x from parallelism)"
            )
        return (
            f"{self.effects} effects ({self.live_calls} live, {self.replayed} replayed) in "
            f"{timing}, {self.total_tokens} tokens"
        )


@final
@frozen
class Ok(Outcome[_S_co, Never, _A_co]):
    """A successful run: the value and the final state.

    `report` (not part of equality) says what the run did.

    >>> Ok(3, {"n": 1}).value
    3
    """

    value: _A_co
    state: _S_co
    report: RunReport | None = field(default=None, eq=False, repr=False)


@final
@frozen
class Err(Outcome[_S_co, _E_co, Never]):
    """A failed run: the error and, for debugging, the last state seen.

    >>> Err("no", state=5).error
    'no'
    """

    error: _E_co
    state: _S_co | None = field(default=None, eq=False)
    report: RunReport | None = field(default=None, eq=False, repr=False)


@final
@frozen
class Waiting(Outcome[_S_co, Never, Never]):
    """A run that stopped at questions for a person: answer them and resume its journal.

    `questions` are the open questions in program order (each with its id,
    position and the JSON schema of a valid answer). `state` is, for
    information only, the state where the run stopped (where a question was
    asked, or before the parallel block that asked it). `rejected` lists the
    answers given that did not validate (their questions stay open) and
    `unused` the answer keys that no question of this run took (a mistyped
    id, or a question the journal already holds an answer for).

    >>> from mce.questions import Question
    >>> w = Waiting((Question("Approve?", "1", {"type": "boolean"}, "approve"),), state=3)
    >>> w.ok, [q.key for q in w.questions]
    (False, ['approve'])
    """

    questions: tuple[Question, ...]
    state: _S_co | None = field(default=None, eq=False)
    rejected: tuple[AnswerInvalid, ...] = ()
    unused: tuple[str, ...] = ()
    report: RunReport | None = field(default=None, eq=False, repr=False)


__all__ = [
    "Err",
    "Ok",
    "Outcome",
    "RunReport",
    "Waiting",
]
