"""Volume forecast: expected incoming cases per day or week, with 80 % and 95 % intervals.

The model is small and explainable, written with numpy only:

    expected(day) = level × weekday factor(day) × yearly factor(day)
    (on a public holiday the weekday factor is replaced by the holiday factor)

* **weekday factors** – each weekday's share of a full week over the last 16 weeks without
  holidays (a pseudo-count keeps sparse series from getting extreme factors);
* **holiday factor** – how busy the tenant's public holidays were compared to the level at
  the time, shrunk towards "like the quietest weekday" while few holidays have been seen;
* **level** – an exponentially weighted mean (half-life 14 days) of the counts with weekday,
  holiday and yearly effects divided out; single outliers (a storm day) are capped first;
* **yearly factor** – Fourier terms of the day of the year (three harmonics), fitted with a
  ridge penalty on weekly means, used only with at least 400 days of history (one season
  shape cannot be learnt from less);
* **intervals** – empirical quantiles of the model's own errors in a rolling-origin back-test
  on the history (weekly origins, each fit only on the days before it), grouped by how far
  ahead the forecast reaches (conformal prediction). The same back-test gives the error shown
  with every forecast: MASE against the seasonal-naive forecast (same weekday last week; for
  weeks: last week's total) and how often the actual value fell inside the intervals.

Days may be missing (``nan``, e.g. a gap in an export): they are skipped, never read as zero.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from rathaus.core.errors import RathausError

Frequency = Literal["tag", "woche"]
FREQUENCIES: tuple[str, ...] = ("tag", "woche")
MIN_DAYS = 56  # eight weeks: fewer cannot show a weekday pattern and a back-test
MAX_HORIZON = {"tag": 184, "woche": 52}
DEFAULT_HORIZON = {"tag": 28, "woche": 12}
WEEKDAYS = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")

HolidayLookup = Callable[[dt.date], str | None]


class ForecastError(RathausError):
    """A forecast that cannot be made as asked (too short a series, bad horizon …)."""

    http_status = 422


@dataclass(frozen=True)
class ModelConfig:
    """The model's few settings; the defaults are the documented ones (docs/forecast.md)."""

    level_halflife: float = 14.0  # days
    halflife_choices: tuple[float, ...] = (7.0, 14.0, 28.0)  # chosen per series (back-test)
    level_window: int = 84  # days looked back for the level
    weekday_weeks: int = 16  # weeks looked back for the weekday factors
    weekday_pseudo: float = 1.0  # pseudo-count per weekday (sparse series)
    holiday_prior_weight: float = 2.0  # holidays' worth of "like the quietest weekday"
    outlier_cap: float = 5.0  # cap at median + this × MAD (deseasonalised), for the level
    yearly_min_days: int = 400
    yearly_harmonics: int = 3
    yearly_ridge: float = 1.0
    backtest_weeks: int = 26  # weekly origins in the back-test
    backtest_min_train: int = 28  # days a back-test fit needs
    offset: float = 1.0  # errors are log((actual + offset) / (forecast + offset))
    min_pool: int = 20  # errors a horizon group needs for its own quantiles


DEFAULT_CONFIG = ModelConfig()


# -- input -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailySeries:
    """Counts per calendar day from ``start``; ``nan`` marks a day without data."""

    name: str
    start: dt.date
    values: np.ndarray

    @property
    def end(self) -> dt.date:
        """The last day of the series."""
        return self.start + dt.timedelta(days=len(self.values) - 1)

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)

    def until(self, last: dt.date) -> DailySeries:
        """The series cut after ``last`` (inclusive)."""
        n = (last - self.start).days + 1
        return DailySeries(self.name, self.start, self.values[: max(n, 0)])


