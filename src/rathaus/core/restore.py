"""Restore a backup archive, or copy a live database, into an empty database.

Everything happens in one transaction on the target (PostgreSQL and SQLite both have
transactional DDL): the schema is migrated to the archive's revision, the rows are inserted in
foreign-key order, the schema is brought to the newest revision, sequences are set past the
restored ids, and row counts and every audit chain are checked against the manifest. Only then
are the staged original files moved into the data directory and the transaction committed. Any
failure rolls back: the target is left exactly as it was.

:func:`copy_database` (``rathaus migrate-to-postgres``) feeds the rows of a live snapshot through
the same encoder, loader and checks, without an archive in between.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Table,
    Text,
    bindparam,
    cast,
    column,
    func,
    inspect,
    literal,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from rathaus.core.archive import (
    MANIFEST,
    ORIGINAL_MEMBER,
    BackupError,
    Progress,
    TableSpec,
    Verified,
    broken,
    decode,
    number,
    open_archive,
    quiet,
    read_lines,
    verify_archive,
)
from rathaus.core.backup import (
    PAGE_ROWS,
    chain_states,
    count_rows,
    reflect,
    single_int_key,
    snapshot,
    wanted_table,
)
from rathaus.core.db import Database, describe_url
from rathaus.core.migrate import MIGRATIONS_DIR, alembic_config, head_revision


@dataclass
class RestoreReport:
    """What arrived in the target, and the audit chains as verified there."""

    tables: int = 0
    rows: int = 0
    originals: int = 0
    files: int = 0
    revision: str | None = None
    migrated_from: str | None = None
    chains: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- the target's state ---------------------------------------------------------------------


def _revisions() -> list[str]:
    """Known revisions, newest first (the history is linear)."""
    return [r.revision for r in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()]


def check_revision_known(revision: str | None, what: str) -> None:
    if revision is not None and revision not in _revisions():
        raise BackupError(
            f"{what} hat die Schema-Revision {revision}, die diese Rathaus-Version nicht kennt "
            f"(neueste bekannte: {head_revision()}): sie stammt von einer neueren Version. Bitte "
            "zuerst Rathaus aktualisieren. Es wurde nichts verändert."
        )


def contents(conn: Connection) -> list[tuple[str, int]]:
    """The target's non-empty Rathaus tables with their row counts."""
    names = [n for n in inspect(conn).get_table_names() if wanted_table(n, at_head=False)]
    found = []
    for name in sorted(names):
        if conn.execute(select(literal(1)).select_from(table(name)).limit(1)).first():
            found.append((name, count_rows(conn, name)))
    return found


def target_contents(db: Database) -> list[tuple[str, int]]:
    """For the confirmation question: what ``db`` holds now (empty list: nothing)."""
    db.ping()
    with db.engine.connect() as conn:
        return contents(conn)


def describe_contents(found: list[tuple[str, int]], limit: int = 4) -> str:
    shown = ", ".join(f"{name}: {number(n)}" for name, n in found[:limit])
    return shown + (f" und {len(found) - limit} weitere Tabellen" if len(found) > limit else "")


# --- loading rows ---------------------------------------------------------------------------


REPLACE_HINT = (
    "Wiederhergestellt wird nur in eine leere Datenbank; `rathaus restore --ersetzen` ersetzt "
    "ihren Inhalt nach Rückfrage."
)
EMPTY_HINT = "Bitte eine leere Datenbank angeben (z. B. CREATE DATABASE rathaus OWNER rathaus)."


class _JsonText(TypeDecorator[str]):
    """A JSON column's exact text, cast to ``json``/``jsonb`` by PostgreSQL itself."""

    impl = Text
    cache_ok = True

    def __init__(self, jsonb: bool) -> None:
        super().__init__()
        self.jsonb = jsonb

    def bind_expression(self, bindvalue: Any) -> Any:
        return cast(bindvalue, postgresql.JSONB if self.jsonb else postgresql.JSON)


