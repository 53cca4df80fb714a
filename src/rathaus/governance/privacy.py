"""DSGVO requests of a person: Art. 15 access (a ZIP of everything stored) and Art. 17 erasure.

The person is given by any of name, e-mail, phone, IBAN, address and Aktenzeichen. Values are
normalised like :mod:`rathaus.ai.pii` does (IBAN without spaces, e-mail case-insensitive, phone
with +49 or 0) and searched in the sender fields, the extracted fields, messages and document
texts of the tenant's cases; AI suggestions, handed-over assistant conversations, pseudonym
maps and access-log entries of the cases found belong to the result.

A case is *about* the person when the person sent it (sender fields, the sender found in the
letter) or it was named by its Aktenzeichen; otherwise the person is only *mentioned* in it.
Erasure deletes cases about the person (like the retention action ``loeschen``) and replaces
the mentions in other cases by placeholders; open cases are left alone unless explicitly
included. Only the SHA-256 of the normalised identifiers is stored
(:class:`~rathaus.core.models.PrivacyRequest`), never the identifiers themselves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, cast, delete, or_, select
from sqlalchemy.orm import Session, selectinload

from rathaus.ai.pii import (
    ADDRESS,
    EMAIL,
    IBAN,
    PERSON,
    PHONE,
    _value_key,
    detect_pii,
    iban_is_valid,
)
from rathaus.core import audit
from rathaus.core.cases import OPEN_STATUSES
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import (
    AiSuggestion,
    AssistantConversation,
    Case,
    CaseAccess,
    CaseEvent,
    Document,
    Message,
    PrivacyRequest,
    PseudonymMap,
    RoutingModelVersion,
    Tenant,
    utcnow,
)
from rathaus.core.storage import OriginalStore, StorageError
from rathaus.governance import access_log, retention
from rathaus.inbox.vectors import delete_vectors

if TYPE_CHECKING:
    from rathaus.governance.keys import Keyring

# identifier kind → (PII kind for matching, German label)
KINDS: dict[str, tuple[str | None, str]] = {
    "name": (PERSON, "Name"),
    "email": (EMAIL, "E-Mail"),
    "telefon": (PHONE, "Telefon"),
    "iban": (IBAN, "IBAN"),
    "anschrift": (ADDRESS, "Anschrift"),
    "aktenzeichen": (None, "Aktenzeichen"),
}
SNIPPET = 80
BATCH = 200
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,24}$")
_REFERENCE_RE = re.compile(r"^[A-Za-z0-9-]{3,40}$")


# -- the person ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """What identifies the data subject; build it with :meth:`parse` (validates, German)."""

    values: tuple[tuple[str, str], ...]  # (kind of KINDS, value as given)

    @classmethod
    def parse(
        cls,
        *,
        names: Iterable[str] = (),
        emails: Iterable[str] = (),
        phones: Iterable[str] = (),
        ibans: Iterable[str] = (),
        addresses: Iterable[str] = (),
        references: Iterable[str] = (),
    ) -> Person:
        values: list[tuple[str, str]] = []
        for kind, given in (
            ("name", names),
            ("email", emails),
            ("telefon", phones),
            ("iban", ibans),
            ("anschrift", addresses),
            ("aktenzeichen", references),
        ):
            for raw in given:
                value = " ".join((raw or "").split())
                if kind == "name" and value.count(",") == 1:
                    last, first = (part.strip() for part in value.split(","))
                    value = f"{first} {last}".strip()  # "Beispiel, Erika" → "Erika Beispiel"
                if value:
                    _validate(kind, value)
                    values.append((kind, value))
        if not values:
            raise RathausError(
                "Bitte mindestens eine Angabe zur Person machen: Name (Vor- und Nachname), "
                "E-Mail, Telefon, IBAN, Anschrift oder Aktenzeichen."
            )
        return cls(tuple(dict.fromkeys(values)))

    def of(self, kind: str) -> list[str]:
        return [v for k, v in self.values if k == kind]

    @property
    def criteria(self) -> list[str]:
        return sorted({k for k, _ in self.values})

    def normalized(self) -> list[str]:
        result = []
        for kind, value in self.values:
            pii_kind = KINDS[kind][0]
            key = value.upper() if pii_kind is None else _value_key(pii_kind, value)
            result.append(f"{kind}:{key}")
        return sorted(set(result))

    @property
    def sha256(self) -> str:
        return hashlib.sha256("\n".join(self.normalized()).encode("utf-8")).hexdigest()

    def patterns(self) -> list[tuple[str, re.Pattern[str]]]:
        return retention.patterns_for(
            (KINDS[k][0] or "", v) for k, v in self.values if KINDS[k][0] is not None
        )


def _validate(kind: str, value: str) -> None:
    label = KINDS[kind][1]
    if kind == "name":
        words = [w for w in value.split(" ") if len(w.strip(".,")) >= 2]
        if len(words) < 2:
            raise RathausError(
                f"Der Name „{value[:60]}“ ist zu ungenau: bitte Vor- und Nachnamen angeben, "
                "damit nicht die Daten anderer Personen erfasst werden."
            )
    elif kind == "email" and not _EMAIL_RE.match(value):
        raise RathausError(f"„{value[:60]}“ ist keine gültige E-Mail-Adresse.")
    elif kind == "telefon" and len(re.sub(r"\D", "", value)) < 6:
        raise RathausError(
            f"Die Telefonnummer „{value[:40]}“ ist zu kurz (mindestens 6 Ziffern mit Vorwahl)."
        )
    elif kind == "iban" and not iban_is_valid(value):
        raise RathausError(
            f"„{value[:40]}“ ist keine gültige IBAN (Länge oder Prüfziffer stimmt nicht)."
        )
    elif kind == "anschrift" and (len(value) < 5 or not re.search(r"[^\W\d_]{3}", value)):
        raise RathausError(
            f"Die Anschrift „{value[:60]}“ ist zu kurz: bitte Straße und Hausnummer angeben."
        )
    elif kind == "aktenzeichen" and not _REFERENCE_RE.match(value):
        raise RathausError(f"„{value[:40]}“ ist kein gültiges {label} (z. B. RH-2026-000123).")


# -- finding ------------------------------------------------------------------------------------


@dataclass
class CaseHit:
    case: Case
    about: bool
    reasons: list[str]

    @property
    def is_open(self) -> bool:
        return self.case.status in OPEN_STATUSES


@dataclass
class MapHit:
    row: PseudonymMap
    placeholders: list[str]


@dataclass
class Findings:
    person: Person
    cases: list[CaseHit] = field(default_factory=list)
    suggestions: dict[int, list[AiSuggestion]] = field(default_factory=dict)
    conversations: dict[int, list[AssistantConversation]] = field(default_factory=dict)
    accesses: dict[int, list[CaseAccess]] = field(default_factory=dict)
    maps: list[MapHit] = field(default_factory=list)
    maps_note: str = ""

    @property
    def empty(self) -> bool:
        return not self.cases and not self.maps

    def counts(self) -> dict[str, int]:
        return {
            "vorgaenge_betroffen": sum(1 for h in self.cases if h.about),
            "vorgaenge_erwaehnt": sum(1 for h in self.cases if not h.about),
            "dokumente": sum(len(h.case.documents) for h in self.cases if h.about),
            "nachrichten": sum(len(h.case.messages) for h in self.cases if h.about),
            "ki_vorschlaege": sum(len(v) for v in self.suggestions.values()),
            "unterhaltungen": sum(len(v) for v in self.conversations.values()),
            "zuordnungstabellen": len(self.maps),
            "zugriffe": sum(len(v) for v in self.accesses.values()),
        }


def _fragments(person: Person) -> list[str] | None:
    """Substrings any matching text must contain (a cheap SQL pre-filter); ``None`` when a
    criterion has none (a phone number may be written with any separators): scan all cases."""
    fragments: list[str] = []
    for kind, value in person.values:
        if kind == "email":
            fragments.append(value)
        elif kind == "iban":
            compact = re.sub(r"\s", "", value)
            fragments.append(compact[4:8])  # the second group of four: same printed or compact
        elif kind in ("name", "anschrift"):
            words = sorted(re.findall(r"[^\W\d_]{3,}", value), key=len, reverse=True)
            if not words:
                return None
            fragments.append(words[0][:5])
        elif kind == "telefon":
            return None
    return fragments


def _candidate_ids(session: Session, tenant_id: int, person: Person) -> list[int]:
    ids: set[int] = set()
    references = person.of("aktenzeichen")
    if references:
        ids |= set(
            session.scalars(
                select(Case.id).where(
                    Case.tenant_id == tenant_id,
                    or_(*[Case.reference.ilike(r) for r in references]),
                )
            )
        )
    fragments = _fragments(person)
    if fragments is None:
        return sorted(set(session.scalars(select(Case.id).where(Case.tenant_id == tenant_id))))
    if not fragments:
        return sorted(ids)
    likes = [f"%{f.replace('%', '').replace('_', '')}%" for f in fragments]

    def any_like(*columns: Any) -> Any:
        return or_(*[c.ilike(pattern) for c in columns for pattern in likes])

    ids |= set(
        session.scalars(
            select(Case.id).where(
                Case.tenant_id == tenant_id,
                any_like(
                    Case.subject,
                    Case.sender_name,
                    Case.sender_contact,
                    Case.address,
                    cast(Case.fields, Text),
                ),
            )
        )
    )
    ids |= set(
        session.scalars(
            select(Message.case_id).where(
                Message.tenant_id == tenant_id,
                any_like(Message.body, Message.sender, Message.recipient, Message.subject),
            )
        )
    )
    ids |= {
        i
        for i in session.scalars(
            select(Document.case_id).where(
                Document.tenant_id == tenant_id,
                any_like(Document.extracted_text, Document.filename),
            )
        )
        if i is not None
    }
    return sorted(ids)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def _classify(case: Case, person: Person, scrub: retention.Scrubber) -> CaseHit | None:
    about: list[str] = []
    mentioned: list[str] = []
    if any(case.reference.casefold() == r.casefold() for r in person.of("aktenzeichen")):
        about.append("Aktenzeichen")
    sender = ((case.fields or {}).get("extracted") or {}).get("sender") or {}
    if scrub.matches(" · ".join(filter(None, (case.sender_name, case.sender_contact)))):
        about.append("Absender des Vorgangs")
    elif any(scrub.matches(v) for v in _strings(sender)):
        about.append("Absender im Schreiben")
    if any(scrub.matches(m.sender) for m in case.messages if m.direction == "in"):
        about.append("Absender einer Nachricht")
    if scrub.matches(case.address):
        mentioned.append("Anschrift des Vorgangs")
    if scrub.matches(case.subject):
        mentioned.append("Betreff")
    if any(scrub.matches(m.body) or scrub.matches(m.recipient) for m in case.messages):
        mentioned.append("Nachrichtentext")
    if any(scrub.matches(d.extracted_text) or scrub.matches(d.filename) for d in case.documents):
        mentioned.append("Dokumenttext")
    if any(scrub.matches(s) for s in _strings(case.fields or {})):
        mentioned.append("erkannte Felder")
    if not about and not mentioned:
        return None
    return CaseHit(case=case, about=bool(about), reasons=list(dict.fromkeys(about + mentioned)))


def find(
    session: Session, *, tenant_id: int, person: Person, keyring: Keyring | None = None
) -> Findings:
    """Everything of the tenant about or mentioning ``person`` (reads only)."""
    findings = Findings(person=person)
    scrub = retention.Scrubber(person.patterns(), detect=False)
    ids = _candidate_ids(session, tenant_id, person)
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        query = (
            select(Case)
            .where(Case.id.in_(batch))
            .options(selectinload(Case.documents), selectinload(Case.messages))
            .order_by(Case.id)
        )
        for case in session.scalars(query):
            hit = _classify(case, person, scrub)
            if hit is not None:
                findings.cases.append(hit)
    hit_ids = [h.case.id for h in findings.cases]
    for start in range(0, len(hit_ids), BATCH):
        batch = hit_ids[start : start + BATCH]
        for s in session.scalars(
            select(AiSuggestion).where(AiSuggestion.case_id.in_(batch)).order_by(AiSuggestion.id)
        ):
            findings.suggestions.setdefault(s.case_id or 0, []).append(s)
        for c in session.scalars(
            select(AssistantConversation)
            .where(AssistantConversation.handed_over_case_id.in_(batch))
            .order_by(AssistantConversation.id)
        ):
            findings.conversations.setdefault(c.handed_over_case_id or 0, []).append(c)
        for a in session.scalars(
            select(CaseAccess).where(CaseAccess.case_id.in_(batch)).order_by(CaseAccess.id)
        ):
            findings.accesses.setdefault(a.case_id or 0, []).append(a)
    _find_maps(session, tenant_id, findings, scrub, keyring)
    return findings


def _find_maps(
    session: Session,
    tenant_id: int,
    findings: Findings,
    scrub: retention.Scrubber,
    keyring: Keyring | None,
) -> None:
    rows = list(
        session.scalars(
            select(PseudonymMap)
            .where(PseudonymMap.tenant_id == tenant_id)
            .order_by(PseudonymMap.id)
        )
    )
    if not rows:
        return
    if keyring is None:
        findings.maps_note = (
            "Die verschlüsselten Zuordnungstabellen der Pseudonymisierung wurden nicht "
            "durchsucht (kein Schlüssel übergeben)."
        )
        return
    from rathaus.governance.keys import PseudonymKeyError

    unreadable = 0
    for row in rows:
        try:
            mapping = keyring.decrypt(row.key_id, row.ciphertext, scope=row.scope)
        except PseudonymKeyError:
            unreadable += 1
            continue
        placeholders = [p for p, v in mapping.items() if scrub.matches(v) or _same(v, findings)]
        if placeholders:
            findings.maps.append(MapHit(row=row, placeholders=placeholders))
    if unreadable:
        findings.maps_note = (
            f"{unreadable} Zuordnungstabelle(n) der Pseudonymisierung konnten mit den "
            "konfigurierten Schlüsseln nicht geöffnet werden und wurden nicht durchsucht "
            "(siehe `rathaus governance schluessel-rotieren`)."
        )


def _same(value: str, findings: Findings) -> bool:
    """A mapping value that equals an identifier after normalisation (``DE89…`` = ``DE 89…``)."""
    for kind, given in findings.person.values:
        pii_kind = KINDS[kind][0]
        if pii_kind and _value_key(pii_kind, value) == _value_key(pii_kind, given):
            return True
    return False


# -- Art. 15: the export ------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _snippets(texts: Iterable[str | None], scrub: retention.Scrubber) -> list[str]:
    found: list[str] = []
    for text in texts:
        if not text:
            continue
        for _, pattern in scrub.patterns:
            for m in pattern.finditer(text):
                start, end = max(0, m.start() - SNIPPET), min(len(text), m.end() + SNIPPET)
                snippet = _redact_others(text[start:end], scrub)
                snippet = ("…" if start else "") + snippet + ("…" if end < len(text) else "")
                found.append(" ".join(snippet.split()))
    return list(dict.fromkeys(found))


def _redact_others(text: str, scrub: retention.Scrubber) -> str:
    """Other people's personal data in a passage replaced by ``[PERSON]``, ``[EMAIL]`` …;
    the requesting person's own values stay."""
    own = [(m.start(), m.end()) for _, p in scrub.patterns for m in p.finditer(text)]
    parts, cursor = [], 0
    for span in detect_pii(text):
        if any(span.start < end and start < span.end for start, end in own):
            continue
        parts += [text[cursor : span.start], f"[{span.kind}]"]
        cursor = span.end
    return "".join(parts) + text[cursor:]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:100].strip("._") or "datei"


