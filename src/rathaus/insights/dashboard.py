"""Kennzahlen (dashboard): incoming volume, backlog, processing times and SLA compliance.

Everything is computed from the cases and the case event log of one tenant, restricted to the
departments the viewer may see. Processing times come from the event log: *Durchlaufzeit* from
the ``created`` event to the last change to ``erledigt``, *Zeit bis zur Zuweisung* to the first
change to ``zugewiesen``. SLA compliance compares the completion with the case's ``due_at``
(set from the service's working-day deadline and the Land's public holidays).

Statistics about staff exist only as aggregates over groups of at least
:data:`MIN_GROUP_SIZE` people (works-council rule): a department with fewer members gets no
per-person figure, and nothing is ever computed per employee.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from rathaus.core.access import unit_subtree_ids
from rathaus.core.errors import RathausError
from rathaus.core.models import Case, CaseEvent, CaseStatus, Membership, OrgUnit, Service, User
from rathaus.core.roles import Permission, permissions_of

LOCAL = ZoneInfo("Europe/Berlin")
MIN_GROUP_SIZE = 5
BUCKETS = {"tag": "Tag", "woche": "Woche", "monat": "Monat"}
MAX_DAYS = 3 * 366
OPEN = {
    CaseStatus.NEU,
    CaseStatus.TRIAGE,
    CaseStatus.ZUGEWIESEN,
    CaseStatus.IN_BEARBEITUNG,
    CaseStatus.WARTET,
}
NO_UNIT = "ohne Zuordnung"
CHANNEL_LABELS = {
    "upload": "Hochladen",
    "email": "E-Mail",
    "api": "Schnittstelle",
    "open311": "Open311",
    "imap": "Postfach",
    "ordner": "Ordner",
    "assistent": "Bürgerassistent",
    "brief": "Brief",
    "telefon": "Telefon",
    "persoenlich": "Persönlich",
    "formular": "Formular",
    "csv": "Altdaten (CSV)",
}


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive
    bucket: str = "woche"

    @classmethod
    def parse(
        cls, start: str | None, end: str | None, bucket: str | None, *, today: dt.date | None = None
    ) -> Period:
        """From form/CLI values (ISO or German dates); default: the last 12 weeks."""
        from rathaus.insights.tabular import TableError, parse_date

        today = today or dt.datetime.now(LOCAL).date()
        try:
            end_day = parse_date(end, label="bis") if end else today
            start_day = parse_date(start, label="von") if start else end_day - dt.timedelta(83)
        except TableError as exc:
            raise RathausError(exc.message) from exc
        bucket = bucket or "woche"
        if bucket not in BUCKETS:
            raise RathausError(f"Unbekannte Einteilung „{bucket}“. Erlaubt: tag, woche, monat.")
        if start_day > end_day:
            raise RathausError("Der Zeitraum ist leer: „von“ liegt nach „bis“.")
        if (end_day - start_day).days > MAX_DAYS:
            raise RathausError("Der Zeitraum ist zu lang (höchstens drei Jahre).")
        return cls(start_day, end_day, bucket)

    def bucket_of(self, day: dt.date) -> dt.date:
        if self.bucket == "woche":
            return day - dt.timedelta(days=day.weekday())
        if self.bucket == "monat":
            return day.replace(day=1)
        return day

    def buckets(self) -> list[dt.date]:
        result, day = [], self.bucket_of(self.start)
        while day <= self.end:
            result.append(day)
            day = self.next_bucket(day)
        return result

    def bucket_label(self, day: dt.date) -> str:
        if self.bucket == "woche":
            year, week, _ = day.isocalendar()
            return f"KW {week}/{year % 100:02d}"
        if self.bucket == "monat":
            return f"{day:%m/%Y}"
        return f"{day:%d.%m.}"

    def bucket_end(self, day: dt.date) -> dt.date:
        return min(self.next_bucket(day) - dt.timedelta(days=1), self.end)

    def next_bucket(self, day: dt.date) -> dt.date:
        if self.bucket == "woche":
            return day + dt.timedelta(days=7)
        if self.bucket == "monat":
            return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return day + dt.timedelta(days=1)


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (numpy's linear interpolation); None without values."""
    return float(np.quantile(values, q)) if values else None