def daily_series(
    name: str,
    points: Mapping[dt.date, float] | Iterable[tuple[dt.date, float]],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> DailySeries:
    """A dense daily series from (day, count) points; days without a point count as zero
    (no case that day). ``start``/``end`` extend or cut the range."""
    items = dict(points.items() if isinstance(points, Mapping) else points)
    if not items and (start is None or end is None):
        raise ForecastError(f"Die Zeitreihe „{name}“ enthält keine Werte.")
    first = start or min(items)
    last = end or max(items)
    if last < first:
        raise ForecastError(f"Die Zeitreihe „{name}“ enthält keine Werte im gewählten Zeitraum.")
    values = np.zeros((last - first).days + 1)
    for day, value in items.items():
        index = (day - first).days
        if 0 <= index < len(values):
            values[index] += float(value)
    return DailySeries(name, first, values)


def holiday_calendar(country: str = "DE", subdiv: str | None = None) -> HolidayLookup:
    """Public holidays of a country and subdivision (Bundesland ``BW``, US state ``MA`` …):
    a function from a day to the holiday's name or ``None``."""
    import holidays

    try:
        calendar = holidays.country_holidays(
            country, subdiv=subdiv or None, language="de" if country == "DE" else None
        )
    except NotImplementedError as exc:
        raise ForecastError(
            f"Für „{country}-{subdiv}“ sind keine Feiertage bekannt. Bitte das Bundesland "
            "(z. B. BW, BY, NW) in den Einstellungen der Kommune prüfen."
        ) from exc

    def lookup(day: dt.date) -> str | None:
        return calendar.get(day)

    return lookup


def no_holidays(_day: dt.date) -> str | None:
    return None


# -- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fit:
    level: float
    weekday: np.ndarray  # 7 factors, Monday first
    holiday: float
    yearly: tuple[np.ndarray, np.ndarray] | None  # (cos, sin) coefficients, or None


def _dow(start: dt.date, n: int, offset: int = 0) -> np.ndarray:
    return (start.weekday() + offset + np.arange(n)) % 7


def _doy_angle(start: dt.date, n: int, offset: int = 0) -> np.ndarray:
    ordinals = start.toordinal() + offset + np.arange(n)
    return 2 * np.pi * (ordinals % 365.2425) / 365.2425


def _yearly_factor(
    fit_yearly: tuple[np.ndarray, np.ndarray] | None, angle: np.ndarray
) -> np.ndarray:
    if fit_yearly is None:
        return np.ones_like(angle)
    cos_c, sin_c = fit_yearly
    k = np.arange(1, len(cos_c) + 1)[:, None]
    return np.exp(cos_c @ np.cos(k * angle) + sin_c @ np.sin(k * angle))


def _weekday_factors(
    y: np.ndarray, dow: np.ndarray, hol: np.ndarray, cfg: ModelConfig
) -> np.ndarray:
    """Each weekday's share of full weeks without holidays or gaps, times seven."""
    n = len(y)
    span = min(n, cfg.weekday_weeks * 7)
    span -= span % 7
    if span < 7:
        return np.ones(7)
    block_y = y[n - span :].reshape(-1, 7)
    block_ok = ~(np.isnan(block_y) | hol[n - span :].reshape(-1, 7)).any(axis=1)
    if block_ok.sum() < 2:  # few clean weeks: use every week, gaps and holidays left out
        block_ok = np.ones(len(block_y), dtype=bool)
    block_dow = dow[n - span : n - span + 7]
    clean = block_y[block_ok]
    usable = ~np.isnan(clean) & ~hol[n - span :].reshape(-1, 7)[block_ok]
    sums = np.where(usable, clean, 0.0).sum(axis=0)
    counts = usable.sum(axis=0)
    means = (sums + cfg.weekday_pseudo) / np.maximum(counts, 1)
    means = np.where(counts > 0, means, np.nan)
    if np.all(np.isnan(means)):
        return np.ones(7)
    means = np.where(np.isnan(means), np.nanmean(means), means)
    factors = np.empty(7)
    factors[block_dow] = means / means.mean()
    return factors


def _level(y: np.ndarray, f: np.ndarray, end: int, cfg: ModelConfig) -> float:
    """Level before ``end``: exponentially weighted ratio of counts to their factors (weekday
    × yearly; ``nan`` where a day is left out), i.e. the Poisson estimate – exact also for
    weekdays that are usually empty. Values far above the rest are capped first."""
    lo = max(0, end - cfg.level_window)
    counts, factors = y[lo:end], f[lo:end]
    ok = ~(np.isnan(counts) | np.isnan(factors))
    if not ok.any():
        return float("nan")
    counts, factors = counts[ok], factors[ok]
    z = counts / factors
    median = np.median(z)
    mad = np.median(np.abs(z - median))
    cap = median + cfg.outlier_cap * max(mad * 1.4826, math.sqrt(median + 1.0))
    counts = np.minimum(counts, cap * factors)
    ages = (end - 1 - (lo + np.flatnonzero(ok))).astype(float)
    weights = 0.5 ** (ages / cfg.level_halflife)
    return float(np.dot(weights, counts) / max(float(np.dot(weights, factors)), 1e-12))


def _fit(y: np.ndarray, start: dt.date, hol: np.ndarray, cfg: ModelConfig) -> _Fit:
    n = len(y)
    dow = _dow(start, n)
    weekday = _weekday_factors(y, dow, hol, cfg)
    yearly = None
    if np.count_nonzero(~np.isnan(y)) >= cfg.yearly_min_days:
        yearly = _fit_yearly(y, weekday[dow], start, hol, cfg)
    season = _yearly_factor(yearly, _doy_angle(start, n))
    factors = np.where(hol, np.nan, weekday[dow] * season)
    level = _level(y, factors, n, cfg)
    if math.isnan(level):
        level = 0.0
    # Holidays: actual against the level just before each one.
    actual, expected = 0.0, 0.0
    for index in np.flatnonzero(hol & ~np.isnan(y)):
        if index < 14:
            continue
        before = _level(y, factors, int(index), cfg)
        if math.isnan(before):
            continue
        actual += float(y[index]) / season[index]
        expected += before
    typical = max(level, 1e-9)
    prior = float(weekday.min())
    weight = cfg.holiday_prior_weight
    holiday = (actual + weight * prior * typical) / (expected + weight * typical)
    return _Fit(level=level, weekday=weekday, holiday=holiday, yearly=yearly)


def _fit_yearly(
    y: np.ndarray, weekday: np.ndarray, start: dt.date, hol: np.ndarray, cfg: ModelConfig
) -> tuple[np.ndarray, np.ndarray] | None:
    """Fourier terms of the day of the year on log weekly levels (counts ÷ weekday factors),
    with a linear trend (the trend is not extrapolated: the level follows it)."""
    n = len(y) - len(y) % 7
    left_out = hol[:n] | np.isnan(y[:n])
    counts = np.where(left_out, 0.0, y[:n]).reshape(-1, 7).sum(axis=1)
    factors = np.where(left_out, 0.0, weekday[:n]).reshape(-1, 7).sum(axis=1)
    ok_days = (~left_out).reshape(-1, 7).sum(axis=1)
    means = counts / np.maximum(factors, 1e-12)
    ok = ok_days >= 4
    if ok.sum() < 52:
        return None
    t = np.arange(len(means))[ok]
    target = np.log(means[ok] + 0.5)
    angle = _doy_angle(start, len(means) * 7)[::7][ok] + 3 * 2 * np.pi / 365.2425
    k = np.arange(1, cfg.yearly_harmonics + 1)[:, None]
    features = np.vstack([np.cos(k * angle), np.sin(k * angle), t / 52.0]).T
    features_mean = features.mean(axis=0)
    centred = features - features_mean
    target_c = target - target.mean()
    penalty = cfg.yearly_ridge * np.eye(features.shape[1])
    penalty[-1, -1] = 1e-6  # the trend is not shrunk
    coef = np.linalg.solve(centred.T @ centred + penalty, centred.T @ target_c)
    h = cfg.yearly_harmonics
    return coef[:h], coef[h : 2 * h]


def _predict(fit: _Fit, start: dt.date, n_hist: int, hol_future: np.ndarray) -> np.ndarray:
    h = len(hol_future)
    dow = _dow(start, h, n_hist)
    factor = np.where(hol_future, fit.holiday, fit.weekday[dow])
    season = _yearly_factor(fit.yearly, _doy_angle(start, h, n_hist))
    return fit.level * factor * season


def _holiday_mask(start: dt.date, n: int, holidays: HolidayLookup) -> np.ndarray:
    return np.array([holidays(start + dt.timedelta(days=i)) is not None for i in range(n)])


# -- back-test and intervals -----------------------------------------------------------------

# Horizon groups (in periods ahead) whose errors share quantiles.
_GROUPS = {"tag": (7, 14, 28, 56, 91, 10_000), "woche": (1, 2, 4, 8, 13, 10_000)}


def _group(freq: str, step: int) -> int:
    for index, upper in enumerate(_GROUPS[freq]):
        if step <= upper:
            return index
    return len(_GROUPS[freq]) - 1


@dataclass
class _Record:
    origin: int  # index of the first forecast day
    known_at: int  # index from which the actual value is known (end of the period + 1)
    step: int  # periods ahead, from 1
    actual: float
    point: float
    naive: float


def _periods(values: np.ndarray, freq: str) -> np.ndarray:
    if freq == "tag":
        return values
    n = len(values) - len(values) % 7
    return values[:n].reshape(-1, 7).sum(axis=1)


def _backtest_records(
    y: np.ndarray,
    start: dt.date,
    hol: np.ndarray,
    horizon_days: int,
    freq: str,
    cfg: ModelConfig,
) -> list[_Record]:
    n = len(y)
    records: list[_Record] = []
    for k in range(1, cfg.backtest_weeks + 1):
        origin = n - 7 * k
        if origin < cfg.backtest_min_train:
            break
        fit = _fit(y[:origin], start, hol[:origin], cfg)
        days = min(horizon_days, n - origin)
        if freq == "woche":
            days -= days % 7
        if days <= 0:
            continue
        point = _periods(_predict(fit, start, origin, hol[origin : origin + days]), freq)
        actual = _periods(y[origin : origin + days], freq)
        last_week = y[origin - 7 : origin]
        for i in range(len(point)):
            if freq == "tag":
                naive = float(last_week[i % 7])
                known = origin + i + 1
            else:
                naive = float(last_week.sum())
                known = origin + 7 * (i + 1)
            records.append(_Record(origin, known, i + 1, float(actual[i]), float(point[i]), naive))
    return records


@dataclass(frozen=True)
class _Quantiles:
    """Quantiles of log((actual + c) / (forecast + c)) per horizon group."""

    table: dict[int, tuple[float, float, float, float]]
    fallback_used: bool


_LEVELS = (0.025, 0.10, 0.90, 0.975)


def _quantiles(
    records: Sequence[_Record], freq: str, cfg: ModelConfig, max_step: int
) -> _Quantiles:
    c = cfg.offset
    pools: dict[int, list[float]] = {}
    for r in records:
        if math.isnan(r.actual):
            continue
        pools.setdefault(_group(freq, r.step), []).append(
            math.log((r.actual + c) / (max(r.point, 0.0) + c))
        )
    groups = range(_group(freq, max_step) + 1)
    mids = [_group_mid(freq, g) for g in groups]
    table: dict[int, tuple[float, float, float, float]] = {}
    fallback = False
    last: tuple[int, tuple[float, float, float, float]] | None = None
    for g in groups:
        pool = pools.get(g, [])
        if len(pool) >= cfg.min_pool:
            table[g] = _conformal(pool)
            last = (g, table[g])
        elif last is not None:  # too few errors this far ahead: widen the nearer group's
            fallback = True
            scale = math.sqrt(mids[g] / mids[last[0]])
            table[g] = tuple(q * scale for q in last[1])  # type: ignore[assignment]
    if not table or len(table) < len(groups):
        everything = [q for pool in pools.values() for q in pool]
        base = _conformal(everything) if len(everything) >= 5 else (-1.0, -0.5, 0.5, 1.0)
        fallback = True
        for g in groups:
            if g not in table:
                scale = math.sqrt(mids[g] / mids[0])
                table[g] = tuple(q * scale for q in base)  # type: ignore[assignment]
    return _Quantiles(table, fallback)


def _group_mid(freq: str, g: int) -> float:
    uppers = _GROUPS[freq]
    lower = 1 if g == 0 else uppers[g - 1] + 1
    upper = uppers[g] if uppers[g] < 10_000 else lower * 2
    return (lower + upper) / 2


def _conformal(pool: Sequence[float]) -> tuple[float, float, float, float]:
    values = np.sort(np.asarray(pool))
    n = len(values)
    out = []
    for p in _LEVELS:
        # finite-sample correction: a little wider than the plain empirical quantile
        adj = 0.5 + (p - 0.5) * (n + 1) / n
        out.append(float(np.quantile(values, min(max(adj, 0.0), 1.0))))
    return out[0], out[1], out[2], out[3]


def _interval(point: float, q: tuple[float, float, float, float], c: float) -> tuple[float, ...]:
    base = max(point, 0.0) + c
    return tuple(max(base * math.exp(v) - c, 0.0) for v in q)


@dataclass(frozen=True)
class BacktestSummary:
    """The forecast's error on its own history (rolling weekly origins)."""

    mase: float | None  # MAE of the model ÷ MAE of the seasonal-naive forecast
    mae: float | None
    naive_mae: float | None
    coverage80: float | None  # share of actual values inside the 80 % interval
    coverage95: float | None
    origins: int
    points: int  # forecast values compared for MASE
    interval_points: int  # of those, with intervals from earlier errors only
    horizon: int  # periods ahead compared (at most the forecast's horizon)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mase": _round(self.mase, 3),
            "mae": _round(self.mae, 2),
            "naive_mae": _round(self.naive_mae, 2),
            "coverage80": _round(self.coverage80, 3),
            "coverage95": _round(self.coverage95, 3),
            "origins": self.origins,
            "points": self.points,
            "interval_points": self.interval_points,
            "horizon": self.horizon,
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _summarise(
    records: Sequence[_Record], freq: str, cfg: ModelConfig, horizon: int
) -> BacktestSummary:
    valid = [
        r
        for r in records
        if r.step <= horizon and not math.isnan(r.actual) and not math.isnan(r.naive)
    ]
    model_err = sum(abs(r.actual - r.point) for r in valid)
    naive_err = sum(abs(r.actual - r.naive) for r in valid)
    mae = model_err / len(valid) if valid else None
    naive_mae = naive_err / len(valid) if valid else None
    mase = model_err / naive_err if valid and naive_err > 0 else None
    # Coverage: each origin's intervals come only from errors known before that origin.
    inside80 = inside95 = counted = 0
    origins = sorted({r.origin for r in records})
    by_origin: dict[int, list[_Record]] = {}
    for r in valid:
        by_origin.setdefault(r.origin, []).append(r)
    for origin in origins:
        earlier = [r for r in records if r.known_at <= origin]
        if len(earlier) < cfg.min_pool:
            continue
        quantiles = _quantiles(earlier, freq, cfg, horizon)
        for r in by_origin.get(origin, []):
            q = quantiles.table[_group(freq, r.step)]
            lo95, lo80, hi80, hi95 = _interval(r.point, q, cfg.offset)
            counted += 1
            inside80 += lo80 <= r.actual <= hi80
            inside95 += lo95 <= r.actual <= hi95
    return BacktestSummary(
        mase=mase,
        mae=mae,
        naive_mae=naive_mae,
        coverage80=inside80 / counted if counted else None,
        coverage95=inside95 / counted if counted else None,
        origins=len({r.origin for r in valid}),
        points=len(valid),
        interval_points=counted,
        horizon=min(horizon, max((r.step for r in valid), default=0)),
    )


# -- the forecast ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastRow:
    """One forecast period (a day, or a week Monday–Sunday)."""

    start: dt.date
    end: dt.date
    expected: float
    lower80: float
    upper80: float
    lower95: float
    upper95: float
    holidays: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "expected": round(self.expected, 2),
            "lower80": round(self.lower80, 2),
            "upper80": round(self.upper80, 2),
            "lower95": round(self.lower95, 2),
            "upper95": round(self.upper95, 2),
            "holidays": list(self.holidays),
        }


