"""Check the typing cases under mypy --strict and basedpyright; exit 1 on any mismatch.

Each file in `typesafety/cases/` is a small program. A line that must be a
type error ends with a marker naming the error code each checker reports:

    add("one")  # E: mypy[arg-type] pyright[reportArgumentType]

A checker left out of a marker must report nothing on that line (the
cases where mypy and pyright differ are documented in docs/semantics.md).
Every other line - `assert_type(...)` lines included - must check cleanly
under both. Expected types are written as `assert_type`, which both
checkers verify.

Run it:  python typesafety/check.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "cases"
MARKER = re.compile(r"#\s*E:\s*(?P<body>.*)$")
EXPECTATION = re.compile(r"(?P<checker>mypy|pyright)\[(?P<codes>[^\]]+)\]")
MYPY_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?:\d+:)? error: .*\[(?P<code>[a-z-]+)\]$")

# (file name, line) -> {checker: set of codes}
Found = dict[tuple[str, int], dict[str, set[str]]]


def expected() -> Found:
    """The markers in the case files."""
    result: Found = {}
    for path in sorted(CASES.glob("*.py")):
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            marker = MARKER.search(text)
            if marker is None:
                continue
            checkers = {
                m["checker"]: set(m["codes"].split(","))
                for m in EXPECTATION.finditer(marker["body"])
            }
            if not checkers:
                raise SystemExit(f"{path.name}:{number}: a marker names no checker: {text!r}")
            result[(path.name, number)] = checkers
    return result


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_mypy() -> Iterable[tuple[str, int, str]]:
    """(file name, line, code) of every error mypy --strict reports on the cases."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--hide-error-context",
            "--no-pretty",
            str(CASES),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        check=False,
    )
    if proc.returncode not in (0, 1) or proc.stderr.strip():
        raise SystemExit(f"mypy did not run: {proc.stderr or proc.stdout}")
    for line in proc.stdout.splitlines():
        m = MYPY_LINE.match(line)
        if m:
            yield Path(m["file"]).name, int(m["line"]), m["code"]
        elif ": error:" in line:
            raise SystemExit(f"cannot read mypy's line: {line}")


def run_pyright() -> Iterable[tuple[str, int, str]]:
    """(file name, line, rule) of every error basedpyright reports on the cases."""
    exe = shutil.which("basedpyright")
    if exe is None:
        raise SystemExit("basedpyright is not installed: pip install basedpyright")
    proc = subprocess.run(
        [exe, "--outputjson", "--project", str(CASES.parent / "pyrightconfig.json"), str(CASES)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        check=False,
    )
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"basedpyright did not run: {proc.stderr or proc.stdout}") from None
    for diag in report["generalDiagnostics"]:
        if diag["severity"] != "error":
            continue
        yield (
            Path(diag["file"]).name,
            diag["range"]["start"]["line"] + 1,
            diag.get("rule", "error"),
        )


def found() -> Found:
    """What the two checkers report."""
    result: Found = {}
    for checker, errors in (("mypy", run_mypy()), ("pyright", run_pyright())):
        for name, line, code in errors:
            result.setdefault((name, line), {}).setdefault(checker, set()).add(code)
    return result


def compare(want: Found, got: Found) -> list[str]:
    """Every difference, one line each."""
    problems = []
    for key in sorted(set(want) | set(got)):
        name, line = key
        for checker in ("mypy", "pyright"):
            w = want.get(key, {}).get(checker, set())
            g = got.get(key, {}).get(checker, set())
            if w != g:
                problems.append(
                    f"{name}:{line}: {checker} expected {sorted(w) or 'no error'}, "
                    f"got {sorted(g) or 'no error'}"
                )
    return problems


def main() -> int:
    want = expected()
    problems = compare(want, found())
    cases = len(want) + sum(
        text.count("assert_type(") for text in (p.read_text() for p in CASES.glob("case_*.py"))
    )
    if problems:
        print("\n".join(problems))
        print(f"typesafety: {len(problems)} mismatches")
        return 1
    print(f"typesafety: {cases} cases agree under mypy and basedpyright")
    return 0


if __name__ == "__main__":
    sys.exit(main())
