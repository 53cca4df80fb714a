"""Parallel receipts through the real app (upload page and API): every item is stored, each new
one gets its own Aktenzeichen, consecutive, and no unique constraint has to refuse one.

The triage is queued, not run (a queue file without a worker): these tests are about storing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rathaus.core import apikeys
from rathaus.core.db import Database
from rathaus.core.models import Case, Document, Tenant
from tests.concurrency import in_parallel, refused_statements
from tests.web.conftest import csrf_of, demo_app, login

CLIENTS, UPLOADS = 4, 8


@pytest.fixture
def app(db, tmp_path):  # type: ignore[no-untyped-def]
    return demo_app(
        db,
        tmp_path,
        queue={"backend": "sqlite", "embedded_worker": False, "periodic": False},
    )


@pytest.fixture
def refused(db: Database) -> Iterator[list[str]]:
    with refused_statements(db.engine) as seen:
        yield seen


def references(db: Database, tenant_slug: str) -> list[str]:
    with db.session() as session:
        return sorted(
            session.scalars(
                select(Case.reference)
                .join(Tenant, Tenant.id == Case.tenant_id)
                .where(Tenant.slug == tenant_slug, Case.id.in_(select(Document.case_id)))
            )
        )


def assert_consecutive(refs: list[str], count: int) -> None:
    numbers = [int(r.rsplit("-", 1)[1]) for r in refs]
    assert numbers == list(range(1, count + 1)), refs  # the first of this prefix and year: 1


def test_uploads_retry_as_often_as_the_channels() -> None:
    from rathaus.inbox.channels.poll import TAKE_ATTEMPTS
    from rathaus.web.inbox_views import RECEIVE_ATTEMPTS

    assert RECEIVE_ATTEMPTS == TAKE_ATTEMPTS


def test_parallel_uploads_all_get_consecutive_references(app, worlds, db, refused):  # type: ignore[no-untyped-def]
    shared = b"Dieselbe Eingabe, von allen gleichzeitig hochgeladen."
    pages: list[str] = []
    with TestClient(app, follow_redirects=False) as client:
        login(client, "leitung")
        token = csrf_of(client)

        def upload(worker: int) -> None:
            for n in range(UPLOADS):
                own = f"Meldung {worker}-{n}: die Laterne vor Nr. {n} ist dunkel.".encode()
                files = [("meldung.txt", own, "text/plain")]
                if n == 0:
                    files.append(("gleich.txt", shared, "text/plain"))
                response = client.post(
                    "/posteingang/hochladen",
                    data={"csrf_token": token, "text": f"Eingefügt {worker}-{n}"},
                    files=[("dateien", f) for f in files],
                )
                assert response.status_code == 200, response.text
                pages.append(response.text)

        in_parallel(upload, CLIENTS, timeout=120)
    assert not any("gleichzeitiger Eingänge" in page for page in pages)
    # per upload its file and its pasted text, once the shared file (the others: duplicates)
    new = 2 * CLIENTS * UPLOADS + 1
    assert sum(page.count("bereits vorhanden") for page in pages) == CLIENTS - 1
    refs = references(db, "alpha")
    assert len(refs) == len(set(refs)) == new
    assert_consecutive(refs, new)
    assert refused == []


def test_parallel_api_items_all_get_consecutive_references(app, worlds, db, refused):  # type: ignore[no-untyped-def]
    with db.session() as session:
        alpha = session.get(Tenant, worlds["a"].tenant.id)
        # one key per sender: requests with the same key wait for each other (its use is noted)
        keys = [
            apikeys.create(session, tenant=alpha, channel="api", name=f"Fachverfahren {w}")[0]
            for w in range(CLIENTS)
        ]
    receipts: list[dict[str, Any]] = []
    with TestClient(app, follow_redirects=False) as client:

        def post(worker: int) -> None:
            for n in range(UPLOADS):
                response = client.post(
                    "/api/v1/inbox/items",
                    json={"text": f"Meldung {worker}-{n}: Schlagloch in der Hauptstraße {n}."},
                    headers={"Authorization": f"Bearer {keys[worker]}"},
                )
                assert response.status_code == 201, response.text
                receipts.extend(response.json())

        in_parallel(post, CLIENTS, timeout=120)
    assert all(r["error"] is None and not r["duplicate"] for r in receipts)
    refs = references(db, "alpha")
    assert sorted(r["reference"] for r in receipts) == refs
    assert_consecutive(refs, CLIENTS * UPLOADS)
    assert refused == []
