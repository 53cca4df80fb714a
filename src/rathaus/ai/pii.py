"""Find personal data in German administrative texts and replace it with reversible placeholders.

Deterministic and offline: precompiled regular expressions, checksums (IBAN ISO 13616 mod 97,
Steuer-ID ISO 7064 mod 11,10) and a small list of German first names. No model is loaded.

Contract: `detect_pii(text)` returns non-overlapping spans sorted by position; where recognisers
disagree the more specific one wins (higher score), then the longer one. `pseudonymize` replaces
each span with a placeholder such as `[PERSON_1]`; the same value always gets the same placeholder,
also across calls that share one mapping (one mapping per case). `reidentify` reverses it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

PERSON = "PERSON"
ADDRESS = "ADDRESS"
IBAN = "IBAN"
PHONE = "PHONE"
EMAIL = "EMAIL"
DATE_OF_BIRTH = "DATE_OF_BIRTH"
TAX_ID = "TAX_ID"
AKTENZEICHEN = "AKTENZEICHEN"
PLATE = "PLATE"

KINDS = (PERSON, ADDRESS, IBAN, PHONE, EMAIL, DATE_OF_BIRTH, TAX_ID, AKTENZEICHEN, PLATE)


@dataclass(frozen=True)
class PiiSpan:
    """One finding: `text == source[start:end]`; `score` in (0, 1] ranks competing findings."""

    start: int
    end: int
    kind: str
    text: str
    score: float


# ---------------------------------------------------------------------------------------------
# Checksums


# IBAN lengths of the countries a German municipality meets most; others: 15–34 characters.
_IBAN_LENGTHS = {
    "DE": 22, "AT": 20, "CH": 21, "LI": 21, "NL": 18, "BE": 16, "LU": 20, "FR": 27, "IT": 27,
    "ES": 24, "PL": 28, "CZ": 24, "DK": 18, "GB": 22, "IE": 22, "PT": 25, "TR": 26, "UA": 29,
    "HR": 21, "HU": 28, "RO": 24, "SE": 24, "NO": 15, "FI": 18, "GR": 27, "SI": 19, "SK": 24,
}  # fmt: skip


def iban_is_valid(iban: str) -> bool:
    """ISO 13616: country code, two check digits, BBAN; the rearranged number mod 97 is 1."""
    compact = re.sub(r"\s+", "", iban).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def normalize_iban(iban: str) -> str:
    """Upper case, grouped in fours as printed on paper: `DE89 3704 0044 0532 0130 00`."""
    compact = re.sub(r"\s+", "", iban).upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def steuer_id_is_valid(value: str) -> bool:
    """Steuerliche Identifikationsnummer: 11 digits, no leading 0, ISO 7064 MOD 11,10 check digit.

    Among the first ten digits exactly one digit occurs two or three times (the rule since 2016;
    numbers from before allow only twice, which this includes).
    """
    digits = re.sub(r"\s+", "", value)
    if not re.fullmatch(r"[1-9]\d{10}", digits):
        return False
    counts = [digits[:10].count(d) for d in set(digits[:10])]
    repeated = [c for c in counts if c > 1]
    if len(repeated) != 1 or repeated[0] > 3:
        return False
    product = 10
    for ch in digits[:10]:
        total = (int(ch) + product) % 10 or 10
        product = (total * 2) % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(digits[10])


# ---------------------------------------------------------------------------------------------
# Patterns

_UP = "A-ZÄÖÜ"
_LOW = "a-zäöüß"
_DATE = r"(?:\d{1,2}\.\s?\d{1,2}\.\s?(?:19|20)\d{2}|(?:19|20)\d{2}-\d{2}-\d{2}|\d{1,2}\.\s?(?:Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember)\s(?:19|20)\d{2})"

_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b"
)
_IBAN_RE = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?\b")
_PHONE_RE = re.compile(
    r"(?<![\w+/.,-])"
    r"(?:(?:\+|00)49[ \t]?(?:\(0\)[ \t]?)?[1-9]\d{1,4}|\(0[1-9]\d{1,4}\)|0[1-9]\d{1,4})"
    r"(?:[ \t]?[/-]?[ \t]?\d{2,8}){1,3}"
    r"(?![\d,.]\d|[\d])"
)
_PHONE_LABEL_RE = re.compile(
    r"(?:Tel|Telefon|Fon|Fax|Mobil|Handy|Rückruf|Phone|тел)\.?:?\s*$", re.I
)
_DOB_RE = re.compile(
    r"(?:\b[Gg]eb\.|\b[Gg]eboren(?:\s+am)?|\bGeburtsdatum|\bGeb\.-Datum|\b[Bb]orn(?:\s+on)?|\bDOB"
    r"|народи\w*)[:\s]*(?:am\s+|ca\.\s+)?(" + _DATE + r")"
)
_TAX_ID_RE = re.compile(r"(?<![\d.,/-])[1-9]\d(?: ?\d{3}){3}(?![\d,.]\d|\d)")
_STEUERNUMMER_RE = re.compile(
    r"(?:Steuer-?(?:nummer|nr\.?)|St\.?-?Nr\.?)[:\s]*(\d{2,3}/\d{3,4}/\d{4,5}|\d{5}/\d{5}|\d{10,13})"
    r"|(?<![\d/])(\d{2,3}/\d{3,4}/\d{4,5})(?![\d/])",
    re.I,
)
_VAT_RE = re.compile(
    r"(?:USt-?Id(?:Nr\.?)?|Umsatzsteuer-Identifikationsnummer)[:.\s]*(DE ?\d{9})\b", re.I
)
_AZ_LABEL_RE = re.compile(
    r"(?:\bAz\.|\bAktenzeichen|\bGeschäftszeichen|\b(?:Ihr|Unser|Mein)e?s?\s+Zeichen|\bKassenzeichen"
    r"(?:\s+\w+)?|\bfile number|\bVorgangsnummer|номер справи[^:\n]{0,30})"
    r"[:\s]+(?:\w{2,12}\s+Az\.\s*)?"
    r"([0-9A-Za-zÄÖÜäöü][0-9A-Za-zÄÖÜäöü./\-]*[0-9A-Za-z](?: [A-Za-z]{1,4}/[A-Za-z]{1,4}\b)?)"
)
_AZ_SHAPE_RE = re.compile(
    r"(?<![\w.-])(?:\d{1,3}(?:\.\d{1,2})?-)?[A-Z][A-Za-z]{1,4}-20\d{2}-\d{3,6}(?![\w-])"
)
_PLATE_RE = re.compile(r"(?<![\w-])[A-ZÄÖÜ]{1,3}-[A-Z]{1,2}[ -]?[1-9]\d{0,3}[EH]?(?![\w-])")
_PLATE_SPACED_RE = re.compile(
    r"(?:Kennzeichen|Kfz|Fahrzeug|amtl\.)[^\n]{0,25}?(?<![\w-])([A-ZÄÖÜ]{1,3} [A-Z]{1,2} ?[1-9]\d{0,3}[EH]?)(?![\w-])"
)

_STREET_SUFFIX = (
    r"(?:stra(?:ß|ss)e|str\.|weg|gasse|allee|platz|ring|damm|ufer|chaussee|steig|stieg|pfad|markt"
    r"|grund|berg|hof|park|anger|graben|wall|promenade|zeile|kamp|feld|garten|winkel|bogen|brücke"
    r"|hang|wiese|brink|steige|gässle|gässchen)"
)
_STREET_WORD = (
    r"(?:Straße|Strasse|Str\.|Weg|Gasse|Allee|Platz|Ring|Damm|Ufer|Chaussee|Steig|Pfad|Markt|Berg)"
)
_HOUSE_NO = r"[1-9]\d{0,3}(?: ?[a-h]\b)?(?: ?[-–/] ?[1-9]\d{0,3}[a-h]?)?"
_STREET = (
    rf"(?:(?:[{_UP}][{_LOW}]+-)*[{_UP}][{_LOW}]*{_STREET_SUFFIX}"
    rf"|(?:[{_UP}][{_LOW}]+[- ]){{1,3}}{_STREET_WORD}"
    rf"|(?:Am|An der|An den|Auf der|Auf dem|Hinter der|Hinter dem|Zum|Zur|Unter den|Alte|Alter|Neue|Neuer)"
    rf" [{_UP}][{_LOW}]+(?:-[{_UP}][{_LOW}]+)*)"
)
_PLZ_CITY = rf"(?:D-)?\d{{5}}[ \t]+[{_UP}][{_LOW}]+(?:[- ][{_UP}][{_LOW}]+)?(?:(?: am| an der| im| bei| ob der)[ \t][{_UP}][{_LOW}]+)?"
_ADDRESS_RE = re.compile(
    rf"(?<![\w-])(?P<street>{_STREET})[ \t]+(?P<no>{_HOUSE_NO})"
    rf"(?![\w,.]\d|\d| ?(?:€|%|Euro|EUR|Uhr|Jahre|Std|Stunden|Tage|Monate|Wochen|m\b|km\b|cm\b|l\b|t\b|kg\b))"
    rf"(?:(?:[ \t]*[,·;|][ \t]*|[ \t]*\n[ \t]*|[ \t]+)(?:(?:Whg\.|Wohnung|App\.|\d\.\s?OG|EG)[^,\n·]{{0,12}},[ \t]*)?(?P<city>{_PLZ_CITY}))?"
)
_PLZ_CITY_RE = re.compile(rf"(?<![\w.,-]){_PLZ_CITY}\b")
_NOT_A_STREET = {
    "Am Montag", "Am Dienstag", "Am Mittwoch", "Am Donnerstag", "Am Freitag", "Am Samstag",
    "Am Sonntag", "Am Wochenende", "Am Anfang", "Am Ende", "Zum Beispiel", "Zur Zeit",
}  # fmt: skip

# Common German first names (and some frequent in German municipalities), written for this file.
_FIRST_NAMES = frozenset(
    [
        "Achim",
        "Ahmad",
        "Ahmet",
        "Alexander",
        "Alexandra",
        "Ali",
        "Alina",
        "Andrea",
        "Andreas",
        "Angelika",
        "Anja",
        "Anke",
        "Anna",
        "Anne",
        "Annette",
        "Anton",
        "Antonia",
        "Ayşe",
        "Barbara",
        "Bastian",
        "Ben",
        "Benjamin",
        "Bernd",
        "Bettina",
        "Birgit",
        "Björn",
        "Brigitte",
        "Carina",
        "Carla",
        "Carsten",
        "Charlotte",
        "Christa",
        "Christian",
        "Christina",
        "Christine",
        "Christoph",
        "Claudia",
        "Clara",
        "Daniel",
        "Daniela",
        "Dennis",
        "Dieter",
        "Dirk",
        "Doris",
        "Dorothea",
        "Elena",
        "Elfriede",
        "Elias",
        "Elisabeth",
        "Ella",
        "Emil",
        "Emilia",
        "Emily",
        "Emma",
        "Erich",
        "Erika",
        "Ernst",
        "Eva",
        "Fabian",
        "Felix",
        "Finn",
        "Florian",
        "Frank",
        "Franz",
        "Franziska",
        "Friedrich",
        "Frieda",
        "Gabriele",
        "Georg",
        "Gerhard",
        "Gertrud",
        "Gisela",
        "Giovanni",
        "Gudrun",
        "Günter",
        "Günther",
        "Hanna",
        "Hannah",
        "Hannes",
        "Hans",
        "Harald",
        "Hasan",
        "Heike",
        "Heinz",
        "Heinrich",
        "Helga",
        "Helmut",
        "Herbert",
        "Hildegard",
        "Horst",
        "Hüseyin",
        "Ibrahim",
        "Ines",
        "Ingrid",
        "Iris",
        "Irina",
        "Iryna",
        "Jan",
        "Jana",
        "Janina",
        "Jannik",
        "Jens",
        "Jonas",
        "Jonathan",
        "Johanna",
        "Johannes",
        "Jörg",
        "Josef",
        "Julia",
        "Julian",
        "Juliane",
        "Jürgen",
        "Jutta",
        "Kai",
        "Karin",
        "Karl",
        "Karl-Heinz",
        "Karla",
        "Katharina",
        "Katja",
        "Katrin",
        "Kerstin",
        "Kevin",
        "Klaus",
        "Konrad",
        "Kristina",
        "Lara",
        "Laura",
        "Lea",
        "Lena",
        "Leon",
        "Leonie",
        "Lina",
        "Lisa",
        "Lotta",
        "Louis",
        "Luca",
        "Lucas",
        "Luis",
        "Luise",
        "Lukas",
        "Luisa",
        "Manfred",
        "Manuel",
        "Manuela",
        "Marco",
        "Maria",
        "Marie",
        "Marina",
        "Mario",
        "Marion",
        "Marius",
        "Markus",
        "Marko",
        "Martin",
        "Martina",
        "Mathias",
        "Matthias",
        "Max",
        "Maximilian",
        "Mehmet",
        "Melanie",
        "Mia",
        "Michael",
        "Michaela",
        "Miriam",
        "Mohammed",
        "Monika",
        "Mustafa",
        "Nadine",
        "Nicole",
        "Niklas",
        "Nils",
        "Nina",
        "Noah",
        "Nora",
        "Norbert",
        "Oksana",
        "Olaf",
        "Olga",
        "Oliver",
        "Oskar",
        "Otto",
        "Paul",
        "Paula",
        "Peter",
        "Petra",
        "Philipp",
        "Priya",
        "Rainer",
        "Ralf",
        "Regina",
        "Reinhard",
        "Renate",
        "Richard",
        "Rita",
        "Robert",
        "Roland",
        "Rolf",
        "Rosemarie",
        "Ruth",
        "Sabine",
        "Sabrina",
        "Sandra",
        "Sara",
        "Sarah",
        "Sebastian",
        "Simon",
        "Simone",
        "Sofia",
        "Sophia",
        "Sophie",
        "Stefan",
        "Stefanie",
        "Stephan",
        "Susanne",
        "Sven",
        "Svenja",
        "Thomas",
        "Thorsten",
        "Tim",
        "Timo",
        "Tobias",
        "Torsten",
        "Ulrich",
        "Ulrike",
        "Ursula",
        "Ute",
        "Uwe",
        "Valentina",
        "Vanessa",
        "Walter",
        "Werner",
        "Wilhelm",
        "Wolfgang",
        "Yasemin",
        "Yusuf",
        "Zeynep",
    ]
)
_NAME_TOKEN = rf"[{_UP}][{_LOW}]+(?:-[{_UP}][{_LOW}]+)*"
# Any capitalised word; whether it is a first name is a set look-up (faster than a long alternation).
_FIRST_NAME_RE = re.compile(rf"(?<![\w-])[{_UP}][{_LOW}]+(?:-[{_UP}][{_LOW}]+)?(?![\w.-])")
_SURNAME_RE = re.compile(rf"[ \t]+(?:von |van |de |zu )?({_NAME_TOKEN})(?![\w-])")
_SALUTATION_RE = re.compile(
    rf"(?<![\w-])(?:Herrn?|Frau|Hr\.|Fr\.)[ \t]+((?:(?:Dr\.|Prof\.)[ \t]+)*{_NAME_TOKEN}(?:[ \t]+{_NAME_TOKEN})?)"
)
_TITLE_RE = re.compile(rf"(?<![\w-])(?:Dr\.|Prof\.)[ \t]+({_NAME_TOKEN}(?:[ \t]+{_NAME_TOKEN})?)")
_LABEL_PERSON_RE = re.compile(
    r"(?:^|[\n·;])[ \t]*(?:Name|Vor- und Zuname|Antragsteller(?:in)?|Betriebsinhaber(?:in)?|Halter(?:in)?"
    r"|Kind|Schüler(?:in)?|Erziehungsberechtigte[rn]?|Bauherr(?:in|en)?|Eltern|Ansprechpartner(?:in)?"
    r"|Kontoinhaber(?:in)?|Ausgefüllt von|Verstorbene[rn]?|Mieter(?:in)?|Vermieter(?:in)?)"
    r"[ \t]*:[ \t]*([^\n,;(·]{2,60})",
    re.I,
)
_INLINE_PERSON_RE = re.compile(
    r"(?:\bIch,|\bMein Name ist|\bMich heißt|\bMy name is|\bKontoinhaber(?:in)?|\bvertreten durch(?: die| den)?"
    r"(?: Vorsitzende[rn]?| Geschäftsführer(?:in)?)?|\bi\. ?A\.|\bi\. ?V\.|\bGeschäftsführer(?:in)?:|\bTochter|\bSohn"
    r"|\bVerlobter?|\bMann|\bEhemann|\bEhefrau|\bNachbarin|\bNachbar|\bMutter|\bVater|\bbabam|\bJugendleiter(?:in)?)"
    r"[ \t,]+((?:(?:Dr\.|Prof\.)[ \t]+)*[^\W\d_][^\W\d_-]*(?:-[^\W\d_]+)*(?:[ \t]+[^\W\d_][^\W\d_-]*(?:-[^\W\d_]+)*){0,2})"
)
CLOSING_RE = re.compile(
    r"(?im)^[^\n]{0,40}?(?:Mit freundlichen Grüßen|Mit freundlichem Gruß|Freundliche Grüße|Viele Grüße|Beste Grüße"
    r"|Herzliche Grüße|Liebe Grüße|Mit besten Grüßen|Mit sportlichen Grüßen|Hochachtungsvoll|MfG"
    r"|Vielen Dank(?: im Voraus)?|Dankeschön|Danke|Kind regards|Best regards|Regards|Sincerely"
    r"|Yours sincerely|Yours faithfully|Thank you|Saygılarımla|Saygılar|З повагою|Дякую|С уважением)"
    r"[ \t]*[,.!]?[ \t]*\n",
    re.I,
)
_COMPANY_RE = re.compile(
    r"\b(?:GmbH|AG|KG|OHG|GbR|e\. ?V\.|mbH|UG|Verein|Stadt|Gemeinde|Kreis|Amt|Bestattungen|Kanzlei"
    r"|Rechtsanwälte|Steuerberatung|Redaktion|Elternbeirat|Team|Förderverein|Trattoria|Hausverwaltung"
    r"|Partner|Büro|Betrieb|Abteilung\w*|Anlage\w*|Tel\.?|Telefon|Phone)\b",
    re.I,
)
_STOP_NAME_WORDS = frozenset(
    [
        "Stadt",
        "Gemeinde",
        "Damen",
        "Herren",
        "Bürgermeister",
        "Bürgermeisterin",
        "Anlagen",
        "Anlage",
        "Kopie",
        "Bitte",
        "Sehr",
        "Liebe",
        "Lieber",
        "Guten",
        "Hallo",
        "Dear",
        "Hello",
        "Ich",
        "Wir",
        "Sie",
        "Der",
        "Die",
        "Das",
        "Mit",
        "Und",
        "Für",
        "Am",
        "Im",
        "In",
        "Betreff",
        "Musterstadt",
        "Nachbarstadt",
        "Tel",
        "Telefon",
        "Doktor",
        "Kollegin",
        "Kollege",
        "Nachbarin",
        "Nachbar",
    ]
)

_STREET_NAME_END = re.compile(r"(?:stra(?:ß|ss)e|weg|gasse|allee|platz|gemeinschaft)$", re.I)
_TITLES_RE = re.compile(r"(?:(?:Dr|Prof)\.[ \t]+)+")
_WORD_RE = re.compile(r"[^\W\d_][^\W\d_'’]*(?:-[^\W\d_]+)*|\S")


# ---------------------------------------------------------------------------------------------
# Recognisers: each yields candidate spans; `detect_pii` resolves overlaps.


def _span(text: str, start: int, end: int, kind: str, score: float) -> PiiSpan:
    return PiiSpan(start, end, kind, text[start:end], score)


def _emails(text: str) -> Iterator[PiiSpan]:
    for m in _EMAIL_RE.finditer(text):
        yield _span(text, m.start(), m.end(), EMAIL, 0.99)


def _ibans(text: str) -> Iterator[PiiSpan]:
    for m in _IBAN_RE.finditer(text):
        candidate = m.group()
        # The greedy match may swallow a following number group: shorten until it checks out.
        while True:
            if iban_is_valid(candidate):
                yield _span(text, m.start(), m.start() + len(candidate), IBAN, 1.0)
                break
            cut = candidate.rfind(" ")
            if cut < 15:
                break
            candidate = candidate[:cut]


def _phones(text: str) -> Iterator[PiiSpan]:
    # Digit groups of an IBAN (also of a mistyped one) are no phone number.
    iban_like = [(m.start(), m.end()) for m in _IBAN_RE.finditer(text)]
    for m in _PHONE_RE.finditer(text):
        if any(m.start() < end and start < m.end() for start, end in iban_like):
            continue
        digits = re.sub(r"\D", "", m.group())
        if not 6 <= len(digits) <= 15:
            continue
        labelled = _PHONE_LABEL_RE.search(text, max(0, m.start() - 12), m.start()) is not None
        yield _span(text, m.start(), m.end(), PHONE, 0.9 if labelled else 0.75)


def _dates_of_birth(text: str) -> Iterator[PiiSpan]:
    for m in _DOB_RE.finditer(text):
        yield _span(text, m.start(1), m.end(1), DATE_OF_BIRTH, 0.95)


def _tax_ids(text: str) -> Iterator[PiiSpan]:
    for m in _TAX_ID_RE.finditer(text):
        if steuer_id_is_valid(m.group()):
            yield _span(text, m.start(), m.end(), TAX_ID, 1.0)
    for m in _STEUERNUMMER_RE.finditer(text):
        group = 1 if m.group(1) else 2
        yield _span(text, m.start(group), m.end(group), TAX_ID, 0.9 if group == 1 else 0.6)
    for m in _VAT_RE.finditer(text):
        yield _span(text, m.start(1), m.end(1), TAX_ID, 0.9)


def _aktenzeichen(text: str) -> Iterator[PiiSpan]:
    for m in _AZ_LABEL_RE.finditer(text):
        value = m.group(1)
        if any(ch.isdigit() for ch in value):
            yield _span(text, m.start(1), m.end(1), AKTENZEICHEN, 0.88)
    for m in _AZ_SHAPE_RE.finditer(text):
        yield _span(text, m.start(), m.end(), AKTENZEICHEN, 0.7)


def _plates(text: str) -> Iterator[PiiSpan]:
    for m in _PLATE_RE.finditer(text):
        yield _span(text, m.start(), m.end(), PLATE, 0.85)
    for m in _PLATE_SPACED_RE.finditer(text):
        yield _span(text, m.start(1), m.end(1), PLATE, 0.8)


def _addresses(text: str) -> Iterator[PiiSpan]:
    for m in _ADDRESS_RE.finditer(text):
        street = m.group("street")
        if street in _NOT_A_STREET:
            continue
        yield _span(text, m.start(), m.end(), ADDRESS, 0.9 if m.group("city") else 0.8)
    for m in _PLZ_CITY_RE.finditer(text):
        yield _span(text, m.start(), m.end(), ADDRESS, 0.7)


def _name_like(candidate: str) -> int:
    """The length of the name at the start of `candidate` (0 if none).

    A name is one to four capitalised words, optionally after "Dr."/"Prof.", and may join two
    people with "und"/"&" ("Anna und Markus Beispielhaft"). Street names and stop words end it.
    """
    end = 0
    words = 0
    titles = _TITLES_RE.match(candidate)
    for m in _WORD_RE.finditer(candidate, titles.end() if titles else 0):
        token = m.group()
        if token in {"und", "&"} and words:
            continue
        if (
            not token[0].isupper()
            or len(token) < 2
            or token in _STOP_NAME_WORDS
            or (token.isupper() and len(token) > 3)
            or _STREET_NAME_END.search(token)
        ):
            break
        words += 1
        end = m.end()
        if words > 4:
            return 0
    return end


def _persons(text: str) -> Iterator[PiiSpan]:
    for m in _SALUTATION_RE.finditer(text):
        first = m.group(1).split()[0]
        if first not in _STOP_NAME_WORDS:
            yield _span(text, m.start(1), m.end(1), PERSON, 0.85)
    for m in _TITLE_RE.finditer(text):
        yield _span(text, m.start(), m.end(), PERSON, 0.85)
    for m in _FIRST_NAME_RE.finditer(text):
        if m.group() not in _FIRST_NAMES:
            continue
        surname = _SURNAME_RE.match(text, m.end())
        if surname and surname.group(1) not in _STOP_NAME_WORDS:
            yield _span(text, m.start(), surname.end(), PERSON, 0.7)
        else:
            yield _span(text, m.start(), m.end(), PERSON, 0.5)
    for regex, score in ((_LABEL_PERSON_RE, 0.85), (_INLINE_PERSON_RE, 0.75)):
        for m in regex.finditer(text):
            value = m.group(1)
            if _COMPANY_RE.search(value):
                continue
            length = _name_like(value)
            if not length:
                continue
            # After a relation word ("Sohn", "Nachbarin") one word counts only if it is a first name.
            single = " " not in value[:length]
            if regex is _INLINE_PERSON_RE and single and value[:length] not in _FIRST_NAMES:
                continue
            yield _span(text, m.start(1), m.start(1) + length, PERSON, score)
    yield from _signature_names(text)
    yield from _letterhead_name(text)


def _signature_names(text: str) -> Iterator[PiiSpan]:
    for m in CLOSING_RE.finditer(text):
        pos = m.end()
        for _ in range(3):  # the name may follow "für den Elternbeirat" or a company line
            line_end = text.find("\n", pos)
            line_end = len(text) if line_end < 0 else line_end
            line = text[pos:line_end]
            stripped = re.sub(r"^\s*(?:i\.\s?A\.|i\.\s?V\.|ppa\.)\s*", "", line)
            offset = pos + len(line) - len(stripped)
            if stripped and not _COMPANY_RE.search(stripped.split(",")[0]):
                length = _name_like(stripped)
                # The whole line is the name, or the name is followed by ", Rechtsanwalt" or "(Sohn)".
                if length and re.match(r"\s*(?:$|[,(])", stripped[length:]):
                    yield _span(text, offset, offset + length, PERSON, 0.8)
                    break
            if line_end >= len(text):
                break
            pos = line_end + 1


def _letterhead_name(text: str) -> Iterator[PiiSpan]:
    """The sender's name on the first line of a letter, before its address ("Name · Straße 1 · …")."""
    head = text.lstrip()
    offset = len(text) - len(head)
    first_line = head.split("\n", 1)[0]
    segment = re.split(r"\s+[·|•]\s+|,\s*", first_line, maxsplit=1)[0]
    if not segment or _COMPANY_RE.search(segment) or re.search(r"\d", segment):
        return
    length = _name_like(segment)
    if not length or length != len(segment.rstrip()):
        return
    rest = head[len(segment) : len(segment) + 120]
    if _ADDRESS_RE.search(rest) or _PLZ_CITY_RE.search(rest):
        yield _span(text, offset, offset + length, PERSON, 0.8)


