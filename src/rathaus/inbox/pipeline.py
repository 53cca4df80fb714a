"""The triage pipeline: what happens to every item after its original has been stored.

Read :data:`STEPS` top to bottom; each step is a small function of the :class:`Triage` state:

    read the text → language → personal data → instructions to the AI → fields →
    request type and urgency → related and duplicate cases → route → reply draft

A step that fails does not stop the others: the case is flagged "needs manual review" with the
step and the reason (German), and the original stays stored. Triage is idempotent: a case that
was triaged already is left alone, so a job that runs twice changes nothing. Runs that may
overlap (queue workers, the reconcile job) first take the case with :func:`claim_case`.

Entry points: :func:`ingest` (store + triage, the channels call it), :func:`triage_case` (one
stored case, also from the queue) and :func:`triage_many` (a batch, embeddings computed once).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session, selectinload

from rathaus.ai.llm import ModelUnavailableError
from rathaus.core import audit
from rathaus.core.cases import add_working_days, record_event, transition
from rathaus.core.config import InboxSettings, Settings
from rathaus.core.errors import RathausError
from rathaus.core.models import (
    AiSuggestion,
    Case,
    CaseStatus,
    Message,
    OrgUnit,
    Service,
    Tenant,
    utcnow,
)
from rathaus.core.storage import OriginalStore
from rathaus.governance import decisions
from rathaus.governance.gateway import model_context
from rathaus.inbox import classify, places, reply, router, routing, training
from rathaus.inbox.service import IncomingItem, Received, receive
from rathaus.inbox.vectors import CASE_INDEX, owners_with_vectors, store_vectors

log = logging.getLogger(__name__)

MAX_PII_SPANS = 500
DUPLICATE_WINDOW = dt.timedelta(days=30)


@dataclass
class TriageKit:
    """What the pipeline needs besides the database: built once per process from settings."""

    store: OriginalStore
    data_dir: Path
    secret_key: str
    inbox: InboxSettings = field(default_factory=InboxSettings)
    embedder: Any = None
    language_model: Any = None
    limits: Any = None
    ocr: Any = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, embedder: Any = "auto", language_model: Any = "auto"
    ) -> TriageKit:
        from rathaus.ai import registry

        if embedder == "auto":
            embedder = registry.get_embedder(settings)
        if language_model == "auto":
            language_model = (
                registry.get_language_model(settings, "antwortentwurf")
                if settings.inbox.llm_reply_drafts
                else None
            )
        from rathaus.inbox.documents import Limits

        return cls(
            store=OriginalStore(settings.originals_dir),
            data_dir=settings.data_dir,
            secret_key=settings.secret_key.get_secret_value(),
            inbox=settings.inbox,
            embedder=embedder,
            language_model=language_model,
            limits=Limits(
                max_bytes=settings.inbox.max_upload_mb * 1024 * 1024,
                max_pdf_pages=settings.inbox.max_pdf_pages,
                max_attachments=settings.inbox.max_attachments,
            ),
        )


@dataclass
class Triage:
    """The state that flows through the steps for one case."""

    session: Session
    kit: TriageKit
    tenant: Tenant
    case: Case
    directory: router.Directory
    live: training.LiveModel | None
    text: str = ""
    flags: list[str] = field(default_factory=list)
    vector: np.ndarray | None = None
    deadlines: list[str] = field(default_factory=list)
    routing: router.RoutingResult | None = None
    input_sha256: str = ""
    vector_error: RathausError | None = None
    # Model outputs computed for a whole batch in advance (see triage_many), by task.
    predictions: dict[str, list[Any]] = field(default_factory=dict)
    # Also computed for the batch in advance: the injection screening, the routing rules and
    # the word overlap with the unit and service profiles (router.lexical_scores).
    screening: Any = None
    rules: list[Any] | None = None
    lexical: np.ndarray | None = None
    # Whether the case has a stored vector of the embedder's model (looked up for the batch;
    # None: not known, so find_related replaces any).
    has_vector: bool | None = None
    # Suggestions of the steps so far, recorded together when the steps end (see _run).
    pending_suggestions: list[dict[str, Any]] | None = None
    # The fields found in the text (extract.extract_fields), worked out once: the batch's
    # model prediction may need the address before the fields step runs.
    extracted: Any = None
    # Where the item is, as the live model reads it (see _places).
    place: dict[str, str] | None = None

    def predict(self, task: str, k: int) -> list[Any]:
        """Top-``k`` suggestions of the live model for ``task`` ("unit", "service", …)."""
        if task not in self.predictions:
            assert self.live is not None
            vectors = _vectors_for(self) if self.live.uses_vectors else None
            self.predictions[task] = self.live.models[task].predict(
                [self.text],
                k=5,
                vectors=vectors,
                extra_features=[_places(self)] if self.live.uses_location else None,
            )[0]
        return self.predictions[task][:k]

    def flag(self, reason: str) -> None:
        if reason not in self.flags:
            self.flags.append(reason)

    def suggest(
        self,
        function: str,
        backend: str,
        output: dict[str, Any],
        confidence: float | None,
        *,
        version: str = "",
        decision: str | None = None,
    ) -> None:
        """Record a suggestion for the case: at once, or with the item's other suggestions
        at the end of its steps where :func:`_run` collects them (one INSERT)."""
        values = decisions.suggestion_values(
            tenant_id=self.tenant.id,
            case_id=self.case.id,
            function=function,
            backend=backend,
            model_version=version,
            input_sha256=self.input_sha256,
            output=output,
            confidence=confidence,
            decision=decision,
        )
        if self.pending_suggestions is not None:
            self.pending_suggestions.append(values)
        else:
            self.session.add(AiSuggestion(**values))


# -- the steps ---------------------------------------------------------------------------------


def compose_text(subject: str, bodies: Sequence[str], extracted: Sequence[str]) -> str:
    """The text triage reads: subject (unless the body starts with it), the incoming message
    bodies, then each document's extracted text that is not already there. The review page
    composes it the same way to place the stored PII offsets."""
    subject = subject.strip()
    repeated = subject and any(b.lstrip().startswith(subject) for b in bodies)
    parts = ([] if repeated else [subject]) + [b for b in bodies if b.strip()]
    seen = {" ".join(p.split()) for p in parts}
    for document_text in extracted:
        document_text = (document_text or "").strip()
        # a document that only repeats a body (other line breaks)
        flat = " ".join(document_text.split())
        if document_text and flat not in seen:
            parts.append(document_text)
            seen.add(flat)
    return "\n\n".join(p for p in parts if p and p.strip())


def case_text_parts(case: Case) -> tuple[list[str], list[str]]:
    """Incoming message bodies and extracted document texts of a case, in order."""
    bodies = [m.body for m in case.messages if m.direction == "in" and m.body.strip()]
    return bodies, [d.extracted_text or "" for d in case.documents]


def read_text(t: Triage) -> None:
    """Text of every stored document (text layer, OCR, DOCX, e-mail …) plus the message body.

    Everything is read and worked out first and written to the documents at the end, so a
    failure on the way leaves them as they were (no savepoint needed)."""
    from rathaus.inbox.documents import Limits, extract

    updates = []
    flags: list[str] = []
    for document in t.case.documents:
        if document.extraction_status != "ausstehend":
            continue
        data = t.kit.store.get(t.tenant.id, document.sha256)
        result = extract(
            data, document.filename, document.media_type, limits=t.kit.limits, ocr=t.kit.ocr
        )
        error = (
            "\n".join(filter(None, [result.error, *_attachment_errors(result), *result.warnings]))[
                :4000
            ]
            or None
        )
        if result.needs_review:
            problems = [e for e in [result.error, *_attachment_errors(result)] if e]
            more = f" (und {len(problems) - 1} weitere Hinweise)" if len(problems) > 1 else ""
            flags.append(
                f"{document.filename}: {problems[0] if problems else 'nicht lesbar'}{more}"
            )
        for note in _cut_short(result, t.kit.limits or Limits()):
            flags.append(f"{note} – bitte den Rest im Original ansehen.")
        status = "fehler" if result.needs_review else "ok"
        updates.append((document, result, _with_attachments(result), status, error))
    for document, result, extracted_text, status, error in updates:
        document.extracted_text = extracted_text
        document.extraction_status = status
        document.extraction_error = error
        _take_mail_headers(t.case, result)
    for reason in flags:
        t.flag(reason)
    bodies, extracted = case_text_parts(t.case)
    t.text = compose_text(t.case.subject, bodies, extracted)
    t.input_sha256 = hashlib.sha256(t.text.encode("utf-8")).hexdigest()
    if not bodies and not any(e.strip() for e in extracted):
        t.flag("Kein lesbarer Text – bitte das Original ansehen.")


def _with_attachments(result: Any) -> str:
    parts = [result.text]
    for attachment in result.attachments:
        if attachment.text.strip():
            parts.append(f"--- Anhang: {attachment.filename} ---\n{_with_attachments(attachment)}")
    return "\n\n".join(p for p in parts if p.strip())


def _cut_short(result: Any, limits: Any) -> list[str]:
    """Where a limit stopped the reading (PDF pages, text length), also in attachments: the
    text is partial, so a person must read the rest (docs/limits.md)."""
    notes = []
    if "pdf" in result.media_type and result.pages > limits.max_pdf_pages:
        notes.append(
            f"{result.filename}: nur die ersten {limits.max_pdf_pages} von {result.pages} "
            "Seiten gelesen"
        )
    if len(result.text) >= limits.max_text_chars:
        chars = f"{limits.max_text_chars:,}".replace(",", ".")
        notes.append(f"{result.filename}: Text nach {chars} Zeichen gekürzt")
    for attachment in result.attachments:
        notes += _cut_short(attachment, limits)
    return notes


def _attachment_errors(result: Any) -> list[str]:
    errors = []
    for attachment in result.attachments:
        if attachment.error:
            errors.append(f"{attachment.filename}: {attachment.error}")
        errors += _attachment_errors(attachment)
    return errors


def _take_mail_headers(case: Case, result: Any) -> None:
    meta = result.metadata or {}
    if meta.get("subject") and (not case.subject or case.subject == result.filename):
        case.subject = meta["subject"][:300]
    if meta.get("from") and not case.sender_contact:
        case.sender_contact = meta["from"][:300]


def detect_language(t: Triage) -> None:
    t.case.language = classify.detect_language(t.text).label


def find_personal_data(t: Triage) -> None:
    """Names, addresses, IBAN, phone, e-mail, birth dates, tax ID, Aktenzeichen, plates: kept as
    kinds and positions (for highlighting and pseudonymisation), not copied elsewhere."""
    from rathaus.ai.pii import detect_pii

    spans = detect_pii(t.text)
    t.case.fields = {
        **(t.case.fields or {}),
        "pii": [{"kind": s.kind, "start": s.start, "end": s.end} for s in spans[:MAX_PII_SPANS]],
        "text_sha256": t.input_sha256,
    }


def check_instructions_to_ai(t: Triage) -> None:
    """Screen the text for prompt injection (rules plus classifier). A suspicious item is kept
    and flagged for a person: no automatic routing (any flag stops it) and no reply draft by a
    language model (see :func:`draft_reply`); the finding is kept on the case."""
    from rathaus.governance import injection

    screening = t.screening if t.screening is not None else injection.screen(t.text)
    t.case.fields = {**(t.case.fields or {}), "injection": screening.as_dict()}
    if screening.found:
        t.flag(injection.flag_message(screening))
        t.suggest(
            "flag",
            "regeln+klassifikator",
            {"injection": list(screening.snippets), "reason": screening.reason,
             "rules": list(screening.rules)},
            max(screening.score, 1.0 if screening.rules else 0.0),
        )  # fmt: skip


def injection_suspected(case: Case) -> bool:
    """Whether the screening found instructions to the AI in the case's text."""
    return bool(((case.fields or {}).get("injection") or {}).get("found"))


