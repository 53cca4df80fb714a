"""Niederschrift building blocks: sentences with times, and the detectors for votes, decisions,
motions, action items and attendance in German council phrasing (deterministic, no model)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

# -- sentences with the times of their source segments ----------------------------------------


@dataclass(frozen=True)
class Sentence:
    """One sentence of the transcript; ``start``/``end`` are seconds (``None`` when typed)."""

    index: int
    text: str
    start: float | None
    end: float | None


_ABBREVIATIONS = frozenset(
    [
        "nr",
        "abs",
        "ziff",
        "dr",
        "prof",
        "bzw",
        "ca",
        "vgl",
        "ggf",
        "evtl",
        "usw",
        "z",
        "b",
        "d",
        "h",
        "u",
        "a",
        "s",
        "o.",
        "e",
        "v",
        "st",
        "tel",
        "hr",
        "fr",
        "str",
        "mio",
        "mrd",
        "gem",
        "lt",
        "inkl",
        "zzgl",
        "bzgl",
        "sog",
        "i.",
        "v",
        "m",
        "top",
        "tsd",
    ]
)
_BOUNDARY = re.compile(r"(?<=[.!?…])[\"“”»]?\s+(?=[\"„«(]?[A-ZÄÖÜ0-9])")


def _split(text: str) -> list[str]:
    """Split one run of text into sentences; abbreviations and ordinals (``12. März``) hold."""
    parts: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        before = text[start : match.start()].rstrip('"“”»')
        last = re.findall(r"([\wÄÖÜäöüß]+)\.$", before[-12:])
        if last and (last[0].lower() in _ABBREVIATIONS or last[0].isdigit() or len(last[0]) == 1):
            continue
        parts.append(text[start : match.start()].strip())
        start = match.end()
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def sentences_of(segments: list[dict[str, Any]]) -> list[Sentence]:
    """The transcript's sentences; a sentence spanning several segments gets the first one's
    start and the last one's end. A line break ends a sentence."""
    text_parts: list[str] = []
    owners: list[tuple[int, int, int]] = []  # (start offset, end offset, segment index)
    offset = 0
    for number, segment in enumerate(segments):
        piece = str(segment.get("text") or "").strip()
        if not piece:
            continue
        if text_parts:
            # a speech-to-text segment often ends mid-sentence: a lower-case start continues it
            text_parts.append(" " if piece[0].islower() else "\n")
            offset += 1
        owners.append((offset, offset + len(piece), number))
        text_parts.append(piece)
        offset += len(piece)
    joined = "".join(text_parts)
    result: list[Sentence] = []
    position = 0
    for line in joined.split("\n"):
        for sentence in _split(line):
            found = joined.find(sentence, position)
            lo, hi = (found, found + len(sentence)) if found >= 0 else (position, position)
            position = max(position, hi)
            touched = [seg for a, b, seg in owners if a < max(hi, lo + 1) and b > lo]
            first = segments[touched[0]] if touched else {}
            last = segments[touched[-1]] if touched else {}
            result.append(
                Sentence(
                    len(result), sentence, _seconds(first.get("start")), _seconds(last.get("end"))
                )
            )
    return result


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return round(float(value), 2)
    except (TypeError, ValueError):
        return None


_TIME = r"(?:(\d{1,2}):)?(\d{1,2}):(\d{2})(?:[.,]\d+)?"
_CUE = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_STAMP = re.compile(rf"^\s*[\[(]?{_TIME}[\])]?\s*[-–:]?\s*")


def _clock(hours: str | None, minutes: str, seconds: str) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)


