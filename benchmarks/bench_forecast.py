"""Forecast cost: fit + forecast time and memory of the volume forecast per Boston 311
department, against a seasonal-naive forecast of the same series in the same run.

    .venv/bin/python benchmarks/bench_forecast.py
    .venv/bin/python benchmarks/bench_forecast.py --repeat 5 --horizon 28 --json

Data: ``../shared/data/forecasting/boston311_2015_subset.csv.gz`` (one row per request), counted
per department and day as in ``rathaus eval forecast`` (the export gap on 2015-07-22 is
missing, not zero). Every department with at least one request per day on average is measured
(eleven), with the whole of 2015 as history – what the Lagebild page does for a series at the
end of a year.

Timed per department, each ``--repeat`` times (the minimum counts):

* **Rathaus** – :func:`rathaus.insights.forecast.forecast` with ``freq="tag"`` and
  ``--horizon`` days, US/MA holidays: choosing the half-life in a back-test, the fit, the
  forecast and the 80/95 % intervals from the back-test errors (everything the page shows),
  plus the weekly forecast the page adds for the staffing view (``--weeks`` weeks).
* **Seasonal naive** – the same horizon, each day the count of the same weekday in the last
  week with data, and 80/95 % intervals from the empirical quantiles of the series' own
  week-on-week differences (point and intervals, like the model; no back-test).

Memory: a second, untimed pass under ``tracemalloc`` gives the peak of Python allocations
(numpy arrays included) for one department at a time; ``ru_maxrss`` is the whole process's
peak resident size (interpreter, numpy and the read file included). No assertion: the script
prints seconds, the ratio and the load average (other processes on the cores distort every
figure; the ratio holds only within one run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rathaus.insights.forecast import DailySeries, forecast, holiday_calendar  # noqa: E402
from rathaus.insights.forecast_eval import (  # noqa: E402
    MIN_MEAN_PER_DAY,
    Split,
    _gaps,
    _series,
    read_requests,
)

DATA = ROOT.parent / "shared" / "data" / "forecasting" / "boston311_2015_subset.csv.gz"
# All of 2015 as history (``_series`` reads ``train_start`` … ``test_end``; no test days here).
YEAR = Split(dt.date(2015, 1, 1), dt.date(2016, 1, 1), dt.date(2015, 12, 31))


def seasonal_naive(series: DailySeries, horizon: int) -> np.ndarray:
    """Rows of (point, lower80, upper80, lower95, upper95) for ``horizon`` days: the same
    weekday of the last week with a value, intervals from the week-on-week differences."""
    y = np.asarray(series.values, dtype=float)
    n = len(y)
    last = np.empty(7)
    for k in range(7):  # the latest value of each weekday position (skipping gaps)
        idx = np.arange(n - 7 + k, -1, -7)
        seen = idx[~np.isnan(y[idx])]
        last[k] = y[seen[0]] if seen.size else 0.0
    diffs = (y[7:] - y[:-7])[~np.isnan(y[7:] - y[:-7])]
    q = np.quantile(diffs, [0.025, 0.1, 0.9, 0.975]) if diffs.size else np.zeros(4)
    point = last[np.arange(horizon) % 7]
    return np.column_stack(
        [
            point,
            np.maximum(point + q[1], 0),
            point + q[2],
            np.maximum(point + q[0], 0),
            point + q[3],
        ]
    )


def load(path: Path) -> list[DailySeries]:
    counts = read_requests(path)
    gaps = _gaps(counts)
    series = [_series(name, counts[name], gaps, YEAR) for name in sorted(counts)]
    return [s for s in series if float(np.nanmean(s.values)) >= MIN_MEAN_PER_DAY]


def timed(run: Callable[[], object], repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        runs.append(time.perf_counter() - t0)
    return runs


def peak_bytes(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--horizon", type=int, default=28, help="Tage (Standard der Seite: 28)")
    parser.add_argument("--weeks", type=int, default=4, help="Wochen für den Personalbedarf")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data} fehlt (gemeinsame Daten neben dem Repository).")
    holidays = holiday_calendar("US", "MA")
    departments = load(args.data)
    forecast(departments[0], horizon=7, holidays=holidays)  # warm-up: holiday tables, imports

    def model(s: DailySeries) -> object:
        daily = forecast(s, horizon=args.horizon, freq="tag", holidays=holidays)
        weekly = forecast(s, horizon=args.weeks, freq="woche", holidays=holidays)
        return daily, weekly

    def naive(s: DailySeries) -> object:
        return seasonal_naive(s, args.horizon), seasonal_naive(s, 7 * args.weeks)

    per: dict[str, dict] = {}
    for s in departments:
        ours = timed(lambda s=s: model(s), args.repeat)
        base = timed(lambda s=s: naive(s), args.repeat)
        per[s.name] = {
            "mean_per_day": round(float(np.nanmean(s.values)), 1),
            "model_seconds": min(ours),
            "naive_seconds": min(base),
            "model_peak_bytes": peak_bytes(lambda s=s: model(s)),
            "naive_peak_bytes": peak_bytes(lambda s=s: naive(s)),
        }
    model_total = sum(d["model_seconds"] for d in per.values())
    naive_total = sum(d["naive_seconds"] for d in per.values())
    result = {
        "data": args.data.name,
        "departments": len(per),
        "history_days": len(departments[0].values),
        "horizon_days": args.horizon,
        "staffing_weeks": args.weeks,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "model_seconds_total": model_total,
        "naive_seconds_total": naive_total,
        "ratio_model_to_naive": model_total / naive_total if naive_total else None,
        "model_seconds_median_per_department": statistics.median(
            d["model_seconds"] for d in per.values()
        ),
        "model_peak_mib_max": max(d["model_peak_bytes"] for d in per.values()) / 2**20,
        "naive_peak_mib_max": max(d["naive_peak_bytes"] for d in per.values()) / 2**20,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "per_department": per,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{len(per)} Abteilungen (Boston 311, {result['history_days']} Tage Vergangenheit), "
        f"Horizont {args.horizon} Tage + {args.weeks} Wochen, Minimum aus {args.repeat} Läufen, "
        f"Last {tuple(round(x, 2) for x in result['load_average'])}"
    )
    print(f"{'Abteilung':<10} {'je Tag':>7} {'Modell ms':>10} {'naiv ms':>8} {'Spitze MiB':>11}")
    for name, d in per.items():
        print(
            f"{name:<10} {d['mean_per_day']:>7} {d['model_seconds'] * 1000:>10.1f} "
            f"{d['naive_seconds'] * 1000:>8.2f} {d['model_peak_bytes'] / 2**20:>11.2f}"
        )
    print(
        f"Rathaus-Prognose: {model_total:.2f} s für alle Abteilungen (Median "
        f"{result['model_seconds_median_per_department'] * 1000:.0f} ms je Abteilung); "
        f"saisonal-naiv: {naive_total * 1000:.1f} ms; Verhältnis {result['ratio_model_to_naive']:.0f}×"
    )
    print(
        f"Speicher: Spitze der Python-Allokationen je Abteilung {result['model_peak_mib_max']:.1f} "
        f"MiB (naiv {result['naive_peak_mib_max']:.2f} MiB); ru_maxrss des Prozesses "
        f"{result['ru_maxrss_mib']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
