"""The interpreter's private runtime, one job per module.

* `nodes` - the closed set of node tags;
* `trampoline` - `advance`, the loop that runs everything needing no await;
* `driver` - the async driver that awaits what the trampoline stopped on;
* `parallel` - a parallel block as data, and running its branches;
* `runners` (with `runner_asyncio`, `runner_trio`) - starting, cancelling
  and awaiting branch tasks on each async library;
* `scopes` - timeouts, budgets and shared steps;
* `subrun` - a workflow run inside one effect of a parent run (a
  `remote_agent` sub-agent): its allowance from the parent's budgets, its
  trace under the parent's;
* `context` - what a run and a sequential context share;
* `diagnostics` - the notes that say where a bug was raised;
* `effects_port` - the interface the interpreter uses for effects, built on
  `replay` (journal lookup), `writer` (batched, durable journal writes, with
  `write_thread`, the run's writer thread) and `report` (a run's totals);
* `asking` - the answers given to a run and the questions it waits for;
* `entry` - `run` and `run_sync`.

Nothing here is public API: `mce.run`, `mce.run_sync` and the types in
their signatures are exported from public modules.
"""
