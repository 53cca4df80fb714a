"""Times and numbers in the UI are German: local time, announced starts kept, decimal comma."""

from __future__ import annotations

import datetime as dt

from rathaus.web.templating import templates


def _render(source: str, **values: object) -> str:
    return templates.env.from_string(source).render(**values)


def test_stored_moments_are_shown_in_berlin_time_in_winter_and_summer():
    winter_naive_utc = dt.datetime(2026, 1, 15, 8, 30)  # SQLite: UTC without zone
    summer_aware_utc = dt.datetime(2026, 7, 1, 8, 30, tzinfo=dt.UTC)  # PostgreSQL
    assert _render("{{ v|datum }}", v=winter_naive_utc) == "15.01.2026, 09:30"
    assert _render("{{ v|datum }}", v=summer_aware_utc) == "01.07.2026, 10:30"
    # Late evening UTC is already the next day in Germany.
    assert _render("{{ v|datum }}", v=dt.datetime(2026, 3, 31, 22, 30)) == "01.04.2026, 00:30"


def test_dates_and_missing_values():
    assert _render("{{ v|datum }}", v=dt.date(2026, 11, 22)) == "22.11.2026"
    assert _render("{{ v|datum }}", v=None) == "–"


def test_an_announced_meeting_start_is_shown_as_announced():
    start = dt.datetime(2026, 11, 24, 17, 0)  # from OParl or the form, kept without zone
    assert _render("{{ v|wanduhr }}", v=start) == "24.11.2026, 17:00"


def test_decimal_numbers_are_written_the_german_way():
    assert _render("{{ v|zahl(2) }}", v=22.2) == "22,20"
    assert _render("{{ v|zahl(1) }}", v=1234.56) == "1.234,6"
    assert _render("{{ (v * 100)|zahl(1) }} %", v=0.9756) == "97,6 %"
    assert _render("{{ v|zahl }}", v=None) == "–"
