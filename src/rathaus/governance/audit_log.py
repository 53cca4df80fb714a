"""The audit log for people: chain checks with German findings, signed export, export check.

The hash chain itself lives in :mod:`rathaus.core.audit`. This module checks every chain of an
installation (:func:`verify_all`), writes an export as JSON Lines or CSV with a signature file
(:func:`export`, :func:`signature`) and checks such an export (:func:`check_export`): its HMAC
signature (needs the installation's ``secret_key``), the file's SHA-256 and the chain of rows
in it (needs nothing but the file). docs/audit.md describes the formats.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.errors import RathausError
from rathaus.core.models import AuditEvent, Tenant, utcnow

LOCAL = ZoneInfo("Europe/Berlin")
FORMATS = ("jsonl", "csv")
SIGNATURE_FORMAT = "rathaus-audit-export/1"
ALGORITHM = "HMAC-SHA256"
KEY_PURPOSE = b"rathaus-audit-export-signature/1"
EXPORT_COLUMNS = ("id", "tenant_id", "at", "kind", "actor", "subject", "data", "prev_hash", "hash")
SYSTEM = "system"
# A CSV cell starting with one of these is prefixed with an apostrophe (spreadsheet formula
# injection); an apostrophe is itself escaped, so a reader removes exactly one leading "'".
_CSV_ESCAPE = ("=", "+", "-", "@", "\t", "\r", "'")


class AuditExportError(RathausError):
    """An export or its signature does not check out."""


# -- chain checks ------------------------------------------------------------------------------


def chain_label(tenant: Tenant | None) -> str:
    return f"Mandant {tenant.slug} ({tenant.name})" if tenant else "Systemkette (ohne Mandant)"


def describe_break(broken: audit.Break) -> str:
    """One German paragraph naming the first broken entry and what is wrong with it."""
    at = audit.timestamp(broken.created_at)
    head = (
        f"Erster gebrochener Eintrag: Nr. {broken.id} (Position {broken.position} der Kette) "
        f"vom {at}, Art „{broken.kind}“, ausgelöst von „{broken.actor}“."
    )
    if not broken.content_ok and not broken.link_ok:
        why = (
            "Inhalt und Verkettung passen nicht: der Eintrag wurde verändert und verweist nicht "
            "auf seinen Vorgänger."
        )
    elif not broken.content_ok:
        why = (
            "Inhalt verändert: der gespeicherte Hash passt nicht zum Inhalt des Eintrags "
            "(Art, Auslöser, Gegenstand, Daten oder Zeitpunkt wurden geändert)."
        )
    else:
        before = f"Eintrag Nr. {broken.previous_id}" if broken.previous_id else "dem Kettenanfang"
        why = (
            f"Verkettung unterbrochen: der Eintrag verweist nicht auf den Hash seines Vorgängers "
            f"({before}). Dazwischen wurde ein Eintrag gelöscht oder eingefügt, die Reihenfolge "
            "geändert, oder der Vorgänger wurde samt Hash neu berechnet."
        )
    return f"{head} {why}"


@dataclass(frozen=True)
class ChainReport:
    label: str
    slug: str | None
    result: audit.ChainResult

    @property
    def ok(self) -> bool:
        return self.result.ok

    def to_dict(self) -> dict[str, Any]:
        broken = self.result.broken
        return {
            "chain": self.slug or SYSTEM,
            "label": self.label,
            "ok": self.ok,
            "checked": self.result.checked,
            "last_hash": self.result.last_hash if self.ok else None,
            "first_broken": None
            if broken is None
            else {
                "id": broken.id,
                "position": broken.position,
                "at": audit.timestamp(broken.created_at),
                "kind": broken.kind,
                "actor": broken.actor,
                "content_ok": broken.content_ok,
                "link_ok": broken.link_ok,
                "message": describe_break(broken),
            },
        }


def verify_tenant(session: Session, tenant: Tenant | None) -> ChainReport:
    """Check the chain of ``tenant`` (``None``: the system chain)."""
    result = audit.verify(session, tenant.id if tenant else None)
    return ChainReport(chain_label(tenant), tenant.slug if tenant else None, result)


def verify_all(session: Session, tenant: Tenant | None = None) -> list[ChainReport]:
    """With ``tenant``: its chain. Without: every tenant's chain and the system chain."""
    if tenant is not None:
        return [verify_tenant(session, tenant)]
    tenants = list(session.scalars(select(Tenant).order_by(Tenant.id)))
    return [verify_tenant(session, t) for t in tenants] + [verify_tenant(session, None)]


