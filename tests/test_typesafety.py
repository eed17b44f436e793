"""The typing cases in typesafety/ agree with mypy --strict and basedpyright."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")
CHECK = Path(__file__).resolve().parent.parent / "typesafety" / "check.py"


@pytest.mark.skipif(shutil.which("basedpyright") is None, reason="needs basedpyright (extra dev)")
def test_typing_cases_agree_with_both_checkers(tmp_path: Path) -> None:
    env = {**os.environ, "MYPY_CACHE_DIR": str(tmp_path / "mypy")}
    proc = subprocess.run(
        [sys.executable, str(CHECK)], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "agree under mypy and basedpyright" in proc.stdout
