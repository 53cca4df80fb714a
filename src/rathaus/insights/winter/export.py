"""What the Bauhof takes out of a plan: turn list, map (SVG), GeoJSON, GPX, ROAR-NET JSON.

The turn list is German and short: "Strecke 12→13 streuen", "Leerfahrt 13 → 14 → 16",
"Nachladen in Depot 179". GeoJSON and GPX need coordinates: GPX only with geographic ones
(``"crs": "EPSG:4326"`` in the network file); GeoJSON of a network without them carries the
drawing coordinates and says so in ``hinweis``.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from markupsafe import Markup

from rathaus.core.errors import RathausError
from rathaus.insights.winter.evaluate import Evaluation, Route, fmt_num
from rathaus.insights.winter.layout import Layout
from rathaus.insights.winter.network import Network

# One colour per vehicle, the palette of the chart classes .chart-s0 … .chart-s5 in rathaus.css;
# the names are written next to each swatch, so the colour is never the only key (WCAG 1.4.1).
COLOURS = ("#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#4b5563")
COLOUR_NAMES = ("blau", "ocker", "grün", "violett", "rot", "grau")
TURN_HEADERS = (
    "Fahrzeug",
    "Nr.",
    "Anweisung",
    "Von",
    "Nach",
    "Länge (m)",
    "Dauer (min)",
    "Ende nach (min)",
    "Salz an Bord",
)


class ExportError(RathausError):
    http_status = 422


@dataclass
class Turn:
    vehicle: str
    number: int
    text: str
    start: str
    end: str
    length: float
    time: float
    clock: float
    load: float

    def row(self) -> list[Any]:
        return [
            self.vehicle,
            self.number,
            self.text,
            self.start,
            self.end,
            round(self.length, 1),
            round(self.time, 3),
            round(self.clock, 3),
            round(self.load, 1),
        ]


def turn_list(evaluation: Evaluation) -> list[Turn]:
    """Instructions per vehicle: salted links one by one, deadheads merged, refills named."""
    turns: list[Turn] = []
    for vr in evaluation.vehicles:
        number = 0
        run: list[Any] = []

        def flush_run(run: list[Any] = run, vr: Any = vr) -> None:
            nonlocal number
            if not run:
                return
            number += 1
            nodes = [run[0].tail] + [s.head for s in run]
            via = (
                " → ".join(nodes)
                if len(nodes) <= 8
                else (
                    f"{' → '.join(nodes[:3])} → … → {' → '.join(nodes[-2:])} ({len(run)} Strecken)"
                )
            )
            turns.append(
                Turn(
                    vr.vehicle,
                    number,
                    f"Leerfahrt {via}",
                    run[0].tail,
                    run[-1].head,
                    sum(s.length for s in run),
                    sum(s.time for s in run),
                    run[-1].clock,
                    run[-1].load,
                )
            )
            run.clear()

        for step in vr.steps:
            if step.salted:
                flush_run()
                number += 1
                turns.append(
                    Turn(
                        vr.vehicle,
                        number,
                        f"Strecke {step.tail}→{step.head} streuen",
                        step.tail,
                        step.head,
                        step.length,
                        step.time,
                        step.clock,
                        step.load,
                    )
                )
            else:
                run.append(step)
            if step.refill > 0:
                flush_run()
                number += 1
                turns.append(
                    Turn(
                        vr.vehicle,
                        number,
                        f"Nachladen in Depot {step.head} (+{fmt_num(step.refill, 0)})",
                        step.head,
                        step.head,
                        0.0,
                        0.0,
                        step.clock,
                        step.load,
                    )
                )
        flush_run()
        if vr.steps:
            number += 1
            turns.append(
                Turn(
                    vr.vehicle,
                    number,
                    f"Tourende an Knoten {vr.ends_at} (Heimfahrt zu {vr.home} zählt nicht)",
                    vr.ends_at,
                    vr.ends_at,
                    0.0,
                    0.0,
                    vr.time,
                    vr.steps[-1].load,
                )
            )
    return turns


def turn_rows(evaluation: Evaluation) -> list[list[Any]]:
    return [t.row() for t in turn_list(evaluation)]


def solution_json(routes: list[Route]) -> str:
    """The routes in the ROAR-NET solution format with arcs."""
    return json.dumps([r.to_arcs_json() for r in routes], ensure_ascii=False, indent=1) + "\n"


def _runs(evaluation: Evaluation) -> list[tuple[str, bool, list[str], float, float]]:
    """Per vehicle the maximal runs of salted or deadhead steps as node lists."""
    runs = []
    for vr in evaluation.vehicles:
        current: list[str] = []
        kind: bool | None = None
        length = time = 0.0
        for step in vr.steps:
            if kind is None or step.salted != kind or step.tail != current[-1]:
                if current:
                    runs.append((vr.vehicle, bool(kind), current, length, time))
                current, kind, length, time = [step.tail], step.salted, 0.0, 0.0
            current.append(step.head)
            length += step.length
            time += step.time
        if current:
            runs.append((vr.vehicle, bool(kind), current, length, time))
    return runs


def geojson(network: Network, evaluation: Evaluation, layout: Layout) -> dict[str, Any]:
    """The routes as a GeoJSON FeatureCollection (see module doc for coordinates)."""
    pos = layout.positions
    features: list[dict[str, Any]] = []
    for vehicle, salted, nodes, length, time in _runs(evaluation):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [list(pos[n]) for n in nodes]},
                "properties": {
                    "fahrzeug": vehicle,
                    "art": "streuen" if salted else "leerfahrt",
                    "knoten": nodes,
                    "laenge": round(length, 3),
                    "dauer": round(time, 3),
                },
            }
        )
    for depot in network.depots:
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": list(pos[depot.label])},
                "properties": {"art": "depot", "knoten": depot.label, "nachladung": depot.refill},
            }
        )
    for v in network.vehicles:
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": list(pos[v.home])},
                "properties": {"art": "standort", "fahrzeug": v.id, "knoten": v.home},
            }
        )
    data: dict[str, Any] = {"type": "FeatureCollection", "name": network.name, "features": features}
    if not layout.geographic:
        data["hinweis"] = (
            "Keine geografischen Koordinaten: " + layout.label + ". Die Koordinaten sind "
            "Zeichenkoordinaten, kein WGS84 – für GIS nur als lokales System verwendbar."
        )
    return data


def gpx(network: Network, evaluation: Evaluation, layout: Layout) -> str:
    """One GPX track per vehicle; needs geographic coordinates (longitude/latitude)."""
    if not layout.geographic:
        raise ExportError(
            "GPX braucht geografische Koordinaten (Länge/Breite, WGS84). Dieses Netz hat "
            + (
                "nur berechnete Lagen (schematische Darstellung)"
                if layout.schematic
                else "nur Koordinaten ohne geografischen Bezug"
            )
            + '. Bitte Knotenkoordinaten in WGS84 und "crs": "EPSG:4326" in der Netzdatei '
            "angeben – oder die Abbiegeliste (CSV/XLSX) bzw. GeoJSON verwenden."
        )
    pos = layout.positions
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<gpx version="1.1" creator="Rathaus Winterdienst" '
        'xmlns="http://www.topografix.com/GPX/1/1">',
        f"<metadata><name>{escape(network.name)}</name></metadata>",
    ]
    for vr in evaluation.vehicles:
        if not vr.steps:
            continue
        parts.append(f"<trk><name>{escape('Fahrzeug ' + vr.vehicle)}</name><trkseg>")
        nodes = [vr.steps[0].tail] + [s.head for s in vr.steps]
        for n in nodes:
            lon, lat = pos[n]
            parts.append(f'<trkpt lat="{lat:.7f}" lon="{lon:.7f}"><name>{escape(n)}</name></trkpt>')
        parts.append("</trkseg></trk>")
    parts.append("</gpx>")
    return "\n".join(parts) + "\n"


def svg_map(network: Network, evaluation: Evaluation | None, layout: Layout) -> Markup:
    """The network with the routes drawn over it, as inline SVG (no library, no CDN)."""
    pos = layout.positions
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    width, height, pad = 900.0, 640.0, 24.0
    span_x = (max(xs) - min(xs)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    scale = min((width - 2 * pad) / span_x, (height - 2 * pad) / span_y)

    def xy(node: str) -> tuple[float, float]:
        x, y = pos[node]
        return pad + (x - min(xs)) * scale, height - pad - (y - min(ys)) * scale

    title = f"Winterdienst {network.name}: Streckennetz und Touren"
    desc = layout.label
    if evaluation is not None:
        desc += ". " + "; ".join(
            f"Fahrzeug {v.vehicle}: {fmt_num(v.time, 1)} min, {fmt_num(v.length / 1000, 1)} km"
            for v in evaluation.vehicles
        )
    parts = [
        f'<svg class="chart winter-map" viewBox="0 0 {width:.0f} {height:.0f}" width="100%" '
        'role="img" aria-labelledby="wm-t wm-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="wm-t">{html.escape(title)}</title>',
        f'<desc id="wm-d">{html.escape(desc)}</desc>',
        '<g stroke-linecap="round">',
    ]
    for link in network.links:
        (x1, y1), (x2, y2) = xy(link.tail), xy(link.head)
        style = (
            'stroke="#c7ccd3" stroke-width="3"'
            if link.required
            else ('stroke="#d9dde2" stroke-width="1.5" stroke-dasharray="4 3"')
        )
        parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" {style}/>')
    if evaluation is not None:
        for v_index, vr in enumerate(evaluation.vehicles):
            colour = COLOURS[v_index % len(COLOURS)]
            offset = (v_index - (len(evaluation.vehicles) - 1) / 2) * 2.0
            for step in vr.steps:
                (x1, y1), (x2, y2) = xy(step.tail), xy(step.head)
                if step.salted:
                    style = f'stroke="{colour}" stroke-width="3.2"'
                else:
                    style = (
                        f'stroke="{colour}" stroke-width="1.4" stroke-dasharray="5 4" '
                        'stroke-opacity="0.8"'
                    )
                parts.append(
                    f'<line x1="{x1 + offset:.1f}" y1="{y1 + offset:.1f}" x2="{x2 + offset:.1f}" '
                    f'y2="{y2 + offset:.1f}" {style}><title>Fahrzeug {html.escape(vr.vehicle)}: '
                    f"{html.escape(step.tail)}→{html.escape(step.head)}"
                    f"{' streuen' if step.salted else ' Leerfahrt'}</title></line>"
                )
    parts.append("</g>")
    label_all = len(network.nodes) <= 60
    special = {d.label for d in network.depots} | {v.home for v in network.vehicles}
    for node in network.nodes:
        x, y = xy(node)
        if node in {d.label for d in network.depots}:
            parts.append(
                f'<rect x="{x - 6:.1f}" y="{y - 6:.1f}" width="12" height="12" '
                'fill="#111827"><title>Depot ' + html.escape(node) + "</title></rect>"
            )
        elif node in special:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="#ffffff" '
                'stroke="#111827" stroke-width="2"><title>Standort '
                + html.escape(node)
                + "</title></circle>"
            )
        else:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="#6b7280"/>')
        if label_all or node in special:
            parts.append(
                f'<text x="{x + 7:.1f}" y="{y - 5:.1f}" class="chart-axis">'
                f"{html.escape(node)}</text>"
            )
    if layout.schematic:
        parts.append(
            f'<text x="{pad:.0f}" y="16" class="chart-axis">schematische Darstellung '
            "– nicht maßstäblich</text>"
        )
    parts.append("</svg>")
    return Markup("\n".join(parts))  # noqa: S704 - every value above is escaped
