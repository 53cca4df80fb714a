"""Series for the volume forecast: Rathaus's own cases, and imported count series.

Own cases are counted per calendar day (Europe/Berlin) of ``Case.received_at``, per
department (org unit), per service, or all together. Imported series live in
``InsightDataset(kind="zeitreihe")`` with one :class:`~rathaus.core.models.SeriesPoint` per
series and day. Two CSV/XLSX layouts are read:

* **aggregiert** – one row per day (and series): ``Datum;Reihe;Anzahl`` (``Reihe`` optional);
* **einzeln** – one row per request: a date or timestamp column and optionally a grouping
  column (e.g. Boston's ``OPEN_DT`` and ``Department``); rows are counted per day.

Every row is checked before anything is written; the original file goes to the original store
and the data set with its points is added in the caller's transaction, so a bad row leaves
nothing behind.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import Case, InsightDataset, OrgUnit, SeriesPoint, Service
from rathaus.core.storage import OriginalStore
from rathaus.insights.forecast import DailySeries, daily_series
from rathaus.insights.tabular import (
    FieldSpec,
    Table,
    TableError,
    cell,
    map_columns,
    parse_date,
    parse_number,
    read_table,
)

KIND = "zeitreihe"
LOCAL = ZoneInfo("Europe/Berlin")
LAYOUTS = ("auto", "aggregiert", "einzeln")
MAX_SERIES = 500
MAX_ROWS = 2_000_000
MAX_NAME = 200
UNNAMED = "(ohne Angabe)"
GZIP_MAGIC = b"\x1f\x8b"
MAX_UNPACKED = 200 * 1024 * 1024

FIELDS = {
    "datum": FieldSpec(
        "Datum",
        aliases=(
            "date",
            "day",
            "tag",
            "eingang",
            "eingangsdatum",
            "eingangstag",
            "open_dt",
            "opened",
            "created",
            "created_at",
            "received_at",
            "zeitpunkt",
        ),
    ),
    "reihe": FieldSpec(
        "Reihe",
        aliases=(
            "series",
            "serie",
            "gruppe",
            "group",
            "abteilung",
            "department",
            "amt",
            "organisationseinheit",
            "leistung",
            "service",
            "kategorie",
            "category",
        ),
        required=False,
    ),
    "anzahl": FieldSpec(
        "Anzahl",
        aliases=("count", "value", "wert", "faelle", "fälle", "menge", "eingaenge", "eingänge"),
        required=False,
    ),
}


class SeriesImportError(TableError):
    """An import that was refused; nothing was written."""


# -- sources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A series one can forecast: ``key`` as used by page, API and CLI."""

    key: str
    label: str
    group: str


def list_sources(session: Session, tenant_id: int) -> list[Source]:
    """All own-case series (all, per department, per service) and every imported series."""
    sources = [Source("alle", "Alle Eingänge", "Eigene Vorgänge")]
    units = session.scalars(
        select(OrgUnit).where(OrgUnit.tenant_id == tenant_id).order_by(OrgUnit.name)
    )
    sources += [Source(f"amt:{u.id}", u.name, "Eigene Vorgänge je Amt") for u in units]
    services = session.scalars(
        select(Service).where(Service.tenant_id == tenant_id).order_by(Service.name)
    )
    sources += [Source(f"leistung:{s.id}", s.name, "Eigene Vorgänge je Leistung") for s in services]
    for dataset in datasets(session, tenant_id):
        for name in sorted(dataset.summary.get("series", {})):
            sources.append(
                Source(f"datensatz:{dataset.id}:{name}", name, f"Datensatz „{dataset.name}“")
            )
    return sources


def datasets(session: Session, tenant_id: int) -> list[InsightDataset]:
    return list(
        session.scalars(
            select(InsightDataset)
            .where(InsightDataset.tenant_id == tenant_id, InsightDataset.kind == KIND)
            .order_by(InsightDataset.created_at.desc(), InsightDataset.id.desc())
        )
    )


def _local_day(at: dt.datetime) -> dt.date:
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(LOCAL).date()


