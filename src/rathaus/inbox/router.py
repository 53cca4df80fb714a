"""Routing an item to a department (Amt) and a service: rules, a learned model, or similarity.

Order of evidence, strongest first:

1. **Rules** (:class:`rathaus.core.models.RoutingRule`), written by people, readable, testable
   against history (:func:`test_rule`). A matching rule puts its unit first with confidence 1.
2. **The live routing model** of the tenant (:mod:`rathaus.inbox.training`), a classifier with
   calibrated probabilities trained on the tenant's own decided cases.
3. **Day one, no history:** similarity of the text to the descriptions, keywords and names of
   the units and services. These scores are not calibrated, so nothing is routed automatically
   on them; they only order the suggestions in the triage queue.

Whether a case is routed without a person is decided by :func:`may_route_automatically`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core.errors import RathausError
from rathaus.core.models import (
    Case,
    CaseStatus,
    Confidentiality,
    Message,
    OrgUnit,
    OrgUnitKind,
    RoutingRule,
    Service,
)

MAX_PATTERN = 300
# Automatic routing never happens below this confidence, whatever a threshold says.
MIN_AUTO_CONFIDENCE = 0.5
RULE_SCOPES = {"text": "Text", "subject": "Betreff", "sender": "Absender", "channel": "Kanal"}


@dataclass(frozen=True)
class Candidate:
    """One suggested responsibility: a unit and (if known) a service, with its confidence."""

    org_unit_id: int
    unit_code: str
    unit_name: str
    probability: float
    source: str  # "regel", "modell", "ähnlichkeit"
    service_id: int | None = None
    service_code: str | None = None
    service_name: str | None = None
    calibrated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "org_unit_id": self.org_unit_id,
            "unit_code": self.unit_code,
            "unit_name": self.unit_name,
            "probability": round(self.probability, 4),
            "source": self.source,
            "service_id": self.service_id,
            "service_code": self.service_code,
            "service_name": self.service_name,
            "calibrated": self.calibrated,
        }


@dataclass
class RoutingResult:
    candidates: list[Candidate]
    model_version: str
    rule: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


# -- the routable organisation -----------------------------------------------------------------


@dataclass
class Directory:
    """Units that can be responsible (Ämter and Sachgebiete) and active services, by code."""

    units: dict[str, OrgUnit]
    services: dict[str, Service]
    _profiles: tuple[list[tuple[OrgUnit, Service | None]], list[str], str] | None = None

    @classmethod
    def load(cls, session: Session, tenant_id: int) -> Directory:
        units = session.scalars(
            select(OrgUnit).where(
                OrgUnit.tenant_id == tenant_id,
                OrgUnit.is_active.is_(True),
                OrgUnit.kind != OrgUnitKind.FACHBEREICH,
            )
        ).all()
        services = session.scalars(
            select(Service).where(Service.tenant_id == tenant_id, Service.is_active.is_(True))
        ).all()
        return cls({u.code: u for u in units}, {s.code: s for s in services})

    def by_id(self, unit_id: int | None) -> OrgUnit | None:
        return next((u for u in self.units.values() if u.id == unit_id), None)

    def candidate(
        self,
        unit: OrgUnit,
        probability: float,
        source: str,
        *,
        service: Service | None = None,
        calibrated: bool = False,
    ) -> Candidate:
        return Candidate(
            org_unit_id=unit.id,
            unit_code=unit.code,
            unit_name=unit.name,
            probability=float(probability),
            source=source,
            service_id=service.id if service else None,
            service_code=service.code if service else None,
            service_name=service.name if service else None,
            calibrated=calibrated,
        )


# -- rules -------------------------------------------------------------------------------------


def validate_rule(keywords: str, pattern: str) -> None:
    """A German error for a rule that cannot work: no condition, or a broken pattern."""
    if not keywords.strip() and not pattern.strip():
        raise RathausError("Eine Regel braucht Stichwörter oder ein Suchmuster.")
    if len(pattern) > MAX_PATTERN:
        raise RathausError(f"Das Suchmuster ist länger als {MAX_PATTERN} Zeichen.")
    if pattern:
        try:
            re.compile(pattern, re.I)
        except re.error as exc:
            raise RathausError(f"Das Suchmuster ist ungültig: {exc}.") from None


def _keyword_regex(keywords: str) -> re.Pattern[str] | None:
    words = [w.strip() for w in keywords.split(",") if w.strip()]
    if not words:
        return None
    parts = [re.escape(w[:-1]) + r"\w*" if w.endswith("*") else re.escape(w) + r"\b" for w in words]
    return re.compile(r"\b(?:" + "|".join(parts) + ")", re.I)


def rule_matches(rule: RoutingRule, *, text: str, subject: str, sender: str, channel: str) -> str:
    """The matched words, or "" when the rule does not apply to the item."""
    target = {"text": f"{subject}\n{text}", "subject": subject, "sender": sender}.get(
        rule.scope, channel
    )
    found = []
    keyword_re = _keyword_regex(rule.keywords or "")
    if keyword_re is not None:
        found += [m.group(0) for m in keyword_re.finditer(target)][:3]
    if rule.pattern:
        try:
            m = re.search(rule.pattern, target, re.I)
        except re.error:
            m = None
        if m:
            found.append(m.group(0)[:60])
    return ", ".join(dict.fromkeys(found))


def active_rules(session: Session, tenant_id: int) -> list[RoutingRule]:
    return list(
        session.scalars(
            select(RoutingRule)
            .where(RoutingRule.tenant_id == tenant_id, RoutingRule.is_active.is_(True))
            .order_by(RoutingRule.priority, RoutingRule.id)
        )
    )


def case_text(case: Case) -> str:
    """The text of a case that routing reads: subject and the first incoming message, and the
    extracted text of its documents when the message is empty."""
    incoming = next((m for m in case.messages if m.direction == "in"), None)
    body = incoming.body if incoming else ""
    if not body.strip():
        body = "\n".join(d.extracted_text or "" for d in case.documents)
    return f"{case.subject}\n{body}".strip()


def test_rule(session: Session, rule: RoutingRule, *, limit: int = 5000) -> dict[str, Any]:
    """How the rule would have done on the tenant's decided cases: how many it matches, how many
    of those were handled by its unit (precision), and examples of both."""
    rows = session.execute(
        select(
            Case.id,
            Case.reference,
            Case.subject,
            Case.org_unit_id,
            Case.channel,
            Message.body,
            Case.confidentiality,
        )
        .join(Message, (Message.case_id == Case.id) & (Message.direction == "in"))
        .where(
            Case.tenant_id == rule.tenant_id,
            Case.org_unit_id.is_not(None),
            Case.status.not_in([CaseStatus.NEU, CaseStatus.TRIAGE]),
        )
        .order_by(Case.received_at.desc())
        .limit(limit)
    ).all()
    matched, agree, wrong = 0, 0, []
    examples = []
    for _id, reference, subject, unit_id, channel, body, level in rows:
        words = rule_matches(rule, text=body or "", subject=subject, sender="", channel=channel)
        if not words:
            continue
        matched += 1
        # Counted, never shown: the administration does not read confidential cases.
        shown = level != Confidentiality.VERTRAULICH
        if unit_id == rule.org_unit_id:
            agree += 1
            if shown and len(examples) < 5:
                examples.append({"reference": reference, "subject": subject, "words": words})
        elif shown and len(wrong) < 5:
            wrong.append({"reference": reference, "subject": subject, "words": words})
    return {
        "checked": len(rows),
        "matched": matched,
        "agree": agree,
        "precision": round(agree / matched, 3) if matched else None,
        "examples": examples,
        "wrong": wrong,
    }


# -- similarity to descriptions (day one) ------------------------------------------------------


def profile_texts(directory: Directory) -> tuple[list[tuple[OrgUnit, Service | None]], list[str]]:
    """One text per service (with its unit) and per unit, for similarity (built once per
    loaded directory)."""
    if directory._profiles is None:
        owners, texts = _build_profiles(directory)
        key = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()
        directory._profiles = (owners, texts, key)
    return directory._profiles[0], directory._profiles[1]


def profile_key(directory: Directory) -> str:
    """A hash of the profile texts: the cache key for anything computed from them."""
    profile_texts(directory)
    assert directory._profiles is not None
    return directory._profiles[2]


def _build_profiles(
    directory: Directory,
) -> tuple[list[tuple[OrgUnit, Service | None]], list[str]]:
    owners: list[tuple[OrgUnit, Service | None]] = []
    texts: list[str] = []
    with_services: set[int] = set()
    for service in directory.services.values():
        unit = directory.by_id(service.org_unit_id)
        if unit is None:
            continue
        with_services.add(unit.id)
        owners.append((unit, service))
        texts.append(
            f"{service.name}. {service.keywords}. {service.description} ({unit.name})".strip()
        )
    for unit in directory.units.values():
        owners.append((unit, None))
        texts.append(f"{unit.name}. {unit.description}".strip())
    return owners, texts


def similarity_candidates(
    directory: Directory,
    text: str,
    *,
    text_vector: np.ndarray | None = None,
    profile_vectors: np.ndarray | None = None,
    k: int = 3,
    lexical: np.ndarray | None = None,
) -> list[Candidate]:
    """Day-one suggestions: text similarity to unit and service profiles (not calibrated).

    Word overlap (TF-IDF over word starts) is always used; embeddings, when given, are averaged
    in. The score is a softmax over the profiles, so it orders but does not promise accuracy.
    ``lexical``: the text's row of :func:`lexical_scores`, where a batch computed it already.
    """
    owners, _ = profile_texts(directory)
    if not owners:
        return []
    if lexical is None:
        lexical = lexical_scores(directory, [text])[0]
    score = lexical / (lexical.max() or 1.0)
    if text_vector is not None and profile_vectors is not None and len(profile_vectors):
        dense = profile_vectors @ np.asarray(text_vector, dtype=np.float32)
        dense = (dense - dense.min()) / ((dense.max() - dense.min()) or 1.0)
        score = 0.5 * score + 0.5 * dense
    weights = np.exp(8.0 * (score - score.max()))
    probability = weights / weights.sum()
    result: list[Candidate] = []
    seen: set[int] = set()
    for index in np.argsort(-probability):
        unit, service = owners[index]
        if unit.id in seen:
            continue
        seen.add(unit.id)
        result.append(directory.candidate(unit, probability[index], "ähnlichkeit", service=service))
        if len(result) == k:
            break
    return result


def lexical_scores(directory: Directory, texts: Sequence[str]) -> np.ndarray:
    """Word overlap of each text with each profile (rows: texts, columns: profiles), for a
    whole batch in one call; each row is the same as for the text alone."""
    _, profile = profile_texts(directory)
    vectorizer, profiles = _lexical_profiles(profile, profile_key(directory))
    return (profiles @ vectorizer.transform(list(texts)).T).toarray().T


_LEXICAL: dict[str, tuple[Any, Any]] = {}


def _lexical_profiles(texts: list[str], key: str) -> tuple[Any, Any]:
    """TF-IDF over character 4–5-grams of the profile texts, fitted once per set of texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    cached = _LEXICAL.get(key)
    if cached is None:
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 5), sublinear_tf=True)
        cached = (vectorizer, vectorizer.fit_transform(texts))
        if len(_LEXICAL) > 32:
            _LEXICAL.clear()
        _LEXICAL[key] = cached
    return cached


