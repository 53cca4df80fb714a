"""JSON API ``/api/v1/inbox``: API-key authentication per channel, multipart and JSON items,
size limits, duplicates, the triage status, tenant separation; Open311 items are triaged too."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rathaus.core import apikeys
from rathaus.core.models import Case, Document, Service
from tests.web.conftest import demo_app, login

NOISE = "Seit Wochen Lärm aus der Gaststätte in der Hauptstraße 5, jede Nacht bis 3 Uhr."


@pytest.fixture
def app(db, tmp_path):  # type: ignore[no-untyped-def]
    return demo_app(
        db,
        tmp_path,
        inbox={"max_upload_mb": 1, "max_files_per_upload": 3},
    )


@pytest.fixture
def keys(worlds, db):  # type: ignore[no-untyped-def]
    with db.session() as session:
        a, b = worlds["a"].tenant, worlds["b"].tenant
        alpha, _ = apikeys.create(session, tenant=a, channel="api", name="Fachverfahren")
        beta, _ = apikeys.create(session, tenant=b, channel="api", name="Fachverfahren")
        open311, _ = apikeys.create(session, tenant=a, channel="open311", name="App")
        revoked, row = apikeys.create(session, tenant=a, channel="api", name="alt")
        apikeys.revoke(session, tenant=a, prefix=row.prefix)
        session.add(
            Service(
                tenant_id=a.id,
                code="laerm",
                name="Lärmbelästigung melden",
                org_unit_id=worlds["a"].units["OA"].id,
                open311_enabled=True,
            )
        )
    return {"alpha": alpha, "beta": beta, "open311": open311, "revoked": revoked}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keys_are_checked_per_channel(client, keys):
    body = {"text": NOISE}
    missing = client.post("/api/v1/inbox/items", json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "API-Schlüssel" in missing.json()["detail"]
    for wrong in ("rh_falsch", keys["open311"], keys["revoked"], "kein-schluessel"):
        assert (
            client.post("/api/v1/inbox/items", json=body, headers=bearer(wrong)).status_code == 401
        )
        assert (
            client.post("/api/v1/inbox/items", json=body, headers={"X-API-Key": wrong}).status_code
            == 401
        )
    assert client.get("/api/v1/inbox/items/1").status_code == 401
    assert client.get("/api/v1/inbox/items/1", headers=bearer("rh_falsch")).status_code == 401


def test_json_item_is_stored_triaged_and_reported(client, keys, db, worlds):
    response = client.post(
        "/api/v1/inbox/items",
        json={
            "text": NOISE,
            "subject": "Lärm Gaststätte",
            "sender_name": "Erika Mustermann",
            "sender_contact": "erika@example.org",
            "lat": 47.66,
            "long": 9.17,
        },
        headers={"X-API-Key": keys["alpha"]},
    )
    assert response.status_code == 201, response.text
    (receipt,) = response.json()
    assert receipt["duplicate"] is False and receipt["error"] is None
    assert receipt["reference"].startswith("RH-") and receipt["status_url"].endswith(
        str(receipt["case_id"])
    )
    with db.session() as session:
        case = session.get(Case, receipt["case_id"])
        assert case.channel == "api" and case.tenant_id == worlds["a"].tenant.id
        assert case.sender_name == "Erika Mustermann" and case.latitude == 47.66
        assert case.triaged_at is not None
    status = client.get(receipt["status_url"], headers=bearer(keys["alpha"]))
    assert status.status_code == 200
    data = status.json()
    assert data["reference"] == receipt["reference"] and data["triaged"] is True
    assert data["status"] == "triage" and data["triage"]["urgency"] in (
        "normal",
        "hoch",
        "kritisch",
    )
    assert data["triage"]["suggestion"]["source"] == "ähnlichkeit"
    assert data["triage"]["org_unit"] is None  # waits for a person
    # the same text again: the existing case
    again = client.post("/api/v1/inbox/items", json={"text": NOISE}, headers=bearer(keys["alpha"]))
    assert again.status_code == 201 and again.json()[0]["duplicate"] is True
    assert again.json()[0]["case_id"] == receipt["case_id"]
    # tenant separation: beta's key and a beta login do not see alpha's item
    assert client.get(receipt["status_url"], headers=bearer(keys["beta"])).status_code == 404
    login(client, "admin", tenant="beta")
    assert client.get(receipt["status_url"]).status_code == 404
    client.cookies.clear()
    login(client, "leitung")  # alpha, may see the triage queue
    assert client.get(receipt["status_url"]).json()["case_id"] == receipt["case_id"]


def test_multipart_with_a_too_big_file_and_sizes(client, keys, db):
    big = b"%PDF-" + b"0" * (1024 * 1024)
    response = client.post(
        "/api/v1/inbox/items",
        headers=bearer(keys["alpha"]),
        data={"subject": "Beschwerde", "sender_name": "Max Muster"},
        files=[
            ("files", ("beschwerde.txt", NOISE.encode(), "text/plain")),
            ("files", ("scan.pdf", big, "application/pdf")),
        ],
    )
    assert response.status_code == 201, response.text
    ok, refused = response.json()
    assert ok["filename"] == "beschwerde.txt" and ok["case_id"] and ok["error"] is None
    assert refused["case_id"] is None and "größer als 1 MB" in refused["error"]
    with db.session() as session:
        case = session.get(Case, ok["case_id"])
        assert case.subject == "Beschwerde" and case.sender_name == "Max Muster"
        assert (
            session.scalar(select(func.count(Document.id)).where(Document.filename == "scan.pdf"))
            == 0
        )
    only_big = client.post(
        "/api/v1/inbox/items", headers=bearer(keys["alpha"]), files=[("files", ("b.pdf", big))]
    )
    assert only_big.status_code == 413 and "größer als 1 MB" in only_big.json()["detail"]
    huge_json = client.post(
        "/api/v1/inbox/items",
        headers=bearer(keys["alpha"]),
        json={"text": "x" * (1024 * 1024 + 10)},
    )
    assert huge_json.status_code == 413
    empty = client.post("/api/v1/inbox/items", headers=bearer(keys["alpha"]), data={"subject": "x"})
    assert empty.status_code in (400, 415)
    no_text = client.post("/api/v1/inbox/items", headers=bearer(keys["alpha"]), json={"text": ""})
    assert no_text.status_code == 400 and "Feld: text" in no_text.json()["detail"]
    bad_place = client.post(
        "/api/v1/inbox/items",
        headers=bearer(keys["alpha"]),
        files=[("files", ("a.txt", b"Hallo"))],
        data={"lat": "abc", "long": "9"},
    )
    assert bad_place.status_code == 400 and "„lat“ ist keine Zahl" in bad_place.json()["detail"]
    plain = client.post(
        "/api/v1/inbox/items",
        headers={**bearer(keys["alpha"]), "Content-Type": "text/plain"},
        content=b"Hallo",
    )
    assert plain.status_code == 415


def test_multipart_empty_form_is_400(client, keys):
    response = client.post(
        "/api/v1/inbox/items",
        headers=bearer(keys["alpha"]),
        files=[("files", ("", b""))],
        data={"text": "  "},
    )
    assert response.status_code == 400 and "leer" in response.json()["detail"]


def test_openapi_documents_the_inbox_api(client):
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/api/v1/inbox/items"]["post"]
    assert (
        post["summary"] == "Eingänge einliefern"
        and "multipart/form-data" in post["requestBody"]["content"]
    )
    assert "application/json" in post["requestBody"]["content"]
    assert (
        schema["paths"]["/api/v1/inbox/items/{case_id}"]["get"]["summary"] == "Stand eines Eingangs"
    )
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])


def test_open311_reports_are_triaged(client, keys, db):
    response = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": keys["open311"],
            "service_code": "laerm",
            "address_string": "Hauptstraße 5",
            "description": NOISE,
        },
    )
    assert response.status_code == 201, response.text
    reference = response.json()[0]["service_request_id"]
    with db.session() as session:
        case = session.scalar(select(Case).where(Case.reference == reference))
        assert case.triaged_at is not None and case.channel == "open311"