_RECOGNISERS = (
    _emails, _ibans, _phones, _dates_of_birth, _tax_ids, _aktenzeichen, _plates, _addresses,
    _persons,
)  # fmt: skip


def _resolve(candidates: Iterable[PiiSpan]) -> list[PiiSpan]:
    """Keep the best non-overlapping spans: higher score first, then the longer one."""
    ranked = sorted(candidates, key=lambda s: (-s.score, -(s.end - s.start), s.start))
    taken: list[PiiSpan] = []
    for span in ranked:
        if span.end <= span.start:
            continue
        if all(span.end <= t.start or span.start >= t.end for t in taken):
            taken.append(span)
    return sorted(taken, key=lambda s: s.start)


def _propagate_names(text: str, spans: list[PiiSpan]) -> list[PiiSpan]:
    """A name found once (e.g. in the signature) is personal data wherever else it appears."""
    names = {s.text for s in spans if s.kind == PERSON and len(s.text) >= 4 and " " in s.text}
    if not names:
        return spans
    pattern = re.compile(
        r"(?<![\w-])(?:"
        + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        + r")(?![\w-])"
    )
    extra = [_span(text, m.start(), m.end(), PERSON, 0.6) for m in pattern.finditer(text)]
    return _resolve([*spans, *extra])


def detect_pii(text: str, kinds: Iterable[str] | None = None) -> list[PiiSpan]:
    """All personal data found in `text`, non-overlapping and sorted by start offset.

    `kinds` restricts the result to some of `KINDS`; overlaps are resolved before filtering, so a
    phone number inside an IBAN never shows up as a phone number.
    """
    if not text:
        return []
    candidates = [span for recogniser in _RECOGNISERS for span in recogniser(text)]
    spans = _propagate_names(text, _resolve(candidates))
    if kinds is not None:
        wanted = set(kinds)
        spans = [s for s in spans if s.kind in wanted]
    return spans


