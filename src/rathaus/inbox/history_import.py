"""Import of historical cases from a CSV export: decided cases for training and the Lagebild.

Columns are named by a mapping (field → column of the file); only ``text`` is required:

=============== ============================================================================
field           meaning
=============== ============================================================================
text            the citizen's text; becomes the incoming message (required)
subject         subject line (default: the first line of the text)
unit            responsible unit: Amt code or name (``OrgUnit.code``/``name``)
service         service (Leistung): code or name; its unit is used when ``unit`` is empty
received        date received (``2024-03-01``, ``2024-03-01 14:30``, ``01.03.2024 14:30``)
closed          date closed; a row with it is ``erledigt``, without it ``zugewiesen``
request_type    Antrag, Anfrage, Beschwerde, Meldung … (free text, at most 30 characters)
status          explicit status (erledigt/abgeschlossen, offen/zugewiesen, in Bearbeitung …)
=============== ============================================================================

Times without a zone are local time (Europe/Berlin). The file is UTF-8 (with or without BOM);
a Windows-1252/Latin-1 file (Excel's "CSV (Trennzeichen-getrennt)") is detected and read as
such, and the report says so; anything else is refused with a German message. The delimiter
(``,``, ``;`` or tab) is detected from the header line unless given.

Every case gets an Aktenzeichen of its received year (numbered in bulk: one query per year and
batch), channel ``import``, an incoming message with the text, a ``created`` event at the time
received and one ``status`` event to its final status. Idempotent: each row has a stable key
(SHA-256 of its raw cells and how often the same row occurred before it in the file) kept in
``case.fields["import_key"]``; rows whose key exists are counted as duplicates, so importing the
same file twice changes nothing. Rows are inserted in batches (1,000 by default), one commit per
batch. Unknown units or services skip the row with its line number and a German reason, unless
``create_units`` creates missing units as Sachgebiete below an Amt "Import".
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rathaus.core.cases import STATUS_LABELS, add_working_days, next_reference
from rathaus.core.errors import RathausError
from rathaus.core.models import (
    Case,
    CaseEvent,
    CaseStatus,
    Confidentiality,
    Message,
    OrgUnit,
    OrgUnitKind,
    Service,
    Tenant,
    utcnow,
)
from rathaus.core.parsing import ParseProblem, csv_problem, decode_utf16, is_utf16
from rathaus.inbox.classify import REQUEST_TYPES

LOCAL = ZoneInfo("Europe/Berlin")
CHANNEL = "import"
ACTOR = "import"
BATCH_SIZE = 1000
IMPORT_UNIT_CODE = "IMPORT"
FIELDS = ("text", "subject", "unit", "service", "received", "closed", "request_type", "status")
# The keys the CLI accepts (German first), mapped to the fields above.
ALIASES = {
    "text": "text",
    "betreff": "subject",
    "subject": "subject",
    "amt": "unit",
    "einheit": "unit",
    "unit": "unit",
    "leistung": "service",
    "service": "service",
    "eingang": "received",
    "eingegangen": "received",
    "received": "received",
    "erledigt": "closed",
    "abgeschlossen": "closed",
    "closed": "closed",
    "art": "request_type",
    "anliegen": "request_type",
    "request_type": "request_type",
    "status": "status",
}
DELIMITERS = {",": ",", ";": ";", "\t": "\t", "tab": "\t", "komma": ",", "semikolon": ";"}
_STATUS_WORDS = {
    CaseStatus.ERLEDIGT: (
        "erledigt",
        "abgeschlossen",
        "geschlossen",
        "beendet",
        "fertig",
        "closed",
    ),
    CaseStatus.ZUGEWIESEN: ("zugewiesen", "offen", "neu", "open", "eingegangen"),
    CaseStatus.IN_BEARBEITUNG: ("in bearbeitung", "in_bearbeitung", "bearbeitung", "in arbeit"),
    CaseStatus.WARTET: ("wartet", "wartend", "rückfrage", "wartet auf rückmeldung"),
    CaseStatus.ARCHIVIERT: ("archiviert",),
}
STATUS_BY_WORD = {word: status for status, words in _STATUS_WORDS.items() for word in words}
_MOJIBAKE = ("Ã¤", "Ã¶", "Ã¼", "Ã„", "Ã–", "Ãœ", "ÃŸ", "â‚¬", "Ã©")
_UMLAUTS = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
)
_DATE_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d.%m.%y %H:%M", "%d.%m.%y")


class HistoryImportError(RathausError):
    """The file or the mapping cannot be used; nothing was imported."""

    exit_code = 2


@dataclass(frozen=True)
class SkippedRow:
    line: int  # first line of the row in the file (1 = header)
    reason: str  # German


@dataclass
class ImportReport:
    """What an import did; ``skipped`` lists each row left out with its line and reason."""

    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)
    created_units: list[str] = field(default_factory=list)
    encoding: str = "utf-8"
    delimiter: str = ","
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "skipped": [{"line": s.line, "reason": s.reason} for s in self.skipped],
            "created_units": self.created_units,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


Progress = Callable[[int, int], Any]


# --- reading the file -------------------------------------------------------------------------


def parse_mapping(spec: str) -> dict[str, str]:
    """``"text=Text,amt=Gruppe"`` → ``{"text": "Text", "unit": "Gruppe"}`` (German or English keys)."""
    mapping: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key, sep, column = part.partition("=")
        key = key.strip().lower()
        if not sep or not column.strip():
            raise HistoryImportError(
                f"„{part}“ ist keine Zuordnung: erwartet wird feld=Spalte, z. B. text=Text."
            )
        if key not in ALIASES:
            raise HistoryImportError(
                f"Das Feld „{key}“ gibt es nicht. Erlaubt sind: text, betreff, amt, leistung, "
                "eingang, erledigt, art, status."
            )
        if ALIASES[key] in mapping:
            raise HistoryImportError(f"Das Feld „{key}“ ist mehrfach zugeordnet.")
        mapping[ALIASES[key]] = column.strip()
    return mapping


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str, str | None]:
    """The text, the encoding used and a German note when it was not UTF-8."""
    if encoding:
        try:
            return data.decode(encoding).lstrip("\ufeff"), encoding, None
        except LookupError:
            raise HistoryImportError(
                f"Die Kodierung „{encoding}“ ist unbekannt. Bitte z. B. utf-8 oder cp1252 angeben "
                "oder die Angabe weglassen (dann wird sie erkannt)."
            ) from None
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise HistoryImportError(
                f"Die Datei lässt sich nicht als {encoding} lesen (unlesbares Zeichen in Zeile "
                f"{line}). Bitte die Kodierung prüfen oder weglassen (dann wird sie erkannt)."
            ) from None
    if is_utf16(data):
        try:
            return decode_utf16(data), "utf-16", None
        except ParseProblem as exc:
            raise HistoryImportError(
                f"{exc.message}. Bitte in Excel bzw. LibreOffice als „CSV UTF-8“ speichern und "
                "erneut importieren."
            ) from None
    try:
        return data.decode("utf-8-sig"), "utf-8", None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        first_error = line
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = ""
    if not text or any(m in text for m in _MOJIBAKE):
        raise HistoryImportError(
            f"Die Datei ist nicht UTF-8-kodiert (erstes unlesbares Zeichen in Zeile "
            f"{first_error}) und auch nicht eindeutig Windows-1252. Bitte in Excel bzw. "
            "LibreOffice als „CSV UTF-8“ speichern und erneut importieren."
        )
    return (
        text,
        "cp1252",
        "Die Datei ist nicht UTF-8-kodiert; sie wurde als Windows-1252/Latin-1 gelesen (so "
        "speichert Excel „CSV (Trennzeichen-getrennt)“). Bitte Umlaute stichprobenartig prüfen; "
        "eindeutig ist das Format „CSV UTF-8“.",
    )


def detect_delimiter(text: str) -> str:
    """``,``, ``;`` or tab: whichever occurs most often in the header line outside quotes."""
    header = []
    quoted = False
    for char in text[:65536]:
        if char == '"':
            quoted = not quoted
        elif char in "\r\n" and not quoted:
            break
        elif not quoted:
            header.append(char)
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Each record with the line number it starts on (records may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    start = 1
    try:
        for values in reader:
            yield start, values
            start = reader.line_num + 1
    except csv.Error as exc:
        raise HistoryImportError(
            f"Die CSV-Datei ist ab Zeile {start} nicht lesbar: {csv_problem(exc)}. Bitte "
            "Anführungszeichen und Trennzeichen prüfen."
        ) from exc


# --- values -----------------------------------------------------------------------------------


def _norm(value: str) -> str:
    return " ".join(value.split()).casefold()


def parse_date(value: str) -> dt.datetime | None:
    """A point in time (UTC) from ISO or German notation; naive values are Berlin time."""
    value = value.strip()
    if not value:
        return None
    parsed: dt.datetime | None = None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _DATE_FORMATS:
            try:
                parsed = dt.datetime.strptime(value, fmt)  # noqa: DTZ007 - zone added below
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LOCAL)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01 in Berlin lies before the first UTC moment
        raise ValueError(value) from None


def _request_type(value: str) -> str | None:
    value = " ".join(value.split())
    if not value:
        return None
    for known in REQUEST_TYPES:
        if known.casefold() == value.casefold():
            return known
    return value[:30]


def _code_for(name: str, taken: set[str]) -> str:
    german = name.translate(_UMLAUTS)
    ascii_name = unicodedata.normalize("NFKD", german).encode("ascii", "ignore").decode().upper()
    slug = re.sub(r"[^A-Z0-9]+", "-", ascii_name).strip("-")[:24] or "EINHEIT"
    code = f"IMP-{slug}"
    n = 2
    while code.casefold() in taken:
        code = f"IMP-{slug[:20]}-{n}"
        n += 1
    taken.add(code.casefold())
    return code


@dataclass
class _Directory:
    """The tenant's units and services by code and by name (case-insensitive)."""

    tenant: Tenant
    units: dict[str, OrgUnit]
    services: dict[str, Service]
    unit_codes: set[str]
    import_parent: OrgUnit | None = None

    @classmethod
    def load(cls, session: Session, tenant: Tenant) -> _Directory:
        units: dict[str, OrgUnit] = {}
        for unit in session.scalars(select(OrgUnit).where(OrgUnit.tenant_id == tenant.id)):
            units.setdefault(_norm(unit.name), unit)
            units[_norm(unit.code)] = unit  # a code wins over a name
        services: dict[str, Service] = {}
        for service in session.scalars(select(Service).where(Service.tenant_id == tenant.id)):
            services.setdefault(_norm(service.name), service)
            services[_norm(service.code)] = service
        codes = {u.code.casefold() for u in units.values()}
        return cls(tenant, units, services, codes)

    def create_unit(self, session: Session, name: str) -> OrgUnit:
        if self.import_parent is None:
            parent = self.units.get(_norm(IMPORT_UNIT_CODE))
            if parent is None:
                parent = OrgUnit(
                    tenant_id=self.tenant.id,
                    kind=OrgUnitKind.AMT,
                    code=IMPORT_UNIT_CODE,
                    name="Import",
                    description="Aus einem CSV-Import angelegte Einheiten; bitte zuordnen.",
                )
                session.add(parent)
                session.flush()
                self.units[_norm(IMPORT_UNIT_CODE)] = parent
                self.unit_codes.add(IMPORT_UNIT_CODE.casefold())
            self.import_parent = parent
        unit = OrgUnit(
            tenant_id=self.tenant.id,
            kind=OrgUnitKind.SACHGEBIET,
            code=_code_for(name, self.unit_codes),
            name=" ".join(name.split())[:200],
            parent_id=self.import_parent.id,
        )
        session.add(unit)
        session.flush()
        self.units[_norm(name)] = unit
        return unit