def chain_size(session: Session, tenant_id: int | None) -> int:
    query = select(func.count(AuditEvent.id)).where(
        AuditEvent.tenant_id.is_(None) if tenant_id is None else AuditEvent.tenant_id == tenant_id
    )
    return int(session.scalar(query) or 0)


# -- period ------------------------------------------------------------------------------------


def parse_day(value: str | None, what: str) -> dt.date | None:
    """A date as ``JJJJ-MM-TT`` or ``TT.MM.JJJJ``; a German error otherwise."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise RathausError(
        f"„{text}“ ist kein gültiges Datum für {what}. Bitte als JJJJ-MM-TT oder TT.MM.JJJJ angeben."
    )


@dataclass(frozen=True)
class Period:
    """Whole days in local (German) time, both ends included; ``None``: open."""

    start: dt.date | None = None
    end: dt.date | None = None

    @classmethod
    def parse(cls, von: str | None, bis: str | None) -> Period:
        period = cls(parse_day(von, "den Beginn (von)"), parse_day(bis, "das Ende (bis)"))
        if period.start and period.end and period.start > period.end:
            raise RathausError("Der Beginn liegt nach dem Ende. Bitte den Zeitraum prüfen.")
        return period

    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        lo = hi = None
        if self.start:
            lo = dt.datetime.combine(self.start, dt.time(), LOCAL).astimezone(dt.UTC)
        if self.end:
            end = self.end + dt.timedelta(days=1)
            hi = dt.datetime.combine(end, dt.time(), LOCAL).astimezone(dt.UTC)
        return lo, hi

    def to_dict(self) -> dict[str, str | None]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
        }


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def events_query(
    session: Session,
    tenant_id: int | None | str,
    period: Period = Period(),
    *,
    kind: str = "",
    actor: str = "",
    max_id: int | None = None,
) -> Any:
    """``select`` of :data:`rathaus.core.audit.COLUMNS` ordered by id. ``tenant_id="alle"``:
    every chain; ``None``: the system chain."""
    query = select(*audit.COLUMNS).order_by(AuditEvent.id)
    if tenant_id != "alle":
        query = query.where(
            AuditEvent.tenant_id.is_(None)
            if tenant_id is None
            else AuditEvent.tenant_id == tenant_id
        )
    lo, hi = period.bounds()
    sqlite = session.get_bind().dialect.name == "sqlite"
    # SQLite stores naive UTC text; compare like with like.
    if lo is not None:
        query = query.where(AuditEvent.created_at >= (_naive_utc(lo) if sqlite else lo))
    if hi is not None:
        query = query.where(AuditEvent.created_at < (_naive_utc(hi) if sqlite else hi))
    if kind:
        query = query.where(AuditEvent.kind == kind)
    if actor:
        query = query.where(func.lower(AuditEvent.actor).contains(actor.lower()))
    if max_id is not None:
        query = query.where(AuditEvent.id <= max_id)
    return query


# -- export ------------------------------------------------------------------------------------


def row_dict(row: Any) -> dict[str, Any]:
    """One exported row: every field a reader needs to recompute its hash."""
    return {
        "id": row.id,
        "tenant_id": row.tenant_id,
        "at": audit.timestamp(row.created_at),
        "kind": row.kind,
        "actor": row.actor,
        "subject": row.subject,
        "data": row.data,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    value = str(value)
    return "'" + value if value.startswith(_CSV_ESCAPE) else value


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


@dataclass
class ExportSummary:
    """What the signature states about an export; filled while the rows are written."""

    rows: int = 0
    sha256: str = ""
    chains: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, row: dict[str, Any]) -> None:
        self.rows += 1
        key = SYSTEM if row["tenant_id"] is None else str(row["tenant_id"])
        chain = self.chains.get(key)
        if chain is None:
            chain = self.chains[key] = {
                "rows": 0,
                "first_prev_hash": row["prev_hash"],
                "first_hash": row["hash"],
                "last_hash": row["hash"],
            }
        chain["rows"] += 1
        chain["last_hash"] = row["hash"]


def export_chunks(
    session: Session, query: Any, fmt: str, summary: ExportSummary | None = None
) -> Iterator[bytes]:
    """The export file of ``query``'s rows in pieces (streamed, deterministic for the same
    rows); ``summary`` is filled along the way."""
    if fmt not in FORMATS:
        raise RathausError(f"Unbekanntes Format „{fmt}“. Erlaubt: {', '.join(FORMATS)}.")
    if fmt == "csv":
        yield ("\ufeff" + _csv_line(list(EXPORT_COLUMNS))).encode()
    lines: list[str] = []
    for row in audit.stream_rows(session, query):
        data = row_dict(row)
        if summary is not None:
            summary.add(data)
        if fmt == "jsonl":
            lines.append(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
        else:
            lines.append(_csv_line([_csv_cell(data[c]) for c in EXPORT_COLUMNS]))
        if len(lines) >= 1000:
            yield "".join(lines).encode()
            lines = []
    if lines:
        yield "".join(lines).encode()


def export_to_file(
    session: Session,
    path: Path,
    *,
    fmt: str,
    tenant: Tenant | None,
    period: Period = Period(),
    secret_key: str,
    max_id: int | None = None,
) -> dict[str, Any]:
    """Write the export to ``path`` and its signature to ``path.sig``; returns the signature."""
    query = events_query(session, tenant.id if tenant else "alle", period, max_id=max_id)
    digest = hashlib.sha256()
    summary = ExportSummary()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".teil")
    try:
        with partial.open("wb") as out:
            for chunk in export_chunks(session, query, fmt, summary):
                digest.update(chunk)
                out.write(chunk)
        summary.sha256 = digest.hexdigest()
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    sig = signature(
        summary, fmt=fmt, filename=path.name, tenant=tenant, period=period, secret_key=secret_key
    )
    signature_path(path).write_text(
        json.dumps(sig, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return sig


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def signing_key(secret_key: str) -> bytes:
    """A key for export signatures only, derived from the installation's secret."""
    return hmac.new(secret_key.encode("utf-8"), KEY_PURPOSE, hashlib.sha256).digest()


