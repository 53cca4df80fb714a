"""The process map: the directly-follows graph as server-rendered SVG, with an own layered layout.

Layers come from :func:`rathaus.insights.process.layers` (longest distance from a start activity
once the back-edges are set aside); within a layer, activities are ordered by the mean position
of their predecessors (one barycentre sweep), which keeps the main path straight. Forward edges
run downwards; back-edges (rework) and edges within a layer run as curves on the right; a
self-loop is a small loop on the node. Edge thickness grows with the logarithm of the
frequency; every label shows frequency and median waiting time, in the analysis's time basis
(calendar or office time, named in the SVG's description and in the JSON).

The SVG works without JavaScript. ``static/process-map.js`` adds the frequency slider and the
node details; it reads the same numbers from the JSON returned by :func:`map_data`.
"""

from __future__ import annotations

import html
import itertools
import math
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from rathaus.insights.process import ProcessAnalysis

MAX_NODES = 60
NODE_W, NODE_H = 220, 46
GAP_X, GAP_Y = 36, 84
MARGIN_X, MARGIN_TOP = 40, 30
START, END = -1, -2

_ids = itertools.count(1)


@dataclass
class _Node:
    index: int
    name: str
    events: int
    layer: int
    x: float = 0.0
    y: float = 0.0


@dataclass
class _Edge:
    source: int
    target: int
    count: int
    median_s: float | None
    p90_s: float | None
    kind: str


def _short(name: str, limit: int = 30) -> str:
    """The name as drawn in a box: whole words up to ``limit`` characters, then " …". Whole
    words, so that the drawn text stays part of the node's accessible name (WCAG 2.5.3, label
    in name); a single word longer than that is drawn whole and squeezed (see ``render_map``)."""
    if len(name) <= limit:
        return name
    shown = ""
    for word in name.split():
        if len(shown) + 1 + len(word) > limit - 2:
            break
        shown = f"{shown} {word}".lstrip()
    return f"{shown} …" if shown else name


def _graph(analysis: ProcessAnalysis) -> tuple[list[_Node], list[_Edge], list[str]]:
    notes: list[str] = []
    acts = analysis.activities
    if len(acts) > MAX_NODES:
        notes.append(
            f"Die Karte zeigt die {MAX_NODES} häufigsten von {len(acts)} Aktivitäten; die "
            "Tabellen enthalten alle."
        )
        acts = acts[:MAX_NODES]
    index = {a.name: i for i, a in enumerate(acts)}
    nodes = [
        _Node(i, a.name, a.events, analysis.depth.get(a.name, 0) + 1) for i, a in enumerate(acts)
    ]
    edges = [
        _Edge(index[e.source], index[e.target], e.count, e.median_s, e.p90_s, e.kind)
        for e in analysis.edges
        if e.source in index and e.target in index
    ]
    last_layer = max((n.layer for n in nodes), default=0) + 1
    for name, count in analysis.start.items():
        if name in index:
            edges.append(_Edge(START, index[name], count, None, None, "start"))
    for name, count in analysis.end.items():
        if name in index:
            edges.append(_Edge(index[name], END, count, None, None, "ende"))
    nodes.append(_Node(START, "Start", analysis.cases, 0))
    nodes.append(_Node(END, "Ende", analysis.cases, last_layer))
    return nodes, edges, notes


def _layout(nodes: list[_Node], edges: list[_Edge]) -> tuple[float, float]:
    by_layer: dict[int, list[_Node]] = {}
    for node in nodes:
        by_layer.setdefault(node.layer, []).append(node)
    preds: dict[int, list[tuple[int, int]]] = {}
    for e in edges:
        preds.setdefault(e.target, []).append((e.source, e.count))
    widest = max(len(layer) for layer in by_layer.values())
    width = 2 * MARGIN_X + widest * NODE_W + (widest - 1) * GAP_X + 160  # room for back-edges
    slot: dict[int, float] = {}
    for layer in sorted(by_layer):
        members = by_layer[layer]

        def centre(node: _Node) -> tuple[float, int]:
            weights = [
                (slot[s], c) for s, c in preds.get(node.index, []) if s in slot and s != node.index
            ]
            total = sum(c for _, c in weights)
            mean = sum(x * c for x, c in weights) / total if total else 0.0
            return (mean, -node.events)

        members.sort(key=centre)
        row_width = len(members) * NODE_W + (len(members) - 1) * GAP_X
        left = MARGIN_X + (width - 160 - 2 * MARGIN_X - row_width) / 2
        for k, node in enumerate(members):
            node.x = left + k * (NODE_W + GAP_X)
            node.y = MARGIN_TOP + layer * (NODE_H + GAP_Y)
            slot[node.index] = node.x
    height = MARGIN_TOP * 2 + (max(by_layer) + 1) * (NODE_H + GAP_Y)
    return width, height


