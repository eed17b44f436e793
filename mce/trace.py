"""Seeing a run: trace events while it runs, and a timeline page from its journal.

`run(..., trace=callback)` calls `callback(TraceEvent)` when every effect
starts and ends and when every `.named` step starts and ends (with its
position and branch). `timeline_html(journal)` draws a recorded run as a
self-contained HTML page - an inline SVG Gantt chart, one row per effect,
time across, colour by effect kind, errors marked, details on hover - with
the run's totals. No script or style is fetched from anywhere.

>>> events = []
>>> from mce import effect, run_sync
>>> _ = run_sync(effect("k", 1, handler=lambda r: r).named("one"), None, trace=events.append)
>>> [e.event for e in events]
['step.start', 'effect.start', 'effect.end', 'step.end']
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Sequence
from typing import Any

from mce._runtime.replay import DECISIONS
from mce.effects import redact
from mce.events import TraceEvent as TraceEvent  # re-exported: it lived here
from mce.journal import Journal, open_journal

_PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac"]


def _colour(kind: str) -> str:
    return _PALETTE[int(hashlib.sha1(kind.encode()).hexdigest(), 16) % len(_PALETTE)]


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(redact(value), default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def timeline_html(journal: Journal | str | Any, *, title: str = "mce run") -> str:
    """A self-contained HTML timeline (inline SVG) of a journaled run.

    >>> j = Journal()
    >>> from mce import effect, par, run_sync
    >>> _ = run_sync(par(effect("a", 1, handler=str), effect("b", 2, handler=str)), None, journal=j)
    >>> page = timeline_html(j)
    >>> page.count('class="bar') == 2 and "<script src" not in page
    True
    """
    header, entries = open_journal(journal).load()
    effects = [e for e in entries if e["kind"] not in DECISIONS and "t0" in e and "t1" in e]
    effects.sort(key=lambda e: (e["t0"], e["pos"]))
    return _render(effects, header or {}, title)


def _render(effects: Sequence[dict[str, Any]], header: dict[str, Any], title: str) -> str:
    width, left, row_h, top = 1100, 230, 22, 40
    if effects:
        t_start = min(e["t0"] for e in effects)
        t_end = max(e["t1"] for e in effects)
    else:
        t_start = t_end = 0.0
    span = max(t_end - t_start, 1e-6)
    scale = (width - left - 20) / span
    height = top + row_h * len(effects) + 30
    effect_time = sum(e["t1"] - e["t0"] for e in effects)
    errors = sum(1 for e in effects if "err" in e)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
    ]
    ticks = 8
    for i in range(ticks + 1):
        x = left + (width - left - 20) * i / ticks
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 10}" x2="{x:.1f}" y2="{height - 25}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{top - 14}" text-anchor="middle" fill="#666">{span * i / ticks * 1000:.0f} ms</text>'
        )
    for row, e in enumerate(effects):
        y = top + row * row_h
        x = left + (e["t0"] - t_start) * scale
        w = max((e["t1"] - e["t0"]) * scale, 2.0)
        failed = "err" in e
        kind = str(e["kind"])
        detail = (
            f"{kind} at {e['pos']} (branch {e.get('branch') or 'top'})\n"
            f"{(e['t1'] - e['t0']) * 1000:.1f} ms, from {(e['t0'] - t_start) * 1000:.1f} ms\n"
            f"request: {_short(e.get('req'))}\n"
            + (f"error: {_short(e['err'])}" if failed else f"result: {_short(e.get('ok'))}")
        )
        label = f"{kind} {e['pos']}"
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" fill="#333">{html.escape(label[:34])}</text>'
        )
        parts.append(
            f'<rect class="bar{" error" if failed else ""}" data-pos="{html.escape(e["pos"])}" '
            f'data-kind="{html.escape(kind)}" x="{x:.2f}" y="{y + 3}" width="{w:.2f}" height="{row_h - 6}" '
            f'rx="3" fill="{_colour(kind)}" stroke="{"#d62728" if failed else "none"}" '
            f'stroke-width="{2 if failed else 0}"><title>{html.escape(detail)}</title></rect>'
        )
        if failed:
            parts.append(f'<text x="{x + w + 4:.2f}" y="{y + 15}" fill="#d62728">error</text>')
    parts.append("</svg>")
    kinds = sorted({str(e["kind"]) for e in effects})
    legend = "".join(
        f'<span class="key"><span class="swatch" style="background:{_colour(k)}"></span>{html.escape(k)}</span>'
        for k in kinds
    )
    wall = span if effects else 0.0
    totals = (
        f"{len(effects)} effects, {errors} failed; wall {wall * 1000:.1f} ms; "
        f"effect time {effect_time * 1000:.1f} ms"
        + (f" ({effect_time / wall:.1f}x overlap)" if wall > 0 else "")
        + f"; run {html.escape(str(header.get('run', '?')))}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:16px;color:#222}"
        ".key{margin-right:14px;white-space:nowrap}"
        ".swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle;border-radius:2px}"
        "rect.bar:hover{opacity:.75}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p id="totals">{totals}</p><p>{legend}</p>'
        + "".join(parts)
        + "</body></html>\n"
    )


__all__ = [
    "TraceEvent",
    "timeline_html",
]
