"""Logical backup: every table and the data-directory files of an installation in one archive.

Tables are read in one snapshot (PostgreSQL: one REPEATABLE READ, read-only transaction;
SQLite: one read transaction, which WAL lets writers continue beside) and streamed a page at a
time into the archive described in :mod:`rathaus.core.archive`; memory does not grow with the
database. Which tables exist is read from the database itself, never from a hand-written list.
The snapshot also feeds :func:`rathaus.core.restore.copy_database` (``migrate-to-postgres``).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, MetaData, Table, Text, cast, func, select, text
from sqlalchemy import table as sql_table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.schema import sort_tables_and_constraints
from sqlalchemy.sql import sqltypes

import rathaus
from rathaus.core import audit
from rathaus.core.archive import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    ORIGINAL_MEMBER,
    SUFFIX,
    BackupError,
    OriginalsTally,
    Progress,
    TableSpec,
    column_kind,
    encode,
    number,
    quiet,
    safe_file_name,
)
from rathaus.core.db import Database
from rathaus.core.migrate import UNMANAGED_PREFIXES, head_revision
from rathaus.core.models import Base

PAGE_ROWS = 1000

# Rows of these tables are deliberately left out: a restored login session would be valid
# again although its owner logged out after the backup. The tables themselves come back empty.
VOLATILE_TABLES = {
    "web_sessions": "Anmeldesitzungen (nach der Wiederherstellung neu anmelden)",
    "reauth_kept_forms": "für eine SSO-Bestätigung aufbewahrte Formulare (wenige Minuten gültig)",
    "login_challenges": "angefangene Anmeldungen vor dem zweiten Faktor (wenige Minuten gültig)",
}

# The data directory, entry by entry: what a backup carries, and why the rest stays out.
DATA_DIR_INCLUDED = {
    "originals": "gespeicherte Originale (unverändert, je Kommune, nach SHA-256 benannt)",
    "models": "Zuordnungsmodelle je Kommune (models/routing/<kommune>/vN-*.bin)",
}
DATA_DIR_EXCLUDED = {
    "rathaus.db": "die SQLite-Datenbank: logisch gesichert (tables/)",
    "jobs.db": "die Warteschlange: flüchtig; liegengebliebene Eingänge holt der Worker nach",
    "jobs": "Protokoll der Warteschlangen-Probe (ping.log)",
}
_SIDE_FILES = ("-wal", "-shm", "-journal")


def wanted_table(name: str, *, at_head: bool) -> bool:
    """Tables a backup carries: the schema's own, without Alembic's bookkeeping and the
    full-text index (rebuilt from ``knowledge_chunks`` on restore)."""
    if name == "alembic_version" or name.startswith(UNMANAGED_PREFIXES):
        return False
    # At the code's own revision the models know every table; anything else in the database
    # (another application's table) is not Rathaus's to copy.
    return name in Base.metadata.tables if at_head else True


def reflect(conn: Connection, *, at_head: bool) -> tuple[list[Table], list[Any]]:
    """The database's tables in insert order, and the foreign keys that close a cycle."""
    metadata = MetaData()
    metadata.reflect(conn, only=lambda name, _md: wanted_table(name, at_head=at_head))
    tables = sorted(metadata.tables.values(), key=lambda t: t.name)
    ordered, cyclic = [], []
    for table, constraints in sort_tables_and_constraints(tables):
        if table is None:
            cyclic.extend(constraints)
        else:
            ordered.append(table)
    return ordered, cyclic


def describe_table(table: Table) -> TableSpec:
    return TableSpec(
        name=table.name,
        columns=[(c.name, column_kind(table.name, c.name, c.type)) for c in table.columns],
        primary_key=[c.name for c in table.primary_key.columns],
    )


def single_int_key(table: Table) -> str | None:
    keys = list(table.primary_key.columns)
    if len(keys) == 1 and isinstance(keys[0].type, sqltypes.Integer):
        return keys[0].name
    return None