def load_source(
    session: Session, tenant_id: int, key: str, *, today: dt.date | None = None
) -> DailySeries:
    """The daily series behind ``key`` (see :func:`list_sources`). Own cases run up to
    yesterday (today is not complete yet) from the first case of that series."""
    kind, _, rest = key.partition(":")
    if kind == "datensatz":
        dataset_id, _, name = rest.partition(":")
        return _dataset_series(session, tenant_id, _int(dataset_id, key), name)
    query = select(Case.received_at).where(Case.tenant_id == tenant_id)
    if kind == "alle" and not rest:
        label = "Alle Eingänge"
    elif kind == "amt":
        unit = _by_id_or_code(session, OrgUnit, tenant_id, rest)
        if unit is None:
            raise NotFoundError(f"Das Amt „{rest}“ gibt es nicht.")
        label, query = unit.name, query.where(Case.org_unit_id == unit.id)
    elif kind == "leistung":
        service = _by_id_or_code(session, Service, tenant_id, rest)
        if service is None:
            raise NotFoundError(f"Die Leistung „{rest}“ gibt es nicht.")
        label, query = service.name, query.where(Case.service_id == service.id)
    else:
        raise NotFoundError(
            f"Unbekannte Quelle „{key}“. Erlaubt: alle, amt:<Nr.>, leistung:<Nr.>, "
            "datensatz:<Nr.>:<Reihe>."
        )
    counts: dict[dt.date, float] = defaultdict(float)
    for received_at in session.scalars(query):
        counts[_local_day(received_at)] += 1
    end = (today or dt.datetime.now(LOCAL).date()) - dt.timedelta(days=1)
    counts = {day: value for day, value in counts.items() if day <= end}
    if not counts:
        raise RathausError(
            f"Für „{label}“ gibt es noch keine Vorgänge – ohne Vergangenheit keine Prognose."
        )
    return daily_series(label, counts, start=min(counts), end=end)


def _by_id_or_code(session: Session, model: Any, tenant_id: int, text: str) -> Any:
    """An org unit or service of the tenant by number or by its code (``BA``)."""
    if text.isdigit():
        row = session.get(model, int(text))
        return row if row is not None and row.tenant_id == tenant_id else None
    return session.scalar(select(model).where(model.tenant_id == tenant_id, model.code == text))


