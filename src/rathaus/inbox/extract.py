"""Extract the fields of an incoming item: Aktenzeichen, dates and deadlines, amounts, sender …

Deterministic and offline, built on the recognisers of `rathaus.ai.pii`. Deadlines follow the
usual German rules: a Bescheid sent by post counts as notified on the fourth day after its date
(§ 41 Abs. 2 VwVfG since 2025) unless a delivery date is given; a Widerspruch/Einspruch period of
one month ends on the day of the next month with the same number (§ 188 BGB, the last day of the
month where that day is missing); a period ending on a weekend or a public holiday ends on the
next working day (§ 193 BGB). Letters are addressed TO the municipality: its own address is never
returned as the sender.
"""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from rathaus.ai.pii import (
    ADDRESS,
    AKTENZEICHEN,
    CLOSING_RE,
    EMAIL,
    IBAN,
    PERSON,
    PHONE,
    PLATE,
    PiiSpan,
    detect_pii,
    normalize_iban,
)

NOTIFICATION_DAYS = 4  # § 41 Abs. 2 VwVfG, § 122 AO, § 37 SGB X in the version since 1.1.2025


@dataclass(frozen=True)
class DateMention:
    """A calendar date in the text with the words before it ("Bescheid vom")."""

    date: str  # ISO 8601
    label: str
    text: str
    start: int


@dataclass(frozen=True)
class Deadline:
    """A date by which something must happen: written in the text or computed from a rule."""

    date: str  # ISO 8601
    kind: str  # "explizit", "relativ", "widerspruchsfrist", "einspruchsfrist"
    label: str
    basis: str = ""  # for computed deadlines: the rule and the date it starts from


@dataclass(frozen=True)
class Amount:
    value: str  # Decimal as a string, two decimal places: "1471.60"
    currency: str  # ISO 4217: "EUR"
    text: str


@dataclass(frozen=True)
class Sender:
    name: str | None = None
    address: str | None = None
    email: str | None = None
    phone: str | None = None
    source: str = ""  # "briefkopf", "unterschrift", "formular"


@dataclass
class ExtractedFields:
    aktenzeichen: list[str] = field(default_factory=list)
    dates: list[DateMention] = field(default_factory=list)
    deadlines: list[Deadline] = field(default_factory=list)
    amounts: list[Amount] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    ibans: list[str] = field(default_factory=list)
    plates: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    sender: Sender | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (strings, lists, dicts, None)."""
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Dates

_MONTHS = {
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "april": 4, "mai": 5, "juni": 6,
    "juli": 7, "august": 8, "september": 9, "oktober": 10, "november": 11, "dezember": 12,
}  # fmt: skip
_DATE_RE = re.compile(
    r"(?<![\d.])(?:(?P<d>\d{1,2})\.\s?(?P<m>\d{1,2})\.\s?(?P<y>(?:19|20)?\d{2})(?![\d])"
    r"|(?P<iy>(?:19|20)\d{2})-(?P<im>\d{2})-(?P<id>\d{2})(?!\d)"
    r"|(?P<td>\d{1,2})\.\s?(?P<tm>" + "|".join(_MONTHS) + r")\s+(?P<ty>(?:19|20)\d{2}))",
    re.I,
)
# "09.11.–11.11.2026": the first date of a range borrows the year of the second.
_OPEN_DATE_RE = re.compile(
    r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.\s?[–-]\s?(?=\d{1,2}\.\d{1,2}\.((?:19|20)\d{2}))"
)
_LABEL_WORDS = re.compile(r"[^\W\d_][\w.-]*")
_CLAUSE_BREAK = re.compile(r"[\n;:()\[\]·–]|[.!?]\s|,\s")


def _make_date(year: int, month: int, day: int) -> date | None:
    if year < 100:
        year += 2000
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _label_before(text: str, start: int, words: int = 3) -> str:
    """The last words of the clause before `start`; for "Rechnungsdatum: 12.11.2026" the key."""
    window = text[max(0, start - 80) : start]
    breaks = list(_CLAUSE_BREAK.finditer(window))
    tokens = _LABEL_WORDS.findall(window[breaks[-1].end() :] if breaks else window)
    if not tokens and breaks and breaks[-1].group().strip() in {":", ","}:
        before = window[: breaks[-1].start()]
        earlier = list(_CLAUSE_BREAK.finditer(before))
        tokens = _LABEL_WORDS.findall(before[earlier[-1].end() :] if earlier else before)
    return " ".join(tokens[-words:])


def _find_dates(text: str) -> list[tuple[date, int, int]]:
    found: list[tuple[date, int, int]] = []
    for m in _DATE_RE.finditer(text):
        if m.group("d"):
            value = _make_date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
        elif m.group("iy"):
            value = _make_date(int(m.group("iy")), int(m.group("im")), int(m.group("id")))
        else:
            value = _make_date(
                int(m.group("ty")), _MONTHS[m.group("tm").lower()], int(m.group("td"))
            )
        if value:
            found.append((value, m.start(), m.end()))
    for m in _OPEN_DATE_RE.finditer(text):
        value = _make_date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
        if value:
            found.append((value, m.start(), m.start() + len(m.group(1)) + len(m.group(2)) + 2))
    return sorted(found, key=lambda item: item[1])


def add_months(start: date, months: int) -> date:
    """§ 188 Abs. 2, 3 BGB: the same day number `months` later, or that month's last day."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


