"""Splits documents without markup into sections, paragraphs and sentences with stable ids and
character offsets, and marks what carries no content (empty, duplicate, boilerplate).

Paragraph ids are ``"<section>.<paragraph>"`` (``"3.2"``: section 3, paragraph 2), counted from 1
in reading order over all parts, so the same text always gives the same ids. Offsets are
positions in the part's original text (``text[start:end]``), so a viewer can jump to them.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from rathaus.assistant.knowledge import SENTENCE_END

# Section status as shown in the coverage report.
USED = "verwendet"
EMPTY = "leer"
DUPLICATE = "doppelt"
BOILERPLATE = "Formalien"

KEY_HEADINGS = (
    "sachverhalt", "begründung", "beschlussvorschlag", "beschluss", "beschlussantrag",
    "kurzfassung", "zusammenfassung", "ergänzende erläuterungen", "erläuterungen",
    "finanzielle auswirkungen", "stellungnahme der verwaltung", "stellungnahme", "antrag",
    "anfrage", "ausgangslage", "problemstellung", "lösung", "hintergrund", "ziel", "ziele",
    "vorgehen", "kosten", "finanzierung", "empfehlung", "fazit", "ausblick", "einleitung",
    "anlagen", "anlage", "sachstand", "bewertung", "ergebnis", "maßnahmen", "umsetzung",
    "zeitplan", "beteiligung", "alternativen", "rechtsgrundlage", "auswirkungen",
)  # fmt: skip
# Sections whose sentences a reader of a council paper wants first.
PRIORITY_HEADINGS = frozenset(
    {"kurzfassung", "zusammenfassung", "beschlussvorschlag", "beschluss", "beschlussantrag",
     "antrag", "fazit", "ergebnis", "empfehlung"}
)  # fmt: skip

_BLOCK_BREAK = re.compile(r"\n[ \t\f\r]*\n|\f")
_NUMBERED = re.compile(
    r"^(?:(?:\d{1,2}\.)+\d{0,2}|\d{1,2}\)|[IVX]{1,6}\.|[A-H][.)]|Teil \d{1,2}:?|§ ?\d{1,3}[a-z]?)"
    r"\s+\S"
)
_KEY = re.compile(
    r"^(?:\d{1,2}\.?\s+)?(?:" + "|".join(re.escape(h) for h in KEY_HEADINGS) + r")\s*:?$",
    re.IGNORECASE,
)
_MARKDOWN = re.compile(r"^#{1,6}\s+\S")
_PAGE = re.compile(r"^(?:[-–—]\s*\d{1,4}\s*[-–—]|Seite \d{1,4}(?: von \d{1,4})?|\d{1,4})$")
_TOC = re.compile(r"\.{5,}|…{3,}")
_BOXES = re.compile(r"[☐☒☑]")
_WS = re.compile(r"(?<=[a-zäöüß])-[ \t]*\r?\n[ \t]*(?=[a-zäöüß])|\s+")
_ABBREVIATION = re.compile(
    r"(?:\b(?:Nr|z|B|bzw|ca|Abs|Art|Dr|Str|vgl|ggf|u|d|h|S|Tel|evtl|inkl|max|min|Mio|Mrd|rd|"
    r"gem|lt|sog|usw|etc|Prof|Hr|Fr|Anl|Ziff|lfd|bspw|zzgl|i|e|o|a|v|Kap|Abb|Tab|Dez)\.|"
    r"\b\d{1,2}\.|\b[IVX]{1,4}\.)$"
)


@dataclass
class Sentence:
    """One sentence of a paragraph: ``text`` is verbatim in the paragraph's text."""

    text: str
    paragraph_id: str
    index: int  # position in the whole document, 0-based
    start: int  # offsets in the part's original text
    end: int
    words: int


@dataclass
class Paragraph:
    id: str
    section_id: int
    part_key: str
    text: str  # whitespace collapsed, line-break hyphenation joined
    start: int
    end: int
    kind: str = USED  # USED, DUPLICATE or BOILERPLATE
    reason: str = ""
    sentences: list[Sentence] = field(default_factory=list)
    _offsets: list[int] = field(default_factory=list, repr=False)

    def span(self, begin: int, end: int) -> tuple[int, int]:
        """Offsets in the part's original text of ``self.text[begin:end]``."""
        return self._offsets[begin], self._offsets[max(begin, end - 1)] + 1