def parse_transcript_text(text: str) -> list[dict[str, Any]]:
    """A pasted transcript as segments ``{start, end, text}``: one segment per line; a leading
    time stamp (``[00:12:03]``, ``12:03``) or an SRT/WebVTT cue line sets the times."""
    segments: list[dict[str, Any]] = []
    pending: tuple[float, float] | None = None
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        if not line or line == "WEBVTT" or line.isdigit():
            continue
        cue = _CUE.match(line)
        if cue:
            g = cue.groups()
            pending = (_clock(g[0], g[1], g[2]), _clock(g[3], g[4], g[5]))
            continue
        start: float | None = None
        end: float | None = None
        stamp = _STAMP.match(line)
        if pending:
            start, end = pending
            pending = None
        elif stamp and len(line) > stamp.end():
            start = _clock(*stamp.groups())
            line = line[stamp.end() :].strip()
        if segments and start is None and segments[-1]["start"] is not None:
            # a continuation line of a time-stamped paragraph
            segments[-1]["text"] += "\n" + line
            continue
        segments.append({"start": start, "end": end, "text": line})
    # stamps without an end: a segment ends where the next one starts
    for current, following in zip(segments, segments[1:], strict=False):
        if current["end"] is None and current["start"] is not None:
            current["end"] = following["start"]
    return segments


# -- numbers as digits or words ---------------------------------------------------------------

_UNITS = {
    "null": 0, "kein": 0, "keine": 0, "keiner": 0, "ein": 1, "eine": 1, "einer": 1, "einem": 1,
    "einen": 1, "eins": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6,
    "sieben": 7, "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12, "dreizehn": 13,
    "vierzehn": 14, "fünfzehn": 15, "sechzehn": 16, "siebzehn": 17, "achtzehn": 18,
    "neunzehn": 19,
}  # fmt: skip
_TENS = {
    "zwanzig": 20, "dreißig": 30, "dreissig": 30, "vierzig": 40, "fünfzig": 50,
    "sechzig": 60, "siebzig": 70, "achtzig": 80, "neunzig": 90,
}  # fmt: skip
_ORDINALS = {
    "erste": 1, "zweite": 2, "dritte": 3, "vierte": 4, "fünfte": 5, "sechste": 6,
    "siebte": 7, "siebente": 7, "achte": 8, "neunte": 9, "zehnte": 10, "elfte": 11,
    "zwölfte": 12,
}  # fmt: skip


def number_value(word: str) -> int | None:
    """``12`` → 12, ``zwölf`` → 12, ``einundzwanzig`` → 21, ``einer`` → 1; else ``None``."""
    w = word.lower().strip()
    if w.isdigit():
        return int(w)
    if w in _UNITS:
        return _UNITS[w]
    if w in _TENS:
        return _TENS[w]
    if w in ("hundert", "einhundert"):
        return 100
    match = re.fullmatch(r"(\w+?)und(\w+)", w)
    if match and match.group(2) in _TENS:
        unit = {"ein": 1}.get(match.group(1), _UNITS.get(match.group(1)))
        if unit is not None and 1 <= unit <= 9:
            return _TENS[match.group(2)] + unit
    stem = re.sub(r"(?:n|r|s|m)$", "", w)
    return _ORDINALS.get(stem) or _ORDINALS.get(w)


_NUM_WORDS = sorted(
    [*_UNITS, *_TENS, *[f"{u}und{t}" for u in ("ein", *list(_UNITS)[7:15]) for t in _TENS]],
    key=len,
    reverse=True,
)
NUM = r"(?:\d{1,4}|" + "|".join(_NUM_WORDS) + r")"


# -- votes ------------------------------------------------------------------------------------

OUTCOMES = (
    "angenommen",
    "abgelehnt",
    "zur Kenntnis genommen",
    "vertagt",
    "verwiesen",
    "zurückgezogen",
    "erledigt",
)


@dataclass
class Vote:
    """A vote result: counts (``None`` when not said), unanimous/majority, the outcome."""

    text: str
    start: float | None
    end: float | None
    yes: int | None = None
    no: int | None = None
    abstain: int | None = None
    unanimous: bool = False
    majority: bool = False
    outcome: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_F = re.IGNORECASE
