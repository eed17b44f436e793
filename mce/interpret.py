"""Running a workflow: `run` (async) and `run_sync`.

The interpreter itself is the private package `mce._runtime` (trampoline,
async driver, parallel blocks, branch runners, scopes); this module keeps
the public entry points where they have always been importable from.

>>> from mce import par, pure
>>> run_sync(par(pure(1), pure(2)).map(sum), None)
Ok(value=3, state=None)
"""

from mce._runtime.entry import run as run
from mce._runtime.entry import run_sync as run_sync
from mce._runtime.replay import Mode as Mode

__all__ = ["Mode", "run", "run_sync"]