class Loader:
    """Writes tables into the target on ``conn``, inside the caller's transaction."""

    def __init__(self, db: Database, conn: Connection, progress: Progress = quiet) -> None:
        self.db = db
        self.conn = conn
        self.progress = progress
        self.is_pg = conn.dialect.name == "postgresql"
        self.tables: dict[str, Table] = {}
        self.cyclic: dict[str, set[str]] = {}
        self.loaded: set[str] = set()
        # (table, key column, key, column, value): references set once their row exists.
        self.deferred: list[tuple[str, str, Any, str, Any]] = []
        self.report = RestoreReport()

    # -- schema ------------------------------------------------------------------------------
    def _alembic(self, action: str, revision: str) -> None:
        cfg = alembic_config(self.db)
        cfg.attributes["connection"] = self.conn
        getattr(command, action)(cfg, revision)

    def _current(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(self.conn).get_current_revision()

    def prepare(self, revision: str, *, replace: bool, if_not_empty: str = REPLACE_HINT) -> None:
        """Check the target is empty (or clear it, with ``replace``) and migrate it to
        ``revision``, the schema the rows were written with."""
        check_revision_known(revision, "Das Archiv")
        current = self._current()
        check_revision_known(current, "Die Zieldatenbank")
        found = contents(self.conn)
        if found and not replace:
            raise BackupError(
                f"Die Zieldatenbank {describe_url(self.db.url)} ist nicht leer "
                f"({describe_contents(found)}). {if_not_empty} Es wurde nichts verändert."
            )
        if found:
            self.progress(f"Entferne den bisherigen Inhalt ({describe_contents(found)}) …")
            self._alembic("downgrade", "base")
            current = None
        self.report.migrated_from = revision
        order = _revisions()
        if current != revision:
            older = current is None or order.index(current) > order.index(revision)
            self._alembic("upgrade" if older else "downgrade", revision)
        tables, cyclic = reflect(self.conn, at_head=False)
        self.tables = {t.name: t for t in tables}
        for constraint in cyclic:
            self.cyclic.setdefault(constraint.parent.name, set()).update(
                c.name for c in constraint.columns
            )

    # -- rows --------------------------------------------------------------------------------
    def _insert_type(self, kind: str, target_type: Any) -> Any:
        if kind == "json":
            return _JsonText(isinstance(target_type, postgresql.JSONB)) if self.is_pg else Text()
        return target_type

    def _deferrable(self, target: Table) -> tuple[str | None, set[str], set[str]]:
        """The key, the self-references to it, and the columns of a foreign-key cycle."""
        key = single_int_key(target)
        self_refs = set()
        for fk in target.foreign_keys:
            if fk.column.table is target and key and fk.column.name == key:
                self_refs.add(fk.parent.name)
        return key, self_refs, self.cyclic.get(target.name, set())

    def load(self, spec: TableSpec, rows: Iterable[list[Any]]) -> int:
        """Insert ``rows`` (encoded as in the archive) into ``spec.name``; returns their number.

        Rows come in key order, so a reference to an earlier row of the same table is already
        there; a reference forward (or into a table of a cycle) is inserted as NULL and set
        afterwards.
        """
        target = self.tables.get(spec.name)
        if target is None:
            raise BackupError(
                f"Die Tabelle {spec.name} aus dem Archiv gibt es in der Zieldatenbank auf "
                f"Revision {self._current()} nicht. Das Archiv passt nicht zu den Migrationen."
            )
        names = [name for name, _ in spec.columns]
        missing = [n for n in names if n not in target.columns]
        if missing:
            raise BackupError(
                f"Die Spalte {spec.name}.{missing[0]} aus dem Archiv gibt es in der "
                "Zieldatenbank nicht. Das Archiv passt nicht zu den Migrationen."
            )
        plan = []
        for name, kind in spec.columns:
            col_type = target.columns[name].type
            aware = bool(getattr(col_type, "timezone", False))
            plan.append((name, kind, aware))
        stmt = table(
            spec.name,
            *(column(n, self._insert_type(k, target.columns[n].type)) for n, k, _ in plan),
        ).insert()
        key, self_refs, cyclic = self._deferrable(target)
        batch: list[dict[str, Any]] = []
        count = 0
        for values in rows:
            row = {
                name: decode(kind, value, aware=aware)
                for (name, kind, aware), value in zip(plan, values, strict=True)
            }
            for name in self_refs | cyclic:
                value = row.get(name)
                if value is None:
                    continue
                if name in cyclic or key is None or value >= row[key]:
                    self.deferred.append((spec.name, key or "", row.get(key or ""), name, value))
                    row[name] = None
            batch.append(row)
            count += 1
            if len(batch) >= PAGE_ROWS:
                self.conn.execute(stmt, batch)
                batch = []
        if batch:
            self.conn.execute(stmt, batch)
        self.loaded.add(spec.name)
        self.report.tables += 1
        self.report.rows += count
        self.progress(f"  {spec.name}: {number(count)} Zeilen")
        return count

    def _apply_deferred(self) -> None:
        for name, key, key_value, column_name, value in self.deferred:
            target = self.tables[name]
            if not key:
                raise BackupError(
                    f"Die Tabelle {name} verweist im Kreis auf andere Tabellen und hat keinen "
                    "einfachen Schlüssel; so kann sie nicht wiederhergestellt werden."
                )
            self.conn.execute(
                update(target)
                .where(target.c[key] == bindparam("k"))
                .values({column_name: bindparam("v")}),
                {"k": key_value, "v": value},
            )
        self.deferred.clear()

    # -- after the rows ----------------------------------------------------------------------
    def finish(self, specs: list[TableSpec], chains: list[dict[str, Any]] | None) -> RestoreReport:
        """Set deferred references, compare row counts, migrate to the newest revision, rebuild
        the full-text index, move sequences past the restored ids and verify the audit chains."""
        self._apply_deferred()
        for spec in specs:
            found = count_rows(self.conn, spec.name)
            if found != spec.rows:
                raise BackupError(
                    f"Nach dem Einspielen hat {spec.name} {number(found)} statt "
                    f"{number(spec.rows)} Zeilen. Die Wiederherstellung wurde zurückgenommen."
                )
        head = head_revision()
        if self._current() != head:
            self.progress(f"Bringe das Schema von {self._current()} auf {head} …")
            self._alembic("upgrade", "head")
        self.report.revision = head
        rebuild_fulltext(self.conn)
        if self.is_pg:
            reset_sequences(self.conn, {s.name: s.next_id for s in specs})
        self.report.chains = check_chains(self.conn, chains)
        return self.report


def rebuild_fulltext(conn: Connection) -> None:
    """SQLite's FTS5 table (migration 0003) is derived from ``knowledge_chunks``: refill it.
    PostgreSQL's expression index follows the rows by itself."""
    if conn.dialect.name != "sqlite":
        return
    names = set(inspect(conn).get_table_names())
    if "knowledge_fts" not in names or "knowledge_chunks" not in names:
        return
    conn.execute(text("DELETE FROM knowledge_fts"))
    conn.execute(
        text(
            "INSERT INTO knowledge_fts (search_title, search_text, tenant_id, chunk_id) "
            "SELECT search_title, search_text, tenant_id, id FROM knowledge_chunks ORDER BY id"
        )
    )


def reset_sequences(conn: Connection, next_ids: dict[str, int | None]) -> None:
    """Every serial/identity column continues after the largest restored id, or after the
    source's own high-water mark where that was higher (ids of deleted rows stay unused)."""
    inspector = inspect(conn)
    for name in inspector.get_table_names():
        if not wanted_table(name, at_head=False):
            continue
        pk = inspector.get_pk_constraint(name).get("constrained_columns") or []
        if len(pk) != 1:
            continue
        seq = conn.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": f'"{name}"', "c": pk[0]}
        ).scalar()
        if seq is None:
            continue
        largest = conn.execute(select(func.max(column(pk[0]))).select_from(table(name))).scalar()
        following = max(int(largest or 0) + 1, int(next_ids.get(name) or 1))
        conn.execute(
            text("SELECT setval(CAST(:s AS regclass), :v, false)"), {"s": seq, "v": following}
        )


