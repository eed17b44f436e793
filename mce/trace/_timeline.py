"""The HTML timeline: a recorded run as one self-contained page, rows grouped by branch."""

from __future__ import annotations

import html
import json
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from attrs import frozen

from mce.events import TraceEvent
from mce.journal import Journal
from mce.trace._rows import _parent_branch, _Row, _rows, _short

# Distinct, colour-blind-friendly hues (Tableau 10 without its red, which marks errors);
# kinds beyond these get evenly spaced hues.
_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#edc948",
    "#76b7b2",
    "#9c755f",
    "#ff9da7",
    "#bab0ac",
    "#17becf",
)
_ERROR = "#d62728"
_CHAR_PX = 7.0  # the width of an average character of the 12px label font


def _fit(text: str, columns: int) -> str:
    """`text` cut to `columns` (a wide East Asian character counts two), with an ellipsis."""
    out: list[str] = []
    used = 0
    for char in text:
        width = 2 if unicodedata.east_asian_width(char) in "WF" else 1
        if used + width > columns:
            return "".join(out[:-1] if used + 1 > columns else out) + "…"
        out.append(char)
        used += width
    return text


def palette(kinds: Iterable[str]) -> dict[str, str]:
    """A distinct colour for each kind (in sorted order, so a run always gets the same ones).

    >>> colours = palette(["tool.search", "llm.chat", "tool.fetch"])
    >>> len(set(colours.values()))
    3
    """
    ordered = sorted(set(kinds))
    out: dict[str, str] = {}
    for i, kind in enumerate(ordered):
        if i < len(_PALETTE):
            out[kind] = _PALETTE[i]
        else:
            hue = (i - len(_PALETTE)) * 137.508 % 360
            out[kind] = f"hsl({hue:.0f},55%,55%)"
    return out


def timeline_html(
    journal: Journal | str | Any,
    *,
    title: str = "mce run",
    events: Iterable[TraceEvent] | None = None,
) -> str:
    """A self-contained HTML timeline of a journaled run (see the module docstring).

    `events`, the run's trace events (as collected by `trace=list.append`),
    add the names of the `.named` steps; without them rows and groups are
    named by tool, model and branch.

    >>> j = Journal()
    >>> from mce import effect, par, run_sync
    >>> _ = run_sync(par(effect("a", 1, handler=str), effect("b", 2, handler=str)), None, journal=j)
    >>> page = timeline_html(j)
    >>> page.count('class="bar') == 2 and "<script src" not in page
    True
    """
    header, rows, of_branch = _rows(journal, events)
    return _Page(rows, header, of_branch, title).render()


@frozen
class _Group:
    key: str
    label: str
    depth: int
    rows: tuple[_Row, ...]
    children: tuple[_Group, ...]

    def size(self) -> int:
        return len(self.rows) + sum(c.size() for c in self.children)


def _branch_order(branch: str) -> list[tuple[int, int | str]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in branch.split("/")]


_SHARED = "s:"  # share keys: tasks of a DAG, reached from anywhere


def _groups(rows: Sequence[_Row], of_branch: dict[str, str]) -> _Group:
    """Rows grouped by branch into a tree: each branch inside the longest branch it extends;
    shared tasks together in a section of their own."""
    keys = {r.branch for r in rows} | {k for k in of_branch if k}
    keys.discard("")
    shared = {k for k in keys if k.startswith(_SHARED)}
    parent = {k: _SHARED if k in shared else _parent_branch(k, keys - shared) for k in keys}
    if shared:
        keys.add(_SHARED)
        parent[_SHARED] = ""
    children: dict[str, list[str]] = {}
    for key in sorted(keys, key=_branch_order):
        children.setdefault(parent[key], []).append(key)
    by_branch: dict[str, list[_Row]] = {}
    for row in rows:
        by_branch.setdefault(row.branch, []).append(row)
    # An unnamed branch that is one tool call and nothing else (a call of a fan-out,
    # a shared task) is shown in its parent's section, where its overlap with its
    # siblings shows; a branch that talks to a model stays a section (a sub-agent).
    for key in sorted(keys, key=_branch_order, reverse=True):
        only = by_branch.get(key, ())
        if (
            key not in of_branch
            and key != _SHARED
            and not children.get(key)
            and len(only) == 1
            and only[0].kind.startswith("tool.")
        ):
            up = parent[key]
            by_branch.setdefault(up, []).extend(by_branch.pop(key))
            children[up].remove(key)
    for group_rows in by_branch.values():
        group_rows.sort(key=lambda r: (r.t0, r.index))

    def build(key: str, depth: int) -> _Group:
        # the top is the run, whatever its first named step; a branch is named
        # after the outermost step it ran (a sub-agent's name)
        if not key:
            label = "run"
        else:
            label = of_branch.get(key) or ("shared tasks" if key == _SHARED else f"branch {key}")
        return _Group(
            key,
            label,
            depth,
            tuple(by_branch.get(key, ())),
            tuple(build(k, depth + 1) for k in children.get(key, ())),
        )

    return build("", 0)