def _extracted(t: Triage) -> Any:
    """The fields found in the item's text (the tenant's own address left out), once."""
    if t.extracted is None:
        from rathaus.inbox.extract import extract_fields as extract

        own = ", ".join(
            p for p in (t.tenant.street, f"{t.tenant.postal_code} {t.tenant.city}".strip()) if p
        )
        t.extracted = extract(t.text, received_at=t.case.received_at, own_address=own or None)
    return t.extracted


def _places(t: Triage) -> dict[str, str]:
    """Where the item is, as the live model reads it (:func:`places.case_places`): the case's
    coordinates and address, else the first address in its text, which :func:`extract_fields`
    stores as the case's address (so a batch, predicting before that step, sees the same)."""
    if t.place is None:
        address = t.case.address
        if not address:
            try:
                found = _extracted(t).addresses
            except Exception:  # noqa: BLE001 - the fields step repeats it and reports the reason
                log.exception("Felder von Vorgang %s nicht erkannt", t.case.id)
                found = []
            address = found[0][:300] if found else ""
        t.place = places.case_places(t.case, address=address)
    return t.place


def extract_fields(t: Triage) -> None:
    fields = _extracted(t)
    data = fields.to_dict()
    t.case.fields = {**(t.case.fields or {}), "extracted": data}
    t.deadlines = sorted(d.date for d in fields.deadlines)
    for mention in fields.dates:
        label = mention.label.lower()
        if any(w in label for w in ("frist", "bis", "läuft", "expires", "ablauf", "spätestens")):
            t.deadlines.append(mention.date)
    if fields.sender is not None:
        if fields.sender.name and not t.case.sender_name:
            t.case.sender_name = fields.sender.name[:200]
        if not t.case.sender_contact:
            contact = fields.sender.email or fields.sender.address or fields.sender.phone or ""
            t.case.sender_contact = contact[:300]
    if fields.addresses and not t.case.address:
        t.case.address = fields.addresses[0][:300]
    t.suggest("fields", "regeln", data, None)


