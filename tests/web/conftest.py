"""Fixtures for web tests: the real app on a real database, two tenants, logged-in clients."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.web.app import create_app
from tests.factories import PASSWORD, World, build_tenant, drop_password


@pytest.fixture
def worlds(db: Database) -> dict[str, World]:
    with db.session() as session:
        return {"a": build_tenant(session, "alpha"), "b": build_tenant(session, "beta")}


def demo_app(db: Database, tmp_path, **overrides):  # type: ignore[no-untyped-def]
    """The demo-mode app on ``db`` with tenant alpha as default and the memory queue (jobs run at
    once and open the database from the settings: the same one); ``overrides`` replace or add
    settings sections (``inbox={...}``, ``queue={...}``, ``limits={...}``)."""
    options = {
        "mode": "demo",
        "data_dir": tmp_path,
        "database_url": db.url,
        "default_tenant": "alpha",
        "queue": {"backend": "memory"},
        **overrides,
    }
    return create_app(load_settings(**options), database=db)


def production_app(db: Database, tmp_path, **more):  # type: ignore[no-untyped-def]
    """The production-mode app on ``db`` (a non-default secret, memory queue, tenant alpha);
    ``more`` adds settings sections."""
    settings = load_settings(
        mode="production",
        secret_key="p" * 48,
        data_dir=tmp_path,
        database_url=db.url,
        default_tenant="alpha",
        queue={"backend": "memory"},
        **more,
    )
    return create_app(settings, database=db)


@pytest.fixture
def app(db: Database, tmp_path):  # type: ignore[no-untyped-def]
    return demo_app(db, tmp_path)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as c:
        yield c


def login(client: TestClient, username: str, tenant: str = "alpha", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/login",
        data={"username": username, "password": password, "kommune": tenant, "csrf_token": token},
    )


def csrf_of(client: TestClient) -> str:
    page = client.get("/")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def signed_in_without_password(client: TestClient, db: Database, username: str) -> str:
    """Sign in as ``username``, then drop the account's password as if it signed in through
    single sign-on only; the form token."""
    login(client, username)
    token = csrf_of(client)
    drop_password(db, username)
    return token
