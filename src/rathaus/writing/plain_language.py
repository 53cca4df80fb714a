"""Leichte Sprache: the deterministic checker (sentences, rule findings, Schweregrad) and the
readability scores. The rules themselves live in :mod:`rathaus.writing.plain_rules`."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rathaus.writing.plain_rules import (
    RULES,
    WORD_RE,
    Rule,
    RuleConfig,
    Sentence,
    letter_words,
    syllables,
)

__all__ = [
    "CheckReport",
    "Finding",
    "Readability",
    "RuleConfig",
    "SentenceReport",
    "check",
    "readability",
    "rule_catalogue",
    "severity",
    "split_sentences",
]

# Abbreviations after which a period does not end a sentence (lower case, without the period).
ABBREVIATIONS = frozenset(
    [
        "z",
        "b",
        "bzw",
        "ggf",
        "usw",
        "evtl",
        "inkl",
        "zzgl",
        "vgl",
        "ca",
        "etc",
        "abs",
        "nr",
        "str",
        "tel",
        "dr",
        "prof",
        "hr",
        "fr",
        "st",
        "art",
        "s",
        "d",
        "h",
        "u",
        "a",
        "o",
        "ä",
        "i",
        "r",
        "bspw",
        "sog",
        "ggü",
        "mio",
        "mrd",
        "jh",
        "jhd",
        "gem",
        "lt",
        "max",
        "min",
        "mind",
        "ff",
        "v",
        "chr",
        "n",
        "bzw",
        "allg",
        "abt",
        "ca",
        "geb",
        "verh",
        "ehem",
    ]
)
# A period, "!" or "?" before white space, a line break, or a period glued to the next sentence
# ("… Millionen).Immer …", "… Kanzlerin.Die …"; copied web text often lacks the space).
_BOUNDARY = re.compile(
    r"[.!?]+[\"“”»)]*\s+|\n|(?:(?<=[a-zäöüß]{3})|(?<=\)))[.!?](?=[A-ZÄÖÜ][a-zäöüß])"
)


def split_sentences(text: str) -> list[Sentence]:
    """Sentences of ``text`` with their offsets. A period after a known abbreviation ("z. B.",
    "Abs.") or an ordinal number ("19. Jahrhundert", "3. Mai") does not end a sentence; a colon
    ends one only before a capital letter; a line break always does (lists, headings); a period
    without a space ends one when a word ends before it and a capitalised word follows."""
    sentences: list[Sentence] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.end()
        if "\n" not in m.group():
            following = text[end : end + 1]
            if not following:
                break
            if not _ends_sentence(text, start, m.start(), m.group()[0], following, end):
                continue
        _append(sentences, text[start:end], start)
        start = end
    _append(sentences, text[start:], start)
    return sentences


def _ends_sentence(text: str, start: int, at: int, mark: str, following: str, end: int) -> bool:
    if mark == ":":
        return following.isupper()
    if mark != ".":
        return True
    last = re.search(r"([\wÄÖÜäöüß]+)\W*$", text[start:at])
    word = last.group(1) if last else ""
    if word.lower() in ABBREVIATIONS:
        return word.lower() in ("usw", "etc") and following.isupper()
    if word.isdigit() and len(word) <= 4:
        # "am 3. Mai", "im 19. Jahrhundert": an ordinal number, not the end of a sentence
        return following.isupper() and not _ORDINAL_NEXT.match(text, end)
    return True


_ORDINAL_NEXT = re.compile(
    r"(Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember|"
    r"Jahrhundert\w*|Jahrtausend\w*|Mal|Klasse|Stock|Etage|Platz|Woche|Tag|Lebensjahr\w*|"
    r"Kapitel|Absatz|Buch|Bezirk|Liga|Runde|Sitzung|Quartal|Ausgabe|Auflage)\b"
)


def _append(sentences: list[Sentence], piece: str, start: int) -> None:
    stripped = piece.strip()
    if not stripped or not WORD_RE.search(stripped):
        return
    offset = start + piece.index(stripped)
    # list bullets are layout, not words
    bullet = re.match(r"[-•*–]\s+", stripped)
    if bullet:
        offset += bullet.end()
        stripped = stripped[bullet.end() :]
    sentences.append(Sentence.of(stripped, offset))


@dataclass(frozen=True)
class Finding:
    """One rule violation: ``start``/``end`` are offsets in the sentence, ``span`` its text."""

    code: str
    label: str
    explanation: str
    start: int
    end: int
    span: str
    suggestion: str | None
    weight: float


@dataclass
class SentenceReport:
    index: int
    text: str
    start: int
    end: int
    words: int
    findings: list[Finding] = field(default_factory=list)
    syllables: int = 0
    letter_words: int = 0
    letters: int = 0

    @property
    def severity(self) -> float:
        return sentence_severity(self)

    def segments(self) -> list[tuple[str, list[str]]]:
        """The sentence cut at every finding boundary: ``(text, codes covering it)``; for
        highlighting with escaped output and a label per code (never colour alone)."""
        cuts = sorted(
            {0, len(self.text), *(f.start for f in self.findings), *(f.end for f in self.findings)}
        )
        out: list[tuple[str, list[str]]] = []
        for a, b in zip(cuts, cuts[1:], strict=False):
            if a == b:
                continue
            codes = sorted(
                {f.code for f in self.findings if f.start <= a and b <= f.end and f.start < f.end}
            )
            out.append((self.text[a:b], codes))
        return out


@dataclass
class CheckReport:
    sentences: list[SentenceReport]
    counts: dict[str, int]
    severity: float
    violations_per_sentence: float
    words: int

    @property
    def findings(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": round(self.severity, 3),
            "violations_per_sentence": round(self.violations_per_sentence, 3),
            "sentences_count": len(self.sentences),
            "words": self.words,
            "counts": self.counts,
            "sentences": [
                {
                    "index": s.index,
                    "text": s.text,
                    "start": s.start,
                    "end": s.end,
                    "words": s.words,
                    "severity": round(s.severity, 3),
                    "findings": [
                        {
                            "code": f.code,
                            "label": f.label,
                            "explanation": f.explanation,
                            "start": f.start,
                            "end": f.end,
                            "span": f.span,
                            "suggestion": f.suggestion,
                        }
                        for f in s.findings
                    ],
                }
                for s in self.sentences
            ],
        }


# How findings add up to the Schweregrad. Each rule counts at most ``CAP`` times per sentence (ten
# abbreviations in a list are one problem, not ten). A sentence: the weights of its findings plus
# ``PER_SYLLABLE`` per syllable. A text is as hard as its hardest places: for each rule the sentence
# with the most findings of it, for the length its longest sentence, plus the mean syllables per
# word (short, common words are short). So splitting a sentence, dropping a hard word or adding a
# plain explaining sentence hardly changes it, and one bad sentence is not averaged away.
# Weights and the two factors were fitted on the even half of DEplain-web (see
# docs/plain-language.md) and checked on the odd half. ``PER_LETTER`` (letters of the longest
# sentence) is a tie-breaker only: syllables are counted coarsely, so two versions often tie
# ("tuckern" / "fahren"); at 0.0001 per letter (1,500 letters weigh one syllable) it decides
# practically only between otherwise equal versions.
CAP = 3
PER_SYLLABLE = 0.15
PER_SYLLABLE_PER_WORD = 0.5
PER_LETTER = 0.0001


def _capped(report: SentenceReport) -> Counter[str]:
    per_rule: Counter[str] = Counter()
    for f in report.findings:
        per_rule[f.code] = min(CAP, per_rule[f.code] + 1)
    return per_rule


def sentence_severity(report: SentenceReport) -> float:
    """The rules' weights (each rule at most ``CAP`` times) plus ``PER_SYLLABLE`` per syllable."""
    weights = {f.code: f.weight for f in report.findings}
    return sum(weights[c] * n for c, n in _capped(report).items()) + PER_SYLLABLE * report.syllables


