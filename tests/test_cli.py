"""The command line: demo, run, replay (identical and diverged), trace, graph, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mce.cli import main

FLOW = """
from mce import effect, par

def workflow():
    return par(effect("fetch", "{first}"), effect("fetch", "b")).named("both")

mce_handlers = {{"fetch": lambda req: req.upper()}}
"""


def write_flow(tmp_path: Path, first: str = "a") -> str:
    path = tmp_path / "flow.py"
    path.write_text(FLOW.format(first=first))
    return str(path)


def test_demo_writes_journal_and_timeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Answer: Agents are programs" in out
    assert "13 effects (13 live, 0 replayed)" in out and "x from parallelism" in out
    assert (tmp_path / "demo.jsonl").exists()
    assert 'class="bar' in (tmp_path / "timeline.html").read_text()


def test_run_with_plain_progress_then_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = write_flow(tmp_path)
    journal = str(tmp_path / "run.jsonl")
    assert main(["run", f"{flow}:workflow", "--journal", journal]) == 0
    captured = capsys.readouterr()
    assert "ok: ('A', 'B')" in captured.out
    assert "effect.end   fetch 0/0/0 ok" in captured.err and "step.start   both" in captured.err
    assert main(["replay", f"{flow}:workflow", journal]) == 0
    assert "identical" in capsys.readouterr().out
    changed = write_flow(tmp_path, first="z")
    assert main(["replay", f"{changed}:workflow", journal]) == 1
    out = capsys.readouterr().out
    assert "DIVERGED" in out and "position 0/0/0" in out


FLAKY = """
from pathlib import Path
from mce import effect

MARK = Path(__file__).with_name("{mark}")

def pay(req):
    if not MARK.exists():
        MARK.write_text("failed once")
        raise ConnectionError("gateway down")
    return "paid"

def workflow():
    return effect("pay", 1, handler=pay)
