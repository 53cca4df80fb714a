"""``rathaus eval forecast``: the volume forecast measured on Boston's 311 requests of 2015.

Protocol (docs/forecast.md): each department's daily request count; history 1 Jan – 30 Sep
2015, test 1 Oct – 31 Dec 2015 (92 days). Holidays: US federal and Massachusetts.

* **primary – rolling weekly origin:** from 1 Oct every 7 days the model is fitted on all days
  before the origin (it never sees a test day before that day has passed) and forecasts the
  next 7 days. The seasonal-naive forecast (same weekday a week before) also uses the value
  of at most 7 days before, so both have the same information. Settings of the model were
  fixed beforehand; nothing is tuned per department or on the test period.
* **secondary – one origin:** fitted once on 1 Jan – 30 Sep, all 92 test days forecast ahead.

``mase`` per department is the model's mean absolute error on the test days divided by that
of the seasonal-naive forecast (below 1: better than the naive forecast); the reported figure
is the mean over departments. ``coverage_80`` is the share of all department-test-days whose
actual count lies inside the 80 % interval. Departments with fewer than one request per day
in the history are left out (stated in the output). A calendar day without a single request
in the whole file is a gap in the export (2015-07-22) and counts as missing, not as zero.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rathaus.core.errors import RathausError
from rathaus.insights.forecast import (
    DailySeries,
    HolidayLookup,
    ModelConfig,
    forecast,
    holiday_calendar,
)

TRAIN_START = dt.date(2015, 1, 1)
TEST_START = dt.date(2015, 10, 1)
TEST_END = dt.date(2015, 12, 31)
MIN_MEAN_PER_DAY = 1.0


def read_requests(
    path: Path, *, date_column: str = "OPEN_DT", group_column: str = "Department"
) -> dict[str, dict[dt.date, int]]:
    """Requests per group and day from a (gzipped) CSV with one row per request."""
    if not path.is_file():
        raise RathausError(f"Die Datei {path} gibt es nicht. Bitte den Pfad prüfen.")
    opener = gzip.open if path.suffix == ".gz" else open
    counts: dict[str, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    with opener(path, "rb") as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        missing = {date_column, group_column} - set(reader.fieldnames or ())
        if missing:
            raise RathausError(f"Pflichtspalte fehlt in {path.name}: {', '.join(sorted(missing))}.")
        for line, row in enumerate(reader, start=2):
            text = (row[date_column] or "").strip()
            try:
                day = dt.date.fromisoformat(text[:10])
            except ValueError as exc:
                raise RathausError(
                    f"Zeile {line}, Feld „{date_column}“: „{text[:40]}“ ist kein Datum."
                ) from exc
            counts[(row[group_column] or "").strip() or "(ohne)"][day] += 1
    return counts


@dataclass(frozen=True)
class Split:
    """History from ``train_start``, test days ``test_start`` … ``test_end``."""

    train_start: dt.date
    test_start: dt.date
    test_end: dt.date


TEST = Split(TRAIN_START, TEST_START, TEST_END)
# Model settings were chosen on this split (history Jan–Jun, test Jul–Sep), never on Oct–Dec.
VALIDATION = Split(TRAIN_START, dt.date(2015, 7, 1), dt.date(2015, 9, 30))


def _series(
    name: str, per_day: dict[dt.date, int], gaps: set[dt.date], split: Split
) -> DailySeries:
    n = (split.test_end - split.train_start).days + 1
    values = np.zeros(n)
    for day, count in per_day.items():
        if split.train_start <= day <= split.test_end:
            values[(day - split.train_start).days] = count
    for day in gaps:
        if split.train_start <= day <= split.test_end:
            values[(day - split.train_start).days] = np.nan
    return DailySeries(name, split.train_start, values)


def _gaps(counts: dict[str, dict[dt.date, int]]) -> set[dt.date]:
    seen = {day for per_day in counts.values() for day in per_day}
    if not seen:
        return set()
    first, last = min(seen), max(seen)
    days = (first + dt.timedelta(days=i) for i in range((last - first).days + 1))
    return {day for day in days if day not in seen}


def _rolling(
    series: DailySeries, split: Split, holidays: HolidayLookup, config: ModelConfig
) -> list[tuple]:
    """(day, actual, forecast, lower80, upper80, lower95, upper95) for every test day."""
    out = []
    origin = split.test_start
    while origin <= split.test_end:
        horizon = min(7, (split.test_end - origin).days + 1)
        history = series.until(origin - dt.timedelta(days=1))
        result = forecast(history, horizon=horizon, freq="tag", holidays=holidays, config=config)
        for row in result.rows:
            actual = series.values[(row.start - series.start).days]
            out.append(
                (
                    row.start,
                    actual,
                    row.expected,
                    row.lower80,
                    row.upper80,
                    row.lower95,
                    row.upper95,
                )
            )
        origin += dt.timedelta(days=7)
    return out


def _single(
    series: DailySeries, split: Split, holidays: HolidayLookup, config: ModelConfig
) -> list[tuple]:
    history = series.until(split.test_start - dt.timedelta(days=1))
    horizon = (split.test_end - split.test_start).days + 1
    result = forecast(history, horizon=horizon, freq="tag", holidays=holidays, config=config)
    return [
        (
            row.start,
            series.values[(row.start - series.start).days],
            row.expected,
            row.lower80,
            row.upper80,
            row.lower95,
            row.upper95,
        )
        for row in result.rows
    ]


def _score(series: DailySeries, rows: Iterable[tuple]) -> dict[str, Any]:
    model_err = naive_err = 0.0
    days = inside80 = inside95 = 0
    for day, actual, point, lo80, hi80, lo95, hi95 in rows:
        naive = series.values[(day - series.start).days - 7]
        if math.isnan(actual) or math.isnan(naive):
            continue
        days += 1
        model_err += abs(actual - point)
        naive_err += abs(actual - naive)
        inside80 += lo80 <= actual <= hi80
        inside95 += lo95 <= actual <= hi95
    return {
        "mase": model_err / naive_err if naive_err else None,
        "mae": model_err / days if days else None,
        "naive_mae": naive_err / days if days else None,
        "coverage_80": inside80 / days if days else None,
        "coverage_95": inside95 / days if days else None,
        "test_days": days,
        "_inside80": inside80,
        "_inside95": inside95,
    }


def _aggregate(per: dict[str, dict[str, Any]]) -> dict[str, Any]:
    mases = [d["mase"] for d in per.values() if d["mase"] is not None]
    days = sum(d["test_days"] for d in per.values())
    return {
        "mase": round(float(np.mean(mases)), 4) if mases else None,
        "mase_median": round(float(np.median(mases)), 4) if mases else None,
        "coverage_80": round(float(sum(d["_inside80"] for d in per.values())) / days, 4)
        if days
        else None,
        "coverage_95": round(float(sum(d["_inside95"] for d in per.values())) / days, 4)
        if days
        else None,
    }


def _public(d: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (round(v, 4) if isinstance(v, float) else v)
        for k, v in d.items()
        if not k.startswith("_")
    }


def evaluate_forecast(
    path: Path,
    *,
    departments: Iterable[str] | None = None,
    holidays: HolidayLookup | None = None,
    config: ModelConfig | None = None,
    split: Split = TEST,
) -> dict[str, Any]:
    """Measure the forecast on the Boston file (see the module docstring for the protocol);
    ``departments`` restricts the measurement (tests use a small slice)."""
    config = config or ModelConfig()
    holidays = holidays or holiday_calendar("US", "MA")
    counts = read_requests(path)
    gaps = _gaps(counts)
    train_days = (split.test_start - split.train_start).days
    wanted = set(departments) if departments is not None else None
    included: dict[str, DailySeries] = {}
    excluded: dict[str, float] = {}
    for name in sorted(counts):
        if wanted is not None and name not in wanted:
            continue
        series = _series(name, counts[name], gaps, split)
        mean = float(np.nanmean(series.values[:train_days]))
        if mean < MIN_MEAN_PER_DAY:
            excluded[name] = round(mean, 3)
        else:
            included[name] = series
    if not included:
        raise RathausError("Keine Abteilung mit genügend Anfragen für die Messung gefunden.")
    rolling: dict[str, dict[str, Any]] = {}
    single: dict[str, dict[str, Any]] = {}
    for name, series in included.items():
        rolling[name] = _score(series, _rolling(series, split, holidays, config))
        rolling[name]["mean_per_day_history"] = round(
            float(np.nanmean(series.values[:train_days])), 2
        )
        single[name] = _score(series, _single(series, split, holidays, config))
    primary = _aggregate(rolling)
    secondary = _aggregate(single)
    return {
        "data": path.name,
        "split": {
            "history": f"{split.train_start} – {split.test_start - dt.timedelta(days=1)}",
            "test": f"{split.test_start} – {split.test_end}",
        },
        "protocol": (
            "Tagesprognose je Abteilung. Hauptwert: rollierender Ursprung alle 7 Tage, Modell "
            "jeweils nur auf Tagen vor dem Ursprung geschätzt, Prognose der nächsten 7 Tage "
            "(wie die saisonal-naive Vergleichsprognose: gleicher Wochentag der Vorwoche). "
            "MASE = MAE Modell / MAE saisonal-naiv auf den Testtagen, Mittel über Abteilungen; "
            "coverage_80 = Anteil aller Abteilungs-Testtage im 80-%-Intervall."
        ),
        "holidays": "US-MA",
        "mase": primary["mase"],
        "coverage_80": primary["coverage_80"],
        "coverage_95": primary["coverage_95"],
        "mase_median": primary["mase_median"],
        "departments": {name: _public(d) for name, d in rolling.items()},
        "secondary_92_days_ahead": {
            "description": (
                f"Ein Ursprung ({split.test_start}), Modell nur auf der Vergangenheit geschätzt, "
                "alle Testtage im Voraus; Vergleich mit saisonal-naiv (gleicher Wochentag der "
                "Vorwoche, tatsächlicher Wert – der Vergleich hat also mehr Information)."
            ),
            **secondary,
            "departments": {name: _public(d) for name, d in single.items()},
        },
        "excluded": {
            "rule": f"Mittel unter {MIN_MEAN_PER_DAY:g} Anfrage je Tag in der Vergangenheit",
            "departments": excluded,
        },
        "gaps": sorted(
            day.isoformat() for day in gaps if split.train_start <= day <= split.test_end
        ),
        "n_departments": len(included),
    }
