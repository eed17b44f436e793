"""Mutation testing of mce's core modules, each against its own tests (mutmut).

    pip install mutmut && python benchmarks/mutation.py [module ...] [--no-write]

For every module in `TARGETS`, a copy of the project is made in a temporary
directory, mutmut mutates only that module and runs only the module's own
test files against each mutant. The score is
killed / (killed + survived); mutants that time out count as killed, ones
no test reaches count as survived. Survivors are
listed with their diff so they can be killed by a new test or recorded as
equivalent in `EQUIVALENT` with the reason.

mutmut forks one process per mutant from a process that has already
imported the code, so a mutant of module-level state (a constant, a cache
built at import) can look killed or survived for the wrong reason:
`--confirm` re-runs each survivor in a fresh interpreter with the mutant
applied to the source file, and reports the ones a fresh process kills.

Each module's result is kept in `benchmarks/results/mutation/` (one JSON
file per module, with the date and machine it was measured on), and
docs/mutation.md is rendered from all of them: running one module updates
its row and keeps the others.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, machine, today

DOC = ROOT / "docs" / "mutation.md"
RESULTS = ROOT / "benchmarks" / "results" / "mutation"

# module -> the test files that are its own
_RUNTIME_TESTS = [
    "tests/test_interpret.py",
    "tests/test_par.py",
    "tests/test_runtime_nodes.py",
    "tests/test_budget.py",
    "tests/test_runtime_exact.py",
    "tests/test_parallel_exact.py",
    "tests/test_scopes_exact.py",
]
_JOURNAL_TESTS = [
    "tests/test_journal.py",
    "tests/test_writer.py",
    "tests/test_effects_port.py",
    "tests/test_replay.py",
]
_JOURNAL_OWN_TESTS = [*_JOURNAL_TESTS, "tests/test_journal_exact.py", "tests/test_writer_exact.py"]
# the recorder's exact contract: what is served, journaled, charged, and every divergence
_REPLAY_TESTS = [
    *_JOURNAL_TESTS,
    "tests/test_replay_exact.py",
    "tests/test_effects_port_exact.py",
]
_STEP_TESTS = ["tests/test_step.py", "tests/test_step_exact.py", "laws/test_step_laws.py"]
TARGETS: dict[str, list[str]] = {
    "mce/merge.py": ["tests/test_merge.py", "tests/test_merge_exact.py", "laws/test_merge_laws.py"],
    # test_step_lift.py: `lift(fn, *args)`, on every path that calls a lifted step
    "mce/step.py": [*_STEP_TESTS, "tests/test_step_lift.py", "tests/test_review_lift.py"],
    "mce/_applicatives.py": _STEP_TESTS,
    "mce/_runtime/trampoline.py": [*_RUNTIME_TESTS, "tests/test_step_lift.py"],
    "mce/_runtime/driver.py": [*_RUNTIME_TESTS, "tests/test_step_lift.py"],
    # test_lean_branches.py: the lean branch path only parallel.py has;
    # test_parallel_cancel_exact.py: branch tasks cancelled by lifted code
    "mce/_runtime/parallel.py": [
        *_RUNTIME_TESTS,
        "tests/test_lean_branches.py",
        "tests/test_parallel_cancel_exact.py",
        "tests/test_step_lift.py",
    ],
    "mce/_runtime/scopes.py": _RUNTIME_TESTS,
    "mce/_journal/records.py": _JOURNAL_OWN_TESTS,
    # test_journal_lines.py: lines made from a record's fields against the generic encoder
    "mce/_journal/lines.py": [*_JOURNAL_OWN_TESTS, "tests/test_journal_lines.py"],
    "mce/_journal/conversations.py": _JOURNAL_OWN_TESTS,
    "mce/_journal/loading.py": _JOURNAL_OWN_TESTS,
    "mce/_journal/memory.py": _JOURNAL_OWN_TESTS,
    "mce/_journal/file.py": [*_JOURNAL_OWN_TESTS, "tests/test_journal_lines.py"],
    "mce/_journal/errors.py": _JOURNAL_OWN_TESTS,
    # test_writer_thread.py: the thread it writes through (lazy fsyncs, a run opened there)
    "mce/_runtime/writer.py": [*_JOURNAL_OWN_TESTS, "tests/test_writer_thread.py"],
    "mce/_runtime/replay.py": _REPLAY_TESTS,
    # test_budget.py: the port charges budgets (live, served, refused)
    "mce/_runtime/effects_port.py": [*_REPLAY_TESTS, "tests/test_budget.py"],
}

# mutant name -> why it cannot be killed (it does not change behaviour)
_CACHE_ONLY = "only the per-class field cache changes: a miss recomputes the same fields"
EQUIVALENT: dict[str, str] = {
    "mce.merge.x__fields_of__mutmut_1": _CACHE_ONLY,
    "mce.merge.x__fields_of__mutmut_2": _CACHE_ONLY,
    "mce.merge.x__fields_of__mutmut_25": _CACHE_ONLY,
    "mce.merge.x__merge_mapping__mutmut_78": "a plain dict result is rebuilt by dict(...): an equal copy",
}
_NO_USAGE = "ints and strs carry no token usage: accounting them too adds nothing"
EQUIVALENT.update(
    {f"mce._runtime.trampoline.x_advance__mutmut_{n}": _NO_USAGE for n in (211, 212, 214)}
)
EQUIVALENT.update(
    {
        f"mce._runtime.trampoline.x_advance__mutmut_{n}": "dead code: charge_served refuses "
        "only an effect with a recorded refusal, which charge_call refused before it was served"
        for n in (218, 226, 227, 228)
    }
)
EQUIVALENT["mce._runtime.trampoline.x_advance__mutmut_24"] = (
    "only the shortcut down a left-nested chain: without it each .then is pushed by the "
    "THEN case, one turn of the loop each"
)
_ONE_ARG_CALL = "only picks thunk(arg) over thunk(arg, *more) when more is empty: the same call"
EQUIVALENT["mce._runtime.trampoline.x_advance__mutmut_9"] = _ONE_ARG_CALL
_SHA1_FLAG = "usedforsecurity only matters on an OpenSSL in FIPS mode: the digests are the same"
EQUIVALENT.update(
    {
        f"mce._journal.conversations.xǁConversationsǁ_prefixes__mutmut_{n}": _SHA1_FLAG
        for n in (2, 3)
    }
)
EQUIVALENT["mce._journal.conversations.xǁConversationsǁ_prefixes__mutmut_7"] = (
    "any fixed separator after each message's JSON tells the same prefixes apart"
)
_HELD_FALSY = "`_held` is only tested for truth: None is as false as False"
EQUIVALENT["mce._journal.memory.xǁJournalǁ__init____mutmut_3"] = _HELD_FALSY
EQUIVALENT["mce._journal.memory.xǁJournalǁclose__mutmut_1"] = _HELD_FALSY

_ROUTE_ONLY = (
    "only routes the lines to the line-by-line parse (the one `json.loads` fails or is not "
    "tried), which gives the same records and errors, more slowly"
)
EQUIVALENT.update(
    {f"mce._journal.loading.x__parse_body__mutmut_{n}": _ROUTE_ONLY for n in (25, 27, 28, 29, 31)}
)
EQUIVALENT["mce._journal.loading.x_parse_lines__mutmut_34"] = (
    "only skips the shortcut for a journal without references: resolving none gives the same records"
)
EQUIVALENT["mce._journal.loading.x_parse_line__mutmut_32"] = (
    "a version is only compared with `>= 2`: 3 reads as 2"
)
EQUIVALENT["mce._journal.loading.x_parse_object__mutmut_73"] = (
    "the default only has to be a str when a record has no run id"
)
EQUIVALENT["mce._journal.loading.x_parse_object__mutmut_75"] = (
    "no record holds every allowed key (ok and err exclude each other), so <= and < agree"
)

_LOCKED_FALSY = "`_locked` is only tested for truth: None is as false as False"
EQUIVALENT["mce._journal.file.xǁFileJournalǁ__init____mutmut_4"] = _LOCKED_FALSY
EQUIVALENT["mce._journal.file.xǁFileJournalǁclose__mutmut_4"] = _LOCKED_FALSY
EQUIVALENT["mce._journal.file.xǁFileJournalǁ__init____mutmut_6"] = (
    "`_torn_at` is only used by repair, which reads (setting it) first"
)
_STACKLEVEL = (
    "stacklevel only picks the frame a warning is reported at, and under mutmut's "
    "trampolines the frames are not a real run's: not observable here"
)
EQUIVALENT["mce._journal.file.xǁFileJournalǁread__mutmut_17"] = _STACKLEVEL
EQUIVALENT["mce._journal.file.xǁFileJournalǁread__mutmut_20"] = _STACKLEVEL
_LAST_BYTE = "a read at the last byte of the file gives that one byte whatever the size asked"
EQUIVALENT["mce._journal.file.xǁFileJournalǁrepair__mutmut_20"] = _LAST_BYTE
EQUIVALENT["mce._journal.file.xǁFileJournalǁrepair__mutmut_21"] = _LAST_BYTE
EQUIVALENT["mce._journal.file.xǁFileJournalǁline__mutmut_9"] = (
    "only makes every line the generic way (from the record's JSON object), which writes "
    "the same bytes, more slowly (tests/test_journal_lines.py checks the two agree)"
)
_SAME_RECORD = (
    "the record is passed only so that `line` need not build it again: built from the same "
    "fields, it is an equal record and gives the same line"
)
EQUIVALENT["mce._journal.file.xǁFileJournalǁlines__mutmut_21"] = _SAME_RECORD
EQUIVALENT["mce._journal.file.xǁFileJournalǁlines__mutmut_31"] = _SAME_RECORD
EQUIVALENT["mce.step.x_lift__mutmut_2"] = (
    "a plain function is callable: the type check only spares the callable() call"
)

EQUIVALENT["mce._runtime.replay.xǁReplayLookupǁrefusal__mutmut_9"] = (
    "decoding as Any declares nothing more than no type (refusal() checks the shape itself)"
)

_EP = "mce._runtime.effects_port."
_FALLBACK_NAME = (
    "the fallback name is used only without a journal, whose lookup has nothing to decode"
)
_BRANCH_DEFAULT = "Record's branch defaults to None: the same record"
_PLAIN_FAST_PATH = (
    "only narrows the fast path: encode returns a str, int, bool or None as itself, so a "
    "plain value sent through it is recorded the same"
)
_PLAIN_REQUEST = (
    "only narrows the fast path: a str, int, bool or None request holds no Secret (redact "
    "returns it as itself) and encode returns it as itself, so it is recorded the same"
)
EQUIVALENT.update(
    {
        _EP + "x_open_effects__mutmut_12": (
            "entries stays () only without a journal: that run is live, and a live run's "
            "lookup is given no entries"
        ),
        _EP + "xǁEffectsǁ__init____mutmut_42": _FALLBACK_NAME,
        _EP + "xǁEffectsǁ__init____mutmut_43": _FALLBACK_NAME,
        _EP + "xǁEffectsǁperform__mutmut_1": (
            "the default is never used in a run: the one caller, the driver, passes `defer`"
        ),
        **{
            f"{_EP}xǁEffectsǁperform__mutmut_{n}": _PLAIN_FAST_PATH
            for n in (69, 70, 72, 74, 75, 76)
        },
        **{f"{_EP}xǁEffectsǁperform__mutmut_{n}": _PLAIN_REQUEST for n in (88, 89, 91, 93, 94, 95)},
        _EP + "xǁEffectsǁprecharge__mutmut_2": (
            "the sorted positions are a cache: sorted again on every call, they are the same"
        ),
        _EP + "xǁEffectsǁprecharge__mutmut_17": (
            "lo only narrows the search: the end of the scope's range is never before its start"
        ),
        _EP + "xǁEffectsǁrecord_decision__mutmut_19": _BRANCH_DEFAULT,
        _EP + "xǁEffectsǁ_record_refusal__mutmut_27": _BRANCH_DEFAULT,
        _EP + "xǁEffectsǁfinish__mutmut_1": (
            "a replay buffers nothing (every append is guarded by `recording`): "
            "finishing it writes nothing"
        ),
        _EP + "xǁEffectsǁ_record_refusal__mutmut_1": (
            "a replay never gets here: charge_call returns before charging live, and "
            "charge_value follows only a live effect"
        ),
    }
)

_PAR = "mce._runtime.parallel."
EQUIVALENT.update(
    {
        f"{_PAR}x__work__mutmut_{n}": "dead code: a branch task's stack is non-empty only "
        "after the trampoline stopped it, in a sequence that is never None"
        for n in (30, 31, 32, 33)
    }
)
EQUIVALENT.update(
    {
        f"{_PAR}x__work__mutmut_{n}": "dead code: the driver is resumed only from a stop the "
        "trampoline made, in a sequence that is never None"
        for n in (92, 93, 94, 95)
    }
)
EQUIVALENT.update(
    {
        f"{_PAR}x__work__mutmut_{n}": "dead condition: a cancellation is caught by the "
        "clause before, so this one never sees it"
        for n in (145, 146, 147)
    }
)
EQUIVALENT[f"{_PAR}x__seq__mutmut_10"] = (
    "defer only lets a branch's last record be written in the background; the block "
    "waits for every record before its value is used, so writing it at once differs "
    "only in speed"
)
EQUIVALENT[f"{_PAR}x_finish__mutmut_4"] = (
    "the generic anyio task-group runner runs and cancels branches as the asyncio and "
    "trio runners do; those only cost less"
)

EQUIVALENT[f"{_PAR}x__merged__mutmut_3"] = (
    "acc_from is set with the first changed state, before any merge can conflict: "
    "its initial value is never read"
)
_FALSY = "None is false like False, and the flag is only ever tested for truth"
EQUIVALENT.update({f"{_PAR}xǁBlockǁ__init____mutmut_{n}": _FALSY for n in (20, 24, 26, 28, 31)})
EQUIVALENT.update(
    {
        f"{_PAR}xǁBlockǁ__init____mutmut_{n}": "failed_branch is read only with the "
        "failure that sets it"
        for n in (16, 17, 18)
    }
)
EQUIVALENT[f"{_PAR}xǁBlockǁ__init____mutmut_27"] = (
    "must_record is always set by start_block before finish reads it"
)
EQUIVALENT.update(
    {
        f"{_PAR}x__start__mutmut_{n}": "a branch that is only a lifted coroutine can raise "
        "but never fail, so which failure of its block comes first does not depend on "
        "when it ends: it need not mark the block as timing-dependent"
        for n in (10, 11, 38, 39)
    }
)
EQUIVALENT[f"{_PAR}x__discard__mutmut_3"] = (
    "lean_count is non-zero only once lean is set; with no branch lean, the loop finds "
    "no lean[i] set and closes nothing"
)
EQUIVALENT.update(
    {
        f"{_PAR}x__discard__mutmut_{n}": "after _discard the block's lean_count is 0 (or "
        "None: both false, and it is only tested for truth from then on), and lean[i] is "
        "read only while lean_count is not"
        for n in (7, 8)
    }
)
EQUIVALENT.update(
    {
        f"{_PAR}x__lean_index__mutmut_{n}": "the message of an assertion that cannot fail: "
        "a done-callback is added only to a lean task stored in its block's results"
        for n in (3, 4, 5)
    }
)
EQUIVALENT[f"{_PAR}x__start__mutmut_47"] = "lean[i] is only ever tested for truth"
EQUIVALENT[f"{_PAR}x_outcome__mutmut_26"] = (
    "lean_count is non-zero only once lean is set; with no branch lean, every lean[i] is "
    "0 and the results are kept as they are"
)
_DRV = "mce._runtime.driver."
EQUIVALENT.update(
    {f"{_DRV}x__perform_live__mutmut_{n}": EQUIVALENT[f"{_PAR}x__seq__mutmut_10"] for n in (50, 54)}
)
EQUIVALENT.update(
    {
        f"{_DRV}x_lifted_chain__mutmut_{n}": "only the fast path: a lifted step a callback "
        "returns is then run by the trampoline (advance, told the frame it came from), "
        "which calls it the same way and stops at its coroutine for the driver to await"
        for n in (2, 29)
    }
)
EQUIVALENT.update(
    {
        f"{_DRV}x_lifted_chain__mutmut_{n}": "only the fast path: a .then frame is then "
        "handed back to the trampoline, which handles every frame"
        for n in (3, 11)
    }
)
EQUIVALENT.update(
    {
        f"{_DRV}x_lifted_chain__mutmut_{n}": "a coroutine has __await__: the type check "
        "only spares the hasattr call"
        for n in (4, 56)
    }
)
EQUIVALENT[f"{_DRV}x_lifted_chain__mutmut_6"] = _ONE_ARG_CALL
_SCO = "mce._runtime.scopes."
_NOTHING_SERVED = "a live run's replay lookup holds no entries: decision() finds none"
EQUIVALENT[f"{_SCO}x_run_timeout__mutmut_13"] = _NOTHING_SERVED
EQUIVALENT[f"{_SCO}x_run_budget__mutmut_72"] = (
    "None and False are both false: `decided` is only negated"
)
EQUIVALENT[f"{_SCO}x__share_key__mutmut_13"] = (
    "a step's key is made once (its cell is kept in run.shares), so what is stored is "
    "only ever compared with other steps"
)
EQUIVALENT.update(
    {
        f"{_SCO}x__start__mutmut_{n}": "the message of an assertion run() always "
        "satisfies: it opens its task group before it runs any step"
        for n in (3, 4)
    }
)
EQUIVALENT.update(
    {
        f"{_SCO}x__start__mutmut_{n}": "only sends asyncio's shared steps down the general "
        "path, into the run's task group, which runs, cancels and waits for them as the "
        "asyncio path does (the same values, errors and journal; it would cancel again a "
        "step that ignored its cancellation, which no mce step does); the asyncio path "
        "only costs less"
        for n in (6, 7)
    }
)
EQUIVALENT[f"{_SCO}x__start__mutmut_20"] = (
    "only gives every shared step a keeper of its own instead of one per run: each keeper "
    "ends its shared steps when the run's task group ends, as the one keeper does"
)
EQUIVALENT[f"{_SCO}x_run_budget__mutmut_103"] = EQUIVALENT[f"{_SCO}x_run_budget__mutmut_72"]

_KEPT_BY_THREAD = (
    "the writer thread keeps a failed write too and raises it on every later submit, "
    "and is not idle after one, so the writer's own copy changes nothing"
)
_LIVE_SET = (
    "the set of writers with file I/O only picks writing on the loop or in the thread "
    "for a lone step: the same records are durable at the same moments"
)
EQUIVALENT.update(
    {
        "mce._runtime.writer.x__writer_of__mutmut_5": (
            "joining a single chunk gives that chunk: the same bytes are written"
        ),
        "mce._runtime.writer.xǁJournalWriterǁ_submit__mutmut_7": _KEPT_BY_THREAD,
        "mce._runtime.writer.xǁJournalWriterǁ_wait__mutmut_2": _KEPT_BY_THREAD,
        "mce._runtime.writer.xǁJournalWriterǁappend__mutmut_2": _LIVE_SET,
        "mce._runtime.writer.xǁJournalWriterǁappend__mutmut_4": _LIVE_SET,
        "mce._runtime.writer.xǁJournalWriterǁappend__mutmut_5": _LIVE_SET,
        **{
            f"mce._runtime.writer.xǁJournalWriterǁdefer_effect__mutmut_{n}": _LIVE_SET
            for n in (22, 23, 24)
        },
        "mce._runtime.writer.xǁJournalWriterǁdurable__mutmut_5": (
            "handing over an empty buffer adds an empty write; the records and the "
            "moment they are durable are the same"
        ),
    }
)

_NO_INDENT = "the encoder is made without an indent, so the indent level it is given is never used"
_SAME_BYTES = (
    "only sends a record (or one field) the generic way - the field's JSON from the C encoder, "
    "and the optional fields added one by one - which writes the same bytes, more slowly "
    "(tests/test_journal_lines.py checks the two agree)"
)
EQUIVALENT.update(
    {
        "mce._journal.lines.x_encode_line__mutmut_8": _NO_INDENT,
        "mce._journal.lines.x__json__mutmut_7": _NO_INDENT,
        **{
            f"mce._journal.lines.x_record_line__mutmut_{n}": _SAME_BYTES
            for n in (
                6,
                8,
                10,
                12,
                14,
                15,
                17,
                19,
                20,
                22,
                26,
                31,
                32,
                34,
                38,
                44,
                47,
                50,
                53,
                56,
                59,
            )
        },
    }
)

EQUIVALENT["mce._journal.loading.x__parse_body__mutmut_37"] = (
    "`fast` is only tested for truth: None is as false as False"
)

_COPY = ("mce", "tests", "laws", "conftest.py", "pyproject.toml", "README.md")
_STATUS = re.compile(r"^\s*(?P<name>\S+): (?P<status>.+)$")


def _copy_project(dest: Path) -> None:
    for name in _COPY:
        src = ROOT / name
        if src.is_dir():
            # laws/mutants is the law suite's own mutant check, and its name is mutmut's
            shutil.copytree(
                src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "mutants")
            )
        elif src.exists():
            shutil.copy2(src, dest / name)


def _configure(dest: Path, module: str, tests: list[str]) -> None:
    pyproject = dest / "pyproject.toml"
    selection = list(tests)
    pyproject.write_text(
        pyproject.read_text()
        + "\n[tool.mutmut]\n"
        + 'source_paths = ["mce/"]\n'
        + f"only_mutate = [{json.dumps(module)}]\n"
        + 'also_copy = ["laws/", "conftest.py", "README.md"]\n'
        + f"pytest_add_cli_args_test_selection = {json.dumps(selection)}\n"
        + 'pytest_add_cli_args = ["-o", "addopts=-p no:cacheprovider"]\n'
    )


def _mutmut(dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The directory must exist before the interpreter starts: a sys.path entry
    # that is missing then is never searched later, and the tests would import
    # the installed mce instead of the mutated copy.
    (dest / "mutants").mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(dest / "mutants"))
    return subprocess.run(
        [sys.executable, "-m", "mutmut", *args],
        cwd=dest,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def mutate(module: str, tests: list[str], *, confirm: bool, jobs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="mce-mutation-") as tmp:
        dest = Path(tmp)
        _copy_project(dest)
        _configure(dest, module, tests)
        done = _mutmut(dest, "run", "--max-children", str(jobs))
        if done.returncode != 0:
            raise RuntimeError(f"mutmut run failed for {module}:\n{done.stdout}\n{done.stderr}")
        listing = _mutmut(dest, "results", "--all", "true").stdout
        statuses: dict[str, str] = {}
        for line in listing.splitlines():
            m = _STATUS.match(line)
            if m:
                statuses[m["name"]] = m["status"].strip()
        killed = [n for n, s in statuses.items() if s in ("killed", "timeout")]
        survived = [
            n
            for n, s in statuses.items()
            if s not in ("killed", "timeout", "skipped") and n not in EQUIVALENT
        ]
        equivalent = [n for n in statuses if n in EQUIVALENT]
        diffs = {n: _mutmut(dest, "show", n).stdout.strip() for n in survived}
        fresh_kills = _confirm(dest, module, tests, diffs) if confirm else []
        survived = [n for n in survived if n not in fresh_kills]
        killed += fresh_kills
        total = len(killed) + len(survived)
        return {
            "module": module,
            "measured": f"{today()} · {machine()}",
            "tests": tests,
            "killed": len(killed),
            "survived": len(survived),
            "equivalent": len(equivalent),
            "score": len(killed) / total if total else 1.0,
            "survivors": {n: diffs[n] for n in survived},
        }


def _confirm(dest: Path, module: str, tests: list[str], diffs: dict[str, str]) -> list[str]:
    """Survivors that a fresh interpreter, with the mutant in the source, kills.

    `mutmut apply` writes the mutant into the copy's source file (methods
    keep their indentation, which a patch of `mutmut show`'s diff loses);
    the module's tests then run in a new process that imports that file.
    """
    source = dest / module
    original = source.read_text()
    if _fresh_pytest(dest, tests).returncode != 0:
        raise RuntimeError(f"the tests of {module} fail without a mutant: cannot confirm")
    kills = []
    for name in diffs:
        applied = _mutmut(dest, "apply", name)
        try:
            if applied.returncode != 0 or source.read_text() == original:
                raise RuntimeError(
                    f"could not apply {name} to {module}:\n{applied.stdout}\n{applied.stderr}"
                )
            done = _fresh_pytest(dest, tests)
        finally:
            source.write_text(original)
        if done.returncode != 0:
            kills.append(name)
    return kills


def _fresh_pytest(dest: Path, tests: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
        cwd=dest,
        env=dict(os.environ, PYTHONPATH=str(dest)),
        capture_output=True,
        text=True,
        check=False,
    )


def _result_file(module: str) -> Path:
    return RESULTS / (module.removesuffix(".py").replace("/", ".") + ".json")


def stored_results() -> list[dict[str, object]]:
    """Every module's last stored result, in the order of `TARGETS`."""
    found = []
    for module in TARGETS:
        path = _result_file(module)
        if path.exists():
            found.append(json.loads(path.read_text()))
    return found