@functools.cache
def _public_holidays(year: int) -> frozenset[date]:
    import holidays  # only needed here; keeps importing this module cheap

    return frozenset(holidays.country_holidays("DE", years=[year]).keys())


def next_working_day(day: date) -> date:
    """§ 193 BGB: a deadline on a Saturday, Sunday or nationwide public holiday moves forward."""
    while day.weekday() >= 5 or day in _public_holidays(day.year):
        day += timedelta(days=1)
    return day


# ---------------------------------------------------------------------------------------------
# Deadlines

_EXPLICIT_BEFORE = re.compile(
    r"(?:\bbis(?:\s+zum|\s+spätestens|\s+einschließlich)?|\bspätestens(?:\s+am|\s+bis)?|\bendet\s+am"
    r"|\bfällig\s+am|\bläuft\b.*\bam|\bFrist\b.*\b(?:am|bis|zum)|\bAblauf\b.*\b(?:am|zum)"
    r"|\bexpires\s+on|\bdeadline|\bby|\bAntwort\s+bis|\bAbgabe\s+bis|\bZahlbar\s+bis)"
    r"(?:\s+(?:Montag|Dienstag|Mittwoch|Donnerstag|Freitag|Samstag|Sonntag),?)?\s*$",
    re.I,
)
_EXPLICIT_AFTER = re.compile(r"^\s*(?:fällige?n?|abläuft|ab\s*[.,])", re.I)
# Validity ("gültig bis") and ranges ("01.03.2027 bis 31.10.2027") are no deadlines.
_NOT_A_DEADLINE = re.compile(
    r"(?:gültig|ab|von|seit|vom)\s+(?:dem\s+)?$|\bgültig\b|\d\.?\s*(?:bis|–|-)\s*$", re.I
)
_RELATIVE_RE = re.compile(
    r"\b(?:innerhalb|binnen)\s+(?:von\s+)?(?P<n>eine[sm]?|einem|zwei|drei|vier|sechs|acht|\d{1,3})\s+"
    r"(?P<unit>Monats?|Monaten|Wochen?|Tagen?|Werktagen?)"
    r"|\b(?P<n2>einen|eine|zwei|drei|vier|\d{1,2})\s+(?P<unit2>Monat|Monate|Wochen?)\s+Zeit\b",
    re.I,
)
_NUMBERS = {"ein": 1, "eine": 1, "eines": 1, "einem": 1, "einen": 1, "zwei": 2, "drei": 3,
            "vier": 4, "sechs": 6, "acht": 8}  # fmt: skip
_BESCHEID_LABEL = re.compile(r"bescheid\w*\s+(?:der\s+\w+\s+)?vom$", re.I)
_DELIVERY_LABEL = re.compile(r"\b(?:zugestellt|Zustellung|erhalten|zugegangen)\s+(?:am)?$", re.I)
_INVOICE_LABEL = re.compile(r"\b(?:Rechnungsdatum|Datum|Rechnung\s+.*vom)$", re.I)


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS.get(word.lower(), 1)


def _add_period(start: date, n: int, unit: str) -> date:
    unit = unit.lower()
    if unit.startswith("monat"):
        return add_months(start, n)
    if unit.startswith("woche"):
        return start + timedelta(weeks=n)
    if unit.startswith("werktag"):
        day = start
        for _ in range(n):
            day = next_working_day(day + timedelta(days=1))
        return day
    return start + timedelta(days=n)