class _Page:
    """Lays out and writes the timeline page."""

    def __init__(
        self, rows: Sequence[_Row], header: dict[str, Any], of_branch: dict[str, str], title: str
    ) -> None:
        self.rows = rows
        self.header = header
        self.title = title
        self.tree = _groups(rows, of_branch)
        self.colours = palette(r.kind for r in rows)
        self.t_start = min((r.t0 for r in rows), default=0.0)
        t_end = max((r.t1 for r in rows), default=0.0)
        self.span = max(t_end - self.t_start, 1e-6)
        longest = max((len(self.label(r)) for r in rows), default=10)
        # the label column fits the labels, within reason; longer ones are cut with an ellipsis
        self.left = int(min(max(longest * _CHAR_PX + 24, 160), 380))
        self.width = 1100
        self.row_h = 22
        self.lanes = 0  # svg sections drawn so far (each gets its own clip path id)

    def label(self, row: _Row) -> str:
        text = row.name
        if row.attempts > 1:
            text += f" ×{row.attempts}"
        return text

    def x(self, t: float) -> float:
        return self.left + (t - self.t_start) * (self.width - self.left - 90) / self.span

    def ticks(self, height: int, labels: bool) -> list[str]:
        out = []
        for i in range(9):
            x = self.left + (self.width - self.left - 90) * i / 8
            out.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}" stroke="#e6e6e6"/>')
            if labels:
                ms = self.span * i / 8 * 1000
                out.append(
                    f'<text x="{x:.1f}" y="14" text-anchor="middle" fill="#666">{ms:.0f} ms</text>'
                )
        return out

    def bars(self, rows: Sequence[_Row], section: str) -> str:
        height = self.row_h * len(rows)
        parts = [
            f'<svg class="lane" xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
            f'height="{height}" viewBox="0 0 {self.width} {height}" font-size="12">',
            *self.ticks(height, labels=False),
        ]
        room = int((self.left - 16) / _CHAR_PX)
        # labels are cut to fit by an estimate of their width; the clip makes sure a
        # label with unusually wide glyphs still never runs into the bars
        self.lanes += 1
        clip = f"labels{self.lanes}"
        parts.append(
            f'<clipPath id="{clip}"><rect x="0" y="0" width="{self.left - 4}" '
            f'height="{height}"/></clipPath>'
        )
        for n, row in enumerate(rows):
            y = n * self.row_h
            x = self.x(row.t0)
            w = max(self.x(row.t1) - x, 2.0)
            # the step a row ran in, unless it is the section's own name
            inside = row.step and row.step != section
            full = self.label(row) + (f" · in {row.step}" if inside else "")
            shown = _fit(full, room)
            detail = (
                f"{row.kind} at {row.pos} (branch {row.branch or 'top'})"
                + (f", in step {row.step}" if row.step else "")
                + f"\n{(row.t1 - row.t0) * 1000:.1f} ms, from {(row.t0 - self.t_start) * 1000:.1f} ms"
                + (f"\n{row.attempts} attempts" if row.attempts > 1 else "")
                + f"\nrequest: {_short(row.request)}\n"
                + ("error: " if row.failed else "result: ")
                + _short(row.result)
                + "\n(click for the whole request and result)"
            )
            parts.append(
                f'<text class="label" x="{self.left - 8}" y="{y + 15}" text-anchor="end" '
                f'fill="#333" clip-path="url(#{clip})"><title>{html.escape(full)}</title>{html.escape(shown)}</text>'
            )
            parts.append(
                f'<rect class="bar{" error" if row.failed else ""}" data-i="{row.index}" '
                f'data-pos="{html.escape(row.pos)}" data-kind="{html.escape(row.kind)}" '
                f'data-attempts="{row.attempts}" x="{x:.2f}" y="{y + 3}" width="{w:.2f}" '
                f'height="{self.row_h - 6}" rx="3" fill="{self.colours[row.kind]}" '
                f'stroke="{_ERROR if row.failed else "none"}" stroke-width="{2 if row.failed else 0}">'
                f"<title>{html.escape(detail)}</title></rect>"
            )
            notes = []
            if row.attempts > 1:
                notes.append(f"{row.attempts} attempts")
            if row.failed:
                notes.append("error")
            if notes:
                parts.append(
                    f'<text x="{x + w + 4:.2f}" y="{y + 15}" '
                    f'fill="{_ERROR if row.failed else "#555"}">{", ".join(notes)}</text>'
                )
        parts.append("</svg>")
        return "".join(parts)

    def group(self, group: _Group) -> str:
        errors = sum(r.failed for r in _all_rows(group))
        summary = (
            f'<summary style="padding-left:{8 + 16 * group.depth}px">'
            f'<span class="name">{html.escape(group.label)}</span> '
            f'<span class="meta">{group.size()} effect{"s" if group.size() != 1 else ""}'
            + (f", {errors} failed" if errors else "")
            + (
                f" · branch {html.escape(group.key)}"
                if group.key and group.key != _SHARED and group.label != f"branch {group.key}"
                else ""
            )
            + "</span></summary>"
        )
        body = (self.bars(group.rows, group.label) if group.rows else "") + "".join(
            self.group(c) for c in group.children
        )
        return f'<details class="group" data-branch="{html.escape(group.key)}" open>{summary}{body}</details>'

    def render(self) -> str:
        rows = self.rows
        effect_time = sum(r.t1 - r.t0 for r in rows)
        errors = sum(r.failed for r in rows)
        retried = sum(r.attempts > 1 for r in rows)
        wall = self.span if rows else 0.0
        totals = (
            f"{len(rows)} effects, {errors} failed"
            + (f", {retried} retried" if retried else "")
            + f"; wall {wall * 1000:.1f} ms; effect time {effect_time * 1000:.1f} ms"
            + (f" ({effect_time / wall:.1f}x overlap)" if wall > 0 else "")
            + f"; run {html.escape(str(self.header.get('run', '?')))}"
        )
        legend = "".join(
            f'<span class="key"><span class="swatch" style="background:{c}"></span>'
            f"{html.escape(k)}</span>"
            for k, c in self.colours.items()
        )
        axis = (
            f'<svg class="axis" xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="20" '
            f'font-size="11">' + "".join(self.ticks(20, labels=True)) + "</svg>"
        )
        data = json.dumps(
            [
                {
                    "title": f"{r.name} ({r.kind}) at {r.pos}",
                    "request": r.request,
                    "outcome": "error" if r.failed else "result",
                    "result": r.result,
                    "attempts": r.attempts,
                }
                for r in rows
            ],
            default=str,
            ensure_ascii=False,
        ).replace("</", "<\\/")
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f'<h1>{html.escape(self.title)}</h1><p id="totals">{totals}</p>'
            f'<p class="legend">{legend}</p><div id="chart">{axis}{self.group(self.tree)}</div>'
            '<section id="detail" hidden><h2 id="detail-title"></h2>'
            '<h3>request</h3><pre id="detail-request"></pre>'
            '<h3 id="detail-outcome">result</h3><pre id="detail-result"></pre></section>'
            f'<script type="application/json" id="mce-effects">{data}</script>'
            f"<script>{_SCRIPT}</script></body></html>\n"
        )