def _edge_path(a: _Node, b: _Node, lane: int) -> tuple[str, float, float]:
    """SVG path and label position for an edge from ``a`` to ``b``."""
    if a.index == b.index:
        x, y = a.x + NODE_W, a.y + NODE_H / 2
        path = f"M{x:.1f},{y - 10:.1f} C{x + 40:.1f},{y - 34:.1f} {x + 40:.1f},{y + 34:.1f} {x:.1f},{y + 10:.1f}"
        return path, x + 34, y + 4
    if b.layer > a.layer:
        x1, y1 = a.x + NODE_W / 2, a.y + NODE_H
        x2, y2 = b.x + NODE_W / 2, b.y
        dy = (y2 - y1) * 0.5
        path = (
            f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + dy:.1f} {x2:.1f},{y2 - dy:.1f} {x2:.1f},{y2:.1f}"
        )
        # the middle of the cubic curve
        return path, (x1 + x2) / 2, (y1 + y2) / 2 + 4
    # back-edge or same layer: a curve out to the right
    x1, y1 = a.x + NODE_W, a.y + NODE_H / 2 + 6
    x2, y2 = b.x + NODE_W, b.y + NODE_H / 2 - 6
    bend = 50 + 14 * lane + 12 * abs(a.layer - b.layer)
    xc = max(x1, x2) + bend
    path = f"M{x1:.1f},{y1:.1f} C{xc:.1f},{y1:.1f} {xc:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    return path, xc - bend * 0.25, (y1 + y2) / 2 + 4


def _edge_label(e: _Edge, fmt: Any) -> str:
    if e.median_s is None:
        return f"{e.count}"
    return f"{e.count} · {fmt(e.median_s)}"


