"""par/gather/traverse/collect give precise tuple types and share one state type."""

# fmt: off
# (an expected error's marker stays on the line the checkers report)

from typing import assert_type

from mce import Failures, Step, collect, gather, par, run_sync, traverse

from ._state import Desk


def a() -> Step[Desk, str, int]:
    raise NotImplementedError


def b() -> Step[Desk, str, bytes]:
    raise NotImplementedError


def c() -> Step[Desk, str, float]:
    raise NotImplementedError


def other() -> Step[int, str, int]:
    raise NotImplementedError




assert_type(par(a(), b()), Step[Desk, str, tuple[int, bytes]])
assert_type(par(a(), b(), c()), Step[Desk, str, tuple[int, bytes, float]])
assert_type(gather([a(), a()]), Step[Desk, str, tuple[int, ...]])
assert_type(traverse(["x", "y"], lambda s: a()), Step[Desk, str, tuple[int, ...]])
assert_type(collect([a(), a()]), Step[Desk, Failures[str], tuple[int, ...]])
# mypy infers the state type Never for branches of different state types
# (docs/semantics.md); the program is then rejected where it is run.
mixed = par(a(), other())  # E: pyright[reportArgumentType,reportCallIssue]
run_sync(mixed, Desk(1))  # E: mypy[misc]
