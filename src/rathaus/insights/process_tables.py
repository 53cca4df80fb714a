"""The tables of a process analysis, for CSV/XLSX export and the command line: one place that
says which columns each table has (the page shows the same numbers). Durations are hours
(``Std.``); in business hours office hours (``Arbeitsstd.``), and the throughput in office days."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rathaus.core.errors import NotFoundError
from rathaus.insights.process import ProcessAnalysis

Rows = tuple[list[str], list[list[Any]]]


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 4)


def activities(a: ProcessAnalysis) -> Rows:
    return (
        [
            "Aktivität",
            "Ereignisse",
            "Fälle",
            "Beginnt Fälle",
            "Beendet Fälle",
            "Wartezeit davor Median (Std.)",
            "Wartezeit davor Summe (Std.)",
        ],
        [
            [
                r.name,
                r.events,
                r.cases,
                r.start,
                r.end,
                _hours(r.wait_median_s),
                _hours(r.wait_total_s),
            ]
            for r in a.activities
        ],
    )


def edges(a: ProcessAnalysis) -> Rows:
    return (
        [
            "Von",
            "Nach",
            "Anzahl",
            "Fälle",
            "Wartezeit Median (Std.)",
            "Wartezeit P90 (Std.)",
            "Wartezeit Mittel (Std.)",
            "Wartezeit Summe (Std.)",
            "Anteil an Wartezeit",
            "Art",
        ],
        [
            [
                e.source,
                e.target,
                e.count,
                e.cases,
                _hours(e.median_s),
                _hours(e.p90_s),
                _hours(e.mean_s),
                _hours(e.total_s),
                round(e.share_of_wait, 4),
                e.kind,
            ]
            for e in a.edges
        ],
    )


def variants(a: ProcessAnalysis) -> Rows:
    return (
        ["Rang", "Fälle", "Anteil", "Durchlaufzeit Median (Std.)", "Schritte", "Ablauf"],
        [
            [
                v.rank,
                v.cases,
                round(v.share, 4),
                _hours(v.median_throughput_s),
                len(v.activities),
                " → ".join(v.activities),
            ]
            for v in a.variants
        ],
    )


def bottlenecks(a: ProcessAnalysis) -> Rows:
    return (
        [
            "Rang",
            "Von",
            "Nach",
            "Wartezeit Summe (Std.)",
            "Anteil an Wartezeit",
            "Wartezeit Median (Std.)",
            "Wartezeit P90 (Std.)",
            "Anzahl",
        ],
        [
            [
                i,
                e.source,
                e.target,
                _hours(e.total_s),
                round(e.share_of_wait, 4),
                _hours(e.median_s),
                _hours(e.p90_s),
                e.count,
            ]
            for i, e in enumerate(a.bottleneck_edges, start=1)
        ],
    )


def handovers(a: ProcessAnalysis) -> Rows:
    label = a.resource_label
    return (
        [
            f"Von ({label})",
            f"Nach ({label})",
            "Übergaben",
            "Wartezeit Median (Std.)",
            "Wartezeit Summe (Std.)",
        ],
        [[h.source, h.target, h.count, _hours(h.median_s), _hours(h.total_s)] for h in a.handovers],
    )


def rework(a: ProcessAnalysis) -> Rows:
    rows: list[list[Any]] = [
        ["Wiederholung", r.activity, r.cases, r.repeats, round(r.share_of_cases, 4)]
        for r in a.rework
    ]
    rows += [
        [
            "Schleife" if e.kind == "schleife" else "Rücksprung",
            f"{e.source} → {e.target}",
            e.cases,
            e.count,
            round(e.cases / a.cases, 4) if a.cases else 0.0,
        ]
        for e in a.edges
        if e.kind != "vorwärts"
    ]
    return (["Art", "Aktivität / Übergang", "Fälle", "Wiederholungen", "Anteil der Fälle"], rows)


def throughput(a: ProcessAnalysis) -> Rows:
    t, basis = a.throughput, a.time_basis
    day = basis.day_s
    unit = f"Arbeitstage à {basis.office_day}" if basis.business else "Tage"
    return (
        ["Kennzahl", f"Wert ({unit})"],
        [
            ["Median", round(t.median_s / day, 4)],
            ["P90", round(t.p90_s / day, 4)],
            ["Mittelwert", round(t.mean_s / day, 4)],
            ["Minimum", round(t.min_s / day, 4)],
            ["Maximum", round(t.max_s / day, 4)],
        ],
    )


TABLES: dict[str, tuple[str, Callable[[ProcessAnalysis], Rows]]] = {
    "aktivitaeten": ("Aktivitäten", activities),
    "uebergaenge": ("Übergänge", edges),
    "varianten": ("Varianten", variants),
    "engpaesse": ("Engpässe", bottlenecks),
    "uebergaben": ("Übergaben", handovers),
    "nacharbeit": ("Nacharbeit", rework),
    "durchlaufzeit": ("Durchlaufzeit", throughput),
}


def table(analysis: ProcessAnalysis, name: str) -> Rows:
    if name not in TABLES:
        raise NotFoundError(
            f"Die Tabelle „{name}“ gibt es nicht. Erlaubt sind: {', '.join(TABLES)}."
        )
    headers, rows = TABLES[name][1](analysis)
    if analysis.time_basis.business:
        headers = [h.replace("(Std.)", "(Arbeitsstd.)") for h in headers]
    return headers, rows
