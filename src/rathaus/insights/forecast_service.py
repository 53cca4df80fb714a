"""The volume forecast as one call for page, API and CLI: load the series behind a source,
forecast it with the tenant's public holidays, add the staffing view and the export table."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from rathaus.core.models import Tenant
from rathaus.insights.forecast import (
    Forecast,
    ForecastError,
    StaffingRow,
    check_horizon,
    forecast,
    holiday_calendar,
    staffing,
)
from rathaus.insights.forecast_data import load_source


@dataclass(frozen=True)
class ForecastResult:
    source: str
    forecast: Forecast
    land: str
    cases_per_person_day: float | None = None
    staffing: list[StaffingRow] | None = None

    def to_dict(self, *, history_periods: int | None = None) -> dict[str, Any]:
        return {
            "source": self.source,
            "land": self.land,
            **self.forecast.to_dict(history_periods=history_periods),
            "cases_per_person_day": self.cases_per_person_day,
            "staffing": [r.to_dict() for r in self.staffing] if self.staffing is not None else None,
        }


def run_forecast(
    session: Session,
    tenant: Tenant,
    source: str,
    *,
    horizon: int,
    freq: str = "tag",
    cases_per_person_day: float | None = None,
    today: dt.date | None = None,
) -> ForecastResult:
    """Forecast the series ``source`` (see :func:`forecast_data.list_sources`)."""
    check_horizon(freq, horizon)
    if cases_per_person_day is not None and (
        not math.isfinite(cases_per_person_day) or cases_per_person_day <= 0
    ):
        raise ForecastError("Bitte im Feld „Fälle je Personentag“ eine Zahl größer als 0 angeben.")
    series = load_source(session, tenant.id, source, today=today)
    holidays = holiday_calendar("DE", tenant.land)
    result = forecast(series, horizon=horizon, freq=freq, holidays=holidays)
    rows = None
    if cases_per_person_day is not None:
        weekly = result
        if freq != "woche":
            weekly = forecast(
                series, horizon=max(1, math.ceil(horizon / 7)), freq="woche", holidays=holidays
            )
        rows = staffing(weekly, cases_per_person_day)
    return ForecastResult(source, result, tenant.land, cases_per_person_day, rows)


def export_table(result: ForecastResult) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of the forecast table (the same numbers as page and chart)."""
    unit = "Tag" if result.forecast.freq == "tag" else "Woche ab"
    headers = [
        unit,
        "Bis",
        "Erwartete Eingänge",
        "80 % von",
        "80 % bis",
        "95 % von",
        "95 % bis",
        "Feiertage",
    ]
    rows: list[list[Any]] = [
        [
            r.start,
            r.end,
            round(r.expected, 1),
            round(r.lower80, 1),
            round(r.upper80, 1),
            round(r.lower95, 1),
            round(r.upper95, 1),
            ", ".join(r.holidays),
        ]
        for r in result.forecast.rows
    ]
    return headers, rows


def staffing_table(result: ForecastResult) -> tuple[list[str], list[list[Any]]]:
    headers = [
        "Woche ab",
        "Erwartete Eingänge",
        "Personentage",
        "80 % von",
        "80 % bis",
        "95 % von",
        "95 % bis",
    ]
    rows = [
        [
            r.week_start,
            round(r.cases, 1),
            round(r.person_days, 1),
            round(r.lower80, 1),
            round(r.upper80, 1),
            round(r.lower95, 1),
            round(r.upper95, 1),
        ]
        for r in result.staffing or []
    ]
    return headers, rows