@dataclass
class Section:
    id: int
    title: str
    part_key: str
    heading_key: str  # the title lower-cased without numbering, for priors
    paragraphs: list[Paragraph] = field(default_factory=list)
    status: str = EMPTY
    reason: str = ""

    @property
    def chars(self) -> int:
        return sum(len(p.text) for p in self.paragraphs)

    @property
    def used_paragraphs(self) -> list[Paragraph]:
        return [p for p in self.paragraphs if p.kind == USED]


@dataclass(frozen=True)
class Part:
    """One source of a document set: a document, a message, a file of a council paper."""

    key: str
    title: str
    text: str
    url: str | None = None
    date: str | None = None
    kind: str = "text"  # text, document, message, file


def collapse(raw: str, base: int) -> tuple[str, list[int]]:
    """``raw`` with whitespace runs as one space and hyphenated line breaks joined, plus the
    original offset (``base`` + position in ``raw``) of every character of the result."""
    out: list[str] = []
    offsets: list[int] = []
    pos = 0
    for m in _WS.finditer(raw):
        out.append(raw[pos : m.start()])
        offsets.extend(range(base + pos, base + m.start()))
        if not m.group().startswith("-"):
            out.append(" ")
            offsets.append(base + m.start())
        pos = m.end()
    out.append(raw[pos:])
    offsets.extend(range(base + pos, base + len(raw)))
    text = "".join(out)
    lead = len(text) - len(text.lstrip())
    trail = len(text.rstrip())
    return text[lead:trail], offsets[lead:trail]


def is_heading(line: str, *, first_in_block: bool, previous: str) -> bool:
    line = line.strip()
    if not line or len(line) > 90 or _TOC.search(line) or _PAGE.match(line):
        return False
    if _KEY.match(line) or _MARKDOWN.match(line):
        return True
    if not _NUMBERED.match(line) or line[-1] in ".,;":
        return False
    # "1. Mai 2024 …" in running text: a numbered heading starts a block or follows a sentence.
    return first_in_block or previous.rstrip().endswith((".", ":", "!", "?"))


def _heading_key(title: str) -> str:
    title = re.sub(r"^#+\s*", "", title.strip())
    title = re.sub(
        r"^(?:(?:\d{1,2}\.)+\d{0,2}|\d{1,2}\)|[IVX]{1,6}\.|[A-H][.)]|Teil \d+:?)\s*", "", title
    )
    return title.rstrip(":").strip().lower()


def _boilerplate(text: str) -> str:
    """Why a paragraph carries no content for a summary, or ``""``."""
    if _PAGE.match(text):
        return "Seitenzahl"
    if len(_TOC.findall(text)) >= 1 and len(text) < 4000:
        return "Inhaltsverzeichnis"
    if len(_BOXES.findall(text)) >= 2:
        return "Formular (Ankreuzfelder)"
    letters = sum(c.isalpha() for c in text)
    if letters < 0.45 * len(text.replace(" ", "")) and len(text) > 20:
        return "Zahlen oder Tabelle ohne Fließtext"
    if letters < 3:
        return "kein Text"
    if re.fullmatch(r"(?i)gedruckt auf .*recyclingpapier\.?", text):
        return "Druckvermerk"
    return ""


