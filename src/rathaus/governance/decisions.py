"""The decision record: every AI suggestion next to the human decision that followed.

One small API for every place in Rathaus where an AI function suggests something
(:func:`suggest`) and a person decides about it (:func:`decide`). A suggestion keeps the
function, backend and model version, a hash of its input, its output and confidence; the
decision keeps who decided, when, and what was finally chosen (an edited text with its unified
diff). Every human decision is also appended to the audit chain as an event that names the
suggestion, never its content (no personal data in the audit log).

Decisions: ``angenommen`` (accepted as is), ``bearbeitet`` (accepted after editing),
``korrigiert`` (something else chosen), ``abgelehnt`` (rejected); set without a person:
``automatisch`` (applied without a person, where an administrator enabled it) and ``ersetzt``
(withdrawn by the machine, e.g. a draft written again). ``None``: still open.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.errors import RathausError
from rathaus.core.models import AiSuggestion, Case, User, utcnow

HUMAN = ("angenommen", "bearbeitet", "korrigiert", "abgelehnt")
MACHINE = ("automatisch", "ersetzt")
LABELS = {
    "angenommen": "angenommen",
    "bearbeitet": "bearbeitet angenommen",
    "korrigiert": "korrigiert",
    "abgelehnt": "abgelehnt",
    "automatisch": "automatisch angewendet",
    "ersetzt": "ersetzt (neu erstellt)",
    None: "offen",
}
FUNCTION_LABELS = {
    "routing": "Zuständigkeit",
    "service": "Leistung",
    "request_type": "Anliegenart",
    "urgency": "Dringlichkeit",
    "fields": "Erkannte Angaben",
    "flag": "Prüfhinweis (Anweisungen an die KI)",
    "reply": "Antwortentwurf",
    "antwort": "Antwort des Bürgerassistenten",
    "zusammenfassung": "Zusammenfassung",
    "buchungspruefung": "Buchungsprüfung",
    "leichte_sprache": "Leichte/Einfache Sprache",
    "brief": "Briefentwurf",
    "protokoll": "Protokollentwurf",
    "pressemitteilung": "Pressemitteilung",
    "uebersetzung": "Übersetzung",
    "niederschrift": "Niederschrift",
}
AUDIT_KIND = "ki_entscheidung"
MAX_DIFF_LINES = 400
MAX_OUTPUT_CHARS = 20_000  # generated texts are kept up to this length


def sha256_text(text: str) -> str:
    """The input hash every suggestion keeps (SHA-256 of the UTF-8 text)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def text_diff(original: str, edited: str) -> list[str]:
    """Unified diff (one line of context) from the AI text to what the person released."""
    return list(
        difflib.unified_diff(
            original.splitlines(), edited.splitlines(), "KI-Entwurf", "Freigabe", lineterm="", n=1
        )
    )


def suggestion_values(
    *,
    tenant_id: int,
    function: str,
    backend: str,
    output: dict[str, Any],
    model_version: str = "",
    input_sha256: str = "",
    confidence: float | None = None,
    case_id: int | None = None,
    subject_type: str | None = None,
    subject_id: int | str | None = None,
    decision: str | None = None,
) -> dict[str, Any]:
    """The column values of one new suggestion (see :func:`suggest`)."""
    if decision is not None and decision not in MACHINE:
        raise ValueError(f"a new suggestion can only be decided by the machine, not {decision!r}")
    return {
        "tenant_id": tenant_id,
        "case_id": case_id,
        "subject_type": subject_type,
        "subject_id": None if subject_id is None else str(subject_id)[:64],
        "function": function[:40],
        "backend": (backend or "")[:40],
        "model_version": (model_version or "")[:100],
        "input_sha256": input_sha256,
        "output": output,
        "confidence": None if confidence is None else float(confidence),
        "decision": decision,
        "decided_at": utcnow() if decision else None,
    }


def suggest(session: Session, **fields: Any) -> AiSuggestion:
    """Record one AI suggestion (open, or ``automatisch`` when applied without a person); the
    keyword arguments are those of :func:`suggestion_values`."""
    suggestion = AiSuggestion(**suggestion_values(**fields))
    session.add(suggestion)
    return suggestion