def visible_unit_ids(session: Session, user: User) -> set[int] | None:
    """The departments whose figures ``user`` may see; ``None`` means all of the tenant."""
    perms = permissions_of(user.roles)
    if Permission.VIEW_ALL_DEPARTMENTS in perms or Permission.VIEW_AUDIT in perms:
        return None  # administration and data protection see the whole municipality
    return unit_subtree_ids(session, user.tenant_id, set(user.org_unit_ids))


@dataclass
class Dashboard:
    period: Period
    unit_names: dict[int, str]
    selected_units: list[int] | None
    volume: dict[str, list[int]] = field(default_factory=dict)  # series label → per bucket
    volume_total: list[int] = field(default_factory=list)
    by_channel: list[tuple[str, int]] = field(default_factory=list)
    by_service: list[tuple[str, int]] = field(default_factory=list)
    backlog: list[int] = field(default_factory=list)  # open at each bucket end
    backlog_by_unit: list[dict[str, Any]] = field(default_factory=list)
    processing: list[dict[str, Any]] = field(default_factory=list)
    sla: dict[str, Any] = field(default_factory=dict)
    staff: list[dict[str, Any]] = field(default_factory=list)
    received: int = 0
    closed: int = 0

    @property
    def labels(self) -> list[str]:
        return [self.period.bucket_label(b) for b in self.period.buckets()]

    def tables(self) -> dict[str, tuple[str, list[str], list[list[Any]]]]:
        """Every table of the page: key → (title, headers, rows), for display and export."""
        buckets = self.period.buckets()
        volume_rows = [
            [
                self.period.bucket_label(b),
                b.isoformat(),
                self.volume_total[i],
                *(self.volume[s][i] for s in self.volume),
                self.backlog[i],
            ]
            for i, b in enumerate(buckets)
        ]
        return {
            "eingang": (
                "Eingang und Rückstand je Zeitabschnitt",
                ["Abschnitt", "Beginn", "Eingang gesamt", *self.volume, "Offen am Ende"],
                volume_rows,
            ),
            "kanaele": (
                "Eingang nach Kanal",
                ["Kanal", "Vorgänge"],
                [list(r) for r in self.by_channel],
            ),
            "leistungen": (
                "Eingang nach Leistung",
                ["Leistung", "Vorgänge"],
                [list(r) for r in self.by_service],
            ),
            "rueckstand": (
                "Offene Vorgänge je Fachbereich (heute)",
                ["Fachbereich", "Offen", "davon überfällig", "Alter Median (Tage)"],
                [
                    [r["unit"], r["open"], r["overdue"], r["age_median_days"]]
                    for r in self.backlog_by_unit
                ],
            ),
            "bearbeitungszeit": (
                "Bearbeitungszeiten der im Zeitraum erledigten Vorgänge (Tage)",
                [
                    "Fachbereich",
                    "Erledigt",
                    "Durchlaufzeit Median",
                    "Durchlaufzeit p90",
                    "Bis Zuweisung Median",
                    "Bis Zuweisung p90",
                    "Frist eingehalten (%)",
                ],
                [
                    [
                        r["unit"],
                        r["closed"],
                        r["median_days"],
                        r["p90_days"],
                        r["assign_median_days"],
                        r["assign_p90_days"],
                        None if r["sla_share"] is None else round(r["sla_share"] * 100, 1),
                    ]
                    for r in self.processing
                ],
            ),
            "personal": (
                f"Erledigungen je Beschäftigtem und Woche (nur Gruppen ab {MIN_GROUP_SIZE} Personen)",
                ["Fachbereich", "Beschäftigte", "Erledigt", "je Person und Woche"],
                [[r["unit"], r["members"], r["closed"], r["per_person_week"]] for r in self.staff],
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": {
                "from": self.period.start.isoformat(),
                "to": self.period.end.isoformat(),
                "bucket": self.period.bucket,
            },
            "departments": self.selected_units,
            "received": self.received,
            "closed": self.closed,
            "buckets": [b.isoformat() for b in self.period.buckets()],
            "volume_total": self.volume_total,
            "volume_by_department": self.volume,
            "backlog": self.backlog,
            "by_channel": dict(self.by_channel),
            "by_service": dict(self.by_service),
            "backlog_by_department": self.backlog_by_unit,
            "processing": self.processing,
            "sla": self.sla,
            "staff_groups": self.staff,
            "min_group_size": MIN_GROUP_SIZE,
        }


