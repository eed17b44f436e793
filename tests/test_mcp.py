"""MCP both ways, end to end against real processes: SDK servers for mce, mce's server for the SDK.

Nothing is mocked below the protocol: servers run as subprocesses over
stdio, or over loopback HTTP on a free port (readiness is polled on the
port), and talk to the official SDK's transports.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason='the MCP SDK is not installed (pip install -e ".[mcp]")')

from mcp import Client, MCPError, StdioServerParameters

from mce import EffectError, Err, Ok, par, pure, run
from mce.cli import main as cli_main
from mce.llm import ScriptedModel, calls, react, say, scripted_handler
from mce.mcp import (
    JOURNAL_META,
    Connection,
    NotConnected,
    http,
    server,
    stdio,
    workflow,
)
from mce.plan import Plan, compile
from mce.tools import ToolError, tool

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
SDK_SERVER = ROOT / "tests" / "support" / "mcp_server.py"
SERVED = "tests.support.mcp_served:served"
# The SDK starts stdio servers with a minimal environment: pass on where mce is.
ENV = {"PYTHONPATH": os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH")] if p)}


# ---------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Poll until something accepts connections on the port (or the process died)."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {seconds} s") from None
            time.sleep(0.02)  # polling interval, not synchronisation: the loop checks the port


@pytest.fixture
def start_http() -> Iterator[Any]:
    """Start a server subprocess listening on a free loopback port; stopped after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        args = [a.replace("{port}", str(port)) for a in argv]
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env={**os.environ, **ENV}, stderr=subprocess.PIPE
        )
        procs.append(proc)
        wait_for_port(port, proc)
        return f"http://127.0.0.1:{port}/mcp", proc

    yield start
    for proc in procs:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=10)
    assert proc.stderr is not None
    proc.stderr.close()


def calc(log: Path, name: str = "calc") -> Connection:
    """The SDK test server, started over stdio by the run that needs it."""
    return stdio(name, sys.executable, str(SDK_SERVER), str(log))


def calls_in(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if not line.startswith("start ")]


def kinds(journal: Path) -> list[str]:
    return [
        rec["kind"]
        for rec in map(json.loads, journal.read_text().splitlines())
        if "kind" in rec and not rec["kind"].startswith("mce.")
    ]


# ---------------------------------------------------------------- client: SDK servers used by mce


