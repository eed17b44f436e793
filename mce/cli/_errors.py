"""`UsageError`: bad input on the command line (exit code 2).

Its module stays `mce.cli`, where users catch it and tracebacks name it.
"""

from __future__ import annotations

from mce._public_name import public_in


@public_in("mce.cli")
class UsageError(Exception):
    """Bad input on the command line (exit code 2).

    >>> str(UsageError("no such journal: run.jsonl"))
    'no such journal: run.jsonl'
    """
