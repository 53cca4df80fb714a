"""One caller rule for every JSON API of the Schreibassistenz (``rathaus.web.writing_auth``):
an API key of channel ``api`` or a staff session with USE_WRITING (POST with ``X-CSRF-Token``);
401 without credentials, 403 without permission or CSRF header, other tenants see nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rathaus.core import apikeys
from rathaus.core.models import TextTemplate, WritingJob, WritingJobStatus
from tests.web.conftest import csrf_of, login

Route = tuple[str, dict[str, Any], int]  # path, JSON body, expected success status


def _key(db, world, channel: str = "api") -> str:
    with db.session() as session:
        key, _ = apikeys.create(session, tenant=world.tenant, channel=channel, name="fachverfahren")
        session.commit()
    return key


def _letter(db, world) -> Route:
    with db.session() as session:
        row = TextTemplate(
            tenant_id=world.tenant.id, name="Eingang", kind="brief",
            subject="Ihr Anliegen", body="wir bestätigen den Eingang.",
        )  # fmt: skip
        session.add(row)
        session.flush()
        template_id = row.id
    return "/api/v1/texte/brief", {"baustein_id": template_id, "empfaenger_name": "Eva"}, 200


def _minutes(db, world) -> Route:
    body = {"title": "Rat", "transcript_text": "TOP 1 Haushalt. Einstimmig beschlossen."}
    return "/api/v1/texte/niederschriften", body, 201


def _speech(db, world) -> Route:
    with db.session() as session:
        job = WritingJob(
            tenant_id=world.tenant.id, kind="transkription",
            status=WritingJobStatus.LAEUFT.value, progress=0.5, filename="rat.wav",
        )  # fmt: skip
        session.add(job)
        session.flush()
        job_id = job.id
    return f"/api/v1/texte/auftraege/{job_id}/abbrechen", {}, 200


def _plain(db, world) -> Route:
    return "/api/v1/texte/leichte-sprache/pruefung", {"text": "Das ist ein Satz."}, 200


APIS: dict[str, Callable[..., Route]] = {
    "briefe": _letter,
    "niederschriften": _minutes,
    "spracherkennung": _speech,
    "leichte-sprache": _plain,
}


@pytest.fixture(params=list(APIS))
def api(request) -> Callable[..., Route]:
    return APIS[request.param]


@pytest.fixture
def route(api, db, worlds) -> Route:
    return api(db, worlds["a"])


def test_api_key_of_channel_api_works(client, db, worlds, api):
    key = _key(db, worlds["a"])
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        path, body, ok = api(db, worlds["a"])  # fresh objects: a job is cancelled only once
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == ok, response.text


def test_session_with_permission_and_csrf_header_works(client, worlds, route):
    path, body, ok = route
    login(client, "sb")
    response = client.post(path, json=body, headers={"X-CSRF-Token": csrf_of(client)})
    assert response.status_code == ok, response.text


def test_session_post_without_csrf_header_is_refused(client, worlds, route):
    path, body, _ok = route
    login(client, "sb")
    response = client.post(path, json=body)
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    wrong = client.post(path, json=body, headers={"X-CSRF-Token": "falsch"})
    assert wrong.status_code == 403


def test_user_without_writing_permission_is_refused(client, worlds, route):
    path, body, _ok = route
    login(client, "dsb")  # datenschutz: no USE_WRITING
    response = client.post(path, json=body, headers={"X-CSRF-Token": csrf_of(client)})
    assert response.status_code == 403
    assert "Schreibassistenz" in response.json()["detail"]


def test_no_or_invalid_credentials_answer_401(client, db, worlds, route):
    path, body, _ok = route
    response = client.post(path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "X-API-Key" in response.json()["detail"]
    assert client.post(path, json=body, headers={"X-API-Key": "rh_falsch"}).status_code == 401
    other_channel = _key(db, worlds["a"], channel="open311")
    refused = client.post(path, json=body, headers={"X-API-Key": other_channel})
    assert refused.status_code == 401


def test_a_key_of_another_tenant_never_sees_this_tenants_objects(client, db, worlds):
    foreign = {"Authorization": f"Bearer {_key(db, worlds['b'])}"}
    own = {"Authorization": f"Bearer {_key(db, worlds['a'])}"}

    path, body, _ = _letter(db, worlds["a"])
    assert client.post(path, json=body, headers=foreign).status_code == 404
    names = [t["name"] for t in client.get("/api/v1/texte/bausteine", headers=foreign).json()]
    assert "Eingang" not in names

    path, body, _ = _minutes(db, worlds["a"])
    created = client.post(path, json=body, headers=own)
    assert created.status_code == 201, created.text
    minutes_id = created.json()["id"]
    assert client.get(f"{path}/{minutes_id}", headers=foreign).status_code == 404
    assert client.get(f"{path}/{minutes_id}.pdf", headers=foreign).status_code == 404

    path, body, _ = _speech(db, worlds["a"])
    job_url = path.removesuffix("/abbrechen")
    assert client.get(job_url, headers=foreign).status_code == 404
    assert client.post(path, json=body, headers=foreign).status_code == 404
    assert client.get(job_url, headers=own).json()["cancel_requested"] is False


def test_openapi_documents_both_callers(client):
    schema = client.get("/openapi.json").json()
    for path, method in [
        ("/api/v1/texte/brief", "post"),
        ("/api/v1/texte/niederschriften", "post"),
        ("/api/v1/texte/auftraege/{job_id}/abbrechen", "post"),
        ("/api/v1/texte/leichte-sprache/pruefung", "post"),
    ]:
        operation = schema["paths"][path][method]
        schemes = {name for entry in operation.get("security", []) for name in entry}
        assert {"HTTPBearer", "APIKeyHeader"} <= schemes, path
        assert {"401", "403"} <= set(operation["responses"]), path
