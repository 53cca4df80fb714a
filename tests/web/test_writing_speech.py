"""Transcription in the browser and over the JSON API: upload, job page, cancel, downloads."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rathaus.core import apikeys
from rathaus.core.db import Database
from rathaus.core.models import WritingJob, WritingJobStatus
from tests.factories import World
from tests.web.conftest import csrf_of, login
from tests.writing.test_speech import FakeTranscriber, silent_wav


@pytest.fixture(autouse=True)
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTranscriber:
    transcriber = FakeTranscriber(count=3)
    monkeypatch.setattr("rathaus.ai.speech.get_transcriber", lambda settings: transcriber)
    return transcriber


def upload(client: TestClient, name: str, data: bytes, token: str | None):  # type: ignore[no-untyped-def]
    fields = {"csrf_token": token} if token else {}
    return client.post("/texte/transkription", data=fields, files={"datei": (name, data)})


def running_job(db: Database, world: World) -> int:
    with db.session() as session:
        job = WritingJob(
            tenant_id=world.tenant.id,
            kind="transkription",
            status=WritingJobStatus.LAEUFT.value,
            progress=0.4,
            message="Läuft: 00:00:04 von 00:00:10 erkannt (2 Abschnitte).",
            filename="rat.wav",
            result={"segments": [{"start": 0.0, "end": 2.0, "text": "Guten Abend."}]},
        )
        session.add(job)
        session.flush()
        return job.id


def test_upload_job_page_and_downloads(client: TestClient, worlds: dict[str, World]) -> None:
    login(client, "sb")
    assert "Aufnahme auswählen" in client.get("/texte/transkription").text

    response = upload(client, "Sitzung März.wav", silent_wav(6), csrf_of(client))

    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert "Stand: fertig" in page.text and "Satz 3." in page.text
    assert "Entwurfsqualität" in page.text and "hx-trigger" not in page.text
    job_url = response.headers["location"]
    srt = client.get(f"{job_url}/transkript.srt")
    assert srt.status_code == 200 and "00:00:02,000 --> 00:00:04,000\nSatz 2." in srt.text
    assert 'filename="Sitzung_M_rz-transkript.srt"' in srt.headers["content-disposition"]
    assert client.get(f"{job_url}/transkript.vtt").text.startswith("WEBVTT")
    assert client.get(f"{job_url}/transkript.doc").status_code == 404
    assert "Sitzung März.wav" in client.get("/texte/transkription").text  # in "Ihre Aufträge"


def test_running_job_polls_and_can_be_cancelled(
    client: TestClient, db: Database, worlds: dict[str, World]
) -> None:
    job_id = running_job(db, worlds["a"])
    login(client, "sb")

    page = client.get(f"/texte/auftraege/{job_id}")
    assert 'hx-trigger="every 2s"' in page.text and 'value="40"' in page.text
    assert 'http-equiv="refresh"' in page.text  # without JavaScript
    fragment = client.get(f"/texte/auftraege/{job_id}/stand", headers={"HX-Request": "true"})
    assert "HX-Refresh" not in fragment.headers

    assert client.post(f"/texte/auftraege/{job_id}/abbrechen").status_code == 403  # no CSRF
    cancelled = client.post(
        f"/texte/auftraege/{job_id}/abbrechen", data={"csrf_token": csrf_of(client)}
    )

    assert cancelled.status_code == 303
    with db.session() as session:
        assert session.get(WritingJob, job_id).cancel_requested is True
    assert "Abbruch angefordert" in client.get(f"/texte/auftraege/{job_id}").text


def test_bad_upload_shows_german_error_and_keeps_the_failed_job(
    client: TestClient, db: Database, worlds: dict[str, World]
) -> None:
    login(client, "sb")

    response = upload(client, "brief.pdf", b"%PDF-1.4\n%%EOF\n", csrf_of(client))

    assert response.status_code == 400
    assert "„brief.pdf“ ist keine lesbare Audio- oder Videodatei" in response.text
    with db.session() as session:
        job = session.query(WritingJob).one()
        assert job.status == WritingJobStatus.FEHLGESCHLAGEN and job.original_sha256
    assert f"/texte/auftraege/{job.id}" in response.text


def test_permission_csrf_and_tenant(
    client: TestClient, db: Database, worlds: dict[str, World]
) -> None:
    job_id = running_job(db, worlds["b"])
    login(client, "dsb")  # Datenschutz: no writing assistant
    assert client.get("/texte/transkription").status_code == 403
    assert upload(client, "a.wav", silent_wav(2), csrf_of(client)).status_code == 403

    client.cookies.clear()
    login(client, "sb")
    assert upload(client, "a.wav", silent_wav(2), None).status_code == 403
    assert client.get(f"/texte/auftraege/{job_id}").status_code == 404  # other tenant's job


def test_json_api(client: TestClient, db: Database, worlds: dict[str, World]) -> None:
    with db.session() as session:
        key, _row = apikeys.create(session, tenant=worlds["a"].tenant, channel="api", name="RIS")
    other_job = running_job(db, worlds["b"])
    auth = {"Authorization": f"Bearer {key}"}

    assert (
        client.post("/api/v1/texte/transkription", files={"file": ("a.wav", b"x")}).status_code
        == 401
    )
    started = client.post(
        "/api/v1/texte/transkription", headers=auth, files={"file": ("a.wav", silent_wav(6))}
    )
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["status"] == "fertig" and len(body["segments"]) == 3

    status = client.get(body["status_url"], headers={"X-API-Key": key})
    assert status.json()["segments"][0]["text"] == "Satz 1."
    again = client.post(f"{body['status_url']}/abbrechen", headers=auth)
    assert again.status_code == 409 and "bereits fertig" in again.json()["detail"]
    assert client.get(f"/api/v1/texte/auftraege/{other_job}", headers=auth).status_code == 404

    bad = client.post(
        "/api/v1/texte/transkription", headers=auth, files={"file": ("x.pdf", b"%PDF-1.4")}
    )
    assert bad.status_code == 400 and bad.json()["job_id"]
