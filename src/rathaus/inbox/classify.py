"""Readable rules for the parts of triage that need no history: language, request type,
urgency and instructions to the AI hidden in a letter.

Each function returns its answer together with the reasons (the words that decided), so the
review page can say *why*. The learned classifier (see :mod:`rathaus.inbox.router`) may override
request type and urgency only where history has labels for them; the rules always run.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

REQUEST_TYPES = (
    "Antrag",
    "Anfrage",
    "Beschwerde",
    "Meldung",
    "Widerspruch",
    "Rechnung",
    "Sonstiges",
)
URGENCIES = ("normal", "hoch", "kritisch")


@dataclass(frozen=True)
class Verdict:
    """A label with a rough confidence (0..1) and the evidence for it."""

    label: str
    confidence: float
    reasons: tuple[str, ...] = ()


# -- language --------------------------------------------------------------------------------

# Function words and question words per language. A word that is also common German ("was",
# "an", "will", "am", "in") is left out of the other lists, so a short German question never
# looks foreign; English "I" is counted only as a capital letter (Polish "i" means "and").
_STOPWORDS = {
    "de": "der die das und ist nicht ich sie wir ein eine einen mit für auf den dem des bitte "
    "sehr geehrte damen herren vom zum zur wurde wird haben habe auch noch bei über wie wo "
    "wann warum welche welcher welches brauche kann muss möchte mein meine meinen meinem "
    "meiner bin bekomme mich mir uns kostet dafür aber wer einer sich im von dass sind "
    "werden werde kein keine schon jetzt vielen dank",
    "en": "the and is not you we a with for on of to please dear my your this that have has "
    "were would can could from about how what where when which who why do does me need want "
    "should must get are our it",
    "fr": "le la les et est pas je vous nous un une avec pour sur des du de mon ma mes "
    "madame monsieur bonjour merci comment où quand quel quelle quels ai suis dois peux "
    "faire au aux que qui ce il elle j d l qu",
    "tr": "ve bir bu için ile değil ben siz biz çok da de mi mı mu mü merhaba lütfen "
    "teşekkürler nasıl ne nerede neden hangi var yok",
    "it": "il lo la gli le e è non io voi noi un una con per su del della buongiorno grazie "
    "come dove quando perché ho sono mio mia posso devo",
    "pl": "i w nie jest się na że to z do jak dzień dobry proszę dziękuję czy co gdzie mam "
    "jestem mój moja",
    "es": "el la los las y es no yo usted nosotros un una con para por del hola gracias cómo "
    "como dónde cuándo qué mi mis puedo tengo necesito quiero se lo al",
}
_STOP = {lang: set(words.split()) for lang, words in _STOPWORDS.items()}
# Letters that only one of the languages above writes (ö and ü are German and Turkish, ç
# French and Turkish).
_LETTERS = {
    "de": "ßä",
    "tr": "ığş",
    "pl": "ąęłśźżćń",
    "es": "ñ¿¡",
    "fr": "èêœùûîïëâ",
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SCRIPTS = (
    ("ar", re.compile(r"[\u0600-\u06FF]")),
    ("ru", re.compile(r"[\u0400-\u04FF]")),
    ("el", re.compile(r"[\u0370-\u03FF]")),
)
# Cyrillic: letters only Ukrainian or only Russian writes, then common words of either.
_UKRAINIAN = re.compile(r"[іїєґІЇЄҐ]")
_RUSSIAN = re.compile(r"[ыэъёЫЭЪЁ]")
_CYRILLIC_WORDS = {
    "uk": "як яка який яке які що це буде мені мене чи та й",
    "ru": "как какая какой какое какие что это будет мне меня ли",
}
_UK_WORDS, _RU_WORDS = (frozenset(_CYRILLIC_WORDS[code].split()) for code in ("uk", "ru"))


def _cyrillic(sample: str) -> str:
    if _UKRAINIAN.search(sample):
        return "uk"
    if _RUSSIAN.search(sample):
        return "ru"
    words = [w.lower() for w in _WORD.findall(sample)]
    uk = sum(w in _UK_WORDS for w in words)
    return "uk" if uk > sum(w in _RU_WORDS for w in words) else "ru"


def detect_language(text: str) -> Verdict:
    """ISO 639-1 code of the text's language; German when the text gives too little evidence.

    Counts function and question words per language (two needed) and letters that only one
    language writes (worth two words), so a short question ("How do I get a new ID card?",
    "Yarın hava nasıl olacak?") is recognised too."""
    sample = text[:5000]
    letters = [c for c in sample if c.isalpha()]
    if letters:
        for code, script in _SCRIPTS:
            share = len(script.findall(sample)) / len(letters)
            if share > 0.3:
                if code == "ru":
                    code = _cyrillic(sample)
                return Verdict(code, min(1.0, 0.5 + share), ("Schriftzeichen",))
    raw = _WORD.findall(sample)
    words = [w.lower() for w in raw]
    hits = Counter({lang: sum(w in stop for w in words) for lang, stop in _STOP.items()})
    hits["en"] += sum(w == "I" for w in raw)
    lowered = sample.lower()
    for lang, own in _LETTERS.items():
        if any(c in lowered for c in own):
            hits[lang] += 2
    (best, top), *rest = hits.most_common() or [("de", 0)]
    second = rest[0][1] if rest else 0
    if top < 2 or top <= second:
        return Verdict("de", 0.3, ("zu wenig Text",))
    return Verdict(best, round(min(1.0, top / max(1, top + second)), 3), ())


# -- request type ------------------------------------------------------------------------------

# Checked in this order: the first type with a hit in the subject wins, then the body's scores.
_TYPE_PATTERNS: dict[str, tuple[str, ...]] = {
    "Widerspruch": (
        r"\bwiderspruch\b",
        r"\blege\w*\s+(?:ich|wir)\s+(?:hiermit\s+)?widerspruch",
        r"\beinspruch\b",
        r"\bwiderspreche\b",
    ),
    "Rechnung": (
        r"\brechnung(?:s-?nr|snummer|sbetrag)?\b",
        r"\bzahlbar\s+bis\b",
        r"\bbitte\s+überweisen\b",
        r"\bnetto\b.*\bmwst\b|\bust\.?\b",
        r"\bgutschrift\b",
    ),
    "Beschwerde": (
        r"\bbeschwerde\b",
        r"\bbeschwer(?:e|en)\s+(?:mich|uns)\b",
        r"\bunzumutbar\w*",
        r"\bverärgert\b|\bempört\b|\bfrechheit\b",
        r"\bdienstaufsichtsbeschwerde\b",
        r"\b(?:lärm|ruhestörung|belästigung)\w*",
        r"\bschon\s+wieder\b|\berneut\s+nicht\b|\bständig\w*|\bimmer\s+wieder\b",
        r"\bnicht\s+(?:geleert|abgeholt|erledigt|bearbeitet|reagiert)\b",
        r"\bcomplaint\b",
    ),
    "Antrag": (
        r"\bantrag\b",
        r"\bbeantrag\w*",
        r"\banmeld\w*",
        r"\bummeld\w*",
        r"\banzeige\s+(?:eines|des)\s+gewerbe",
        r"\bgenehmigung\b",
        r"\bbitte\s+um\s+(?:erteilung|ausstellung|genehmigung|verlängerung)",
        r"\bterminvereinbarung\b|\btermin\s+(?:für|zur)\b",
        r"\bvormerkung\b|\bverlängerung\b|\bausstellung\b|\b\w+anzeige\b",
        r"\b(?:application|extension|renewal|apply)\b|\bbaşvuru\w*",
    ),
    "Meldung": (
        r"\bmelde\b|\bmeldung\b|\bmöchte\s+\w*\s*melden\b",
        r"\b(?:defekt|kaputt|beschädigt|ausgefallen|verstopft|umgestürzt)\w*",
        r"\bschlagloch\b|\bstraßenlaterne\b|\billegal\w*\s+(?:müll|abgelagert)",
        r"\bwilder?\s+müll\b|\bsperrmüll\s+(?:liegt|steht)",
        r"\b(?:abgeladen|gebrochen|umgekippt|überflutet|wasserrohrbruch|glätte|glatteis)\b",
        r"\b(?:liegt|steht)\s+(?:auf|mitten)\s+(?:der|dem)\s+(?:fahrbahn|straße|gehweg)",
        r"\bgefunden\b|\bverloren\b|\bfundsache\b",
        r"\bsorge\s+um\b|\bhinweis\s+auf\b",
    ),
    "Anfrage": (
        r"\?",
        r"\banfrage\b",
        r"\b(?:können|könnten|würden)\s+sie\s+mir\s+(?:sagen|mitteilen)",
        r"\bich\s+(?:möchte|wollte)\s+(?:gerne\s+)?wissen\b",
        r"\bbitte\s+um\s+(?:auskunft|information|rückmeldung)\b",
        r"\bwelche\s+unterlagen\b|\bwie\s+lange\b|\bwann\b",
        r"\bfrage\b|\bsachstand\w*|\bist\s+es\s+möglich\b|\bmöglich\s*\?",
    ),
}
_TYPE_RES = {t: [re.compile(p, re.I) for p in ps] for t, ps in _TYPE_PATTERNS.items()}


def classify_request_type(subject: str, body: str) -> Verdict:
    """The kind of request: Antrag, Anfrage, Beschwerde, Meldung, Widerspruch, Rechnung, Sonstiges."""
    for kind, patterns in _TYPE_RES.items():
        for pattern in patterns:
            if kind == "Anfrage" and pattern.pattern == r"\?":
                continue
            m = pattern.search(subject or "")
            if m:
                return Verdict(kind, 0.85, (f"Betreff: „{m.group(0).strip()}“",))
    scores: dict[str, list[str]] = {}
    for kind, patterns in _TYPE_RES.items():
        for pattern in patterns:
            found = pattern.findall(body or "")
            if found:
                scores.setdefault(kind, []).extend(
                    str(f).strip() for f in found[:3] if str(f).strip()
                )
    if not scores:
        return Verdict("Sonstiges", 0.4, ())
    order = list(_TYPE_RES)
    # Weight: number of distinct evidence words; ties go to the more specific (earlier) type.
    best = max(scores, key=lambda k: (len(set(scores[k])), -order.index(k)))
    if best == "Anfrage" and len(set(scores[best])) == 1 and len(scores) > 1:
        best = max(
            (k for k in scores if k != "Anfrage"),
            key=lambda k: (len(set(scores[k])), -order.index(k)),
        )
    evidence = tuple(dict.fromkeys(f"„{w}“" for w in scores[best]))[:4]
    return Verdict(best, round(min(0.8, 0.45 + 0.1 * len(evidence)), 2), evidence)


# -- urgency -----------------------------------------------------------------------------------

_DANGER = re.compile(
    r"\b(?:lebensgefahr\w*|gefahr\s+für\s+leib|akute\s+gefahr|einsturz\w*|einsturzgefahr|"
    r"gasgeruch|riecht\s+nach\s+gas|brand\w*|feuer|stromschlag|offene\s+(?:kabel|leitung)\w*|"
    r"umgestürzt\w*|droht\s+(?:umzustürzen|einzustürzen)|verletz\w*|unfall\w*|"
    r"wasserrohrbruch|überschwemm\w*|hochwasser|glatteis|ampel\w*\s+(?:ist\s+)?ausgefallen|"
    r"kind\w*\s+(?:in\s+gefahr|gefährdet)|kindeswohl\w*|suizid\w*|obdachlos\w*|"
    r"sofort\s+(?:handeln|eingreifen)|notfall|(?:baum|ast|mast)\w*\s+(?:liegt\s+)?auf\s+"
    r"(?:der\s+)?fahrbahn|spielplatz\w*.{0,60}(?:gebrochen|scharfe\s+kanten|splitter)|"
    r"wasser\s+tritt\s+aus|kind\w*\s+(?:allein|alleine|schreit|verwahrlost\w*)|verwahrlos\w*)\b",
    re.I,
)
_VULNERABLE = re.compile(
    r"\b(?:pflegebedürftig\w*|pflegegrad|rollstuhl\w*|schwerbehindert\w*|behinderung|"
    r"alleinerziehend\w*|schwanger\w*|hochbetagt\w*|demenz\w*|räumungsklage|zwangsräumung|"
    r"wohnungslos\w*|ohne\s+heizung|\d{2}-jährig\w*|glätte|strom\s+(?:abgestellt|gesperrt)|mittellos|kein\s+geld)\b",
    re.I,
)
_LEGAL = re.compile(
    r"\b(?:widerspruchsfrist|einspruchsfrist|klagefrist|rechtsbehelfsbelehrung|fristablauf|"
    r"frist\s+(?:läuft|endet)|fristwahrend|widerspruchsverfahren|läuft\s+\w*\s*ab|"
    r"expires?|abflug|dringend|eilig|eilt)\b",
    re.I,
)


def classify_urgency(
    text: str,
    *,
    deadlines: list[str],
    today: str,
    legal_deadlines: list[str] = (),  # type: ignore[assignment]
) -> Verdict:
    """``kritisch`` (danger to people), ``hoch`` (a deadline within 14 days, a running
    Widerspruchs- or Einspruchsfrist ending within 31 days, a vulnerable person, words of a legal
    period) or ``normal``. ``deadlines``, ``legal_deadlines`` and ``today`` are ISO dates."""
    danger = sorted({m.group(0) for m in _DANGER.finditer(text)})
    if danger:
        return Verdict("kritisch", 0.8, tuple(f"Gefahr: „{w}“" for w in danger[:4]))
    reasons: list[str] = []
    soon = [d for d in deadlines if today <= d <= _plus_days(today, 14)]
    if soon:
        reasons.append(f"Frist am {min(soon)}")
    legal = [d for d in legal_deadlines if today <= d <= _plus_days(today, 31)]
    if legal:
        reasons.append(f"Rechtsbehelfsfrist bis {min(legal)}")
    reasons += [f"Rechtsfrist: „{m.group(0)}“" for m in _LEGAL.finditer(text)][:2]
    reasons += [f"schutzbedürftig: „{m.group(0)}“" for m in _VULNERABLE.finditer(text)][:2]
    if reasons:
        return Verdict("hoch", 0.7, tuple(dict.fromkeys(reasons)))
    return Verdict("normal", 0.6, ())


def _plus_days(iso: str, days: int) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(iso) + timedelta(days=days)).isoformat()


# -- instructions to the AI --------------------------------------------------------------------
# The screening itself lives in :mod:`rathaus.governance.injection` (rules plus a classifier);
# this name stays for the callers and tests that know it.


@dataclass
class InjectionFinding:
    found: bool
    snippets: list[str] = field(default_factory=list)
    score: float = 0.0
    reason: str = ""


def find_instructions_to_ai(text: str) -> InjectionFinding:
    """Passages that address the AI instead of the administration ("ignoriere alle vorherigen
    Anweisungen", "route to …"). A finding never changes what the pipeline does except that the
    case is not routed automatically, gets no model-written reply and is flagged for a person."""
    from rathaus.governance.injection import screen

    result = screen(text)
    return InjectionFinding(result.found, list(result.snippets), result.score, result.reason)
