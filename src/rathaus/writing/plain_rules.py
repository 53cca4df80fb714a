"""The rules of Leichte Sprache as small, deterministic rule objects (no model, no dictionary file).

Each rule looks at one sentence and returns the offending spans. A rule has a ``code`` (stable,
used in JSON and the evaluation), a German ``label`` and ``explanation`` for the reader, and a
``weight`` for the Schweregrad: heavier for what hinders understanding most (long sentences,
several statements, passive, Konjunktiv), lighter for form (abbreviations, special characters).
The weights were tuned on half of DEplain-web (see ``docs/plain-language.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

WORD_RE = re.compile(r"[0-9A-Za-zÄÖÜäöüßÀ-ÿ][0-9A-Za-zÄÖÜäöüßÀ-ÿ·'’\-]*")


@dataclass(frozen=True)
class Token:
    text: str
    start: int  # offset in the sentence
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower()


@dataclass(frozen=True)
class Sentence:
    """One sentence of a checked text: ``start``/``end`` are offsets in the whole text."""

    text: str
    start: int
    end: int
    tokens: tuple[Token, ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, text: str, start: int) -> Sentence:
        tokens = tuple(Token(m.group(), m.start(), m.end()) for m in WORD_RE.finditer(text))
        return cls(text, start, start + len(text), tokens)

    @property
    def words(self) -> int:
        return len(self.tokens)


_VOWEL_GROUP = re.compile(r"(?:ei|ie|au|eu|äu|ai|[aeiouäöüy])+", re.IGNORECASE)
_LETTERS = re.compile(r"[^\W\d_]+")


def syllables(word: str) -> int:
    """A fast syllable estimate: groups of vowels (diphthongs as one), at least 1."""
    return max(1, len(_VOWEL_GROUP.findall(word)))


def letter_words(text: str) -> list[str]:
    """The words of letters in ``text`` (numbers are left out)."""
    return _LETTERS.findall(text)


def word_syllables(text: str) -> list[int]:
    """Syllables of each word of letters in ``text`` (numbers are left out)."""
    return [syllables(w) for w in letter_words(text)]


@dataclass(frozen=True)
class Hit:
    """An offending span in a sentence (offsets in the sentence) with an optional suggestion."""

    start: int
    end: int
    suggestion: str | None = None


@dataclass(frozen=True)
class Rule:
    code: str
    label: str
    explanation: str
    weight: float
    find: Callable[[Sentence, RuleConfig], list[Hit]]


@dataclass(frozen=True)
class RuleConfig:
    """Thresholds of the configurable rules."""

    max_words: int = 15
    long_word_chars: int = 13


def _words(*groups: str) -> frozenset[str]:
    return frozenset(w for g in groups for w in g.split())


def _matching(sentence: Sentence, vocabulary: Iterable[str]) -> list[Hit]:
    vocab = vocabulary if isinstance(vocabulary, frozenset) else frozenset(vocabulary)
    return [Hit(t.start, t.end) for t in sentence.tokens if t.lower in vocab]


# -- sentence length ---------------------------------------------------------------------------


def _length(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    if sentence.words <= config.max_words:
        return []
    return [
        Hit(
            0,
            len(sentence.text.rstrip()),
            f"{sentence.words} Wörter: in Sätze mit höchstens {config.max_words} Wörtern teilen.",
        )
    ]


# -- more than one statement -------------------------------------------------------------------

SUBORDINATORS = _words(
    "weil dass daß obwohl obgleich wenn falls sofern damit nachdem bevor ehe sobald solange "
    "seitdem indem sodass wodurch weshalb weswegen wohingegen wobei ob"
)
RELATIVES = _words("der die das dem den deren dessen denen welche welcher welches welchem welchen")
COORDINATORS = _words("aber sondern denn doch jedoch")
# These also work as adverbs or question words: "Seitdem ist Deutschland vereint." is one
# statement. At the start of a sentence and followed straight by a verb they open no clause.
ALSO_ADVERBS = _words("seitdem damit weshalb weswegen wodurch wobei")
CLAUSE_SUBJECTS = _words(
    "ich du er sie es wir ihr man der die das den dem ein eine einen einem einer jemand niemand "
    "alle viele"
)
PRONOUNS = _words("ich du er sie es wir ihr man")
AND_OR = _words("und oder")


def _statements(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    hits: list[Hit] = []
    text = sentence.text
    tokens = sentence.tokens
    for i, tok in enumerate(tokens):
        low = tok.lower
        before = text[: tok.start].rstrip()
        after_comma = before.endswith((",", "–", "-", ";"))
        if low in SUBORDINATORS and i == 0 and _opens_main_clause(tokens):
            continue
        if low in SUBORDINATORS and (i > 0 or low != "wenn"):
            hits.append(Hit(tok.start, tok.end, "Nebensatz: als eigenen Satz schreiben."))
        elif after_comma and low in RELATIVES and i > 0:
            hits.append(Hit(tok.start, tok.end, "Relativsatz: als eigenen Satz schreiben."))
        elif (
            low in COORDINATORS
            and i > 0
            or low in AND_OR
            and i + 1 < len(tokens)
            and tokens[i + 1].lower in PRONOUNS
            or after_comma
            and low in AND_OR
        ):
            hits.append(Hit(tok.start, tok.end, "Zwei Aussagen: in zwei Sätze teilen."))
    hits.extend(
        Hit(m.start(), m.end(), "Semikolon: zwei Sätze daraus machen.")
        for m in re.finditer(";", text)
    )
    # a comma followed by a finite-looking clause start (zu + infinitive: "um … zu …")
    for m in re.finditer(r",\s+(um|ohne|statt|anstatt)\b", text, re.IGNORECASE):
        hits.append(Hit(m.start(1), m.end(1), "Infinitivsatz: als eigenen Satz schreiben."))
    return hits


def _opens_main_clause(tokens: tuple[Token, ...]) -> bool:
    """ "Damit werden …", "Seitdem ist …": adverb plus verb, no subordinate clause."""
    if tokens[0].lower not in ALSO_ADVERBS or len(tokens) < 2:
        return False
    following = tokens[1].text
    return following[0].islower() and following.lower() not in CLAUSE_SUBJECTS


# -- passive -----------------------------------------------------------------------------------

WERDEN = _words("werde wirst wird werden werdet wurde wurdest wurden wurdet worden")
GE_INFINITIVES = _words(
    "gehen geben gewinnen gehören genießen geschehen gelten gefallen gelingen genügen gestalten "
    "gewähren gewöhnen gebrauchen gedenken gestehen gestatten gewinnt gelangen genehmigen "
    "gebären gebieten geraten"
)
_CLAUSE_BREAK = re.compile(r"[,;:–]")
INSEPARABLE = ("be", "er", "ver", "zer", "ent", "emp", "miss", "über", "unter", "hinter", "ge")


def _is_participle(word: str) -> bool:
    low = word.lower()
    if len(low) < 5 or low in GE_INFINITIVES:
        return False
    if low.endswith(("iert", "ieren")):
        return low.endswith("iert")
    if re.fullmatch(r"(?:[a-zäöü]{2,6})?ge[a-zäöüß]{2,}(?:t|en)", low):
        return True
    return low.startswith(INSEPARABLE) and low.endswith("t") and len(low) >= 7


def _passive(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    hits = []
    tokens = sentence.tokens
    for i, tok in enumerate(tokens):
        if tok.lower not in WERDEN:
            continue
        for later in tokens[i + 1 : i + 14]:
            if later.lower in WERDEN and later.lower != "worden":
                break
            if _CLAUSE_BREAK.search(sentence.text, tok.end, later.start):
                break  # "… wird immer beliebter, wenn man den Umsatz betrachtet": another clause
            if later.text[0].islower() and _is_participle(later.text):
                hits.append(Hit(tok.start, later.end, "Aktiv schreiben: Wer tut was?"))
                break
        else:
            # "… bearbeitet wird": the participle stands before werden at the end of a clause
            if i > 0 and tokens[i - 1].text[0].islower() and _is_participle(tokens[i - 1].text):
                hits.append(Hit(tokens[i - 1].start, tok.end, "Aktiv schreiben: Wer tut was?"))
    return hits


# -- negation ----------------------------------------------------------------------------------

NEGATIONS = _words(
    "nicht kein keine keinen keinem keiner keines nie niemals niemand niemanden niemandem "
    "nichts nirgends nirgendwo weder"
)


def _negation(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    return [
        Hit(h.start, h.end, "Wenn möglich positiv sagen.") for h in _matching(sentence, NEGATIONS)
    ]


# -- genitive ----------------------------------------------------------------------------------

GENITIVE_PREPOSITIONS = _words(
    "wegen trotz aufgrund infolge anhand mittels bezüglich hinsichtlich innerhalb außerhalb "
    "oberhalb unterhalb anstatt statt zwecks seitens angesichts anlässlich einschließlich "
    "zuzüglich abzüglich mangels"
)
GENITIVE_RE = re.compile(
    r"\b(?:des|eines|meines|deines|seines|ihres|unseres|dieses|jenes|jedes)\s+"
    r"(?:[a-zäöüß]+e[nr]?\s+)*[A-ZÄÖÜ][a-zäöüß]+(?:es|s)\b"
)


# "die Öffnung der Mauer", "die Hälfte der Menschen": a noun, "der", maybe adjectives, a noun
# (feminine and plural genitive; a relative "der" follows a comma and is not matched).
NOUN_DER_NOUN_RE = re.compile(r"(?<=[a-zäöüß] )der\s+(?:[a-zäöüß]+e[nr]?\s+)*[A-ZÄÖÜ][a-zäöüß]+\b")
_NOUN_BEFORE = re.compile(r"\b[A-ZÄÖÜ][a-zäöüß]+ $")
_OPENING = re.compile(r"[\s„“”\"'‚‘’»«(\[–-]+")


def _genitive(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    text = sentence.text
    hits = [Hit(m.start(), m.end(), "Mit „von“ schreiben.") for m in GENITIVE_RE.finditer(text)]
    for m in NOUN_DER_NOUN_RE.finditer(text):
        noun = _NOUN_BEFORE.search(text, 0, m.start())
        # The first word of a sentence is capitalised whatever it is: "Zu der Zeit …",
        # "Nur der Tod …", "Wenn der Mensch …" have no noun before "der".
        if noun and _OPENING.sub("", text[: noun.start()]):
            hits.append(Hit(m.start(), m.end(), "Mit „von“ schreiben: „von der …“."))
    for tok in sentence.tokens:
        if tok.lower in GENITIVE_PREPOSITIONS:
            hits.append(
                Hit(tok.start, tok.end, "Anders sagen, z. B. mit „weil“ in einem eigenen Satz.")
            )
    return hits


# -- subjunctive -------------------------------------------------------------------------------

SUBJUNCTIVES = _words(
    "wäre wären wärst wärest wäret hätte hätten hättest hättet würde würden würdest würdet "
    "könnte könnten könntest müsste müssten müsstest dürfte dürften sollte sollten solltest "
    "bräuchte bräuchten käme kämen ginge gingen sei seien gäbe gäben wüsste wüssten"
)


def _subjunctive(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    return [
        Hit(h.start, h.end, "Wirklichkeitsform: klar sagen, was ist oder was Sie tun müssen.")
        for h in _matching(sentence, SUBJUNCTIVES)
    ]


# -- abbreviations -----------------------------------------------------------------------------

ABBREVIATIONS = {
    r"z\.\s?B\.": "zum Beispiel",
    r"u\.\s?a\.": "unter anderem",
    r"d\.\s?h\.": "das heißt",
    r"i\.\s?d\.\s?R\.": "in der Regel",
    r"o\.\s?Ä\.": "oder Ähnliches",
    r"u\.\s?U\.": "unter Umständen",
    r"usw\.": "und so weiter",
    r"bzw\.": "oder",
    r"ggf\.": "wenn nötig",
    r"evtl\.": "vielleicht",
    r"inkl\.": "mit",
    r"zzgl\.": "dazu kommen",
    r"vgl\.": "siehe",
    r"ca\.": "etwa",
    r"etc\.": "und so weiter",
    r"Abs\.": "Absatz",
    r"Nr\.": "Nummer",
    r"Str\.": "Straße",
    r"Tel\.": "Telefon",
    r"Dr\.": "Doktor",
    r"§§?": "Paragraf",
    r"Art\.": "Artikel",
    r"S\.": "Seite",
}
ABBREVIATION_RE = re.compile(
    "|".join(f"(?<![\\w])(?:{p})" for p in ABBREVIATIONS)
    + r"|\b(?=[A-Za-zÄÖÜäöü]*[A-ZÄÖÜ][a-zäöü]?[A-ZÄÖÜ])[A-Za-zÄÖÜäöü]{2,6}\b"
)


def _abbreviation(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    hits = []
    for m in ABBREVIATION_RE.finditer(sentence.text):
        suggestion = next(
            (full for pattern, full in ABBREVIATIONS.items() if re.fullmatch(pattern, m.group())),
            None,
        )
        hits.append(
            Hit(
                m.start(),
                m.end(),
                f"Ausschreiben: „{suggestion}“." if suggestion else "Ausschreiben oder erklären.",
            )
        )
    return hits


# -- numbers written as words ------------------------------------------------------------------

NUMBER_WORDS = {
    "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9,
    "zehn": 10, "elf": 11, "zwölf": 12, "dreizehn": 13, "vierzehn": 14, "fünfzehn": 15,
    "sechzehn": 16, "siebzehn": 17, "achtzehn": 18, "neunzehn": 19, "zwanzig": 20,
    "dreißig": 30, "vierzig": 40, "fünfzig": 50, "sechzig": 60, "siebzig": 70, "achtzig": 80,
    "neunzig": 90, "hundert": 100, "tausend": 1000, "million": 1_000_000,
    "millionen": 1_000_000, "milliarde": 10**9, "milliarden": 10**9,
}  # fmt: skip


def _number_word(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    hits = []
    for tok in sentence.tokens:
        value = NUMBER_WORDS.get(tok.lower)
        if value is not None:
            hits.append(Hit(tok.start, tok.end, f"Als Ziffer schreiben: {value}."))
    return hits


# -- long compounds ----------------------------------------------------------------------------

# Frequent parts of German compounds (official and everyday language), longest match first.
KNOWN_PARTS = sorted(
    _words(
        "amt ämter antrag anträge stelle stellen gebühr gebühren verwaltung bescheid recht rechte "
        "gesetz gesetze versicherung arbeit zeit zeiten geld haus häuser straße straßen platz "
        "schule schulen kind kinder eltern jahr jahre monat monate tag tage nummer ausweis pass "
        "karte karten buch bücher stadt städte land länder dienst dienste leistung leistungen "
        "hilfe hilfen bürger bürgerin stand wohnung wohnungen miete vertrag verträge plan pläne "
        "nachweis frist fristen termin termine urkunde urkunden anmeldung meldung meldungen "
        "behörde behörden gericht verfahren kosten steuer steuern unterlagen formular formulare "
        "vorschrift vorschriften ordnung beitrag beiträge zuschuss zuschüsse geld einkommen "
        "energie wasser müll abfall verkehr wagen fahrzeug fahrzeuge fahrer weg wege raum räume "
        "gebäude bereich bereiche programm system systeme schutz sicherheit kraft werk werke "
        "quelle quellen sprache sprachen welt leben mensch menschen gruppe gruppen rat räte "
        "sitzung sitzungen beschluss beschlüsse zentrum zentren büro stunde stunden woche wochen "
        "familie familien arzt ärzte pflege heim heime garten gärten sport verein vereine "
        "geschichte museum museen reise reisen bahn zug züge feuer wehr polizei post brief briefe "
        "angebot angebote bildung beratung prüfung prüfungen nutzung planung förderung "
        "erklärung bescheinigung genehmigung erlaubnis zahlung zahlungen kasse konto mittel "
        "melde belehrung behelf markt unternehmen betrieb betriebe fläche flächen grund boden licht luft natur umwelt"
    ),
    key=len,
    reverse=True,
)
FUGEN_RE = re.compile(r"(?:ung|heit|keit|schaft|tion|tät|ling|tum)s(?=[a-zäöü]{3,})")


def split_compound(word: str, *, min_part: int = 3) -> list[str]:
    """Split a German compound into readable parts ("Geburts·urkunde"): known heads first
    (longest match at the end), else at a Fugen-s after -ung/-heit/-keit/-schaft/-tion/-tät.
    Returns ``[word]`` when no split is found."""
    low = word.lower()
    for part in KNOWN_PARTS:
        if low.endswith(part) and len(low) - len(part) >= min_part:
            cut = len(word) - len(part)
            head = word[cut:]
            left = split_compound(word[:cut], min_part=min_part)
            return [*left, head[0].upper() + head[1:] if word[0].isupper() else head]
    m = FUGEN_RE.search(low)
    if m and m.end() >= min_part + 1:
        cut = m.end()
        right = word[cut:]
        return [word[:cut], *split_compound(right[0].upper() + right[1:], min_part=min_part)]
    return [word]


def _long_word(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    hits = []
    for tok in sentence.tokens:
        word = tok.text
        if len(word) < config.long_word_chars or "·" in word or "-" in word or word.isupper():
            continue
        if not word[0].isupper():
            continue  # long verbs and adjectives are rare; nouns are the compounds
        parts = split_compound(word)
        if len(parts) > 1:
            hint = f"Mit Mediopunkt trennen: {'·'.join(_join_case(parts))}."
        else:
            hint = "Langes Wort: mit Mediopunkt trennen oder ein kürzeres Wort nehmen."
        hits.append(Hit(tok.start, tok.end, hint))
    return hits


def _join_case(parts: list[str]) -> list[str]:
    # In Leichte Sprache the second part keeps a capital letter: "Geburts·Urkunde" is also
    # common, but DIN SPEC 33429 examples write it in lower case: "Geburts·urkunde".
    return [parts[0], *(p[0].lower() + p[1:] for p in parts[1:])]


# -- hard words --------------------------------------------------------------------------------

HARD_WORDS = {
    "bescheid": "Brief vom Amt mit einer Entscheidung",
    "frist": "bis zu diesem Tag",
    "fristgerecht": "rechtzeitig",
    "gemäß": "nach",
    "bezüglich": "zu",
    "hinsichtlich": "zu",
    "seitens": "von",
    "diesbezüglich": "dazu",
    "vorliegend": "dieser",
    "unverzüglich": "sofort",
    "umgehend": "sofort",
    "zuständig": "wer sich darum kümmert",
    "zuständige": "wer sich darum kümmert",
    "zuständigen": "wer sich darum kümmert",
    "widerspruch": "sich beschweren",
    "rechtsbehelfsbelehrung": "was Sie tun können, wenn Sie nicht einverstanden sind",
    "aushändigen": "geben",
    "ausgehändigt": "gegeben",
    "entgelt": "Geld",
    "aufwendungen": "Kosten",
    "vordruck": "Formular",
    "anlage": "Beilage",
    "kenntnisnahme": "zum Lesen",
    "erforderlich": "nötig",
    "erforderlichen": "nötigen",
    "beantragen": "einen Antrag stellen",
    "entrichten": "bezahlen",
    "ersuchen": "bitten",
    "sofern": "wenn",
    "mithin": "also",
    "obliegt": "ist Aufgabe von",
    "bedarfsgemeinschaft": "alle Menschen in einer Wohnung, die zusammen Geld bekommen",
    "leistungsbezug": "Geld vom Amt",
    "vollmacht": "schriftliche Erlaubnis für eine andere Person",
    "meldebescheinigung": "Papier vom Amt: hier wohnen Sie",
    "infrastruktur": "Straßen, Leitungen und Gebäude",
    "integration": "dazu·gehören",
    "kommunikation": "miteinander sprechen",
    "ressourcen": "Mittel",
    "optimal": "sehr gut",
    "effizient": "sparsam",
    "relevant": "wichtig",
    "potenziell": "vielleicht",
    "sukzessive": "nach und nach",
    "marginal": "sehr klein",
    "adäquat": "passend",
    "explizit": "genau",
    "implizit": "nicht direkt gesagt",
    "konsequent": "immer",
    "tendenziell": "meistens",
    "signifikant": "deutlich",
}
FOREIGN_SUFFIXES = (
    "ität", "itäten", "ismus", "ation", "ationen", "ologie", "ativ", "ative", "ativen",
    "ieren", "iert", "ierte", "ierten", "enz", "anz", "ell", "elle", "ellen", "ös", "öse",
    "ösen", "ik", "istisch", "istische", "istischen",
)  # fmt: skip
COMMON_FOREIGN = _words(
    "musik politik fabrik technik kritik republik information informationen ende elf kanz "
    "stell quelle stelle welle zelle schnell hell alle alles kontrolle rolle tanz ganz glanz "
    "schwanz pflanz pflanze distanz bank ball fall modell offiziell aktuell generell speziell "
    "telefon polizei spezielle aktuelle aktuellen schwellen stellen bestellen hotel"
)


def _is_hard(low: str) -> bool:
    return low in HARD_WORDS or (
        len(low) >= 7 and low.endswith(FOREIGN_SUFFIXES) and low not in COMMON_FOREIGN
    )


def _hard_word(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    hits = []
    for tok in sentence.tokens:
        low = tok.lower
        if low in HARD_WORDS:
            hits.append(
                Hit(tok.start, tok.end, f"Erklären oder ersetzen, z. B. „{HARD_WORDS[low]}“.")
            )
        elif len(low) >= 7 and low.endswith(FOREIGN_SUFFIXES) and low not in COMMON_FOREIGN:
            hits.append(
                Hit(tok.start, tok.end, "Fremdwort: erklären oder ein einfaches Wort nehmen.")
            )
    return hits


# -- pronouns ----------------------------------------------------------------------------------

THIRD_PERSON = _words("er ihm ihn sein seine seinen seinem seiner seines dessen deren")
# Capitalised, these are the polite "Sie", "Ihnen", "Ihr …": only the lower-case forms count.
THIRD_PERSON_LOWER = frozenset(_words("sie ihnen ihr ihre ihren ihrem ihrer ihres"))


def _pronoun(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    hits = []
    text = sentence.text
    for i, tok in enumerate(sentence.tokens):
        if tok.lower in THIRD_PERSON or (i > 0 and tok.text in THIRD_PERSON_LOWER):
            if tok.lower == "sein" and re.match(r"\s*(?:[,.;:!?]|$)", text[tok.end :]):
                continue  # the verb: "… wird bald fertig sein."
            hits.append(Hit(tok.start, tok.end, "Das Nomen wiederholen: sagen, wer gemeint ist."))
    return hits


# -- simple past -------------------------------------------------------------------------------

# Strong and irregular verbs in the simple past, with the perfect to suggest (the first person
# singular and the third person are the same form). "wurde" is left to the passive rule, the modal
# verbs (konnte, musste …) keep their simple past in Leichte Sprache too.
SIMPLE_PAST = {
    "war": "ist gewesen", "waren": "sind gewesen", "hatte": "hat gehabt",
    "hatten": "haben gehabt", "kam": "ist gekommen", "kamen": "sind gekommen",
    "ging": "ist gegangen", "gingen": "sind gegangen", "gab": "hat gegeben",
    "gaben": "haben gegeben", "sah": "hat gesehen", "sahen": "haben gesehen",
    "stand": "hat gestanden", "standen": "haben gestanden", "lag": "hat gelegen",
    "lagen": "haben gelegen", "fand": "hat gefunden", "fanden": "haben gefunden",
    "nahm": "hat genommen", "nahmen": "haben genommen", "blieb": "ist geblieben",
    "blieben": "sind geblieben", "fiel": "ist gefallen", "fielen": "sind gefallen",
    "hielt": "hat gehalten", "hielten": "haben gehalten", "rief": "hat gerufen",
    "riefen": "haben gerufen", "lief": "ist gelaufen", "liefen": "sind gelaufen",
    "schrieb": "hat geschrieben", "schrieben": "haben geschrieben", "sprach": "hat gesprochen",
    "sprachen": "haben gesprochen", "trug": "hat getragen", "trugen": "haben getragen",
    "zog": "ist gezogen", "zogen": "sind gezogen", "wusste": "hat gewusst",
    "wussten": "haben gewusst", "brachte": "hat gebracht", "brachten": "haben gebracht",
    "dachte": "hat gedacht", "dachten": "haben gedacht", "kannte": "hat gekannt",
    "kannten": "haben gekannt", "nannte": "hat genannt", "nannten": "haben genannt",
    "saß": "hat gesessen", "saßen": "haben gesessen", "begann": "hat begonnen",
    "begannen": "haben begonnen", "entstand": "ist entstanden", "entstanden": "sind entstanden",
    "bekam": "hat bekommen", "bekamen": "haben bekommen", "erhielt": "hat erhalten",
    "erhielten": "haben erhalten", "fuhr": "ist gefahren", "fuhren": "sind gefahren",
    "flog": "ist geflogen", "flogen": "sind geflogen", "wuchs": "ist gewachsen",
    "wuchsen": "sind gewachsen", "stieg": "ist gestiegen", "stiegen": "sind gestiegen",
    "traf": "hat getroffen", "trafen": "haben getroffen", "half": "hat geholfen",
    "halfen": "haben geholfen", "starb": "ist gestorben", "starben": "sind gestorben",
    "verlor": "hat verloren", "gewann": "hat gewonnen", "schien": "hat geschienen",
    "trat": "ist getreten", "traten": "sind getreten", "aß": "hat gegessen",
    "trank": "hat getrunken", "schlief": "hat geschlafen", "sang": "hat gesungen",
}  # fmt: skip
# "entstanden" is also the participle: after "ist", "sind" … it is already the perfect.
SEIN = _words("bin bist ist sind seid war waren")


def _simple_past(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    """A verb of ``SIMPLE_PAST`` in lower case or first in the sentence (capitalised inside a
    sentence, "Waren", "Sprachen", "Stand" are nouns). Regular verbs ("sagte", "baute") are not
    recognised: without a dictionary "-te" cannot be told from an adjective ("die bekannte") or
    a noun ("die Rente")."""
    hits = []
    tokens = sentence.tokens
    for i, tok in enumerate(tokens):
        perfect = SIMPLE_PAST.get(tok.lower)
        if not perfect or (i > 0 and tok.text[0].isupper()):
            continue
        if tok.lower == "entstanden" and any(t.lower in SEIN for t in tokens[:i]):
            continue
        hits.append(Hit(tok.start, tok.end, f"Im Perfekt schreiben: „{perfect}“."))
    return hits


# -- written-register words --------------------------------------------------------------------

WRITTEN_REGISTER = {
    "jedoch": "aber", "allerdings": "aber", "hingegen": "aber", "wiederum": "aber",
    "zudem": "außerdem", "ferner": "außerdem", "sowie": "und", "bereits": "schon",
    "somit": "also", "demnach": "also", "folglich": "deshalb", "daher": "deshalb",
    "dennoch": "trotzdem", "ebenfalls": "auch", "lediglich": "nur", "zunächst": "zuerst",
    "anschließend": "danach", "stets": "immer", "ohnehin": "sowieso", "derzeit": "jetzt",
    "mittlerweile": "jetzt", "inzwischen": "jetzt", "bislang": "bis jetzt",
    "überwiegend": "meistens", "vielerorts": "an vielen Orten", "zahlreiche": "viele",
    "zahlreichen": "vielen", "insgesamt": "zusammen", "etwa": "ungefähr oder zum Beispiel",
    "jedenfalls": "auf jeden Fall", "womöglich": "vielleicht", "vermutlich": "vielleicht",
    "keineswegs": "gar nicht", "beziehungsweise": "oder", "nämlich": "weglassen oder „denn“",
    "zwar": "weglassen und zwei Sätze schreiben", "sogenannte": "weglassen und das Wort erklären",
    "sogenannten": "weglassen und das Wort erklären",
    "sogenannter": "weglassen und das Wort erklären",
    "sogenanntes": "weglassen und das Wort erklären",
}  # fmt: skip


# "so genannte" in two words means the same as "sogenannte".
SO_CALLED_RE = re.compile(r"\bso\s+genannte[nrs]?\b", re.IGNORECASE)


def _written_register(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    hits = [
        Hit(t.start, t.end, f"Einfacher: „{WRITTEN_REGISTER[t.lower]}“.")
        for t in sentence.tokens
        if t.lower in WRITTEN_REGISTER
    ]
    hits.extend(
        Hit(m.start(), m.end(), "Einfacher: „weglassen und das Wort erklären“.")
        for m in SO_CALLED_RE.finditer(sentence.text)
    )
    return hits


# -- special characters ------------------------------------------------------------------------

SPECIAL_RE = re.compile(r"%|\bProzent\b|[()\[\]{}&/…„“\"«»]|\.\.\.")


def _special(sentence: Sentence, config: RuleConfig) -> list[Hit]:
    hits = []
    for m in SPECIAL_RE.finditer(sentence.text):
        if m.group() in ("%", "Prozent"):
            hint = "Prozent: besser „viele“, „wenige“ oder „die Hälfte“ – wenn die Zahl nicht wichtig ist."
        else:
            hint = "Sonderzeichen vermeiden."
        hits.append(Hit(m.start(), m.end(), hint))
    return hits


RULES: tuple[Rule, ...] = (
    Rule("satzlaenge", "Satz zu lang", "Kurze Sätze: höchstens 15 Wörter, besser 8 bis 10.", 0.5, _length),
    Rule("mehrere_aussagen", "Mehr als eine Aussage", "Jeder Satz enthält nur eine Aussage – keine Nebensätze, keine verbundenen Hauptsätze.", 1.0, _statements),
    Rule("passiv", "Passiv", "Aktiv schreiben: sagen, wer etwas tut.", 0.25, _passive),
    Rule("verneinung", "Verneinung", "Verneinungen sind schwer zu verstehen; wenn möglich positiv formulieren.", 0.25, _negation),
    Rule("genitiv", "Genitiv", "Keinen Genitiv verwenden: „das Haus von meinem Bruder“ statt „das Haus meines Bruders“.", 0.25, _genitive),
    Rule("konjunktiv", "Konjunktiv", "Keine Möglichkeitsform (wäre, hätte, könnte …): klar sagen, was gilt.", 1.5, _subjunctive),
    Rule("abkuerzung", "Abkürzung", "Abkürzungen ausschreiben oder beim ersten Mal erklären.", 1.75, _abbreviation),
    Rule("zahlwort", "Zahl als Wort", "Zahlen als Ziffern schreiben: 7 statt „sieben“.", 0.75, _number_word),
    Rule("langes_wort", "Langes Wort", "Lange zusammengesetzte Wörter mit dem Mediopunkt trennen: Bürger·amt.", 0.5, _long_word),
    Rule("schweres_wort", "Schweres Wort", "Fachwörter, Behördendeutsch und Fremdwörter erklären oder ersetzen.", 1.25, _hard_word),
    Rule("fuerwort", "Fürwort", "Fürwörter wie er, sie, ihm, sein: besser das Nomen wiederholen, damit klar ist, wer gemeint ist.", 1.0, _pronoun),
    Rule("vergangenheit", "Präteritum", "Vergangenes im Perfekt sagen: „hat gesagt“ statt „sagte“, „ist gegangen“ statt „ging“.", 0.25, _simple_past),
    Rule("gehobenes_wort", "Gehobenes Wort", "Wörter der Schriftsprache (jedoch, bereits, zudem, sogenannt …) durch Alltagswörter ersetzen: aber, schon, außerdem.", 2.0, _written_register),
    Rule("sonderzeichen", "Sonderzeichen oder Prozent", "Keine Sonderzeichen (Klammern, Schrägstrich, Anführungszeichen, Semikolon); Prozentangaben vermeiden.", 1.75, _special),
)  # fmt: skip