def check_chains(conn: Connection, expected: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Verify every audit chain in the target; it must be what the source had."""
    names = set(inspect(conn).get_table_names())
    if "audit_events" not in names:
        return []
    found = chain_states(conn)
    label = {None: "Systemkette"}
    if expected is None:
        broken = [c for c in found if not c["ok"]]
        if broken:
            raise BackupError(
                f"Die Prüfprotokoll-Kette {label.get(broken[0]['tenant_id'], broken[0]['tenant_id'])}"
                " ist nach der Wiederherstellung gebrochen. Die Wiederherstellung wurde "
                "zurückgenommen."
            )
        return found
    by_id = {c["tenant_id"]: c for c in found}
    for chain in expected:
        got = by_id.pop(chain["tenant_id"], None)
        if got != chain:
            name = label.get(chain["tenant_id"], f"der Kommune Nr. {chain['tenant_id']}")
            raise BackupError(
                f"Die Prüfprotokoll-Kette {name} stimmt nach der Wiederherstellung nicht mit der "
                "Sicherung überein. Die Wiederherstellung wurde zurückgenommen; bitte melden Sie "
                "das den Entwicklern von Rathaus."
            )
    if by_id:
        raise BackupError(
            "Nach der Wiederherstellung gibt es Prüfprotokoll-Ketten, die die Sicherung nicht "
            "kennt. Die Wiederherstellung wurde zurückgenommen."
        )
    return found


# --- files ----------------------------------------------------------------------------------


class _Staging:
    """Files from the archive, first written beside the data directory, moved in at the end."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.root = self.data_dir / f".wiederherstellung-{uuid.uuid4().hex[:12]}"

    def write(self, name: str, stream: Any, *, mode: int, expected_sha: str) -> None:
        relative = name.removeprefix("files/")
        path = (self.root / relative).resolve()
        if self.root not in path.parents:
            raise BackupError(f"Der Archiveintrag {name} zeigt aus dem Datenverzeichnis heraus.")
        path.parent.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256()
        with path.open("wb") as out:
            while chunk := stream.read(1 << 20):
                sha.update(chunk)
                out.write(chunk)
        if sha.hexdigest() != expected_sha:
            raise BackupError(
                f"Die Datei {name} hat sich seit der Prüfung des Archivs verändert. Es wurde "
                "nichts verändert."
            )
        os.chmod(path, 0o440 if ORIGINAL_MEMBER.match(name) else (mode & 0o775) or 0o600)

    def move_in(self) -> None:
        """Rename every staged file into place; originals already there stay (same hash)."""
        if not self.root.exists():
            return
        # One flush of everything written instead of an fsync per file (thousands of originals):
        # the files are on disk before the database commits the rows that point to them.
        os.sync()
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                self._move(Path(folder) / name)

    def _move(self, path: Path) -> None:
        relative = path.relative_to(self.root).as_posix()
        dest = self.data_dir / relative
        if dest.exists() and ORIGINAL_MEMBER.match("files/" + relative):
            return  # content-addressed: the same bytes are already there
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# --- the two entry points -------------------------------------------------------------------


def postgres_url_for_engine(url: str) -> str:
    """``postgres://`` or ``postgresql://`` as the psycopg URL the engine needs; a German error
    for anything else (the message never repeats a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from rathaus.core.config import mask_url

    url = url.strip()
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url.removeprefix(prefix)
            break
    else:
        raise BackupError(
            f"„{mask_url(url)}“ ist keine PostgreSQL-Adresse. Erwartet wird "
            "postgresql://BENUTZER:PASSWORT@HOST:5432/DATENBANK."
        )
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BackupError(
            f"Die PostgreSQL-Adresse {mask_url(url)} ist ungültig. Erwartet wird "
            "postgresql://BENUTZER:PASSWORT@HOST:5432/DATENBANK."
        ) from exc
    if not parsed.database:
        raise BackupError(
            f"In der PostgreSQL-Adresse {mask_url(url)} fehlt der Name der Datenbank "
            "(…/DATENBANK am Ende)."
        )
    return url


def _database_error(db: Database, exc: SQLAlchemyError) -> BackupError:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
    return BackupError(
        f"Die Wiederherstellung in {describe_url(db.url)} ist fehlgeschlagen ({detail}). "
        "Die Datenbank ist unverändert."
    )


def restore_archive(
    path: Path,
    db: Database,
    data_dir: Path,
    *,
    replace: bool = False,
    progress: Progress = quiet,
    verified: Verified | None = None,
) -> RestoreReport:
    """Restore the archive at ``path`` into ``db`` and ``data_dir`` (see the module docstring)."""
    verified = verified or verify_archive(path, progress=progress)
    manifest = verified.manifest
    check_revision_known(verified.revision, "Das Archiv")
    db.ping()
    specs = {t.member: t for t in verified.tables}
    damaged = set(manifest["originals"].get("damaged", []))
    staging = _Staging(data_dir)
    try:
        with db.engine.connect() as conn, conn.begin():
            loader = Loader(db, conn, progress)
            loader.prepare(verified.revision, replace=replace)
            report = loader.report
            with open_archive(path) as members:
                for info, stream in members:
                    if info.name == MANIFEST:
                        continue
                    if info.name in specs:
                        spec = specs[info.name]
                        sha = hashlib.sha256()
                        rows = (json.loads(line) for line in read_lines(stream, sha))
                        loader.load(spec, rows)
                        if sha.hexdigest() != spec.sha256:
                            raise broken(path, f"„{info.name}“ hat sich seit der Prüfung verändert")
                        continue
                    if info.name in damaged:
                        report.warnings.append(f"{info.name} war schon in der Quelle beschädigt.")
                        continue
                    original = ORIGINAL_MEMBER.match(info.name)
                    expected = (
                        original.group(3) if original else manifest["files"][info.name]["sha256"]
                    )
                    staging.write(info.name, stream, mode=info.mode, expected_sha=expected)
                    if original:
                        report.originals += 1
                    else:
                        report.files += 1
            loader.finish(verified.tables, manifest.get("audit_chains"))
            if not manifest.get("originals_included", True):
                report.warnings.append(
                    "Das Archiv wurde ohne Originale erstellt (--ohne-originale): die Originale "
                    "müssen aus einer anderen Sicherung des Datenverzeichnisses kommen."
                )
            staging.move_in()
    except SQLAlchemyError as exc:
        raise _database_error(db, exc) from exc
    except OSError as exc:
        raise BackupError(
            f"Die Dateien konnten nicht ins Datenverzeichnis {data_dir} geschrieben werden "
            f"({exc.strerror or exc}). Die Datenbank ist unverändert; bitte Speicherplatz und "
            "Rechte prüfen."
        ) from exc
    finally:
        staging.remove()
    return report


def ping_target(db: Database) -> None:
    """The target PostgreSQL answers, or a German error naming it (without its password)."""
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        raise BackupError(
            f"Die Zieldatenbank {describe_url(db.url)} ist nicht erreichbar ({detail}). Bitte "
            "Adresse, Benutzer, Passwort und Datenbanknamen prüfen; die Datenbank muss schon "
            "angelegt sein. Es wurde nichts verändert."
        ) from exc


def copy_database(
    source: Database, target: Database, *, progress: Progress = quiet
) -> RestoreReport:
    """Copy every table of ``source`` (one snapshot) into the empty ``target``, verified like a
    restore. Files stay where they are: both databases serve the same data directory."""
    ping_target(target)
    try:
        with snapshot(source) as snap:
            if snap.revision is None:
                raise BackupError(
                    "Die Quelldatenbank hat noch kein Schema; es gibt nichts zu übertragen."
                )
            with target.engine.connect() as conn, conn.begin():
                loader = Loader(target, conn, progress)
                loader.prepare(snap.revision, replace=False, if_not_empty=EMPTY_HINT)
                specs = snap.specs()
                for tbl, spec in zip(snap.tables, specs, strict=True):
                    loader.load(spec, snap.stream(tbl, spec))
                report = loader.finish(specs, snap.audit_chains())
    except SQLAlchemyError as exc:
        raise _database_error(target, exc) from exc
    return report
