"""Kennzahlen from cases and their event log: volumes, backlog, processing times, SLA, and the
works-council rule for staff figures."""

from __future__ import annotations

import datetime as dt

import pytest

from rathaus.core.db import Database
from rathaus.core.errors import RathausError
from rathaus.core.models import Case, CaseEvent, CaseStatus, Membership, User
from rathaus.insights.dashboard import Period, compute, quantile, visible_unit_ids
from tests.factories import World, build_tenant

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def _case(
    session,
    world: World,
    n: int,
    unit: str | None,
    received: dt.datetime,  # type: ignore[no-untyped-def]
    *,
    done_after_days: float | None = None,
    due_days: int | None = None,
    channel: str = "email",
) -> Case:
    case = Case(
        tenant_id=world.tenant.id,
        reference=f"T-2026-{n:06d}",
        subject=f"Fall {n}",
        status=CaseStatus.ERLEDIGT if done_after_days is not None else CaseStatus.ZUGEWIESEN,
        org_unit_id=world.units[unit].id if unit else None,
        channel=channel,
        received_at=received,
        due_at=received + dt.timedelta(days=due_days) if due_days is not None else None,
    )
    session.add(case)
    session.flush()
    events = [
        CaseEvent(
            tenant_id=world.tenant.id,
            case_id=case.id,
            kind="created",
            activity="Eingang erfasst",
            to_status="neu",
            created_at=received,
        ),
        CaseEvent(
            tenant_id=world.tenant.id,
            case_id=case.id,
            kind="status",
            activity="Zugewiesen",
            from_status="neu",
            to_status="zugewiesen",
            created_at=received + dt.timedelta(hours=12),
        ),
    ]
    if done_after_days is not None:
        done = received + dt.timedelta(days=done_after_days)
        case.closed_at = done
        events.append(
            CaseEvent(
                tenant_id=world.tenant.id,
                case_id=case.id,
                kind="status",
                activity="Erledigt",
                from_status="in_bearbeitung",
                to_status="erledigt",
                created_at=done,
            )
        )
    session.add_all(events)
    return case


@pytest.fixture
def world(db: Database) -> World:
    with db.session() as session:
        w = build_tenant(session, "alpha")
        # Three cases in the Bürgeramt closed after 2, 4 and 10 days (deadline 5 days),
        # two open ones in Gewerbe (one overdue), one outside the period.
        _case(session, w, 11, "BA", T0, done_after_days=2, due_days=5)
        _case(session, w, 12, "BA", T0 + dt.timedelta(days=1), done_after_days=4, due_days=5)
        _case(
            session,
            w,
            13,
            "BA",
            T0 + dt.timedelta(days=7),
            done_after_days=10,
            due_days=5,
            channel="open311",
        )
        _case(session, w, 14, "OA-GW", T0 + dt.timedelta(days=8), due_days=3)
        _case(session, w, 15, "OA-GW", T0 + dt.timedelta(days=9), due_days=60)
        _case(session, w, 16, "BA", T0 - dt.timedelta(days=60), done_after_days=1)
        # Five more people in the Ordnungsamt: a group large enough for per-person figures.
        for i in range(5):
            u = User(tenant_id=w.tenant.id, username=f"oa{i}", password_hash="x")
            u.memberships = [Membership(org_unit_id=w.units["OA"].id)]
            session.add(u)
        build_tenant(session, "beta")  # another tenant's cases never count
        return w


PERIOD = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 29), "woche")
NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def test_volume_backlog_processing_and_sla(db: Database, world: World) -> None:
    with db.session() as session:
        d = compute(session, tenant_id=world.tenant.id, period=PERIOD, allowed_units=None, now=NOW)
    assert d.received == 5 and d.closed == 3
    assert d.volume_total == [2, 3, 0, 0]
    assert d.volume["Bürgeramt"] == [2, 1, 0, 0] and d.volume["Gewerbe"] == [0, 2, 0, 0]
    assert dict(d.by_channel) == {"E-Mail": 4, "Open311": 1}
    # open at the end of each week: week 1 ends with case 12 still open (done on 7 March)?
    # case 11 done 4 March, case 12 done 7 March 9:00 → both closed before Monday 9 March.
    assert d.backlog == [0, 3, 2, 2]
    overall = d.processing[0]
    assert overall["closed"] == 3
    assert overall["median_days"] == 4.0 and overall["p90_days"] == 8.8
    assert overall["assign_median_days"] == 0.5
    assert overall["sla_share"] == round(2 / 3, 3)
    assert d.sla["open"] == 2 and d.sla["open_overdue"] == 1
    gewerbe = next(r for r in d.backlog_by_unit if r["unit"] == "Gewerbe")
    assert gewerbe["open"] == 2 and gewerbe["overdue"] == 1


def test_staff_figures_only_for_groups_of_five(db: Database, world: World) -> None:
    with db.session() as session:
        d = compute(session, tenant_id=world.tenant.id, period=PERIOD, allowed_units=None, now=NOW)
    staff = {r["unit"]: r for r in d.staff}
    assert staff["Bürgeramt"]["members"] == "unter 5"
    assert staff["Bürgeramt"]["per_person_week"] is None
    assert staff["Ordnungsamt"]["members"] == 6 and staff["Ordnungsamt"]["per_person_week"] == 0
    assert "username" not in str(d.to_dict()) and "sb" not in staff


def test_department_head_sees_only_own_subtree(db: Database, world: World) -> None:
    with db.session() as session:
        leitung = session.get(User, world.users["leitung"].id)
        allowed = visible_unit_ids(session, leitung)
        assert allowed == {world.units["OA"].id, world.units["OA-GW"].id}
        assert visible_unit_ids(session, session.get(User, world.users["admin"].id)) is None
        d = compute(
            session, tenant_id=world.tenant.id, period=PERIOD, allowed_units=allowed, now=NOW
        )
    assert d.received == 2 and "Bürgeramt" not in d.volume


def test_filter_by_department_and_month_buckets(db: Database, world: World) -> None:
    period = Period(dt.date(2026, 1, 1), dt.date(2026, 3, 31), "monat")
    with db.session() as session:
        d = compute(
            session,
            tenant_id=world.tenant.id,
            period=period,
            allowed_units=None,
            selected_units=[world.units["BA"].id],
            now=NOW,
        )
    assert d.labels == ["01/2026", "02/2026", "03/2026"]
    assert d.volume_total == [1, 0, 3]
    tables = d.tables()
    assert tables["eingang"][2][0][:3] == ["01/2026", "2026-01-01", 1]


def test_period_parsing_errors_are_german() -> None:
    assert Period.parse("01.03.2026", "2026-03-31", "tag").start == dt.date(2026, 3, 1)
    with pytest.raises(RathausError, match="„von“ liegt nach „bis“"):
        Period.parse("2026-04-01", "2026-03-01", None)
    with pytest.raises(RathausError, match="kein Datum"):
        Period.parse("gestern", None, None)
    with pytest.raises(RathausError, match="Einteilung"):
        Period.parse(None, None, "jahr")


def test_quantile_matches_numpy_definition() -> None:
    import numpy as np

    values = [3.0, 1.0, 7.5, 2.0, 10.0]
    for q in (0.0, 0.5, 0.9, 1.0):
        assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)))
    assert quantile([], 0.5) is None