def report(results: list[dict[str, object]]) -> str:
    lines = [
        "# Mutation testing",
        "",
        "`python benchmarks/mutation.py [module ...]` (mutmut). Each core module is "
        "mutated alone and tested only by its own test files: how much of its behaviour "
        "those tests pin down. The score is killed / (killed + survived); mutants listed "
        "as equivalent (they cannot change behaviour, reason given below) are left out.",
        "",
        "| module | its tests | killed | survived | equivalent | score | measured |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| `{r['module']}` | {', '.join(f'`{t}`' for t in r['tests'])} | {r['killed']} | "  # type: ignore[attr-defined]
            f"{r['survived']} | {r['equivalent']} | {float(r['score']):.0%} |"  # type: ignore[arg-type]
            f" {r.get('measured', '')} |"
        )
    missing = [m for m in TARGETS if m not in {r["module"] for r in results}]
    if missing:
        lines += ["", "Not measured yet: " + ", ".join(f"`{m}`" for m in missing) + "."]
    if EQUIVALENT:
        lines += ["", "## Equivalent mutants", ""]
        lines += [f"* `{n}`: {why}" for n, why in sorted(EQUIVALENT.items())]
    survivors = [(r["module"], n, d) for r in results for n, d in r["survivors"].items()]  # type: ignore[attr-defined]
    if survivors:
        lines += ["", "## Survivors", ""]
        for module, name, diff in survivors:
            lines += [f"### `{name}` ({module})", "", "```diff", diff, "```", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all targets)")
    parser.add_argument(
        "--confirm", action="store_true", help="re-run survivors in a fresh process"
    )
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 2,
        help="mutants tested at once (default: one per core)",
    )
    args = parser.parse_args()
    chosen = args.modules or list(TARGETS)
    unknown = [m for m in chosen if m not in TARGETS]
    if unknown:
        raise SystemExit(f"not a mutation target: {unknown}; targets are {list(TARGETS)}")
    results = []
    for module in chosen:
        r = mutate(module, TARGETS[module], confirm=args.confirm, jobs=args.jobs)
        print(
            f"{module}: {r['killed']} killed, {r['survived']} survived, score {r['score']:.0%}",
            flush=True,
        )
        results.append(r)
        if not args.no_write:
            RESULTS.mkdir(parents=True, exist_ok=True)
            _result_file(module).write_text(json.dumps(r, indent=1, sort_keys=True) + "\n")
    if args.no_write:
        print(report(results))
    else:
        DOC.write_text(report(stored_results()))
        print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