def classify_request(t: Triage) -> None:
    """Request type and urgency: rules, and the live model where it knows request types."""
    incoming = next((m.body for m in t.case.messages if m.direction == "in"), "")
    verdict = classify.classify_request_type(t.case.subject, incoming or t.text)
    backend, version, confidence = "regeln", "", verdict.confidence
    label, reasons = verdict.label, list(verdict.reasons)
    best = None
    if t.live is not None and "request_type" in t.live.models:
        try:
            best = t.predict("request_type", 1)[0]
        except RathausError:
            best = None  # the rules' answer stands; routing reports the reason
        if best is not None and best.probability > max(0.6, verdict.confidence):
            label, confidence, backend = best.label, best.probability, "klassifikator"
            version = t.live.label if t.live else ""
            reasons = [f"gelernt aus {t.live.version.n_train if t.live else 0} Vorgängen"]
    t.case.request_type = label
    t.suggest(
        "request_type", backend, {"label": label, "reasons": reasons}, confidence, version=version
    )
    today = t.case.received_at.date().isoformat()
    legal = [
        d["date"]
        for d in (t.case.fields.get("extracted") or {}).get("deadlines", [])
        if d.get("kind") in ("widerspruchsfrist", "einspruchsfrist")
    ]
    urgency = classify.classify_urgency(
        t.text, deadlines=t.deadlines, today=today, legal_deadlines=legal
    )
    t.case.urgency = urgency.label
    t.suggest(
        "urgency", "regeln", {"label": urgency.label, "reasons": list(urgency.reasons)},
        urgency.confidence,
    )  # fmt: skip