# -- combining ---------------------------------------------------------------------------------


def merge_candidates(*groups: Sequence[Candidate], k: int = 3) -> list[Candidate]:
    """The first candidate per unit in order of the groups (rules before model before
    similarity); a later group only fills the places still free."""
    result: list[Candidate] = []
    seen: set[int] = set()
    for group in groups:
        for candidate in group:
            if candidate.org_unit_id not in seen:
                seen.add(candidate.org_unit_id)
                result.append(candidate)
    return result[:k]


SIMILARITY_WEIGHT = 0.5


def order_by_evidence(model: list[Candidate], similar: list[Candidate]) -> list[Candidate]:
    """The model's candidates re-ordered by model probability plus a share of the similarity to
    the unit's descriptions (the model knows only what history showed; descriptions cover what
    it rarely saw). Probabilities stay the model's: only they decide automatic routing."""
    if not model or not similar:
        return model
    by_unit = {c.org_unit_id: c.probability for c in similar}
    return sorted(
        model,
        key=lambda c: -(c.probability + SIMILARITY_WEIGHT * by_unit.get(c.org_unit_id, 0.0)),
    )


def may_route_automatically(
    candidate: Candidate | None,
    unit: OrgUnit | None,
    *,
    model_thresholds: dict[str, float],
    flagged: bool,
) -> tuple[bool, str]:
    """Whether the case goes to ``unit`` without a person, and why (German, for the case log).

    Only a calibrated suggestion (rule or trained model) for a unit whose administrator enabled
    automatic routing, at or above the unit's threshold (or the one the live model computed for
    95 % precision; never below :data:`MIN_AUTO_CONFIDENCE`), and never for a flagged item.
    """
    if candidate is None or unit is None:
        return False, "keine Zuständigkeit erkannt"
    if flagged:
        return False, "Eingang ist zur Prüfung markiert"
    if not candidate.calibrated:
        return False, "noch kein trainiertes Modell (nur Ähnlichkeit)"
    if not unit.auto_route_enabled:
        return False, f"automatische Zuordnung für {unit.name} nicht freigeschaltet"
    threshold = unit.auto_route_threshold
    if threshold is None:
        threshold = model_thresholds.get(unit.code, model_thresholds.get("*", float("inf")))
    threshold = max(threshold, MIN_AUTO_CONFIDENCE)
    if candidate.probability + 1e-9 < threshold:
        return (
            False,
            f"Sicherheit {candidate.probability:.0%} unter der Schwelle {min(threshold, 1):.0%}",
        )
    return True, f"Sicherheit {candidate.probability:.0%} ≥ Schwelle {threshold:.0%}"
