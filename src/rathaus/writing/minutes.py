"""Niederschrift: a transcript structured by the agenda – per item the discussion summary,
motions, votes, decisions and action items with the times of their source – and the
service functions that keep a :class:`~rathaus.core.models.MeetingMinutes` per tenant."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import MeetingMinutes, utcnow
from rathaus.writing.minutes_extract import (
    NUM,
    Attendee,
    Sentence,
    detect_attendance,
    detect_vote,
    extract,
    is_decision,
    number_value,
    sentences_of,
    transcript_language,
)

RESULT_VERSION = 1
STATUSES = {"entwurf": "Entwurf", "fertig": "fertig"}
MAX_AGENDA_ITEMS = 300
MAX_SUMMARY_INPUT = 400  # sentences per item considered for the extractive summary


class MinutesError(RathausError):
    """A Niederschrift cannot be built from what was given (German message)."""


# -- the agenda ---------------------------------------------------------------------------------


@dataclass
class AgendaItem:
    """One Tagesordnungspunkt as stored in ``MeetingMinutes.agenda``."""

    number: str
    name: str
    public: bool = True
    oparl_id: str | None = None
    result: str = ""  # the result the council information system reports, if any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_AGENDA_LINE = re.compile(
    r"^\s*(?:(?:TOP|Top|Tagesordnungspunkt|Punkt)\s*[:.]?\s*)?"
    r"(?:(?P<pub>Ö|NÖ|N|ö|nö)\s*[-:.]?\s*)?"
    r"(?P<num>\d{1,3}(?:\.\d{1,3})*[a-z]?)\s*[.:)\-–]?\s+(?P<name>\S.*)$"
)


def parse_agenda_text(text: str) -> list[AgendaItem]:
    """One item per line: ``TOP 1 Eröffnung``, ``Ö 2 Bebauungsplan …``, ``N 3 …``, ``2.1 …``;
    a line without a number gets the next one. ``N``/``NÖ``/„nicht öffentlich“ marks a
    non-public item."""
    items: list[AgendaItem] = []
    for raw in text.replace("\r", "\n").split("\n"):
        line = raw.strip().lstrip("-•*").strip()
        if not line:
            continue
        match = _AGENDA_LINE.match(line)
        if match:
            number, name = match.group("num"), match.group("name").strip(" :-–")
            pub = (match.group("pub") or "").upper()
        else:
            number = str(_next_number(items))
            name, pub = line, ""
        public = pub not in ("N", "NÖ") and not re.search(r"nicht[\s-]?öffentlich", name, re.I)
        items.append(AgendaItem(number=number, name=name[:500], public=public))
        if len(items) >= MAX_AGENDA_ITEMS:
            break
    return items


def _next_number(items: list[AgendaItem]) -> int:
    for item in reversed(items):
        head = item.number.split(".")[0]
        if head.isdigit():
            return int(head) + 1
    return 1


def agenda_from_dicts(rows: Sequence[dict[str, Any]]) -> list[AgendaItem]:
    return [
        AgendaItem(
            number=str(row.get("number") or index + 1),
            name=str(row.get("name") or "")[:500],
            public=row.get("public") is not False,
            oparl_id=row.get("oparl_id") or None,
            result=str(row.get("result") or ""),
        )
        for index, row in enumerate(rows)
        if isinstance(row, dict)
    ]


def _norm_number(number: str) -> str:
    digits = re.findall(r"\d+", number)
    return ".".join(str(int(d)) for d in digits)


# -- assigning sentences to agenda items --------------------------------------------------------

_ORD = r"(?:erste|zweite|dritte|vierte|fünfte|sechste|siebte|achte|neunte|zehnte|elfte|zwölfte)"
_MARKER = re.compile(
    rf"\b(?:Tagesordnungspunkte?s?|TOP|Top)\s*(?:Nummer\s+|Nr\.\s*)?(?P<n>{NUM}(?:\s*\.\s*\d+|"
    rf"\s+Punkt\s+{NUM})*)\b"
    rf"|\b(?:zu|zum|kommen|komme|rufe|gehen|weiter\s+mit|nun|jetzt|nächste[rn]?)\b[^.?!]{{0,40}}?"
    rf"\bPunkt\s*(?:Nummer\s+|Nr\.\s*)?(?P<p>{NUM}(?:\s*\.\s*\d+|\s+Punkt\s+{NUM})*)\b"
    rf"|\b(?:zum|den|der)\s+(?P<o>{_ORD})n?\s+(?:Tagesordnungspunkt|Punkt)\b",
    re.IGNORECASE,
)
_CUE = re.compile(
    r"\b(?:kommen|komme)\s+(?:nun\s+|jetzt\s+|dann\s+)?(?:zu|zum|zur)\b|\brufe\b.*\bauf\b|"
    r"\baufrufen\b|\bnächste[rns]?\s+(?:Punkt|Thema|Tagesordnungspunkt)|\bThema\b|"
    r"\bbefassen\s+uns\b|\bbehandeln\b|\bgeht\s+es\s+um\b|\bweiter\s+mit\b|\bberaten\b",
    re.IGNORECASE,
)
_STOP = set(
    [
        "der",
        "die",
        "das",
        "den",
        "dem",
        "des",
        "ein",
        "eine",
        "einer",
        "eines",
        "einem",
        "und",
        "oder",
        "für",
        "von",
        "vom",
        "zum",
        "zur",
        "mit",
        "auf",
        "aus",
        "bei",
        "über",
        "unter",
        "nach",
        "vor",
        "ist",
        "sind",
        "wird",
        "werden",
        "wurde",
        "haben",
        "hat",
        "hier",
        "heute",
        "wir",
        "ihr",
        "sie",
        "ich",
        "es",
        "nun",
        "jetzt",
        "dann",
        "noch",
        "auch",
        "als",
        "wie",
        "was",
        "wer",
        "dass",
        "nicht",
        "kein",
        "keine",
        "sehr",
        "gut",
        "danke",
        "bitte",
        "vielen",
        "herzlich",
        "meine",
        "damen",
        "herren",
        "liebe",
        "kommen",
        "kommt",
        "komme",
        "punkt",
        "thema",
        "top",
        "tagesordnungspunkt",
        "nummer",
        "rufe",
        "auf",
        "sowie",
        "bzw",
        "antrag",
        "vorlage",
        "beschluss",
        "stadt",
        "gemeinde",
        "öffentlich",
        "nichtöffentlich",
        "nicht",
    ]
)
_WORD = re.compile(r"[A-Za-zÄÖÜäöüß]{3,}")


def terms(text: str) -> set[str]:
    """Content-word stems (first six letters) for cheap overlap and TF-IDF."""
    return {w.lower()[:6] for w in _WORD.findall(text) if w.lower() not in _STOP}


def _marker_number(sentence: str) -> str | None:
    match = _MARKER.search(sentence)
    if not match:
        return None
    if match.group("o"):
        value = number_value(match.group("o"))
        return str(value) if value else None
    raw = match.group("n") or match.group("p") or ""
    parts = re.split(r"\s*\.\s*|\s+Punkt\s+", raw.strip(), flags=re.IGNORECASE)
    values = [number_value(p) for p in parts if p]
    if not values or any(v is None for v in values):
        return None
    return ".".join(str(v) for v in values)


@dataclass
class Assignment:
    """Per sentence the agenda item index (``None``: before the first item) and how it was found."""

    owner: list[int | None]
    method: str  # marker, abstimmung, gleichmaessig, keine
    markers: dict[int, int]  # sentence index → item index where a marker switched


def assign(sentences: Sequence[Sentence], agenda: Sequence[AgendaItem]) -> Assignment:
    """Assign each sentence to an agenda item: explicit markers („TOP 3“, „Tagesordnungspunkt
    drei“, „Wir kommen zu Punkt 2.1“), else a transition sentence whose words match an item's
    name; without any, each vote closes an item, and failing that the text is split evenly."""
    if not agenda:
        return Assignment([None] * len(sentences), "keine", {})
    by_number: dict[str, list[int]] = {}
    for i, item in enumerate(agenda):
        by_number.setdefault(_norm_number(item.number), []).append(i)
    name_terms = [terms(item.name) for item in agenda]
    owner: list[int | None] = []
    markers: dict[int, int] = {}
    current: int | None = None
    for sentence in sentences:
        target = _switch_target(sentence.text, current, by_number, name_terms)
        if target is not None and target != current:
            current = target
            markers[sentence.index] = target
        owner.append(current)
    if markers:
        return Assignment(owner, "marker", markers)
    return _fallback(sentences, agenda)


def _switch_target(
    text: str,
    current: int | None,
    by_number: dict[str, list[int]],
    name_terms: list[set[str]],
) -> int | None:
    words = terms(text)
    number = _marker_number(text)
    if number is not None:
        candidates = by_number.get(number) or by_number.get(number.split(".")[0]) or []
        if len(candidates) > 1:
            # the same number twice (public and non-public part): the name decides, else
            # the next one after the current item
            overlap = [len(name_terms[i] & words) for i in candidates]
            if max(overlap) > 0 and overlap.count(max(overlap)) == 1:
                return candidates[overlap.index(max(overlap))]
            later = [i for i in candidates if current is None or i > current]
            return (later or candidates)[0]
        if candidates:
            return candidates[0]
    if not words:
        return None
    cue = bool(_CUE.search(text))
    best, best_score = None, 0.0
    for index, wanted in enumerate(name_terms):
        if not wanted or index == current:
            continue
        shared = len(wanted & words)
        score = shared / len(wanted)
        needed = 1 if len(wanted) <= 2 else 2
        if (
            cue
            and shared >= needed
            and score >= 0.5
            and score > best_score
            or (
                not cue
                and index == (current + 1 if current is not None else 0)
                and len(wanted) >= 3
                and score >= 0.8
                and score > best_score
            )
        ):
            best, best_score = index, score
    return best


def _fallback(sentences: Sequence[Sentence], agenda: Sequence[AgendaItem]) -> Assignment:
    closes = [s.index for s in sentences if detect_vote(s) is not None or is_decision(s)]
    owner: list[int | None] = []
    if closes and len(agenda) > 1:
        current = 0
        previous_closed = False
        for sentence in sentences:
            closing = sentence.index in closes
            if previous_closed and not closing and current < len(agenda) - 1:
                current += 1
            owner.append(current)
            previous_closed = closing
        return Assignment(owner, "abstimmung", {})
    per_item = max(1, math.ceil(len(sentences) / len(agenda)))
    owner = [min(i // per_item, len(agenda) - 1) for i in range(len(sentences))]
    return Assignment(owner, "gleichmaessig", {})


# -- the discussion summary --------------------------------------------------------------------


def central_sentences(
    sentences: Sequence[Sentence], count: int, *, embedder: Any = None
) -> list[Sentence]:
    """The ``count`` most central sentences (sum of cosine similarity to the others, TF-IDF
    vectors or – when an embedder is given – its vectors), in transcript order."""
    pool = [s for s in sentences if len(s.text.split()) >= 5][:MAX_SUMMARY_INPUT]
    if len(pool) <= count:
        return list(pool)
    if embedder is not None:
        try:
            vectors = embedder.embed_passages([s.text for s in pool])
            similarity = vectors @ vectors.T
            scores = [float(similarity[i].sum()) for i in range(len(pool))]
        except Exception:  # noqa: BLE001 – the summary then falls back to TF-IDF
            scores = _tfidf_centrality(pool)
    else:
        scores = _tfidf_centrality(pool)
    ranked = sorted(range(len(pool)), key=lambda i: (-scores[i], i))[:count]
    return [pool[i] for i in sorted(ranked)]


def _tfidf_centrality(pool: Sequence[Sentence]) -> list[float]:
    bags = [Counter(w.lower()[:6] for w in _WORD.findall(s.text) if w.lower() not in _STOP)
            for s in pool]  # fmt: skip
    df = Counter(term for bag in bags for term in bag)
    n = len(bags)
    vectors = []
    for bag in bags:
        vec = {t: c * math.log(1 + n / df[t]) for t, c in bag.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        vectors.append({t: v / norm for t, v in vec.items()})
    scores = []
    for i, vec in enumerate(vectors):
        total = 0.0
        for j, other in enumerate(vectors):
            if i != j:
                total += sum(v * other.get(t, 0.0) for t, v in vec.items())
        scores.append(total)
    return scores


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers_supported(summary: str, source: str) -> bool:
    """Every number in ``summary`` also occurs in ``source``."""
    return set(_NUMBER.findall(summary)) <= set(_NUMBER.findall(source))


def model_summary(llm: Any, *, topic: str, text: str) -> str | None:
    """A short abstractive summary of one item's discussion by the language model, or ``None``
    when the model fails or invents a number that is not in the transcript."""
    from rathaus.ai.llm import ChatMessage
    from rathaus.governance.injection import data_rule, fence

    messages = [
        ChatMessage(
            "system",
            "Du fasst die Beratung zu einem Tagesordnungspunkt einer Gemeinderatssitzung für "
            "die Niederschrift sachlich in zwei bis vier Sätzen auf Deutsch zusammen. Nenne nur "
            "Zahlen, Namen und Fakten, die im Transkript stehen. " + data_rule("TRANSKRIPT"),
        ),
        ChatMessage(
            "user",
            f"Tagesordnungspunkt: {topic}\n\nTranskript:\n{fence(text[:8000], 'TRANSKRIPT')}",
        ),
    ]
    try:
        answer = llm.complete(messages, max_tokens=300, temperature=0.0).text.strip()
    except RathausError:
        return None
    if not answer or not numbers_supported(answer, text):
        return None
    return answer


# -- the whole structure -------------------------------------------------------------------------


def structure(
    *,
    agenda: Sequence[AgendaItem | dict[str, Any]],
    transcript: Sequence[dict[str, Any]],
    attendance: Sequence[dict[str, Any]] = (),
    summary_sentences: int = 3,
    embedder: Any = None,
    llm: Any = None,
) -> dict[str, Any]:
    """Structure a transcript (segments ``{start, end, text}``) by the agenda. Returns the JSON
    stored as ``MeetingMinutes.result``. Deterministic without ``llm``; with one, the
    discussion summary is the model's when its numbers are all in the item's transcript."""
    items = [a if isinstance(a, AgendaItem) else agenda_from_dicts([a])[0] for a in agenda]
    sentences = sentences_of(list(transcript))
    if not sentences:
        raise MinutesError(
            "Das Transkript ist leer. Bitte den Text der Sitzung einfügen oder eine Aufnahme "
            "hochladen und das Ende der Transkription abwarten."
        )
    notes: list[str] = []
    full_text = "\n".join(s.text for s in sentences)
    language = transcript_language(full_text)
    if not language.is_german:
        notes.append(language.note)
    if not items:
        items = _agenda_from_markers(sentences)
        if items:
            notes.append(
                "Es war keine Tagesordnung angegeben; die Punkte wurden aus den Überleitungen "
                "im Transkript gebildet."
            )
        else:
            items = [AgendaItem("1", "Sitzung")]
            notes.append(
                "Es war keine Tagesordnung angegeben und im Transkript wurden keine "
                "Tagesordnungspunkte erkannt; alles steht unter einem Punkt."
            )
    assignment = assign(sentences, items)
    if assignment.method == "abstimmung":
        notes.append(
            "Im Transkript wurden keine Überleitungen zu Tagesordnungspunkten erkannt; die "
            "Abschnitte wurden der Reihe nach an den Abstimmungen getrennt. Bitte prüfen."
        )
    elif assignment.method == "gleichmaessig" and len(items) > 1:
        notes.append(
            "Im Transkript wurden weder Überleitungen zu Tagesordnungspunkten noch "
            "Abstimmungen erkannt; der Text wurde gleichmäßig auf die Punkte verteilt. "
            "Bitte prüfen und bei Bedarf „TOP 1“, „TOP 2“ … in das Transkript schreiben."
        )
    preamble = [s for s, o in zip(sentences, assignment.owner, strict=True) if o is None]
    present = [a.as_dict() for a in detect_attendance("\n".join(s.text for s in sentences))]
    result_items = []
    for index, item in enumerate(items):
        own = [s for s, o in zip(sentences, assignment.owner, strict=True) if o == index]
        result_items.append(_item_result(item, own, assignment, summary_sentences, embedder, llm))
    missing = [f"{i['number']} {i['name']}" for i in result_items if not i["sentence_count"]]
    if missing and assignment.method == "marker":
        notes.append(
            "Zu diesen Tagesordnungspunkten wurde im Transkript nichts gefunden: "
            + "; ".join(missing[:20])
            + ("…" if len(missing) > 20 else "")
            + "."
        )
    return {
        "version": RESULT_VERSION,
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "language": language.language,
        "assignment": assignment.method,
        "notes": notes,
        "preamble": {
            "sentences": len(preamble),
            "start": preamble[0].start if preamble else None,
            "end": preamble[-1].end if preamble else None,
        },
        "attendance": merge_attendance(list(attendance), present),
        "items": result_items,
    }


def _item_result(
    item: AgendaItem,
    own: list[Sentence],
    assignment: Assignment,
    summary_sentences: int,
    embedder: Any,
    llm: Any,
) -> dict[str, Any]:
    found = extract(own)
    discussion = [s for s in own if s.index not in found.used and s.index not in assignment.markers]
    summary = [
        {"text": s.text, "start": s.start, "end": s.end}
        for s in central_sentences(discussion, summary_sentences, embedder=embedder)
    ]
    summary_source = "extraktiv"
    if llm is not None and discussion:
        text = " ".join(s.text for s in own)
        generated = model_summary(llm, topic=f"{item.number} {item.name}", text=text)
        if generated:
            summary = [{"text": generated, "start": own[0].start, "end": own[-1].end}]
            summary_source = "sprachmodell"
    decision_text = " ".join(d.text for d in found.decisions)
    if not decision_text and found.votes:
        decision_text = _vote_phrase(found.votes[-1].as_dict())
    return {
        **item.as_dict(),
        "start": own[0].start if own else None,
        "end": (own[-1].end if own[-1].end is not None else own[-1].start) if own else None,
        "sentence_count": len(own),
        "sentences": [s.index for s in own],
        "summary": summary,
        "summary_source": summary_source,
        "motions": [m.as_dict() for m in found.motions],
        "votes": [v.as_dict() for v in found.votes],
        "decisions": [d.as_dict() for d in found.decisions],
        "actions": [a.as_dict() for a in found.actions],
        "decision_text": decision_text,
    }


def _vote_phrase(vote: dict[str, Any]) -> str:
    parts = []
    if vote.get("unanimous"):
        parts.append("einstimmig")
    elif vote.get("majority"):
        parts.append("mehrheitlich")
    outcome = vote.get("outcome")
    if outcome:
        parts.append(outcome)
    counts = vote_counts_text(vote)
    if counts:
        parts.append(f"({counts})")
    return (" ".join(parts)[:1].upper() + " ".join(parts)[1:] + ".") if parts else ""


def vote_counts_text(vote: dict[str, Any]) -> str:
    labels = (("yes", "Ja"), ("no", "Nein"), ("abstain", "Enthaltungen"))
    return ", ".join(f"{label}: {vote[key]}" for key, label in labels if vote.get(key) is not None)


def _agenda_from_markers(sentences: Sequence[Sentence]) -> list[AgendaItem]:
    items: list[AgendaItem] = []
    seen: set[str] = set()
    for sentence in sentences:
        number = _marker_number(sentence.text)
        if number is None or number in seen:
            continue
        seen.add(number)
        match = _MARKER.search(sentence.text)
        rest = sentence.text[match.end() :].strip(" :,.–-") if match else ""
        items.append(AgendaItem(number, rest[:120] or f"Tagesordnungspunkt {number}"))
    return items


def merge_attendance(*lists: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per name; an earlier source (OParl, typed in) wins over a later one."""
    merged: dict[str, dict[str, Any]] = {}
    for rows in lists:
        for row in rows:
            name = str(row.get("name") or "").strip()
            if name and name.lower() not in merged:
                merged[name.lower()] = {
                    "name": name,
                    "status": str(row.get("status") or "anwesend"),
                    "source": str(row.get("source") or ""),
                }
    return list(merged.values())