def _signed_bytes(fields: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in fields.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def signature(
    summary: ExportSummary,
    *,
    fmt: str,
    filename: str,
    tenant: Tenant | None,
    period: Period,
    secret_key: str,
    created_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The signature file's content: what the export holds, and an HMAC over all of it."""
    chains = list(summary.chains.values())
    fields: dict[str, Any] = {
        "format": SIGNATURE_FORMAT,
        "algorithm": ALGORITHM,
        "file": filename,
        "file_format": fmt,
        "file_sha256": summary.sha256,
        "rows": summary.rows,
        "first_hash": chains[0]["first_hash"] if chains else None,
        "last_hash": chains[-1]["last_hash"] if chains else None,
        "chains": summary.chains,
        "tenant": tenant.slug if tenant else None,
        "period": period.to_dict(),
        "created_at": audit.timestamp(created_at or utcnow()),
    }
    fields["signature"] = hmac.new(
        signing_key(secret_key), _signed_bytes(fields), hashlib.sha256
    ).hexdigest()
    return fields


# -- checking an export ------------------------------------------------------------------------


def _uncell(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def read_rows(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    """The rows of an export file, as :func:`row_dict` wrote them; German error if unreadable."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        if fmt == "jsonl":
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise AuditExportError(
                        f"Zeile {number} der Exportdatei ist kein gültiges JSON ({exc.msg})."
                    ) from exc
                if not isinstance(row, dict) or not set(EXPORT_COLUMNS) <= set(row):
                    raise AuditExportError(
                        f"Zeile {number} der Exportdatei hat nicht die Felder "
                        f"{', '.join(EXPORT_COLUMNS)}."
                    )
                yield row
            return
        reader = csv.reader(handle, delimiter=";")
        header = next(reader, None)
        if header is None or tuple(header) != EXPORT_COLUMNS:
            raise AuditExportError(
                "Die CSV-Datei hat nicht die Spalten eines Rathaus-Prüfprotokolls: "
                + ", ".join(EXPORT_COLUMNS)
                + "."
            )
        for number, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) != len(EXPORT_COLUMNS):
                raise AuditExportError(
                    f"Zeile {number} der CSV-Datei hat {len(cells)} statt "
                    f"{len(EXPORT_COLUMNS)} Spalten."
                )
            values = dict(zip(EXPORT_COLUMNS, (_uncell(c) for c in cells), strict=True))
            try:
                yield {
                    **values,
                    "id": int(values["id"]),
                    "tenant_id": int(values["tenant_id"]) if values["tenant_id"] else None,
                    "data": json.loads(values["data"]),
                }
            except (ValueError, json.JSONDecodeError) as exc:
                raise AuditExportError(
                    f"Zeile {number} der CSV-Datei ist unlesbar (id, tenant_id oder data)."
                ) from exc


def row_hash(row: dict[str, Any]) -> str:
    """The hash an exported row must carry (the same canonical JSON as in the database)."""
    return hashlib.sha256(
        audit.canonical_fields(
            kind=row["kind"],
            actor=row["actor"],
            tenant_id=row["tenant_id"],
            subject=row["subject"],
            data=row["data"],
            at=row["at"],
            prev=row["prev_hash"],
        )
    ).hexdigest()


@dataclass
class ExportCheck:
    rows: int
    chains: dict[str, int]
    signature_checked: bool
    complete_from_start: bool
    sig: dict[str, Any]


def load_signature(path: Path) -> dict[str, Any]:
    sig_file = signature_path(path)
    if not sig_file.is_file():
        raise AuditExportError(
            f"Die Signaturdatei {sig_file.name} fehlt. Sie muss neben der Exportdatei liegen."
        )
    try:
        sig = json.loads(sig_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditExportError(
            f"Die Signaturdatei {sig_file.name} ist kein gültiges JSON."
        ) from exc
    needed = {"format", "file_format", "file_sha256", "rows", "chains", "signature"}
    if not isinstance(sig, dict) or not needed <= set(sig) or sig.get("format") != SIGNATURE_FORMAT:
        raise AuditExportError(
            f"Die Signaturdatei {sig_file.name} ist keine Signatur eines Rathaus-Prüfprotokolls "
            f"({SIGNATURE_FORMAT})."
        )
    if sig["file_format"] not in FORMATS:
        raise AuditExportError(f"Unbekanntes Exportformat „{sig['file_format']}“ in der Signatur.")
    return sig


def check_export(path: Path, *, secret_key: str | None) -> ExportCheck:
    """Check an export against its signature file ``path.sig``: the HMAC (only with
    ``secret_key``), the file's SHA-256, the row count and the chain of every tenant in it.
    Raises :class:`AuditExportError` with the first problem."""
    if not path.is_file():
        raise AuditExportError(f"Die Exportdatei {path} gibt es nicht.")
    sig = load_signature(path)
    if secret_key is not None:
        expected = hmac.new(signing_key(secret_key), _signed_bytes(sig), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(sig["signature"])):
            raise AuditExportError(
                "Die Signatur ist ungültig: die Signaturdatei wurde verändert oder stammt von "
                "einer anderen Installation (anderer geheimer Schlüssel)."
            )
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sig["file_sha256"]:
        raise AuditExportError(
            "Die Exportdatei wurde verändert: ihr SHA-256 stimmt nicht mit der Signatur überein."
        )
    last: dict[str, tuple[str, int]] = {}
    counts: dict[str, int] = {}
    rows = 0
    for row in read_rows(path, sig["file_format"]):
        rows += 1
        key = SYSTEM if row["tenant_id"] is None else str(row["tenant_id"])
        if row_hash(row) != row["hash"]:
            raise AuditExportError(
                f"Eintrag Nr. {row['id']} (Zeile {rows} der Daten): der Hash passt nicht zum "
                "Inhalt – der Eintrag wurde verändert."
            )
        if key in last:
            prev_hash, prev_id = last[key]
            if row["prev_hash"] != prev_hash:
                raise AuditExportError(
                    f"Eintrag Nr. {row['id']}: die Verkettung ist unterbrochen (er verweist nicht "
                    f"auf Eintrag Nr. {prev_id}); ein Eintrag fehlt, wurde eingefügt oder "
                    "umgestellt."
                )
        else:
            stated = (sig["chains"].get(key) or {}).get("first_prev_hash")
            if stated != row["prev_hash"]:
                raise AuditExportError(
                    f"Eintrag Nr. {row['id']}: der Anfang der Kette passt nicht zur Signatur."
                )
        last[key] = (row["hash"], row["id"])
        counts[key] = counts.get(key, 0) + 1
    if rows != sig["rows"]:
        raise AuditExportError(
            f"Die Datei enthält {rows} Einträge, die Signatur nennt {sig['rows']}."
        )
    for key, chain in sig["chains"].items():
        if key not in last or last[key][0] != chain.get("last_hash"):
            raise AuditExportError(
                f"Das Ende der Kette {key} passt nicht zur Signatur: Einträge am Ende fehlen."
            )
    complete = all(c.get("first_prev_hash") == audit.GENESIS for c in sig["chains"].values())
    return ExportCheck(rows, counts, secret_key is not None, complete, sig)