_YES = [
    re.compile(rf"\b({NUM})\s+(?:ja[- ]?stimmen|jastimmen|ja\b|für-?stimmen|stimmen\s+dafür|"
               rf"dafür|befürwort\w*|stimmen\s+für|stimmten\s+dafür|zustimmungen)", _F),
    re.compile(rf"\b(?:ja|dafür|ja-stimmen)\s*[:=]\s*({NUM})\b", _F),
    re.compile(rf"\b({NUM})\s+(?:mitglieder|ratsmitglieder|personen|stimmen)\s+"
               rf"(?:stimm\w+|votier\w+)\s+(?:dafür|mit ja|zu)", _F),
]  # fmt: skip
_NO = [
    re.compile(rf"\b({NUM})\s+(?:nein[- ]?stimmen|neinstimmen|nein\b|gegenstimmen?|"
               rf"stimmen?\s+dagegen|dagegen)", _F),
    re.compile(rf"\b(?:nein|dagegen|gegenstimmen)\s*[:=]\s*({NUM})\b", _F),
]  # fmt: skip
_ABSTAIN = [
    re.compile(rf"\b({NUM})\s+(?:stimm)?enthaltung(?:en)?", _F),
    re.compile(rf"\b({NUM})\s+(?:\w+\s+)?(?:enthält|enthalten|enthielten|enthielt)\s+sich", _F),
    re.compile(rf"\b(?:stimm)?enthaltung(?:en)?\s*[:=]\s*({NUM})\b", _F),
]  # fmt: skip
_NO_NONE = re.compile(r"\bohne\s+(?:jede\s+)?gegen-?stimmen?\b|\bkeine\s+gegenstimmen?\b", _F)
_ABSTAIN_NONE = re.compile(r"\bohne\s+(?:stimm)?enthaltung(?:en)?\b|\bkeine\s+enthaltung", _F)
_UNANIMOUS = re.compile(
    r"(?<!nicht )\beinstimmig\b|\bohne\s+gegenstimmen?\s+und\s+ohne\s+(?:stimm)?enthaltung", _F
)
_MAJORITY = re.compile(r"\bmehrheitlich\b|\bmit\s+(?:großer\s+|knapper\s+)?mehrheit\b", _F)
_OUTCOME_PATTERNS = (
    ("abgelehnt", re.compile(
        r"\babgelehnt\b|\bablehn\w*\b|\bkeine\s+mehrheit\b|\bgescheitert\b|\bnicht\s+(?:angenommen|"
        r"beschlossen|zugestimmt)\b|\bzurückgewiesen\b|\bverworfen\b", _F)),
    ("zurückgezogen", re.compile(r"\bzurückgezogen\b|\bzieht\b.*\bzurück\b", _F)),
    ("vertagt", re.compile(r"\bvertagt\b|\bzurückgestellt\b|\babgesetzt\b|"
                           r"\bwiedervorlage\b", _F)),
    ("verwiesen", re.compile(r"\bverwiesen\b|\bverweis\w*\s+(?:in|an)\b|\büberwiesen\b|"
                             r"\bweiter(?:behandlung|e\s+beratung)\s+im\b", _F)),
    ("zur Kenntnis genommen", re.compile(r"\bkenntnis(?:nahme|\s+genommen)\b|\bnimmt\b.*"
                                         r"\bzur\s+kenntnis\b|\bzur\s+kenntnis\b", _F)),
    ("angenommen", re.compile(
        r"\bangenommen\b|\bbeschlossen\b|\bzugestimmt\b|\bzustimmung\b|\bgebilligt\b|"
        r"\bbefürwortet\b|\bgenehmigt\b|\bverabschiedet\b|\beinverstanden\b|\bgewählt\b|"
        r"\bbestätigt\b|\bstimmt\b.*\bzu\b", _F)),
    ("erledigt", re.compile(r"\berledigt\b", _F)),
)  # fmt: skip
_VOTE_CONTEXT = re.compile(
    r"\babstimm\w*|\bstimmen\b|antrag\b|vorlage\b|\bbeschluss\w*|\bergebnis\b|\bso\s+"
    r"beschlossen\b|\bhandzeichen\b|\beinstimmig\b|\bmehrheitlich\b",
    _F,
)


