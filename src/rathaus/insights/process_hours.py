"""Working time for process mining: a clock that runs only in office hours on working days.

A waiting time in business hours is the office time between two events: Monday to Friday
within the opening hours (default 08:00–16:00), never on a public holiday of the tenant's Land
(:func:`rathaus.core.cases.is_working_day`). Timestamps are stored in UTC; the office hours are
wall-clock hours in ``Europe/Berlin`` (daylight saving time included).

:func:`work_clock` maps every event time to the office time elapsed since the first day of the
log, vectorised: one table of working days for the days the log spans (cumulative sum),
clipping of the time of day to the opening hours. The waiting time between two events is then
the difference of their clock values – the same ``np.diff`` as in calendar time, so the
directly-follows graph, bottlenecks and throughput need no second code path.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from rathaus.core.errors import RathausError

US = 1_000_000
DAY_US = 86_400 * US
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EPOCH_DAY = dt.date(1970, 1, 1)
LOCAL = "Europe/Berlin"
DEFAULT_START = "08:00"
DEFAULT_END = "16:00"
MAX_SPAN_DAYS = 100 * 366  # a log over more than a century is a data error, not a process
MODES = ("kalender", "arbeitszeit")
_HHMM = re.compile(r"^\s*(\d{1,2})[:.](\d{2})\s*$")


def _minutes(value: str, label: str) -> int:
    """Minutes after midnight of ``HH:MM`` (00:00 to 24:00)."""
    match = _HHMM.match(value or "")
    minutes = int(match[1]) * 60 + int(match[2]) if match and int(match[2]) < 60 else -1
    if not 0 <= minutes <= 24 * 60:
        raise RathausError(
            f"„{value}“ ist keine Uhrzeit ({label} der Arbeitszeit). Erwartet Stunden und "
            "Minuten, z. B. 07:30."
        )
    return minutes


@dataclass(frozen=True)
class WorkingHours:
    """Office hours Monday to Friday (``start``–``end``, local wall clock) and the Land whose
    public holidays are days off."""

    land: str = "BW"
    start: str = DEFAULT_START
    end: str = DEFAULT_END

    def __post_init__(self) -> None:
        begin, end = self.start_us, self.end_us
        if begin >= end:
            raise RathausError(
                f"Die Arbeitszeit {self.start}–{self.end} ist leer: Der Beginn muss vor dem Ende "
                "liegen (z. B. von 07:30 bis 16:00)."
            )

    @property
    def start_us(self) -> int:
        return _minutes(self.start, "Beginn") * 60 * US

    @property
    def end_us(self) -> int:
        return _minutes(self.end, "Ende") * 60 * US

    @property
    def day_s(self) -> float:
        """Office seconds of one working day."""
        return (self.end_us - self.start_us) / US

    @property
    def label(self) -> str:
        land = f" ({self.land})" if self.land else ""
        return (
            f"Arbeitszeit: Mo–Fr {self.start}–{self.end} Uhr, ohne Wochenenden und Feiertage{land}"
        )


def working_hours(
    mode: str | None, start: str | None, end: str | None, *, land: str
) -> WorkingHours | None:
    """The office hours for ``mode`` (``kalender`` or empty: ``None``; ``arbeitszeit``), with a
    German error for an unknown mode or a bad time."""
    chosen = (mode or "kalender").strip().lower()
    if chosen not in MODES:
        raise RathausError(
            f"Die Zeitbasis „{mode}“ gibt es nicht. Erlaubt sind: kalender oder arbeitszeit."
        )
    if chosen == "kalender":
        return None
    begin = _minutes((start or DEFAULT_START).strip(), "Beginn")
    finish = _minutes((end or DEFAULT_END).strip(), "Ende")
    return WorkingHours(
        land=land or "",
        start=f"{begin // 60:02d}:{begin % 60:02d}",
        end=f"{finish // 60:02d}:{finish % 60:02d}",
    )


@lru_cache(maxsize=8)
def _offset_table(first_day: int, last_day: int, zone: str) -> tuple[np.ndarray, np.ndarray]:
    """UTC offsets of ``zone`` as a step function over the UTC days ``first_day``..``last_day``:
    (start of each step in µs since the epoch, offset in µs). A change within a day is found by
    bisection to the second (time zones change at most once a day)."""
    tz = ZoneInfo(zone)

    def offset(us: int) -> int:
        delta = (EPOCH + dt.timedelta(microseconds=us)).astimezone(tz).utcoffset()
        return 0 if delta is None else delta // dt.timedelta(microseconds=1)

    starts = [first_day * DAY_US]
    values = [offset(starts[0])]
    for day in range(first_day, last_day + 1):
        nxt = offset((day + 1) * DAY_US)
        if nxt == values[-1]:
            continue
        lo, hi = day * DAY_US, (day + 1) * DAY_US  # offset(lo) is the old, offset(hi) the new
        while hi - lo > US:
            mid = (lo + hi) // 2 // US * US
            if mid in (lo, hi):
                break
            lo, hi = (mid, hi) if offset(mid) == values[-1] else (lo, mid)
        starts.append(hi)
        values.append(nxt)
    return np.asarray(starts, dtype=np.int64), np.asarray(values, dtype=np.int64)


def local_time_us(time_us: np.ndarray, zone: str = LOCAL) -> np.ndarray:
    """UTC microseconds as local wall-clock microseconds of ``zone`` (as if the wall clock were
    UTC), daylight saving time included."""
    if time_us.size == 0:
        return time_us.astype(np.int64)
    first = int(time_us.min()) // DAY_US - 1
    last = int(time_us.max()) // DAY_US + 1
    starts, offsets = _offset_table(first, last, zone)
    step = np.searchsorted(starts, time_us, side="right") - 1
    return time_us + offsets[step]


@lru_cache(maxsize=16)
def _working_days(first_day: int, n_days: int, land: str) -> np.ndarray:
    """Working day (bool) for each of ``n_days`` days from ``first_day`` (days since 1970)."""
    from rathaus.core.cases import is_working_day  # the one holiday calendar of Rathaus

    weekday = (np.arange(first_day, first_day + n_days) + 3) % 7  # 1970-01-01 was a Thursday
    working = weekday < 5
    for i in np.flatnonzero(working).tolist():
        day = EPOCH_DAY + dt.timedelta(days=first_day + i)
        working[i] = is_working_day(day, land)
    return working


def work_clock(time_us: np.ndarray, hours: WorkingHours, zone: str = LOCAL) -> np.ndarray:
    """Office time (µs, int64) from the start of the log's first day up to each event.

    The difference of two clock values is the working time between the two events: time on a
    working day within ``hours.start``–``hours.end`` counts, everything else (nights, weekends,
    public holidays of ``hours.land``) does not. An event outside the opening hours counts as
    at the next opening (before it) or at the last closing (after it)."""
    return work_clock_outside(time_us, hours, zone)[0]


def work_clock_outside(
    time_us: np.ndarray, hours: WorkingHours, zone: str = LOCAL
) -> tuple[np.ndarray, int]:
    """:func:`work_clock` and the number of events outside the office hours (on a day off, or
    before the start or after the end of the working day)."""
    if time_us.size == 0:
        return time_us.astype(np.int64), 0
    time_us = np.asarray(time_us, dtype=np.int64)
    lo_day, hi_day = int(time_us.min()) // DAY_US, int(time_us.max()) // DAY_US
    if hi_day - lo_day + 1 > MAX_SPAN_DAYS:
        lo = (EPOCH_DAY + dt.timedelta(days=lo_day)).strftime("%d.%m.%Y")
        hi = (EPOCH_DAY + dt.timedelta(days=hi_day)).strftime("%d.%m.%Y")
        raise RathausError(
            f"Das Protokoll reicht vom {lo} bis zum {hi} – für die Arbeitszeit-Rechnung sind "
            "höchstens 100 Jahre möglich. Bitte die Zeitpunkte prüfen oder Kalenderzeit wählen."
        )
    local = local_time_us(time_us, zone)
    day = local // DAY_US
    first = int(day.min())
    n_days = int(day.max()) - first + 1
    working = _working_days(first, n_days, hours.land)
    before = np.concatenate(([0], np.cumsum(working, dtype=np.int64)))  # working days before
    index = day - first
    begin, end = hours.start_us, hours.end_us
    time_of_day = local - day * DAY_US
    on_duty = working[index]
    within = np.clip(time_of_day, begin, end) - begin
    outside = on_duty.size - int(
        np.count_nonzero(on_duty & (time_of_day >= begin) & (time_of_day <= end))
    )
    return before[index] * (end - begin) + np.where(on_duty, within, 0), outside
