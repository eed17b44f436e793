"""With the openai client's environment set, the tests, docs, demo and examples still run
offline: they name the scripted model, so nothing reaches the configured endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mce.llm import ScriptedModel
from mce.testing.openai_server import OpenAIServer

ROOT = Path(__file__).resolve().parent.parent


def test_representative_tests_and_examples_make_no_live_call(tmp_path: Path) -> None:
    with OpenAIServer(ScriptedModel()) as sentinel:  # where a live call would go
        env = dict(os.environ, OPENAI_BASE_URL=sentinel.base_url, OPENAI_API_KEY="sk-test")
        env.pop("MCE_MODEL", None)
        suite = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:randomly",
                str(ROOT / "tests" / "test_llm.py"),
                str(ROOT / "mce" / "llm"),
                str(ROOT / "docs" / "llm.md"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=ROOT,
        )
        assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-3000:]
        for command in (
            [sys.executable, "-m", "mce", "demo", "--out", str(tmp_path)],
            [
                sys.executable,
                str(ROOT / "examples" / "02_research_agent.py"),
                "--journal",
                str(tmp_path / "r.jsonl"),
            ],
        ):
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
            assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        assert sentinel.hits == 0 and sentinel.requests == []
    # and the sentinel does count: a model call with no handler goes to the environment's endpoint
    with OpenAIServer(ScriptedModel()) as sentinel:
        env = dict(os.environ, OPENAI_BASE_URL=sentinel.base_url, OPENAI_API_KEY="sk-test")
        probe = "from mce import run_sync; from mce.llm import chat; print(run_sync(chat(['hi']), None).ok)"
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env
        )
        assert done.stdout.strip() == "True" and sentinel.hits == 1
