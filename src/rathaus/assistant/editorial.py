"""The Redaktion's work on the knowledge base: find, edit and verify entries, see the answers
that rest on an entry, and the gaps report of questions the assistant could not answer well.

Edits and restores of an earlier version go through one path: the old content is kept as a
version (:mod:`rathaus.assistant.versions`), then
:func:`rathaus.assistant.knowledge.update_entry` re-chunks and re-indexes the entry; this module
never writes chunks or vectors itself. Questions are stored
pseudonymised (see :mod:`rathaus.assistant.service`); they are shown as stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, defer

from rathaus.assistant import versions
from rathaus.assistant.analysis import STOP_WORDS
from rathaus.assistant.entries import FACTS, LIST_FACTS
from rathaus.core import audit
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.languages import name_of
from rathaus.core.models import (
    AssistantCitation,
    AssistantTurn,
    KnowledgeChunk,
    KnowledgeEntry,
    User,
    utcnow,
)

# Facts whose value is a link (checked like the entry's URL); ``forms`` holds links too.
URL_FACTS = frozenset({"online_url", "appointment_url"})
SORTS = ("titel", "pruefung", "nutzung", "geaendert")
LOW_CONFIDENCE_BELOW = 0.5  # the gaps report's default: answers less sure than this count
NEAR_DUPLICATE = 0.8  # token overlap (Jaccard) at which two wordings count as one question
MAX_TITLE = 300
MAX_URL = 500


class EntryInvalid(RathausError):
    """The edited entry cannot be saved; ``errors`` lists every reason (German)."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__(" ".join(errors))
        self.errors = list(errors)


# -- reading ------------------------------------------------------------------------------------


@dataclass
class EntryRow:
    """An entry in the Redaktion's list, with how many passages it has and answers used it."""

    entry: KnowledgeEntry
    chunks: int
    uses: int


