"""What people decide in the Posteingang: queues with SLA clocks, routing decisions, replies.

Every decision is written to the case event log and next to the AI suggestion it answers
(:class:`AiSuggestion`: accepted, corrected with the chosen unit/service, or the edited reply
with its difference), so the next training learns from it and an auditor sees both.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rathaus.core.access import visible_cases
from rathaus.core.cases import OPEN_STATUSES, record_event, working_days_between
from rathaus.core.errors import NotFoundError, PermissionDeniedError, RathausError
from rathaus.core.models import (
    AiSuggestion,
    Case,
    CaseStatus,
    Message,
    OrgUnit,
    Service,
    Tenant,
    User,
    utcnow,
)
from rathaus.core.roles import Permission, permissions_of
from rathaus.governance import decisions

LOCAL = ZoneInfo("Europe/Berlin")
URGENCY_ORDER = {"kritisch": 0, "hoch": 1, "normal": 2}


@dataclass(frozen=True)
class Clock:
    """The SLA clock of a case: working days left (negative: overdue) and a German label."""

    days_left: int | None
    label: str
    state: str  # "ok", "bald", "heute", "ueberfaellig", "ohne"


def sla_clock(case: Case, land: str, *, now: dt.datetime | None = None) -> Clock:
    if case.due_at is None:
        return Clock(None, "ohne Frist", "ohne")
    today = (now or utcnow()).astimezone(LOCAL).date()
    due = case.due_at if case.due_at.tzinfo else case.due_at.replace(tzinfo=dt.UTC)
    days = working_days_between(today, due.astimezone(LOCAL).date(), land)
    if days < 0:
        return Clock(
            days, f"{-days} Arbeitstag{'e' if days < -1 else ''} überfällig", "ueberfaellig"
        )
    if days == 0:
        return Clock(0, "heute fällig", "heute")
    return Clock(
        days, f"noch {days} Arbeitstag{'e' if days > 1 else ''}", "bald" if days <= 2 else "ok"
    )


def queue(
    session: Session,
    user: User,
    *,
    org_unit_id: int | None = None,
    triage_only: bool = False,
    urgency: str | None = None,
    request_type: str | None = None,
    flagged: bool | None = None,
    limit: int = 200,
) -> list[Case]:
    """Open cases the user may see, most urgent first, then by due date and arrival."""
    query = visible_cases(session, user).where(Case.status.in_(list(OPEN_STATUSES)))
    if triage_only:
        query = query.where(Case.status.in_([CaseStatus.NEU, CaseStatus.TRIAGE]))
    if org_unit_id is not None:
        query = query.where(Case.org_unit_id == org_unit_id)
    if urgency:
        query = query.where(Case.urgency == urgency)
    if request_type:
        query = query.where(Case.request_type == request_type)
    if flagged is True:
        query = query.where(Case.needs_review_reason.is_not(None))
    rows = list(session.scalars(query.order_by(Case.received_at.desc()).limit(limit)))
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(
        rows,
        key=lambda c: (
            URGENCY_ORDER.get(c.urgency, 3),
            (
                c.due_at
                if c.due_at and c.due_at.tzinfo
                else (c.due_at or far).replace(tzinfo=dt.UTC)
            ),
            c.id,
        ),
    )


def queue_counts(session: Session, user: User) -> dict[str, Any]:
    """Open cases per unit (the user may see), the triage queue, and flagged ones."""
    sub = visible_cases(session, user).where(Case.status.in_(list(OPEN_STATUSES))).subquery()
    per_unit = session.execute(
        select(OrgUnit.id, OrgUnit.code, OrgUnit.name, func.count(sub.c.id))
        .join(sub, sub.c.org_unit_id == OrgUnit.id)
        .group_by(OrgUnit.id, OrgUnit.code, OrgUnit.name)
        .order_by(OrgUnit.code)
    ).all()
    triage = session.scalar(
        select(func.count()).select_from(sub).where(sub.c.status.in_(["neu", "triage"]))
    )
    flagged = session.scalar(
        select(func.count()).select_from(sub).where(sub.c.needs_review_reason.is_not(None))
    )
    return {
        "units": [{"id": i, "code": c, "name": n, "count": k} for i, c, n, k in per_unit],
        "triage": int(triage or 0),
        "flagged": int(flagged or 0),
    }


def latest_suggestion(session: Session, case: Case, function: str) -> AiSuggestion | None:
    return session.scalar(
        select(AiSuggestion)
        .where(AiSuggestion.case_id == case.id, AiSuggestion.function == function)
        .order_by(AiSuggestion.id.desc())
        .limit(1)
    )


def _editable_case(session: Session, user: User, case_id: int) -> Case:
    case = session.scalar(visible_cases(session, user).where(Case.id == case_id))
    if case is None:
        raise NotFoundError(
            f"Vorgang {case_id} wurde nicht gefunden oder ist für Sie nicht freigegeben."
        )
    if Permission.EDIT_CASES not in permissions_of(user.roles):
        raise PermissionDeniedError("Sie dürfen Vorgänge nicht bearbeiten.")
    return case


def decide_routing(
    session: Session,
    user: User,
    case_id: int,
    *,
    org_unit_id: int,
    service_id: int | None = None,
    note: str = "",
) -> tuple[Case, str]:
    """Accept or correct the routing in one action. Returns the case and the decision
    (``angenommen`` if the person chose the top suggestion, else ``korrigiert``)."""
    from rathaus.inbox.pipeline import assign

    case = _editable_case(session, user, case_id)
    unit = session.get(OrgUnit, org_unit_id)
    if unit is None or unit.tenant_id != case.tenant_id:
        raise RathausError("Dieses Amt gibt es in Ihrer Kommune nicht.")
    service = session.get(Service, service_id) if service_id else None
    if service is not None and service.tenant_id != case.tenant_id:
        raise RathausError("Diese Leistung gibt es in Ihrer Kommune nicht.")
    perms = permissions_of(user.roles)
    if (
        case.org_unit_id is None
        and Permission.TRIAGE not in perms
        and Permission.VIEW_ALL_DEPARTMENTS not in perms
    ):
        raise PermissionDeniedError("Nur die Poststelle oder eine Leitung verteilt Eingänge.")
    suggestion = latest_suggestion(session, case, "routing")
    top = (suggestion.output.get("candidates") or [{}])[0] if suggestion else {}
    same_unit = top.get("org_unit_id") == unit.id
    same_service = service is None or top.get("service_id") in (None, service.id)
    decision = "angenommen" if same_unit and same_service else "korrigiert"
    if suggestion is not None and suggestion.decision == "automatisch" and not same_unit:
        decision = "korrigiert"
    if suggestion is not None:
        decisions.decide(
            session,
            suggestion,
            decision=decision,
            user=user,
            final={
                "org_unit_id": unit.id,
                "unit_code": unit.code,
                "service_id": service.id if service else None,
                "service_code": service.code if service else None,
                "note": note,
            },
        )
    assign(
        session,
        case,
        unit,
        service,
        actor=user,
        how=decision,
        why=note or ("Vorschlag übernommen" if decision == "angenommen" else "korrigiert"),
    )
    if decision == "korrigiert":
        _redraft_untouched_reply(session, case, unit, service)
    if case.needs_review_reason and decision:
        record_event(
            session,
            case,
            kind="review",
            activity="Prüfhinweise gesehen",
            actor=user,
            data={"flags": case.needs_review_reason.split("\n")},
        )
    session.flush()
    return case, decision


def _redraft_untouched_reply(
    session: Session, case: Case, unit: OrgUnit, service: Service | None
) -> None:
    """After a correction, a reply draft nobody has edited yet is written again for the
    chosen unit and service (it named the suggested ones); an edited draft stays as it is."""
    from rathaus.inbox import reply

    suggestion = latest_suggestion(session, case, "reply")
    if suggestion is None or suggestion.decision is not None:
        return
    draft = session.scalar(
        select(Message)
        .where(Message.case_id == case.id, Message.direction == "out", Message.status == "entwurf")
        .order_by(Message.id.desc())
        .limit(1)
    )
    if draft is None or draft.body != suggestion.output.get("text"):
        return
    text = reply.template_draft(case, tenant_of(session, case), unit, service)
    draft.body = text
    decisions.supersede(suggestion)
    decisions.suggest(
        session,
        tenant_id=case.tenant_id,
        case_id=case.id,
        function="reply",
        backend="vorlage",
        input_sha256=suggestion.input_sha256,
        output={"text": text, "reason": f"neu nach Zuordnung an {unit.name}"},
    )


def _draft(session: Session, case: Case, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None or message.case_id != case.id or message.direction != "out":
        raise NotFoundError("Diesen Antwortentwurf gibt es in diesem Vorgang nicht.")
    if message.status not in ("entwurf",):
        raise RathausError(
            "Diese Antwort ist bereits freigegeben und kann nicht mehr geändert werden."
        )
    return message


def save_reply(
    session: Session,
    user: User,
    case_id: int,
    message_id: int,
    *,
    body: str,
    approve: bool,
) -> Message:
    """Save the edited draft; with ``approve`` it is released (it is then sent by the channel
    the municipality uses, never by the AI). The difference to the AI draft is recorded."""
    case = _editable_case(session, user, case_id)
    message = _draft(session, case, message_id)
    if not body.strip():
        raise RathausError("Eine leere Antwort kann nicht gespeichert werden.")
    suggestion = latest_suggestion(session, case, "reply")
    original = (suggestion.output or {}).get("text", "") if suggestion else message.body
    message.body = body
    diff = decisions.text_diff(original, body)
    if approve:
        message.status = "freigegeben"
        message.approved_by_id = user.id
        if suggestion is not None:
            decisions.decide(
                session,
                suggestion,
                decision="angenommen" if not diff else "bearbeitet",
                user=user,
                original_text=original,
                edited_text=body,
            )
    record_event(
        session,
        case,
        kind="reply",
        activity="Antwort freigegeben" if approve else "Antwortentwurf bearbeitet",
        actor=user,
        data={"message_id": message.id, "changed_lines": sum(1 for d in diff if d[:1] in "+-")},
    )
    session.flush()
    return message


def tenant_of(session: Session, case: Case) -> Tenant:
    tenant = session.get(Tenant, case.tenant_id)
    assert tenant is not None
    return tenant
