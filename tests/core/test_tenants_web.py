"""A locked tenant through the real web app: its staff are logged out and cannot log in, its
public endpoints and API keys answer as for an unknown municipality; other tenants carry on."""

from __future__ import annotations

from rathaus.core import apikeys, tenants
from tests.web import conftest as web
from tests.web.conftest import login

# The web tests' fixtures: the real app on the test database, two tenants.
app, client, worlds = web.app, web.client, web.worlds


def _lock(db, slug: str, active: bool) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        tenants.set_active(session, slug=slug, active=active)


def test_a_locked_tenant_is_closed_everywhere_and_reopened(client, db, worlds):  # type: ignore[no-untyped-def]
    assert login(client, "admin", tenant="alpha").status_code == 303
    assert client.get("/").status_code == 200
    with db.session() as session:
        key, _ = apikeys.create(session, tenant=worlds["a"].tenant, channel="api", name="App")
    case_id = worlds["a"].cases["BA"].id
    bearer = {"Authorization": f"Bearer {key}"}
    assert client.get(f"/api/v1/inbox/items/{case_id}", headers=bearer).status_code == 200
    assert client.get("/open311/v2/services.json?jurisdiction_id=alpha").status_code == 200

    _lock(db, "alpha", False)
    # The running session ended at once
    assert client.get("/").headers["location"].startswith("/login")
    client.cookies.clear()
    refused = login(client, "admin", tenant="alpha")
    assert refused.status_code == 401 and "oder das Konto ist gesperrt" in refused.text
    # Public endpoints: as for a municipality that does not exist (German, 404)
    asked = client.post(
        "/api/v1/assistant/ask", json={"question": "Personalausweis?", "kommune": "alpha"}
    )
    assert asked.status_code == 404 and "Die Kommune „alpha“ gibt es hier nicht" in asked.text
    open311 = client.get("/open311/v2/services.json?jurisdiction_id=alpha")
    assert open311.status_code == 404 and "Zuständigkeit „alpha“" in open311.text
    assert client.get("/transparenz?kommune=alpha").status_code == 404
    assert client.get(f"/api/v1/inbox/items/{case_id}", headers=bearer).status_code == 401
    # Beta is not affected
    assert login(client, "admin", tenant="beta").status_code == 303
    client.cookies.clear()

    _lock(db, "alpha", True)
    assert login(client, "admin", tenant="alpha").status_code == 303
    assert client.get(f"/api/v1/inbox/items/{case_id}", headers=bearer).status_code == 200
