"""The examples run offline and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_readme_demo_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mce", "demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Answer: Agents are programs" in done.stdout
    assert (tmp_path / "timeline.html").exists() and (tmp_path / "demo.jsonl").exists()


def test_daily_briefing_runs_and_overlaps_fetches() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "01_daily_briefing.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = done.stdout
    assert "Good morning, Lisbon!" in out
    assert "light rain" in out and "HOOLI" in out
    assert "Fetch log (branch order): news: 0.30 s; weather: 0.20 s; stocks: 0.25 s" in out
    wall = float(out.split("Wall time ")[1].split(" s")[0])
    assert wall < 0.75  # the three latencies sum to 0.75 s; run in parallel they overlap


def test_research_agent_runs_offline_and_replays_identically(tmp_path: Path) -> None:
    journal = tmp_path / "research.jsonl"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "02_research_agent.py"),
            "--journal",
            str(journal),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    out = done.stdout
    assert "Report: Monads, parallel tools and replay" in out
    assert "LLMCompiler plans a DAG" in out
    assert "Replay: identical (0 live calls, 10 served from the journal" in out
    assert journal.exists()


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("03_llm_compiler.py", "Answer: Lisbon has 2.35x the population of Porto"),
        ("04_meta_agent.py", "Answer: Agents are programs; programs deserve laws."),
    ],
)
def test_plan_examples_run_offline_and_replay(script: str, expected: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--journal", str(tmp_path / "j.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert expected in done.stdout
    assert "Replay: identical (0 live calls)" in done.stdout


def test_meta_agent_example_stops_at_its_budget(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "04_meta_agent.py"), "--max-calls", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "budget exceeded: more than 5 calls" in done.stdout


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            "05_constellation_edit.py",
            [
                "Result: {'release': 'healthy: api:1.4.2 live on 3 nodes'",
                "Each task ran once: yes",
                "Resume after a crash at the edit: same result; ran only: ",
            ],
        ),
        (
            "06_streamed_plan.py",
            ["Result: {'1': 1982, '2': 2017, '3': 35}", "(dispatch while streaming: yes)"],
        ),
    ],
)
def test_live_plan_examples_run_offline_and_replay(
    script: str, expected: list[str], tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--journal", str(tmp_path / "j.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for line in expected:
        assert line in done.stdout
    assert "Replay: identical (0 live calls, 0 tools run)" in done.stdout


def test_approval_workflow_waits_then_resumes_from_the_command_line(tmp_path: Path) -> None:
    target = f"{ROOT / 'examples' / '07_approval_workflow.py'}:workflow"
    journal = str(tmp_path / "reindex.jsonl")

    def mce(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mce", *args], capture_output=True, text=True, timeout=60
        )

    first = mce("run", target, "--journal", journal)
    assert first.returncode == 3, first.stderr
    assert "approval (position 1): Re-embed 48000 documents" in first.stdout
    assert '"required": ["approve"]' in first.stdout
    assert "3 effects (3 live, 0 replayed)" in first.stdout  # the cheap plan only
    answer = 'approval={"approve": true, "model": "small"}'
    second = mce("run", target, "--journal", journal, "--mode", "resume", "--answer", answer)
    assert second.returncode == 0, second.stderr
    assert "ok: 'live: contracts-2026@small: 48000 vectors'" in second.stdout
    # The cheap tasks are served from the journal; the answer, embed and publish run.
    assert "6 effects (3 live, 3 replayed)" in second.stdout
    audit = mce("replay", target, journal)
    assert audit.returncode == 0 and "6 effects (0 live, 6 replayed)" in audit.stdout


def test_approval_example_script_runs_offline() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "07_approval_workflow.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.count("(exit 0)") == 2 and "(exit 3)" in done.stdout
    assert "mce run examples/07_approval_workflow.py:workflow" in done.stdout
