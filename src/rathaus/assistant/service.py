"""Conversations of the Bürgerassistent: ask, store (pseudonymised), feedback, hand-over, purge.

Citizens are anonymous; a conversation is known only by its random ``public_id``. What is
stored is pseudonymised first (names, e-mail addresses, phone numbers, IBANs … become
placeholders such as ``[E-MAIL]``) and deleted after ``assistant.retention_days``. With the
citizen's explicit consent a conversation becomes a case in the Posteingang (``hand_over``).

These functions never commit: the caller owns the transaction (the web layer commits, then
queues the triage of a handed-over case).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rathaus.ai import pii
from rathaus.assistant.answer import Answer, AnswerEvent, AssistantKit, stream
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import (
    AssistantCitation,
    AssistantConversation,
    AssistantTurn,
    Case,
    Tenant,
    utcnow,
)
from rathaus.core.storage import OriginalStore
from rathaus.governance import decisions
from rathaus.inbox.service import IncomingItem, receive

CHANNELS = ("web", "widget", "api")
HANDOVER_CHANNEL = "assistent"
HISTORY_TURNS = 5  # earlier questions passed to the answer (a follow-up needs only the last few)
MAX_COMMENT_CHARS = 2000
MAX_MESSAGE_CHARS = 4000
MAX_NAME_CHARS = 200
MAX_CONTACT_CHARS = 200

# Placeholders in stored text; German, because the Redaktion reads them in the gaps report.
PLACEHOLDERS = {
    pii.PERSON: "[NAME]",
    pii.ADDRESS: "[ADRESSE]",
    pii.IBAN: "[IBAN]",
    pii.PHONE: "[TELEFON]",
    pii.EMAIL: "[E-MAIL]",
    pii.DATE_OF_BIRTH: "[GEBURTSDATUM]",
    pii.TAX_ID: "[STEUER-ID]",
    pii.AKTENZEICHEN: "[AKTENZEICHEN]",
    pii.PLATE: "[KENNZEICHEN]",
}
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,24}$")
_PHONE = re.compile(r"^[0-9+()/ \-]{5,40}$")


class ConsentRequired(RathausError):
    """A hand-over without the citizen's explicit consent."""


@dataclass
class Asked:
    """The stored result of one question."""

    conversation: AssistantConversation
    turn: AssistantTurn
    answer: Answer


def pseudonymise(text: str) -> str:
    """``text`` with every piece of personal data replaced by a placeholder (not reversible:
    the values are not kept anywhere)."""
    parts: list[str] = []
    cursor = 0
    for span in pii.detect_pii(text):
        parts.append(text[cursor : span.start])
        parts.append(PLACEHOLDERS.get(span.kind, "[PERSONENBEZUG]"))
        cursor = span.end
    parts.append(text[cursor:])
    return "".join(parts)


def get_conversation(
    session: Session, *, tenant: Tenant, public_id: str | None
) -> AssistantConversation | None:
    """The tenant's conversation with ``public_id``; ``None`` if there is none (or it expired)."""
    if not public_id or len(public_id) > 40:
        return None
    return session.scalar(
        select(AssistantConversation).where(
            AssistantConversation.tenant_id == tenant.id,
            AssistantConversation.public_id == public_id,
        )
    )


def _require_conversation(
    session: Session, *, tenant: Tenant, public_id: str | None
) -> AssistantConversation:
    conversation = get_conversation(session, tenant=tenant, public_id=public_id)
    if conversation is None:
        raise NotFoundError(
            "Dieses Gespräch gibt es nicht (mehr). Gespräche werden nach Ablauf der "
            "Aufbewahrungsfrist gelöscht; bitte stellen Sie Ihre Frage noch einmal."
        )
    return conversation


def ask_stream(
    session: Session,
    *,
    tenant: Tenant,
    conversation_public_id: str | None,
    question: str,
    easy_language: bool = False,
    channel: str = "api",
    kit: AssistantKit,
) -> Iterator[AnswerEvent]:
    """Answer ``question`` in its conversation (a new one when the id is unknown) and store it.

    Eager part: the question is checked here, so :class:`QuestionRejected` is raised by this
    call, before anything is stored or streamed. The returned iterator yields
    ``("conversation", AssistantConversation)``, then the answer's events ``sources``,
    ``sentence``…, ``facts``, then ``("answered", Answer)`` *before* anything is written (a
    caller on SQLite may end its read transaction there), and last ``("done", Asked)`` once
    conversation, turn and citations are added to the session (flushed, not committed).
    """
    started = time.perf_counter()
    conversation = get_conversation(session, tenant=tenant, public_id=conversation_public_id)
    history = [t.question for t in conversation.turns[-HISTORY_TURNS:]] if conversation else []
    events = stream(
        session,
        tenant=tenant,
        question=question,
        history=history,
        easy_language=easy_language,
        kit=kit,
    )
    first = next(events)  # raises QuestionRejected before any event
    return _continue(
        session,
        tenant=tenant,
        conversation=conversation,
        first=first,
        events=events,
        question=question,
        easy_language=easy_language,
        channel=channel if channel in CHANNELS else "api",
        started=started,
    )