def _all_rows(group: _Group) -> list[_Row]:
    return [*group.rows, *(r for c in group.children for r in _all_rows(c))]


_CSS = (
    "body{font-family:sans-serif;margin:16px;color:#222}"
    ".key{margin-right:14px;white-space:nowrap}"
    ".swatch{display:inline-block;width:12px;height:12px;margin-right:4px;"
    "vertical-align:middle;border-radius:2px}"
    "svg{display:block;font-family:sans-serif}"
    "details.group{margin:0;border-top:1px solid #eee}"
    "summary{cursor:pointer;padding:3px 0;font-size:13px}"
    "summary .name{font-weight:600}summary .meta{color:#777}"
    "rect.bar{cursor:pointer}rect.bar:hover{opacity:.75}rect.bar.selected{stroke:#000;stroke-width:2}"
    "#detail{position:sticky;bottom:0;background:#fafafa;border:1px solid #ccc;"
    "padding:8px 12px;max-height:45vh;overflow:auto}"
    "#detail pre{white-space:pre-wrap;word-break:break-word;margin:4px 0}"
    "#detail h2{font-size:15px;margin:0}#detail h3{font-size:13px;margin:6px 0 0}"
)

_SCRIPT = (
    "(()=>{const data=JSON.parse(document.getElementById('mce-effects').textContent);"
    "const panel=document.getElementById('detail');"
    "const show=(bar)=>{const d=data[+bar.dataset.i];"
    "document.querySelectorAll('rect.bar.selected').forEach(b=>b.classList.remove('selected'));"
    "bar.classList.add('selected');"
    "document.getElementById('detail-title').textContent=d.title+"
    "(d.attempts>1?' - '+d.attempts+' attempts':'');"
    "document.getElementById('detail-request').textContent=JSON.stringify(d.request,null,2);"
    "document.getElementById('detail-outcome').textContent=d.outcome;"
    "document.getElementById('detail-result').textContent=JSON.stringify(d.result,null,2);"
    "panel.hidden=false;};"
    "document.querySelectorAll('rect.bar').forEach(b=>b.addEventListener('click',()=>show(b)));"
    "})();"
)