@dataclass
class Snapshot:
    """A consistent, read-only view of one database: its revision, tables and rows."""

    conn: Connection
    kind: str
    revision: str | None
    tables: list[Table]
    skipped: dict[str, str] = field(default_factory=dict)

    def specs(self) -> list[TableSpec]:
        return [describe_table(t) for t in self.tables]

    def rows(self, spec: TableSpec) -> Iterator[list[Any]]:
        """The table's rows in key order as JSON-ready lists, fetched a page at a time."""
        table = next(t for t in self.tables if t.name == spec.name)
        kinds = dict(spec.columns)
        columns = [
            cast(c, Text).label(c.name) if kinds[c.name] == "json" else c for c in table.columns
        ]
        order = list(table.primary_key.columns) or list(table.columns)
        result = self.conn.execute(
            select(*columns).order_by(*order).execution_options(yield_per=PAGE_ROWS)
        )
        plan = [kinds[c.name] for c in table.columns]
        for row in result:
            yield [encode(kind, value) for kind, value in zip(plan, row, strict=True)]

    def stream(self, table: Table, spec: TableSpec) -> Iterator[list[Any]]:
        """:meth:`rows`, counting them into ``spec.rows`` and, at the end, setting
        ``spec.next_id`` to the next id the source would hand out (sequence or largest key)."""
        key = single_int_key(table)
        index = [c.name for c in table.columns].index(key) if key else -1
        last_key = 0
        spec.rows = 0
        for values in self.rows(spec):
            spec.rows += 1
            if index >= 0 and values[index] is not None:
                last_key = max(last_key, int(values[index]))
            yield values
        if key:
            marks = [last_key + 1, self.sequence_next(table) or 0]
            spec.next_id = max(marks)

    def sequence_next(self, table: Table) -> int | None:
        """The next id the source database would hand out, if it keeps a high-water mark."""
        key = single_int_key(table)
        if key is None:
            return None
        if self.kind == "postgresql":
            last = self.conn.execute(
                text(
                    "SELECT pg_sequence_last_value(CAST(pg_get_serial_sequence(:t, :c) AS regclass))"
                    " WHERE pg_get_serial_sequence(:t, :c) IS NOT NULL"
                ),
                {"t": f'"{table.name}"', "c": key},
            ).scalar()
            return int(last) + 1 if last is not None else None
        has_seq = self.conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'")
        ).scalar()
        if not has_seq:
            return None
        seq = self.conn.execute(
            text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table.name}
        ).scalar()
        return int(seq) + 1 if seq is not None else None

    def audit_chains(self) -> list[dict[str, Any]] | None:
        """Every audit chain (per tenant and the system chain) as :mod:`rathaus.core.audit`
        verifies it, so a restore can prove it brought back the same chains."""
        if self.revision != head_revision() or not any(
            t.name == "audit_events" for t in self.tables
        ):
            return None
        return chain_states(self.conn)


def chain_states(conn: Connection) -> list[dict[str, Any]]:
    session = Session(bind=conn)
    try:
        tenant_ids = session.execute(
            text("SELECT DISTINCT tenant_id FROM audit_events WHERE tenant_id IS NOT NULL")
        ).scalars()
        chains = [None, *sorted(int(t) for t in tenant_ids)]
        states = []
        for tenant_id in chains:
            result = audit.verify(session, tenant_id)
            states.append(
                {
                    "tenant_id": tenant_id,
                    "entries": result.checked,
                    "ok": result.ok,
                    "last_hash": result.last_hash,
                }
            )
        return states
    finally:
        session.close()


@contextmanager
def snapshot(db: Database) -> Iterator[Snapshot]:
    """One consistent read transaction over ``db`` (see the module docstring)."""
    conn = db.engine.connect()
    try:
        if db.is_sqlite:
            conn.begin()
        else:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            conn.begin()
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        # The first read fixes the snapshot; everything after sees the same state.
        revision = _revision(conn)
        at_head = revision == head_revision()
        tables, _cyclic = reflect(conn, at_head=at_head)
        skipped = {t.name: VOLATILE_TABLES[t.name] for t in tables if t.name in VOLATILE_TABLES}
        tables = [t for t in tables if t.name not in VOLATILE_TABLES]
        yield Snapshot(conn, "sqlite" if db.is_sqlite else "postgresql", revision, tables, skipped)
    finally:
        conn.rollback()
        conn.close()


def _revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


# --- writing the archive ---------------------------------------------------------------------


class _HashingWriter:
    """A file wrapper that hashes and counts what passes through it."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)
        self.handle.write(data)


class _HashingReader:
    """Reads a file for tarfile while hashing it (the tar header needs the size first)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.handle.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    warnings: list[str]


def secret_fingerprint(secret: str) -> str:
    """Which secret key the installation had, without revealing it: restore warns when the
    restoring installation has another (routing models and derived keys need the same one)."""
    return hashlib.sha256(b"rathaus-backup-secret\0" + secret.encode("utf-8")).hexdigest()[:16]