"""


def test_resume_with_retry_failed_reruns_what_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "pay_flow.py"
    flow.write_text(FLAKY.format(mark="pay-failed-once"))
    journal = str(tmp_path / "run.jsonl")
    assert main(["run", f"{flow}:workflow", "--journal", journal]) == 1
    assert "gateway down" in capsys.readouterr().out
    assert main(["run", f"{flow}:workflow", "--journal", journal, "--resume"]) == 1
    assert "gateway down" in capsys.readouterr().out  # the recorded failure is served
    args = ["run", f"{flow}:workflow", "--journal", journal, "--resume", "--retry-failed"]
    assert main(args) == 0
    assert "ok: 'paid'" in capsys.readouterr().out
    assert main(["replay", f"{flow}:workflow", journal]) == 0


def test_replay_of_a_program_that_drops_recorded_work_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = write_flow(tmp_path)
    journal = str(tmp_path / "run.jsonl")
    assert main(["run", f"{flow}:workflow", "--journal", journal]) == 0
    shorter = tmp_path / "shorter.py"
    shorter.write_text(
        "from mce import effect, par\n"
        "def workflow():\n"
        "    return par(effect('fetch', 'a')).named('both')\n"
    )
    assert main(["replay", f"{shorter}:workflow", journal]) == 1
    out = capsys.readouterr().out
    assert "DIVERGED" in out and "position 0/1/0" in out and "recorded, never requested" in out


def test_trace_and_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = write_flow(tmp_path)
    journal = str(tmp_path / "run.jsonl")
    main(["run", f"{flow}:workflow", "--journal", journal])
    page = tmp_path / "run.html"
    assert main(["trace", journal, "-o", str(page)]) == 0
    assert page.read_text().count('class="bar') == 2
    capsys.readouterr()
    assert main(["graph", f"{flow}:workflow"]) == 0
    assert 'subgraph n2 ["par"]' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "no_such_module_x:flow"], "cannot import module"),
        (["run", "mce.demo"], "expected MODULE:ATTR"),
        (["run", "mce.demo:nope"], "has no attribute 'nope'"),
        (["run", "mce.demo:TASK"], "is a str, not a Step"),
        (["run", "mce.demo:workflow", "--state", "{oops"], "--state is not valid JSON"),
        (["run", "mce.demo:workflow", "--mode", "replay"], "needs --journal"),
        (["run", "mce.demo:workflow", "--retry-failed"], "--retry-failed needs --resume"),
        (["trace", "/no/such/journal.jsonl"], "no such journal"),
        (["replay", "mce.demo:workflow", "/no/such.jsonl"], "no such journal"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_code_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_corrupt_journal_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "bad.jsonl"
    journal.write_text(
        '{"mce_journal": 1, "run": "r", "seed": 0}\nnot json\n{"pos": "0", "kind": "k", "fp": ""}\n'
    )
    assert main(["trace", str(journal)]) == 2
    assert "corrupt at line 2" in capsys.readouterr().err


def test_python_dash_m_and_console_script(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mce", "graph", "mce.demo:workflow"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("flowchart TD")
    script = shutil.which("mce")
    if script is not None:
        done = subprocess.run([script, "--help"], capture_output=True, text=True)
        assert done.returncode == 0 and "demo" in done.stdout


LAYOUT_PROBE = """
<pre id="layout"></pre>
<script>
const rows = [...document.querySelectorAll("rect.bar")].map(r => {
  const b = r.getBoundingClientRect();
  return {pos: r.dataset.pos, kind: r.dataset.kind, left: b.left, right: b.right, top: b.top, width: b.width};
});
document.getElementById("layout").textContent = JSON.stringify(rows);
</script>
"""


def test_timeline_renders_in_a_real_browser(tmp_path: Path) -> None:
    browser = (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    if browser is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium)")
    flow = tmp_path / "fan.py"
    flow.write_text(
        "from mce import effect, sleep, gather\n"
        "def workflow():\n"
        "    return gather([sleep(0.05 + i / 100) for i in range(3)]).then(lambda _: sleep(0.02))\n"
    )
    journal = tmp_path / "fan.jsonl"
    assert main(["run", f"{flow}:workflow", "--journal", str(journal)]) == 0
    page = tmp_path / "fan.html"
    assert main(["trace", str(journal), "-o", str(page)]) == 0
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    layout = json.loads(
        dom.split('<pre id="layout">', 1)[1].split("</pre>", 1)[0].replace("&quot;", '"')
    )
    assert sorted(b["pos"] for b in layout) == ["0/0/0", "0/1/0", "0/2/0", "1"]
    assert all(b["width"] > 0 for b in layout)
    bars = {b["pos"]: b for b in layout}
    parallel = [bars["0/0/0"], bars["0/1/0"], bars["0/2/0"]]
    # the parallel sleeps overlap in time: each starts before the others end
    assert max(b["left"] for b in parallel) < min(b["right"] for b in parallel)
    # the sequential step starts after all three end, one row lower
    assert bars["1"]["left"] >= max(b["right"] for b in parallel) - 1
    assert len({b["top"] for b in layout}) == 4


def test_live_progress_line_on_a_terminal() -> None:
    import io

    from mce.cli import Progress
    from mce.trace import TraceEvent

    out = io.StringIO()
    progress = Progress(out, live=True)
    progress(TraceEvent("step.start", 0.0, "", "research"))
    progress(TraceEvent("effect.start", 0.0, "0/0/0", "search"))
    progress(TraceEvent("effect.start", 0.0, "0/1/0", "search"))
    assert "running: search x2" in progress.status() and "steps: research" in progress.status()
    progress(TraceEvent("effect.end", 0.1, "0/0/0", "search", ok=True))
    progress(TraceEvent("effect.end", 0.2, "0/1/0", "search", ok=False))
    progress.close()
    text = out.getvalue()
    assert "\r\x1b[2K" in text  # the line is redrawn in place
    assert text.rstrip().endswith("steps: research (0 finished)")
    progress(TraceEvent("step.end", 0.3, "", "research", ok=True))
    assert progress.status().endswith("steps: - (1 finished)")
    assert "done: 2 (failed 1)" in text


def test_journal_in_use_is_bad_input_but_a_workflow_bug_keeps_its_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = write_flow(tmp_path)
    journal = str(tmp_path / "run.jsonl")
    assert main(["run", f"{flow}:workflow", "--journal", journal]) == 0
    assert main(["run", f"{flow}:workflow", "--journal", journal]) == 2
    assert "already holds a run" in capsys.readouterr().err
    buggy = tmp_path / "buggy.py"
    buggy.write_text(
        "from mce import pure\ndef workflow():\n    return pure(1).map(lambda x: int('x'))\n"
    )
    with pytest.raises(ValueError, match="invalid literal"):
        main(["run", f"{buggy}:workflow"])


# ---------------------------------------------------------------- clear errors (issue 16 item 11)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def workflow(:\n    pass\n", "has a syntax error at line 1"),
        ("raise RuntimeError('no config here')\n", "RuntimeError: no config here"),
        ("import no_such_dependency_x\n", "No module named 'no_such_dependency_x'"),
    ],
)
def test_a_target_that_fails_to_import_is_exit_2_with_a_clear_message(
    tmp_path: Path, source: str, message: str
) -> None:
    flow = tmp_path / "broken.py"
    flow.write_text(source)
    done = subprocess.run(
        [sys.executable, "-m", "mce", "run", f"{flow}:workflow"], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert "broken.py" in done.stderr  # it says which file


def test_an_unwritable_output_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = write_flow(tmp_path)
    journal = str(tmp_path / "run.jsonl")
    assert main(["run", f"{flow}:workflow", "--journal", journal]) == 0
    capsys.readouterr()
    target = tmp_path / "no-such-dir" / "deeper" / "run.html"
    (tmp_path / "no-such-dir").write_text("a file, not a directory")
    assert main(["trace", journal, "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and str(target) in err


def test_a_file_that_is_not_a_journal_is_reported_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello, these are my notes\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    data = tmp_path / "data.json"
    data.write_text('{"name": "a json file"}\n')
    for path in (notes, empty, data):
        assert main(["trace", str(path), "-o", str(tmp_path / "x.html")]) == 2
        err = capsys.readouterr().err
        assert f"{path} is not an mce journal" in err and "line 0" not in err
        assert main(["replay", "mce.demo:workflow", str(path)]) == 2
        assert "is not an mce journal" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_trace_refuses_to_overwrite_a_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = write_flow(tmp_path)
    journal = tmp_path / "run.jsonl"
    other = tmp_path / "other.jsonl"
    assert main(["run", f"{flow}:workflow", "--journal", str(journal)]) == 0
    assert main(["run", f"{flow}:workflow", "--journal", str(other)]) == 0
    before = journal.read_bytes()
    for output in (journal, other):
        assert main(["trace", str(journal), "-o", str(output)]) == 2
        assert "refusing to overwrite the journal" in capsys.readouterr().err
    assert journal.read_bytes() == before
    assert other.read_text().startswith('{"mce_journal"')


# ---------------------------------------------------------------- the command line a user expects


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from mce import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mce {__version__}"


def test_help_does_not_look_up_the_version() -> None:
    """Reading the installed version costs as much as the rest of `mce --help`:
    only `--version` pays it."""
    probe = (
        "import contextlib, io, mce\n"
        "from mce.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    code = main(['--help'])\n"
        "assert code == 0 and 'usage: mce' in out.getvalue(), (code, out.getvalue())\n"
        "print('__version__' in vars(mce))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["rnu", "mce.demo:workflow"], "did you mean 'run'?"),
        (["trcae", "j.jsonl"], "did you mean 'trace'?"),
        (["run", "mce.demo:workflow", "--jornal", "j.jsonl"], "did you mean '--journal'?"),
        (["trace", "j.jsonl", "--outptu", "x.html"], "did you mean '--output'?"),
        (["--verison"], "did you mean '--version'?"),
    ],
)
def test_mistyped_commands_and_options_get_a_suggestion(
    argv: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert suggestion in capsys.readouterr().err


def test_options_are_never_silently_abbreviated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "mce.demo:workflow", "--jour", str(tmp_path / "j.jsonl")]) == 2
    assert "unrecognized arguments: --jour" in capsys.readouterr().err
    assert not (tmp_path / "j.jsonl").exists()


def test_live_status_line_fits_a_narrow_terminal() -> None:
    import io

    from mce.cli import Progress, display_width
    from mce.trace import TraceEvent

    out = io.StringIO()
    progress = Progress(out, live=True, width=60)
    progress(TraceEvent("step.start", 0.0, "", "a rather long research step name"))
    progress(TraceEvent("step.start", 0.0, "0/", "检索与总结多个来源的资料"))
    for i in range(6):
        progress(TraceEvent("effect.start", 0.0, f"0/{i}/0", f"tool.search_the_web_{i}"))
    progress(TraceEvent("effect.end", 0.1, "0/0/0", "tool.search_the_web_0", ok=False))
    progress.close()
    frames = out.getvalue().replace("\n", "").split("\r\x1b[2K")[1:]
    assert frames
    for frame in frames:
        # one column spare: a line that fills the last column wraps on some terminals
        assert display_width(frame) <= 59, frame
    last = frames[-1]
    assert "done: 1" in last and "failed 1" in last and "running: 5" in last


def test_run_writes_a_timeline_with_step_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = write_flow(tmp_path)
    journal = tmp_path / "run.jsonl"
    page = tmp_path / "run.html"
    argv = ["run", f"{flow}:workflow", "--journal", str(journal), "--timeline", str(page)]
    assert main(argv) == 0
    assert f"Timeline: {page}" in capsys.readouterr().out
    html = page.read_text()
    assert html.count('class="bar') == 2 and "fetch · in both" in html
    assert main(["run", f"{flow}:workflow", "--timeline", str(page)]) == 2
    assert "--timeline needs --journal" in capsys.readouterr().err


def test_progress_counts_retries() -> None:
    import io

    from mce.cli import Progress
    from mce.trace import TraceEvent

    out = io.StringIO()
    progress = Progress(out, live=False)
    progress(TraceEvent("effect.start", 0.0, "0", "llm.chat"))
    progress(TraceEvent("effect.retry", 0.1, "0", "llm.chat", ok=False))
    assert "done: 0 (failed 0, 1 retries)" in progress.status()
    assert "effect.retry llm.chat 0 failed, retrying" in out.getvalue()


def test_an_unwritable_journal_is_bad_input_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = write_flow(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for option in ("--journal", "--timeline"):
        journal = ["--journal", str(tmp_path / "ok.jsonl")] if option == "--timeline" else []
        argv = ["run", f"{flow}:workflow", *journal, option, str(blocker / "deeper" / "x")]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "cannot write" in err and "is not a writable directory" in err
    assert not (tmp_path / "ok.jsonl").exists()  # nothing ran


def test_a_journal_failing_mid_run_stops_it_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from mce.journal import FileJournal

    def full(self: object, records: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    for name in ("write", "append"):
        if hasattr(FileJournal, name):
            monkeypatch.setattr(FileJournal, name, full)
    flow = write_flow(tmp_path)
    assert main(["run", f"{flow}:workflow", "--journal", str(tmp_path / "j.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "could not be written" in err and "No space left on device" in err


def test_run_with_no_model_configured_is_exit_2_saying_how_to_configure_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    flow = tmp_path / "asks_a_model.py"
    flow.write_text(
        "from mce.llm import chat\nworkflow = chat([{'role': 'user', 'content': 'hi'}])\n"
    )
    assert main(["run", f"{flow}:workflow"]) == 2
    err = capsys.readouterr().err
    assert "no model is configured" in err
    assert "OPENAI_API_KEY" in err
    assert "Traceback" not in err
