"""Durable execution: kill a journaling workflow with SIGKILL at random moments, resume.

Runs tests/support/crash_workflow.py as a subprocess, waits until it is
running, kills it after a random delay, and resumes it, over and over. After
every kill the journal must be readable; at most LIMIT effects may have been
in flight (started, not journaled); in the end the outcome must equal an
uninterrupted run's and every effect must have run exactly once apart from
those in flight at a kill.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mce import FileJournal, run_sync

SCRIPT = Path(__file__).parent / "support" / "crash_workflow.py"
sys.path.insert(0, str(SCRIPT.parent))
import crash_workflow  # noqa: E402

KILLS = {"ci": 20, "deep": 100}.get(os.environ.get("HYPOTHESIS_PROFILE", "ci"), 20)


def expected_outcome() -> Any:
    async def instant(req: dict[str, Any]) -> int:
        return crash_workflow.value_of(req["id"])

    return repr(run_sync(crash_workflow.build(), None, handlers={"work": instant}))


def journaled_ids(path: Path) -> list[int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a torn last line is allowed here
        _header, entries = FileJournal(path).load()  # JournalCorrupt would fail the test
    return [e["req"]["id"] for e in entries]


def started_ids(execlog: Path, attempt: int) -> set[int]:
    if not execlog.exists():
        return set()
    found = set()
    for line in execlog.read_text().splitlines():
        a, i = line.split()
        if int(a) == attempt:
            found.add(int(i))
    return found


def start(journal: Path, execlog: Path, attempt: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(journal), str(execlog), str(attempt)],
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_running(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    assert ready, "the workflow did not start"
    assert proc.stdout.readline().strip() == "running"


def test_sigkill_and_resume(tmp_path: Path) -> None:
    expected = expected_outcome()
    rnd = random.Random(1234)
    kills = 0
    rounds = 0
    while kills < KILLS:
        rounds += 1
        journal, execlog = tmp_path / f"r{rounds}.jsonl", tmp_path / f"r{rounds}.exec"
        in_flight_at_kills: list[set[int]] = []
        attempt = 0
        while True:
            with start(journal, execlog, attempt) as proc:
                wait_running(proc)
                try:
                    proc.wait(timeout=rnd.uniform(0.0, 0.06))
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                assert proc.stdout is not None
                output = proc.stdout.read().strip()
            if proc.returncode == 0:
                final = output
                break
            assert proc.returncode == -signal.SIGKILL
            kills += 1
            # The journal is readable after every kill (a torn last line aside).
            done = set(journaled_ids(journal))
            in_flight = started_ids(execlog, attempt) - done
            assert len(in_flight) <= crash_workflow.LIMIT, in_flight
            in_flight_at_kills.append(in_flight)
            attempt += 1
            assert attempt < 500, "no progress"
        assert final == expected
        ids = journaled_ids(journal)
        assert len(ids) == len(set(ids)) == 221  # one entry per effect
        runs = Counter(int(line.split()[1]) for line in execlog.read_text().splitlines())
        for effect_id, count in runs.items():
            repeats = sum(effect_id in f for f in in_flight_at_kills)
            assert count <= 1 + repeats, (effect_id, count, repeats)
    assert kills >= KILLS


@pytest.mark.parametrize("where", ["middle", "header"])
def test_resume_after_a_torn_write(tmp_path: Path, where: str) -> None:
    journal, execlog = tmp_path / "j.jsonl", tmp_path / "e.log"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(journal), str(execlog), "0", "--fast"],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = proc.stdout.splitlines()[-1]
    data = journal.read_bytes()
    cut = len(data) // 2 if where == "middle" else 10
    journal.write_bytes(data[:cut])
    resumed = subprocess.run(
        [sys.executable, "-W", "ignore", str(SCRIPT), str(journal), str(execlog), "1", "--fast"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert resumed.stdout.splitlines()[-1] == expected
    assert len(set(journaled_ids(journal))) == 221
