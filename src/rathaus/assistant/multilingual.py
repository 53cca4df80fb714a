"""Questions and answers in the citizen's language, through a model that translates; every
translation is checked before it is used.

Search and the support check of answer sentences work on German words, so a question in
another language is handled in German and the answer is translated back:

1. :func:`question_in_german`: the question translated into German, used **only for the
   search** and the German answer (never shown). Kept when its numbers match the question's
   and the multilingual embedder puts it close to the question; otherwise the search falls back
   to the meaning of the original question (``retrieve.search(meaning_only=True)``).
2. :func:`translate_sentence`: each German answer sentence that passed the support check,
   translated on its own. Shown when no number is lost or added, the embedder puts it close to
   its German sentence, and closer to it than to any other sentence of the cited passages (a
   translation of the wrong sentence fails). Otherwise the German sentence is shown.

What the checks cannot see: a translation that keeps the numbers and the topic but turns the
meaning (a lost "nicht"). That is why the German wording stays with every translated sentence
(``Sentence.original``) and the note says the German text is authoritative (docs/assistant.md).
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rathaus.ai.embeddings import normalize
from rathaus.core.languages import name_of
from rathaus.inbox.classify import detect_language
from rathaus.writing.translate import ENGLISH_NAMES, lost_numbers, translate_short

# Languages a model is asked to translate from and into (the names the prompt uses).
SUPPORTED = frozenset(ENGLISH_NAMES)

# Lowest cosine (multilingual-e5-small, "query:" on both sides) between a text and its
# translation that is accepted. The sentence threshold was chosen on 28 hand-written
# translations of sentences of the demo municipality's pages into seven languages, against
# translations of another sentence of the same page and translations with a changed meaning
# (`rathaus eval uebersetzung`, data in eval/uebersetzungen.jsonl, docs/assistant.md).
QUESTION_MIN_SIMILARITY = 0.80
SENTENCE_MIN_SIMILARITY = 0.85
CHECKS_FILE = Path(__file__).parent / "eval" / "uebersetzungen.jsonl"


@dataclass
class Check:
    """The checks of one translation; ``ok`` when all pass."""

    text: str
    similarity: float
    lost: list[str] = field(default_factory=list)  # numbers of the original missing in it
    added: list[str] = field(default_factory=list)  # numbers in it the original lacks
    closer_to: str = ""  # another sentence it is closer to than to its original
    minimum: float = SENTENCE_MIN_SIMILARITY
    written_in: str = ""  # the language it is recognisably written in, when not the asked one
    degenerate: str = ""  # why it is not a sentence at all (repetition, length)

    @property
    def ok(self) -> bool:
        return (
            bool(self.text)
            and not self.written_in
            and not self.degenerate
            and not self.lost
            and not self.added
            and not self.closer_to
            and self.similarity >= self.minimum
        )

    @property
    def reason(self) -> str:
        """Why the translation was not used, in German; empty when it was."""
        if not self.text:
            return "keine Übersetzung erhalten"
        if self.degenerate:
            return self.degenerate
        if self.written_in:
            return f"in der falschen Sprache ({name_of(self.written_in)})"
        if self.lost or self.added:
            numbers = ", ".join([*self.lost, *self.added])
            return f"Zahlen stimmen nicht überein ({numbers})"
        if self.closer_to:
            return "passt besser zu einem anderen Satz der Quelle"
        if self.similarity < self.minimum:
            return f"Bedeutung zu weit entfernt (Ähnlichkeit {self.similarity:.2f})"
        return ""


def german_sentences(sentences: Sequence[str]) -> list[str]:
    """The German ones of ``sentences``: what a translation is compared with besides its own
    sentence. A page's English paragraph would be closer to an English translation of any of
    its German sentences, just by sharing the language."""
    return [s for s in sentences if detect_language(s).label == "de"]


# Numbers written as words, two to twelve (and the tens a text about fees or deadlines uses),
# in the languages where such a word is never anything else; "ein"/"one" are articles too.
NUMBER_WORDS = {
    "de": {
        "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8,
        "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12, "zwanzig": 20, "dreißig": 30,
    },
    "en": {
        "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
        "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "thirty": 30,
    },
}  # fmt: skip


def _digits(text: str, language: str) -> str:
    """``text`` with the number words of ``language`` written as digits ("acht" → "8")."""
    words = NUMBER_WORDS[language]
    return re.sub(
        r"[^\W\d_]+",
        lambda m: str(words.get(m.group().lower(), m.group())),
        text,
    )


# Languages the language detection tells apart reliably (inbox.classify.detect_language):
# a translation into one of them must be recognised as it. Into another (Romanian, Persian,
# Croatian, Bulgarian) only a translation left in German is caught.
DETECTED = frozenset({"de", "en", "fr", "tr", "it", "pl", "es", "uk", "ru", "ar", "el"})


def _written_in(text: str, target: str) -> str:
    """The language ``text`` is recognisably written in when that is not ``target``."""
    if not target:
        return ""
    verdict = detect_language(text)
    if verdict.reasons == ("zu wenig Text",) or verdict.label == target:
        return ""
    if target in DETECTED or verdict.label == "de":
        return verdict.label
    return ""


def _degenerate(original: str, translation: str) -> str:
    """Why ``translation`` cannot be a translation of ``original``: a word repeated three times
    in a row (a small model looping), or a length far from the original's."""
    words = translation.lower().split()
    if any(a == b == c for a, b, c in zip(words, words[1:], words[2:], strict=False)):
        return "Wiederholung statt Übersetzung"
    ratio = len(translation) / max(1, len(original))
    if not 0.4 <= ratio <= 2.5:
        return f"Länge passt nicht ({len(translation)} statt etwa {len(original)} Zeichen)"
    # Names and terms may stay German ("Fiktionsbescheinigung"), most of the sentence not.
    german = {w for w in re.findall(r"[^\W\d_]{4,}", original.lower())}
    kept = german & set(re.findall(r"[^\W\d_]{4,}", translation.lower()))
    if len(german) >= 4 and len(kept) > len(german) / 2:
        return "großteils nicht übersetzt"
    return ""


