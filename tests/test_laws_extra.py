"""`mce.laws` needs hypothesis (the `laws` extra) and says so when it is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

WITHOUT_HYPOTHESIS = """
import sys
sys.modules["hypothesis"] = None  # as if it were not installed
try:
    import {module}
except ImportError as exc:
    print(exc.name)
    print(exc)
else:
    print("imported")
"""


@pytest.mark.parametrize("module", ["mce.laws", "mce.laws.catalog", "mce.laws.strategies"])
def test_without_hypothesis_the_error_says_what_to_install(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", WITHOUT_HYPOTHESIS.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == [
        "hypothesis",
        'mce.laws needs hypothesis, which is not installed: pip install "mce[laws]"',
    ]


def test_the_rest_of_mce_imports_without_hypothesis() -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None; import mce, mce.tools, mce.llm; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "ok"