def attendance_from_text(text: str) -> list[dict[str, Any]]:
    """Typed attendance: ``anwesend: …`` / ``entschuldigt: …`` lines, or one name a line
    (then present)."""
    rows = [a.as_dict() for a in detect_attendance(text, source="eingegeben")]
    if rows:
        return rows
    return [
        Attendee(line.strip(), "anwesend", "eingegeben").as_dict()
        for line in text.splitlines()
        if 2 <= len(line.strip()) <= 120
    ]


# -- the stored Niederschrift -------------------------------------------------------------------


def create(
    session: Session,
    *,
    tenant_id: int,
    user_name: str,
    title: str,
    body_name: str = "",
    meeting_date: dt.datetime | None = None,
    location: str = "",
    agenda: Sequence[AgendaItem] = (),
    oparl_meeting_id: str | None = None,
    attendance: Sequence[dict[str, Any]] = (),
    transcript: Sequence[dict[str, Any]] = (),
) -> MeetingMinutes:
    title = title.strip()
    if not title:
        raise MinutesError("Bitte einen Titel für die Niederschrift angeben.")
    row = MeetingMinutes(
        tenant_id=tenant_id,
        title=title[:300],
        body_name=body_name.strip()[:300],
        meeting_date=meeting_date,
        location=location.strip()[:300],
        oparl_meeting_id=(oparl_meeting_id or None) and oparl_meeting_id[:500],
        agenda=[a.as_dict() for a in agenda],
        attendance=list(attendance),
        transcript=list(transcript),
        result={},
        status="entwurf",
        created_by=user_name[:120],
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, *, tenant_id: int, minutes_id: int) -> MeetingMinutes:
    row = session.get(MeetingMinutes, minutes_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFoundError(f"Die Niederschrift Nr. {minutes_id} gibt es in Ihrer Kommune nicht.")
    return row


def list_minutes(session: Session, *, tenant_id: int, limit: int = 200) -> list[MeetingMinutes]:
    return list(
        session.scalars(
            select(MeetingMinutes)
            .where(MeetingMinutes.tenant_id == tenant_id)
            .order_by(MeetingMinutes.meeting_date.desc(), MeetingMinutes.id.desc())
            .limit(limit)
        )
    )


def build(
    session: Session,
    row: MeetingMinutes,
    *,
    summary_sentences: int = 3,
    embedder: Any = None,
    llm: Any = None,
) -> dict[str, Any]:
    """Structure the stored transcript by the stored agenda and keep the result; decision
    texts edited earlier for the same item are kept."""
    previous = {
        (i.get("number"), i.get("name")): i
        for i in (row.result or {}).get("items", [])
        if i.get("edited")
    }
    result = structure(
        agenda=agenda_from_dicts(row.agenda or []),
        transcript=row.transcript or [],
        attendance=row.attendance or [],
        summary_sentences=summary_sentences,
        embedder=embedder,
        llm=llm,
    )
    for item in result["items"]:
        kept = previous.get((item["number"], item["name"]))
        if kept:
            item["decision_text"] = kept.get("decision_text", item["decision_text"])
            item["edited"] = True
    row.result = result
    session.flush()
    return result


def update_item_texts(
    session: Session, row: MeetingMinutes, texts: dict[int, dict[str, str]]
) -> int:
    """Store edited decision texts and summaries (item index → fields); returns the count."""
    result = dict(row.result or {})
    items = [dict(i) for i in result.get("items", [])]
    changed = 0
    for index, fields in texts.items():
        if not 0 <= index < len(items):
            continue
        item = items[index]
        decision = fields.get("decision_text")
        if decision is not None and decision.strip() != item.get("decision_text", ""):
            item["decision_text"] = decision.strip()[:20000]
            item["edited"] = True
            changed += 1
        summary = fields.get("summary")
        current = " ".join(s["text"] for s in item.get("summary", []))
        if summary is not None and summary.strip() != current:
            item["summary"] = [{"text": summary.strip()[:20000], "start": None, "end": None}]
            item["summary_source"] = "bearbeitet"
            item["edited"] = True
            changed += 1
    if changed:
        result["items"] = items
        row.result = result
        session.flush()
    return changed


def set_status(session: Session, row: MeetingMinutes, status: str) -> None:
    if status not in STATUSES:
        raise MinutesError("Unbekannter Status; erlaubt sind „entwurf“ und „fertig“.")
    if status == "fertig" and not (row.result or {}).get("items"):
        raise MinutesError(
            "Die Niederschrift kann erst als fertig markiert werden, wenn sie erstellt wurde."
        )
    row.status = status
    session.flush()


def format_time(seconds: float | None) -> str:
    """``3725`` → ``1:02:05``; empty for a typed transcript."""
    if seconds is None:
        return ""
    total = int(seconds)
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