def _vectors_for(t: Triage) -> np.ndarray | None:
    """The item's embedding as a (1, d) array; a failing embedder is asked only once per item
    (its error is raised again, so each step that needs the vector fails with the reason)."""
    if t.vector is None and t.kit.embedder is not None:
        if t.vector_error is None:
            try:
                t.vector = t.kit.embedder.embed_passages([t.text[:4000]])[0]
            except RathausError as exc:
                t.vector_error = exc
        if t.vector_error is not None:
            raise t.vector_error
    return None if t.vector is None else t.vector[None, :]


def find_related(t: Triage) -> None:
    """Cases this one refers to (their Aktenzeichen in the text) and similar recent cases; a
    near-identical text within 30 days is flagged as a possible duplicate."""
    related: list[dict[str, Any]] = []
    references = [r for r in (t.case.fields.get("extracted") or {}).get("aktenzeichen", [])]
    if references:
        for other in t.session.scalars(
            select(Case).where(
                Case.tenant_id == t.tenant.id,
                Case.reference.in_(references),
                Case.id != t.case.id,
            )
        ):
            related.append(
                {"case_id": other.id, "reference": other.reference, "reason": "Aktenzeichen"}
            )
    if t.kit.embedder is not None:
        _vectors_for(t)
        assert t.vector is not None
        # The reads below need no flush first: the rows they look for (other cases, their
        # vectors) were flushed before this item's steps began. What this item's steps added
        # so far is written with its vector, by the next flush (see _run).
        with t.session.no_autoflush:
            neighbours = CASE_INDEX.nearest(
                t.session,
                t.tenant.id,
                t.kit.embedder.model,
                t.vector,
                k=5,
                exclude={t.case.id},
            )
            store_vectors(
                t.session,
                t.tenant.id,
                [t.case.id],
                t.vector[None, :],
                t.kit.embedder.model,
                [t.text[:4000]],
                flush=False,
                replace=t.has_vector is not False,
            )
            close = [(cid, s) for cid, s in neighbours if s >= t.kit.inbox.related_similarity]
            # Only the columns used below (no case objects to build).
            others = (
                {
                    row.id: row
                    for row in t.session.execute(_CASES_BY_ID, {"ids": [cid for cid, _ in close]})
                }
                if close
                else {}
            )
        if close:
            for cid, score in close:
                other = others.get(cid)
                if other is None or any(r["case_id"] == cid for r in related):
                    continue
                duplicate = (
                    score >= t.kit.inbox.duplicate_similarity
                    and abs(_aware(t.case.received_at) - _aware(other.received_at))
                    <= DUPLICATE_WINDOW
                )
                related.append(
                    {
                        "case_id": cid,
                        "reference": other.reference,
                        "similarity": round(score, 3),
                        "reason": "mögliches Duplikat" if duplicate else "ähnlicher Text",
                    }
                )
                if duplicate:
                    t.flag(f"Mögliches Duplikat von {other.reference} (Ähnlichkeit {score:.0%}).")
        t.case.fields = {**t.case.fields, "similar": [[cid, round(s, 3)] for cid, s in neighbours]}
    if related:
        t.case.fields = {**t.case.fields, "related": related}