def _deadlines(text: str, dates: list[DateMention]) -> list[Deadline]:
    result: list[Deadline] = []
    for mention in dates:
        before = text[max(0, mention.start - 60) : mention.start]
        before = re.split(r"[.!?]\s|\n", before)[-1]
        after = text[mention.start + len(mention.text) : mention.start + len(mention.text) + 15]
        if _NOT_A_DEADLINE.search(before):
            continue
        if _EXPLICIT_BEFORE.search(before) or _EXPLICIT_AFTER.search(after):
            result.append(Deadline(mention.date, "explizit", mention.label))

    bescheid = next((d for d in dates if _BESCHEID_LABEL.search(d.label)), None)
    delivered = next((d for d in dates if _DELIVERY_LABEL.search(d.label)), None)
    invoice = next((d for d in dates if _INVOICE_LABEL.search(d.label)), None)
    if delivered:
        notified, basis = date.fromisoformat(delivered.date), f"zugestellt am {delivered.date}"
    elif bescheid:
        notified = date.fromisoformat(bescheid.date) + timedelta(days=NOTIFICATION_DAYS)
        basis = f"Bescheid vom {bescheid.date} + {NOTIFICATION_DAYS} Tage Bekanntgabe"
    else:
        notified, basis = None, ""

    for m in _RELATIVE_RE.finditer(text):
        n = _number(m.group("n") or m.group("n2"))
        unit = m.group("unit") or m.group("unit2")
        start, start_basis = notified, basis
        if start is None and invoice:
            start, start_basis = date.fromisoformat(invoice.date), f"Rechnung vom {invoice.date}"
        if start is None:
            continue
        due = next_working_day(_add_period(start, n, unit))
        result.append(
            Deadline(due.isoformat(), "relativ", m.group(0), f"{start_basis}; {m.group(0)}")
        )

    if bescheid or delivered:
        source = bescheid or delivered
        assert notified is not None and source is not None
        label = source.label
        if re.search(r"Bußgeldbescheid", label + " " + text[:2000]):
            # § 67 OWiG: Einspruch within two weeks of delivery.
            due = next_working_day(notified + timedelta(weeks=2))
            result.append(Deadline(due.isoformat(), "einspruchsfrist", label, f"{basis}; 2 Wochen"))
        else:
            # § 70 VwGO (Widerspruch), § 355 AO (Einspruch): one month after notification.
            due = next_working_day(add_months(notified, 1))
            result.append(
                Deadline(due.isoformat(), "widerspruchsfrist", label, f"{basis}; 1 Monat")
            )

    unique: dict[tuple[str, str], Deadline] = {}
    for deadline in result:
        unique.setdefault((deadline.date, deadline.kind), deadline)
    return sorted(unique.values(), key=lambda d: (d.date, d.kind))


# ---------------------------------------------------------------------------------------------
# Amounts

_NUM = r"\d{1,3}(?:\.\d{3})+|\d+"
_CENTS = r"(?:,(?:\d{2}|-{1,2}|–))?"
_CURRENCY = r"€|EUR\b|Euro\b|CHF\b|USD\b|\$"
_AMOUNT_RE = re.compile(
    rf"(?<![\d.,])(?P<num>{_NUM})(?P<cents>{_CENTS})(?![\d])\s?(?P<cur>{_CURRENCY})"
    rf"|(?P<pcur>€|EUR|CHF|USD)\s?(?P<pnum>{_NUM})(?P<pcents>{_CENTS})(?![\d])"
)
_CURRENCY_CODES = {"€": "EUR", "EUR": "EUR", "Euro": "EUR", "CHF": "CHF", "USD": "USD", "$": "USD"}


def _amounts(text: str) -> list[Amount]:
    result: list[Amount] = []
    for m in _AMOUNT_RE.finditer(text):
        number = m.group("num") or m.group("pnum")
        cents = (m.group("cents") or m.group("pcents") or "").lstrip(",")
        currency = _CURRENCY_CODES[m.group("cur") or m.group("pcur")]
        digits = number.replace(".", "") + "." + (cents if cents.isdigit() else "00")
        try:
            value = Decimal(digits).quantize(Decimal("0.01"))
        except InvalidOperation:
            continue
        result.append(Amount(str(value), currency, m.group().strip()))
    return result


