"""CSV and XLSX export of Lagebild tables, as downloads.

CSV is written for German spreadsheet programs: UTF-8 with BOM and semicolons. XLSX is written
with openpyxl (imported only when asked for). Every cell that starts with ``= + - @`` is
prefixed with an apostrophe so that a supplier named ``=HYPERLINK(…)`` stays text (CSV/formula
injection).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi.responses import Response

from rathaus.core.errors import RathausError

FORMATS = ("csv", "xlsx")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        try:
            float(value.replace(",", "."))
            return value  # a negative number stays a number
        except ValueError:
            return "'" + value
    return value


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}".replace(".", ",")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(_safe(value))


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """Semicolon CSV, UTF-8 with BOM, decimal comma."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([_csv_text(h) for h in headers])
    for row in rows:
        writer.writerow([_csv_text(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(headers: Sequence[str], rows: Iterable[Sequence[Any]], sheet: str = "Daten") -> bytes:
    """One worksheet with a bold, frozen header row."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook(write_only=False)
    worksheet = workbook.active
    worksheet.title = re.sub(r"[\[\]:*?/\\]", " ", sheet)[:31] or "Daten"
    worksheet.append(list(headers))
    for cell in worksheet[1]:
        cell.font = Font(bold=True)
    worksheet.freeze_panes = "A2"
    for row in rows:
        worksheet.append(
            [_safe(v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v) for v in row]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def table_response(
    fmt: str, filename: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Response:
    """A download of the table as ``fmt`` (``csv`` or ``xlsx``); ``filename`` without suffix."""
    if fmt not in FORMATS:
        raise RathausError(f"Unbekanntes Exportformat „{fmt}“. Erlaubt sind: csv, xlsx.")
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "-", filename).strip("-") or "export"
    if fmt == "csv":
        body, media_type = to_csv(headers, rows), "text/csv; charset=utf-8"
    else:
        body, media_type = to_xlsx(headers, rows, sheet=filename), XLSX_TYPE
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{safe_name}.{fmt}"'},
    )