def _suggestion(s: AiSuggestion) -> dict[str, Any]:
    return {
        "funktion": s.function,
        "verfahren": s.backend,
        "modellversion": s.model_version,
        "vorschlag": s.output,
        "konfidenz": s.confidence,
        "entscheidung": s.decision,
        "entschieden_am": _iso(s.decided_at),
        "ergebnis": s.final,
        "erstellt_am": _iso(s.created_at),
    }


def _case_record(
    hit: CaseHit,
    findings: Findings,
    scrub: retention.Scrubber,
    files: dict[str, bytes],
    store: OriginalStore | None,
) -> dict[str, Any]:
    case = hit.case
    base: dict[str, Any] = {
        "aktenzeichen": case.reference,
        "bezug": "betrifft Sie" if hit.about else "Sie werden darin erwähnt",
        "fundstellen": hit.reasons,
        "status": str(case.status),
        "eingegangen_am": _iso(case.received_at),
        "abgeschlossen_am": _iso(case.closed_at),
        "eingangskanal": case.channel,
        "anliegenart": case.request_type,
        "zustaendig": case.org_unit.name if case.org_unit else None,
        "zugriffe": [
            {
                "zeitpunkt": _iso(a.created_at),
                "benutzer": a.username,
                "aktion": access_log.ACTIONS.get(a.action, a.action),
                "kanal": a.channel,
            }
            for a in findings.accesses.get(case.id, [])
        ],
    }
    if not hit.about:
        # Only the passages about the person: the rest of the case is other people's data
        # (Art. 15 Abs. 4 DSGVO).
        texts = [case.subject, case.address]
        texts += [t for m in case.messages for t in (m.body, m.recipient)]
        texts += [d.extracted_text for d in case.documents]
        base["textstellen"] = _snippets(texts, scrub)
        return base
    documents = []
    for d in case.documents:
        entry: dict[str, Any] = {
            "dateiname": d.filename,
            "medientyp": d.media_type,
            "groesse": d.size,
            "sha256": d.sha256,
            "eingegangen_am": _iso(d.created_at),
            "erkannter_text": d.extracted_text,
            "datei": None,
        }
        if store is not None and d.storage_path:
            try:
                path = f"originale/{_safe_name(case.reference)}/{d.id}-{_safe_name(d.filename)}"
                files[path] = store.get(case.tenant_id, d.sha256)
                entry["datei"] = path
            except StorageError as exc:
                entry["hinweis"] = exc.message
        documents.append(entry)
    base |= {
        "betreff": case.subject,
        "absender": case.sender_name,
        "kontakt": case.sender_contact,
        "anschrift": case.address,
        "koordinaten": [case.latitude, case.longitude] if case.latitude is not None else None,
        "erkannte_felder": {k: v for k, v in (case.fields or {}).items() if k != "pii"},
        "nachrichten": [
            {
                "richtung": "eingehend" if m.direction == "in" else "ausgehend",
                "kanal": m.channel,
                "von": m.sender,
                "an": m.recipient,
                "betreff": m.subject,
                "text": m.body,
                "status": m.status,
                "zeitpunkt": _iso(m.created_at),
            }
            for m in case.messages
        ],
        "dokumente": documents,
        "bearbeitungsschritte": [
            {"zeitpunkt": _iso(e.created_at), "schritt": e.activity, "von": e.actor_label}
            for e in case.events
        ],
        "ki_vorschlaege": [_suggestion(s) for s in findings.suggestions.get(case.id, [])],
        "unterhaltungen_buergerassistent": [
            {
                "begonnen": _iso(c.created_at),
                "kanal": c.channel,
                "fragen_und_antworten": [
                    {
                        "frage_pseudonymisiert": t.question,
                        "antwort": t.answer,
                        "zeitpunkt": _iso(t.created_at),
                    }
                    for t in c.turns
                ],
            }
            for c in findings.conversations.get(case.id, [])
        ],
    }
    return base


