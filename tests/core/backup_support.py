"""Test data and comparisons for the backup tests: a populated installation built through the
real service functions, fresh PostgreSQL databases, and a row-by-row dump of every table."""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Text, cast, delete, insert, null, select
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.db import Database
from rathaus.core.demo.loader import load_demo
from rathaus.core.models import (
    AiSuggestion,
    Base,
    Case,
    CaseStatus,
    OrgUnit,
    OrgUnitKind,
    Tenant,
)
from rathaus.core.repo import tenant_by_slug
from rathaus.core.storage import OriginalStore
from tests import conftest
from tests.factories import build_tenant, fast_hash

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
SECRET = "backup-test-geheimnis-mit-mindestens-32-zeichen"
# Bytes that no text codec survives: NUL, invalid UTF-8, a PDF header.
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n\x00\xff\xfe trailer\n%%EOF\n"
LETTER = "Sehr geehrte Damen und Herren,\nder Gehweg in der Schloßstraße 7 ist vereist. 🧊\n"


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped afterwards."""
    with conftest.fresh_pg_database("rathaus_backup") as url:
        yield url


def populate(db: Database, data_dir: Path) -> dict[str, Any]:
    """Musterstadt (the demo loader) plus what the demo lacks: knowledge with embeddings, a
    citizen conversation handed over as a case, letters with stored originals, a trained
    routing model, audit events in two tenant chains and the system chain, a forward
    self-reference, JSON null beside SQL NULL, and a deleted case at the top of the ids."""
    from rathaus.assistant import service as assistant
    from rathaus.assistant.answer import AssistantKit
    from rathaus.core.config import AssistantSettings
    from rathaus.inbox import training
    from rathaus.inbox.service import IncomingItem, receive
    from tests.assistant.test_service import EMBEDDER, add_knowledge

    load_demo(db, password_hasher=fast_hash, now=NOW)
    store = OriginalStore(data_dir / "originals")
    facts: dict[str, Any] = {}
    with db.session() as session:
        tenant = tenant_by_slug(session, "musterstadt")
        add_knowledge(session, tenant.id, EMBEDDER)
        kit = AssistantKit(embedder=EMBEDDER, language_model=None, settings=AssistantSettings())
        conversation, _turn, _answer = assistant.ask(
            session,
            tenant=tenant,
            conversation_public_id=None,
            question="Was kostet ein Personalausweis? Ich heiße Jürgen Groß.",
            channel="web",
            kit=kit,
        )
        handed = assistant.hand_over(
            session,
            tenant=tenant,
            conversation_public_id=conversation.public_id,
            consent=True,
            store=store,
            contact_name="Jürgen Groß",
            contact_email="juergen.gross@example.org",
        )
        letter = receive(
            session,
            tenant=tenant,
            item=IncomingItem(
                channel="upload",
                original=PDF,
                filename="Antrag Straßenreinigung.pdf",
                media_type="application/pdf",
                subject="Glatteis",
                body=LETTER,
                sender_name="Anna Öztürk",
                fields={"betrag": "1.471,60 €", "leer": None, "liste": [1, 2.5, "drei"]},
                received_at=NOW,
            ),
            store=store,
        )
        facts["letter_case_id"] = letter.case.id
        facts["letter_document_id"] = letter.document.id
        facts["handed_case_id"] = handed.id
        training.train(session, tenant, data_dir=data_dir, secret_key=SECRET, actor="test")
        for n in range(3):
            audit.record(
                session,
                audit.Event(
                    kind="test.eintrag",
                    actor="prüferin",
                    tenant_id=tenant.id,
                    subject=f"case:{letter.case.id}",
                    data={"n": n, "ä": "ö", "liste": [1, 2.5, None], "zeit": "2026-03-02"},
                ),
            )
        audit.record(session, audit.Event(kind="system.start", actor="system"))
        _forward_reference(session, tenant)
        _json_nulls(session, tenant, letter.case.id)
        other = build_tenant(session, "alpha")
        audit.record(
            session,
            audit.Event(kind="test.andere", actor="admin", tenant_id=other.tenant.id),
        )
        facts["deleted_case_id"] = _deleted_top_case(session, tenant)
    return facts


def _forward_reference(session: Session, tenant: Tenant) -> None:
    """A unit whose parent has the larger id: restore must set the reference afterwards."""
    child = OrgUnit(tenant_id=tenant.id, kind=OrgUnitKind.SACHGEBIET, code="T-K", name="Kind")
    session.add(child)
    session.flush()
    parent = OrgUnit(tenant_id=tenant.id, kind=OrgUnitKind.AMT, code="T-E", name="Eltern")
    session.add(parent)
    session.flush()
    child.parent_id = parent.id
    session.flush()


def _json_nulls(session: Session, tenant: Tenant, case_id: int) -> None:
    """One suggestion with JSON null in ``final``, one with SQL NULL: both must survive."""
    base = {
        "tenant_id": tenant.id,
        "case_id": case_id,
        "function": "routing",
        "backend": "rules",
        "output": {"vorschlag": "BA", "gründe": ["Glatteis"]},
        "created_at": NOW,
    }
    session.execute(insert(AiSuggestion).values(**base, final=None))  # JSON 'null'
    session.execute(insert(AiSuggestion).values(**base, final=null()))  # SQL NULL


def _deleted_top_case(session: Session, tenant: Tenant) -> int:
    case = Case(
        tenant_id=tenant.id,
        reference="MS-2026-999999",
        subject="wird gelöscht",
        status=CaseStatus.NEU,
        channel="upload",
    )
    session.add(case)
    session.flush()
    session.execute(delete(Case).where(Case.id == case.id))
    return case.id


# --- comparing --------------------------------------------------------------------------------

SQL_NULL = "<SQL NULL>"


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if hasattr(value, "value") and not isinstance(value, int | float | str | bytes):
        return value.value  # enum member
    return value


def dump(db: Database, *, skip: tuple[str, ...] = ("web_sessions",)) -> dict[str, list[tuple]]:
    """Every table of the models, row by row in key order, as comparable tuples. JSON columns
    are read as their text, so JSON null and SQL NULL stay different."""
    tables: dict[str, list[tuple]] = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            columns = [
                cast(c, Text).label(c.name) if isinstance(c.type, JSON) else c
                for c in table.columns
            ]
            order = list(table.primary_key.columns) or list(table.columns)
            rows = conn.execute(select(*columns).order_by(*order)).all()
            json_cols = {i for i, c in enumerate(table.columns) if isinstance(c.type, JSON)}
            tables[table.name] = [
                tuple(
                    (SQL_NULL if v is None else json.loads(v)) if i in json_cols else _plain(v)
                    for i, v in enumerate(row)
                )
                for row in rows
            ]
    return tables


def files_below(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


# --- altering archives ------------------------------------------------------------------------


def rewrite_archive(
    source: Path,
    target: Path,
    change: Callable[[str, bytes], bytes | None],
    *,
    extra: list[tuple[str, bytes]] | None = None,
) -> None:
    """Copy an archive member by member; ``change`` may replace a member's bytes (None drops it)."""
    with tarfile.open(source, "r:gz") as src, tarfile.open(target, "w:gz") as out:
        for info in src.getmembers():
            data = src.extractfile(info).read()  # type: ignore[union-attr]
            new = change(info.name, data)
            if new is None:
                continue
            copy = tarfile.TarInfo(info.name)
            copy.size, copy.mode, copy.mtime = len(new), info.mode, info.mtime
            out.addfile(copy, io.BytesIO(new))
        for name, data in extra or []:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


def table_names(db: Database) -> list[str]:
    from sqlalchemy import inspect

    with db.engine.connect() as conn:
        return sorted(inspect(conn).get_table_names())


def tenant_ids(db: Database) -> list[int]:
    with db.session() as session:
        return list(session.scalars(select(Tenant.id).order_by(Tenant.id)))
