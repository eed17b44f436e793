"""Typing cases: checked by mypy and basedpyright (typesafety/check.py), never run."""