def _categories(findings: Findings) -> list[str]:
    kinds = {k for k, _ in findings.person.values}
    categories = ["Inhalte Ihrer Schreiben und Nachrichten, Bearbeitungsvermerke"]
    if any(h.about for h in findings.cases):
        categories.insert(0, "Name und Kontaktdaten (Absenderangaben)")
    if "anschrift" in kinds or any(h.case.address for h in findings.cases if h.about):
        categories.append("Anschrift")
    if "iban" in kinds:
        categories.append("Bankverbindung (IBAN)")
    if any(h.case.documents for h in findings.cases if h.about):
        categories.append("eingereichte Dokumente (Originale und daraus erkannter Text)")
    if findings.suggestions:
        categories.append(
            "Vorschläge der KI-gestützten Vorprüfung und die menschliche Entscheidung"
        )
    if findings.accesses:
        categories.append("Zugriffsprotokoll (wer den Vorgang geöffnet hat)")
    return categories


def retention_lines(session: Session, tenant_id: int, default_conversation_days: int) -> list[str]:
    rules = [r for r in retention.list_rules(session, tenant_id=tenant_id) if r.is_active]
    lines = [f"- {retention.rule_label(r)} nach Abschluss" for r in rules if r.target == "vorgang"]
    if not lines:
        lines = [
            "- Vorgänge: nach den Aufbewahrungsfristen der Verwaltung (keine Regel hinterlegt)"
        ]
    days, _ = retention.conversation_period(
        session, tenant_id=tenant_id, default_days=default_conversation_days
    )
    lines.append(f"- Unterhaltungen mit dem Bürgerassistenten: {days} Tage nach der letzten Frage")
    return lines