def _int(text: str, key: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise NotFoundError(f"Unbekannte Quelle „{key}“.") from None


def _dataset_series(session: Session, tenant_id: int, dataset_id: int, name: str) -> DailySeries:
    dataset = session.get(InsightDataset, dataset_id)
    if dataset is None or dataset.tenant_id != tenant_id or dataset.kind != KIND:
        raise NotFoundError(f"Den Datensatz Nr. {dataset_id} gibt es nicht.")
    rows = session.execute(
        select(SeriesPoint.day, SeriesPoint.value).where(
            SeriesPoint.dataset_id == dataset.id, SeriesPoint.series == name
        )
    ).all()
    if not rows:
        raise NotFoundError(f"Die Reihe „{name}“ gibt es im Datensatz „{dataset.name}“ nicht.")
    last = dt.date.fromisoformat(dataset.summary["last_day"])
    return daily_series(name, {day: value for day, value in rows}, end=last)


# -- import ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedSeries:
    layout: str
    counts: dict[str, dict[dt.date, float]]
    columns: dict[str, str]  # field → header used
    rows: int


def unpack(data: bytes, filename: str) -> tuple[bytes, str]:
    """A gzipped upload (``.csv.gz``) unpacked; anything else unchanged."""
    if not data.startswith(GZIP_MAGIC):
        return data, filename
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            unpacked = handle.read(MAX_UNPACKED + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise SeriesImportError(f"Die gepackte Datei „{filename}“ ist beschädigt.") from exc
    if len(unpacked) > MAX_UNPACKED:
        raise SeriesImportError(f"Die Datei „{filename}“ ist entpackt größer als 200 MB.")
    return unpacked, filename.removesuffix(".gz")


def parse_series(
    data: bytes, filename: str, *, mapping: dict[str, str] | None = None, layout: str = "auto"
) -> tuple[Table, ParsedSeries]:
    """Read and check every row; raises :class:`TableError` naming row and field."""
    if layout not in LAYOUTS:
        raise SeriesImportError(
            f"Unbekanntes Format „{layout}“. Erlaubt sind: aggregiert, einzeln, auto."
        )
    data, filename = unpack(data, filename)
    table = read_table(data, filename, max_rows=MAX_ROWS)
    mapping = {k: v for k, v in (mapping or {}).items() if v}
    if layout == "einzeln" and "anzahl" in mapping:
        raise SeriesImportError(
            "Im Format „einzeln“ (eine Zeile je Anliegen) gibt es keine Spalte „Anzahl“."
        )
    columns = map_columns(table, FIELDS, mapping)
    if layout == "aggregiert" and "anzahl" not in columns:
        raise SeriesImportError(
            "Pflichtspalte fehlt: „Anzahl“ (Format „aggregiert“: Datum; Reihe; Anzahl). "
            f"Vorhandene Spalten: {', '.join(h or '(leer)' for h in table.headers)}. Bitte die "
            "Spalten zuordnen oder das Format „einzeln“ wählen (eine Zeile je Anliegen)."
        )
    if layout == "auto":
        layout = "aggregiert" if "anzahl" in columns else "einzeln"
    if layout == "einzeln":
        columns.pop("anzahl", None)
    if not table.rows:
        raise SeriesImportError("Die Datei enthält keine Datenzeilen.")
    counts: dict[str, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    for index, row in enumerate(table.rows):
        number = table.row_number(index)
        day = parse_date(
            cell(table, row, columns, "datum"), row=number, label=_label(table, columns, "datum")
        )
        name = cell(table, row, columns, "reihe") or UNNAMED
        if len(name) > MAX_NAME:
            raise SeriesImportError(
                f"Zeile {number}, Feld „{_label(table, columns, 'reihe')}“: Der Name der Reihe "
                f"ist länger als {MAX_NAME} Zeichen."
            )
        value = 1.0
        if layout == "aggregiert":
            text = cell(table, row, columns, "anzahl")
            label = _label(table, columns, "anzahl")
            if not text:
                raise SeriesImportError(f"Zeile {number}, Feld „{label}“: Die Anzahl fehlt.")
            value = parse_number(text, row=number, label=label)
            if value < 0:
                raise SeriesImportError(
                    f"Zeile {number}, Feld „{label}“: „{text}“ ist negativ; Fallzahlen können "
                    "nicht negativ sein."
                )
        counts[name][day] += value
        if len(counts) > MAX_SERIES:
            raise SeriesImportError(
                f"Zeile {number}: mehr als {MAX_SERIES} verschiedene Reihen in der Spalte "
                f"„{_label(table, columns, 'reihe')}“ – ist das die richtige Spalte?"
            )
    used = {f: table.headers[i] for f, i in columns.items()}
    return table, ParsedSeries(
        layout, {k: dict(v) for k, v in counts.items()}, used, len(table.rows)
    )


def _label(table: Table, columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return table.headers[index] if index is not None else FIELDS[name].label


def import_series(
    session: Session,
    store: OriginalStore,
    *,
    tenant_id: int,
    data: bytes,
    filename: str,
    name: str = "",
    mapping: dict[str, str] | None = None,
    layout: str = "auto",
    created_by: str = "",
) -> InsightDataset:
    """Check the whole file, keep the original, then add the data set and its points to
    ``session`` (the caller's transaction: commit or roll back as one)."""
    table, parsed = parse_series(data, filename, mapping=mapping, layout=layout)
    stored = store.put(tenant_id, data)
    all_days = [day for per_day in parsed.counts.values() for day in per_day]
    series_summary = {
        series: {
            "first_day": min(per_day).isoformat(),
            "last_day": max(per_day).isoformat(),
            "days": len(per_day),
            "total": round(sum(per_day.values()), 2),
        }
        for series, per_day in sorted(parsed.counts.items())
    }
    dataset = InsightDataset(
        tenant_id=tenant_id,
        kind=KIND,
        name=(name.strip() or filename or "Zeitreihe")[:300],
        filename=filename[:300],
        original_sha256=stored.sha256,
        rows=parsed.rows,
        mapping=parsed.columns | {"format": parsed.layout},
        summary={
            "first_day": min(all_days).isoformat(),
            "last_day": max(all_days).isoformat(),
            "series": series_summary,
            "encoding": table.encoding,
            "delimiter": table.delimiter,
            "notes": table.notes,
        },
        created_by=created_by[:120],
    )
    session.add(dataset)
    session.flush()
    points = [
        {
            "tenant_id": tenant_id,
            "dataset_id": dataset.id,
            "series": series,
            "day": day,
            "value": value,
        }
        for series, per_day in parsed.counts.items()
        for day, value in sorted(per_day.items())
    ]
    for chunk in range(0, len(points), 5000):
        session.execute(insert(SeriesPoint), points[chunk : chunk + 5000])
    return dataset


def delete_dataset(session: Session, tenant_id: int, dataset_id: int) -> str:
    """Remove an imported series data set (the original file stays in the store)."""
    dataset = session.get(InsightDataset, dataset_id)
    if dataset is None or dataset.tenant_id != tenant_id or dataset.kind != KIND:
        raise NotFoundError(f"Den Datensatz Nr. {dataset_id} gibt es nicht.")
    session.execute(delete(SeriesPoint).where(SeriesPoint.dataset_id == dataset.id))
    session.delete(dataset)
    return dataset.name


def point_count(session: Session, dataset_id: int) -> int:
    return int(
        session.scalar(select(func.count()).where(SeriesPoint.dataset_id == dataset_id)) or 0
    )


def dataset_info(dataset: InsightDataset) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "name": dataset.name,
        "filename": dataset.filename,
        "rows": dataset.rows,
        "format": dataset.mapping.get("format"),
        "columns": {k: v for k, v in dataset.mapping.items() if k != "format"},
        "first_day": dataset.summary.get("first_day"),
        "last_day": dataset.summary.get("last_day"),
        "series": dataset.summary.get("series", {}),
        "original_sha256": dataset.original_sha256,
        "created_by": dataset.created_by,
        "created_at": dataset.created_at.isoformat() if dataset.created_at else None,
    }