def _local_day(moment: dt.datetime) -> dt.date:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(LOCAL).date()


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


def _days(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 86400


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def compute(
    session: Session,
    *,
    tenant_id: int,
    period: Period,
    allowed_units: set[int] | None,
    selected_units: Iterable[int] | None = None,
    now: dt.datetime | None = None,
    top: int = 6,
) -> Dashboard:
    """The dashboard of ``period`` for the departments in ``allowed_units`` (None: all),
    narrowed to ``selected_units`` (with their sub-units) where given."""
    now = now or dt.datetime.now(dt.UTC)
    units = {
        u.id: u.name for u in session.scalars(select(OrgUnit).where(OrgUnit.tenant_id == tenant_id))
    }
    scope: set[int] | None = allowed_units
    chosen = sorted(set(selected_units or ()))
    if chosen:
        unknown = [u for u in chosen if u not in units]
        if unknown:
            raise RathausError("Unbekannter Fachbereich in der Auswahl.")
        subtree = unit_subtree_ids(session, tenant_id, set(chosen))
        scope = subtree if scope is None else scope & subtree
    start = dt.datetime.combine(period.start, dt.time(), LOCAL).astimezone(dt.UTC)
    end = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), LOCAL).astimezone(
        dt.UTC
    )
    query = select(
        Case.id,
        Case.received_at,
        Case.closed_at,
        Case.due_at,
        Case.status,
        Case.org_unit_id,
        Case.service_id,
        Case.channel,
    ).where(
        Case.tenant_id == tenant_id,
        Case.received_at < max(end, now),
        or_(Case.closed_at.is_(None), Case.closed_at >= start),
    )
    if scope is not None:
        query = query.where(Case.org_unit_id.in_(scope or {-1}))
    rows = session.execute(query).all()
    services = dict(
        session.execute(
            select(Service.id, Service.name).where(Service.tenant_id == tenant_id)
        ).all()
    )
    result = Dashboard(period=period, unit_names=units, selected_units=chosen or None)
    buckets = period.buckets()
    index = {b: i for i, b in enumerate(buckets)}

    # -- incoming volume ---------------------------------------------------------------------
    in_period = [r for r in rows if start <= _aware(r.received_at) < end]
    result.received = len(in_period)
    unit_counts = Counter(units.get(r.org_unit_id, NO_UNIT) for r in in_period)
    shown = [name for name, _ in unit_counts.most_common(top)]
    per_series: dict[str, list[int]] = {name: [0] * len(buckets) for name in shown}
    total = [0] * len(buckets)
    for r in in_period:
        i = index[period.bucket_of(_local_day(r.received_at))]
        total[i] += 1
        name = units.get(r.org_unit_id, NO_UNIT)
        if name in per_series:
            per_series[name][i] += 1
    if len(unit_counts) > top:
        per_series["übrige"] = [
            t - sum(series[i] for series in per_series.values()) for i, t in enumerate(total)
        ]
    result.volume, result.volume_total = per_series, total
    result.by_channel = [
        (CHANNEL_LABELS.get(c, c), n)
        for c, n in Counter(r.channel for r in in_period).most_common()
    ]
    result.by_service = [
        (services.get(s, "ohne Leistung"), n)
        for s, n in Counter(r.service_id for r in in_period).most_common(15)
    ]

    # -- backlog at each bucket end and today --------------------------------------------------
    for b in buckets:
        cut = dt.datetime.combine(period.bucket_end(b) + dt.timedelta(days=1), dt.time(), LOCAL)
        result.backlog.append(
            sum(
                1
                for r in rows
                if _aware(r.received_at) < cut
                and (r.closed_at is None or _aware(r.closed_at) >= cut)
                and r.status is not CaseStatus.ARCHIVIERT
            )
        )
    open_by_unit: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        if r.status in OPEN:
            open_by_unit[units.get(r.org_unit_id, NO_UNIT)].append(r)
    result.backlog_by_unit = sorted(
        (
            {
                "unit": name,
                "open": len(items),
                "overdue": sum(1 for r in items if r.due_at is not None and _aware(r.due_at) < now),
                "age_median_days": _r(
                    quantile([_days(now - _aware(r.received_at)) for r in items], 0.5)
                ),
            }
            for name, items in open_by_unit.items()
        ),
        key=lambda row: -row["open"],
    )

    # -- processing times from the event log ---------------------------------------------------
    ids = [r.id for r in rows]
    done_at: dict[int, dt.datetime] = {}
    assigned_at: dict[int, dt.datetime] = {}
    created_at: dict[int, dt.datetime] = {}
    for chunk in range(0, len(ids), 5000):
        part = ids[chunk : chunk + 5000]
        for case_id, kind, to_status, at in session.execute(
            select(CaseEvent.case_id, CaseEvent.kind, CaseEvent.to_status, CaseEvent.created_at)
            .where(CaseEvent.tenant_id == tenant_id, CaseEvent.case_id.in_(part))
            .order_by(CaseEvent.created_at, CaseEvent.id)
        ):
            at = _aware(at)
            if kind == "created":
                created_at.setdefault(case_id, at)
            if to_status == CaseStatus.ZUGEWIESEN.value:
                assigned_at.setdefault(case_id, at)
            if to_status == CaseStatus.ERLEDIGT.value:
                done_at[case_id] = at  # the last completion counts (a reopened case)
    closed_rows = [r for r in rows if r.id in done_at and start <= done_at[r.id] < end]
    result.closed = len(closed_rows)
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in closed_rows:
        groups[units.get(r.org_unit_id, NO_UNIT)].append(r)
    groups_all = {"Alle Fachbereiche": closed_rows, **dict(sorted(groups.items()))}
    for name, items in groups_all.items():
        lead = [_days(done_at[r.id] - created_at.get(r.id, _aware(r.received_at))) for r in items]
        to_assign = [
            _days(assigned_at[r.id] - created_at.get(r.id, _aware(r.received_at)))
            for r in items
            if r.id in assigned_at
        ]
        with_due = [r for r in items if r.due_at is not None]
        kept = sum(1 for r in with_due if done_at[r.id] <= _aware(r.due_at))
        result.processing.append(
            {
                "unit": name,
                "closed": len(items),
                "median_days": _r(quantile(lead, 0.5)),
                "p90_days": _r(quantile(lead, 0.9)),
                "assign_median_days": _r(quantile(to_assign, 0.5)),
                "assign_p90_days": _r(quantile(to_assign, 0.9)),
                "sla_share": round(kept / len(with_due), 3) if with_due else None,
            }
        )
    overall = result.processing[0]
    open_rows = [r for r in rows if r.status in OPEN]
    result.sla = {
        "share_kept": overall["sla_share"],
        "closed_with_deadline": sum(1 for r in closed_rows if r.due_at is not None),
        "open_overdue": sum(
            1 for r in open_rows if r.due_at is not None and _aware(r.due_at) < now
        ),
        "open": len(open_rows),
    }

    # -- staff: only aggregates over groups of at least MIN_GROUP_SIZE people ------------------
    members = dict(
        session.execute(
            select(Membership.org_unit_id, func.count(Membership.user_id))
            .join(User, User.id == Membership.user_id)
            .where(User.tenant_id == tenant_id, User.is_active.is_(True))
            .group_by(Membership.org_unit_id)
        ).all()
    )
    weeks = ((period.end - period.start).days + 1) / 7
    for unit_id, name in sorted(units.items(), key=lambda item: item[1]):
        if scope is not None and unit_id not in scope:
            continue
        count = members.get(unit_id, 0)
        if count == 0:
            continue
        closed = sum(1 for r in closed_rows if r.org_unit_id == unit_id)
        row: dict[str, Any] = {
            "unit": name,
            "members": None,
            "closed": closed,
            "per_person_week": None,
        }
        if count >= MIN_GROUP_SIZE:
            row["members"] = count
            row["per_person_week"] = round(closed / count / weeks, 2)
        else:
            row["members"] = f"unter {MIN_GROUP_SIZE}"
        result.staff.append(row)
    return result
