"""The pytest plugin: record a journal when absent, replay it when present."""

from __future__ import annotations

from pathlib import Path

import pytest

TEST_FILE = """
from pathlib import Path

from mce import effect

CALLS = Path(__file__).parent / "calls.txt"
QUERY = {query!r}


def search(req):
    with CALLS.open("a") as f:
        f.write(req["q"] + "\\n")
    return f"results for {{req['q']}}"


def test_agent(mce_journal):
    expected_mode = {expected!r}
    assert mce_journal.mode == expected_mode
    out = mce_journal.run_sync(effect("search", {{"q": QUERY}}), None, handlers={{"search": search}})
    assert out.value == "results for " + QUERY
"""


def write_test(pytester: pytest.Pytester, query: str, expected: str) -> None:
    pytester.makepyfile(test_agent=TEST_FILE.format(query=query, expected=expected))


def calls(pytester: pytest.Pytester) -> list[str]:
    path = Path(pytester.path) / "calls.txt"
    return path.read_text().split() if path.exists() else []


@pytest.fixture(autouse=True)
def not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests record journals, which CI forbids: run them as if outside CI."""
    monkeypatch.delenv("CI", raising=False)


def test_records_then_replays_then_reports_divergence(pytester: pytest.Pytester) -> None:
    write_test(pytester, "mce", "live")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    journal = Path(pytester.path) / "journals" / "test_agent" / "test_agent.jsonl"
    assert journal.exists() and calls(pytester) == ["mce"]

    write_test(pytester, "mce", "replay")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert calls(pytester) == ["mce"]  # replay made no live call

    write_test(pytester, "changed", "replay")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ReplayDivergence*position 0*"])

    write_test(pytester, "changed", "live")
    pytester.runpytest("-p", "no:cacheprovider", "--mce-record").assert_outcomes(passed=1)
    assert calls(pytester) == ["mce", "changed"]


def test_marker_chooses_the_journal_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="""
import pytest
from mce import effect

@pytest.mark.mce_journal("cassettes/one.jsonl")
def test_it(mce_journal):
    mce_journal.run_sync(effect("k", 1, handler=lambda r: r), None)
    mce_journal.run_sync(effect("k", 2, handler=lambda r: r), None)
    assert [p.name for p in mce_journal.paths] == ["one.jsonl", "one-2.jsonl"]
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert (Path(pytester.path) / "cassettes" / "one-2.jsonl").exists()


PARAMETRIZED = """
import pytest
from pathlib import Path
from mce import effect

CALLS = Path(__file__).parent / "calls.txt"


def search(req):
    with CALLS.open("a") as f:
        f.write(req + "\\n")
    return "results for " + req


@pytest.mark.parametrize("query", ["a/b", "a:b", "a b"])
def test_search(mce_journal, query):
    out = mce_journal.run_sync(effect("search", query), None, handlers={"search": search})
    assert out.value == "results for " + query
"""


def test_ids_differing_only_in_punctuation_get_their_own_journals(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_param=PARAMETRIZED)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)
    journals = sorted((Path(pytester.path) / "journals" / "test_param").iterdir())
    assert len(journals) == 3, journals
    assert calls(pytester) == ["a/b", "a:b", "a", "b"]  # each recorded live: "a b" splits in two
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)  # each replays its own
    assert len(calls(pytester)) == 4


@pytest.mark.parametrize("how", ["CI", "--mce-replay-only"])
def test_a_missing_journal_fails_in_ci_instead_of_calling_live(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    write_test(pytester, "mce", "live")
    args = ["-p", "no:cacheprovider"]
    if how == "CI":
        monkeypatch.setenv("CI", "true")
    else:
        args.append(how)
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no mce journal*test_agent.jsonl*--mce-record*"])
    assert calls(pytester) == []  # nothing ran live
    monkeypatch.delenv("CI", raising=False)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)  # recorded outside CI
    write_test(pytester, "mce", "replay")
    monkeypatch.setenv("CI", "1")
    pytester.runpytest(*args).assert_outcomes(passed=1)  # present: replays in CI too
    assert calls(pytester) == ["mce"]


def test_ci_set_to_false_still_records(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "false")
    write_test(pytester, "mce", "live")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert calls(pytester) == ["mce"]