def suggest_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Record several suggestions (each from :func:`suggestion_values`) with one INSERT, in
    order, for writers that need no objects back: the triage pipeline records five per item,
    and on SQLite the unit of work inserts rows that get their id from the database one
    statement each. ``created_at`` is set as :func:`suggest` sets it (the column default).
    Other pending rows are not flushed first (the suggestions refer to none of them)."""
    if rows:
        with session.no_autoflush:
            session.execute(insert(AiSuggestion.__table__), list(rows))


def decide(
    session: Session,
    suggestion: AiSuggestion,
    *,
    decision: str,
    user: User | None,
    actor: str | None = None,
    final: dict[str, Any] | None = None,
    original_text: str | None = None,
    edited_text: str | None = None,
    at: dt.datetime | None = None,
) -> AiSuggestion:
    """A person's decision on ``suggestion``: who, when, what was chosen. With
    ``original_text``/``edited_text`` the final text and its diff are kept in ``final``.
    The decision goes into the audit chain without the suggestion's content."""
    if decision not in HUMAN:
        raise RathausError(f"Unbekannte Entscheidung „{decision}“. Erlaubt: {', '.join(HUMAN)}.")
    if user is not None and user.tenant_id != suggestion.tenant_id:
        raise RathausError("Dieser KI-Vorschlag gehört nicht zu Ihrer Kommune.")
    final = dict(final or {})
    changed = 0
    if edited_text is not None:
        diff = text_diff(original_text or "", edited_text)
        changed = sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))
        final |= {"text": edited_text, "diff": diff[:MAX_DIFF_LINES]}
    suggestion.decision = decision
    suggestion.decided_by_id = user.id if user is not None else None
    suggestion.decided_at = at or utcnow()
    suggestion.final = final or None
    session.flush()  # the suggestion's id for the audit event
    audit.record(
        session,
        audit.Event(
            kind=AUDIT_KIND,
            actor=(user.username if user is not None else actor or "unbekannt")[:120],
            tenant_id=suggestion.tenant_id,
            subject=f"ai_suggestion:{suggestion.id}",
            data={
                "function": suggestion.function,
                "decision": decision,
                "backend": suggestion.backend,
                "model_version": suggestion.model_version,
                "case_id": suggestion.case_id,
                "subject_type": suggestion.subject_type,
                "subject_id": suggestion.subject_id,
                "changed_lines": changed,
            },
            at=suggestion.decided_at,
        ),
    )
    return suggestion