def severity(reports: list[SentenceReport]) -> float:
    """The Schweregrad of a text (0 is best; compare two versions of one text with it): for each
    rule its weight times the most findings of it in one sentence, ``PER_SYLLABLE`` times the
    syllables of the longest sentence, plus ``PER_SYLLABLE_PER_WORD`` times the mean syllables
    per word, plus the tie-breaker ``PER_LETTER`` times the letters of the longest sentence."""
    if not reports:
        return 0.0
    worst: Counter[str] = Counter()
    weights: dict[str, float] = {}
    for r in reports:
        weights.update((f.code, f.weight) for f in r.findings)
        worst |= _capped(r)  # the maximum per rule
    longest = max(r.syllables for r in reports)
    words = sum(r.letter_words for r in reports)
    per_word = sum(r.syllables for r in reports) / words if words else 0.0
    return (
        sum(weights[c] * n for c, n in worst.items())
        + PER_SYLLABLE * longest
        + PER_SYLLABLE_PER_WORD * per_word
        + PER_LETTER * max(r.letters for r in reports)
    )


def check(
    text: str, *, config: RuleConfig | None = None, rules: tuple[Rule, ...] = RULES
) -> CheckReport:
    """Check ``text`` against the rules of Leichte Sprache, sentence by sentence."""
    config = config or RuleConfig()
    reports: list[SentenceReport] = []
    counts: Counter[str] = Counter()
    for index, sentence in enumerate(split_sentences(text)):
        findings: list[Finding] = []
        for rule in rules:
            for hit in rule.find(sentence, config):
                findings.append(
                    Finding(
                        rule.code,
                        rule.label,
                        rule.explanation,
                        hit.start,
                        hit.end,
                        sentence.text[hit.start : hit.end],
                        hit.suggestion,
                        rule.weight,
                    )
                )
                counts[rule.code] += 1
        findings.sort(key=lambda f: (f.start, f.end))
        words = letter_words(sentence.text)
        counted = [syllables(w) for w in words]
        reports.append(
            SentenceReport(
                index,
                sentence.text,
                sentence.start,
                sentence.end,
                sentence.words,
                findings,
                syllables=sum(counted),
                letter_words=len(counted),
                letters=sum(map(len, words)),
            )
        )
    n = len(reports)
    return CheckReport(
        sentences=reports,
        counts={r.code: counts[r.code] for r in rules if counts[r.code]},
        severity=severity(reports),
        violations_per_sentence=(sum(counts.values()) / n) if n else 0.0,
        words=sum(r.words for r in reports),
    )