# ---------------------------------------------------------------------------------------------
# Sender

_RECIPIENT_LINE = re.compile(
    r"^\s*(?:An(?:\s+die|\s+das|\s+den)?[:\s]|Stadt\s|Gemeinde\s|Landkreis\s|Kreis\s|Markt\s"
    r"|Stadtverwaltung|Bürgermeister|Rathaus)",
    re.I,
)
_DATE_LINE = re.compile(r"^\s*[^\W\d_][\w -]*,\s*(?:den\s+)?\d{1,2}\.\s?\d{1,2}\.\s?\d{2,4}\s*$")
# Who filled in a form, most telling first: "Ausgefüllt von" beats "Antragstellerin".
_FORM_SENDER_LABELS = [
    re.compile(rf"^(?:{label})\s*:", re.I | re.M)
    for label in (
        r"Ausgefüllt von|Absender(?:in)?",
        r"Antragsteller(?:in)?|Betriebsinhaber(?:in)?|Halter(?:in)?|Name|Veranstalter(?:in)?",
        r"Erziehungsberechtigte[rn]?|Eltern|Bauherr(?:in|en)?",
    )
]


def _address_key(address: str) -> str:
    """Street and house number, lower case, without punctuation: for comparing addresses.

    The PLZ and city are left out on purpose: most citizens live in the municipality's own city.
    """
    street = re.split(r"[,\n·;|]|\s\d{5}\s", address.strip(), maxsplit=1)[0].lower()
    street = re.sub(r"str\.", "straße", street).replace("strasse", "straße")
    return re.sub(r"[^\wäöüß]+", "", street)


def _is_own(address: str, own_key: str | None) -> bool:
    return bool(own_key) and _address_key(address) == own_key


def _spans_in(spans: list[PiiSpan], kind: str, start: int, end: int) -> list[PiiSpan]:
    return [s for s in spans if s.kind == kind and start <= s.start and s.end <= end]


def _first(
    spans: list[PiiSpan], kind: str, start: int, end: int, own_key: str | None = None
) -> str | None:
    for span in _spans_in(spans, kind, start, end):
        if kind == ADDRESS and _is_own(span.text, own_key):
            continue
        return _one_line(span.text)
    return None


def _one_line(value: str) -> str:
    return re.sub(r"\s*\n\s*|\s+·\s+", ", ", value.strip())


def _sender_from_letterhead(text: str, spans: list[PiiSpan], own_key: str | None) -> Sender | None:
    """The block at the top, before the recipient ("Stadt Musterstadt …") or the date line."""
    lines = text.split("\n")
    end = 0
    for index, line in enumerate(lines[:8]):
        if index and (_RECIPIENT_LINE.match(line) or _DATE_LINE.match(line)):
            break
        if _RECIPIENT_LINE.match(line) or (own_key and _is_own(line, own_key)):
            return None
        end += len(line) + 1
        if index == 0 and ("·" in line or "|" in line):
            break  # a one-line letterhead
    else:
        return None
    address = _first(spans, ADDRESS, 0, end, own_key)
    if not address:
        return None
    head = text[:end]
    name = _first(spans, PERSON, 0, end)
    if not name:
        first_segment = re.split(r"\s+[·|]\s+|\n", head.strip(), maxsplit=1)[0].strip()
        if first_segment and not re.search(r"\d", first_segment):
            name = first_segment
    return Sender(
        name=name,
        address=address,
        email=_first(spans, EMAIL, 0, end),
        phone=_first(spans, PHONE, 0, end),
        source="briefkopf",
    )


def _sender_from_signature(text: str, spans: list[PiiSpan], own_key: str | None) -> Sender | None:
    """The last name in the text and the lines under it (address, phone, e-mail)."""
    closings = list(CLOSING_RE.finditer(text))
    if not closings:
        return None
    start = closings[-1].end()
    name = _first(spans, PERSON, start, len(text))
    if name is None:
        return None
    return Sender(
        name=name,
        address=_first(spans, ADDRESS, start, len(text), own_key),
        email=_first(spans, EMAIL, start, len(text)),
        phone=_first(spans, PHONE, start, len(text)),
        source="unterschrift",
    )


