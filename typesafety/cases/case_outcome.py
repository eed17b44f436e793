"""`isinstance(out, Ok)` / `isinstance(out, Err)` narrow an outcome; without it, no `.value`."""

# fmt: off
# (an expected error's marker stays on the line the checkers report)

from typing import assert_type

from mce import Err, Ok, Step, run_sync

from ._state import Desk


def program() -> Step[Desk, str, int]:
    raise NotImplementedError




out = run_sync(program(), Desk(1))
if isinstance(out, Ok):
    assert_type(out.value, int)
    assert_type(out.state, Desk)
else:
    assert_type(out.error, str)
if isinstance(out, Err):
    raise SystemExit(out.error)
assert_type(out.value, int)

other = run_sync(program(), Desk(1))
print(other.value)  # E: mypy[union-attr] pyright[reportAttributeAccessIssue]