def default_archive_name(now: dt.datetime | None = None) -> str:
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return f"rathaus-sicherung-{moment:%Y%m%d-%H%M%S}{SUFFIX}"


def archive_target(target: Path) -> Path:
    """A directory gets a dated file name; an existing file is never overwritten."""
    target = target.expanduser()
    if target.is_dir():
        target = target / default_archive_name()
    if target.exists():
        raise BackupError(
            f"{target} gibt es schon. Eine Sicherung überschreibt keine Datei: bitte einen "
            "neuen Namen oder ein Verzeichnis angeben."
        )
    if not target.parent.is_dir():
        raise BackupError(f"Das Verzeichnis {target.parent} gibt es nicht. Bitte zuerst anlegen.")
    return target


def write_archive(
    db: Database,
    data_dir: Path,
    target: Path,
    *,
    include_originals: bool = True,
    secret_key_id: str | None = None,
    progress: Progress = quiet,
) -> BackupResult:
    """Write the backup of ``db`` and ``data_dir`` to ``target`` (a new file, or a directory).

    The archive appears under its name only when complete (written as ``.part``, then renamed);
    it is readable by its owner only, since it holds personal data.
    """
    target = archive_target(target).resolve()
    partial = target.with_name(target.name + ".part")
    warnings: list[str] = []
    started = time.monotonic()
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BackupError(
            f"Die Sicherung kann nicht nach {target} geschrieben werden ({exc.strerror})."
        ) from exc
    try:
        with os.fdopen(fd, "wb") as raw:
            gz = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0)
            with gz, tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                manifest = _write_members(
                    tar,
                    db,
                    data_dir,
                    target=target,
                    include_originals=include_originals,
                    progress=progress,
                    warnings=warnings,
                )
                manifest["secret_key_id"] = secret_key_id
                _add_bytes(
                    tar, MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1).encode()
                )
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, target)
    except SQLAlchemyError as exc:
        partial.unlink(missing_ok=True)
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        raise BackupError(
            f"Beim Lesen der Datenbank brach die Sicherung ab ({detail}); es blieb keine halbe "
            "Datei zurück. Bitte die Datenbank prüfen und die Sicherung wiederholen."
        ) from exc
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(
            f"Die Sicherung nach {target} ist fehlgeschlagen ({exc.strerror or exc}); es blieb "
            "keine halbe Datei zurück. Bitte Speicherplatz und Rechte prüfen."
        ) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    progress(f"Fertig in {time.monotonic() - started:.1f} s: {target}")
    return BackupResult(target, manifest, warnings)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _write_members(
    tar: tarfile.TarFile,
    db: Database,
    data_dir: Path,
    *,
    target: Path,
    include_originals: bool,
    progress: Progress,
    warnings: list[str],
) -> dict[str, Any]:
    created_at = dt.datetime.now(dt.UTC)
    with snapshot(db) as snap:
        if snap.revision is None:
            raise BackupError(
                "Die Datenbank hat noch kein Schema. Bitte zuerst `rathaus db upgrade` ausführen."
            )
        tables = []
        for index, (table, spec) in enumerate(zip(snap.tables, snap.specs(), strict=True), 1):
            spec.member = f"tables/{index:03d}-{spec.name}.jsonl"
            _write_table(tar, snap, table, spec, dir=target.parent)
            tables.append(spec)
            progress(f"  {spec.name}: {number(spec.rows)} Zeilen")
        chains = snap.audit_chains()
        for chain in chains or []:
            if not chain["ok"]:
                warnings.append(
                    f"Die Prüfprotokoll-Kette {chain['tenant_id'] or 'System'} ist schon in der "
                    "Quelle gebrochen (`rathaus audit verify`); sie wird unverändert gesichert."
                )
        source = {"kind": snap.kind, "url": db.url if db.is_sqlite else _masked(db.url)}
        skipped = snap.skipped
        revision = snap.revision
    files, originals, not_included = _write_files(
        tar,
        data_dir,
        target=target,
        include_originals=include_originals,
        progress=progress,
        warnings=warnings,
    )
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rathaus_version": rathaus.__version__,
        "created_at": created_at.isoformat(),
        "source": source,
        "alembic_revision": revision,
        "tables": [t.to_dict() for t in tables],
        "skipped_tables": skipped,
        "audit_chains": chains,
        "originals_included": include_originals,
        "originals": originals.to_dict(),
        "files": files,
        "data_dir_not_included": not_included,
        "warnings": warnings,
    }
    return manifest


