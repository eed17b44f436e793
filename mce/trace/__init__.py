"""Seeing a run: trace events while it runs; a timeline page and a Perfetto trace from its journal.

`run(..., trace=callback)` calls `callback(TraceEvent)` when every effect
starts and ends and when every `.named` step starts and ends (with its
position and branch). `timeline_html(journal)` draws a recorded run as a
self-contained HTML page: one row per effect labelled with its tool, model
or kind, rows grouped by branch (a sub-agent, a parallel lane) in
collapsible sections, a distinct colour per kind, errors and retries
marked, and the (redacted) request and result of an effect shown on click.
Given the run's trace events too, groups and rows carry the names of the
`.named` steps they ran in. `perfetto_trace(journal)` writes the same run as
Chrome/Perfetto trace JSON, for runs too large for a page. Nothing is
fetched from anywhere.

>>> events = []
>>> from mce import effect, run_sync
>>> _ = run_sync(effect("k", 1, handler=lambda r: r).named("one"), None, trace=events.append)
>>> [e.event for e in events]
['step.start', 'effect.start', 'effect.end', 'step.end']
"""

from mce.events import TraceEvent as TraceEvent  # re-exported: it lived here
from mce.trace._perfetto import perfetto_trace as perfetto_trace
from mce.trace._timeline import palette as palette
from mce.trace._timeline import timeline_html as timeline_html

__all__ = ["TraceEvent", "palette", "perfetto_trace", "timeline_html"]