_CASES_BY_ID = select(Case.id, Case.reference, Case.received_at).where(
    Case.id.in_(bindparam("ids", expanding=True))
)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def route(t: Triage) -> None:
    """Rules, then the live model, then similarity; route automatically or into triage."""
    case = t.case
    incoming = next((m for m in case.messages if m.direction == "in"), None)
    rule_hits: list[router.Candidate] = []
    rule_name = None
    reasons: list[str] = []
    rules = t.rules if t.rules is not None else router.active_rules(t.session, t.tenant.id)
    for rule in rules:
        words = router.rule_matches(
            rule,
            text=t.text,
            subject=case.subject,
            sender=f"{case.sender_name} {case.sender_contact} {incoming.sender if incoming else ''}",
            channel=case.channel,
        )
        unit = t.directory.by_id(rule.org_unit_id)
        if words and unit is not None:
            service = t.directory.services.get(rule.service.code) if rule.service else None
            rule_hits.append(
                t.directory.candidate(unit, 1.0, "regel", service=service, calibrated=True)
            )
            rule_name = rule_name or rule.name
            reasons.append(f"Regel „{rule.name}“: {words}")
    model_hits: list[router.Candidate] = []
    unit_top, services = [], []
    if t.live is not None:
        try:
            unit_top = t.predict("unit", 5)
            services = t.predict("service", 5) if "service" in t.live.models else []
        except RathausError as exc:  # e.g. the embedding server is down
            t.flag(f"Zuordnungsmodell nicht nutzbar ({exc}); Vorschläge nur nach Ähnlichkeit.")
        for suggestion in unit_top:
            unit = t.directory.units.get(suggestion.label)
            if unit is None:
                continue
            service = next(
                (
                    t.directory.services[s.label]
                    for s in services
                    if s.label in t.directory.services
                    and t.directory.services[s.label].org_unit_id == unit.id
                ),
                None,
            )
            model_hits.append(
                t.directory.candidate(
                    unit, suggestion.probability, "modell", service=service, calibrated=True
                )
            )
    similar = router.similarity_candidates(
        t.directory,
        t.text,
        text_vector=t.vector,
        profile_vectors=_profile_vectors(t),
        k=len(t.directory.units),
        lexical=t.lexical,
    )
    model_hits = router.order_by_evidence(model_hits, similar)
    candidates = router.merge_candidates(rule_hits, model_hits, similar)
    t.routing = router.RoutingResult(
        candidates=candidates,
        model_version=t.live.label if t.live else "ähnlichkeit",
        rule=rule_name,
        reasons=reasons,
    )
    best = t.routing.best
    unit = t.directory.by_id(best.org_unit_id) if best else None
    auto, why = router.may_route_automatically(
        best,
        unit,
        model_thresholds=t.live.thresholds if t.live else {},
        flagged=bool(t.flags),
    )
    output = {
        "candidates": [c.as_dict() for c in candidates],
        "reasons": reasons,
        "decision_reason": why,
        "similar_cases": (case.fields or {}).get("similar", [])[:3],
    }
    t.suggest(
        "routing",
        best.source if best else "keine",
        output,
        best.probability if best else None,
        version=t.routing.model_version,
        decision="automatisch" if auto else None,
    )
    if auto and best is not None and unit is not None:
        service = _service(t, best)
        assign(t.session, case, unit, service, actor=None, how="automatisch", why=why)
        # Every automatic action is in the audit chain too (no content, only what was decided).
        audit.record(
            t.session,
            audit.Event(
                kind="zuordnung_automatisch",
                actor="system",
                tenant_id=t.tenant.id,
                subject=f"case:{case.id}",
                data={
                    "reference": case.reference,
                    "org_unit": unit.code,
                    "service": service.code if service is not None else None,
                    "confidence": best.probability,
                    "threshold": unit.auto_route_threshold,
                    "model_version": t.routing.model_version,
                },
            ),
        )
    elif CaseStatus(case.status) == CaseStatus.NEU:
        # A suggestion only: unit and service are set when a person decides.
        transition(t.session, case, CaseStatus.TRIAGE, actor=None, reason=why)


def _service(t: Triage, candidate: router.Candidate) -> Service | None:
    if candidate.service_code is None:
        return None
    return t.directory.services.get(candidate.service_code)


_PROFILE_CACHE: dict[tuple[str, int, str, str], np.ndarray] = {}


def _profile_vectors(t: Triage) -> np.ndarray | None:
    if t.kit.embedder is None or t.vector is None:
        return None
    _, texts = router.profile_texts(t.directory)
    key = (
        str(t.session.get_bind().url),
        t.tenant.id,
        t.kit.embedder.model,
        router.profile_key(t.directory),
    )
    if key not in _PROFILE_CACHE:
        _PROFILE_CACHE[key] = t.kit.embedder.embed_passages(texts)
    return _PROFILE_CACHE[key]


def draft_reply(t: Triage) -> None:
    """A reply draft from the service's template (or the request type's), never sent."""
    case = t.case
    best = t.routing.best if t.routing else None
    unit = case.org_unit or (t.directory.by_id(best.org_unit_id) if best else None)
    service = case.service or (_service(t, best) if best else None)
    text = reply.template_draft(case, t.tenant, unit, service)
    backend, version = "vorlage", ""
    # A letter with instructions to the AI never reaches a language model: template only.
    if t.kit.language_model is not None and not injection_suspected(case):
        try:
            text = reply.improve_with_model(
                t.kit.language_model, text, reply.values_for(case, t.tenant, unit, service)
            )
            backend = "sprachmodell"
            version = getattr(t.kit.language_model, "version", "")
        except RathausError as exc:
            log.warning("Antwortentwurf ohne Sprachmodell: %s", exc)
            # Policy, key or model server down: the draft is the template; a person should know.
            if isinstance(exc, ModelUnavailableError):
                t.flag(f"Antwortentwurf ohne Sprachmodell: {exc}")
    t.session.add(
        Message(
            tenant_id=t.tenant.id,
            case_id=case.id,
            direction="out",
            channel="entwurf",
            recipient=(case.sender_contact or case.sender_name)[:300],
            subject=f"Ihr Anliegen: {case.subject}"[:300],
            body=text,
            status="entwurf",
        )
    )
    t.suggest("reply", backend, {"text": text}, None, version=version)


STEPS: tuple[Callable[[Triage], None], ...] = (
    read_text,
    detect_language,
    find_personal_data,
    check_instructions_to_ai,
    extract_fields,
    classify_request,
    find_related,
    route,
    draft_reply,
)
# Steps that query or write rows beyond the case's own fields and their one suggestion; the
# others (read_text too) compute first and record at their end, so a failure leaves nothing.
# When a step fails, the steps of its item run again one by one, these each in a savepoint
# (see _run).
WRITING_STEPS = frozenset({find_related, route, draft_reply})
STEP_NAMES = {
    "read_text": "Text lesen",
    "detect_language": "Sprache",
    "find_personal_data": "Personenbezogene Daten",
    "check_instructions_to_ai": "Anweisungen an die KI",
    "extract_fields": "Felder",
    "classify_request": "Anliegenart und Dringlichkeit",
    "find_related": "Verwandte Vorgänge",
    "route": "Zuordnung",
    "draft_reply": "Antwortentwurf",
}