def _masked(url: str) -> str:
    from rathaus.core.config import mask_url

    return mask_url(url)


def _write_table(
    tar: tarfile.TarFile, snap: Snapshot, table: Table, spec: TableSpec, *, dir: Path
) -> None:
    """Stream the rows into a temporary file (the tar header needs the size), then add it."""
    with tempfile.TemporaryFile(dir=dir, prefix=".rathaus-sicherung-") as tmp:
        out = _HashingWriter(tmp)
        for values in snap.stream(table, spec):
            out.write(json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode())
            out.write(b"\n")
        spec.sha256, spec.size = out.sha.hexdigest(), out.size
        tmp.seek(0)
        info = tarfile.TarInfo(spec.member)
        info.size, info.mode, info.mtime = out.size, 0o600, int(time.time())
        tar.addfile(info, tmp)


def _data_dir_entries(data_dir: Path, target: Path) -> tuple[list[Path], list[str]]:
    """Top-level entries to carry, and those neither carried nor knowingly excluded."""
    included, unknown = [], []
    if not data_dir.is_dir():
        return included, unknown
    for entry in sorted(data_dir.iterdir()):
        name = entry.name
        base = next((name[: -len(s)] for s in _SIDE_FILES if name.endswith(s)), name)
        if name in DATA_DIR_INCLUDED and entry.is_dir() and not entry.is_symlink():
            included.append(entry)
        elif not (
            base in DATA_DIR_EXCLUDED
            or entry.resolve() in (target, target.parent)
            or name.startswith(".")
            or name.endswith((".part", SUFFIX))
        ):
            unknown.append(name)
    return included, unknown


def _walk(root: Path) -> Iterator[Path]:
    """Regular files below ``root`` in a stable order; links are not followed."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if not name.startswith(".") and path.is_file() and not path.is_symlink():
                yield path


def _write_files(
    tar: tarfile.TarFile,
    data_dir: Path,
    *,
    target: Path,
    include_originals: bool,
    progress: Progress,
    warnings: list[str],
) -> tuple[dict[str, dict[str, Any]], OriginalsTally, list[str]]:
    files: dict[str, dict[str, Any]] = {}
    originals = OriginalsTally()
    included, unknown = _data_dir_entries(data_dir.resolve(), target)
    for name in unknown:
        warnings.append(
            f"{data_dir / name} gehört zu keinem bekannten Teil des Datenverzeichnisses und "
            "wurde nicht gesichert."
        )
    for top in included:
        if top.name == "originals" and not include_originals:
            progress("  originals: ausgelassen (--ohne-originale)")
            continue
        count = 0
        for path in _walk(top):
            name = "files/" + path.relative_to(data_dir.resolve()).as_posix()
            if not safe_file_name(name):
                warnings.append(f"{path}: ungewöhnlicher Dateiname, nicht gesichert.")
                continue
            digest = _add_file(tar, name, path)
            if digest is None:
                warnings.append(f"{path} konnte nicht gelesen werden und wurde nicht gesichert.")
                continue
            sha, size = digest
            original = ORIGINAL_MEMBER.match(name)
            if original and original.group(3) != sha:
                # Already in the tar stream; listed so that verify accepts it and restore skips it.
                originals.damaged.append(name)
                warnings.append(
                    f"Das Original {path} ist im Dateispeicher verändert (Prüfsumme stimmt "
                    "nicht); es wird beim Wiederherstellen nicht zurückgeschrieben."
                )
            if original:
                originals.add(name, size)
            else:
                files[name] = {"sha256": sha, "size": size}
            count += 1
        progress(f"  {top.name}: {number(count)} Dateien")
    return files, originals, unknown


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> tuple[str, int] | None:
    try:
        handle = path.open("rb")
    except OSError:
        return None
    with handle:
        stat = os.fstat(handle.fileno())
        info = tarfile.TarInfo(name)
        info.size, info.mtime = stat.st_size, int(stat.st_mtime)
        info.mode = stat.st_mode & 0o775
        reader = _HashingReader(handle)
        tar.addfile(info, reader)  # type: ignore[arg-type]
    return reader.sha.hexdigest(), reader.size


def count_rows(conn: Connection, table: str) -> int:
    return int(conn.execute(select(func.count()).select_from(sql_table(table))).scalar() or 0)
