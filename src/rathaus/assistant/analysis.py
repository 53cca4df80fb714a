"""German text analysis for full-text search: words, stems and the parts of compounds.

The same analyser runs when a passage is indexed and when a question is searched, in embedded
(SQLite FTS5) and in server mode (PostgreSQL), so both find the same passages. It

* folds case, umlauts and ß (``Führerschein`` → ``fuhrerschein``),
* drops stop words,
* reduces each word to a stem with a small rule-based German stemmer (suffixes such as -en,
  -er, -e, -s, -nd are removed step by step, in the manner of the CISTEM algorithm), and
* splits compounds into the known words they are made of (``Gewerbeanmeldung`` →
  ``gewerb`` + ``anmeld``), using a vocabulary of words that occur on their own, with the
  linking elements -s-, -es-, -n-, -en-, -e-.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*", re.UNICODE)
FOLD = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "ss", "é": "e", "è": "e", "à": "a"})

STOP_WORDS = frozenset(
    """
    aber alle allem allen aller alles als also am an ander andere anderen auch auf aus bei bin
    bis bist da damit dann der den des dem die das dass dass du dein deine durch ein eine einem
    einen einer eines er es etwa euch euer für fur gegen hab habe haben hat hatte ich ihr ihre
    ihm ihn im in ins ist ja jede jeder jedes kann kein keine können konnen man mein meine mich
    mir mit muss müssen mussen nach nicht noch nun nur ob oder ohne sehr sein seine sich sie
    sind so soll sollte sonst über uber um und uns unser unter vom von vor war was weil welche
    wenn wer werde werden wie wir wird wo zu zum zur bzw z b ca sowie dieser diese dieses diesem
    bitte brauche brauchen gibt geht mochte möchte will wollen muss wann wie wieviel viel
    the a an of to and or for is are what do i my how can where when
    """.split()  # noqa: SIM905 - a readable word list
)

_LINKS = ("s", "es", "n", "en", "e", "")
MIN_PART = 4


def fold(text: str) -> str:
    """Lower case with umlauts and ß folded."""
    return text.lower().translate(FOLD)


def words(text: str) -> list[str]:
    """The words of ``text``, folded; hyphenated words are split into their parts."""
    out: list[str] = []
    for match in WORD.finditer(fold(text)):
        out.extend(part for part in re.split(r"[-']", match.group()) if part)
    return out


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A German stem: ``anmeldungen`` → ``anmeld``, ``ausweises`` → ``ausweis``."""
    w = fold(word)
    if len(w) <= 3 or w.isdigit():
        return w
    if w.startswith("ge") and len(w) >= 7:
        w = w[2:]
    for suffix in ("ungen", "ung", "heiten", "keiten", "heit", "keit", "lich", "isch"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            w = w[: -len(suffix)]
            break
    while len(w) > 4:
        if len(w) > 5 and w[-2:] in ("em", "er", "nd"):
            w = w[:-2]
        elif w[-1] in "esnt" and not w.endswith("ss"):
            w = w[:-1]
        else:
            break
    return w


def split_compound(word: str, vocabulary: frozenset[str] | set[str]) -> list[str]:
    """The parts of a compound whose stems are in ``vocabulary`` (longest head first), or []."""
    w = fold(word)
    if len(w) < 2 * MIN_PART:
        return []
    best: list[str] = []
    # The head (last part) carries the meaning in German compounds: try the longest head first.
    for cut in range(MIN_PART, len(w) - MIN_PART + 1):
        head = w[cut:]
        if stem(head) not in vocabulary:
            continue
        modifier = w[:cut]
        for link in _LINKS:
            if link and not modifier.endswith(link):
                continue
            core = modifier[: len(modifier) - len(link)] if link else modifier
            if len(core) < MIN_PART - 1:
                continue
            if stem(core) in vocabulary:
                return [core, head]
            inner = split_compound(core, vocabulary)
            if inner:
                return [*inner, head]
        if not best:
            best = [head]
    return best


class Analyzer:
    """Turns text into search terms; ``vocabulary`` (stems of known words) enables compound
    splitting. Terms are returned in order, with the parts of a compound after the word."""

    def __init__(self, vocabulary: Iterable[str] = ()) -> None:
        self.vocabulary = frozenset(vocabulary)
        self._cache: dict[str, list[str]] = {}

    def word_terms(self, word: str) -> list[str]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        terms = [stem(word)]
        if self.vocabulary and len(word) >= 2 * MIN_PART:
            for part in split_compound(word, self.vocabulary):
                s = stem(part)
                if s not in terms:
                    terms.append(s)
        if len(self._cache) < 200_000:
            self._cache[word] = terms
        return terms

    def terms(self, text: str) -> list[str]:
        out: list[str] = []
        for word in words(text):
            if word in STOP_WORDS or (len(word) < 2 and not word.isdigit()):
                continue
            out.extend(self.word_terms(word))
        return out


def vocabulary_of(texts: Iterable[str], *, min_length: int = MIN_PART) -> set[str]:
    """Stems of the words that occur in ``texts`` (the basis for splitting compounds)."""
    vocab: set[str] = set()
    for text in texts:
        for word in words(text):
            if len(word) >= min_length and word not in STOP_WORDS:
                vocab.add(stem(word))
    return vocab
