"""The timeline page and the Perfetto trace: names, groups, colours, retries, details - and in Chromium."""

from __future__ import annotations

import html
import json
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mce import Journal, Secret, effect, gather, par, run_sync
from mce.cli import main
from mce.effects import EffectFailed
from mce.llm.types import LLMError
from mce.trace import TraceEvent, palette, perfetto_trace, timeline_html

SECRET = "sk-live-do-not-show-1234"


def _reply(request: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "content": "ok", "finish_reason": "stop"}


def _flaky(request: Any) -> Any:
    raise EffectFailed(LLMError("rate_limited", "slow down", status=429, attempts=3))


def agent(name: str) -> Any:
    """A sub-agent: asks a model, then fans out to two tools; named after the agent."""
    chat = effect("llm.chat", {"model": "gpt-test", "messages": [name]}, handler=_reply)
    tools = gather(
        [
            effect("tool.search", {"query": name}, handler=lambda r: ["hit"]),
            effect(
                "tool.fetch",
                {"url": f"https://x/{name}", "headers": {"Authorization": SECRET}},
                handler=lambda r: "page",
            ),
        ]
    )
    return chat.then(lambda _: tools).named(f"agent {name}")


def recorded() -> tuple[Journal, list[TraceEvent]]:
    journal, events = Journal(), []
    program = (
        effect("llm.chat", {"model": "gpt-test", "key": Secret(SECRET)}, handler=_reply)
        .then(lambda _: par(agent("researcher"), agent("writer")).named("research"))
        .then(
            lambda _: effect("llm.chat", {"model": "gpt-test", "messages": ["sum"]}, handler=_flaky)
        )
    )
    out = run_sync(program, None, journal=journal, trace=events.append)
    assert not out.ok
    return journal, events


def test_rows_are_named_by_tool_model_and_step() -> None:
    journal, events = recorded()
    page = timeline_html(journal, events=events)
    for label in (
        "search(query='researcher')",
        "fetch(url='https://x/writer', ",
        "chat gpt-test",
    ):
        assert html.escape(label) in page
    assert "0/0/0" not in page.split('id="chart"')[1].split("<title>")[0]
    # without the events, rows still carry tool and model names
    bare = timeline_html(journal)
    assert ">" + html.escape("search(query='writer')") + "<" in bare
    assert "chat gpt-test" in bare


def test_rows_are_grouped_by_branch_in_collapsible_sections() -> None:
    journal, events = recorded()
    page = timeline_html(journal, events=events)
    # the run and its two agents; each agent's fan-out of single tool calls stays in its section
    assert page.count('<details class="group"') == 3
    assert '<span class="name">agent researcher</span>' in page
    assert '<span class="name">agent writer</span>' in page
    researcher = page.index('<span class="name">agent researcher</span>')
    writer = page.index('<span class="name">agent writer</span>')
    # the researcher's tool calls sit inside the researcher's section, before the writer's
    search = page.index(html.escape("search(query='researcher')"))
    assert researcher < search < writer


def test_each_kind_gets_a_distinct_colour() -> None:
    # the old palette hashed kinds into 8 colours: these three came out the same
    kinds = ["llm.chat", "tool.search", "tool.fetch", "agent.plan", "agent.run", "agent.join"]
    assert len(set(palette(kinds).values())) == len(kinds)
    many = [f"tool.t{i}" for i in range(40)]
    assert len(set(palette(many).values())) == 40
    journal, events = recorded()
    page = timeline_html(journal, events=events)
    used = {c for c in palette(["llm.chat", "tool.search", "tool.fetch"]).values()}
    assert all(f'fill="{c}"' in page for c in used)


def test_retries_are_shown() -> None:
    journal, events = recorded()
    page = timeline_html(journal, events=events)
    assert 'data-attempts="3"' in page and "3 attempts" in page and "×3" in page
    assert "1 retried" in page


def test_request_and_result_are_embedded_redacted() -> None:
    journal, events = recorded()
    page = timeline_html(journal, events=events)
    assert SECRET not in page
    data = json.loads(page.split('id="mce-effects">')[1].split("</script>")[0])
    fetches = [d for d in data if "(tool.fetch)" in d["title"]]
    assert fetches and fetches[0]["request"]["headers"]["Authorization"] == "<redacted>"
    assert fetches[0]["result"] == "page"
    failed = [d for d in data if d["outcome"] == "error"]
    assert failed[0]["result"]["type"] == "LLMError" and failed[0]["result"]["status"] == 429


def test_perfetto_trace_json() -> None:
    journal, events = recorded()
    doc = perfetto_trace(journal, events=events)
    assert json.loads(json.dumps(doc)) == doc
    trace = doc["traceEvents"]
    complete = [e for e in trace if e["ph"] == "X"]
    assert len(complete) == 8
    assert all(e["dur"] >= 0 and e["ts"] >= 0 and e["pid"] == 1 for e in complete)
    names = {e["args"]["name"] for e in trace if e["name"] == "thread_name"}
    assert {"agent researcher", "agent writer"} <= names
    # each branch is its own thread: the two agents' tool calls run on four threads
    tools = [e for e in complete if e["cat"].startswith("tool.")]
    assert len({e["tid"] for e in tools}) == 4
    begins = [e for e in trace if e["ph"] == "B"]
    ends = [e for e in trace if e["ph"] == "E"]
    assert sorted(e["name"] for e in begins) == sorted(e["name"] for e in ends)
    assert {"research", "agent researcher", "agent writer"} <= {e["name"] for e in begins}
    assert SECRET not in json.dumps(doc)


