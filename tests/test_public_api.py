"""The curated public surface: every public module declares __all__ and exports resolve."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "mce",
    "mce.transformers",
    "mce.laws",
    "mce.llm",
    "mce.tools",
    "mce.plan",
    "mce.meta",
    "mce.executors",
    "mce.executors.ray",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_resolve_and_are_documented(name: str) -> None:
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__)
    public = {n for n in dir(module) if not n.startswith("_")}
    assert set(module.__all__) <= public
    for export in module.__all__:
        obj = getattr(module, export)
        if callable(obj):
            assert obj.__doc__, f"{name}.{export} has no docstring"


def test_issue_names_are_exported() -> None:
    import mce

    for export in [
        "Step",
        "pure",
        "fail",
        "get",
        "gets",
        "put",
        "modify",
        "lift",
        "par",
        "gather",
        "traverse",
        "collect",
        "share",
        "do",
        "run",
        "run_sync",
        "Outcome",
        "Ok",
        "Err",
        "StateConflict",
    ]:
        assert export in mce.__all__
    for method in ["map", "then", "recover", "map_error", "named", "timeout"]:
        assert callable(getattr(mce.Step, method))