def cover_letter(
    tenant: Tenant, findings: Findings, retention_text: Sequence[str], created: dt.datetime
) -> str:
    """The German cover text of the export (Art. 15 Abs. 1 lit. a–h and Abs. 3 DSGVO)."""
    units = sorted({h.case.org_unit.name for h in findings.cases if h.case.org_unit})
    channels = sorted({h.case.channel for h in findings.cases})
    automatic = sum(
        1 for v in findings.suggestions.values() for s in v if s.decision == "automatisch"
    )
    counts = findings.counts()
    lines = [
        f"Auskunft nach Art. 15 DSGVO – {tenant.name}",
        f"Erstellt am {created:%d.%m.%Y um %H:%M} Uhr (UTC)",
        "",
        "Sie haben Auskunft darüber verlangt, welche personenbezogenen Daten wir über Sie "
        "verarbeiten. Gesucht wurde nach: "
        + ", ".join(KINDS[k][1] for k in findings.person.criteria)
        + ".",
        "",
    ]
    if findings.empty:
        lines += [
            "Ergebnis: Zu diesen Angaben sind in der Vorgangsbearbeitung keine Daten über Sie "
            "gespeichert (Negativauskunft).",
            "",
        ]
    else:
        lines += [
            f"Ergebnis: {counts['vorgaenge_betroffen']} Vorgang/Vorgänge betreffen Sie, in "
            f"{counts['vorgaenge_erwaehnt']} weiteren werden Sie erwähnt; dazu "
            f"{counts['dokumente']} Dokument(e) und {counts['nachrichten']} Nachricht(en).",
            "",
        ]
    lines += [
        "Inhalt dieses Archivs",
        "- anschreiben.txt: dieses Schreiben",
        "- auskunft.json: alle gespeicherten Daten in maschinenlesbarer Form (Art. 15 Abs. 3)",
        "- originale/: die von Ihnen eingereichten Dateien, unverändert",
        "Bei Vorgängen, in denen Sie nur erwähnt werden, enthält die Auskunft nur die "
        "Textstellen über Sie; der Rest betrifft andere Personen (Art. 15 Abs. 4 DSGVO).",
        "",
        "a) Zwecke der Verarbeitung: Bearbeitung Ihrer Anliegen (Anträge, Anfragen, "
        "Beschwerden, Meldungen) durch die zuständigen Stellen der Verwaltung, einschließlich "
        "einer KI-gestützten Vorprüfung (Zuordnung zur zuständigen Stelle, Erkennen von Fristen "
        "und Angaben), deren Vorschläge stets ein Mensch prüft.",
        "b) Kategorien personenbezogener Daten: " + "; ".join(_categories(findings)) + ".",
        "c) Empfänger: die Mitarbeitenden der zuständigen Stellen"
        + (f" ({', '.join(units)})" if units else "")
        + ". Sprachmodelle außerhalb der Verwaltung erhalten Texte nur pseudonymisiert "
        "(Namen, Anschriften, Bankdaten durch Platzhalter ersetzt); eine Übermittlung an "
        "Dritte oder in Drittländer findet durch dieses System nicht statt.",
        "d) Dauer der Speicherung:",
        *retention_text,
        "e) Sie haben das Recht auf Berichtigung (Art. 16), Löschung (Art. 17), Einschränkung "
        "der Verarbeitung (Art. 18) und Widerspruch (Art. 21 DSGVO).",
        "f) Sie können sich bei der zuständigen Datenschutz-Aufsichtsbehörde beschweren "
        "(Art. 77 DSGVO).",
        "g) Herkunft der Daten: von Ihnen selbst"
        + (f" (Eingangskanäle: {', '.join(channels)})" if channels else "")
        + " oder von anderen Personen, deren Schreiben Sie erwähnen.",
        "h) Automatisierte Entscheidungen im Sinne von Art. 22 DSGVO finden nicht statt: die KI "
        "macht Vorschläge, entschieden wird von Menschen."
        + (
            f" {automatic} Zuordnung(en) zur zuständigen Stelle wurden automatisch vorgenommen "
            "(eine von der Verwaltung freigegebene Weiterleitung, keine Entscheidung in der "
            "Sache)."
            if automatic
            else ""
        ),
    ]
    if findings.maps_note:
        lines += ["", f"Hinweis: {findings.maps_note}"]
    return "\n".join(lines) + "\n"