@dataclass(frozen=True)
class Forecast:
    """A forecast of one series with its history (per period) and its back-test."""

    series: str
    freq: str
    history: list[tuple[dt.date, float | None]]
    rows: list[ForecastRow]
    backtest: BacktestSummary
    weekday_factors: tuple[float, ...]
    holiday_factor: float
    yearly: bool
    notes: list[str] = field(default_factory=list)

    def to_dict(self, *, history_periods: int | None = None) -> dict[str, Any]:
        history = self.history
        if history_periods is not None:
            history = history[len(history) - history_periods :] if history_periods > 0 else []
        return {
            "series": self.series,
            "freq": self.freq,
            "history": [
                {"start": d.isoformat(), "value": None if v is None else round(v, 2)}
                for d, v in history
            ],
            "forecast": [r.to_dict() for r in self.rows],
            "backtest": self.backtest.to_dict(),
            "model": {
                "weekday_factors": dict(
                    zip(WEEKDAYS, (round(w, 3) for w in self.weekday_factors), strict=True)
                ),
                "holiday_factor": round(self.holiday_factor, 3),
                "yearly_seasonality": self.yearly,
            },
            "notes": list(self.notes),
        }


def _choose(
    y: np.ndarray,
    start: dt.date,
    hol: np.ndarray,
    horizon_days: int,
    freq: str,
    horizon: int,
    config: ModelConfig,
) -> tuple[ModelConfig, list[_Record]]:
    """The level half-life from ``config.halflife_choices`` with the smallest back-test error
    on the history (each back-test fit sees only days before its origin)."""
    best: tuple[float, ModelConfig, list[_Record]] | None = None
    for halflife in config.halflife_choices or (config.level_halflife,):
        candidate = replace(config, level_halflife=halflife)
        records = _backtest_records(y, start, hol, horizon_days, freq, candidate)
        errors = [
            abs(r.actual - r.point)
            for r in records
            if r.step <= horizon and not math.isnan(r.actual)
        ]
        score = float(np.mean(errors)) if errors else math.inf
        if best is None or score < best[0]:
            best = (score, candidate, records)
    assert best is not None
    return best[1], best[2]