async def test_agent_uses_stdio_tools_including_is_error_and_replays_without_server(
    anyio_backend: str, tmp_path: Path
) -> None:
    log, journal = tmp_path / "calls.log", tmp_path / "agent.jsonl"
    model = ScriptedModel().queue(
        calls(("add", {"a": 2, "b": 3}), ("divide", {"a": 1, "b": 0})),
        say("2 + 3 = 5, and 1 / 0 has no answer."),
    )
    server_ = calc(log)
    agent = server_.tools().then(lambda tools: react(["Add 2 and 3; divide 1 by 0."], tools))
    async with server_:
        out = await run(
            agent, None, handlers={"llm.chat": scripted_handler(model)}, journal=journal
        )
    assert isinstance(out, Ok)
    tool_messages = {m["content"] for m in out.value.messages if m["role"] == "tool"}
    assert tool_messages == {
        '{"result": 5}',  # the server's structured content
        "ERROR: tool 'divide': failed: Error executing tool divide: division by zero",
    }
    assert sorted(calls_in(log)) == ["add 2 3", "divide 1.0 0.0"]
    assert sorted(kinds(journal)) == [  # in completion order in the file: compare as a multiset
        "llm.chat", "llm.chat", "mcp:calc", "mcp:calc/add", "mcp:calc/divide"
    ]  # fmt: skip

    # The server is gone (its connection closed with the block): the replay
    # needs neither it nor the model.
    replayed = await run(agent, None, journal=journal, mode="replay")
    assert replayed.value == out.value
    assert replayed.report is not None and replayed.report.live_calls == 0
    assert sorted(calls_in(log)) == ["add 2 3", "divide 1.0 0.0"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # no concurrency here: one backend will do
async def test_tools_keep_the_servers_schemas_and_names(anyio_backend: str, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    async with Client(
        StdioServerParameters(command=sys.executable, args=[str(SDK_SERVER), str(log)])
    ) as c:
        listed = {t.name: t for t in (await c.list_tools()).tools}
    server_ = calc(log)
    async with server_:
        out = await run(server_.tools(prefix="calc_"), None)
    tools = {t.kind: t for t in out.value}  # type: ignore[union-attr]
    assert set(tools) == {f"mcp:calc/{name}" for name in listed}
    for name, spec in listed.items():
        made = tools[f"mcp:calc/{name}"]
        assert made.parameters == spec.input_schema
        assert made.description == spec.description
    assert tools["mcp:calc/files.count"].name == "calc_files_count"  # a name a model API accepts
    assert tools["mcp:calc/add"].schema()["function"]["parameters"] == listed["add"].input_schema


async def test_is_error_is_a_tool_error_and_bad_arguments_never_reach_the_server(
    anyio_backend: str, tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    server_ = calc(log)

    def use(tools: list[Any]) -> Any:
        by_name = {t.name: t for t in tools}
        return par(
            by_name["divide"](a=1, b=0).recover(pure),
            by_name["add"].call({"a": "two", "b": None}).recover(pure),
        )

    async with server_:
        out = await run(server_.tools().then(use), None)
    divided, added = out.value  # type: ignore[union-attr]
    assert divided == ToolError("divide", "failed", "Error executing tool divide: division by zero")
    assert added.kind == "invalid_arguments"
    # Every bad field is named, checked against the server's own schema.
    assert "'two' is not of type 'integer'" in added.message
    assert "None is not of type 'integer'" in added.message
    assert calls_in(log) == ["divide 1.0 0.0"]


async def test_a_timeout_or_a_transport_failure_is_an_effect_error(
    anyio_backend: str, tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    server_ = stdio("calc", sys.executable, str(SDK_SERVER), str(log), timeout=2)
    async with server_:
        late = await run(server_.call("wait", {"seconds": 3600}), None)
        still_up = await run(server_.call("add", {"a": 1, "b": 2}), None)
        crashed = await run(server_.call("crash"), None)
        after = await run(server_.call("add", {"a": 1, "b": 2}), None)
    assert isinstance(late, Err) and isinstance(late.error, EffectError)
    assert late.error.kind == "mcp:calc/wait" and "timed out" in late.error.message
    assert still_up == Ok({"result": 3}, None)  # a timed-out call leaves the connection usable
    assert isinstance(crashed, Err) and isinstance(crashed.error, EffectError)
    assert crashed.error.kind == "mcp:calc/crash"
    assert isinstance(after, Err) and isinstance(after.error, EffectError)
    assert calls_in(log) == ["wait 3600.0", "add 1 2", "crash"]


async def test_a_server_that_cannot_be_reached_is_an_effect_error(
    anyio_backend: str, tmp_path: Path
) -> None:
    nowhere = http("web", f"http://127.0.0.1:{free_port()}/mcp", timeout=5)
    missing = stdio("fs", str(tmp_path / "no-such-server"))
    async with nowhere, missing:
        out = await run(par(nowhere.call("search", {"q": "x"}), missing.call("read", {})), None)
    assert isinstance(out, Err) and isinstance(out.error, EffectError)
    assert out.error.kind in ("mcp:web/search", "mcp:fs/read")
    assert "cannot reach MCP server" in out.error.message


async def test_the_run_opens_the_connection_when_needed_and_closes_it(
    anyio_backend: str, tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    server_ = calc(log)
    async with server_:
        assert not log.exists()  # nothing needed the server yet
        out = await run(server_.call("shout", {"text": "hi"}), None)
        assert out == Ok({"result": "HI"}, None)
        pid = int(log.read_text().split()[1])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the subprocess is gone (and reaped) once the block is left


async def test_a_live_call_outside_the_connection_is_a_bug(tmp_path: Path) -> None:
    server_ = calc(tmp_path / "calls.log")
    with pytest.raises(NotConnected, match="MCP server 'calc' is not open"):
        await run(server_.call("add", {"a": 1, "b": 2}), None)


async def test_http_tools_in_a_plan_and_in_par_replay_with_the_server_stopped(
    anyio_backend: str, tmp_path: Path, start_http: Any
) -> None:
    log, journal = tmp_path / "calls.log", tmp_path / "plan.jsonl"
    url, proc = start_http(str(SDK_SERVER), str(log), "--port", "{port}")
    plan = Plan.from_json(
        {
            "tasks": [
                {"id": "x", "tool": "add", "args": {"a": 1, "b": 2}},
                {"id": "y", "tool": "add", "args": {"a": "$x.result", "b": 10}},
                {"id": "z", "tool": "shout", "args": {"text": "done"}},
            ],
            "output": ["$y.result", "$z.result"],
        }
    )
    server_ = http("calc", url)

    def program(tools: list[Any]) -> Any:
        by_name = {t.name: t for t in tools}
        both = par(by_name["add"](a=20, b=22), by_name["shout"](text="par"))
        return par(compile(plan, tools), both)

    workflow_ = server_.tools().then(program)
    async with server_:
        out = await run(workflow_, None, journal=journal)
    assert out == Ok(([13, "DONE"], ({"result": 42}, {"result": "PAR"})), None)
    stop(proc)
    replayed = await run(workflow_, None, journal=journal, mode="replay")
    assert replayed.value == out.value
    assert replayed.report is not None and replayed.report.live_calls == 0
    assert len(calls_in(log)) == 5


# ---------------------------------------------------------------- server: mce served to the SDK client


def served_schemas() -> dict[str, Any]:
    from tests.support import mcp_served

    return {i.name: i.parameters for i in mcp_served.served}


async def check_mce_server(client: Client, journal_dir: Path) -> None:
    from tests.support import mcp_served

    listed = {t.name: t for t in (await client.list_tools()).tools}
    assert {n: t.input_schema for n, t in listed.items()} == served_schemas()
    assert listed["divide"].input_schema["required"] == ["a", "b"]  # the workflow's parameters

    divided = await client.call_tool("divide", {"a": 1, "b": 4})
    assert not divided.is_error and divided.content[0].text == "0.25"  # type: ignore[union-attr]
    failed = await client.call_tool("divide", {"a": 1, "b": 0})
    assert failed.is_error and failed.content[0].text == "cannot divide 1.0 by zero"  # type: ignore[union-attr]
    asked = await client.call_tool("ask", {"question": "What is the capital of Portugal?"})
    assert asked.structured_content == {"answer": "Lisbon.", "words": 1, "limit": 3}
    counted = await client.call_tool("word_count", {"text": "one two three"})
    assert counted.content[0].text == "3"  # type: ignore[union-attr]
    bad = await client.call_tool("ask", {"question": 7})
    assert bad.is_error
    assert bad.content[0].text == (  # type: ignore[union-attr]
        "tool 'ask': invalid_arguments at question: expected a string, got 7"
    )

    # Each call was one run, journaled to its own file, which replays.
    assert divided.meta is not None and asked.meta is not None
    journal = journal_dir / divided.meta[JOURNAL_META]
    again = await run(
        mcp_served.divide.step({"a": 1, "b": 4}), None, journal=journal, mode="replay"
    )
    assert again.value == 0.25
    journal = journal_dir / asked.meta[JOURNAL_META]
    step = mcp_served.ask.step({"question": "What is the capital of Portugal?"})
    again = await run(step, None, journal=journal, mode="replay")
    assert again.value == {"answer": "Lisbon.", "words": 1, "limit": 3}
    assert again.report is not None and again.report.live_calls == 0
    assert len(list(journal_dir.glob("*.jsonl"))) == 5


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the SDK client on trio: over HTTP below
async def test_sdk_client_calls_mce_server_over_stdio(anyio_backend: str, tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mce", "mcp", "serve", SERVED, "--journal-dir", str(tmp_path)],
        env=ENV,
        cwd=ROOT,
    )
    async with Client(params) as client:
        await check_mce_server(client, tmp_path)


@pytest.mark.parametrize("anyio_backend", ["trio"])  # mce's server code on trio: in process below
async def test_sdk_client_calls_mce_server_over_http(
    anyio_backend: str, tmp_path: Path, start_http: Any
) -> None:
    url, _proc = start_http(
        "-m", "mce", "mcp", "serve", SERVED, "--journal-dir", str(tmp_path),
        "--http", "127.0.0.1:{port}", "--name", "served",
    )  # fmt: skip
    async with Client(url) as client:
        assert client.server_info is not None and client.server_info.name == "served"
        await check_mce_server(client, tmp_path)


async def test_an_mce_agent_uses_an_mce_server(anyio_backend: str, tmp_path: Path) -> None:
    from tests.support import mcp_served

    remote = Connection("served", server(mcp_served.served, journal_dir=tmp_path))
    model = ScriptedModel().queue(
        calls(("divide", {"a": 3, "b": 0}), ("word_count", {"text": "a b"})), say("done")
    )
    async with remote:
        out = await run(
            remote.tools().then(lambda tools: react(["go"], tools)),
            None,
            handlers={"llm.chat": scripted_handler(model)},
        )
    results = [m["content"] for m in out.value.messages if m["role"] == "tool"]  # type: ignore[union-attr]
    assert results == ["ERROR: tool 'divide': failed: cannot divide 3.0 by zero", "2"]


async def test_a_protocol_error_is_an_effect_error(anyio_backend: str) -> None:
    @workflow
    def buggy(n: int) -> Any:
        return n  # not a Step: a bug in the served workflow

    remote = Connection("buggy", server([buggy]))
    async with remote:
        out = await run(remote.call("buggy", {"n": 1}), None)
    assert out.error == EffectError(  # type: ignore[union-attr]
        "mcp:buggy/buggy", "0", "Internal server error", "MCPError"
    )


async def test_unknown_tools_and_bugs_in_served_workflows(anyio_backend: str) -> None:
    @workflow
    def buggy(n: int) -> Any:
        return n  # not a Step: a bug, reported as a protocol error, not a result

    @tool
    def ok() -> str:
        "Fine."
        return "fine"

    async with Client(server([buggy, ok])) as client:
        unknown = await client.call_tool("nope", {})
        assert unknown.is_error
        assert "unknown_tool" in unknown.content[0].text  # type: ignore[union-attr]
        # The bug's traceback is logged by the server; the client gets a protocol error.
        with pytest.raises(MCPError, match="Internal server error"):
            await client.call_tool("buggy", {"n": 1})
        assert (await client.call_tool("ok", {})).content[0].text == "fine"  # type: ignore[union-attr]


def test_serve_rejects_what_it_cannot_serve(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["mcp", "serve", "tests.support.mcp_served:DivisionByZero"]) == 2
    assert "serve tools, workflows, a Registry or a list of them" in capsys.readouterr().err
    assert cli_main(["mcp", "serve", SERVED, "--http", "8000"]) == 2
    assert "--http takes HOST:PORT" in capsys.readouterr().err


def test_importing_without_the_sdk_says_how_to_install_it() -> None:
    code = "import sys; sys.modules['mcp'] = None; import mce.mcp"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **ENV}
    )
    assert done.returncode == 1
    assert 'ImportError: mce.mcp needs the official MCP SDK: pip install "mce[mcp]"' in done.stderr


def test_the_files_agent_example_runs_offline_and_replays_with_the_server_stopped(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "05_mcp_agent.py"),
            "--journal",
            str(tmp_path / "j.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = done.stdout
    assert "ERROR: tool 'fs_read_file': failed:" in out and "outside the served folder" in out
    assert "Answer: ideas/replay.md has the most words (10)." in out
    assert (
        "Replay with the server stopped: identical (0 live calls, 13 served from the journal)"
        in out
    )


def test_public_names_resolve_and_are_documented() -> None:
    import mce.mcp

    assert len(set(mce.mcp.__all__)) == len(mce.mcp.__all__)
    for export in mce.mcp.__all__:
        obj = getattr(mce.mcp, export)
        if callable(obj) and typing.get_origin(obj) is None:  # type aliases have no docstring
            assert obj.__doc__, f"mce.mcp.{export} has no docstring"


def test_a_workflows_return_type_is_not_part_of_its_schema() -> None:
    # The return type names a class only a type checker would import: the
    # parameters are still described, and the Step it returns is not.
    def count(n: int, label: str = "x") -> OnlyForTypeCheckers[int]:  # type: ignore[name-defined]  # noqa: F821
        "Count to n."
        return pure(n)

    wf = workflow(count)
    assert wf.parameters["properties"] == {
        "n": {"type": "integer"},
        "label": {"type": "string", "default": "x"},  # defaults are part of a tool's schema
    }
    assert wf.description == "Count to n."


async def test_a_handler_can_answer_an_mcp_call_instead_of_the_server() -> None:
    calc_ = stdio("calc", sys.executable, str(SDK_SERVER), "unused.log")
    out = await run(
        calc_.call("add", {"a": 1, "b": 2}),
        None,
        handlers={"mcp:calc/add": lambda r: r["a"] + r["b"]},
    )
    assert out == Ok(3, None)  # no connection needed: the server never starts


async def test_a_server_whose_tool_pages_never_end_is_an_effect_error(anyio_backend: str) -> None:
    # A hostile or broken server answers every tools/list page with the same
    # cursor: listing stops with an error instead of asking forever.
    import mcp_types
    from mcp.server import Server, ServerRequestContext

    pages: list[str | None] = []

    async def list_tools(
        _ctx: ServerRequestContext[Any], params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListToolsResult:
        pages.append(params.cursor if params else None)
        tool = mcp_types.Tool(name=f"t{len(pages)}", input_schema={"type": "object"})
        return mcp_types.ListToolsResult(tools=[tool], next_cursor="again")

    remote = Connection("loop", Server("loop", on_list_tools=list_tools))
    async with remote:
        out = await run(remote.tools(), None)
    assert isinstance(out.error, EffectError)  # type: ignore[union-attr]
    assert "cursor 'again'" in out.error.message  # type: ignore[union-attr]
    assert pages == [None, "again"]


def test_a_server_name_ending_in_a_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="an MCP server's name"):
        stdio("fs\n", "fs-server")