def render_map(
    analysis: ProcessAnalysis, *, title: str = "Prozesslandkarte"
) -> tuple[Markup, list[str]]:
    """The process map as inline SVG (and notes, e.g. when activities were left out)."""
    nodes, edges, notes = _graph(analysis)
    width, height = _layout(nodes, edges)
    by_index = {n.index: n for n in nodes}
    uid = f"pm{next(_ids)}"
    top = max((e.count for e in edges), default=1)
    fmt = analysis.time_basis.fmt
    desc = (
        f"{analysis.cases} Fälle, {analysis.events} Ereignisse, {len(nodes) - 2} Aktivitäten, "
        f"{len([e for e in edges if e.source >= 0 and e.target >= 0])} Übergänge. Wartezeiten "
        f"in {analysis.time_basis.label}. Die Tabelle „Übergänge“ enthält dieselben Zahlen."
    )
    parts = [
        f'<svg class="pm-svg" id="{uid}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="group" '
        f'aria-labelledby="{uid}-t {uid}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{uid}-t">{html.escape(title)}</title>',
        f'<desc id="{uid}-d">{html.escape(desc)}</desc>',
        f'<defs><marker id="{uid}-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" class="pm-arrowhead"/></marker></defs>',
        '<g class="pm-edges">',
    ]
    lanes: dict[int, int] = {}
    for e in sorted(edges, key=lambda e: e.count):
        a, b = by_index[e.source], by_index[e.target]
        lane = 0
        if e.source != e.target and b.layer <= a.layer:
            lane = lanes.get(a.layer, 0)
            lanes[a.layer] = lane + 1
        path, lx, ly = _edge_path(a, b, lane % 6)
        stroke = 1 + 7 * math.log1p(e.count) / math.log1p(top)
        label = _edge_label(e, fmt)
        name_a = "Start" if e.source == START else a.name
        name_b = "Ende" if e.target == END else b.name
        tip = f"{name_a} → {name_b}: {e.count}-mal"
        if e.median_s is not None:
            tip += f", Wartezeit Median {fmt(e.median_s)}, P90 {fmt(e.p90_s)}"
        parts.append(
            f'<g class="pm-edge pm-kind-{html.escape(e.kind)}" data-source="{e.source}" '
            f'data-target="{e.target}" data-count="{e.count}">'
            f"<title>{html.escape(tip)}</title>"
            f'<path d="{path}" fill="none" stroke-width="{stroke:.2f}" '
            f'marker-end="url(#{uid}-arrow)"/>'
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle" class="pm-edge-label">'
            f"{html.escape(label)}</text></g>"
        )
    parts.append('</g><g class="pm-nodes">')
    top_events = max((n.events for n in nodes if n.index >= 0), default=1)
    for n in nodes:
        if n.index < 0:
            cx, cy = n.x + NODE_W / 2, n.y + NODE_H / 2
            parts.append(
                f'<g class="pm-terminal" data-node="{n.index}"><title>{n.name}</title>'
                f'<ellipse cx="{cx:.1f}" cy="{cy:.1f}" rx="46" ry="18"/>'
                f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle">{n.name}</text></g>'
            )
            continue
        heat = min(4, int(5 * n.events / (top_events + 1)))
        # WCAG 2.5.3 (label in name): the button's name starts with the text drawn in it, so a
        # speech user can say what the box shows. The count is drawn beside the button (the
        # same place, outside its group, hidden from assistive technology): it is in the name
        # as "… Ereignisse" already and would otherwise break the drawn text apart.
        label = f"{n.name}, {n.events} Ereignisse. Eingabetaste zeigt Einzelheiten."
        shown = _short(n.name)
        squeeze = (
            f' textLength="{NODE_W - 12}" lengthAdjust="spacingAndGlyphs"'
            if len(shown) > 30
            else ""
        )
        parts.append(
            f'<g class="pm-node pm-heat-{heat}" data-node="{n.index}" tabindex="0" role="button" '
            f'aria-pressed="false" aria-label="{html.escape(label)}">'
            f"<title>{html.escape(n.name)} ({n.events})</title>"
            f'<rect x="{n.x:.1f}" y="{n.y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{n.x + NODE_W / 2:.1f}" y="{n.y + 19:.1f}" text-anchor="middle" '
            f'class="pm-node-name"{squeeze}>{html.escape(shown)}</text></g>'
            f'<text x="{n.x + NODE_W / 2:.1f}" y="{n.y + 36:.1f}" text-anchor="middle" '
            f'class="pm-node-count" aria-hidden="true">{n.events}</text>'
        )
    parts.append("</g></svg>")
    return Markup("".join(parts)), notes  # noqa: S704 - every text part is escaped


def map_data(analysis: ProcessAnalysis) -> dict[str, Any]:
    """The numbers behind the map for ``process-map.js`` (details panel, slider)."""
    nodes, edges, _ = _graph(analysis)
    fmt = analysis.time_basis.fmt
    rows = {a.name: a for a in analysis.activities}
    data_nodes = []
    for n in nodes:
        if n.index < 0:
            continue
        a = rows[n.name]
        data_nodes.append(
            {
                "id": n.index,
                "name": n.name,
                "events": a.events,
                "cases": a.cases,
                "start": a.start,
                "end": a.end,
                "wait_median": fmt(a.wait_median_s),
            }
        )
    names = {n.index: n.name for n in nodes}
    data_edges = [
        {
            "source": e.source,
            "target": e.target,
            "sourceName": names[e.source],
            "targetName": names[e.target],
            "count": e.count,
            "median": fmt(e.median_s) if e.median_s is not None else "",
            "p90": fmt(e.p90_s) if e.p90_s is not None else "",
        }
        for e in edges
    ]
    counts = sorted({e.count for e in edges if e.source >= 0 and e.target >= 0})
    return {
        "nodes": data_nodes,
        "edges": data_edges,
        "counts": counts or [1],
        "timeBasis": analysis.time_basis.label,
    }