def split_sentences(paragraph: Paragraph, start_index: int) -> list[Sentence]:
    """Sentences by the assistant's ``SENTENCE_END``, re-joined after abbreviations and ordinal
    numbers ("z. B.", "1. Mai"), each with offsets in the original text."""
    text = paragraph.text
    cuts = [0] + [m.start() for m in SENTENCE_END.finditer(text)] + [len(text)]
    pieces: list[tuple[int, int]] = []
    for begin, end in zip(cuts, cuts[1:], strict=False):
        if pieces and _ABBREVIATION.search(text[pieces[-1][0] : pieces[-1][1]].rstrip()):
            pieces[-1] = (pieces[-1][0], end)
        else:
            pieces.append((begin, end))
    out: list[Sentence] = []
    for begin, end in pieces:
        chunk = text[begin:end]
        lead = len(chunk) - len(chunk.lstrip())
        begin, end = begin + lead, begin + len(chunk.rstrip())
        if end <= begin:
            continue
        s, e = paragraph.span(begin, end)
        out.append(
            Sentence(
                text=text[begin:end],
                paragraph_id=paragraph.id,
                index=start_index + len(out),
                start=s,
                end=e,
                words=len(text[begin:end].split()),
            )
        )
    return out


def _blocks(text: str) -> list[tuple[int, int]]:
    cuts = [0]
    for m in _BLOCK_BREAK.finditer(text):
        cuts.extend((m.start(), m.end()))
    cuts.append(len(text))
    return [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts), 2) if cuts[i + 1] > cuts[i]]


def split_sections(parts: Sequence[Part]) -> list[Section]:
    """All parts as numbered sections; each part starts a section titled with the part's title.

    Nothing is dropped: every non-blank character of a part belongs to exactly one paragraph.
    """
    sections: list[Section] = []

    def new_section(title: str, part: Part) -> Section:
        if sections and not sections[-1].paragraphs and not sections[-1].title:
            sections.pop()  # an untitled start directly followed by a heading
        section = Section(len(sections) + 1, title, part.key, _heading_key(title))
        sections.append(section)
        return section

    for part in parts:
        current = new_section(part.title, part)
        for block_start, block_end in _blocks(part.text):
            lines = part.text[block_start:block_end].split("\n")
            pos = block_start
            para_start = block_start
            previous = ""
            for i, line in enumerate(lines):
                first = not part.text[para_start:pos].strip()
                if is_heading(line, first_in_block=first or i == 0, previous=previous):
                    _add_paragraph(current, part, para_start, pos)
                    title = " ".join(line.split()).lstrip("#").strip()
                    current = new_section(title, part)
                    para_start = pos + len(line) + 1
                if line.strip():
                    previous = line
                pos += len(line) + 1
            _add_paragraph(current, part, para_start, block_end)
    _classify(sections)
    index = 0
    for section in sections:
        for paragraph in section.used_paragraphs:
            paragraph.sentences = split_sentences(paragraph, index)
            index += len(paragraph.sentences)
    return sections


def _add_paragraph(section: Section, part: Part, start: int, end: int) -> None:
    end = min(end, len(part.text))
    if start >= end or not part.text[start:end].strip():
        return
    text, offsets = collapse(part.text[start:end], start)
    if not text:
        return
    number = len(section.paragraphs) + 1
    section.paragraphs.append(
        Paragraph(
            id=f"{section.id}.{number}",
            section_id=section.id,
            part_key=part.key,
            text=text,
            start=offsets[0],
            end=offsets[-1] + 1,
            _offsets=offsets,
        )
    )


def _classify(sections: list[Section]) -> None:
    seen: dict[str, str] = {}
    for section in sections:
        for p in section.paragraphs:
            reason = _boilerplate(p.text)
            if reason:
                p.kind, p.reason = BOILERPLATE, reason
                continue
            digest = hashlib.sha256(" ".join(p.text.lower().split()).encode()).hexdigest()
            if digest in seen and len(p.text) > 30:
                p.kind, p.reason = DUPLICATE, f"wortgleich mit Absatz {seen[digest]}"
                continue
            seen.setdefault(digest, p.id)
        if not section.paragraphs:
            section.status, section.reason = EMPTY, "nur Überschrift, kein Text"
        elif section.used_paragraphs:
            section.status, section.reason = USED, ""
        elif all(p.kind == DUPLICATE for p in section.paragraphs):
            section.status = DUPLICATE
            section.reason = (
                "wiederholt Text, der schon vorkam (" + section.paragraphs[0].reason + ")"
            )
        else:
            section.status = BOILERPLATE
            reasons = Counter(p.reason for p in section.paragraphs if p.reason)
            section.reason = reasons.most_common(1)[0][0]
