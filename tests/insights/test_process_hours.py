"""Waiting times in business hours: hand-computed cases, a slow independent reference, and the
analysis, tables and map in office time."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from rathaus.core.cases import is_working_day
from rathaus.core.errors import RathausError
from rathaus.insights.eventlog_store import to_us
from rathaus.insights.process import analyse, from_columns
from rathaus.insights.process_hours import WorkingHours, local_time_us, work_clock, working_hours
from rathaus.insights.process_map import map_data, render_map
from rathaus.insights.process_tables import table

BERLIN = ZoneInfo("Europe/Berlin")
HOURS = WorkingHours(land="BW", start="08:00", end="16:00")


def local(text: str) -> dt.datetime:
    """A wall-clock time in Berlin, ``2024-03-08 15:00``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def office_hours(a: dt.datetime, b: dt.datetime, hours: WorkingHours = HOURS) -> float:
    clock = work_clock(np.array([to_us(a), to_us(b)], dtype=np.int64), hours)
    return float(clock[1] - clock[0]) / 3.6e9


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2024-03-08 15:00", "2024-03-11 09:00", 2.0),  # Friday → Monday: 1 h + 1 h
        ("2024-03-12 09:00", "2024-03-12 11:30", 2.5),  # same day
        ("2024-03-12 06:00", "2024-03-12 07:00", 0.0),  # both before opening
        ("2024-03-12 06:00", "2024-03-12 18:00", 8.0),  # a whole office day
        ("2024-03-12 17:00", "2024-03-13 07:00", 0.0),  # overnight, outside the hours
        ("2024-03-12 15:00", "2024-03-13 20:00", 9.0),  # 1 h + a whole day
        ("2024-03-09 10:00", "2024-03-10 15:00", 0.0),  # Saturday → Sunday
        ("2024-03-08 16:00", "2024-03-11 08:00", 0.0),  # closing time → opening time
        ("2024-03-04 08:00", "2024-03-18 08:00", 80.0),  # two whole weeks
        # Thursday 30 May 2024 is Fronleichnam, a public holiday in Baden-Württemberg
        ("2024-05-29 15:00", "2024-05-31 09:00", 2.0),
        # 3 October 2024 (Thursday) is a holiday everywhere in Germany
        ("2024-10-02 12:00", "2024-10-04 12:00", 8.0),
        # across the end of summer time (Sunday 27 October 2024): still 1 h + 1 h
        ("2024-10-25 15:00", "2024-10-28 09:00", 2.0),
        ("2024-03-28 15:00", "2024-04-02 09:00", 2.0),  # Karfreitag, Ostermontag, summer time
    ],
)
def test_hand_computed_office_hours(start, end, expected):
    assert office_hours(local(start), local(end)) == pytest.approx(expected)


def test_the_land_decides_which_days_are_holidays():
    a, b = local("2024-05-29 15:00"), local("2024-05-31 09:00")
    assert office_hours(a, b, WorkingHours(land="BW")) == 2.0  # Fronleichnam
    assert office_hours(a, b, WorkingHours(land="BE")) == 10.0  # a working day in Berlin


def test_timestamps_are_utc_and_hours_are_berlin_wall_clock():
    utc = dt.UTC
    # summer: 06:30 UTC is 08:30 in Berlin; 14:00 UTC is 16:00 → 7.5 h (not 6 h on a UTC clock)
    summer = office_hours(
        dt.datetime(2024, 7, 1, 6, 30, tzinfo=utc), dt.datetime(2024, 7, 1, 14, tzinfo=utc)
    )
    assert summer == 7.5
    # winter: UTC+1, 07:00 UTC is 08:00 in Berlin → a whole office day until 15:00 UTC
    winter = office_hours(
        dt.datetime(2024, 1, 15, 7, tzinfo=utc), dt.datetime(2024, 1, 15, 15, tzinfo=utc)
    )
    assert winter == 8.0
    # the same instant written with another offset gives the same clock
    t = np.array([to_us(dt.datetime.fromisoformat("2024-07-01T12:00:00-04:00"))])
    assert local_time_us(t)[0] == to_us(dt.datetime(2024, 7, 1, 18, tzinfo=utc))


