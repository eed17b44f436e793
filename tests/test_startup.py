"""Start-up: `import mce` and the commands that need no model client import no heavy library.

Each check runs a fresh interpreter with `-X importtime`, which lists every
module the process imported, so the whole command - argument parsing,
loading the workflow, running or replaying it - is covered. How fast the
start is belongs in `benchmarks/bench_startup.py`, not here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("openai", "ray", "pydantic", "asyncio", "returns")
"""Libraries only a workflow that uses them should pay for (`asyncio`: a run on asyncio).

A `@tool` builds its parameter schema with pydantic on first use - a call
that runs, its schema asked for - never when it is defined: a module of
tools loads without pydantic, and a run of it uses pydantic.
"""

EFFECTS = """
from mce import effect, gather


def workflow():
    return gather([effect("fetch", "a"), effect("fetch", "b")]).then(lambda ab: effect("join", ab))
"""

FLOW = '''
from mce import effect, gather
from mce.tools import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def workflow():
    return gather([add(1, 2), effect("fetch", "x")]).then(lambda ab: add(ab[0], 10))


mce_handlers = {"fetch": lambda req: req.upper()}
'''


def imported(*args: str, cwd: Path | None = None) -> set[str]:
    """The top-level packages a fresh `python -X importtime ARGS...` imported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "mce" in names, done.stderr[-2000:]  # the listing is there: the check can fail
    return names


def heavy(names: set[str], allowed: tuple[str, ...] = ()) -> list[str]:
    return [m for m in HEAVY if m in names and m not in allowed]


def test_import_mce_imports_no_heavy_library() -> None:
    assert heavy(imported("-c", "import mce")) == []


def test_help_imports_no_heavy_library() -> None:
    assert heavy(imported("-m", "mce", "--help")) == []


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "flow.py"
    path.write_text(FLOW)
    return path


def test_graph_of_an_effect_workflow_imports_no_heavy_library(tmp_path: Path) -> None:
    path = tmp_path / "effects.py"
    path.write_text(EFFECTS)
    assert heavy(imported("-m", "mce", "graph", f"{path}:workflow")) == []


def test_graph_of_a_tool_workflow_imports_no_heavy_library(flow: Path) -> None:
    assert heavy(imported("-m", "mce", "graph", f"{flow}:workflow")) == []


def test_defining_tools_and_building_their_calls_imports_no_pydantic(flow: Path) -> None:
    code = "import flow; flow.workflow(); flow.add.signature, flow.add.name"
    assert heavy(imported("-c", code, cwd=flow.parent)) == []


def test_graph_of_a_scripted_llm_workflow_imports_no_model_client() -> None:
    assert heavy(imported("-m", "mce", "graph", "mce.demo:workflow"), ("pydantic",)) == []


def test_replay_of_a_tool_journal_imports_no_model_client(flow: Path, tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    recorded = imported("-m", "mce", "run", f"{flow}:workflow", "--journal", str(journal))
    assert journal.read_text().count('"tool.add"') == 2
    # A run (and a replay) on asyncio needs asyncio; the tools, pydantic.
    assert heavy(recorded, allowed=("asyncio", "pydantic")) == []
    replayed = imported("-m", "mce", "replay", f"{flow}:workflow", str(journal))
    assert heavy(replayed, allowed=("asyncio", "pydantic")) == []