@dataclass
class AccessExport:
    request: PrivacyRequest
    findings: Findings
    zip_bytes: bytes
    filename: str


def access_request(
    session: Session,
    *,
    tenant: Tenant,
    person: Person,
    actor: str,
    channel: str = "web",
    store: OriginalStore | None = None,
    keyring: Keyring | None = None,
    default_conversation_days: int = 30,
    now: dt.datetime | None = None,
) -> AccessExport:
    """Art. 15: collect everything about ``person`` into a ZIP; stores a PrivacyRequest (hash and
    counts), an audit event and one access-log entry per case read."""
    now = now or utcnow()
    findings = find(session, tenant_id=tenant.id, person=person, keyring=keyring)
    scrub = retention.Scrubber(person.patterns(), detect=False)
    files: dict[str, bytes] = {}
    records = [_case_record(h, findings, scrub, files, store) for h in findings.cases]
    retention_text = retention_lines(session, tenant.id, default_conversation_days)
    data = {
        "erstellt_am": now.isoformat(),
        "kommune": tenant.name,
        "gesucht_nach": [{"art": KINDS[k][1], "wert": v} for k, v in person.values],
        "vorgaenge": records,
        "pseudonymisierung": [
            {"bereich": m.row.scope, "platzhalter": m.placeholders} for m in findings.maps
        ],
        "aufbewahrung": retention_text,
        "hinweise": [findings.maps_note] if findings.maps_note else [],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("anschreiben.txt", cover_letter(tenant, findings, retention_text, now))
        archive.writestr(
            "auskunft.json", json.dumps(data, ensure_ascii=False, indent=2, default=str)
        )
        for path, content in files.items():
            archive.writestr(path, content)
    counts = findings.counts() | {"dateien": len(files)}
    request = PrivacyRequest(
        tenant_id=tenant.id,
        kind="auskunft",
        subject_sha256=person.sha256,
        criteria=person.criteria,
        status="erledigt",
        result=counts,
        requested_by=actor,
        completed_at=now,
    )
    session.add(request)
    session.flush()
    for hit in findings.cases:
        access_log.record_access(
            session, case=hit.case, user=None, username=actor, action="auskunft", channel=channel
        )
    audit.record(
        session,
        audit.Event(
            kind="privacy_access",
            actor=actor,
            tenant_id=tenant.id,
            subject=f"privacy_request:{request.id}",
            data=counts,
        ),
    )
    return AccessExport(
        request=request,
        findings=findings,
        zip_bytes=buffer.getvalue(),
        filename=f"auskunft-{tenant.slug}-{request.id}-{now:%Y%m%d}.zip",
    )


# -- Art. 17: erasure ---------------------------------------------------------------------------

PLAN_LABELS = {
    "loeschen": "Vorgang löschen",
    "schwaerzen": "Erwähnungen durch Platzhalter ersetzen",
    "offen": "übersprungen: Vorgang ist noch offen",
}


@dataclass
class PlannedCase:
    case_id: int
    reference: str
    status: str
    reasons: list[str]
    action: str  # loeschen, schwaerzen, offen

    @property
    def label(self) -> str:
        return PLAN_LABELS[self.action]


@dataclass
class Erasure:
    """The plan (dry run) or what was done; ``training`` says whether the live routing model
    was trained before the erasure and what to do about it."""

    confirmed: bool
    cases: list[PlannedCase]
    counts: dict[str, int]
    training: dict[str, Any] | None
    maps_note: str = ""
    request_id: int | None = None
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bestaetigt": self.confirmed,
            "antrag": self.request_id,
            "vorgaenge": [
                {
                    "aktenzeichen": c.reference,
                    "status": c.status,
                    "fundstellen": c.reasons,
                    "aktion": c.action,
                }
                for c in self.cases
            ],
            "summen": self.counts,
            "modelltraining": self.training,
            "hinweise": self.messages,
        }