def _count(patterns: list[re.Pattern[str]], text: str) -> int | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return number_value(match.group(1))
    return None


def outcome_of(text: str) -> str | None:
    """The outcome a sentence states (``angenommen``, ``abgelehnt``, …), or ``None``."""
    for label, pattern in _OUTCOME_PATTERNS:
        if pattern.search(text):
            # "nicht abgelehnt" is rare; "nicht angenommen" is caught by the first pattern
            return label
    return None


def detect_vote(sentence: Sentence) -> Vote | None:
    """The vote result in one sentence, or ``None`` when it states none."""
    text = sentence.text
    yes, no, abstain = _count(_YES, text), _count(_NO, text), _count(_ABSTAIN, text)
    if no is None and _NO_NONE.search(text):
        no = 0
    if abstain is None and _ABSTAIN_NONE.search(text):
        abstain = 0
    unanimous = bool(_UNANIMOUS.search(text))
    majority = bool(_MAJORITY.search(text))
    outcome = outcome_of(text)
    counted = any(v is not None for v in (yes, no, abstain))
    if not (counted or unanimous or majority):
        # an outcome word alone is a vote only when the sentence speaks of a vote or motion,
        # or when the word is one only a council result uses ("vertagt", "zur Kenntnis …")
        if outcome is None or _DECISION.search(text):
            return None
        if outcome in ("angenommen", "abgelehnt", "erledigt") and not _VOTE_CONTEXT.search(text):
            return None
    if outcome is None and yes is not None and no is not None:
        outcome = "angenommen" if yes > no else "abgelehnt"
    if outcome is None and (unanimous or (no == 0 and yes is None)):
        outcome = "angenommen"  # "Das ist einstimmig." – a unanimous vote carries
    return Vote(text, sentence.start, sentence.end, yes, no, abstain, unanimous, majority, outcome)


# -- decisions (Beschlüsse) -------------------------------------------------------------------

_BODY = (
    r"(?:Gemeinderat|Stadtrat|Ortschaftsrat|Kreistag|Rat|Bezirksbeirat|Ortsbeirat|Gremium|"
    r"Stadtverordnetenversammlung|Gemeindevertretung|Hauptausschuss|Verwaltungsausschuss|"
    r"[\wÄÖÜäöüß-]*[Aa]usschuss|Ältestenrat|Bauausschuss|Kreisausschuss)"
)
_DECISION = re.compile(
    rf"\b(?:Der|Die|Das)\s+{_BODY}\s+(?:beschließt|beschloss|hat\s+beschlossen|stimmt\b|"
    rf"nimmt\b|empfiehlt|billigt|ermächtigt|beauftragt|genehmigt|wählt|bestellt|"
    rf"verabschiedet|lehnt\b|bestätigt|fasst|spricht\s+sich)"
    r"|^\s*(?:Beschluss|Beschlusstext|Beschlussfassung)\s*:",
    re.IGNORECASE,
)
_PROPOSAL = re.compile(r"^\s*Beschluss(?:vorschlag|antrag)\s*:", re.IGNORECASE)


@dataclass
class Decision:
    text: str
    start: float | None
    end: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_decision(sentence: Sentence) -> bool:
    return bool(_DECISION.search(sentence.text)) and not _PROPOSAL.search(sentence.text)


# -- motions (Anträge) ------------------------------------------------------------------------