# -- decisions (used by the pipeline and by people) ---------------------------------------------


def assign(
    session: Session,
    case: Case,
    unit: OrgUnit,
    service: Service | None,
    *,
    actor: Any,
    how: str,
    why: str = "",
) -> None:
    """Give the case to ``unit`` (and ``service``): status ``zugewiesen``, SLA clock from the
    service, one event in the case log."""
    previous = case.org_unit_id
    case.org_unit_id = unit.id
    case.org_unit = unit
    if service is not None:
        case.service_id = service.id
        case.service = service
        tenant = session.get(Tenant, case.tenant_id)
        case.due_at = add_working_days(
            _aware(case.received_at), service.sla_working_days, tenant.land if tenant else "BW"
        )
    if CaseStatus(case.status) != CaseStatus.ZUGEWIESEN:
        transition(session, case, CaseStatus.ZUGEWIESEN, actor=actor, reason=why)
    record_event(
        session,
        case,
        kind="routed",
        activity=f"Zugeordnet an {unit.name}",
        actor=actor,
        data={
            "org_unit": unit.code,
            "service": service.code if service else None,
            "previous_org_unit_id": previous,
            "how": how,
            "why": why,
        },
    )


# -- entry points ------------------------------------------------------------------------------


def _prepare(
    session: Session,
    case: Case,
    kit: TriageKit,
    directory: router.Directory | None,
    live: training.LiveModel | None | str,
) -> Triage:
    tenant = session.get(Tenant, case.tenant_id)
    assert tenant is not None
    problem = None
    if live == "load":
        live, problem = load_live_model(session, tenant, kit)
    t = Triage(
        session=session,
        kit=kit,
        tenant=tenant,
        case=case,
        directory=directory or router.Directory.load(session, tenant.id),
        live=live if not isinstance(live, str) else None,
    )
    if problem:
        t.flag(problem)
    return t


def load_live_model(
    session: Session, tenant: Tenant, kit: TriageKit
) -> tuple[training.LiveModel | None, str | None]:
    """The live routing model, or ``None`` and a German reason (e.g. a model file that fails its
    HMAC check): triage then goes on with rules and similarity only."""
    try:
        live = training.live_model(
            session, tenant, data_dir=kit.data_dir, secret_key=kit.secret_key
        )
    except RathausError as exc:
        log.error("Zuordnungsmodell nicht geladen: %s", exc)
        return None, f"Zuordnungsmodell nicht verfügbar: {exc}"
    return live, None


def _model_scope(t: Triage) -> Any:
    """Model calls for one case go through the gateway at the case's confidentiality level,
    with the case's own placeholders. The reply draft shows the real values again: it stays on
    the case, seen only by those who may open the case and its letter anyway (docs/pseudonymisation.md)."""
    return model_context(
        level=t.case.confidentiality,
        tenant_id=t.tenant.id,
        case_id=t.case.id,
        may_reidentify=True,
        session=t.session,
        actor="posteingang",
    )


def _batch_model_scope(session: Session, cases: Sequence[Case]) -> Any:
    """The embeddings of a batch: the strictest level among its cases, placeholders for the
    batch only (vectors are never re-identified)."""
    order = {"oeffentlich": 0, "intern": 1, "vertraulich": 2}
    level = max((str(c.confidentiality) for c in cases), key=order.get, default="intern")
    tenants = {c.tenant_id for c in cases}
    return model_context(
        level=level,
        tenant_id=tenants.pop() if len(tenants) == 1 else None,
        session=session,
        actor="posteingang",
    )


def _run(
    t: Triage,
    steps: Sequence[Callable[[Triage], None]],
    failed: list[str],
    *,
    then: Callable[[], None] | None = None,
) -> None:
    """Run the steps of one item (and ``then``), all in one savepoint: the usual case, where
    none fails, costs one savepoint and one flush per item, and its suggestions are written
    with one INSERT at the end of its steps (:func:`decisions.suggest_many`).

    When a step fails, that savepoint is rolled back, so nothing the item's steps wrote stays
    behind, and the steps run again one by one (:func:`_run_one_by_one`): the failing step is
    flagged on the case and the others still run, each writing step in its own savepoint. The
    item's embedding and model outputs are kept for the second run (a failing embedder is still
    asked only once per item)."""
    if not any(step in WRITING_STEPS for step in steps):
        _run_one_by_one(t, steps, failed)
        if then is not None:
            then()
        return
    before = _Mark.of(t)
    try:
        with t.session.begin_nested():
            t.pending_suggestions = []
            try:
                for step in steps:
                    step(t)
                decisions.suggest_many(t.session, t.pending_suggestions)
            finally:
                t.pending_suggestions = None
            if then is not None:
                then()
    except Exception:  # noqa: BLE001 - reported by the second run, step by step
        before.restore(t)
        _run_one_by_one(t, steps, failed)
        if then is not None:
            then()