def forget_subjects(session: Session, subject_type: str, ids: Sequence[int | str]) -> int:
    """Delete the suggestions about objects that are being deleted (an assistant turn, a booking
    flag): they must not outlive their subject under retention or erasure. Suggestions about a
    case go with the case (foreign key)."""
    if not ids:
        return 0
    result = session.execute(
        delete(AiSuggestion)
        .where(
            AiSuggestion.subject_type == subject_type,
            AiSuggestion.subject_id.in_([str(i) for i in ids]),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def supersede(suggestion: AiSuggestion) -> None:
    """The machine withdrew an open suggestion (e.g. a draft written again)."""
    suggestion.decision = "ersetzt"
    suggestion.decided_at = utcnow()


def latest_for(
    session: Session, *, tenant_id: int, subject_type: str, subject_id: int | str, function: str
) -> AiSuggestion | None:
    """The newest suggestion of ``function`` about one object."""
    return session.scalar(
        select(AiSuggestion)
        .where(
            AiSuggestion.tenant_id == tenant_id,
            AiSuggestion.subject_type == subject_type,
            AiSuggestion.subject_id == str(subject_id),
            AiSuggestion.function == function,
        )
        .order_by(AiSuggestion.id.desc())
        .limit(1)
    )


# -- reading the record ------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    function: str = ""
    decision: str = ""  # one of HUMAN/MACHINE, "offen", or "" for all
    case_id: int | None = None


def _filtered(query: Any, tenant_id: int, filters: Filters) -> Any:
    query = query.where(AiSuggestion.tenant_id == tenant_id)
    if filters.function:
        query = query.where(AiSuggestion.function == filters.function)
    if filters.decision == "offen":
        query = query.where(AiSuggestion.decision.is_(None))
    elif filters.decision:
        query = query.where(AiSuggestion.decision == filters.decision)
    if filters.case_id is not None:
        query = query.where(AiSuggestion.case_id == filters.case_id)
    return query


@dataclass(frozen=True)
class Row:
    """One suggestion as the decision pages show it."""

    suggestion: AiSuggestion
    case_reference: str | None
    decided_by: str | None

    @property
    def diff(self) -> list[str]:
        return list((self.suggestion.final or {}).get("diff") or [])

    def to_dict(self) -> dict[str, Any]:
        s = self.suggestion
        return {
            "id": s.id,
            "function": s.function,
            "backend": s.backend,
            "model_version": s.model_version,
            "input_sha256": s.input_sha256,
            "confidence": s.confidence,
            "decision": s.decision,
            "decided_by": self.decided_by,
            "decided_at": s.decided_at.isoformat() if s.decided_at else None,
            "created_at": s.created_at.isoformat() if s.created_at else None,
            "case_id": s.case_id,
            "case_reference": self.case_reference,
            "subject_type": s.subject_type,
            "subject_id": s.subject_id,
            "diff": self.diff,
        }


def list_rows(
    session: Session,
    *,
    tenant_id: int,
    filters: Filters = Filters(),
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Row], int]:
    """The tenant's suggestions, newest first, with the case reference and the decider's name."""
    base = _filtered(select(AiSuggestion), tenant_id, filters)
    total = int(session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    query = (
        _filtered(
            select(AiSuggestion, Case.reference, User.username, User.display_name),
            tenant_id,
            filters,
        )
        .outerjoin(Case, Case.id == AiSuggestion.case_id)
        .outerjoin(User, User.id == AiSuggestion.decided_by_id)
        .order_by(AiSuggestion.id.desc())
        .offset(max(0, offset))
        .limit(max(1, limit))
    )
    rows = [
        Row(s, reference, (display or username) if username else None)
        for s, reference, username, display in session.execute(query)
    ]
    return rows, total


def for_case(session: Session, case: Case) -> list[Row]:
    """Every suggestion about ``case``, oldest first (the case page's record)."""
    rows, _ = list_rows(
        session, tenant_id=case.tenant_id, filters=Filters(case_id=case.id), limit=1000
    )
    return list(reversed(rows))


@dataclass(frozen=True)
class Rate:
    """Per function: how often people took a suggestion as it was, edited, corrected or
    rejected it; ``acceptance`` = angenommen / human decisions, ``acceptance_with_edits``
    counts edited ones as accepted too."""

    function: str
    total: int
    open: int
    counts: dict[str, int]

    @property
    def human(self) -> int:
        return sum(self.counts.get(d, 0) for d in HUMAN)

    @property
    def acceptance(self) -> float | None:
        return self.counts.get("angenommen", 0) / self.human if self.human else None

    @property
    def acceptance_with_edits(self) -> float | None:
        if not self.human:
            return None
        return (self.counts.get("angenommen", 0) + self.counts.get("bearbeitet", 0)) / self.human

    def to_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "total": self.total,
            "open": self.open,
            "human_decisions": self.human,
            "counts": self.counts,
            "acceptance": self.acceptance,
            "acceptance_with_edits": self.acceptance_with_edits,
        }


def rates(session: Session, *, tenant_id: int) -> list[Rate]:
    """Acceptance per function over all of the tenant's suggestions."""
    decision = sql_case((AiSuggestion.decision.is_(None), "offen"), else_=AiSuggestion.decision)
    rows = session.execute(
        select(AiSuggestion.function, decision, func.count())
        .where(AiSuggestion.tenant_id == tenant_id)
        .group_by(AiSuggestion.function, decision)
    )
    by_function: dict[str, dict[str, int]] = {}
    for function, label, count in rows:
        by_function.setdefault(function, {})[label] = int(count)
    return [
        Rate(
            function=f,
            total=sum(c.values()),
            open=c.get("offen", 0),
            counts={k: v for k, v in c.items() if k != "offen"},
        )
        for f, c in sorted(by_function.items())
    ]


def functions(session: Session, *, tenant_id: int) -> Sequence[str]:
    return list(
        session.scalars(
            select(AiSuggestion.function)
            .where(AiSuggestion.tenant_id == tenant_id)
            .distinct()
            .order_by(AiSuggestion.function)
        )
    )
