"""Reading tabular uploads (CSV or XLSX) for the Lagebild, with German messages naming the row
and the field.

Administrations export CSV in many shapes: Windows-1252 instead of UTF-8, semicolons instead of
commas, German dates (``31.12.2015``) and amounts (``1.471,60 €``). :func:`read_table` decodes
and splits a file into header and rows of strings; :func:`map_columns` finds the columns of the
fields a function needs (by an explicit mapping or by known header names); the ``parse_*``
functions turn one cell into a value or raise :class:`TableError` saying which row and field.
Nothing here writes to the database: callers parse everything first and then write in one
transaction, so a bad row never leaves half an import behind.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rathaus.core.errors import RathausError
from rathaus.core.parsing import csv_problem
from rathaus.core.zipguard import MB, ZipBounds, bomb_reason

DELIMITERS = (";", ",", "\t", "|")
XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"
# An XLSX is a ZIP archive: a million rows unpack to a few hundred MB of XML at most; a
# repetitive sheet compresses well, so the ratio is looser than for letters (DOCX).
XLSX_BOUNDS = ZipBounds(max_members=10_000, max_unzipped_bytes=512 * MB, max_ratio=250.0)


class TableError(RathausError):
    """A table that cannot be read as asked; the message names the row and field."""


@dataclass(frozen=True)
class FieldSpec:
    """A field a function needs from a table: German label and header names that mean it."""

    label: str
    aliases: tuple[str, ...] = ()
    required: bool = True


@dataclass
class Table:
    """A decoded table: ``rows[i]`` is the data row shown as row ``i + first_row`` in the file
    (the header is row 1), every cell a string; ``encoding``/``delimiter`` as detected."""

    headers: list[str]
    rows: list[list[str]]
    encoding: str | None = None
    delimiter: str | None = None
    first_row: int = 2
    notes: list[str] = field(default_factory=list)

    def row_number(self, index: int) -> int:
        return index + self.first_row


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode a text file: UTF-8 (with or without BOM), else Windows-1252 (common in German
    administrations). Binary content is refused with a clear message."""
    if b"\x00" in data[:4096]:
        raise TableError(
            "Die Datei ist keine Textdatei (CSV) – sie enthält Binärdaten. Bitte als CSV "
            "(Trennzeichen Semikolon oder Komma) oder als Excel-Datei (.xlsx) hochladen."
        )
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError as exc:  # cp1252 leaves five bytes undefined
        line = data[: exc.start].count(b"\n") + 1
        raise TableError(
            f"Die Datei ist weder UTF-8 noch Windows-1252 kodiert (unlesbares Zeichen in Zeile "
            f"{line}). Bitte als UTF-8 speichern."
        ) from exc


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the same, largest number of columns."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        return ","
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        try:
            counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        except csv.Error:
            continue
        consistent = sum(1 for c in counts if c == counts[0])
        score = (consistent if counts[0] > 1 else 0, counts[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def read_table(data: bytes, filename: str = "", *, max_rows: int | None = None) -> Table:
    """Read CSV (any of ``; , tab |``, UTF-8 or Windows-1252) or XLSX into a :class:`Table`."""
    if not data.strip():
        raise TableError("Die Datei ist leer.")
    if data.startswith(XLS_MAGIC):
        raise TableError(
            "Alte Excel-Dateien (.xls) werden nicht gelesen. Bitte als .xlsx oder CSV speichern."
        )
    if data.startswith(XLSX_MAGIC) or filename.lower().endswith((".xlsx", ".xlsm")):
        return _read_xlsx(data, max_rows=max_rows)
    text, encoding = decode_text(data)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise TableError("Die Datei ist leer.")
        rows: list[list[str]] = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            rows.append(row)
            if max_rows is not None and len(rows) > max_rows:
                raise TableError(f"Die Datei hat mehr als {max_rows:,} Zeilen.".replace(",", "."))
    except csv.Error as exc:
        raise TableError(
            f"Die CSV-Datei ist fehlerhaft in Zeile {reader.line_num}: {csv_problem(exc)}. "
            "Bitte Anführungszeichen und Trennzeichen prüfen."
        ) from exc
    headers = [_clean_header(h) for h in header]
    table = Table(headers=headers, rows=rows, encoding=encoding, delimiter=delimiter)
    if encoding != "utf-8":
        table.notes.append("Die Datei war Windows-1252-kodiert und wurde umgewandelt.")
    return table


def _read_xlsx(data: bytes, *, max_rows: int | None) -> Table:
    import zipfile
    import zlib

    from openpyxl import load_workbook

    try:
        # Checked before openpyxl unpacks anything: it reads shared strings into memory.
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            reason = bomb_reason(archive, XLSX_BOUNDS)
        if reason is not None:
            raise TableError(
                f"Die Excel-Datei wurde nicht geöffnet: {reason} (mögliche ZIP-Bombe). Bitte als "
                "CSV speichern oder in kleinere Dateien teilen."
            )
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError, zlib.error) as exc:
        raise TableError(
            "Die Excel-Datei ist beschädigt oder keine .xlsx-Datei und kann nicht gelesen werden."
        ) from exc
    try:
        sheet = workbook.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        header = next(values, None)
        if header is None:
            raise TableError("Das erste Tabellenblatt der Excel-Datei ist leer.")
        rows: list[list[str]] = []
        for raw in values:
            row = [_cell_text(v) for v in raw]
            if not any(cell.strip() for cell in row):
                continue
            rows.append(row)
            if max_rows is not None and len(rows) > max_rows:
                raise TableError(f"Die Datei hat mehr als {max_rows:,} Zeilen.".replace(",", "."))
    except TableError:
        raise
    except Exception as exc:  # the sheet is unpacked while reading: zlib, XML and openpyxl
        # errors of a damaged file come only now, in many types; all mean "cannot read"
        raise TableError(
            "Die Excel-Datei ist beschädigt und kann nicht gelesen werden (Tabellenblatt nicht "
            "lesbar). Bitte die Datei neu speichern oder als CSV hochladen."
        ) from exc
    finally:
        workbook.close()
    headers = [_clean_header(_cell_text(h)) for h in header]
    while headers and not headers[-1]:
        headers.pop()
    return Table(headers=headers, rows=[r[: len(headers)] for r in rows])


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _clean_header(value: str) -> str:
    return value.strip().strip("\ufeff").strip()


def _norm(value: str) -> str:
    value = unicodedata.normalize("NFKD", value.casefold())
    value = "".join(ch for ch in value if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", "", value.replace("ß", "ss"))


def map_columns(
    table: Table,
    fields: Mapping[str, FieldSpec],
    mapping: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Column index per field: from ``mapping`` (field → header as in the file) where given,
    else the first header matching the field's name or one of its aliases. A missing required
    field is a :class:`TableError` listing the headers the file does have."""
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise TableError(
            f"Unbekanntes Feld in der Spaltenzuordnung: {', '.join(unknown)}. Erlaubt sind: "
            f"{', '.join(fields)}."
        )
    by_norm: dict[str, int] = {}
    for index, header in enumerate(table.headers):
        by_norm.setdefault(_norm(header), index)
    found: dict[str, int] = {}
    for name, spec in fields.items():
        if name in mapping:
            wanted = mapping[name]
            if wanted not in table.headers:
                raise TableError(
                    f"Die Spalte „{wanted}“ für „{spec.label}“ gibt es in der Datei nicht. "
                    f"Vorhandene Spalten: {_header_list(table.headers)}."
                )
            found[name] = table.headers.index(wanted)
            continue
        for candidate in (name, spec.label, *spec.aliases):
            index = by_norm.get(_norm(candidate))
            if index is not None:
                found[name] = index
                break
    missing = [spec.label for name, spec in fields.items() if spec.required and name not in found]
    if missing:
        hint = ""
        if len(table.headers) == 1:
            hint = (
                " Die Datei hat nur eine Spalte – vermutlich ein anderes Trennzeichen als "
                "Semikolon, Komma oder Tabulator."
            )
        raise TableError(
            f"Pflichtspalte fehlt: {', '.join(f'„{m}“' for m in missing)}. Vorhandene Spalten: "
            f"{_header_list(table.headers)}. Bitte die Spalten zuordnen.{hint}"
        )
    return found


def _header_list(headers: Iterable[str]) -> str:
    names = [h or "(leer)" for h in headers]
    shown = ", ".join(names[:15])
    return shown + (f" und {len(names) - 15} weitere" if len(names) > 15 else "")


def cell(table: Table, row: list[str], columns: Mapping[str, int], name: str) -> str:
    """The stripped cell of field ``name`` in ``row`` ('' when unmapped or the row is short)."""
    index = columns.get(name)
    if index is None or index >= len(row):
        return ""
    return row[index].strip()


def _where(row: int | None, label: str) -> str:
    return f"Zeile {row}, Feld „{label}“" if row is not None else f"Feld „{label}“"


_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d.%m.%Y",
    "%d.%m.%y",
    "%d/%m/%Y",
    "%Y/%m/%d",
    "%d-%m-%Y",
    "%d %b %Y",
    "%d-%b-%Y",
    "%d-%b-%y",
)
_TIME_SUFFIX = re.compile(r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?$")


def parse_date(value: str, *, row: int | None = None, label: str = "Datum") -> dt.date:
    """A date in ISO, German (``31.12.2015``, ``31.12.15``) or British (``31/12/2015``)
    form; a time part is ignored."""
    text = value.strip()
    if not text:
        raise TableError(f"{_where(row, label)}: Das Datum fehlt.")
    if _TIME_SUFFIX.search(text):
        return parse_datetime(text, row=row, label=label).date()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise TableError(
        f"{_where(row, label)}: „{text[:40]}“ ist kein Datum. Erwartet z. B. 31.12.2015 oder "
        "2015-12-31."
    )


def parse_datetime(
    value: str, *, row: int | None = None, label: str = "Zeitpunkt", tz: dt.tzinfo = dt.UTC
) -> dt.datetime:
    """A point in time (ISO 8601 with or without offset, or German ``31.12.2015 14:30``);
    without an offset it is read in ``tz``. The result is always timezone-aware."""
    text = value.strip()
    if not text:
        raise TableError(f"{_where(row, label)}: Der Zeitpunkt fehlt.")
    parsed: dt.datetime | None = None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in (
            "%d.%m.%Y %H:%M:%S",
            "%d.%m.%Y %H:%M",
            "%d.%m.%Y",
            "%d/%m/%Y %H:%M:%S",
            "%d/%m/%Y %H:%M",
            "%d/%m/%Y",
        ):
            try:
                parsed = dt.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise TableError(
            f"{_where(row, label)}: „{text[:40]}“ ist kein Zeitpunkt. Erwartet z. B. "
            "2015-12-31 14:30:00 oder 31.12.2015 14:30."
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        parsed.astimezone(dt.UTC)  # 0001-01-01 +01:00 lies before the first UTC moment
    except OverflowError:
        raise TableError(
            f"{_where(row, label)}: „{text[:40]}“ liegt außerhalb des Zeitraums, den Rathaus "
            "speichern kann (Jahr 1 bis 9999)."
        ) from None
    return parsed


_AMOUNT_CLEAN = re.compile(r"[€$£\s]|EUR|GBP|USD", re.IGNORECASE)


def parse_amount_cents(value: str, *, row: int | None = None, label: str = "Betrag") -> int:
    """An amount in cents from ``1.471,60 €``, ``1471.60``, ``£1,234.56``, ``-12,5`` or
    ``(12.00)`` (accounting negative). Separators are told apart by their position."""
    text = _AMOUNT_CLEAN.sub("", value.strip())
    negative = text.startswith("(") and text.endswith(")")
    text = text.strip("()")
    if text.startswith("-"):
        negative, text = True, text[1:]
    elif text.endswith("-"):  # SAP style 12,50-
        negative, text = True, text[:-1]
    if not re.fullmatch(r"[0-9.,']+", text or "x"):
        raise TableError(
            f"{_where(row, label)}: „{value.strip()[:40]}“ ist kein Betrag. Erwartet z. B. "
            "1.471,60 oder 1471.60."
        )
    text = text.replace("'", "")
    last_dot, last_comma = text.rfind("."), text.rfind(",")
    decimal = "," if last_comma > last_dot else "."
    integer, separator, fraction = text.rpartition(decimal)
    if not separator:
        integer, fraction = fraction, ""
    single_kind = last_dot < 0 or last_comma < 0
    if single_kind and (text.count(decimal) > 1 or len(fraction) == 3):
        # "1.234.567" or "1,471": only thousands separators.
        integer, fraction = text, ""
    groups = re.split(r"[.,]", integer)
    grouped_ok = len(groups) == 1 or (
        1 <= len(groups[0]) <= 3
        and all(len(g) == 3 for g in groups[1:])
        and (not fraction or decimal not in integer)
    )
    integer = integer.replace(".", "").replace(",", "") if grouped_ok else "x"
    if not integer.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 2:
        raise TableError(
            f"{_where(row, label)}: „{value.strip()[:40]}“ ist kein eindeutiger Betrag. Erwartet "
            "z. B. 1.471,60 oder 1471.60."
        )
    cents = int(integer) * 100 + int((fraction + "00")[:2])
    return -cents if negative else cents


def parse_number(value: str, *, row: int | None = None, label: str = "Wert") -> float:
    """A number in German (``1.234,5``) or English (``1234.5``) notation."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_amount_cents(text, row=row, label=label) / 100
    except TableError:
        raise TableError(f"{_where(row, label)}: „{text[:40]}“ ist keine Zahl.") from None
