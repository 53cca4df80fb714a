"""Charts as inline SVG, drawn on the server: no chart library, no CDN, readable without
JavaScript.

Every chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` summarising it; pages
show the same numbers as a table next to it (screen readers and export). Colours come from the
CSS classes ``chart-s0`` … ``chart-s5`` in ``rathaus.css`` (contrast ≥ 3:1 on white).
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

_ids = itertools.count(1)


@dataclass(frozen=True)
class Line:
    label: str
    values: Sequence[float | None]
    dashed: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded interval, e.g. an 80 % prediction interval."""

    label: str
    lower: Sequence[float | None]
    upper: Sequence[float | None]


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", ".")
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}".replace(".", ",")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``low``…``high``."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value <= high + step * 0.001:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _open(title: str, desc: str, width: int, height: int) -> tuple[str, list[str]]:
    uid = f"chart{next(_ids)}"
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="{uid}-t {uid}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{uid}-t">{html.escape(title)}</title>',
        f'<desc id="{uid}-d">{html.escape(desc)}</desc>',
    ]
    return uid, parts


def line_chart(
    x_labels: Sequence[str],
    lines: Sequence[Line],
    *,
    title: str,
    bands: Sequence[Band] = (),
    y_label: str = "",
    marker_index: int | None = None,
    marker_label: str = "",
    width: int = 760,
    height: int = 280,
) -> Markup:
    """Lines over shared x positions (days, weeks), optional shaded bands and a vertical marker
    (e.g. where the forecast starts). ``None`` values leave a gap."""
    n = len(x_labels)
    values = [v for line in lines for v in line.values if v is not None]
    values += [v for band in bands for v in (*band.lower, *band.upper) if v is not None]
    desc = f"{len(lines)} Linie(n) über {n} Zeitpunkte"
    if values:
        desc += f", Werte von {_fmt(min(values))} bis {_fmt(max(values))}"
    _, parts = _open(title, desc + ".", width, height)
    if n == 0 or not values:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">Keine Daten</text>'
        )
        return Markup("".join(parts) + "</svg>")  # noqa: S704 - every text part is escaped
    left, right, top, bottom = 56, 16, 26, 48
    ticks = nice_ticks(min(0.0, min(values)), max(values))
    y0, y1 = ticks[0], ticks[-1]

    def x(i: int) -> float:
        return left + (width - left - right) * (i / max(n - 1, 1))

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - y0) / (y1 - y0 or 1))

    for tick in ticks:
        parts.append(
            f'<line class="chart-grid" x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}"/><text class="chart-axis" x="{left - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{_fmt(tick)}</text>'
        )
    step = max(1, math.ceil(n / 8))
    for i in range(0, n, step):
        anchor = "end" if i == n - 1 and n > 1 else ("start" if i == 0 else "middle")
        parts.append(
            f'<text class="chart-axis" x="{x(i):.1f}" y="{height - bottom + 16}" '
            f'text-anchor="{anchor}">{html.escape(x_labels[i])}</text>'
        )
    if y_label:
        parts.append(
            f'<text class="chart-axis" x="8" y="{top - 12}" text-anchor="start">'
            f"{html.escape(y_label)}</text>"
        )
    for index, band in enumerate(bands):
        upper = [(x(i), y(v)) for i, v in enumerate(band.upper) if v is not None]
        lower = [(x(i), y(v)) for i, v in enumerate(band.lower) if v is not None]
        if upper and lower:
            points = " ".join(f"{a:.1f},{b:.1f}" for a, b in (*upper, *reversed(lower)))
            parts.append(
                f'<polygon class="chart-band chart-band{index}" points="{points}">'
                f"<title>{html.escape(band.label)}</title></polygon>"
            )
    for index, line in enumerate(lines):
        segments: list[list[str]] = [[]]
        for i, v in enumerate(line.values):
            if v is None:
                segments.append([])
            else:
                segments[-1].append(f"{x(i):.1f},{y(v):.1f}")
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        for segment in segments:
            if len(segment) > 1:
                parts.append(
                    f'<polyline class="chart-line chart-s{index % 6}" fill="none"{dash} '
                    f'points="{" ".join(segment)}"><title>{html.escape(line.label)}</title>'
                    "</polyline>"
                )
            elif segment:
                cx, cy = segment[0].split(",")
                parts.append(
                    f'<circle class="chart-dot chart-s{index % 6}" cx="{cx}" cy="{cy}" r="2.5"/>'
                )
    if marker_index is not None and 0 <= marker_index < n:
        mx = x(marker_index)
        parts.append(
            f'<line class="chart-marker" x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" '
            f'y2="{height - bottom}"/><text class="chart-axis" x="{mx + 4:.1f}" y="{top + 10}">'
            f"{html.escape(marker_label)}</text>"
        )
    legend_x = left
    for index, line in enumerate(lines):
        parts.append(
            f'<rect class="chart-key chart-s{index % 6}" x="{legend_x}" y="{height - 18}" '
            f'width="14" height="4"/><text class="chart-axis" x="{legend_x + 18}" '
            f'y="{height - 13}">{html.escape(line.label)}</text>'
        )
        legend_x += 26 + 7 * len(line.label)
    for index, band in enumerate(bands):
        parts.append(
            f'<rect class="chart-band chart-band{index}" x="{legend_x}" y="{height - 22}" '
            f'width="14" height="10"/><text class="chart-axis" x="{legend_x + 18}" '
            f'y="{height - 13}">{html.escape(band.label)}</text>'
        )
        legend_x += 26 + 7 * len(band.label)
    return Markup("".join(parts) + "</svg>")  # noqa: S704 - every text part is escaped


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    unit: str = "",
    width: int = 760,
    bar_height: int = 22,
) -> Markup:
    """Horizontal bars, one per label (long German names stay readable)."""
    n = len(labels)
    label_width = min(260, 12 + 7 * max((len(label) for label in labels), default=0))
    height = max(40, n * (bar_height + 6) + 12)
    desc = ", ".join(f"{label}: {_fmt(v)}{unit}" for label, v in zip(labels, values, strict=False))
    _, parts = _open(title, desc[:1000] or "Keine Daten.", width, height)
    if not n:
        parts.append(f'<text x="{width / 2}" y="24" text-anchor="middle">Keine Daten</text>')
        return Markup("".join(parts) + "</svg>")  # noqa: S704 - every text part is escaped
    top_value = max(max(values), 0) or 1
    span = width - label_width - 80
    for i, (label, value) in enumerate(zip(labels, values, strict=False)):
        y = 6 + i * (bar_height + 6)
        w = max(0.0, span * value / top_value)
        shown = label if len(label) <= 36 else label[:35] + "…"
        parts.append(
            f'<text class="chart-axis" x="{label_width - 6}" y="{y + bar_height * 0.7:.1f}" '
            f'text-anchor="end">{html.escape(shown)}<title>{html.escape(label)}</title></text>'
            f'<rect class="chart-bar chart-s0" x="{label_width}" y="{y}" width="{w:.1f}" '
            f'height="{bar_height}"/><text class="chart-axis" x="{label_width + w + 6:.1f}" '
            f'y="{y + bar_height * 0.7:.1f}">{_fmt(value)}{html.escape(unit)}</text>'
        )
    return Markup("".join(parts) + "</svg>")  # noqa: S704 - every text part is escaped


def histogram_bins(values: Sequence[float], bins: int = 12) -> tuple[list[str], list[int]]:
    """Equal-width bins over ``values``: labels ``a–b`` and counts, for :func:`bar_chart`."""
    if not values:
        return [], []
    low, high = min(values), max(values)
    if high == low:
        return [_fmt(low)], [len(values)]
    width = (high - low) / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - low) / width))] += 1
    labels = [f"{_fmt(low + i * width)}–{_fmt(low + (i + 1) * width)}" for i in range(bins)]
    return labels, counts