def _training_note(session: Session, tenant_id: int, touched: int) -> dict[str, Any] | None:
    live = session.scalar(
        select(RoutingModelVersion).where(
            RoutingModelVersion.tenant_id == tenant_id, RoutingModelVersion.status == "live"
        )
    )
    if live is None or not touched:
        return None
    return {
        "version": live.version,
        "trainiert_am": _iso(live.created_at),
        "trainingsfaelle": live.n_train,
        "neutraining": "empfohlen",
        "hinweis": (
            f"Das live Zuordnungsmodell v{live.version} wurde am {live.created_at:%d.%m.%Y} "
            f"auf {live.n_train} Vorgängen trainiert, vor dieser Löschung; seine Wortmerkmale "
            "können Angaben aus den gelöschten Vorgängen enthalten. Ein Neutraining ohne diese "
            "Vorgänge ist nötig."
        ),
    }


def _scrub_mentions(session: Session, case: Case, scrub: retention.Scrubber) -> int:
    before = scrub.replaced
    scrub.mapping = {}
    case.subject = scrub.text(case.subject) or ""
    case.address = scrub.text(case.address) or ""
    case.needs_review_reason = scrub.text(case.needs_review_reason)
    case.fields = scrub.data({k: v for k, v in (case.fields or {}).items() if k != "pii"})
    for m in case.messages:
        m.body = scrub.text(m.body) or ""
        m.subject = scrub.text(m.subject) or ""
        m.recipient = scrub.text(m.recipient) or ""
        m.sender = scrub.text(m.sender) or ""
    for d in case.documents:
        d.extracted_text = scrub.text(d.extracted_text)
        d.filename = scrub.text(d.filename) or d.filename
    for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)):
        e.data = scrub.data(e.data or {})
    for s in session.scalars(select(AiSuggestion).where(AiSuggestion.case_id == case.id)):
        s.output = scrub.data(s.output or {})
        if s.final is not None:
            s.final = scrub.data(s.final)
    # Vectors and the gateway's mapping were made from the old text; both are rebuilt on use.
    delete_vectors(session, case.tenant_id, [case.id])
    session.execute(
        delete(PseudonymMap).where(
            PseudonymMap.tenant_id == case.tenant_id, PseudonymMap.case_id == case.id
        )
    )
    return scrub.replaced - before