_MOTION = re.compile(
    r"\b(?:stell\w*|bring\w*)\s+(?:hiermit\s+)?(?:den|einen)\s+(?:\w+\s+)?"
    r"(?:Antrag|Änderungsantrag|Ergänzungsantrag|Geschäftsordnungsantrag)\b"
    r"|\bbeantrag(?:t|en|e|te|ten)\b|\b(?:Änderungs|Ergänzungs|Geschäftsordnungs)antrag\b"
    r"|\bAntrag\s+(?:der|des|von|auf|zur)\b|\bBeschlussantrag\s*:",
    re.IGNORECASE,
)
_MOVER = re.compile(
    r"^(?:Die\s+|Der\s+|Das\s+)?(?P<who>(?:Herr|Frau|Fraktion|Stadtrat|Stadträtin|Gemeinderat|"
    r"Gemeinderätin)?\s*[A-ZÄÖÜ][\wÄÖÜäöüß./-]+(?:[\s-][A-ZÄÖÜ][\wÄÖÜäöüß./-]+){0,3}?"
    r"(?:[\s-]Fraktion)?)\s+(?:stellt|stellen|beantragt|beantragen|bringt)\b"
    r"|\bAntrag\s+(?:der|des|von)\s+(?P<who2>(?:Herrn?|Frau|Fraktion)?\s*[A-ZÄÖÜ][\wÄÖÜäöüß/-]+"
    r"(?:[\s-](?:Fraktion|[A-ZÄÖÜ][\wÄÖÜäöüß/-]+))?)",
)


@dataclass
class Motion:
    text: str
    start: float | None
    end: float | None
    by: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect_motion(sentence: Sentence) -> Motion | None:
    text = sentence.text
    if not _MOTION.search(text) or (_DECISION.search(text) and "beantrag" not in text.lower()):
        return None
    mover = _MOVER.search(text)
    by = ""
    if mover:
        by = (mover.group("who") or mover.group("who2") or "").strip()
        if by.lower() in {"ich", "wir", "sie", "er", "es", "man", "hiermit"}:
            by = ""
    return Motion(text, sentence.start, sentence.end, by)


# -- action items -----------------------------------------------------------------------------

_ORG_NOUN = (
    r"(?:Verwaltung|Stadtverwaltung|Gemeindeverwaltung|Kämmerei|Bauhof|Stadtwerke|"
    r"Geschäftsstelle|Feuerwehr|Polizei|Kita-Leitung|Schulleitung|"
    r"(?:Ober)?[Bb]ürgermeister(?:in)?|Ortsvorsteher(?:in)?|Beigeordnete[rn]?|"
    r"[\wÄÖÜäöüß-]*(?:amt|referat|dezernat|bereich|abteilung|stelle|büro|betrieb|team|"
    r"leitung|gesellschaft|beauftragte[rn]?))"
)
_PERSON = (
    r"(?:Herr|Frau)\s+(?:Dr\.\s+|Prof\.\s+)?[A-ZÄÖÜ][\wÄÖÜäöüß-]+(?:\s+[A-ZÄÖÜ][\wÄÖÜäöüß-]+)?"
)
_ACTION_VERBS = (
    r"(?:wird|werden)\s+(?:beauftragt|gebeten|aufgefordert)|prüft|prüfen|klärt|klären|"
    r"erstellt|erarbeitet|legt|legen|berichtet|berichten|informiert|informieren|kümmert|"
    r"sorgt|übernimmt|bereitet|meldet|lädt|kontaktiert|stimmt\s+sich|schickt|sendet|"
    r"beauftragt|organisiert|ermittelt|holt|reicht|veranlasst|wird\s+(?:prüfen|klären|"
    r"berichten|vorlegen|informieren|erstellen|nachreichen|ermitteln)"
)
_ACTION = re.compile(
    rf"(?:^|[,;:]\s*|\b(?:und|dann|daher|deshalb|außerdem)\s+)(?P<owner>(?:[Dd]ie|[Dd]er|[Dd]as)"
    rf"\s+(?:[\wÄÖÜäöüß-]+\s+)?{_ORG_NOUN}|{_PERSON})\s+(?P<verb>{_ACTION_VERBS})\b"
    r"(?P<task>.*)$"
)
_ASSIGN = re.compile(
    rf"\bbeauftragt\s+(?P<owner>(?:die|den|das)\s+(?:[\wÄÖÜäöüß-]+\s+)?{_ORG_NOUN}|{_PERSON})"
    r"\s*,?\s*(?P<task>.+)$"
)
_DUE = re.compile(
    r"\bbis\s+(?:spätestens\s+)?(?:zum\s+|zur\s+|Ende\s+|Mitte\s+|Anfang\s+)?"
    r"(?P<due>\d{1,2}\.\s?\d{1,2}\.(?:\s?\d{2,4})?|\d{1,2}\.\s?[A-ZÄÖÜ][a-zäöü]+(?:\s\d{4})?|"
    r"(?:nächste[nr]?|kommende[nr]?)\s+\w+|[A-ZÄÖÜ][a-zäöü]+(?:\s\d{4})?|KW\s?\d{1,2})"
)


