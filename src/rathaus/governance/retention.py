"""Retention: how long closed cases and assistant conversations are kept, and what happens then.

Rules (:class:`~rathaus.core.models.RetentionRule`) exist per request type of a case (``''``:
every type without a rule of its own) and for assistant conversations (target
``unterhaltung``; without a rule ``assistant.retention_days`` applies). Only closed cases
(``erledigt``/``archiviert`` with ``closed_at`` older than the period) are touched, open ones
never. ``loeschen`` removes the case with its documents, stored originals, messages, events,
AI suggestions, embeddings, pseudonym maps and handed-over conversations; ``anonymisieren``
replaces the personal data by placeholders and keeps the case for statistics.

The two primitives :func:`delete_case` and :func:`anonymize_case` are shared with the DSGVO
erasure (:mod:`rathaus.governance.privacy`). Originals are removed from the file store only
after the transaction committed, so a rollback never leaves rows without their files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, event, func, or_, select
from sqlalchemy.orm import Session

from rathaus.ai.pii import (
    ADDRESS,
    EMAIL,
    IBAN,
    PERSON,
    PHONE,
    PiiSpan,
    _value_key,
    detect_pii,
    pseudonymize,
)
from rathaus.core import audit
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import (
    AiSuggestion,
    AssistantConversation,
    Case,
    CaseEvent,
    CaseStatus,
    Document,
    InsightDataset,
    Message,
    PseudonymMap,
    RetentionRule,
    RoutePlan,
    WritingJob,
    utcnow,
)
from rathaus.core.storage import OriginalStore
from rathaus.inbox.classify import REQUEST_TYPES
from rathaus.inbox.vectors import delete_vectors

TARGETS = {"vorgang": "Vorgänge", "unterhaltung": "Unterhaltungen des Bürgerassistenten"}
ACTIONS = {"loeschen": "löschen", "anonymisieren": "anonymisieren"}
CLOSED = (CaseStatus.ERLEDIGT, CaseStatus.ARCHIVIERT)
MAX_DAYS = 36500


# -- rules --------------------------------------------------------------------------------------


def rule_label(rule: RetentionRule) -> str:
    if rule.target == "unterhaltung":
        what = TARGETS["unterhaltung"]
    else:
        what = f"Vorgänge ({rule.request_type or 'alle übrigen Arten'})"
    return f"{what}: {rule.days} Tage, {ACTIONS.get(rule.action, rule.action)}"


def list_rules(session: Session, *, tenant_id: int) -> list[RetentionRule]:
    return list(
        session.scalars(
            select(RetentionRule)
            .where(RetentionRule.tenant_id == tenant_id)
            .order_by(RetentionRule.target.desc(), RetentionRule.request_type)
        )
    )


def _canonical_type(target: str, request_type: str) -> str:
    request_type = (request_type or "").strip()
    if request_type in ("", "*", "alle"):
        return ""
    if target == "unterhaltung":
        raise RathausError(
            "Für Unterhaltungen des Bürgerassistenten gibt es keine Anliegenart; "
            "bitte die Art weglassen."
        )
    for known in REQUEST_TYPES:
        if known.casefold() == request_type.casefold():
            return known
    raise RathausError(
        f"Unbekannte Anliegenart „{request_type[:40]}“. Erlaubt sind: "
        f"{', '.join(REQUEST_TYPES)} (oder leer für alle übrigen)."
    )


def validate_rule(target: str, request_type: str, days: int, action: str) -> tuple[str, str]:
    """The canonical (target, request type); a German :class:`RathausError` for bad input."""
    target = (target or "").strip().lower()
    if target not in TARGETS:
        raise RathausError(
            f"Unbekanntes Ziel „{target[:40]}“. Erlaubt sind: vorgang, unterhaltung."
        )
    if action not in ACTIONS:
        raise RathausError(
            f"Unbekannte Aktion „{str(action)[:40]}“. Erlaubt sind: loeschen, anonymisieren."
        )
    if target == "unterhaltung" and action != "loeschen":
        raise RathausError(
            "Unterhaltungen des Bürgerassistenten können nur gelöscht werden (Aktion loeschen); "
            "ihre Fragen sind bereits pseudonymisiert gespeichert."
        )
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise RathausError(
            f"Die Aufbewahrungsfrist muss zwischen 1 und {MAX_DAYS} Tagen liegen "
            f"(angegeben: {days})."
        )
    return target, _canonical_type(target, request_type)


def set_rule(
    session: Session,
    *,
    tenant_id: int,
    target: str,
    request_type: str = "",
    days: int,
    action: str = "loeschen",
    is_active: bool = True,
    actor: str,
) -> RetentionRule:
    """Create or change the rule for (target, request type); logged in the audit trail."""
    target, request_type = validate_rule(target, request_type, days, action)
    rule = session.scalar(
        select(RetentionRule).where(
            RetentionRule.tenant_id == tenant_id,
            RetentionRule.target == target,
            RetentionRule.request_type == request_type,
        )
    )
    before = None
    if rule is None:
        rule = RetentionRule(tenant_id=tenant_id, target=target, request_type=request_type)
        session.add(rule)
    else:
        before = {"days": rule.days, "action": rule.action, "is_active": rule.is_active}
    rule.days, rule.action, rule.is_active, rule.updated_by = days, action, is_active, actor
    session.flush()
    audit.record(
        session,
        audit.Event(
            kind="retention_rule_changed",
            actor=actor,
            tenant_id=tenant_id,
            subject=f"{target}:{request_type or '*'}",
            data={
                "before": before,
                "after": {"days": days, "action": action, "is_active": is_active},
            },
        ),
    )
    return rule


def remove_rule(
    session: Session, *, tenant_id: int, target: str, request_type: str = "", actor: str
) -> None:
    target = (target or "").strip().lower()
    if target not in TARGETS:
        raise RathausError(
            f"Unbekanntes Ziel „{target[:40]}“. Erlaubt sind: vorgang, unterhaltung."
        )
    request_type = _canonical_type(target, request_type)
    rule = session.scalar(
        select(RetentionRule).where(
            RetentionRule.tenant_id == tenant_id,
            RetentionRule.target == target,
            RetentionRule.request_type == request_type,
        )
    )
    if rule is None:
        raise NotFoundError(
            f"Eine Regel für {TARGETS[target]} ({request_type or 'alle übrigen Arten'}) gibt es "
            "nicht; `rathaus datenschutz aufbewahrung` zeigt die vorhandenen."
        )
    audit.record(
        session,
        audit.Event(
            kind="retention_rule_removed",
            actor=actor,
            tenant_id=tenant_id,
            subject=f"{target}:{request_type or '*'}",
            data={"days": rule.days, "action": rule.action},
        ),
    )
    session.delete(rule)
    session.flush()


# -- scrubbing: placeholders instead of personal data -------------------------------------------


def value_pattern(kind: str, value: str) -> re.Pattern[str] | None:
    """A pattern that finds ``value`` in other surface forms: an IBAN with or without spaces,
    a phone number with +49 or 0 and any separators, an e-mail in any case, a name or address
    across line breaks (``Straße``/``Str.``), a name also as "Nachname, Vorname"."""
    value = " ".join((value or "").split())
    if len(value) < 3:
        return None
    if kind == EMAIL:
        return re.compile(r"(?<![\w.+-])" + re.escape(value) + r"(?![\w-])", re.I)
    if kind == IBAN:
        compact = re.sub(r"\s", "", value)
        return re.compile(
            r"(?<![A-Za-z0-9])" + r"\s?".join(map(re.escape, compact)) + r"(?![A-Za-z0-9])", re.I
        )
    if kind == PHONE:
        key = _value_key(PHONE, value)
        digits = re.sub(r"\D", "", key)
        if len(digits) < 6:
            return None
        sep = r"[\s/()-]*"
        if key.startswith("0") and not key.startswith("00"):
            head = r"(?:\+49[ \t]?(?:\(0\)[ \t]?)?|0049[ \t]?|\(?0)"
            body = sep.join(digits[1:])
        else:
            head = r"\+?"
            body = sep.join(digits.lstrip("0"))
        return re.compile(r"(?<![\d+])" + head + sep + body + r"(?!\d)")
    words = [re.escape(w) for w in value.split(" ")]
    if kind == ADDRESS:
        words = [
            re.sub(r"(?:stra(?:ß|ss)e|str\\\.)$", r"(?:straße|strasse|str\\.)", w, flags=re.I)
            for w in words
        ]
    pattern = r"[\s,]+".join(words)
    if kind == PERSON and len(words) == 2:
        pattern = f"(?:{pattern}|{words[1]},\\s*{words[0]})"
    return re.compile(r"(?<![\w-])" + pattern + r"(?![\w-])", re.I)


def guess_kind(value: str) -> str:
    """The kind of a free contact field: e-mail, IBAN, phone number or else an address."""
    if "@" in value:
        return EMAIL
    compact = re.sub(r"[\s/()+-]", "", value)
    if compact.isdigit():
        return PHONE
    if re.fullmatch(r"[A-Za-z]{2}\d{2}[A-Za-z0-9]{10,30}", compact):
        return IBAN
    return ADDRESS


def _non_overlapping(spans: Iterable[PiiSpan]) -> list[PiiSpan]:
    ranked = sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start))
    taken: list[PiiSpan] = []
    for span in ranked:
        if span.end > span.start and all(span.end <= t.start or span.start >= t.end for t in taken):
            taken.append(span)
    return sorted(taken, key=lambda s: s.start)


@dataclass
class Scrubber:
    """Replaces personal data in texts by placeholders (``[PERSON_1]`` …), consistent within
    one case; the values are never kept. ``detect``: also everything :func:`detect_pii`
    finds (anonymisation), else only the given ``patterns`` (one person's erasure)."""

    patterns: list[tuple[str, re.Pattern[str]]]
    detect: bool = True
    mapping: dict[str, str] = field(default_factory=dict)
    replaced: int = 0

    def text(self, text: str | None) -> str | None:
        if not text:
            return text
        spans = list(detect_pii(text)) if self.detect else []
        for kind, pattern in self.patterns:
            spans += [
                PiiSpan(m.start(), m.end(), kind, m.group(), 1.0) for m in pattern.finditer(text)
            ]
        spans = _non_overlapping(spans)
        if not spans:
            return text
        new, self.mapping = pseudonymize(text, spans, self.mapping)
        self.replaced += len(spans)
        return new

    def data(self, value: Any) -> Any:
        """Every string inside a JSON value, scrubbed; the structure stays."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        return value

    def matches(self, text: str | None) -> bool:
        return bool(text) and any(p.search(text) for _, p in self.patterns)


def known_values(case: Case) -> list[tuple[str, str]]:
    """The personal values a case names explicitly: sender fields and extracted fields."""
    values: list[tuple[str, str]] = []
    if case.sender_name:
        values.append((PERSON, case.sender_name))
    if case.sender_contact:
        for part in re.split(r"[,;]\s*|\s+<|>", case.sender_contact):
            if part.strip():
                values.append((guess_kind(part.strip()), part.strip()))
    if case.address:
        values.append((ADDRESS, case.address))
    extracted = (case.fields or {}).get("extracted") or {}
    sender = extracted.get("sender") or {}
    for key, kind in (("name", PERSON), ("email", EMAIL), ("phone", PHONE), ("address", ADDRESS)):
        if isinstance(sender.get(key), str) and sender[key].strip():
            values.append((kind, sender[key]))
    for key, kind in (
        ("emails", EMAIL),
        ("phones", PHONE),
        ("ibans", IBAN),
        ("addresses", ADDRESS),
    ):
        for item in extracted.get(key) or []:
            if isinstance(item, str) and item.strip():
                values.append((kind, item))
    return values


def patterns_for(values: Iterable[tuple[str, str]]) -> list[tuple[str, re.Pattern[str]]]:
    seen: set[tuple[str, str]] = set()
    result = []
    for kind, value in values:
        key = (kind, _value_key(kind, value))
        if key in seen:
            continue
        seen.add(key)
        pattern = value_pattern(kind, value)
        if pattern is not None:
            result.append((kind, pattern))
    # Longer values first: "Anna Beispiel" before a bare "Beispiel".
    return sorted(result, key=lambda kp: -len(kp[1].pattern))


# -- originals: removed after the commit --------------------------------------------------------

_PENDING = "rathaus_originals_to_remove"


def _remove_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    for store, tenant_id, sha256 in pending:
        try:
            store.delete(tenant_id, sha256)
        except (OSError, RathausError):  # a file left behind is found by the next run
            continue


def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _original_still_used(session: Session, tenant_id: int, sha256: str) -> bool:
    for model, column in (
        (Document, Document.sha256),
        (WritingJob, WritingJob.original_sha256),
        (InsightDataset, InsightDataset.original_sha256),
        (RoutePlan, RoutePlan.original_sha256),
    ):
        found = session.scalar(
            select(func.count())
            .select_from(model)
            .where(model.tenant_id == tenant_id, column == sha256)
        )
        if found:
            return True
    return False


def remove_original_after_commit(
    session: Session, store: OriginalStore | None, tenant_id: int, sha256: str
) -> None:
    """Remove the stored original once this transaction commits (if no row still needs it)."""
    if store is None or not sha256 or _original_still_used(session, tenant_id, sha256):
        return
    if _PENDING not in session.info:
        session.info[_PENDING] = []
        if not event.contains(session, "after_commit", _remove_pending):
            event.listen(session, "after_commit", _remove_pending)
            event.listen(session, "after_rollback", _forget_pending)
    session.info[_PENDING].append((store, tenant_id, sha256))


# -- deleting and anonymising one case ----------------------------------------------------------


def _delete_conversations(session: Session, ids: list[int]) -> int:
    from rathaus.assistant.service import delete_conversations

    return delete_conversations(session, ids)


def handed_over_conversations(session: Session, case: Case) -> list[int]:
    return list(
        session.scalars(
            select(AssistantConversation.id).where(
                AssistantConversation.tenant_id == case.tenant_id,
                AssistantConversation.handed_over_case_id == case.id,
            )
        )
    )


def delete_case(
    session: Session,
    case: Case,
    *,
    store: OriginalStore | None,
    actor: str,
    audit_kind: str = "retention_deleted",
    audit_data: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Delete ``case`` with everything that belongs to it; one audit event (reference and
    reason, no personal data). Returns what was removed."""
    tenant_id, case_id, reference = case.tenant_id, case.id, case.reference
    shas = [d.sha256 for d in case.documents]
    removed = {
        "dokumente": len(shas),
        "nachrichten": len(case.messages),
        "unterhaltungen": _delete_conversations(session, handed_over_conversations(session, case)),
    }
    delete_vectors(session, tenant_id, [case_id])
    for model in (PseudonymMap, AiSuggestion, CaseEvent, Message, Document):
        session.execute(delete(model).where(model.tenant_id == tenant_id, model.case_id == case_id))
    session.execute(delete(Case).where(Case.id == case_id, Case.tenant_id == tenant_id))
    session.flush()
    for sha256 in shas:
        remove_original_after_commit(session, store, tenant_id, sha256)
    audit.record(
        session,
        audit.Event(
            kind=audit_kind,
            actor=actor,
            tenant_id=tenant_id,
            subject=reference,
            data={**(audit_data or {}), **removed},
        ),
    )
    return removed


_PERSONAL_LISTS = ("emails", "phones", "ibans", "addresses", "plates", "aktenzeichen")


def anonymize_case(
    session: Session,
    case: Case,
    *,
    store: OriginalStore | None,
    actor: str,
    now: dt.datetime | None = None,
    audit_kind: str = "retention_anonymized",
    audit_data: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Replace the personal data of ``case`` by placeholders and keep it for statistics:
    subject, sender fields, address (and coordinates), messages, extracted texts, event and
    suggestion data; the originals, embeddings, pseudonym maps and handed-over conversations
    are removed, the PII spans dropped, ``anonymized_at`` set."""
    scrub = Scrubber(patterns_for(known_values(case)), detect=True)
    case.subject = scrub.text(case.subject) or ""
    case.sender_name = "[PERSON]" if case.sender_name else ""
    case.sender_contact = scrub.text(case.sender_contact) or ""
    case.address = "[ADDRESS]" if case.address else ""
    case.latitude = case.longitude = None
    case.needs_review_reason = scrub.text(case.needs_review_reason)
    fields = {k: v for k, v in (case.fields or {}).items() if k != "pii"}
    extracted = fields.get("extracted")
    if isinstance(extracted, dict):
        extracted = {**extracted, "sender": None, **{k: [] for k in _PERSONAL_LISTS}}
        fields["extracted"] = scrub.data(extracted)
    case.fields = scrub.data(fields)
    for message in case.messages:
        message.body = scrub.text(message.body) or ""
        message.subject = scrub.text(message.subject) or ""
        message.sender = "[PERSON]" if message.sender else ""
        message.recipient = "[PERSON]" if message.recipient else ""
    shas = []
    for document in case.documents:
        shas.append(document.sha256)
        suffix = re.sub(r"[^A-Za-z0-9]", "", document.filename.rsplit(".", 1)[-1])[:8]
        document.filename = f"dokument-{document.id}" + (
            f".{suffix}" if "." in document.filename else ""
        )
        document.extracted_text = scrub.text(document.extracted_text)
        document.extraction_error = None
        # The hash of the deleted original would still link the row to the file's content.
        document.sha256 = hashlib.sha256(f"anonymisiert:{document.id}".encode()).hexdigest()
        document.storage_path = ""
    for row in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)):
        row.data = scrub.data(row.data or {})
    for row in session.scalars(select(AiSuggestion).where(AiSuggestion.case_id == case.id)):
        row.output = scrub.data(row.output or {})
        if row.final is not None:
            row.final = scrub.data(row.final)
    conversations = _delete_conversations(session, handed_over_conversations(session, case))
    delete_vectors(session, case.tenant_id, [case.id])
    session.execute(
        delete(PseudonymMap).where(
            PseudonymMap.tenant_id == case.tenant_id, PseudonymMap.case_id == case.id
        )
    )
    case.anonymized_at = now or utcnow()
    session.flush()
    for sha256 in shas:
        remove_original_after_commit(session, store, case.tenant_id, sha256)
    result = {
        "ersetzungen": scrub.replaced,
        "originale": len(shas),
        "unterhaltungen": conversations,
    }
    audit.record(
        session,
        audit.Event(
            kind=audit_kind,
            actor=actor,
            tenant_id=case.tenant_id,
            subject=case.reference,
            data={**(audit_data or {}), **result},
        ),
    )
    return result


# -- applying the rules -------------------------------------------------------------------------


@dataclass
class CaseAction:
    case_id: int
    reference: str
    request_type: str
    closed_at: dt.datetime
    action: str
    rule: str


@dataclass
class RetentionReport:
    tenant_id: int
    dry_run: bool
    cases: list[CaseAction] = field(default_factory=list)
    conversations: int = 0
    conversation_days: int = 0
    conversation_rule: bool = False

    def counts(self) -> dict[str, int]:
        return {
            "loeschen": sum(1 for c in self.cases if c.action == "loeschen"),
            "anonymisieren": sum(1 for c in self.cases if c.action == "anonymisieren"),
            "unterhaltungen": self.conversations,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "probelauf": self.dry_run,
            "vorgaenge": [{**asdict(c), "closed_at": c.closed_at.isoformat()} for c in self.cases],
            "unterhaltungen": self.conversations,
            "unterhaltungen_frist_tage": self.conversation_days,
            "unterhaltungen_regel": self.conversation_rule,
            "summen": self.counts(),
        }


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def due_cases(
    session: Session, *, tenant_id: int, now: dt.datetime
) -> list[tuple[Case, RetentionRule]]:
    """Closed cases past the period of their rule (the rule of their type, else the general
    one); already anonymised cases only under a ``loeschen`` rule. Open cases never."""
    rules = [r for r in list_rules(session, tenant_id=tenant_id) if r.is_active]
    specific = {r.request_type: r for r in rules if r.target == "vorgang" and r.request_type}
    general = next((r for r in rules if r.target == "vorgang" and not r.request_type), None)
    found: list[tuple[Case, RetentionRule]] = []
    plans: list[tuple[RetentionRule, Any]] = [
        (rule, Case.request_type == request_type) for request_type, rule in specific.items()
    ]
    if general is not None:
        plans.append(
            (
                general,
                or_(Case.request_type.is_(None), Case.request_type.not_in(list(specific) or [""])),
            )
        )
    for rule, condition in plans:
        query = select(Case).where(
            Case.tenant_id == tenant_id,
            Case.status.in_(list(CLOSED)),
            Case.closed_at.is_not(None),
            Case.closed_at < now - dt.timedelta(days=rule.days),
            condition,
        )
        if rule.action == "anonymisieren":
            query = query.where(Case.anonymized_at.is_(None))
        found += [(case, rule) for case in session.scalars(query.order_by(Case.id))]
    return sorted(found, key=lambda cr: cr[0].id)


def conversation_period(session: Session, *, tenant_id: int, default_days: int) -> tuple[int, bool]:
    """Days to keep conversations and whether a tenant rule (not the setting) says so."""
    rule = session.scalar(
        select(RetentionRule).where(
            RetentionRule.tenant_id == tenant_id,
            RetentionRule.target == "unterhaltung",
            RetentionRule.is_active.is_(True),
        )
    )
    return (rule.days, True) if rule is not None else (default_days, False)


def apply(
    session: Session,
    *,
    tenant_id: int,
    store: OriginalStore | None,
    default_conversation_days: int,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    actor: str = "system",
) -> RetentionReport:
    """Apply the tenant's rules (or, with ``dry_run``, only list what would happen)."""
    now = now or utcnow()
    report = RetentionReport(tenant_id=tenant_id, dry_run=dry_run)
    for case, rule in due_cases(session, tenant_id=tenant_id, now=now):
        report.cases.append(
            CaseAction(
                case_id=case.id,
                reference=case.reference,
                request_type=case.request_type or "",
                closed_at=_as_utc(case.closed_at) if case.closed_at else now,
                action=rule.action,
                rule=rule_label(rule),
            )
        )
        if dry_run:
            continue
        data = {"rule": rule_label(rule), "rule_id": rule.id}
        if rule.action == "loeschen":
            delete_case(session, case, store=store, actor=actor, audit_data=data)
        else:
            anonymize_case(session, case, store=store, actor=actor, now=now, audit_data=data)
    days, from_rule = conversation_period(
        session, tenant_id=tenant_id, default_days=default_conversation_days
    )
    report.conversation_days, report.conversation_rule = days, from_rule
    expired = list(
        session.scalars(
            select(AssistantConversation.id).where(
                AssistantConversation.tenant_id == tenant_id,
                AssistantConversation.last_activity_at < now - dt.timedelta(days=days),
            )
        )
    )
    report.conversations = len(expired)
    if expired and not dry_run:
        _delete_conversations(session, expired)
        audit.record(
            session,
            audit.Event(
                kind="retention_conversations_deleted",
                actor=actor,
                tenant_id=tenant_id,
                subject="unterhaltung",
                data={"count": len(expired), "days": days, "rule": from_rule},
            ),
        )
    session.flush()
    return report
