"""`python -m mce`: the command line (see mce.cli)."""

from mce.cli import entry_point

entry_point()
