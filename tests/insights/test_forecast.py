"""The forecast model on synthetic series whose true pattern is known."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from rathaus.insights.forecast import (
    DailySeries,
    ForecastError,
    daily_series,
    forecast,
    holiday_calendar,
    staffing,
)

MONDAY = dt.date(2024, 1, 1)
WEEKLY = np.array([50.0, 45, 40, 40, 35, 6, 3])  # Monday … Sunday


def weekly_series(weeks: int, seed: int = 1, start: dt.date = MONDAY) -> DailySeries:
    rng = np.random.default_rng(seed)
    means = np.tile(WEEKLY, weeks)
    return DailySeries("Bürgeramt", start, rng.poisson(means).astype(float))


def test_weekly_pattern_is_forecast_closely_with_plausible_intervals():
    result = forecast(weekly_series(30), horizon=14)
    assert [r.start for r in result.rows][:2] == [
        MONDAY + dt.timedelta(days=210),
        MONDAY + dt.timedelta(days=211),
    ]
    expected = np.array([r.expected for r in result.rows])
    truth = np.tile(WEEKLY, 2)
    assert np.all(np.abs(expected - truth) <= 0.15 * truth + 1.5)
    for r in result.rows:
        assert 0 <= r.lower95 <= r.lower80 <= r.upper80 <= r.upper95
        assert r.lower80 <= r.expected <= r.upper80
    # The 80 % interval of a Poisson(50) day is about ±9; it must be neither a point nor huge.
    monday = result.rows[0]
    assert 6 < monday.upper80 - monday.lower80 < 40
    bt = result.backtest
    assert bt.mase is not None and bt.mase < 0.9  # a smoothed level beats last week's value
    assert bt.coverage80 is not None and 0.6 <= bt.coverage80 <= 0.97
    assert bt.coverage95 is not None and bt.coverage95 >= bt.coverage80
    assert result.weekday_factors[0] > 5 * result.weekday_factors[6]


def test_holidays_lower_the_forecast():
    rng = np.random.default_rng(3)
    start = dt.date(2023, 1, 2)
    days = [start + dt.timedelta(days=i) for i in range(420)]
    bw = holiday_calendar("DE", "BW")
    means = np.array([WEEKLY[d.weekday()] * (0.1 if bw(d) else 1.0) for d in days])
    series = DailySeries("Ordnungsamt", start, rng.poisson(means).astype(float))
    # History ends 24.02.2024; forecast the weeks with Good Friday 29.03. and Easter Monday.
    result = forecast(series, horizon=60, holidays=bw)
    by_day = {r.start: r for r in result.rows}
    good_friday, easter_monday = dt.date(2024, 3, 29), dt.date(2024, 4, 1)
    assert by_day[good_friday].holidays == ("Karfreitag",)
    assert by_day[good_friday].expected < 0.4 * by_day[good_friday - dt.timedelta(days=7)].expected
    assert by_day[easter_monday].expected < 0.4 * by_day[easter_monday + dt.timedelta(7)].expected
    assert result.holiday_factor < 0.3
    # Without the calendar the same days look like ordinary weekdays.
    plain = {r.start: r for r in forecast(series, horizon=60).rows}
    assert plain[good_friday].expected > 2 * by_day[good_friday].expected


def test_holiday_prior_applies_before_any_holiday_was_seen():
    series = weekly_series(10, start=dt.date(2025, 7, 21))  # 21.07. – 28.09.2025, no holiday
    result = forecast(series, horizon=28, holidays=holiday_calendar("DE", "BW"))
    (unity,) = [r for r in result.rows if r.holidays]
    assert (unity.start, unity.holidays) == (dt.date(2025, 10, 3), ("Tag der Deutschen Einheit",))
    friday = next(r for r in result.rows if r.start == dt.date(2025, 10, 10))
    sunday = next(r for r in result.rows if r.start == dt.date(2025, 10, 5))
    # "like the quietest weekday" until the tenant's own holidays have been seen
    assert unity.expected == pytest.approx(sunday.expected, rel=0.01)
    assert unity.expected < 0.2 * friday.expected


def test_too_short_series_names_the_series():
    series = weekly_series(6)
    with pytest.raises(ForecastError) as info:
        forecast(series, horizon=7)
    assert "„Bürgeramt“ ist zu kurz" in info.value.message
    assert "42 Tage" in info.value.message and "56 Tage" in info.value.message


def test_missing_days_are_gaps_not_zeros():
    series = weekly_series(20)
    series.values[-10:-3] = np.nan  # a week lost in the export
    result = forecast(series, horizon=7)
    assert result.rows[0].expected > 30  # a Monday, level not pulled towards zero
    mostly_missing = DailySeries("Leer", MONDAY, np.full(70, np.nan))
    with pytest.raises(ForecastError, match="zu kurz"):
        forecast(mostly_missing, horizon=7)


def test_zero_and_sparse_series():
    zeros = DailySeries("Nie", MONDAY, np.zeros(84))
    result = forecast(zeros, horizon=7)
    assert all(r.expected == 0 and r.upper95 == 0 for r in result.rows)
    assert result.backtest.mase is None
    rng = np.random.default_rng(5)
    sparse = DailySeries("Selten", MONDAY, rng.poisson(0.3, 200).astype(float))
    result = forecast(sparse, horizon=14)
    assert all(0 <= r.lower80 <= r.upper80 for r in result.rows)
    assert 0.1 < np.mean([r.expected for r in result.rows]) < 0.6


def test_negative_counts_are_refused():
    series = weekly_series(10)
    series.values[5] = -1
    with pytest.raises(ForecastError, match=r"06\.01\.2024 einen negativen Wert"):
        forecast(series, horizon=7)


def test_yearly_seasonality_with_enough_history():
    rng = np.random.default_rng(7)
    start = dt.date(2021, 1, 4)
    n = 3 * 364
    day_of_year = np.array([(start + dt.timedelta(days=i)).timetuple().tm_yday for i in range(n)])
    season = 1 + 0.6 * np.sin(2 * np.pi * (day_of_year - 80) / 365.25)
    means = np.tile(WEEKLY, n // 7) * season
    series = DailySeries("Jahreszeiten", start, rng.poisson(means).astype(float))
    result = forecast(series, horizon=13, freq="woche")
    assert result.yearly
    truth = [
        sum(
            WEEKLY[d]
            * (
                1
                + 0.6
                * np.sin(
                    2 * np.pi * ((r.start + dt.timedelta(d)).timetuple().tm_yday - 80) / 365.25
                )
            )
            for d in range(7)
        )
        for r in result.rows
    ]
    errors = [abs(r.expected - t) / t for r, t in zip(result.rows, truth, strict=True)]
    assert np.mean(errors) < 0.12
    # the level alone would stay flat; the truth moves by more than a third over 13 weeks
    assert max(truth) / min(truth) > 1.3
    assert max(r.expected for r in result.rows) / min(r.expected for r in result.rows) > 1.2


def test_weekly_forecast_and_staffing():
    series = weekly_series(20).until(MONDAY + dt.timedelta(days=20 * 7 - 3))  # ends on a Friday
    result = forecast(series, horizon=4, freq="woche")
    assert result.rows[0].start.weekday() == 0
    assert result.rows[0].start == MONDAY + dt.timedelta(days=19 * 7)  # the running week restarts
    assert any("laufende Woche" in n for n in result.notes)
    assert result.history[-1][1] == pytest.approx(sum(series.values[-12:-5]))
    assert abs(result.rows[0].expected - WEEKLY.sum()) < 0.12 * WEEKLY.sum()
    rows = staffing(result, 10)
    assert rows[0].person_days == pytest.approx(result.rows[0].expected / 10)
    assert rows[0].upper80 == pytest.approx(result.rows[0].upper80 / 10)
    with pytest.raises(ForecastError, match="Fälle je Personentag"):
        staffing(result, 0)
    with pytest.raises(ForecastError, match="Wochenprognose"):
        staffing(forecast(series, horizon=7), 10)


@pytest.mark.parametrize(
    ("freq", "horizon"), [("tag", 0), ("tag", 185), ("woche", 53), ("monat", 3)]
)
def test_bad_horizon_or_resolution(freq, horizon):
    with pytest.raises(ForecastError):
        forecast(weekly_series(10), horizon=horizon, freq=freq)


def test_daily_series_from_points_fills_zero_days():
    series = daily_series("x", {dt.date(2024, 1, 1): 3, dt.date(2024, 1, 4): 1})
    assert list(series.values) == [3, 0, 0, 1]
    assert series.end == dt.date(2024, 1, 4)
    with pytest.raises(ForecastError, match="keine Werte"):
        daily_series("leer", {})


def test_long_horizon_widens_intervals():
    result = forecast(weekly_series(16), horizon=120)
    first, last = result.rows[0], result.rows[112]
    assert first.start.weekday() == last.start.weekday()
    assert (last.upper80 - last.lower80) >= (first.upper80 - first.lower80)
    assert any("hochgerechnet" in n for n in result.notes)