def check_horizon(freq: str, horizon: int) -> None:
    if freq not in FREQUENCIES:
        raise ForecastError(f"Unbekannte Auflösung „{freq}“. Erlaubt sind: tag, woche.")
    limit = MAX_HORIZON[freq]
    unit = "Tage" if freq == "tag" else "Wochen"
    if not 1 <= horizon <= limit:
        raise ForecastError(f"Der Horizont muss zwischen 1 und {limit} {unit} liegen.")


def forecast(
    series: DailySeries,
    *,
    horizon: int,
    freq: str = "tag",
    holidays: HolidayLookup = no_holidays,
    config: ModelConfig = DEFAULT_CONFIG,
) -> Forecast:
    """Forecast ``horizon`` days (``freq="tag"``) or weeks (``"woche"``, Monday–Sunday) after
    the series' last day. Weekly forecasts use complete weeks only: a week still running at
    the end of the series is left out of the history."""
    check_horizon(freq, horizon)
    y = np.asarray(series.values, dtype=float)
    start = series.start
    notes: list[str] = []
    if freq == "woche":
        # Drop leading days up to the first Monday and the running week at the end.
        lead = (7 - start.weekday()) % 7
        y, start = y[lead:], start + dt.timedelta(days=lead)
        tail = len(y) % 7
        if tail:
            y = y[: len(y) - tail]
            notes.append(
                f"Die laufende Woche ({tail} Tag{'e' if tail > 1 else ''}) ist noch nicht "
                "vollständig und zählt nicht zur Vergangenheit."
            )
    observed = int(np.count_nonzero(~np.isnan(y)))
    if len(y) < MIN_DAYS or observed < MIN_DAYS * 3 // 4:
        raise ForecastError(
            f"Die Zeitreihe „{series.name}“ ist zu kurz für eine Prognose: {observed} Tage mit "
            f"Werten, nötig sind mindestens {MIN_DAYS} Tage (8 Wochen)."
        )
    if np.nanmin(y) < 0:
        first = int(np.flatnonzero(y < 0)[0])
        day = start + dt.timedelta(days=first)
        raise ForecastError(
            f"Die Zeitreihe „{series.name}“ hat am {day:%d.%m.%Y} einen negativen Wert; "
            "Fallzahlen können nicht negativ sein."
        )
    n = len(y)
    horizon_days = horizon if freq == "tag" else 7 * horizon
    hol = _holiday_mask(start, n + horizon_days, holidays)
    config, records = _choose(y, start, hol[:n], horizon_days, freq, horizon, config)
    fit = _fit(y, start, hol[:n], config)
    daily = _predict(fit, start, n, hol[n:])
    quantiles = _quantiles(records, freq, config, horizon)
    if quantiles.fallback_used:
        notes.append(
            "Für weit entfernte Zeitpunkte gibt es in der Vergangenheit zu wenige Vergleiche; "
            "die Intervalle dort sind aus kürzeren Horizonten hochgerechnet."
        )
    points = _periods(daily, freq)
    rows = []
    period = 1 if freq == "tag" else 7
    for i, point in enumerate(points):
        first = start + dt.timedelta(days=n + i * period)
        last = first + dt.timedelta(days=period - 1)
        lo95, lo80, hi80, hi95 = _interval(
            float(point), quantiles.table[_group(freq, i + 1)], config.offset
        )
        names = tuple(
            name
            for d in range(period)
            if (name := holidays(first + dt.timedelta(days=d))) is not None
        )
        rows.append(ForecastRow(first, last, float(point), lo80, hi80, lo95, hi95, names))
    hist_values = _periods(y, freq)
    history = [
        (start + dt.timedelta(days=i * period), None if math.isnan(v) else float(v))
        for i, v in enumerate(hist_values)
    ]
    if fit.yearly is None and n < config.yearly_min_days:
        notes.append(
            f"Jahreszeitliche Schwankungen werden erst ab {config.yearly_min_days} Tagen "
            "Vergangenheit geschätzt; bis dahin folgt die Prognose dem aktuellen Niveau."
        )
    return Forecast(
        series=series.name,
        freq=freq,
        history=history,
        rows=rows,
        backtest=_summarise(records, freq, config, horizon),
        weekday_factors=tuple(float(w) for w in fit.weekday),
        holiday_factor=float(fit.holiday),
        yearly=fit.yearly is not None,
        notes=notes,
    )