def _continue(
    session: Session,
    *,
    tenant: Tenant,
    conversation: AssistantConversation | None,
    first: AnswerEvent,
    events: Iterator[AnswerEvent],
    question: str,
    easy_language: bool,
    channel: str,
    started: float,
) -> Iterator[AnswerEvent]:
    public_id = conversation.public_id if conversation else secrets.token_urlsafe(18)
    pending = conversation or AssistantConversation(
        tenant_id=tenant.id, public_id=public_id, channel=channel, easy_language=easy_language
    )
    yield "conversation", pending
    answer: Answer | None = None
    for kind, value in _chain(first, events):
        if kind == "done":
            answer = value
            break
        yield kind, value
    if answer is None:  # pragma: no cover - the answer contract always ends with "done"
        raise RathausError("Die Antwort ist unvollständig; bitte fragen Sie noch einmal.")
    yield "answered", answer
    turn = _store(
        session,
        tenant=tenant,
        conversation=pending,
        question=question,
        answer=answer,
        easy_language=easy_language,
        duration_ms=int((time.perf_counter() - started) * 1000),
    )
    yield "done", Asked(conversation=pending, turn=turn, answer=answer)


def _plain(value: Any) -> Any:
    """JSON for numpy scalars (retrieval scores)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _chain(first: AnswerEvent, events: Iterator[AnswerEvent]) -> Iterator[AnswerEvent]:
    yield first
    yield from events


def _store(
    session: Session,
    *,
    tenant: Tenant,
    conversation: AssistantConversation,
    question: str,
    answer: Answer,
    easy_language: bool,
    duration_ms: int,
) -> AssistantTurn:
    now = utcnow()
    if conversation.id is None:
        conversation.created_at = now
        session.add(conversation)
    conversation.language = answer.language[:8]
    conversation.easy_language = easy_language
    conversation.last_activity_at = now
    stored_question = pseudonymise(question)
    data: dict[str, Any] = json.loads(json.dumps(answer.to_dict(), default=_plain))
    data["question"] = stored_question
    if data.get("searched_as"):  # the question in German: pseudonymised like the question
        data["searched_as"] = pseudonymise(data["searched_as"])
    if data.get("injection"):  # the evidence quotes the question: pseudonymised as well
        data["injection"]["snippets"] = [pseudonymise(s) for s in data["injection"]["snippets"]]
    turn = AssistantTurn(
        tenant_id=tenant.id,
        conversation=conversation,
        ordinal=len(conversation.turns),
        question=stored_question,
        language=answer.language[:8],
        mode=answer.mode[:20],
        answer=data,
        confidence=float(answer.confidence),
        abstained=answer.abstained,
        model=answer.model[:120],
        duration_ms=duration_ms,
        created_at=now,
    )
    turn.citations = [
        AssistantCitation(
            tenant_id=tenant.id,
            entry_id=source.entry_id,
            chunk_key=source.chunk_key[:64],
            rank=source.n,
            score=float(source.score),
        )
        for source in answer.sources
    ]
    session.add(turn)
    session.flush()
    if data.get("injection"):
        _record_injection(session, turn, data["injection"])
    _record_suggestion(session, turn, answer)
    return turn


def _record_injection(session: Session, turn: AssistantTurn, finding: dict[str, Any]) -> None:
    """A question with instructions to the AI: answered extractively, and logged in the audit
    trail so that the Redaktion and the data protection officer can see attempts."""
    from rathaus.core import audit

    audit.record(
        session,
        audit.Event(
            kind="assistant_injection_flagged",
            actor="buergerassistent",
            tenant_id=turn.tenant_id,
            subject=f"assistant_turn:{turn.id}",
            data={k: finding.get(k) for k in ("score", "reason", "rules")},
        ),
    )


def _record_suggestion(session: Session, turn: AssistantTurn, answer: Answer) -> None:
    """The answer in the decision record: it reaches the citizen without a person (the
    assistant is marked as AI), so it is recorded as ``automatisch``."""
    decisions.suggest(
        session,
        tenant_id=turn.tenant_id,
        function="antwort",
        backend=turn.mode,
        model_version=turn.model,
        input_sha256=decisions.sha256_text(turn.question),
        output={
            "abstained": turn.abstained,
            "mode": turn.mode,
            "language": turn.language,
            "sources": [source.entry_id for source in answer.sources],
            "sentences": len(answer.sentences),
        },
        confidence=turn.confidence,
        subject_type="assistant_turn",
        subject_id=turn.id,
        decision="automatisch",
    )


def ask(
    session: Session,
    *,
    tenant: Tenant,
    conversation_public_id: str | None,
    question: str,
    easy_language: bool = False,
    channel: str = "api",
    kit: AssistantKit,
) -> tuple[AssistantConversation, AssistantTurn, Answer]:
    """Answer ``question`` and store it; see :func:`ask_stream`."""
    asked: Asked | None = None
    for kind, value in ask_stream(
        session,
        tenant=tenant,
        conversation_public_id=conversation_public_id,
        question=question,
        easy_language=easy_language,
        channel=channel,
        kit=kit,
    ):
        if kind == "done":
            asked = value
    assert asked is not None
    return asked.conversation, asked.turn, asked.answer


def feedback(
    session: Session,
    *,
    tenant: Tenant,
    conversation_public_id: str,
    turn_id: int,
    value: int,
    comment: str = "",
) -> AssistantTurn:
    """Record thumbs up (+1) or down (-1) and an optional comment (pseudonymised) on a turn;
    a second feedback on the same turn replaces the first."""
    if value not in (1, -1):
        raise RathausError("Die Bewertung muss +1 (hilfreich) oder -1 (nicht hilfreich) sein.")
    if len(comment) > MAX_COMMENT_CHARS:
        raise RathausError(
            f"Der Kommentar ist zu lang (höchstens {MAX_COMMENT_CHARS} Zeichen). "
            "Bitte kürzen Sie ihn."
        )
    conversation = _require_conversation(session, tenant=tenant, public_id=conversation_public_id)
    turn = session.scalar(
        select(AssistantTurn).where(
            AssistantTurn.id == turn_id,
            AssistantTurn.conversation_id == conversation.id,
            AssistantTurn.tenant_id == tenant.id,
        )
    )
    if turn is None:
        raise NotFoundError("Diese Antwort gehört nicht zu Ihrem Gespräch.")
    turn.feedback = value
    turn.feedback_comment = pseudonymise(comment.strip())
    conversation.last_activity_at = utcnow()
    session.flush()
    return turn


def hand_over(
    session: Session,
    *,
    tenant: Tenant,
    conversation_public_id: str,
    consent: bool,
    store: OriginalStore,
    contact_name: str = "",
    contact_email: str = "",
    contact_phone: str = "",
    message: str = "",
) -> Case:
    """Turn the conversation into a case in the Posteingang (channel ``assistent``).

    Only with ``consent``. The case text is the conversation (questions as stored, answers)
    plus the message and the contact data the citizen chose to give; the contact data is kept
    on the case only. A second hand-over of the same conversation returns the same case. The
    case is stored with status ``neu``; the caller commits and queues its triage like any
    incoming item.
    """
    if not consent:
        raise ConsentRequired(
            "Ohne Ihre Einwilligung geben wir das Gespräch nicht weiter. Bitte bestätigen Sie, "
            "dass die Verwaltung Ihre Fragen und die Antworten erhalten darf."
        )
    conversation = _require_conversation(session, tenant=tenant, public_id=conversation_public_id)
    if conversation.handed_over_case_id is not None:
        existing = session.get(Case, conversation.handed_over_case_id)
        if existing is not None:
            return existing
    name, email, phone = _contact(contact_name, contact_email, contact_phone)
    message = message.strip()
    if len(message) > MAX_MESSAGE_CHARS:
        raise RathausError(
            f"Ihre Nachricht ist zu lang (höchstens {MAX_MESSAGE_CHARS} Zeichen). "
            "Bitte kürzen Sie sie."
        )
    if not conversation.turns:
        raise RathausError(
            "Das Gespräch enthält noch keine Frage. Bitte stellen Sie zuerst Ihre Frage."
        )
    now = utcnow()
    body = transcript(conversation, message=message, name=name, email=email, phone=phone)
    first_question = conversation.turns[0].question.strip().replace("\n", " ")
    original = {
        "conversation": conversation.public_id,
        "handed_over_at": now.isoformat(timespec="seconds"),
        "consent": True,
        "contact": {"name": name, "email": email, "phone": phone},
        "message": message,
        "turns": [
            {"question": t.question, "answer": t.answer.get("text", ""), "abstained": t.abstained}
            for t in conversation.turns
        ],
    }
    item = IncomingItem(
        channel=HANDOVER_CHANNEL,
        original=json.dumps(original, ensure_ascii=False, sort_keys=True).encode("utf-8"),
        filename="buergerassistent-gespraech.json",
        media_type="application/json",
        subject=f"Bürgerassistent: {first_question[:120]}",
        body=body,
        sender_name=name,
        sender_contact=", ".join(p for p in (email, phone) if p),
        fields={
            "assistent": {"conversation": conversation.public_id, "turns": len(original["turns"])}
        },
        received_at=now,
    )
    case = receive(session, tenant=tenant, item=item, store=store).case
    conversation.handed_over_case_id = case.id
    conversation.last_activity_at = now
    session.flush()
    return case


def _contact(name: str, email: str, phone: str) -> tuple[str, str, str]:
    name, email, phone = name.strip(), email.strip(), phone.strip()
    if len(name) > MAX_NAME_CHARS:
        raise RathausError(f"Der Name ist zu lang (höchstens {MAX_NAME_CHARS} Zeichen).")
    if email and (len(email) > MAX_CONTACT_CHARS or not _EMAIL.match(email)):
        raise RathausError(
            "Die E-Mail-Adresse ist ungültig. Bitte prüfen Sie sie oder lassen Sie das Feld leer."
        )
    if phone and not _PHONE.match(phone):
        raise RathausError(
            "Die Telefonnummer ist ungültig. Bitte verwenden Sie nur Ziffern, Leerzeichen und "
            "+ ( ) / - oder lassen Sie das Feld leer."
        )
    return name, email, phone


def transcript(
    conversation: AssistantConversation,
    *,
    message: str = "",
    name: str = "",
    email: str = "",
    phone: str = "",
) -> str:
    """The conversation as plain text for the case: what a case worker reads first."""
    lines = [
        "Weitergabe aus dem Bürgerassistenten. Die Bürgerin oder der Bürger hat der "
        "Weitergabe dieses Gesprächs zugestimmt.",
        "Hinweis: Personenbezogene Angaben in den Fragen wurden vor dem Speichern durch "
        "Platzhalter wie [E-MAIL] ersetzt.",
        "",
    ]
    if message:
        lines += ["Nachricht:", message, ""]
    for i, turn in enumerate(conversation.turns, start=1):
        data = turn.answer or {}
        lines.append(f"Frage {i}: {turn.question.strip()}")
        if turn.abstained:
            lines.append(
                "Antwort: Der Assistent hat keine gesicherte Antwort gefunden und auf die "
                "Verwaltung verwiesen."
            )
        else:
            lines.append(f"Antwort: {str(data.get('text', '')).strip() or '–'}")
        sources = [
            f"[{s.get('n')}] {s.get('title', '')} {s.get('url', '')}".strip()
            for s in data.get("sources", [])
        ]
        if sources:
            lines.append("Quellen: " + "; ".join(sources))
        lines.append("")
    contact = [p for p in (name, email, phone) if p]
    lines.append(
        "Kontakt: " + ", ".join(contact)
        if contact
        else "Kontakt: keine Angaben (die Person möchte anonym bleiben)."
    )
    return "\n".join(lines)


def purge_expired(
    session: Session,
    *,
    now: dt.datetime,
    retention_days: int,
    skip_tenant_ids: Collection[int] = (),
) -> int:
    """Delete conversations (with their turns and citations) whose last activity is older than
    ``retention_days``; a case made by a hand-over stays. Tenants in ``skip_tenant_ids`` have a
    retention rule of their own (applied by :mod:`rathaus.governance.retention`). Returns the
    number deleted."""
    cutoff = now - dt.timedelta(days=retention_days)
    query = select(AssistantConversation.id).where(AssistantConversation.last_activity_at < cutoff)
    if skip_tenant_ids:
        query = query.where(AssistantConversation.tenant_id.not_in(list(skip_tenant_ids)))
    ids = list(session.scalars(query))
    deleted = delete_conversations(session, ids)
    session.flush()
    return deleted


def delete_conversations(session: Session, ids: Sequence[int]) -> int:
    """Delete these conversations with their turns, citations and the recorded AI suggestions
    about their answers (retention, erasure). Returns the number of conversations."""
    from rathaus.governance.decisions import forget_subjects

    for start in range(0, len(ids), 500):
        batch = list(ids[start : start + 500])
        turn_ids = list(
            session.scalars(
                select(AssistantTurn.id).where(AssistantTurn.conversation_id.in_(batch))
            )
        )
        forget_subjects(session, "assistant_turn", turn_ids)
        session.execute(
            delete(AssistantCitation)
            .where(AssistantCitation.turn_id.in_(turn_ids))
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(AssistantTurn)
            .where(AssistantTurn.conversation_id.in_(batch))
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(AssistantConversation)
            .where(AssistantConversation.id.in_(batch))
            .execution_options(synchronize_session=False)
        )
    return len(ids)
