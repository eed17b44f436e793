"""`isinstance(out, Ok)` / `Err` / `Waiting` narrow an outcome; without it, no `.value`."""

# fmt: off
# (an expected error's marker stays on the line the checkers report)

from typing import assert_type

from mce import Err, Ok, Question, Step, Waiting, run_sync

from ._state import Desk


def program() -> Step[Desk, str, int]:
    raise NotImplementedError




out = run_sync(program(), Desk(1))
if isinstance(out, Ok):
    assert_type(out.value, int)
    assert_type(out.state, Desk)
elif isinstance(out, Waiting):
    assert_type(out.questions, tuple[Question, ...])
else:
    assert_type(out.error, str)
if isinstance(out, Err):
    raise SystemExit(out.error)
if isinstance(out, Waiting):
    raise SystemExit(out.questions[0].text)
assert_type(out.value, int)

other = run_sync(program(), Desk(1))
print(other.value)  # E: mypy[union-attr] pyright[reportAttributeAccessIssue]