def check(
    original: str,
    translation: str,
    *,
    embedder: Any,
    others: Sequence[str] = (),
    minimum: float = SENTENCE_MIN_SIMILARITY,
    languages: tuple[str, str] = ("de", ""),
) -> Check:
    """How well ``translation`` renders ``original``; ``others`` are sentences it must be
    farther from than from ``original`` (the rest of the cited passages). ``languages`` are
    those of original and translation: where both write numbers as known words ("acht
    Wochen", "eight weeks"), the words count as numbers too; a translation must be written in
    the second (as far as the language detection can tell)."""
    translation = translation.strip()
    if not translation:
        return Check(text="", similarity=0.0, minimum=minimum)
    numbers_of, numbers_in = original, translation
    if all(language in NUMBER_WORDS for language in languages):
        numbers_of, numbers_in = _digits(original, languages[0]), _digits(translation, languages[1])
    candidates = [original, *(o for o in others if o != original)]
    vectors = normalize(embedder.embed_queries([translation, *candidates]))
    similarities = vectors[1:] @ vectors[0]
    own = float(similarities[0])
    closer = ""
    if len(similarities) > 1:
        best = int(np.argmax(similarities[1:])) + 1
        if float(similarities[best]) > own:
            closer = candidates[best]
    return Check(
        text=translation,
        similarity=round(own, 4),
        lost=lost_numbers(numbers_of, numbers_in),
        added=lost_numbers(numbers_in, numbers_of),
        closer_to=closer,
        minimum=minimum,
        written_in=_written_in(translation, languages[1]),
        degenerate=_degenerate(original, translation),
    )


def _clean(text: str) -> str:
    """A model's reply without quotes or a leading label ("Deutsch: …")."""
    text = text.strip().splitlines()[0].strip() if text.strip() else ""
    for label in ("German:", "Deutsch:", "Translation:", "Übersetzung:"):
        if text.startswith(label):
            text = text[len(label) :].strip()
    return text.strip("\"'„“”«» ")