@dataclass(frozen=True)
class _Mark:
    """What the steps change on a :class:`Triage` apart from rows (those go with the
    savepoint); the embedding and model outputs are not reset."""

    text: str
    input_sha256: str
    flags: tuple[str, ...]
    deadlines: tuple[str, ...]
    routing: router.RoutingResult | None

    @classmethod
    def of(cls, t: Triage) -> _Mark:
        return cls(t.text, t.input_sha256, tuple(t.flags), tuple(t.deadlines), t.routing)

    def restore(self, t: Triage) -> None:
        t.text, t.input_sha256, t.routing = self.text, self.input_sha256, self.routing
        t.flags, t.deadlines = list(self.flags), list(self.deadlines)


def _run_one_by_one(
    t: Triage, steps: Sequence[Callable[[Triage], None]], failed: list[str]
) -> None:
    for step in steps:
        try:
            if step in WRITING_STEPS:
                # A savepoint: a failing step leaves no half-written rows behind.
                with t.session.begin_nested():
                    step(t)
            else:
                step(t)
        except Exception as exc:  # noqa: BLE001 - one failing step must not stop the others
            log.exception("Schritt %s für Vorgang %s fehlgeschlagen", step.__name__, t.case.id)
            name = STEP_NAMES.get(step.__name__, step.__name__)
            message = str(exc) if isinstance(exc, RathausError) else type(exc).__name__
            t.flag(f"Schritt „{name}“ fehlgeschlagen: {message}")
            failed.append(step.__name__)


def _finish(t: Triage, failed: list[str], seconds: float) -> None:
    case = t.case
    if CaseStatus(case.status) == CaseStatus.NEU:
        transition(t.session, case, CaseStatus.TRIAGE, actor=None, reason="Prüfung nötig")
    case.needs_review_reason = "\n".join(t.flags) or None
    case.triaged_at = utcnow()
    record_event(
        t.session,
        case,
        kind="triaged",
        activity="Vorprüfung durch KI",
        actor=None,
        data={"seconds": round(seconds, 3), "failed_steps": failed, "flags": t.flags},
    )


def _finisher(t: Triage, failed: list[str], started: float) -> Callable[[], None]:
    """:func:`_finish` for ``t``, timed from ``started`` (``time.perf_counter``)."""
    return lambda: _finish(t, failed, time.perf_counter() - started)


def claim_case(session: Session, case_id: int) -> Case | None:
    """Take the case for triage in this transaction: the case, or ``None`` when it does not
    exist or was triaged already. Call it first in a fresh transaction, then triage and commit.

    Why: the same case may be triaged by two runners at once (two workers, a job and the
    reconcile job, a job delivered twice) or again after a worker was killed mid-job. The case
    row is locked until the transaction ends: on PostgreSQL with ``SELECT … FOR UPDATE`` (a
    second runner waits, then sees ``triaged_at`` set and skips), on SQLite by writing first,
    which takes the database's write lock (SQLite has no row locks). A killed runner's
    transaction is rolled back by the database, its lock goes with it, and the case is
    untriaged for the next runner: every case is triaged exactly once.
    """
    if session.get_bind().dialect.name == "sqlite":
        # A write that changes nothing (plain SQL, so ``updated_at`` stays as it is).
        session.execute(
            text("UPDATE cases SET triaged_at = triaged_at WHERE id = :id"), {"id": case_id}
        )
    case = session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .with_for_update(of=Case)
        .execution_options(populate_existing=True)
    )
    if case is None or case.triaged_at is not None:
        return None
    return case


def triage_case(
    session: Session,
    case: Case,
    kit: TriageKit,
    *,
    directory: router.Directory | None = None,
    live: training.LiveModel | None | str = "load",
    force: bool = False,
) -> Case:
    """Run every step on a stored case (once; ``force`` runs it again)."""
    if case.triaged_at is not None and not force:
        return case
    started = time.perf_counter()
    t = _prepare(session, case, kit, directory, live)
    failed: list[str] = []
    with _model_scope(t):
        _run(t, STEPS[:1], failed)
        _run(t, STEPS[1:], failed, then=_finisher(t, failed, started))
    session.flush()
    return case


def _load_contents(session: Session, cases: Sequence[Case]) -> None:
    """Messages and documents of a batch of cases in two queries, not two per case (the steps
    read them; collections that are loaded already stay as they are)."""
    ids = [c.id for c in cases if c.id is not None]
    if ids:
        session.scalars(
            select(Case)
            .where(Case.id.in_(ids))
            .options(selectinload(Case.messages), selectinload(Case.documents))
        ).all()


