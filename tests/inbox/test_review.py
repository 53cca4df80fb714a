"""People's decisions on triaged cases: routing in one action, replies, SLA clocks, queues."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from rathaus.core.db import Database
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import AiSuggestion, Case, CaseEvent, CaseStatus, Message
from rathaus.core.storage import OriginalStore
from rathaus.inbox import review
from rathaus.inbox.jobs import corrections_since_last_training
from rathaus.inbox.pipeline import TriageKit, ingest
from rathaus.inbox.service import IncomingItem
from tests.factories import build_tenant
from tests.inbox.history import build_history_world


@pytest.fixture
def kit(tmp_path: Path) -> TriageKit:
    # No embedder: these tests are about decisions, not about similarity.
    return TriageKit(store=OriginalStore(tmp_path / "o"), data_dir=tmp_path, secret_key="k" * 32)


def _item(text: str) -> IncomingItem:
    return IncomingItem("email", text.encode(), "mail.txt", "text/plain", body=text)


def test_accept_and_correct_are_recorded_next_to_the_suggestion(
    db: Database, kit: TriageKit
) -> None:
    with db.session() as session:
        world = build_history_world(session, per_service=0)
        admin, leitung = world.users["admin"], world.users["leitung"]
        first = ingest(
            session, tenant=world.tenant, item=_item("Laute Musik, Ruhestörung."), kit=kit
        ).case
        top = session.scalars(
            select(AiSuggestion).where(
                AiSuggestion.case_id == first.id, AiSuggestion.function == "routing"
            )
        ).one()
        top_unit = top.output["candidates"][0]["org_unit_id"]
        case, decision = review.decide_routing(session, leitung, first.id, org_unit_id=top_unit)
        assert decision == "angenommen"
        assert case.status == CaseStatus.ZUGEWIESEN and case.org_unit_id == top_unit
        assert (top.decision, top.decided_by_id) == ("angenommen", leitung.id)

        second = ingest(
            session, tenant=world.tenant, item=_item("Ich möchte ein Gewerbe anmelden."), kit=kit
        ).case
        other = world.units["BA"].id
        service = world.services["personalausweis"]  # type: ignore[attr-defined]
        case, decision = review.decide_routing(
            session, admin, second.id, org_unit_id=other, service_id=service.id, note="falsch"
        )
        assert decision == "korrigiert"
        assert case.service_id == service.id and case.due_at is not None
        event = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == second.id, CaseEvent.kind == "routed")
        ).one()
        assert event.data["how"] == "korrigiert" and event.actor_label == "admin"
        assert corrections_since_last_training(session, world.tenant.id) == 1
        # The untouched reply draft now signs for the chosen unit.
        draft = session.scalars(
            select(Message).where(Message.case_id == second.id, Message.direction == "out")
        ).one()
        assert draft.body.splitlines()[-2] == world.units["BA"].name  # signed by the new unit


def test_only_triage_roles_distribute_and_only_own_units(db: Database, kit: TriageKit) -> None:
    with db.session() as session:
        world = build_history_world(session, per_service=0)
        other = build_tenant(session, "beta")
        case = ingest(session, tenant=world.tenant, item=_item("Frage zum Ausweis?"), kit=kit).case
        with pytest.raises(NotFoundError):
            # A Sachbearbeitung user does not even see unassigned cases.
            review.decide_routing(
                session, world.users["sb"], case.id, org_unit_id=world.units["BA"].id
            )
        with pytest.raises(RathausError, match="gibt es in Ihrer Kommune nicht"):
            review.decide_routing(
                session, world.users["admin"], case.id, org_unit_id=other.units["BA"].id
            )
        with pytest.raises(NotFoundError):
            review.decide_routing(
                session, world.users["dsb"], case.id, org_unit_id=world.units["BA"].id
            )
        routed, _ = review.decide_routing(
            session, world.users["admin"], case.id, org_unit_id=world.units["BA"].id
        )
        # Once it is the Bürgeramt's, its Sachbearbeitung sees it and may hand it on.
        assert review.decide_routing(
            session, world.users["sb"], routed.id, org_unit_id=world.units["OA"].id
        )[1] in ("angenommen", "korrigiert")


def test_reply_is_edited_approved_and_then_frozen(db: Database, kit: TriageKit) -> None:
    with db.session() as session:
        world = build_history_world(session, per_service=0)
        case = ingest(
            session, tenant=world.tenant, item=_item("Wann ist mein Ausweis fertig?"), kit=kit
        ).case
        draft = session.scalars(
            select(Message).where(Message.case_id == case.id, Message.direction == "out")
        ).one()
        admin = world.users["admin"]
        review.save_reply(session, admin, case.id, draft.id, body=draft.body, approve=False)
        edited = draft.body + "\nIhr Ausweis liegt ab Montag zur Abholung bereit."
        review.save_reply(session, admin, case.id, draft.id, body=edited, approve=True)
        assert draft.status == "freigegeben" and draft.approved_by_id == admin.id
        suggestion = session.scalars(
            select(AiSuggestion).where(
                AiSuggestion.case_id == case.id, AiSuggestion.function == "reply"
            )
        ).one()
        assert suggestion.decision == "bearbeitet"
        assert any("Abholung" in line for line in suggestion.final["diff"])
        with pytest.raises(RathausError, match="bereits freigegeben"):
            review.save_reply(session, admin, case.id, draft.id, body="neu", approve=True)
        with pytest.raises(RathausError, match="leere Antwort"):
            other = ingest(
                session, tenant=world.tenant, item=_item("Noch eine Frage?"), kit=kit
            ).case
            message = session.scalars(
                select(Message).where(Message.case_id == other.id, Message.direction == "out")
            ).one()
            review.save_reply(session, admin, other.id, message.id, body="  ", approve=True)


def test_sla_clock_counts_working_days_with_holidays() -> None:
    case = Case(due_at=dt.datetime(2026, 12, 28, 12, tzinfo=dt.UTC))
    # 21.12. (Mon) → 28.12.: 22, 23, 24, 28 are working days; 25./26.12. holidays in BW.
    clock = review.sla_clock(case, "BW", now=dt.datetime(2026, 12, 21, 9, tzinfo=dt.UTC))
    assert (clock.days_left, clock.state) == (4, "ok")
    late = review.sla_clock(case, "BW", now=dt.datetime(2026, 12, 30, 9, tzinfo=dt.UTC))
    assert late.state == "ueberfaellig" and "überfällig" in late.label
    today = review.sla_clock(case, "BW", now=dt.datetime(2026, 12, 28, 7, tzinfo=dt.UTC))
    assert today.label == "heute fällig"
    assert review.sla_clock(Case(), "BW").state == "ohne"


def test_queue_puts_urgent_first_and_counts(db: Database, kit: TriageKit) -> None:
    with db.session() as session:
        world = build_history_world(session, per_service=0)
        calm = ingest(session, tenant=world.tenant, item=_item("Frage zum Ausweis?"), kit=kit)
        danger = ingest(
            session,
            tenant=world.tenant,
            item=_item("Ein Baum liegt auf der Fahrbahn, akute Gefahr!"),
            kit=kit,
        )
        rows = review.queue(session, world.users["admin"], triage_only=True)
        assert rows[0].id == danger.case.id and calm.case.id in [r.id for r in rows]
        counts = review.queue_counts(session, world.users["admin"])
        assert counts["triage"] >= 2
        assert review.queue(session, world.users["admin"], urgency="kritisch")[0].id == (
            danger.case.id
        )