@dataclass
class ActionItem:
    owner: str
    task: str
    start: float | None
    end: float | None
    due: str = ""
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clean_owner(owner: str) -> str:
    owner = owner.strip()
    for article in ("die ", "der ", "das ", "den "):
        if owner.lower().startswith(article) and not owner.startswith(("Herr", "Frau")):
            return owner[len(article) :].strip()
    return owner


def detect_action(sentence: Sentence) -> ActionItem | None:
    text = sentence.text.strip()
    match = _ACTION.search(text) or _ASSIGN.search(text)
    if not match:
        return None
    owner = _clean_owner(match.group("owner"))
    verb = match.groupdict().get("verb") or ""
    task = (match.group("task") or "").strip(" ,.;")
    if verb and not re.match(r"(?:wird|werden)\s+(?:beauftragt|gebeten|aufgefordert)", verb):
        task = f"{verb} {task}".strip()
    if len(task) < 4:
        return None
    due = _DUE.search(text)
    return ActionItem(
        owner=owner,
        task=task[:500],
        start=sentence.start,
        end=sentence.end,
        due=(due.group("due").strip() if due else ""),
        text=text,
    )


# -- attendance -------------------------------------------------------------------------------

_ATTENDANCE = re.compile(
    r"(?P<label>(?:Es\s+(?:sind|waren)\s+)?(?:anwesend|abwesend|entschuldigt|"
    r"es\s+fehl(?:en|t|ten)(?:\s+entschuldigt)?|(?:Es\s+)?fehl(?:en|t|ten)\s+entschuldigt|"
    r"unentschuldigt|Vorsitz|Schriftführ\w*|Protokoll(?:führung)?|Gäste|Verwaltung)"
    r"(?:\s+(?:sind|waren|ist|war))?)\s*:\s*(?P<names>.+)",
    re.IGNORECASE,
)
_STATUS = (
    ("unentschuldigt", "abwesend"),
    ("entschuldigt", "entschuldigt"),
    ("abwesend", "abwesend"),
    ("fehl", "entschuldigt"),
    ("vorsitz", "anwesend (Vorsitz)"),
    ("schriftf", "anwesend (Schriftführung)"),
    ("protokoll", "anwesend (Schriftführung)"),
    ("gäste", "anwesend (Gast)"),
    ("verwaltung", "anwesend (Verwaltung)"),
    ("anwesend", "anwesend"),
)


@dataclass
class Attendee:
    name: str
    status: str = "anwesend"
    source: str = "Transkript"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect_attendance(text: str, *, source: str = "Transkript") -> list[Attendee]:
    """Names after ``anwesend:``, ``entschuldigt:``, ``Vorsitz:`` … (comma, semicolon or
    ``und`` separated), one line or sentence at a time."""
    found: list[Attendee] = []
    for line in (part for row in text.split("\n") for part in _split(row)):
        match = _ATTENDANCE.search(line)
        if not match:
            continue
        label = match.group("label").lower()
        status = next(s for key, s in _STATUS if key in label)
        names = re.split(r"\s*(?:[,;]|\bund\b|\bsowie\b)\s*", match.group("names").rstrip(" ."))
        for name in names:
            name = name.strip(" .:-–")
            if 2 <= len(name) <= 120 and not name.lower().startswith(("keine", "niemand")):
                found.append(Attendee(name, status, source))
    return found