@dataclass
class EntryList:
    rows: list[EntryRow]
    total: int


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite returns naive datetimes; every stored time is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_entries(
    session: Session,
    *,
    tenant_id: int,
    query: str | None = None,
    only_unverified: bool = False,
    stale_days: int | None = None,
    sort: str = "titel",
    limit: int = 100,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> EntryList:
    """Entries of the tenant whose title or keywords contain ``query``; ``only_unverified``
    keeps those never verified, ``stale_days`` those not verified in that many days (never
    verified included). ``sort`` is one of :data:`SORTS` (title; oldest verification first;
    most used first; last changed first)."""
    chunks = (
        select(KnowledgeChunk.entry_id, func.count().label("n"))
        .where(KnowledgeChunk.tenant_id == tenant_id)
        .group_by(KnowledgeChunk.entry_id)
        .subquery()
    )
    uses = (
        select(
            AssistantCitation.entry_id,
            func.count(func.distinct(AssistantCitation.turn_id)).label("n"),
        )
        .where(AssistantCitation.tenant_id == tenant_id)
        .group_by(AssistantCitation.entry_id)
        .subquery()
    )
    conditions: list[Any] = [KnowledgeEntry.tenant_id == tenant_id]
    if query and query.strip():
        pattern = _like(query.strip())
        conditions.append(
            or_(
                KnowledgeEntry.title.ilike(pattern, escape="\\"),
                KnowledgeEntry.keywords.ilike(pattern, escape="\\"),
            )
        )
    if only_unverified:
        conditions.append(KnowledgeEntry.last_verified_at.is_(None))
    if stale_days is not None:
        cutoff = (now or utcnow()) - dt.timedelta(days=stale_days)
        conditions.append(
            or_(KnowledgeEntry.last_verified_at.is_(None), KnowledgeEntry.last_verified_at < cutoff)
        )
    used = func.coalesce(uses.c.n, 0)
    order: list[Any] = {
        "titel": [KnowledgeEntry.title],
        "pruefung": [
            KnowledgeEntry.last_verified_at.is_(None).desc(),
            KnowledgeEntry.last_verified_at,
        ],
        "nutzung": [used.desc(), KnowledgeEntry.title],
        "geaendert": [KnowledgeEntry.updated_at.desc()],
    }.get(sort, [KnowledgeEntry.title])
    total = session.scalar(select(func.count()).select_from(KnowledgeEntry).where(*conditions))
    rows = session.execute(
        select(KnowledgeEntry, func.coalesce(chunks.c.n, 0), used)
        .outerjoin(chunks, chunks.c.entry_id == KnowledgeEntry.id)
        .outerjoin(uses, uses.c.entry_id == KnowledgeEntry.id)
        .where(*conditions)
        .options(defer(KnowledgeEntry.body))
        .order_by(*order, KnowledgeEntry.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return EntryList([EntryRow(e, int(c), int(u)) for e, c, u in rows], int(total or 0))


def get_entry(session: Session, *, tenant_id: int, entry_id: int) -> KnowledgeEntry:
    """The entry, if it belongs to the tenant; otherwise :class:`NotFoundError`."""
    entry = session.get(KnowledgeEntry, entry_id)
    if entry is None or entry.tenant_id != tenant_id:
        raise NotFoundError(f"Den Wissenseintrag {entry_id} gibt es nicht.")
    return entry


@dataclass
class AnswerUse:
    """An answer that cited the entry (``rank`` 0: the entry was its first source)."""

    turn_id: int
    asked_at: dt.datetime
    question: str
    answer: str
    confidence: float | None
    abstained: bool
    feedback: int | None
    feedback_comment: str
    rank: int


def answers_using(
    session: Session, *, tenant_id: int, entry_id: int, limit: int = 50
) -> list[AnswerUse]:
    """The answers that cited ``entry_id``, newest first (one row per answer)."""
    cited = (
        select(AssistantCitation.turn_id, func.min(AssistantCitation.rank).label("rank"))
        .where(AssistantCitation.tenant_id == tenant_id, AssistantCitation.entry_id == entry_id)
        .group_by(AssistantCitation.turn_id)
        .subquery()
    )
    rows = session.execute(
        select(AssistantTurn, cited.c.rank)
        .join(cited, cited.c.turn_id == AssistantTurn.id)
        .where(AssistantTurn.tenant_id == tenant_id)
        .order_by(AssistantTurn.created_at.desc(), AssistantTurn.id.desc())
        .limit(limit)
    ).all()
    return [
        AnswerUse(
            turn_id=turn.id,
            asked_at=_aware(turn.created_at),  # type: ignore[arg-type]
            question=turn.question,
            answer=answer_text(turn.answer),
            confidence=turn.confidence,
            abstained=turn.abstained,
            feedback=turn.feedback,
            feedback_comment=turn.feedback_comment or "",
            rank=int(rank or 0),
        )
        for turn, rank in rows
    ]


def answer_text(answer: Mapping[str, Any] | None) -> str:
    """The answer's text as shown to the citizen (``text``, else its sentences joined)."""
    if not answer:
        return ""
    text = answer.get("text")
    if isinstance(text, str):
        return text
    sentences = answer.get("sentences") or []
    return " ".join(str(s.get("text", "")) for s in sentences if isinstance(s, Mapping))


# -- editing ------------------------------------------------------------------------------------


def is_web_url(value: str) -> bool:
    """An absolute http(s) link without spaces: the only kind an entry may point to."""
    if not value or any(c.isspace() or unicodedata.category(c)[0] == "C" for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _url_error(label: str, value: str) -> str:
    return (
        f"{label}: „{value[:120]}“ ist kein gültiger Link. Bitte eine vollständige Adresse "
        "angeben, die mit http:// oder https:// beginnt."
    )


def facts_from_form(values: Mapping[str, str]) -> dict[str, Any]:
    """Structured facts from the edit form: one text per fact in :data:`FACTS`; list facts
    hold one item per line, ``forms`` one "Titel | URL" per line. Empty facts are left out."""
    facts: dict[str, Any] = {}
    for key in FACTS:
        raw = (values.get(key) or "").replace("\r\n", "\n").strip()
        if not raw:
            continue
        if key == "forms":
            forms = []
            for line in raw.split("\n"):
                line = line.strip()
                if not line:
                    continue
                title, sep, url = line.rpartition("|")
                if not sep:
                    title, url = (line, line) if "://" in line else (line, "")
                forms.append({"title": title.strip() or url.strip(), "url": url.strip()})
            if forms:
                facts[key] = forms
        elif key in LIST_FACTS:
            items = [line.strip() for line in raw.split("\n") if line.strip()]
            if items:
                facts[key] = items
        else:
            facts[key] = raw
    return facts


def facts_to_form(facts: Mapping[str, Any] | None) -> dict[str, str]:
    """The inverse of :func:`facts_from_form`: the text each fact field shows."""
    shown: dict[str, str] = {}
    for key in FACTS:
        value = (facts or {}).get(key)
        if value in (None, "", []):
            shown[key] = ""
        elif key == "forms" and isinstance(value, list):
            lines = []
            for item in value:
                if isinstance(item, Mapping):
                    title, url = str(item.get("title") or ""), str(item.get("url") or "")
                    lines.append(f"{title} | {url}" if url and title != url else title or url)
                else:
                    lines.append(str(item))
            shown[key] = "\n".join(lines)
        elif isinstance(value, list):
            shown[key] = "\n".join(str(v) for v in value)
        else:
            shown[key] = str(value)
    return shown


def validate_fields(*, title: str, url: str, facts: Mapping[str, Any]) -> list[str]:
    """Every reason the entry cannot be saved, in German; empty when it can."""
    errors: list[str] = []
    if not title.strip():
        errors.append("Bitte geben Sie dem Eintrag einen Titel.")
    elif len(title.strip()) > MAX_TITLE:
        errors.append(f"Der Titel ist zu lang (höchstens {MAX_TITLE} Zeichen).")
    if url.strip():
        if len(url.strip()) > MAX_URL:
            errors.append(f"Die Adresse ist zu lang (höchstens {MAX_URL} Zeichen).")
        elif not is_web_url(url.strip()):
            errors.append(_url_error("Quelle (URL)", url.strip()))
    unknown = sorted(set(facts) - set(FACTS))
    if unknown:
        errors.append(f"Unbekannte Angaben: {', '.join(unknown)}.")
    for key in sorted(URL_FACTS & set(facts)):
        value = str(facts[key]).strip()
        if value and not is_web_url(value):
            errors.append(_url_error(FACTS[key], value))
    for item in facts.get("forms") or []:
        link = str(item.get("url") or "").strip() if isinstance(item, Mapping) else ""
        if link and not is_web_url(link):
            errors.append(_url_error(f"{FACTS['forms']} „{item.get('title', '')}“", link))
    return errors


def _actor(user: User) -> str:
    return user.display_name or user.username


def update_fields(
    session: Session,
    *,
    tenant_id: int,
    entry_id: int,
    title: str,
    url: str,
    body: str,
    keywords: str,
    facts: Mapping[str, Any],
    is_published: bool,
    embedder: Any,
    user: User,
) -> KnowledgeEntry:
    """Save the Redaktion's edit and re-index the entry (its passages and vectors).

    Raises :class:`EntryInvalid` (nothing changed) when a field is not acceptable: a missing
    title, or a link that is not http(s). An edit that changes nothing writes nothing.
    """
    entry = get_entry(session, tenant_id=tenant_id, entry_id=entry_id)
    errors = validate_fields(title=title, url=url, facts=facts)
    if errors:
        raise EntryInvalid(errors)
    new = {
        "title": title.strip(),
        "url": url.strip(),
        "body": body.replace("\r\n", "\n").strip(),
        "keywords": keywords.strip(),
        "facts": dict(facts),
        "is_published": is_published,
    }
    _store(
        session,
        entry=entry,
        new=new,
        embedder=embedder,
        user=user,
        reason="bearbeitet",
        kind="knowledge_entry_changed",
    )
    return entry


def _store(
    session: Session,
    *,
    entry: KnowledgeEntry,
    new: Mapping[str, Any],
    embedder: Any,
    user: User,
    reason: str,
    kind: str,
    data: Mapping[str, Any] | None = None,
) -> list[str]:
    """The one write path of the Redaktion's changes: keep the old content as a version, set
    ``new``, re-chunk and re-index (:func:`rathaus.assistant.knowledge.update_entry`) and audit
    ``kind``. Returns the changed fields; nothing is written when there are none."""
    from rathaus.assistant import knowledge

    changed = sorted(k for k, v in new.items() if getattr(entry, k) != v)
    if not changed:
        return []
    versions.record(session, entry=entry, after=new, changed_by=_actor(user), reason=reason)
    for key, value in new.items():
        setattr(entry, key, value)
    session.flush()
    knowledge.update_entry(session, entry=entry, embedder=embedder)
    audit.record(
        session,
        audit.Event(
            kind=kind,
            actor=user.username,
            tenant_id=entry.tenant_id,
            subject=f"knowledge_entry:{entry.id}",
            data={"title": entry.title, "fields": changed, **(data or {})},
        ),
    )
    return changed


def restore_version(
    session: Session,
    *,
    tenant_id: int,
    entry_id: int,
    version_id: int,
    embedder: Any,
    user: User,
) -> list[str]:
    """Put the content of an earlier version back (title, link, text, keywords, facts,
    published, language) and re-index the entry; the content it replaces becomes a version
    itself. The verification (date, person) stays as it is. Returns the changed fields (empty:
    the version equals the current content, nothing was written)."""
    entry = get_entry(session, tenant_id=tenant_id, entry_id=entry_id)
    version = versions.get_version(
        session, tenant_id=tenant_id, entry_id=entry_id, version_id=version_id
    )
    # Read before writing: the new version may push this one out (KEEP_VERSIONS).
    number, content = version.number, versions.content_of(version)
    return _store(
        session,
        entry=entry,
        new=content,
        embedder=embedder,
        user=user,
        reason="wiederhergestellt",
        kind="knowledge_entry_restored",
        data={"version": number},
    )


def mark_verified(
    session: Session, *, tenant_id: int, entry_id: int, user: User, now: dt.datetime | None = None
) -> KnowledgeEntry:
    """Record that ``user`` checked the entry against the current rules today."""
    entry = get_entry(session, tenant_id=tenant_id, entry_id=entry_id)
    entry.last_verified_at = now or utcnow()
    entry.verified_by = _actor(user)[:120]
    session.flush()
    audit.record(
        session,
        audit.Event(
            kind="knowledge_entry_verified",
            actor=user.username,
            tenant_id=tenant_id,
            subject=f"knowledge_entry:{entry.id}",
            data={"title": entry.title},
        ),
    )
    return entry


def delete_entry(session: Session, *, tenant_id: int, entry_id: int, user: User) -> str:
    """Delete the entry with its passages (answers citing it lose the link); returns its title."""
    from rathaus.assistant import knowledge

    entry = get_entry(session, tenant_id=tenant_id, entry_id=entry_id)
    title = entry.title
    knowledge.delete_entry(session, entry=entry)
    audit.record(
        session,
        audit.Event(
            kind="knowledge_entry_deleted",
            actor=user.username,
            tenant_id=tenant_id,
            subject=f"knowledge_entry:{entry_id}",
            data={"title": title},
        ),
    )
    return title


# -- the gaps report ----------------------------------------------------------------------------

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_question(text: str) -> str:
    """Lower case, punctuation removed, spaces collapsed: equal wordings become equal."""
    return " ".join(_NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split())


def _content_words(normalised: str) -> frozenset[str]:
    return frozenset(w for w in normalised.split() if w not in STOP_WORDS)


@dataclass
class Gap:
    """Questions of one wording (or near-equal wordings) the assistant did not answer well."""

    example: str  # the latest wording, as stored (pseudonymised)
    count: int
    last_asked: dt.datetime
    abstained: int = 0
    low_confidence: int = 0
    thumbs_down: int = 0
    variants: list[str] = field(default_factory=list)  # other wordings, at most five
    entries: list[tuple[int, str]] = field(default_factory=list)  # cited entries (id, title)
    # Languages other than German the questions were asked in, most frequent first: where
    # keywords in that language would help (docs/assistant.md, "Fragen in anderen Sprachen").
    languages: list[str] = field(default_factory=list)
    # How the latest such question was searched in German, when a model translated it
    # (pseudonymised like the question): what the assistant understood.
    searched_as: str = ""

    @property
    def cited(self) -> bool:
        return bool(self.entries)


def _prefix(
    words: frozenset[str], rank: Mapping[str, tuple[int, str]], threshold: float
) -> list[str]:
    # Prefix filtering: two sets with Jaccard >= t share a word among the first
    # |x| - ceil(t·|x|) + 1 words of each, both ordered by the same (rarest first) order.
    ordered = sorted(words, key=rank.__getitem__)
    return ordered[: len(ordered) - math.ceil(threshold * len(ordered)) + 1]


def _cluster(groups: Sequence[frozenset[str]], threshold: float) -> list[int]:
    """For each word set (most important first) the index of the group it joins: the first
    earlier set it overlaps with at least ``threshold`` (Jaccard), else itself. Sets of fewer
    than two words only join equal sets (already merged by the caller)."""
    frequency = Counter(w for words in groups for w in words)
    rank = {w: (n, w) for w, n in frequency.items()}
    index: dict[str, list[int]] = defaultdict(list)
    assigned: list[int] = []
    for i, words in enumerate(groups):
        target = i
        if len(words) >= 2:
            prefix = _prefix(words, rank, threshold)
            best = 0.0
            for j in sorted({j for w in prefix for j in index[w]}):
                other = groups[j]
                overlap = len(words & other) / len(words | other)
                if overlap >= threshold and overlap > best:
                    best, target = overlap, j
            if target == i:
                for w in prefix:
                    index[w].append(i)
        assigned.append(target)
    return assigned


def gaps_report(
    session: Session,
    *,
    tenant_id: int,
    since: dt.datetime,
    low_confidence_below: float = LOW_CONFIDENCE_BELOW,
    until: dt.datetime | None = None,
    near_duplicate: float = NEAR_DUPLICATE,
) -> list[Gap]:
    """Questions asked since ``since`` that the assistant abstained on, answered with a
    confidence below ``low_confidence_below``, or that got a thumbs down, grouped by wording
    (equal after :func:`normalise_question`, or near-equal: the same content words up to
    ``near_duplicate`` overlap). Most asked first, then most recent."""
    weak = or_(
        AssistantTurn.abstained.is_(True),
        AssistantTurn.confidence < low_confidence_below,
        AssistantTurn.feedback < 0,
    )
    conditions = [AssistantTurn.tenant_id == tenant_id, AssistantTurn.created_at >= since, weak]
    if until is not None:
        conditions.append(AssistantTurn.created_at < until)
    turns = session.execute(
        select(
            AssistantTurn.id,
            AssistantTurn.question,
            AssistantTurn.created_at,
            AssistantTurn.confidence,
            AssistantTurn.abstained,
            AssistantTurn.feedback,
            AssistantTurn.language,
            AssistantTurn.answer["searched_as"].as_string().label("searched_as"),
        )
        .where(*conditions)
        .order_by(AssistantTurn.created_at.desc(), AssistantTurn.id.desc())
    ).all()
    cited: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for turn_id, entry_id, title in session.execute(
        select(AssistantCitation.turn_id, KnowledgeEntry.id, KnowledgeEntry.title)
        .join(KnowledgeEntry, KnowledgeEntry.id == AssistantCitation.entry_id)
        .where(
            AssistantCitation.tenant_id == tenant_id,
            AssistantCitation.turn_id.in_(select(AssistantTurn.id).where(*conditions)),
        )
        .order_by(AssistantCitation.turn_id, AssistantCitation.rank)
    ):
        if (entry_id, title) not in cited[turn_id]:
            cited[turn_id].append((entry_id, title))

    # 1. equal wordings; turns are newest first, so a group's first turn is its latest
    by_key: dict[str, list[Any]] = {}
    for turn in turns:
        key = normalise_question(turn.question)
        if key:
            by_key.setdefault(key, []).append(turn)
    keys = sorted(by_key, key=lambda k: (-len(by_key[k]), -_stamp(by_key[k][0].created_at)))
    # 2. near-equal wordings join the most asked group they overlap with
    targets = _cluster([_content_words(k) for k in keys], near_duplicate)
    merged: dict[int, list[str]] = defaultdict(list)
    for key, target in zip(keys, targets, strict=True):
        merged[target].append(key)

    gaps = []
    for members in merged.values():
        rows = sorted(
            (t for k in members for t in by_key[k]),
            key=lambda t: (_stamp(t.created_at), t.id),
            reverse=True,
        )
        latest = rows[0]
        variants: list[str] = []
        for key in members:
            wording = by_key[key][0].question
            if key != normalise_question(latest.question) and len(variants) < 5:
                variants.append(wording)
        entries: list[tuple[int, str]] = []
        for t in rows:
            for cited_entry in cited.get(t.id, []):
                if cited_entry not in entries:
                    entries.append(cited_entry)
        gaps.append(
            Gap(
                example=latest.question,
                count=len(rows),
                last_asked=_aware(latest.created_at),  # type: ignore[arg-type]
                abstained=sum(1 for t in rows if t.abstained),
                low_confidence=sum(
                    1
                    for t in rows
                    if not t.abstained
                    and t.confidence is not None
                    and t.confidence < low_confidence_below
                ),
                thumbs_down=sum(1 for t in rows if (t.feedback or 0) < 0),
                variants=variants,
                entries=entries[:10],
                languages=[
                    code
                    for code, _ in Counter(
                        t.language for t in rows if t.language and t.language != "de"
                    ).most_common()
                ],
                searched_as=next((t.searched_as for t in rows if t.searched_as), ""),
            )
        )
    gaps.sort(key=lambda g: (-g.count, -g.last_asked.timestamp()))
    return gaps


def _stamp(value: dt.datetime) -> float:
    return _aware(value).timestamp()  # type: ignore[union-attr]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    # Questions are citizens' text: a cell starting like a formula is shown as text in Excel.
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def gaps_csv(gaps: Sequence[Gap]) -> str:
    """The gaps report as CSV for Excel and LibreOffice (semicolons, UTF-8 with BOM)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        [
            "Frage",
            "Anzahl",
            "Zuletzt gefragt (UTC)",
            "Enthaltungen",
            "Geringe Sicherheit",
            "Daumen runter",
            "Eintrag zitiert",
            "Zitierte Einträge",
            "Andere Formulierungen",
            "Sprachen",
            "Gesucht als",
        ]
    )
    for gap in gaps:
        writer.writerow(
            [
                _cell(gap.example),
                gap.count,
                gap.last_asked.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"),
                gap.abstained,
                gap.low_confidence,
                gap.thumbs_down,
                "ja" if gap.cited else "nein",
                _cell(" | ".join(title for _, title in gap.entries)),
                _cell(" | ".join(gap.variants)),
                ", ".join(name_of(code) for code in gap.languages),
                _cell(gap.searched_as),
            ]
        )
    return "\ufeff" + buffer.getvalue()
