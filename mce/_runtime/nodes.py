"""The closed set of program nodes: every node kind's tag, defined once.

A `Step` is a tree of nodes; each node class carries one of these tags as
`_tag`, and the trampoline (`mce._runtime.trampoline`) dispatches on it. The
node classes live next to their public constructors (`mce.step`,
`mce.effects`, `mce.budget`); their tags live only here, and
`tests/test_runtime_nodes.py` checks that every tag is handled.

>>> NODE_TAGS["PURE"], NODE_TAGS["BUDGET"]
(0, 17)
"""

from __future__ import annotations

from typing import Final

# Plain ints, compared in a chain, are the cheapest dispatch CPython offers.
PURE: Final = 0
THEN: Final = 1
MAP: Final = 2
GET: Final = 3
PUT: Final = 4
MODIFY: Final = 5
GETS: Final = 6
FAIL: Final = 7
RECOVER: Final = 8
MAP_ERROR: Final = 9
NAMED: Final = 10
DEFER: Final = 11
LIFT: Final = 12
PAR: Final = 13
TIMEOUT: Final = 14
SHARE: Final = 15
EFFECT: Final = 16
BUDGET: Final = 17

RUNNING_BLOCK: Final = 90
"""Not a program node: a started parallel block handed to the async driver."""

NODE_TAGS: Final[dict[str, int]] = {
    "PURE": PURE,
    "THEN": THEN,
    "MAP": MAP,
    "GET": GET,
    "PUT": PUT,
    "MODIFY": MODIFY,
    "GETS": GETS,
    "FAIL": FAIL,
    "RECOVER": RECOVER,
    "MAP_ERROR": MAP_ERROR,
    "NAMED": NAMED,
    "DEFER": DEFER,
    "LIFT": LIFT,
    "PAR": PAR,
    "TIMEOUT": TIMEOUT,
    "SHARE": SHARE,
    "EFFECT": EFFECT,
    "BUDGET": BUDGET,
}
"""Every program node's tag by name: the closed set the trampoline handles."""

# What the trampoline stopped on (the first item of what `advance` returns).
OK: Final = 0  # payload: the value
ERR: Final = 1  # payload: the error
NODE: Final = 2  # payload: a node for the async driver (a started block, a share)
AWAIT: Final = 3  # payload: (lift node, the awaitable its callable returned)
EFFECT_LIVE: Final = 4  # payload: (effect node, position) to run live
TIMEOUT_SCOPE: Final = 5  # payload: (timeout node, its index in the sequence)
BUDGET_SCOPE: Final = 6  # payload: (budgeted node, its index in the sequence)

# How a parallel block treats failures (a `PAR` node's `mode`).
FAIL_FAST: Final = 0
COLLECT: Final = 1

CALLBACK_KIND: Final[dict[int, str]] = {
    THEN: ".then callback",
    MAP: ".map callback",
    RECOVER: ".recover callback",
    MAP_ERROR: ".map_error callback",
    MODIFY: "modify() function",
    GETS: "gets() function",
    DEFER: "deferred step builder",
    LIFT: "lifted callable",
    PAR: "parallel block",
    EFFECT: "effect",
}
"""What to call a node's function in the note on a bug it raised."""