# -- the language of a transcript ------------------------------------------------------------


@dataclass
class LanguageNote:
    language: str
    is_german: bool
    note: str = ""


_GERMAN = set(
    [
        "der",
        "die",
        "das",
        "und",
        "ist",
        "nicht",
        "ich",
        "sie",
        "wir",
        "ein",
        "eine",
        "mit",
        "für",
        "auf",
        "den",
        "dem",
        "des",
        "zu",
        "zum",
        "zur",
        "wird",
        "werden",
        "wurde",
        "haben",
        "hat",
        "auch",
        "noch",
        "bei",
        "über",
        "von",
        "im",
        "es",
        "sich",
        "dass",
        "als",
        "wie",
    ]
)
_OTHER = set(
    [
        "the",
        "and",
        "is",
        "are",
        "of",
        "to",
        "in",
        "that",
        "it",
        "for",
        "on",
        "with",
        "as",
        "was",
        "be",
        "this",
        "we",
        "you",
        "have",
        "not",
        "they",
        "le",
        "la",
        "les",
        "et",
        "est",
        "des",
        "un",
        "une",
        "pour",
        "que",
        "dans",
        "el",
        "los",
        "las",
        "y",
        "en",
        "por",
        "con",
        "para",
        "il",
        "di",
        "che",
        "non",
    ]
)


def transcript_language(text: str) -> LanguageNote:
    """German or not, by the share of very common words; a note when it is not German."""
    words = re.findall(r"[^\W\d_]+", text.lower()[:20000])
    german = sum(w in _GERMAN for w in words)
    other = sum(w in _OTHER for w in words)
    if len(words) < 8 or german >= other:
        return LanguageNote("de", True)
    return LanguageNote(
        "andere",
        False,
        "Das Transkript scheint nicht auf Deutsch zu sein. Die Erkennung von Abstimmungen, "
        "Beschlüssen, Anträgen und Aufgaben ist auf deutsche Formulierungen ausgelegt; bitte "
        "das Ergebnis besonders sorgfältig prüfen oder ein deutsches Transkript verwenden.",
    )


@dataclass
class Extracted:
    """Everything the detectors found in one agenda item's sentences."""

    votes: list[Vote] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    motions: list[Motion] = field(default_factory=list)
    actions: list[ActionItem] = field(default_factory=list)
    used: set[int] = field(default_factory=set)


def extract(sentences: list[Sentence]) -> Extracted:
    """Run every detector over the sentences of one agenda item. A decision continues over
    the following sentences until a vote, another decision or a new topic sentence."""
    out = Extracted()
    current: Decision | None = None
    for sentence in sentences:
        vote = detect_vote(sentence)
        if is_decision(sentence):
            text = re.sub(r"^\s*(?:Beschluss(?:text|fassung)?)\s*:\s*", "", sentence.text)
            current = Decision(text, sentence.start, sentence.end)
            out.decisions.append(current)
            out.used.add(sentence.index)
        elif current is not None and vote is None and _continues(sentence.text):
            current.text += " " + sentence.text
            current.end = sentence.end if sentence.end is not None else current.end
            out.used.add(sentence.index)
            continue
        else:
            current = None
        if vote is not None:
            out.votes.append(vote)
            out.used.add(sentence.index)
            current = None
        motion = detect_motion(sentence)
        if motion is not None:
            out.motions.append(motion)
            out.used.add(sentence.index)
        action = detect_action(sentence)
        if action is not None:
            out.actions.append(action)
            out.used.add(sentence.index)
    return out


def _continues(text: str) -> bool:
    """A sentence that still belongs to the decision text: enumerations and short clauses."""
    return bool(re.match(r"^\s*(?:\d+[.)]|[a-z][.)]|[-•–]|Die\s+Verwaltung\s+wird\s+beauftragt|"
                         r"Dabei|Hierbei|Zugleich|Außerdem|Ferner|Darüber hinaus)", text))  # fmt: skip
