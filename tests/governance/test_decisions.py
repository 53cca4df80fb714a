"""The decision record on SQLite and PostgreSQL: suggestions next to human decisions, the
audit event without content, and the places that record (replies, assistant, bookings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from rathaus.core import audit
from rathaus.core.db import Database
from rathaus.core.errors import RathausError
from rathaus.core.models import (
    AiSuggestion,
    AuditEvent,
    BookingFlag,
    InsightDataset,
    Message,
    Tenant,
    User,
)
from rathaus.governance import decisions
from rathaus.inbox import review
from rathaus.insights import bookings
from rathaus.insights.booking_checks import CheckConfig
from tests.assistant.test_service import _ask, embedder, kit  # noqa: F401 - fixtures
from tests.assistant.test_service import world as assistant_world  # noqa: F401
from tests.factories import build_tenant
from tests.insights.test_booking_import import GERMAN, _import

# a duplicate and a payment booked on a Sunday
PAYMENTS = GERMAN + "Firma Sonntag;300,00;03.01.2016;B-3;Büro\n"

SECRET_TEXT = "Erika Mustermann, IBAN DE89370400440532013000"


def _user(session, tenant_id: int, username: str) -> User:  # type: ignore[no-untyped-def]
    return session.scalar(
        select(User).where(User.tenant_id == tenant_id, User.username == username)
    )


def test_decide_keeps_diff_who_when_and_an_audit_event_without_content(db: Database) -> None:
    with db.session() as session:
        world = build_tenant(session, "alpha")
        tenant_id, case_id = world.tenant.id, world.cases["BA"].id
        suggestion = decisions.suggest(
            session,
            tenant_id=tenant_id,
            case_id=case_id,
            function="reply",
            backend="vorlage",
            input_sha256=decisions.sha256_text(SECRET_TEXT),
            output={"text": f"Sehr geehrte Frau Mustermann,\n{SECRET_TEXT}\nGruß"},
        )
        session.flush()
        assert suggestion.decision is None and suggestion.decided_at is None
        sb = _user(session, tenant_id, "sb")
        decisions.decide(
            session,
            suggestion,
            decision="bearbeitet",
            user=sb,
            original_text=suggestion.output["text"],
            edited_text="Sehr geehrte Frau Mustermann,\nIhr Antrag ist da.\nGruß",
        )
        suggestion_id = suggestion.id
    with db.session() as session:
        stored = session.get(AiSuggestion, suggestion_id)
        assert (stored.decision, stored.decided_by_id) == ("bearbeitet", sb.id)
        assert stored.decided_at is not None
        assert "-" + SECRET_TEXT in stored.final["diff"]
        assert "+Ihr Antrag ist da." in stored.final["diff"]
        event = session.scalar(select(AuditEvent).where(AuditEvent.kind == "ki_entscheidung"))
        assert (event.actor, event.subject) == ("sb", f"ai_suggestion:{suggestion_id}")
        assert event.data["decision"] == "bearbeitet" and event.data["changed_lines"] == 2
        assert "Mustermann" not in str(event.data) and "DE89" not in str(event.data)
        assert audit.verify(session, tenant_id).ok
        # listing and rates
        rows, total = decisions.list_rows(session, tenant_id=tenant_id)
        assert total == 1 and rows[0].decided_by in (sb.display_name, sb.username)
        assert rows[0].case_reference == world.cases["BA"].reference
        (rate,) = decisions.rates(session, tenant_id=tenant_id)
        assert (rate.function, rate.human, rate.acceptance, rate.acceptance_with_edits) == (
            "reply",
            1,
            0.0,
            1.0,
        )


def test_wrong_decisions_are_refused(db: Database) -> None:
    with db.session() as session:
        alpha = build_tenant(session, "alpha")
        beta = build_tenant(session, "beta")
        suggestion = decisions.suggest(
            session, tenant_id=alpha.tenant.id, function="routing", backend="regeln", output={}
        )
        with pytest.raises(RathausError, match="Unbekannte Entscheidung „vielleicht“"):
            decisions.decide(session, suggestion, decision="vielleicht", user=None)
        with pytest.raises(RathausError, match="nicht zu Ihrer Kommune"):
            decisions.decide(session, suggestion, decision="angenommen", user=beta.users["admin"])
        with pytest.raises(ValueError):
            decisions.suggest(
                session, tenant_id=alpha.tenant.id, function="x", backend="y", output={},
                decision="angenommen",
            )  # fmt: skip
        assert suggestion.decision is None


def test_reply_release_goes_through_the_record(db: Database) -> None:
    """save_reply (inbox) decides the reply suggestion through the decision record."""
    with db.session() as session:
        world = build_tenant(session, "alpha")
        case = world.cases["BA"]
        draft = Message(
            tenant_id=world.tenant.id, case_id=case.id, direction="out", body="Entwurf",
            status="entwurf",
        )  # fmt: skip
        session.add(draft)
        decisions.suggest(
            session, tenant_id=world.tenant.id, case_id=case.id, function="reply",
            backend="vorlage", output={"text": "Entwurf"},
        )  # fmt: skip
        session.flush()
        review.save_reply(
            session, world.users["sb"], case.id, draft.id, body="Entwurf", approve=True
        )
        tenant_id = world.tenant.id
    with db.session() as session:
        suggestion = session.scalar(select(AiSuggestion).where(AiSuggestion.function == "reply"))
        assert suggestion.decision == "angenommen" and suggestion.final["diff"] == []
        kinds = session.scalars(
            select(AuditEvent.kind).where(AuditEvent.tenant_id == tenant_id)
        ).all()
        assert kinds == ["ki_entscheidung"]


def test_assistant_answers_are_recorded_as_automatic(db, assistant_world, kit) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with db.session() as session:
        _c, turn, answer = _ask(
            session, assistant_world["alpha"], kit,
            "Was kostet ein Personalausweis? Ich bin Erika Mustermann.",
        )  # fmt: skip
        turn_id, question = turn.id, turn.question
        _c, abstained, _a = _ask(session, assistant_world["alpha"], kit, "Wie hoch ist der Mond?")
        abstained_id = abstained.id
    with db.session() as session:
        rows = {
            s.subject_id: s
            for s in session.scalars(
                select(AiSuggestion).where(AiSuggestion.subject_type == "assistant_turn")
            )
        }
        recorded = rows[str(turn_id)]
        assert (recorded.function, recorded.decision) == ("antwort", "automatisch")
        assert recorded.input_sha256 == decisions.sha256_text(question)
        assert "Mustermann" not in question  # the stored, hashed question is pseudonymised
        assert recorded.confidence == pytest.approx(answer.confidence)
        assert recorded.output["abstained"] is False and recorded.output["sources"]
        assert rows[str(abstained_id)].output["abstained"] is True
        assert recorded.tenant_id == assistant_world["alpha"]


def test_booking_flags_are_suggestions_and_decisions_are_recorded(
    db: Database, tmp_path: Path
) -> None:
    tenant_id, dataset_id = _import(db, tmp_path, PAYMENTS.encode())
    config = CheckConfig(holiday_country="DE", holiday_subdiv="BW")
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        dataset = session.get(InsightDataset, dataset_id)
        report = bookings.run_checks(
            session, tenant=tenant, dataset=dataset, config=config, actor="t"
        )
        flags = session.scalars(select(BookingFlag).order_by(BookingFlag.id)).all()
        suggestions = session.scalars(
            select(AiSuggestion).where(AiSuggestion.function == "buchungspruefung")
        ).all()
        assert report.new == len(flags) == len(suggestions) > 0
        assert {s.subject_id for s in suggestions} == {str(f.id) for f in flags}
        duplicate = next(f for f in flags if f.kind == "duplikat")
        bookings.decide(session, tenant=tenant, flag_id=duplicate.id, status="pruefen", note="",
                        actor="admin")  # fmt: skip
        other = next(f for f in flags if f.id != duplicate.id)
        bookings.decide(session, tenant=tenant, flag_id=other.id, status="unauffaellig", note="",
                        actor="jemand-ohne-konto")  # fmt: skip
        admin_id = _user(session, tenant_id, "admin").id
    with db.session() as session:
        by_flag = {
            s.subject_id: s
            for s in session.scalars(select(AiSuggestion).where(AiSuggestion.subject_type == "booking_flag"))
        }  # fmt: skip
        assert (by_flag[str(duplicate.id)].decision, by_flag[str(duplicate.id)].decided_by_id) == (
            "angenommen",
            admin_id,
        )
        assert by_flag[str(other.id)].decision == "abgelehnt"
        assert by_flag[str(other.id)].decided_by_id is None
        actors = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.kind == "ki_entscheidung")
        ).all()
        assert actors == ["admin", "jemand-ohne-konto"]
        # checks switched off: the open flags go, and so do their open suggestions
        tenant = session.get(Tenant, tenant_id)
        dataset = session.get(InsightDataset, dataset_id)
        bookings.run_checks(session, tenant=tenant, dataset=dataset,
                            config=CheckConfig(checks=("benford",)), actor="t")  # fmt: skip
        open_ = session.scalars(
            select(AiSuggestion).where(
                AiSuggestion.function == "buchungspruefung", AiSuggestion.decision.is_(None)
            )
        ).all()
        assert open_ == []
