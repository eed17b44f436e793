"""The public API type-checks the way users write it (mypy --strict, precise types)."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

SAMPLE = Path(__file__).parent / "typing" / "typed_program.py"


def test_typed_user_program_checks_under_strict_mypy(tmp_path: Path) -> None:
    out, err, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path), str(SAMPLE)]
    )
    assert status == 0, out + err
