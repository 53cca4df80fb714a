"""Load the demo municipality Musterstadt: organisation, services, staff, inbox and case history.

The history is generated from ``historie.json`` with a fixed seed: the sequence of choices is the
same on every run, while all dates are placed relative to today, so the demo always looks current.
Everything is written in one transaction.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rathaus.core.cases import STATUS_LABELS, TRANSITIONS, add_working_days, is_working_day
from rathaus.core.db import Database
from rathaus.core.demo import read_demo_file
from rathaus.core.errors import RathausError
from rathaus.core.models import (
    Case,
    CaseEvent,
    CaseStatus,
    Membership,
    Message,
    OrgUnit,
    OrgUnitKind,
    Service,
    Tenant,
    User,
    UserRole,
    utcnow,
)
from rathaus.core.roles import Role

SLUG = "musterstadt"
SEED = 2026
LOCAL = ZoneInfo("Europe/Berlin")
# Office hours for the timestamps of staff actions (local time).
OFFICE_START = dt.time(7, 30)
OFFICE_END = dt.time(16, 0)
REROUTE_SHARE = 0.07
AUTO_ROUTED_SHARE = 0.55
# Recent cases that stall (staff shortage, missing replies): the demo's overdue backlog.
STALL_WINDOW_DAYS = 150
STALL_SHARE = 0.35
ONLINE_CHANNELS = ("email", "formular", "open311")
S = CaseStatus


@dataclass(frozen=True)
class DemoSummary:
    """What the loader wrote (or found, when Musterstadt was already there)."""

    org_units: int
    services: int
    users: int
    incoming: int
    historical: int
    already_loaded: bool = False

    def __str__(self) -> str:
        counts = (
            f"{self.org_units} Organisationseinheiten, {self.services} Leistungen, "
            f"{self.users} Personen, {self.incoming} Eingänge, "
            f"{self.historical} historische Vorgänge"
        )
        if self.already_loaded:
            return f"Musterstadt ist bereits geladen ({counts}); nichts geändert."
        return f"Musterstadt geladen: {counts}."


def load_demo(
    db: Database,
    *,
    if_empty: bool = False,
    password_hasher: Callable[[str], str],
    now: dt.datetime | None = None,
) -> DemoSummary:
    """Create Musterstadt with its staff, 60 incoming items and about 400 historical cases.

    If the tenant ``musterstadt`` exists, nothing changes: with ``if_empty`` the summary says so,
    otherwise :class:`RathausError` is raised. ``now`` (default: the current time) anchors all dates.
    """
    now = (now or utcnow()).astimezone(dt.UTC)
    base = read_demo_file("musterstadt.json")
    history = read_demo_file("historie.json")
    incoming = read_demo_file("eingaenge.json")["items"]
    with db.session() as session:
        existing = session.scalar(select(Tenant).where(Tenant.slug == SLUG))
        if existing is not None:
            if if_empty:
                return _existing_summary(session, existing)
            raise RathausError(
                "Die Demo-Kommune Musterstadt ist bereits geladen. `rathaus demo --if-empty` lässt "
                "sie unverändert; für einen Neuanfang die Datenbank leeren "
                "(`rathaus db downgrade base`, dann `rathaus db upgrade`)."
            )
        org = _create_organisation(session, base, password_hasher)
        planned = _plan_history(history, org, now=now)
        planned += [_plan_incoming(item, now=now) for item in incoming]
        _add_cases(session, org, planned)
        return DemoSummary(
            org_units=len(org.units),
            services=len(org.services),
            users=len(org.users),
            incoming=len(incoming),
            historical=len(planned) - len(incoming),
        )


def _existing_summary(session: Session, tenant: Tenant) -> DemoSummary:
    def count(model: type[Any]) -> int:
        return session.scalar(select(func.count()).where(model.tenant_id == tenant.id)) or 0

    fields = session.scalars(select(Case.fields).where(Case.tenant_id == tenant.id)).all()
    incoming = sum(1 for f in fields if f and "demo_id" in f)
    return DemoSummary(
        org_units=count(OrgUnit),
        services=count(Service),
        users=count(User),
        incoming=incoming,
        historical=len(fields) - incoming,
        already_loaded=True,
    )


# --- organisation ---------------------------------------------------------------------------


@dataclass
class _Org:
    tenant: Tenant
    prefix: str
    units: dict[str, OrgUnit]
    services: dict[str, Service]
    users: dict[str, User]
    case_worker: User
    triage_lead: User | None
    workers_by_unit: dict[str, list[User]] = field(default_factory=dict)

    def assignee_for(self, unit_code: str) -> User:
        """A case worker of the unit, else the demo case worker."""
        return (self.workers_by_unit.get(unit_code) or [self.case_worker])[0]


def _create_organisation(
    session: Session, base: dict[str, Any], password_hasher: Callable[[str], str]
) -> _Org:
    tenant_data = dict(base["tenant"])
    tenant = Tenant(**tenant_data)
    prefix = tenant.reference_prefix
    session.add(tenant)
    session.flush()

    units: dict[str, OrgUnit] = {}
    for row in base["org_units"]:
        parent = row.get("parent")
        if parent is not None and parent not in units:
            raise RathausError(
                f"musterstadt.json: Die Einheit {row['code']} nennt die übergeordnete Einheit "
                f"{parent}, die vorher aufgeführt sein muss."
            )
        units[row["code"]] = OrgUnit(
            tenant_id=tenant.id,
            parent=units[parent] if parent else None,
            kind=OrgUnitKind(row["kind"]),
            auto_route_enabled=bool(row.get("auto_route", False)),
            **{
                k: row.get(k, "")
                for k in ("code", "name", "description", "email", "phone", "room", "opening_hours")
            },
        )
    services = {
        row["code"]: Service(
            tenant_id=tenant.id,
            org_unit=units[row["org_unit"]] if row.get("org_unit") else None,
            code=row["code"],
            name=row["name"],
            leika_key=row.get("leika_key"),
            sla_working_days=row.get("sla_working_days", 10),
            open311_enabled=bool(row.get("open311", False)),
            **{
                k: row.get(k, "")
                for k in (
                    "description",
                    "keywords",
                    "fees",
                    "required_documents",
                    "online_url",
                    "reply_template",
                )
            },
        )
        for row in base["services"]
    }
    users: dict[str, User] = {}
    for row in base["users"]:
        user = User(
            tenant_id=tenant.id,
            username=row["username"],
            display_name=row.get("display_name", ""),
            email=row.get("email", ""),
            password_hash=password_hasher(row["password"]),
        )
        user.role_rows = [UserRole(role=role) for role in row["roles"]]
        user.memberships = [Membership(org_unit=units[code]) for code in row["org_units"]]
        users[row["username"]] = user
    session.add_all([*units.values(), *services.values(), *users.values()])
    session.flush()

    def with_role(role: Role) -> list[User]:
        return [u for u in users.values() if role in u.roles]

    workers = with_role(Role.SACHBEARBEITUNG)
    if not workers:
        raise RathausError("musterstadt.json: Es fehlt eine Person mit der Rolle Sachbearbeitung.")
    code_by_id = {unit.id: code for code, unit in units.items()}
    workers_by_unit: dict[str, list[User]] = {}
    for user in workers:
        for membership in user.memberships:
            workers_by_unit.setdefault(code_by_id[membership.org_unit_id], []).append(user)
    leads = with_role(Role.LEITUNG)
    return _Org(
        tenant=tenant,
        prefix=prefix,
        units=units,
        services=services,
        users=users,
        case_worker=workers[0],
        triage_lead=leads[0] if leads else None,
        workers_by_unit=workers_by_unit,
    )


# --- planning ---------------------------------------------------------------------------------


@dataclass
class _Step:
    at: dt.datetime  # local time
    to: CaseStatus
    actor: User | None
    unit: str | None = None  # the unit the case is assigned to by this step
    reason: str = ""


@dataclass
class _Planned:
    received: dt.datetime  # local time
    subject: str
    body: str
    channel: str
    sender_name: str
    sender_contact: str
    service: str | None
    request_type: str | None
    urgency: str
    fields: dict[str, Any]
    created_by: User | None = None
    steps: list[_Step] = field(default_factory=list)


def _plan_incoming(item: dict[str, Any], *, now: dt.datetime) -> _Planned:
    received = (now - dt.timedelta(hours=float(item["received_hours_ago"]))).astimezone(LOCAL)
    return _Planned(
        received=received,
        subject=item["subject"],
        body=item["body"],
        channel=item["channel"],
        sender_name=item.get("sender_name", ""),
        sender_contact=item.get("sender_contact", ""),
        service=None,
        request_type=None,
        urgency="normal",
        fields={
            "demo_expected": item["expected"],
            "demo_id": item["id"],
            "language": item.get("language", "de"),
        },
    )


def _plan_history(history: dict[str, Any], org: _Org, *, now: dt.datetime) -> list[_Planned]:
    """The historical cases: who wrote what when, and every status change up to ``now``."""
    rng = random.Random(SEED)
    land = org.tenant.land
    today = now.astimezone(LOCAL).date()
    months = int(history.get("monate", 24))
    days = [today - dt.timedelta(days=n) for n in range(round(months * 365.25 / 12), 0, -1)]
    weekday = history["wochentage"]
    day_weight = [
        weekday[d.weekday()] if is_working_day(d, land) or d.weekday() >= 5 else weekday[6]
        for d in days
    ]
    templates = history["leistungen"]
    codes = [code for code in org.services if code in templates]
    missing = sorted(set(templates) - set(codes))
    if missing:
        raise RathausError(f"historie.json: Unbekannte Leistungen {', '.join(missing)}.")
    cum_days = {
        code: list(
            accumulate(
                w * templates[code].get("saison", [1.0] * 12)[d.month - 1]
                for w, d in zip(day_weight, days, strict=True)
            )
        )
        for code in codes
    }
    service_weights = [templates[code]["gewicht"] for code in codes]
    slots = history["platzhalter"]
    cutoff = now.astimezone(LOCAL)
    planned = []
    for _ in range(int(history["anzahl"])):
        code = rng.choices(codes, weights=service_weights)[0]
        template = templates[code]
        day = rng.choices(days, cum_weights=cum_days[code])[0]
        channels = history["kanaele"][template["art"]]
        if not is_working_day(day, land):
            channels = {k: v for k, v in channels.items() if k in ONLINE_CHANNELS} or channels
        channel = rng.choices(list(channels), weights=list(channels.values()))[0]
        received = _receipt_time(rng, day, channel)
        variant = rng.choice(template["varianten"])
        values = _SlotValues(rng, slots, received.date())
        case = _Planned(
            received=received,
            subject=variant["betreff"].format_map(values),
            body=variant["text"].format_map(values),
            channel=channel,
            sender_name=values["name"],
            sender_contact=_contact(rng, values, channel),
            service=code,
            request_type=template["art"],
            urgency="hoch" if rng.random() < template.get("eilig", 0.05) else "normal",
            fields={"demo_historie": True},
            created_by=None if channel in ONLINE_CHANNELS else org.case_worker,
        )
        case.steps = _plan_steps(rng, org, case, template, today=today)
        case.steps = [s for s in case.steps if s.at <= cutoff]
        planned.append(case)
    return planned


def _plan_steps(
    rng: random.Random, org: _Org, case: _Planned, template: dict[str, Any], *, today: dt.date
) -> list[_Step]:
    """neu → zugewiesen → in_bearbeitung → (wartet → in_bearbeitung) → erledigt, sometimes with a
    detour through a wrong unit, sometimes stalled before the end."""
    land = org.tenant.land
    service = org.services[case.service or ""]
    unit = service.org_unit.code if service.org_unit else next(iter(org.units))
    worker = org.assignee_for(unit)
    lead = org.triage_lead
    steps: list[_Step] = []

    if rng.random() < AUTO_ROUTED_SHARE or lead is None:
        t = case.received + dt.timedelta(minutes=rng.uniform(2, 25))
        router: User | None = None
    else:
        t = _office_after(case.received, rng.uniform(0.3, 10), land)
        router = lead
    wrong = _wrong_unit(rng, org, unit, template)
    if wrong is not None and rng.random() < REROUTE_SHARE:
        steps.append(_Step(t, S.ZUGEWIESEN, router, wrong))
        t = _office_after(t, rng.uniform(1, 20), land)
        reason = "Nicht zuständig – zurück an die Verteilung"
        steps.append(_Step(t, S.TRIAGE, org.assignee_for(wrong), reason=reason))
        t = _office_after(t, rng.uniform(0.5, 8), land)
        steps.append(_Step(t, S.ZUGEWIESEN, lead, unit))
    else:
        steps.append(_Step(t, S.ZUGEWIESEN, router, unit))

    sla = service.sla_working_days
    t = _office_after(t, rng.uniform(0.5, min(3.0, sla) * 8), land)
    steps.append(_Step(t, S.IN_BEARBEITUNG, worker))
    # Working hours until done: most within the SLA, a tail beyond it.
    remaining = max(0.5, sla * 8 * rng.lognormvariate(-1.1, 0.55))
    if rng.random() < template.get("nachforderung", 0.15):
        first = remaining * rng.uniform(0.1, 0.5)
        t = _office_after(t, first, land)
        steps.append(_Step(t, S.WARTET, worker, reason="Unterlagen nachgefordert"))
        t = _office_start_on_or_after(t + dt.timedelta(days=rng.uniform(2, 10)), land, rng)
        steps.append(_Step(t, S.IN_BEARBEITUNG, worker, reason="Unterlagen eingegangen"))
        remaining -= first
    t = _office_after(t, max(0.25, remaining), land)
    steps.append(_Step(t, S.ERLEDIGT, worker))

    # A stalled case stops after its first assignment at the earliest, never while still "neu".
    stall, cut = rng.random() < STALL_SHARE, rng.randint(max(1, len(steps) - 3), len(steps) - 1)
    if stall and (today - case.received.date()).days <= STALL_WINDOW_DAYS:
        del steps[cut:]
    return steps


def _wrong_unit(rng: random.Random, org: _Org, unit: str, template: dict[str, Any]) -> str | None:
    candidates = [c for c in template.get("verwechslung", []) if c in org.units and c != unit]
    if not candidates:
        parent = org.units[unit].parent
        candidates = [
            code
            for code, u in org.units.items()
            if parent is not None and u.parent is parent and code != unit
        ]
    return rng.choice(candidates) if candidates else None


# --- time -------------------------------------------------------------------------------------


def _receipt_time(rng: random.Random, day: dt.date, channel: str) -> dt.datetime:
    if channel in ONLINE_CHANNELS:
        hour = (
            rng.uniform(7, 18)
            if rng.random() < 0.7
            else rng.choice([rng.uniform(5, 7), rng.uniform(18, 23.9)])
        )
    elif channel == "brief":
        hour = rng.uniform(8, 10.5)  # the morning post
    else:
        hour = rng.uniform(8, 15.5)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=LOCAL)
    return start + dt.timedelta(seconds=int(hour * 3600))


def _office_open(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return (
        dt.datetime.combine(day, OFFICE_START, tzinfo=LOCAL),
        dt.datetime.combine(day, OFFICE_END, tzinfo=LOCAL),
    )


def _office_after(start: dt.datetime, hours: float, land: str) -> dt.datetime:
    """``start`` moved on by ``hours`` of office time (working days, 7:30–16:00)."""
    t = start
    remaining = dt.timedelta(hours=hours)
    while True:
        opens, closes = _office_open(t.date())
        if not is_working_day(t.date(), land) or t >= closes:
            t = _office_open(t.date() + dt.timedelta(days=1))[0]
            continue
        t = max(t, opens)
        if t + remaining <= closes:
            return t + remaining
        remaining -= closes - t
        t = closes


def _office_start_on_or_after(t: dt.datetime, land: str, rng: random.Random) -> dt.datetime:
    """A moment in the first office hours on or after ``t`` (a reply read in the morning)."""
    return _office_after(t, rng.uniform(0.1, 2.5), land)


# --- text -------------------------------------------------------------------------------------


class _SlotValues(dict[str, str]):
    """Slot values for one case, drawn on first use so subject and text agree."""

    def __init__(self, rng: random.Random, lists: dict[str, list[str]], day: dt.date) -> None:
        super().__init__()
        self.rng = rng
        self.lists = lists
        self.day = day

    def __missing__(self, key: str) -> str:
        self[key] = value = self._draw(key)
        return value

    def _draw(self, key: str) -> str:
        rng, day = self.rng, self.day
        if key in self.lists:
            return rng.choice(self.lists[key])
        if key == "name":
            return f"{self['vorname']} {self['nachname']}"
        if key == "hausnummer":
            number = str(rng.randint(1, 140))
            return number + (rng.choice("ab") if rng.random() < 0.1 else "")
        if key == "datum":
            return f"{day + dt.timedelta(days=rng.randint(5, 45)):%d.%m.%Y}"
        if key == "datum_vorher":
            return f"{day - dt.timedelta(days=rng.randint(1, 10)):%d.%m.%Y}"
        if key == "uhrzeit":
            return f"{rng.choice([21, 22, 23, 0, 1])}:{rng.choice(['00', '15', '30', '45'])} Uhr"
        if key == "betrag":
            euros = f"{rng.uniform(15, 2500):.2f}".replace(".", ",")
            whole, cents = euros.split(",")
            return f"{int(whole):,}".replace(",", ".") + f",{cents} €"
        if key == "nummer":
            return f"{day.year}-{rng.randint(1, 99999):06d}"
        if key == "kennzeichen":
            letters = "".join(rng.choice("ABCDEFGHKLMNPRSTUVWZ") for _ in range(rng.randint(1, 2)))
            return f"MS-{letters} {rng.randint(1, 9999)}"
        if key == "jahr":
            return str(day.year)
        if key == "iban":
            return german_iban(
                f"{rng.randint(10000000, 89999999)}{rng.randint(0, 10**10 - 1):010d}"
            )
        raise RathausError(f"historie.json: Unbekannter Platzhalter {{{key}}}.")


def german_iban(bban: str) -> str:
    """A German IBAN (grouped by four) with valid check digits for the 18-digit ``bban``."""
    check = 98 - int(f"{bban}131400") % 97  # "DE00" moved to the end, letters as numbers
    iban = f"DE{check:02d}{bban}"
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def _ascii(text: str) -> str:
    text = text.replace("ß", "ss").replace("ı", "i")
    for umlaut, plain in (("ä", "ae"), ("ö", "oe"), ("ü", "ue")):
        text = text.replace(umlaut, plain).replace(umlaut.upper(), plain.capitalize())
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isascii())


def _contact(rng: random.Random, values: _SlotValues, channel: str) -> str:
    if channel in ONLINE_CHANNELS:
        local = _ascii(f"{values['vorname']}.{values['nachname']}").lower()
        return f"{local}@{rng.choice(['example.org', 'example.net', 'example.com'])}"
    if channel == "telefon":
        return f"01234 {rng.randint(100000, 999999)}"
    return f"{values['strasse']} {values['hausnummer']}, 12345 Musterstadt"


# --- writing ----------------------------------------------------------------------------------


def _add_cases(session: Session, org: _Org, planned: Sequence[_Planned]) -> None:
    """Number the cases per year in order of receipt and add them with messages and events."""
    tenant_id = org.tenant.id
    numbers: dict[int, int] = {}
    utc = dt.UTC
    for case in sorted(planned, key=lambda c: c.received):
        year = case.received.year
        numbers[year] = numbers.get(year, 0) + 1
        received = case.received.astimezone(utc)
        events = [
            CaseEvent(
                tenant_id=tenant_id,
                kind="created",
                activity="Eingang erfasst",
                to_status=S.NEU.value,
                actor_id=case.created_by.id if case.created_by else None,
                actor_label=case.created_by.username if case.created_by else "system",
                data={"channel": case.channel},
                created_at=received,
            )
        ]
        status, unit, assignee = S.NEU, None, None
        closed_at = None
        for step in case.steps:
            if step.to not in TRANSITIONS[status]:  # pragma: no cover - a bug in the planner
                raise RathausError(f"Demo-Verlauf: {status} → {step.to} ist nicht erlaubt.")
            data: dict[str, Any] = {"reason": step.reason} if step.reason else {}
            if step.to is S.ZUGEWIESEN:
                unit = step.unit
                assignee = org.assignee_for(unit or "")
                data |= {"org_unit": unit, "assignee": assignee.username}
            elif step.to is S.TRIAGE:
                unit, assignee = None, None
            events.append(
                CaseEvent(
                    tenant_id=tenant_id,
                    kind="status",
                    activity=STATUS_LABELS[step.to],
                    from_status=status.value,
                    to_status=step.to.value,
                    actor_id=step.actor.id if step.actor else None,
                    actor_label=step.actor.username if step.actor else "system",
                    data=data,
                    created_at=step.at.astimezone(utc),
                )
            )
            status = step.to
            closed_at = step.at.astimezone(utc) if status is S.ERLEDIGT else None
        service = org.services[case.service] if case.service and unit else None
        sla_service = org.services.get(case.service or "")
        due_at = (
            add_working_days(
                case.received, sla_service.sla_working_days, org.tenant.land
            ).astimezone(utc)
            if sla_service is not None
            else None
        )
        session.add(
            Case(
                tenant_id=tenant_id,
                reference=f"{org.prefix}-{year}-{numbers[year]:06d}",
                subject=case.subject[:300],
                status=status,
                channel=case.channel,
                request_type=case.request_type,
                urgency=case.urgency,
                org_unit_id=org.units[unit].id if unit else None,
                service_id=service.id if service else None,
                assignee_id=assignee.id if assignee else None,
                sender_name=case.sender_name,
                sender_contact=case.sender_contact,
                fields=case.fields,
                received_at=received,
                due_at=due_at,
                closed_at=closed_at,
                created_at=received,
                updated_at=events[-1].created_at,
                messages=[
                    Message(
                        tenant_id=tenant_id,
                        direction="in",
                        channel=case.channel,
                        sender=_sender(case.sender_name, case.sender_contact),
                        recipient=org.tenant.email,
                        subject=case.subject[:300],
                        body=case.body,
                        created_at=received,
                    )
                ],
                events=events,
            )
        )
    session.flush()


def _sender(name: str, contact: str) -> str:
    if "@" in contact and " " not in contact.strip():
        return f"{name} <{contact}>" if name else contact
    return ", ".join(part for part in (name, contact) if part)
