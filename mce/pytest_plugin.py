"""A pytest plugin: test workflows against journals checked into the repository.

The `mce_journal` fixture runs a workflow against a journal file next to the
test: when the file is absent it runs live and records it; when it is
present it replays it - no handler is called, nothing is written - and a
changed program fails the test with `ReplayDivergence`. `pytest
--mce-record` records every journal afresh.

    def test_research_agent(mce_journal):
        out = mce_journal.run_sync(agent(), State(), handlers=live_handlers())
        assert out.ok

By default the journal is `journals/<test module>/<test name>.jsonl` beside
the test file; `@pytest.mark.mce_journal("path.jsonl")` chooses another
(relative to the test file). A second run in the same test gets `-2`, `-3`...

>>> RecordedRuns.__name__
'RecordedRuns'
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mce.interpret import run, run_sync
from mce.outcome import Err, Ok, Waiting
from mce.step import Step

_S = TypeVar("_S")
_E = TypeVar("_E")
_A = TypeVar("_A")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mce")
    group.addoption(
        "--mce-record",
        action="store_true",
        default=False,
        help="record every mce journal afresh (runs workflows live)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mce_journal(path): the journal file (relative to the test file) that the "
        "mce_journal fixture records or replays",
    )


class RecordedRuns:
    """Runs workflows against a test's journal: record if absent, else replay.

    `mode` is "live" while recording and "replay" afterwards; `paths` lists
    the journal files used so far.
    """

    def __init__(self, path: Path, rerecord: bool) -> None:
        self.path = path
        self.rerecord = rerecord
        self.paths: list[Path] = []

    def _next(self) -> tuple[Path, str]:
        n = len(self.paths) + 1
        path = self.path if n == 1 else self.path.with_name(f"{self.path.stem}-{n}.jsonl")
        self.paths.append(path)
        if self.rerecord and path.exists():
            path.unlink()
        return path, ("replay" if path.exists() else "live")

    @property
    def mode(self) -> str:
        """What the next run will do: "live" (record) or "replay"."""
        n = len(self.paths) + 1
        path = self.path if n == 1 else self.path.with_name(f"{self.path.stem}-{n}.jsonl")
        return "replay" if path.exists() and not self.rerecord else "live"

    async def run(
        self, step: Step[_S, _E, _A], state: _S, **kwargs: Any
    ) -> Ok[_S, _A] | Err[_S, _E] | Waiting[_S]:
        """`mce.run` against the next journal of this test."""
        path, mode = self._next()
        return await run(step, state, journal=path, mode=mode, **kwargs)  # type: ignore[arg-type]

    def run_sync(
        self, step: Step[_S, _E, _A], state: _S, **kwargs: Any
    ) -> Ok[_S, _A] | Err[_S, _E] | Waiting[_S]:
        """`mce.run_sync` against the next journal of this test."""
        path, mode = self._next()
        return run_sync(step, state, journal=path, mode=mode, **kwargs)  # type: ignore[arg-type]


def _default_path(request: pytest.FixtureRequest) -> Path:
    test_file = Path(request.node.path)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    return test_file.parent / "journals" / test_file.stem / f"{name}.jsonl"


@pytest.fixture
def mce_journal(request: pytest.FixtureRequest) -> RecordedRuns:
    """Record-or-replay runs for this test (see the module docstring)."""
    marker = request.node.get_closest_marker("mce_journal")
    if marker is not None and marker.args:
        path = Path(request.node.path).parent / os.fspath(marker.args[0])
    else:
        path = _default_path(request)
    path.parent.mkdir(parents=True, exist_ok=True)
    return RecordedRuns(path, bool(request.config.getoption("mce_record")))


__all__ = [
    "RecordedRuns",
    "mce_journal",
]