def test_trace_command_writes_perfetto(tmp_path: Path) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(
        "from mce import effect, par\n"
        "def workflow():\n"
        "    return par(effect('a', 1, handler=str), effect('b', 2, handler=str))\n"
    )
    journal = tmp_path / "run.jsonl"
    assert main(["run", f"{flow}:workflow", "--journal", str(journal)]) == 0
    out = tmp_path / "run.json"
    assert main(["trace", str(journal), "--format", "perfetto", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert sorted(e["name"] for e in doc["traceEvents"] if e["ph"] == "X") == ["a", "b"]


# ---------------------------------------------------------------- in a real browser


def colours(data: bytes) -> Counter[tuple[int, int, int]]:
    """How many pixels of each RGB colour the PNG image `data` has."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat = 8, []
    width = height = channels = 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour_type in (2, 6) and interlace == 0, "unsupported PNG"
            channels = 3 if colour_type == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    previous = bytearray(stride)
    counts: Counter[tuple[int, int, int]] = Counter()
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        row = bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(channels, stride):
                row[i] = (row[i] + row[i - channels]) & 0xFF
        elif kind == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = row[i - channels] if i >= channels else 0
                row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = row[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[i] = (row[i] + pred) & 0xFF
        for x in range(0, stride, channels):
            counts[(row[x], row[x + 1], row[x + 2])] += 1
        previous = row
    return counts


PROBE = """
<pre id="probe"></pre>
<script>
const rect = (el) => { const b = el.getBoundingClientRect();
  return {left: b.left, right: b.right, top: b.top, width: b.width, height: b.height}; };
const bars = [...document.querySelectorAll("rect.bar")].map(r =>
  ({kind: r.dataset.kind, fill: r.getAttribute("fill"), ...rect(r)}));
const chart = document.querySelector("rect.bar").closest("svg").getBoundingClientRect();
const labels = [...document.querySelectorAll("text.label")].map(t => ({text: t.textContent, ...rect(t)}));
const firstBarLeft = Math.min(...bars.map(b => b.left));
const fetch = [...document.querySelectorAll("rect.bar")].find(r => r.dataset.kind === "tool.fetch");
fetch.dispatchEvent(new MouseEvent("click", {bubbles: true}));
const panel = document.getElementById("detail");
const opened = {hidden: panel.hidden, text: panel.innerText};
const group = [...document.querySelectorAll("details.group")].find(d =>
  d.querySelector(":scope > summary .name").textContent === "agent writer");
const before = group.getBoundingClientRect().height;
group.open = false;
const hidden = {before, after: group.getBoundingClientRect().height,
  visible: [...group.querySelectorAll("rect.bar")].map(r => r.checkVisibility())};
document.getElementById("probe").textContent = JSON.stringify(
  {bars, labels, firstBarLeft, chartLeft: chart.left, opened, hidden});
</script>
"""


def _chromium() -> str:
    browser = (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    if browser is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium)")
    return browser


def _headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_timeline_in_chromium_dom_and_picture(tmp_path: Path) -> None:
    browser = _chromium()
    journal, events = recorded()
    page = timeline_html(journal, events=events, title="two agents")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = _headless(browser, tmp_path / "p1", "--dump-dom", probe.as_uri()).stdout
    found = json.loads(
        dom.split('<pre id="probe">', 1)[1].split("</pre>", 1)[0].replace("&quot;", '"')
    )
    bars = found["bars"]
    assert len(bars) == 8 and all(b["width"] > 0 for b in bars)
    # every label fits its column: it ends before the bars begin and starts inside the page
    for label in found["labels"]:
        assert label["left"] >= found["chartLeft"] - 1, label
        assert label["right"] <= found["firstBarLeft"] + 1, label
    # a click opens the effect's request and result, redacted
    assert found["opened"]["hidden"] is False
    text = found["opened"]["text"]
    assert "https://x/researcher" in text or "https://x/writer" in text
    assert "&lt;redacted&gt;" in text and SECRET not in text and '"page"' in text
    # collapsing a group hides its rows
    hidden = found["hidden"]
    assert hidden["visible"] and not any(hidden["visible"])
    assert hidden["after"] < hidden["before"] / 2

    shown = tmp_path / "page.html"
    shown.write_text(page)
    shot = tmp_path / "shot.png"
    _headless(
        browser,
        tmp_path / "p2",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--window-size=1200,900",
        f"--screenshot={shot}",
        shown.as_uri(),
    )
    pixels = colours(shot.read_bytes())
    expected = palette(["llm.chat", "tool.search", "tool.fetch"])
    for kind, colour in expected.items():
        rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        # a bar's worth of pixels in the kind's own colour
        assert pixels[rgb] >= 20, (kind, colour)
    assert pixels[(0xD6, 0x27, 0x28)] >= 10  # the failed effect's red outline


def test_a_retried_success_shows_its_attempts() -> None:
    journal = Journal()
    reply = {"content": "hi", "attempts": 2}  # a model reply that took a retry
    run_sync(effect("llm.chat", {"model": "m"}, handler=lambda r: reply), None, journal=journal)
    page = timeline_html(journal)
    assert 'data-attempts="2"' in page and "2 attempts" in page and "1 retried" in page
    (complete,) = [e for e in perfetto_trace(journal)["traceEvents"] if e["ph"] == "X"]
    assert complete["args"]["attempts"] == 2
