"""Standard logging on the `mce` logger: divergences, resume decisions (and retries, where they happen)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mce import ReplayDivergence, effect, run_sync


def test_a_divergence_is_logged_as_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "run.jsonl"
    run_sync(effect("k", "a", handler=str), None, journal=journal)
    with caplog.at_level(logging.INFO, logger="mce"), pytest.raises(ReplayDivergence):
        run_sync(effect("k", "b", handler=str), None, journal=journal, mode="replay")
    (record,) = [r for r in caplog.records if r.name == "mce"]
    assert record.levelno == logging.WARNING
    assert "replay diverged at position 0" in record.getMessage()


def test_resume_decisions_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal = tmp_path / "run.jsonl"
    run_sync(effect("k", "a", handler=str), None, journal=journal)
    program = effect("k", "a", handler=str).then(lambda _: effect("k", "b", handler=str))
    with caplog.at_level(logging.INFO, logger="mce"):
        assert run_sync(program, None, journal=journal, mode="resume").ok
    messages = [r.getMessage() for r in caplog.records if r.name == "mce"]
    assert messages == [
        f"resuming journal {journal}: 1 recorded effects are served from it, the rest runs live",
        "resumed run finished: 1 effects served from the journal, 1 run live",
    ]


def test_nothing_is_logged_by_a_plain_run(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="mce"):
        run_sync(effect("k", "a", handler=str), None)
    assert [r for r in caplog.records if r.name == "mce"] == []