def test_custom_hours_and_minutes():
    early = WorkingHours(land="BW", start="07:30", end="16:00")
    assert early.day_s == 8.5 * 3600
    assert office_hours(local("2024-03-08 07:00"), local("2024-03-08 08:15"), early) == 0.75
    whole = WorkingHours(land="BW", start="00:00", end="24:00")
    # Mon 12:00 → Sat 12:00: Monday half, Tue–Thu whole, Friday whole (Saturday is no office day)
    assert office_hours(local("2024-03-04 12:00"), local("2024-03-09 12:00"), whole) == 12 + 96


def _reference_hours(a: dt.datetime, b: dt.datetime, hours: WorkingHours) -> float:
    """Slow and independent: walk the local days, add the overlap with each office day."""
    total = dt.timedelta()
    day = a.astimezone(BERLIN).date()
    start_h, start_m = map(int, hours.start.split(":"))
    end_h, end_m = map(int, hours.end.split(":"))
    while day <= b.astimezone(BERLIN).date():
        if is_working_day(day, hours.land):
            opens = dt.datetime(day.year, day.month, day.day, start_h, start_m, tzinfo=BERLIN)
            closes = dt.datetime(day.year, day.month, day.day, end_h, end_m, tzinfo=BERLIN)
            lo, hi = max(a, opens), min(b, closes)
            if hi > lo:
                total += hi - lo
        day += dt.timedelta(days=1)
    return total / dt.timedelta(hours=1)


@pytest.mark.parametrize("land", ["BW", "BY", "NI"])
def test_random_pairs_equal_a_day_by_day_reference(land):
    rng = random.Random(6)
    hours = WorkingHours(land=land, start="07:30", end="16:15")
    base = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    times = sorted(
        base + dt.timedelta(minutes=rng.randrange(3 * 365 * 24 * 60)) for _ in range(300)
    )
    clock = work_clock(np.array([to_us(t) for t in times], dtype=np.int64), hours)
    assert np.all(np.diff(clock) >= 0)
    for i in range(0, len(times) - 1, 7):
        for j in (i + 1, min(i + 40, len(times) - 1)):
            got = float(clock[j] - clock[i]) / 3.6e9
            assert got == pytest.approx(_reference_hours(times[i], times[j], hours), abs=1e-9)


@pytest.mark.parametrize(
    ("mode", "start", "end", "message"),
    [
        ("arbeitszeit", "16:00", "08:00", "Beginn muss vor dem Ende"),
        ("arbeitszeit", "25:00", "16:00", "„25:00“ ist keine Uhrzeit \\(Beginn der Arbeitszeit\\)"),
        ("arbeitszeit", "08:00", "16 Uhr", "Ende der Arbeitszeit"),
        ("wochenzeit", None, None, "Erlaubt sind: kalender oder arbeitszeit"),
    ],
)
def test_bad_settings_give_german_errors(mode, start, end, message):
    with pytest.raises(RathausError, match=message):
        working_hours(mode, start, end, land="BW")


def test_modes_and_normalised_times():
    assert working_hours(None, "x", "y", land="BW") is None  # calendar: times are not used
    assert working_hours("kalender", None, None, land="BW") is None
    hours = working_hours("Arbeitszeit", "7.30", "16:00", land="NW")
    assert hours == WorkingHours(land="NW", start="07:30", end="16:00")


def test_a_log_over_more_than_a_century_is_refused():
    times = np.array([to_us(local("1900-01-01 10:00")), to_us(local("2024-01-01 10:00"))])
    with pytest.raises(RathausError, match="höchstens 100 Jahre"):
        work_clock(times, HOURS)


# one case per row: (activity, Berlin wall-clock time)
CASES = {
    "A-1": [("Eingang", "2024-03-08 15:00"), ("Prüfung", "2024-03-11 09:00")],  # 2 h office
    "A-2": [("Eingang", "2024-03-12 09:00"), ("Prüfung", "2024-03-12 13:00")],  # 4 h office
    "A-3": [
        ("Eingang", "2024-05-29 15:00"),
        ("Prüfung", "2024-05-31 09:00"),  # 2 h (Fronleichnam)
        ("Bescheid", "2024-06-03 10:00"),  # 7 h + 2 h = 9 h; calendar 73 h
    ],
}


