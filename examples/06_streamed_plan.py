"""LLMCompiler's Task Fetching Unit: tools start while the planner is still writing the plan.

The planner is a model call that streams, `chat(..., stream=True)`,
answered by the scripted model writing an LLMCompiler-style plan (numbered
tool calls, `$1` references, a final `join()`) one 4-character token every
10 ms, as a real model would. `stream_plan` validates each line as it
completes and starts its task as soon as its inputs are ready - the first
search starts while the rest of the plan is still arriving. The model's
reply and the order of dispatches are journaled, so the run replays
exactly, reading the plan from the journal at once (no model is asked).
With an OpenAI-compatible endpoint, pass `openai_handler(...)` as the
`llm.chat` handler instead: the same code streams from it.

Run it:  python examples/06_streamed_plan.py [--journal PATH]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import anyio

from mce import run, run_sync
from mce.llm import ScriptedModel, chat, say, scripted_handler
from mce.llm.stream import listening
from mce.plan import stream_plan
from mce.tools import Tool, tool

PLAN = """Thought: I need the release years of both films, then their difference.
1. search("release year of Blade Runner")
2. search("release year of Blade Runner 2049")
3. difference($2, $1)
Thought: that answers the question.
4. join()<END_OF_PLAN>"""

YEARS = {"release year of Blade Runner": 1982, "release year of Blade Runner 2049": 2017}
starts: dict[str, float] = {}


@tool
async def search(query: str) -> int:
    """Look a fact up."""
    starts[query] = anyio.current_time()
    await anyio.sleep(0.3)
    return YEARS[query]


@tool
def difference(a: int, b: int) -> int:
    """a - b."""
    return a - b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", default=None)
    args = parser.parse_args()
    journal = Path(args.journal or Path(tempfile.mkdtemp()) / "streamed.jsonl")
    journal.unlink(missing_ok=True)
    tools: list[Tool] = [search, difference]
    model = ScriptedModel(per_token=0.010).when("Blade Runner", say(PLAN))
    planner = chat(["How many years between Blade Runner and Blade Runner 2049?"], stream=True)
    heard: list[float] = []  # when each piece of the plan arrived

    def piece_arrived(piece: str | None) -> None:
        heard.append(anyio.current_time())

    async def main_run() -> tuple[object, float]:
        t0 = anyio.current_time()
        with listening(piece_arrived):  # only to time the stream: stream_plan listens itself
            out = await run(
                stream_plan(planner, tools),
                None,
                journal=journal,
                handlers={"llm.chat": scripted_handler(model)},
            )
        return out, t0

    out, t0 = anyio.run(main_run)
    if not out.ok:  # type: ignore[attr-defined]
        raise SystemExit(f"failed: {out}")
    first = starts["release year of Blade Runner"] - t0
    whole = heard[-1] - t0 if heard else float("inf")
    print("Result:", out.value)  # type: ignore[attr-defined]
    print(
        f"First search started at {first:.2f} s; the plan finished streaming at {whole:.2f} s "
        f"(dispatch while streaming: {'yes' if first < whole else 'NO'})"
    )
    starts.clear()
    replayed = run_sync(stream_plan(planner, tools), None, journal=journal, mode="replay")
    # (no handler: a replay reads the model's reply from the journal)
    assert replayed.report is not None
    print(
        f"Replay: {'identical' if replayed == out else 'DIFFERENT'} "
        f"({replayed.report.live_calls} live calls, {len(starts)} tools run)"
    )
    if replayed != out or starts:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
