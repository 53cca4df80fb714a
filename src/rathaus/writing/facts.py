"""Facts preservation: every number, date, amount and name in a generated text must be in its source.

Used by the Leichte-Sprache rewrite and by every other function that rewrites a given text.
The check is deliberately strict and simple: facts are normalised (``1.471,60 €`` and
``1471,60 Euro`` are one amount, ``3. Mai 2024`` and ``03.05.2024`` one date, number words are
digits) and an output fact counts as new when its normalised form is not among the source's.
Order does not matter. Names are capitalised words that are not sentence starts, not common nouns
of the source and not frequent function words: a heuristic that errs on the side of flagging.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

FactKind = Literal["betrag", "datum", "zahl", "name"]
KIND_LABELS = {"betrag": "Betrag", "datum": "Datum", "zahl": "Zahl", "name": "Name"}

MONTHS = {
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "april": 4, "mai": 5, "juni": 6,
    "juli": 7, "august": 8, "september": 9, "oktober": 10, "november": 11, "dezember": 12,
}  # fmt: skip
NUMBER_WORDS = {
    "null": 0, "eins": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7,
    "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12, "zwanzig": 20, "dreißig": 30,
    "hundert": 100, "tausend": 1000,
}  # fmt: skip

_NUM = r"\d{1,3}(?:[.\u202f ]\d{3})+(?:,\d+)?|\d+(?:[.,]\d+)?"
_CURRENCY = r"€|EUR\b|Euro\b|Cent\b|ct\b|\$|CHF\b"
AMOUNT_RE = re.compile(
    rf"(?:(?:{_CURRENCY})\s?(?P<a>{_NUM}))|(?:(?P<b>{_NUM})(?:,-+)?\s?(?P<cur>{_CURRENCY}))"
)
DATE_NUMERIC_RE = re.compile(r"\b(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{2,4})?(?!\d)")
DATE_ISO_RE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
DATE_WORDS_RE = re.compile(
    r"\b(?:(\d{1,2})\.\s?)?(" + "|".join(MONTHS) + r")(?:\s+(\d{4}))?\b", re.IGNORECASE
)
NUMBER_RE = re.compile(rf"(?<![\w,.])(?:{_NUM})(?![\w])")
WORD_RE = re.compile(r"[A-ZÄÖÜ][a-zäöüß]+(?:-[A-ZÄÖÜ][a-zäöüß]+)*")

# Capitalised words that are no names (articles, pronouns, greetings, frequent nouns of letters).
NOT_NAMES = frozenset(
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
        "einem",
        "einen",
        "eines",
        "und",
        "oder",
        "aber",
        "wenn",
        "weil",
        "dass",
        "ich",
        "du",
        "er",
        "sie",
        "es",
        "wir",
        "ihr",
        "man",
        "mein",
        "meine",
        "ihr",
        "ihre",
        "ihnen",
        "sie",
        "sehr",
        "liebe",
        "lieber",
        "guten",
        "tag",
        "hallo",
        "bitte",
        "danke",
        "dann",
        "danach",
        "heute",
        "morgen",
        "gestern",
        "hier",
        "dort",
        "so",
        "auch",
        "nur",
        "noch",
        "schon",
        "jetzt",
        "alle",
        "viele",
        "wenige",
        "mit",
        "von",
        "zu",
        "zum",
        "zur",
        "bei",
        "nach",
        "vor",
        "für",
        "über",
        "unter",
        "am",
        "im",
        "in",
        "an",
        "auf",
        "aus",
        "wie",
        "was",
        "wer",
        "wo",
        "wann",
        "warum",
        "kein",
        "keine",
        "nicht",
        "ja",
        "nein",
        "frau",
        "herr",
        "damen",
        "herren",
        "grüße",
        "freundlichen",
        "mit",
        "datum",
        "betrag",
        "euro",
        "uhr",
        "montag",
        "dienstag",
        "mittwoch",
        "donnerstag",
        "freitag",
        "samstag",
        "sonntag",
    ]
)


@dataclass(frozen=True)
class Fact:
    kind: FactKind
    text: str  # as written in the output
    key: str  # normalised for comparison
    # A name directly before another capitalised word ("Konstanzer Bürger"): it may be the
    # adjective of a place, which the source can name as the place itself.
    attributive: bool = field(default=False, compare=False)

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]


def _number_value(raw: str) -> str:
    digits = raw.replace("\u202f", "").replace(" ", "")
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?", digits):
        digits = digits.replace(".", "")
    digits = digits.replace(",", ".")
    try:
        value = float(digits)
    except ValueError:
        return raw
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _year(raw: str | None) -> str:
    if not raw:
        return ""
    return raw if len(raw) == 4 else f"20{raw}"


def extract_facts(text: str) -> list[Fact]:
    """Amounts, dates, numbers and names in ``text``, each with a normalised key."""
    facts: list[Fact] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    for m in AMOUNT_RE.finditer(text):
        raw = m.group("a") or m.group("b")
        cur = (m.group("cur") or "").lower()
        value = _number_value(raw)
        if cur in ("cent", "ct"):
            value = _number_value(str(float(value) / 100))
        facts.append(Fact("betrag", m.group().strip(), f"betrag:{value}"))
        taken.append(m.span())
    for m in DATE_ISO_RE.finditer(text):
        if free(*m.span()):
            y, mo, d = m.groups()
            facts.append(Fact("datum", m.group(), f"datum:{int(d)}.{int(mo)}.{y}"))
            taken.append(m.span())
    for m in DATE_NUMERIC_RE.finditer(text):
        d, mo, y = m.groups()
        if free(*m.span()) and 1 <= int(d) <= 31 and 1 <= int(mo) <= 12:
            facts.append(Fact("datum", m.group().strip(), f"datum:{int(d)}.{int(mo)}.{_year(y)}"))
            taken.append(m.span())
    for m in DATE_WORDS_RE.finditer(text):
        d, month, y = m.groups()
        if free(*m.span()) and (d or y):
            key = f"datum:{int(d) if d else ''}.{MONTHS[month.lower()]}.{y or ''}"
            facts.append(Fact("datum", m.group(), key))
            taken.append(m.span())
    for m in NUMBER_RE.finditer(text):
        if free(*m.span()):
            facts.append(Fact("zahl", m.group(), f"zahl:{_number_value(m.group())}"))
    for m in re.finditer(r"\b[a-zäöüß]+\b", text, re.IGNORECASE):
        value = NUMBER_WORDS.get(m.group().lower())
        if value is not None and value > 1 and free(*m.span()):
            facts.append(Fact("zahl", m.group(), f"zahl:{value}"))
    facts.extend(_names(text))
    return facts


TITLES = frozenset(
    ["frau", "herr", "herrn", "dr", "prof", "familie", "bürgermeister", "bürgermeisterin"]
)
PLACE_PREPOSITIONS = frozenset(["in", "aus", "nach", "von", "bei"])
NOUN_SUFFIXES = (
    "ung", "heit", "keit", "schaft", "tion", "ität", "nis", "tum", "ment", "chen", "lein",
    "ei", "ie", "ik", "ur", "age", "ismus", "ling", "zeit", "amt", "stelle",
)  # fmt: skip
COMMON_AFTER_PREPOSITION = frozenset(
    [
        "hause",
        "haus",
        "zukunft",
        "ruhe",
        "zeit",
        "bedarf",
        "absprache",
        "ordnung",
        "abstimmung",
        "sicht",
        "recht",
        "kraft",
        "angst",
        "grund",
        "anfang",
        "ende",
        "höhe",
        "form",
        "beispiel",
        "zusammenarbeit",
        "anfrage",
        "wunsch",
        "termin",
        "post",
        "papier",
        "euro",
        "cent",
        "jahren",
        "jahr",
        "monaten",
        "tagen",
        "wochen",
        "stunden",
        "minuten",
    ]
)


def _names(text: str) -> list[Fact]:
    """Capitalised words that look like names: after a title ("Frau Schneider"), in a pair of
    capitalised words inside a sentence ("Anna Berger", "Bad Homburg"), or a place after "in",
    "aus", "nach", "von", "bei" without article ("in Moab"). German capitalises every noun, so
    a lone noun is not taken for a name."""
    found = []
    words = list(WORD_RE.finditer(text))
    for i, m in enumerate(words):
        word = m.group()
        low = word.lower()
        if low in NOT_NAMES or low in TITLES:
            continue
        before = text[: m.start()].rstrip()
        if not before or before[-1] in '.!?:\n•-–„"(':
            continue  # sentence start: any word is capitalised there
        previous = re.search(r"([\wÄÖÜäöüß]+)\.?$", before)
        prev = previous.group(1) if previous else ""
        prev_low = prev.lower()
        gap = text[previous.end() if previous else 0 : m.start()] if previous else ""
        adjacent_capital = (
            i > 0
            and words[i - 1].end() == m.start() - 1
            and words[i - 1].group().lower() not in NOT_NAMES
        )
        nxt = words[i + 1] if i + 1 < len(words) else None
        next_capital = nxt is not None and nxt.start() == m.end() + 1
        if prev_low in TITLES and gap.strip() in ("", "."):
            found.append(Fact("name", word, f"name:{low}"))
        elif (adjacent_capital or next_capital) and not low.endswith(NOUN_SUFFIXES):
            if not _article_before(before, words, i):
                found.append(Fact("name", word, f"name:{low}", attributive=next_capital))
        elif (
            prev_low in PLACE_PREPOSITIONS
            and prev == prev_low
            and low not in COMMON_AFTER_PREPOSITION
            and not low.endswith(NOUN_SUFFIXES)
        ):
            found.append(Fact("name", word, f"name:{low}"))
    return found


_DETERMINER = re.compile(
    r"\b(?:der|die|das|den|dem|des|ein|eine|einen|einem|einer|eines|kein\w*|mein\w*|dein\w*|"
    r"sein\w*|ihr\w*|unser\w*|euer\w*|dies\w*|jede\w*|alle\w*|viele\w*|zum|zur|im|am|vom|"
    r"beim|ins|ans)\s+(?:[a-zäöüß]+\s+)*$",
    re.IGNORECASE,
)


def _article_before(before: str, words: list[re.Match[str]], i: int) -> bool:
    """Whether the capitalised group that word ``i`` belongs to follows a determiner."""
    j = i
    while j > 0 and words[j - 1].end() == words[j].start() - 1:
        j -= 1
    head = before[: words[j].start()] if j < i else before + " "
    return bool(_DETERMINER.search(head))


def _known(source: str) -> set[str]:
    keys = {f.key for f in extract_facts(source)}
    # A number may reappear as part of an amount or date and vice versa: "1.471,60" in the
    # source covers "1.471,60 €" in the output only if the source said it was money, so amounts
    # need an amount; plain numbers are covered by any fact with the same number.
    for key in list(keys):
        kind, _, value = key.partition(":")
        if kind == "betrag":
            keys.add(f"zahl:{value}")
        if kind == "datum":
            for part in value.split("."):
                if part:
                    keys.add(f"zahl:{part}")
    # Every capitalised word of the source counts as known: a name there may start a sentence.
    keys.update(f"name:{w.lower()}" for w in WORD_RE.findall(source))
    for w in re.findall(r"[A-Za-zÄÖÜäöüß]+", source):
        keys.add(f"name:{w.lower()}")
    return keys


def new_facts(source: str, output: str) -> list[Fact]:
    """Facts of ``output`` that ``source`` does not contain (empty: no fact was added).

    Names are compared in lower case with the whole words of the source: a name counts as new
    when that word appears nowhere in the source. Order and repetition do not matter.
    """
    known = _known(source)
    adjective_stems = _adjective_stems(source)
    capitalised = {w.lower() for w in WORD_RE.findall(source)}
    seen: set[str] = set()
    result = []
    for fact in extract_facts(output):
        if fact.key in known or fact.key in seen:
            continue
        if fact.kind == "datum" and _date_covered(fact.key, known):
            continue
        if fact.kind == "name" and _derived_from_source(fact.key, adjective_stems):
            continue
        if fact.attributive and _place_adjective(fact.key, capitalised):
            continue
        seen.add(fact.key)
        result.append(fact)
    return result


# Endings of adjectives derived from a place ("deutschen", "bayerische", "schwedisches"),
# longest first so that one ending is removed as a whole.
_ADJECTIVE_ENDINGS = ("ischen", "ischer", "isches", "ischem", "ische", "isch", "en", "er", "es")
_ADJECTIVE_ENDINGS += ("em", "e")
# What a place's name adds to that stem: "deutsch" + "land", "bayer" + "n", "schwed" + "en".
_PLACE_ENDINGS = ("land", "en", "n")
_MIN_STEM = 4


def _stem(word: str, endings: tuple[str, ...]) -> str:
    for ending in endings:
        if word.endswith(ending) and len(word) - len(ending) >= _MIN_STEM:
            return word[: -len(ending)]
    return word


def _adjective_stems(source: str) -> set[str]:
    """Stems of the source's lower-case words (adjectives such as "deutschen"); names and
    nouns are capitalised and never give a stem here, so "Berg" never covers "Berger"."""
    return {_stem(w, _ADJECTIVE_ENDINGS) for w in re.findall(r"\b[a-zäöüß]+\b", source)}


def _derived_from_source(key: str, stems: set[str]) -> bool:
    """A place the source only names by its adjective is not a new fact: "Deutschland" for
    "deutschen", "Österreich" for "österreichischen", "Bayern" for "bayerischen". A different
    place ("Frankreich" for "französischen") stays new."""
    name = key.removeprefix("name:")
    return name in stems or _stem(name, _PLACE_ENDINGS) in stems


def _place_adjective(key: str, capitalised: set[str]) -> bool:
    """The adjective of a place the source names, used before a noun: "Konstanzer Bürger" for
    "Konstanz", "Münchner" for "München", "Bremer" for "Bremen", "Karlsruher" for "Karlsruhe".
    Only for a word directly before another capitalised word, so "Herr Berger" or "Anna
    Berger" stay new even where the source has "Berg"."""
    name = key.removeprefix("name:")
    if not name.endswith("er") or len(name) < _MIN_STEM + 2:
        return False
    bases = {name[:-2], name[:-1], name[:-2] + "en", name[:-3] + "en"}
    return any(len(base) >= _MIN_STEM and base in capitalised for base in bases)


def _date_covered(key: str, known: set[str]) -> bool:
    """``3. Mai`` is covered by ``03.05.2024`` in the source (same day and month)."""
    day, month, year = key.removeprefix("datum:").split(".")
    for k in known:
        if not k.startswith("datum:"):
            continue
        d, m, y = k.removeprefix("datum:").split(".")
        if (d == day or not day) and m == month and (y == year or not year):
            return True
    return False