def _log():  # type: ignore[no-untyped-def]
    rows = [(c, a, t) for c, events in CASES.items() for a, t in events]
    return from_columns(
        [r[0] for r in rows], [r[1] for r in rows], [to_us(local(r[2])) for r in rows]
    )


def test_analysis_in_office_time_with_tables_and_map():
    calendar = analyse(_log())
    office = analyse(_log(), hours=HOURS)
    assert calendar.time_basis.mode == "kalender" and office.time_basis.mode == "arbeitszeit"
    edge = office.edge("Eingang", "Prüfung")
    assert edge.count == 3
    assert edge.median_s == 2 * 3600 and edge.max_s == 4 * 3600 and edge.total_s == 8 * 3600
    assert calendar.edge("Eingang", "Prüfung").median_s == 42 * 3600  # 8 → 29 May: 42 h
    assert office.edge("Prüfung", "Bescheid").median_s == 9 * 3600
    assert calendar.edge("Prüfung", "Bescheid").median_s == 73 * 3600
    # bottleneck ranking by office time: Prüfung → Bescheid (9 h) before Eingang → Prüfung (8 h)
    assert [(e.source, e.target) for e in office.bottleneck_edges][0] == ("Prüfung", "Bescheid")
    assert [(e.source, e.target) for e in calendar.bottleneck_edges][0] == ("Eingang", "Prüfung")
    assert sorted(office.throughput.values_s) == [2 * 3600, 4 * 3600, 11 * 3600]
    assert office.time_basis.fmt(11 * 3600) == "1,4 Arbeitstage"
    assert calendar.time_basis.fmt(11 * 3600) == "11,0 Std."
    headers, rows = table(office, "uebergaenge")
    assert "Wartezeit Median (Arbeitsstd.)" in headers
    assert rows[0][:5] == ["Eingang", "Prüfung", 3, 3, 2.0]
    assert "Wartezeit Median (Std.)" in table(calendar, "uebergaenge")[0]
    headers, rows = table(office, "durchlaufzeit")
    assert headers == ["Kennzahl", "Wert (Arbeitstage à 8 Std.)"]
    assert rows[0] == ["Median", 0.5]
    assert table(calendar, "durchlaufzeit")[0] == ["Kennzahl", "Wert (Tage)"]
    svg, _ = render_map(office)
    assert "Arbeitszeit: Mo–Fr 08:00–16:00 Uhr" in svg and "3 · 2,0 Std." in svg
    assert map_data(office)["timeBasis"].startswith("Arbeitszeit")
    data = office.to_dict()
    assert data["time_basis"]["mode"] == "arbeitszeit" and data["time_basis"]["land"] == "BW"


def test_office_time_survives_the_variant_filter():
    office = analyse(_log(), hours=HOURS, top_variants=1)
    assert office.time_basis.mode == "arbeitszeit"
    assert office.edge("Eingang", "Prüfung").median_s == 3 * 3600  # 2 h and 4 h


def test_events_outside_the_hours_are_counted_in_a_note():
    log = from_columns(
        ["F-1", "F-1", "F-1", "F-1"],
        ["Eingang", "Prüfung", "Rückfrage", "Bescheid"],
        [
            to_us(local(t))
            for t in (
                "2024-03-12 07:00",
                "2024-03-12 10:00",
                "2024-03-12 18:30",
                "2024-03-16 11:00",
            )
        ],
    )
    office = analyse(log, hours=HOURS)
    assert office.edge("Eingang", "Prüfung").median_s == 2 * 3600  # counted from 08:00
    assert office.edge("Rückfrage", "Bescheid").median_s == 3 * 8 * 3600  # Wed–Fri
    assert any(n.startswith("3 von 4 Ereignissen (75 %) liegen außerhalb") for n in office.notes)
    assert not any("außerhalb" in n for n in analyse(log).notes)
    assert not any("außerhalb" in n for n in analyse(_log(), hours=HOURS).notes)
