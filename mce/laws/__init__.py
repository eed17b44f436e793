"""Reusable law checks for monads, steps and state merges, for any pytest suite.

A law is a pair of programs that must be *observed* equal: run both sides
from the same generated state, with the same deterministic handlers, and
compare value, final state and error. Check your own step (with your
handlers), your own monad instance, or your own three-way merge:

    from mce.laws import MergeSubject, check_all_laws, step_instance

    check_all_laws(step_instance(handlers={"search": fake_search}))
    check_all_laws(MergeSubject("my merge", my_merge, bases, edits))

Each call registers one pytest test per law, named after the subject and
the law. `broken_laws(subject)` lists the laws a subject breaks.

The checks generate programs with hypothesis, which the `laws` extra
installs: `pip install "mce[laws]"`.

>>> from mce.laws import STEP, broken_laws
>>> broken_laws(STEP, max_examples=10)
[]
"""

from mce.laws import _requires  # noqa: F401  (first: says what to install)
from mce.laws.catalog import INSTANCE_LAWS as INSTANCE_LAWS
from mce.laws.catalog import MERGE_LAWS as MERGE_LAWS
from mce.laws.catalog import Law as Law
from mce.laws.catalog import LawViolation as LawViolation
from mce.laws.catalog import broken_laws as broken_laws
from mce.laws.catalog import check_all_laws as check_all_laws
from mce.laws.catalog import check_law as check_law
from mce.laws.catalog import laws_for as laws_for
from mce.laws.instances import STEP as STEP
from mce.laws.instances import AsyncInstance as AsyncInstance
from mce.laws.instances import Instance as Instance
from mce.laws.instances import MergeSubject as MergeSubject
from mce.laws.instances import ReferenceInstance as ReferenceInstance
from mce.laws.instances import StepInstance as StepInstance
from mce.laws.instances import reference_instances as reference_instances
from mce.laws.instances import step_instance as step_instance

__all__ = [
    "INSTANCE_LAWS",
    "MERGE_LAWS",
    "STEP",
    "AsyncInstance",
    "Instance",
    "Law",
    "LawViolation",
    "MergeSubject",
    "ReferenceInstance",
    "StepInstance",
    "broken_laws",
    "check_all_laws",
    "check_law",
    "laws_for",
    "reference_instances",
    "step_instance",
]