def _screen_group(group: list[Triage]) -> None:
    """Per batch, what the steps would otherwise compute one item at a time: the screening for
    instructions to the AI (one classifier call) and the word overlap with the profiles of
    units and services (per tenant). Where that fails, each item computes it in its own step
    (and fails there with the reason)."""
    from rathaus.governance import injection

    try:
        screenings = injection.screen_many([t.text for t in group])
    except Exception:  # noqa: BLE001 - the step repeats it per item and reports the reason
        log.exception(
            "Prüfung auf Anweisungen an die KI für %d Eingänge fehlgeschlagen", len(group)
        )
    else:
        for t, screening in zip(group, screenings, strict=True):
            t.screening = screening
    by_directory: dict[int, list[Triage]] = {}
    for t in group:
        by_directory.setdefault(id(t.directory), []).append(t)
    for items in by_directory.values():
        if not router.profile_texts(items[0].directory)[0]:
            continue
        try:
            scores = router.lexical_scores(items[0].directory, [t.text for t in items])
        except Exception:  # noqa: BLE001 - as above
            log.exception("Wortvergleich mit Ämtern für %d Eingänge fehlgeschlagen", len(items))
            continue
        for t, row in zip(items, scores, strict=True):
            t.lexical = row


def _predict_group(group: list[Triage]) -> None:
    """Run the live model once for all readable items of a batch (per tenant and task)."""
    by_live: dict[int, list[Triage]] = {}
    for t in group:
        if t.live is not None and t.text.strip():
            by_live.setdefault(id(t.live), []).append(t)
    for items in by_live.values():
        live = items[0].live
        assert live is not None
        if live.uses_vectors and any(t.vector is None for t in items):
            continue  # predicted one by one, with their own vectors
        vectors = np.stack([t.vector for t in items]) if live.uses_vectors else None  # type: ignore[misc]
        # All tasks at once: each text is cut into n-grams once, not once per task.
        predicted = routing.predict_many(
            live.models,
            [t.text for t in items],
            k=5,
            vectors=vectors,
            extra_features=[_places(t) for t in items] if live.uses_location else None,
        )
        for task, results in predicted.items():
            for t, result in zip(items, results, strict=True):
                t.predictions[task] = result


def _look_up_vectors(session: Session, group: list[Triage], model: str) -> None:
    """Per batch, which cases have a stored vector of ``model`` already (one query per tenant),
    so that storing a new case's vector deletes nothing first."""
    by_tenant: dict[int, list[Triage]] = {}
    for t in group:
        by_tenant.setdefault(t.tenant.id, []).append(t)
    for tenant_id, items in by_tenant.items():
        ids = [t.case.id for t in items]
        stored = owners_with_vectors(session, tenant_id, ids, model)
        for t in items:
            # A case given twice in one batch replaces its own vector the second time.
            t.has_vector = None if ids.count(t.case.id) > 1 else t.case.id in stored


def triage_many(
    session: Session, cases: Sequence[Case], kit: TriageKit, *, batch: int = 32
) -> None:
    """Triage several cases of one or more tenants. The directory and live model are loaded
    once per tenant, and the texts are embedded in batches (much faster than one by one)."""
    todo = [c for c in cases if c.triaged_at is None]
    shared: dict[int, tuple[router.Directory, training.LiveModel | None, str | None, list]] = {}
    for start in range(0, len(todo), batch):
        started = time.perf_counter()
        group = []
        _load_contents(session, todo[start : start + batch])
        for case in todo[start : start + batch]:
            if case.tenant_id not in shared:
                tenant = session.get(Tenant, case.tenant_id)
                assert tenant is not None
                live, problem = load_live_model(session, tenant, kit)
                shared[case.tenant_id] = (
                    router.Directory.load(session, tenant.id),
                    live,
                    problem,
                    router.active_rules(session, tenant.id),
                )
            directory, live, problem, rules = shared[case.tenant_id]
            t = _prepare(session, case, kit, directory, live)
            t.rules = rules
            if problem:
                t.flag(problem)
            failed: list[str] = []
            _run(t, STEPS[:1], failed)
            group.append((t, failed))
        if kit.embedder is not None:
            readable = [t for t, _ in group if t.text.strip()]
            if readable:
                try:
                    with _batch_model_scope(session, [t.case for t in readable]):
                        vectors = kit.embedder.embed_passages([t.text[:4000] for t in readable])
                except RathausError as exc:
                    log.error("Embeddings für %d Eingänge fehlgeschlagen: %s", len(readable), exc)
                    for t in readable:
                        t.vector_error = exc
                else:
                    for t, vector in zip(readable, vectors, strict=True):
                        t.vector = vector
        _predict_group([t for t, _ in group])
        _screen_group([t for t, _ in group])
        if kit.embedder is not None:
            _look_up_vectors(session, [t for t, _ in group], kit.embedder.model)
        each = (time.perf_counter() - started) / max(1, len(group))
        for t, failed in group:
            # The item's share of the batch's work counts into its time.
            started_at = time.perf_counter() - each
            with _model_scope(t):
                _run(t, STEPS[1:], failed, then=_finisher(t, failed, started_at))
        session.flush()


def ingest(
    session: Session, *, tenant: Tenant, item: IncomingItem, kit: TriageKit, triage: bool = True
) -> Received:
    """Store one item (the same bytes twice are one case) and triage it right away."""
    received = receive(session, tenant=tenant, item=item, store=kit.store)
    if triage and not received.duplicate:
        triage_case(session, received.case, kit)
    return received