# ---------------------------------------------------------------------------------------------
# Pseudonymisation

_PLACEHOLDER_RE = re.compile(r"\[(" + "|".join(KINDS) + r")_(\d+)\]")


def _value_key(kind: str, value: str) -> str:
    """What makes two surface forms the same value: `DE89 3704…` equals `DE893704…`."""
    if kind in (IBAN, PHONE, TAX_ID):
        compact = re.sub(r"[\s/()-]", "", value).upper()
        return "0" + compact[3:] if kind == PHONE and compact.startswith("+49") else compact
    if kind == EMAIL:
        return value.lower()
    return " ".join(value.split()).casefold()


def pseudonymize(
    text: str, spans: Iterable[PiiSpan], mapping: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Replace each span with a placeholder; return the new text and `placeholder -> value`.

    Pass the mapping of earlier texts of the same case to keep placeholders consistent across them:
    a value already in it gets its placeholder again, a new one the next free number of its kind.
    The given mapping is not modified; a new dict is returned.
    """
    result = dict(mapping or {})
    known: dict[tuple[str, str], str] = {}
    counters: dict[str, int] = {}
    for placeholder, value in result.items():
        m = _PLACEHOLDER_RE.fullmatch(placeholder)
        if m:
            kind, number = m.group(1), int(m.group(2))
            known.setdefault((kind, _value_key(kind, value)), placeholder)
            counters[kind] = max(counters.get(kind, 0), number)
    parts: list[str] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < cursor:
            continue  # overlapping input: the earlier span wins
        key = (span.kind, _value_key(span.kind, span.text))
        placeholder = known.get(key)
        if placeholder is None:
            counters[span.kind] = counters.get(span.kind, 0) + 1
            placeholder = f"[{span.kind}_{counters[span.kind]}]"
            known[key] = placeholder
            result[placeholder] = span.text
        parts.append(text[cursor : span.start])
        parts.append(placeholder)
        cursor = span.end
    parts.append(text[cursor:])
    return "".join(parts), result


def reidentify(text: str, mapping: dict[str, str]) -> str:
    """Put the original values back; placeholders missing from `mapping` stay as they are."""
    return _PLACEHOLDER_RE.sub(lambda m: mapping.get(m.group(), m.group()), text)
