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
A test name with characters that are not safe in a file name (a
parametrized id such as `a/b` or `a:b`) gets them replaced and a short hash
of the whole name appended after a `~`, so two tests never share a journal.

In CI (the `CI` environment variable set to anything but empty, `0`,
`false` or `no`) or with `--mce-replay-only`, a missing journal fails the
test - recording there would make real calls - with a message saying how to
record it.

>>> journal_name("test_x[a/b]") != journal_name("test_x[a:b]")
True
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mce import run, run_sync
from mce.outcome import Err, Ok, Waiting
from mce.step import Step

__all__ = ["RecordedRuns", "journal_name", "mce_journal"]

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
    group.addoption(
        "--mce-replay-only",
        action="store_true",
        default=False,
        help="fail a test whose mce journal is missing instead of recording it (the default in CI)",
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

    def __init__(self, path: Path, rerecord: bool, replay_only: str | None = None) -> None:
        self.path = path
        self.rerecord = rerecord
        self.replay_only = replay_only
        """Why a missing journal fails the test instead of being recorded (None: it is recorded)."""
        self.paths: list[Path] = []

    def _next(self) -> tuple[Path, str]:
        n = len(self.paths) + 1
        path = self.path if n == 1 else self.path.with_name(f"{self.path.stem}-{n}.jsonl")
        self.paths.append(path)
        if self.rerecord and path.exists():
            path.unlink()
        if not path.exists() and not self.rerecord and self.replay_only is not None:
            pytest.fail(
                f"no mce journal {path} to replay, and {self.replay_only}, so it is not "
                "recorded (recording makes live calls). Record it where live calls are fine "
                "- run this test without CI set and without --mce-replay-only (or with "
                "--mce-record) - and commit the file.",
                pytrace=False,
            )
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


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def journal_name(test_name: str) -> str:
    """The journal file stem for a test: its name if file-safe, else made safe plus a hash.

    Safe names never contain `~`, so a made-safe name cannot equal one; two
    names made safe differ by their hashes.

    >>> journal_name("test_agent")
    'test_agent'
    >>> journal_name("test_agent[a/b]")
    'test_agent_a_b~eb6bdb4d259d'
    """
    if not _UNSAFE.search(test_name) and test_name:
        return test_name
    digest = hashlib.sha256(test_name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{_UNSAFE.sub('_', test_name).strip('_')}~{digest}"


def _default_path(request: pytest.FixtureRequest) -> Path:
    test_file = Path(request.node.path)
    return (
        test_file.parent / "journals" / test_file.stem / f"{journal_name(request.node.name)}.jsonl"
    )


def _replay_only(config: pytest.Config) -> str | None:
    if config.getoption("mce_replay_only"):
        return "--mce-replay-only is given"
    ci = os.environ.get("CI", "")
    if ci.strip().lower() not in ("", "0", "false", "no"):
        return f"CI={ci} is set"
    return None


@pytest.fixture
def mce_journal(request: pytest.FixtureRequest) -> RecordedRuns:
    """Record-or-replay runs for this test (see the module docstring)."""
    marker = request.node.get_closest_marker("mce_journal")
    if marker is not None and marker.args:
        path = Path(request.node.path).parent / os.fspath(marker.args[0])
    else:
        path = _default_path(request)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = request.config
    return RecordedRuns(path, bool(config.getoption("mce_record")), _replay_only(config))