def rule_catalogue() -> list[dict[str, Any]]:
    """The rules for the docs, the page's legend and the API."""
    return [
        {"code": r.code, "label": r.label, "explanation": r.explanation, "weight": r.weight}
        for r in RULES
    ]


# -- readability -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Readability:
    """Flesch-Amstad (0–100, higher is easier; Leichte Sprache aims at 60 and more) and the first
    Wiener Sachtextformel (a school grade 4–15, lower is easier), both computed by ``textstat``
    with its German settings (syllables from Pyphen's German hyphenation dictionary)."""

    flesch_amstad: float
    wiener_sachtextformel: float
    words: int
    sentences: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "flesch_amstad": round(self.flesch_amstad, 1),
            "wiener_sachtextformel": round(self.wiener_sachtextformel, 1),
            "words": self.words,
            "sentences": self.sentences,
        }


def readability(text: str) -> Readability:
    import textstat  # imported here: it loads Pyphen's dictionaries

    textstat.set_lang("de")
    sentences = split_sentences(text)
    words = sum(s.words for s in sentences)
    # textstat counts sentences on its own; hand it our sentences one per line with a period, so
    # both scores use the abbreviation-aware split above.
    normalised = " ".join(s.text.rstrip(" .!?:") + "." for s in sentences) or text
    return Readability(
        flesch_amstad=float(textstat.flesch_reading_ease(normalised)),
        wiener_sachtextformel=float(textstat.wiener_sachtextformel(normalised, 1)),
        words=words,
        sentences=len(sentences),
    )