# -- staffing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffingRow:
    """Person-days needed in one week: expected cases ÷ cases per person-day."""

    week_start: dt.date
    cases: float
    person_days: float
    lower80: float
    upper80: float
    lower95: float
    upper95: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "week_start": self.week_start.isoformat(),
            "cases": round(self.cases, 1),
            "person_days": round(self.person_days, 1),
            "lower80": round(self.lower80, 1),
            "upper80": round(self.upper80, 1),
            "lower95": round(self.lower95, 1),
            "upper95": round(self.upper95, 1),
        }


def staffing(weekly: Forecast, cases_per_person_day: float) -> list[StaffingRow]:
    """Person-days per week for a weekly forecast; the interval scales with it."""
    if weekly.freq != "woche":
        raise ForecastError("Der Personalbedarf wird aus einer Wochenprognose berechnet.")
    if not cases_per_person_day > 0 or not math.isfinite(cases_per_person_day):
        raise ForecastError("Bitte im Feld „Fälle je Personentag“ eine Zahl größer als 0 angeben.")
    rate = cases_per_person_day
    return [
        StaffingRow(
            r.start,
            r.expected,
            r.expected / rate,
            r.lower80 / rate,
            r.upper80 / rate,
            r.lower95 / rate,
            r.upper95 / rate,
        )
        for r in weekly.rows
    ]