@dataclass
class _Planned:
    line: int
    key: str
    text: str
    subject: str
    unit_id: int | None
    service: Service | None
    received: dt.datetime
    closed: dt.datetime | None
    status: CaseStatus
    request_type: str | None


# --- the import -------------------------------------------------------------------------------


def import_csv(
    session: Session,
    *,
    tenant: Tenant,
    data: bytes,
    mapping: dict[str, str],
    filename: str = "import.csv",
    create_units: bool = False,
    delimiter: str | None = None,
    encoding: str | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the CSV ``data`` into ``tenant``; commits once per batch (see module docstring).

    Raises :class:`HistoryImportError` (nothing imported) for an unusable file or mapping; rows
    that cannot be imported are listed in the report instead.
    """
    started = time.perf_counter()
    report = ImportReport()
    text, report.encoding, note = decode(data, encoding)
    if note:
        report.notes.append(note)
    if delimiter is not None:
        if delimiter.lower() not in DELIMITERS:
            raise HistoryImportError(
                f"Trennzeichen „{delimiter}“ wird nicht unterstützt; erlaubt sind , ; und tab."
            )
        report.delimiter = DELIMITERS[delimiter.lower()]
    else:
        report.delimiter = detect_delimiter(text)
    rows = _rows(text, report.delimiter)
    try:
        _, header = next(rows)
    except StopIteration:
        raise HistoryImportError("Die Datei ist leer: es fehlt die Kopfzeile.") from None
    columns = _columns(header, mapping, report.delimiter)
    directory = _Directory.load(session, tenant)
    existing = _existing_keys(session, tenant)
    if "received" not in columns:
        report.notes.append(
            "Es ist keine Eingangsdatum-Spalte zugeordnet: alle Vorgänge tragen den Zeitpunkt "
            "des Imports als Eingang."
        )
    planned: list[_Planned] = []
    seen: dict[str, int] = {}
    now = utcnow()
    for line, values in rows:
        if not any(v.strip() for v in values):
            continue
        report.rows += 1
        if len(values) != len(header):
            report.skipped.append(
                SkippedRow(
                    line,
                    f"Die Zeile hat {len(values)} statt {len(header)} Spalten. Bitte Trennzeichen "
                    "und Anführungszeichen prüfen.",
                )
            )
            continue
        raw = json.dumps(values, ensure_ascii=False)
        seen[raw] = seen.get(raw, 0) + 1
        key = hashlib.sha256(f"{raw}#{seen[raw]}".encode()).hexdigest()
        if key in existing:
            report.duplicates += 1
            continue
        existing.add(key)
        outcome = _plan(session, line, key, values, columns, directory, create_units, report, now)
        if isinstance(outcome, SkippedRow):
            report.skipped.append(outcome)
        else:
            planned.append(outcome)
    total = len(planned)
    if progress:
        progress(0, total)
    session.commit()  # units created while planning
    numbers = _Numbers(tenant)
    for start in range(0, total, batch_size):
        batch = planned[start : start + batch_size]
        _insert_batch(session, tenant, batch, numbers, filename, now)
        report.imported += len(batch)
        if progress:
            progress(min(start + batch_size, total), total)
    report.seconds = time.perf_counter() - started
    return report


def _columns(header: list[str], mapping: dict[str, str], delimiter: str) -> dict[str, int]:
    if "text" not in mapping:
        raise HistoryImportError(
            "Die Spalte mit dem Text fehlt in der Zuordnung (z. B. --spalten text=Text)."
        )
    names = [h.strip().lstrip("\ufeff") for h in header]
    index = {n.casefold(): i for i, n in reversed(list(enumerate(names)))}
    columns: dict[str, int] = {}
    for field_name, column in mapping.items():
        if field_name not in FIELDS:
            raise HistoryImportError(f"Das Feld „{field_name}“ gibt es nicht.")
        position = index.get(column.strip().casefold())
        if position is None:
            shown = "tab" if delimiter == "\t" else delimiter
            raise HistoryImportError(
                f"Die Spalte „{column}“ gibt es in der Datei nicht (erkanntes Trennzeichen "
                f"„{shown}“). Vorhandene Spalten: {', '.join(n for n in names if n)[:600]}."
            )
        columns[field_name] = position
    return columns


def _existing_keys(session: Session, tenant: Tenant) -> set[str]:
    query = select(Case.fields["import_key"].as_string()).where(
        Case.tenant_id == tenant.id, Case.channel == CHANNEL
    )
    return {key for key in session.scalars(query) if key}


def _plan(
    session: Session,
    line: int,
    key: str,
    values: list[str],
    columns: dict[str, int],
    directory: _Directory,
    create_units: bool,
    report: ImportReport,
    now: dt.datetime,
) -> _Planned | SkippedRow:
    def cell(name: str) -> str:
        return values[columns[name]].strip() if name in columns else ""

    text = cell("text")
    if not text:
        return SkippedRow(line, "Die Zeile hat keinen Text.")
    service = None
    if cell("service"):
        service = directory.services.get(_norm(cell("service")))
        if service is None:
            return SkippedRow(
                line,
                f"Die Leistung „{cell('service')[:80]}“ gibt es nicht (weder als Kürzel noch als "
                "Name). Bitte zuerst anlegen oder die Spalte anpassen.",
            )
    unit_id: int | None = None
    if "unit" in columns:
        name = cell("unit")
        if name:
            unit = directory.units.get(_norm(name))
            if unit is None and create_units:
                unit = directory.create_unit(session, name)
                report.created_units.append(f"{unit.code} ({unit.name})")
            if unit is None:
                return SkippedRow(
                    line,
                    f"Das Amt „{name[:80]}“ gibt es nicht (weder als Kürzel noch als Name). "
                    "Bitte anlegen oder mit --neue-aemter automatisch anlegen lassen.",
                )
            unit_id = unit.id
        elif service is None or service.org_unit_id is None:
            return SkippedRow(line, "Die Zeile nennt kein Amt.")
    if unit_id is None and service is not None:
        unit_id = service.org_unit_id
    try:
        received = parse_date(cell("received")) if "received" in columns else now
        closed = parse_date(cell("closed")) if "closed" in columns else None
    except ValueError as exc:
        return SkippedRow(
            line,
            f"„{str(exc)[:40]}“ ist kein Datum. Erwartet wird z. B. 2024-03-01 14:30 oder "
            "01.03.2024 14:30.",
        )
    if received is None:
        return SkippedRow(line, "Das Eingangsdatum fehlt.")
    if closed is not None and closed < received:
        return SkippedRow(line, "Das Erledigt-Datum liegt vor dem Eingangsdatum.")
    status = CaseStatus.ERLEDIGT if closed else CaseStatus.ZUGEWIESEN
    if cell("status"):
        found = STATUS_BY_WORD.get(_norm(cell("status")))
        if found is None:
            return SkippedRow(
                line,
                f"Den Status „{cell('status')[:40]}“ kennt Rathaus nicht. Erlaubt sind z. B. "
                "erledigt, abgeschlossen, offen, zugewiesen, in Bearbeitung, wartet, archiviert.",
            )
        status = found
    if status not in (CaseStatus.ERLEDIGT, CaseStatus.ARCHIVIERT):
        closed = None
    if unit_id is None and status != CaseStatus.ERLEDIGT and status != CaseStatus.ARCHIVIERT:
        status = CaseStatus.TRIAGE  # open, but nobody responsible: the triage queue
    subject = cell("subject") or text.split("\n", 1)[0]
    return _Planned(
        line=line,
        key=key,
        text=text,
        subject=" ".join(subject.split())[:300],
        unit_id=unit_id,
        service=service,
        received=received,
        closed=closed,
        status=status,
        request_type=_request_type(cell("request_type")),
    )


class _Numbers:
    """Aktenzeichen in bulk: the next free number per year, read once and counted up here."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.next: dict[int, int] = {}

    def take(self, session: Session, year: int) -> str:
        prefix = self.tenant.reference_prefix
        if year not in self.next:
            first = next_reference(session, tenant_id=self.tenant.id, prefix=prefix, year=year)
            self.next[year] = int(first.rsplit("-", 1)[1])
        number = self.next[year]
        self.next[year] += 1
        return f"{prefix}-{year}-{number:06d}"

    def reset(self) -> None:
        self.next.clear()


def _insert_batch(
    session: Session,
    tenant: Tenant,
    batch: list[_Planned],
    numbers: _Numbers,
    filename: str,
    now: dt.datetime,
) -> None:
    for attempt in range(3):
        # Each batch reads the last number again under the tenant's reference lock (taken by
        # next_reference, held until the commit): items received between two batches are
        # counted instead of colliding with this batch's numbers.
        numbers.reset()
        try:
            _insert(session, tenant, batch, numbers, filename, now)
            session.commit()
            return
        except IntegrityError:
            # The unique constraint stays the last guard: count again.
            session.rollback()
            if attempt == 2:
                raise


def _insert(
    session: Session,
    tenant: Tenant,
    batch: list[_Planned],
    numbers: _Numbers,
    filename: str,
    now: dt.datetime,
) -> None:
    case_rows = []
    for p in batch:
        year = p.received.astimezone(LOCAL).year
        case_rows.append(
            {
                "tenant_id": tenant.id,
                "reference": numbers.take(session, year),
                "subject": p.subject,
                "status": p.status,
                "channel": CHANNEL,
                "request_type": p.request_type,
                "urgency": "normal",
                "confidentiality": Confidentiality.INTERN,
                "org_unit_id": p.unit_id,
                "service_id": p.service.id if p.service else None,
                "sender_name": "",
                "sender_contact": "",
                "address": "",
                "fields": {
                    "import_key": p.key,
                    "import_file": filename[:200],
                    "import_line": p.line,
                },
                "received_at": p.received,
                "due_at": (
                    add_working_days(p.received, p.service.sla_working_days, tenant.land)
                    if p.service
                    else None
                ),
                "closed_at": p.closed,
                "created_at": now,
                "updated_at": now,
            }
        )
    ids = list(
        session.scalars(insert(Case).returning(Case.id, sort_by_parameter_order=True), case_rows)
    )
    messages = []
    events = []
    for case_id, p in zip(ids, batch, strict=True):
        messages.append(
            {
                "tenant_id": tenant.id,
                "case_id": case_id,
                "direction": "in",
                "channel": CHANNEL,
                "sender": "",
                "recipient": "",
                "subject": p.subject,
                "body": p.text,
                "status": "eingegangen",
                "created_at": p.received,
            }
        )
        common = {"tenant_id": tenant.id, "case_id": case_id, "actor_label": ACTOR}
        events.append(
            {
                **common,
                "kind": "created",
                "activity": "Eingang erfasst",
                "from_status": None,
                "to_status": CaseStatus.NEU.value,
                "data": {"channel": CHANNEL, "file": filename[:200], "line": p.line},
                "created_at": p.received,
            }
        )
        events.append(
            {
                **common,
                "kind": "status",
                "activity": STATUS_LABELS[p.status],
                "from_status": CaseStatus.NEU.value,
                "to_status": p.status.value,
                "data": {"reason": "Import historischer Vorgänge"},
                "created_at": p.closed or p.received,
            }
        )
    session.execute(insert(Message), messages)
    session.execute(insert(CaseEvent), events)


def import_file(
    session: Session, *, tenant: Tenant, path: str | Path, **options: Any
) -> ImportReport:
    """:func:`import_csv` for a file on disk, with a German error if it cannot be read."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise HistoryImportError(
            f"Die Datei {path} gibt es nicht. Bitte den Pfad prüfen."
        ) from None
    except OSError as exc:
        raise HistoryImportError(
            f"Die Datei {path} ist nicht lesbar ({exc.strerror}). Bitte Rechte prüfen."
        ) from exc
    return import_csv(session, tenant=tenant, data=data, filename=path.name, **options)