def erasure_request(
    session: Session,
    *,
    tenant: Tenant,
    person: Person,
    actor: str,
    confirm: bool = False,
    include_open: bool = False,
    store: OriginalStore | None = None,
    keyring: Keyring | None = None,
    now: dt.datetime | None = None,
) -> Erasure:
    """Art. 17: without ``confirm`` only the plan; with it, delete the cases about the person,
    replace the mentions elsewhere, drop the person's entries from pseudonym maps. An unknown
    person raises :class:`NotFoundError` and nothing changes."""
    now = now or utcnow()
    findings = find(session, tenant_id=tenant.id, person=person, keyring=keyring)
    if findings.empty:
        raise NotFoundError(
            "Zu diesen Angaben wurden keine Daten gefunden; es wurde nichts gelöscht. Bitte die "
            "Schreibweise prüfen oder weitere Angaben machen (E-Mail, Telefon, Aktenzeichen)."
        )
    planned = [
        PlannedCase(
            case_id=h.case.id,
            reference=h.case.reference,
            status=str(h.case.status),
            reasons=h.reasons,
            action="offen"
            if h.is_open and not include_open
            else ("loeschen" if h.about else "schwaerzen"),
        )
        for h in findings.cases
    ]
    counts = {
        "loeschen": sum(1 for p in planned if p.action == "loeschen"),
        "schwaerzen": sum(1 for p in planned if p.action == "schwaerzen"),
        "offen_uebersprungen": sum(1 for p in planned if p.action == "offen"),
        "unterhaltungen": sum(
            len(findings.conversations.get(p.case_id, []))
            for p in planned
            if p.action == "loeschen"
        ),
        "zuordnungstabellen": len(findings.maps),
    }
    result = Erasure(
        confirmed=confirm,
        cases=planned,
        counts=counts,
        training=_training_note(session, tenant.id, counts["loeschen"] + counts["schwaerzen"]),
        maps_note=findings.maps_note,
    )
    if counts["offen_uebersprungen"]:
        result.messages.append(
            f"{counts['offen_uebersprungen']} offene(r) Vorgang/Vorgänge werden nicht angetastet, "
            "solange sie bearbeitet werden. Nach Abschluss erneut ausführen oder offene Vorgänge "
            "ausdrücklich einbeziehen (--offene-einbeziehen)."
        )
    if any(p.action == "schwaerzen" for p in planned):
        result.messages.append(
            "In Vorgängen, in denen die Person nur erwähnt wird, werden die Texte geschwärzt; "
            "die Originaldateien dieser Vorgänge bleiben unverändert (sie gehören anderen "
            "Personen) und sind bei Bedarf von Hand zu prüfen."
        )
    if findings.maps_note:
        result.messages.append(findings.maps_note)
    if not confirm:
        return result
    scrub = retention.Scrubber(person.patterns(), detect=False)
    by_id = {h.case.id: h.case for h in findings.cases}
    replaced = 0
    map_scopes = {m.row.scope for m in findings.maps}
    for plan in planned:
        case = by_id[plan.case_id]
        if plan.action == "loeschen":
            retention.delete_case(
                session,
                case,
                store=store,
                actor=actor,
                audit_kind="privacy_case_deleted",
                audit_data={"grund": "Art. 17 DSGVO"},
            )
            map_scopes.discard(f"case:{plan.case_id}")
        elif plan.action == "schwaerzen":
            n = _scrub_mentions(session, case, scrub)
            replaced += n
            map_scopes.discard(f"case:{plan.case_id}")
            audit.record(
                session,
                audit.Event(
                    kind="privacy_mentions_removed",
                    actor=actor,
                    tenant_id=tenant.id,
                    subject=case.reference,
                    data={"grund": "Art. 17 DSGVO", "ersetzungen": n},
                ),
            )
    _drop_map_entries(session, tenant.id, findings, map_scopes, keyring)
    counts["ersetzungen"] = replaced
    request = PrivacyRequest(
        tenant_id=tenant.id,
        kind="loeschung",
        subject_sha256=person.sha256,
        criteria=person.criteria,
        status="erledigt",
        result={**counts, "modell_neutraining": bool(result.training)},
        note="; ".join(result.messages)[:4000],
        requested_by=actor,
        completed_at=now,
    )
    session.add(request)
    session.flush()
    result.request_id = request.id
    audit.record(
        session,
        audit.Event(
            kind="privacy_erasure",
            actor=actor,
            tenant_id=tenant.id,
            subject=f"privacy_request:{request.id}",
            data={**counts, "modell_neutraining": bool(result.training)},
        ),
    )
    return result


def _drop_map_entries(
    session: Session,
    tenant_id: int,
    findings: Findings,
    scopes: set[str],
    keyring: Keyring | None,
) -> None:
    """Remove the person's values from the remaining mappings (other scopes than the cases
    handled above); without a working key the whole mapping goes."""
    for hit in findings.maps:
        if hit.row.scope not in scopes:
            continue
        if keyring is None:
            session.delete(hit.row)
            continue
        from rathaus.governance.keys import save_mapping

        mapping = keyring.decrypt(hit.row.key_id, hit.row.ciphertext, scope=hit.row.scope)
        for placeholder in hit.placeholders:
            mapping.pop(placeholder, None)
        save_mapping(
            session,
            tenant_id=tenant_id,
            scope=hit.row.scope,
            mapping=mapping,
            keyring=keyring,
            case_id=hit.row.case_id,
        )
    session.flush()