def _sender_from_form(text: str, spans: list[PiiSpan], own_key: str | None) -> Sender | None:
    m = next((m for regex in _FORM_SENDER_LABELS if (m := regex.search(text))), None)
    if m is None:
        return None
    name_end = text.find("\n", m.end())
    name_end = len(text) if name_end < 0 else name_end
    person = _first(spans, PERSON, m.end(), name_end)
    segment = text[m.end() : name_end].strip()
    name = person or re.split(r",|\s+–\s+|\(", segment)[0].strip() or None
    return Sender(
        name=name,
        address=_first(spans, ADDRESS, 0, len(text), own_key),
        email=_first(spans, EMAIL, 0, len(text)),
        phone=_first(spans, PHONE, 0, len(text)),
        source="formular",
    )


def _sender_from_tail(text: str, spans: list[PiiSpan], own_key: str | None) -> Sender | None:
    """A name in the last lines without a closing formula ("Stefan Muster\nBergstraße 27 …")."""
    tail_start = len(text)
    for _ in range(4):
        tail_start = text.rfind("\n", 0, tail_start - 1)
        if tail_start < 0:
            tail_start = 0
            break
    names = _spans_in(spans, PERSON, tail_start, len(text))
    if not names:
        return None
    start = names[0].start
    address = _first(spans, ADDRESS, start, len(text), own_key)
    phone = _first(spans, PHONE, start, len(text))
    if not (address or phone):
        return None
    return Sender(
        name=names[0].text,
        address=address,
        email=_first(spans, EMAIL, start, len(text)),
        phone=phone,
        source="unterschrift",
    )


def _merge(primary: Sender | None, secondary: Sender | None) -> Sender | None:
    if primary is None or secondary is None:
        return primary or secondary
    return Sender(
        name=primary.name or secondary.name,
        address=primary.address or secondary.address,
        email=primary.email or secondary.email,
        phone=primary.phone or secondary.phone,
        source=primary.source,
    )


# ---------------------------------------------------------------------------------------------


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def extract_fields(
    text: str, *, received_at: datetime | None = None, own_address: str | None = None
) -> ExtractedFields:
    """All fields of one item's text.

    `own_address` is the municipality's address ("Rathausplatz 1, 12345 Musterstadt"): it is never
    returned as the sender nor listed under `addresses`. `received_at` is the fallback start of a
    relative period ("innerhalb von zwei Wochen") when the text names no Bescheid or invoice date.
    """
    if not text:
        return ExtractedFields()
    spans = detect_pii(text)
    own_key = _address_key(own_address) if own_address else None

    dates = [
        DateMention(value.isoformat(), _label_before(text, start), text[start:end], start)
        for value, start, end in _find_dates(text)
    ]
    deadlines = _deadlines(text, dates)
    if received_at is not None and not any(d.kind != "explizit" for d in deadlines):
        for m in _RELATIVE_RE.finditer(text):
            n = _number(m.group("n") or m.group("n2"))
            due = next_working_day(
                _add_period(received_at.date(), n, m.group("unit") or m.group("unit2"))
            )
            deadlines.append(
                Deadline(
                    due.isoformat(),
                    "relativ",
                    m.group(0),
                    f"Eingang am {received_at.date().isoformat()}",
                )
            )

    def values(kind: str) -> list[str]:
        return [s.text for s in spans if s.kind == kind]

    sender = _sender_from_letterhead(text, spans, own_key)
    if sender is None or sender.name is None:
        sender = _merge(
            sender,
            _sender_from_signature(text, spans, own_key)
            or _sender_from_form(text, spans, own_key)
            or _sender_from_tail(text, spans, own_key),
        )
    elif sender.phone is None or sender.email is None:
        sender = _merge(sender, _sender_from_signature(text, spans, own_key))

    return ExtractedFields(
        aktenzeichen=_unique(values(AKTENZEICHEN)),
        dates=dates,
        deadlines=deadlines,
        amounts=_amounts(text),
        addresses=_unique([_one_line(a) for a in values(ADDRESS) if not _is_own(a, own_key)]),
        ibans=_unique([normalize_iban(v) for v in values(IBAN)]),
        plates=_unique([re.sub(r"\s+", " ", v) for v in values(PLATE)]),
        emails=_unique([v.lower() for v in values(EMAIL)]),
        phones=_unique(values(PHONE)),
        sender=sender,
    )