def question_in_german(model: Any, question: str, language: str, *, embedder: Any) -> Check:
    """The question translated into German by ``model``, with its check (``ok`` decides
    whether the search uses it)."""
    if language not in SUPPORTED:
        return Check(text="", similarity=0.0, minimum=QUESTION_MIN_SIMILARITY)
    german = _clean(
        translate_short(
            question, source=language, target="de", model=model, what="citizens' questions"
        )
    )
    result = check(
        question,
        german,
        embedder=embedder,
        minimum=QUESTION_MIN_SIMILARITY,
        languages=(language, "de"),
    )
    if result.text.casefold() == question.casefold():  # not translated at all
        result.similarity = 0.0
    return result


def translate_sentence(
    model: Any, sentence: str, language: str, *, embedder: Any, others: Sequence[str] = ()
) -> Check:
    """The German answer sentence translated into ``language`` by ``model``, with its check."""
    if language not in SUPPORTED:
        return Check(text="", similarity=0.0)
    translated = _clean(
        translate_short(
            sentence, source="de", target=language, model=model, what="answers to citizens"
        )
    )
    result = check(
        sentence, translated, embedder=embedder, others=others, languages=("de", language)
    )
    if result.text.casefold() == sentence.casefold():  # left in German
        result.similarity = 0.0
    return result


def _outcome(result: Check) -> str:
    """Accepted, or the first check that failed (in the order :attr:`Check.reason` names)."""
    if result.ok:
        return "accepted"
    if not result.text or result.degenerate:
        return "rejected_degenerate"
    if result.written_in:
        return "rejected_language"
    if result.lost or result.added:
        return "rejected_numbers"
    return "rejected_other_sentence" if result.closer_to else "rejected_similarity"


OUTCOMES = (
    "accepted",
    "rejected_degenerate",
    "rejected_language",
    "rejected_numbers",
    "rejected_other_sentence",
    "rejected_similarity",
)


def _tally(results: Sequence[Check]) -> dict[str, Any]:
    similarities = [r.similarity for r in results]
    outcomes = [_outcome(r) for r in results]
    return {
        **{key: outcomes.count(key) for key in OUTCOMES},
        "similarity_min": min(similarities),
        "similarity_median": round(statistics.median(similarities), 4),
        "similarity_max": max(similarities),
    }


def evaluate_checks(
    *, embedder: Any, path: Path = CHECKS_FILE, model: Any = None, model_name: str = ""
) -> dict[str, Any]:
    """How the sentence check judges hand-written translations (``richtig``), translations of
    another sentence of the same page (``anderer_satz``) and translations with a changed
    meaning (``sinn``). Each German sentence is checked against the other sentences of its
    demo page, as an answer is against its cited passages.

    With ``model``, also the model's own translations of the same sentences (``model``): how
    many the check lets through, with each translation listed for a person to judge."""
    from rathaus.assistant.answer import passage_sentences
    from rathaus.assistant.importers import demo_entries

    pages = [german_sentences(passage_sentences(entry.body)) for entry in demo_entries()]
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    kinds = {"right": "richtig", "other_sentence": "anderer_satz", "meaning_changed": "sinn"}
    report: dict[str, Any] = {
        "data": str(path),
        "pairs": len(rows),
        "languages": sorted({row["sprache"] for row in rows}),
        "threshold": SENTENCE_MIN_SIMILARITY,
    }

    def page_of(row: dict[str, Any]) -> list[str]:
        return next((p for p in pages if row["de"] in p), [])

    for name, key in kinds.items():
        report[name] = _tally(
            [
                check(
                    row["de"],
                    row[key],
                    embedder=embedder,
                    others=page_of(row),
                    languages=("de", row["sprache"]),
                )
                for row in rows
            ]
        )
    if model is not None:
        results = [
            translate_sentence(
                model, row["de"], row["sprache"], embedder=embedder, others=page_of(row)
            )
            for row in rows
        ]
        report["model"] = {
            "name": model_name or str(getattr(model, "model", "")),
            **_tally(results),
            "translations": [
                {"de": row["de"], "sprache": row["sprache"], "text": r.text, "ok": r.ok,
                 "grund": r.reason, "aehnlichkeit": r.similarity}
                for row, r in zip(rows, results, strict=True)
            ],
        }  # fmt: skip
    return report
