"""Niederschrift pages and JSON API: a Sachbearbeiterin creates, structures, edits, finishes
and downloads a Niederschrift; permission, CSRF, escaping and tenant isolation hold."""

from __future__ import annotations

import io
import json
import re

import docx
import pypdf

from rathaus.core import apikeys
from rathaus.core.models import MeetingMinutes
from tests.web.conftest import csrf_of, login
from tests.writing.test_minutes_detect import AGENDA, TRANSCRIPT

TRANSCRIPT_TEXT = "\n".join(
    f"[0:{start // 60:02d}:{start % 60:02d}] {text}" for start, text in TRANSCRIPT
)


def _create(client, **extra) -> int:
    data = {
        "csrf_token": csrf_of(client),
        "titel": "Sitzung des Gemeinderats",
        "gremium": "Gemeinderat",
        "datum": "2025-03-04",
        "uhrzeit": "18:00",
        "ort": "Großer Sitzungssaal",
        "tagesordnung": AGENDA,
        **extra,
    }
    response = client.post("/texte/niederschriften/neu", data=data)
    assert response.status_code == 303, response.text
    return int(re.search(r"/texte/niederschriften/(\d+)", response.headers["location"]).group(1))


def test_full_flow_for_sachbearbeitung(client, worlds, db):
    login(client, "sb")
    assert client.get("/texte/niederschriften").status_code == 200
    page = client.get("/texte/niederschriften/neu")
    assert page.status_code == 200 and 'for="tagesordnung"' in page.text
    minutes_id = _create(client)
    detail = client.get(f"/texte/niederschriften/{minutes_id}?meldung=angelegt")
    assert "Sanierung der Grundschule am Lindenplatz" in detail.text
    assert "Aufnahme hochladen" in detail.text

    token = csrf_of(client)
    built = client.post(
        f"/texte/niederschriften/{minutes_id}/erstellen",
        data={"csrf_token": token, "transkript": TRANSCRIPT_TEXT},
    )
    assert built.status_code == 303
    page = client.get(f"/texte/niederschriften/{minutes_id}")
    assert "Der Gemeinderat beschließt die Sanierung" in page.text
    assert "SPD-Fraktion" in page.text and "Bauamt" in page.text
    assert "0:03:50" in page.text  # the vote's time from the transcript

    edited = client.post(
        f"/texte/niederschriften/{minutes_id}/bearbeiten",
        data={"csrf_token": token, "beschluss_1": "Beschlossen: Sanierung für 2,4 Mio. €."},
    )
    assert edited.headers["location"].endswith("meldung=gespeichert#ergebnis")
    # rebuilding keeps the edited decision text
    client.post(f"/texte/niederschriften/{minutes_id}/erstellen", data={"csrf_token": token})
    with db.session() as session:
        row = session.get(MeetingMinutes, minutes_id)
        assert row.result["items"][1]["decision_text"] == "Beschlossen: Sanierung für 2,4 Mio. €."
        assert row.transcript[4]["start"] == 70

    pdf = client.get(f"/texte/niederschriften/{minutes_id}.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.content)).pages)
    assert "2,4 Mio. €" in text and "ENTWURF" in text and "Stadt Alpha" in text

    done = client.post(
        f"/texte/niederschriften/{minutes_id}/status",
        data={"csrf_token": token, "status": "fertig"},
    )
    assert done.status_code == 303
    word = client.get(f"/texte/niederschriften/{minutes_id}.docx")
    document = docx.Document(io.BytesIO(word.content))
    assert "ENTWURF" not in "\n".join(p.text for p in document.sections[0].header.paragraphs)
    assert "Sitzung des Gemeinderats" in client.get("/texte/niederschriften").text


def test_empty_transcript_gives_german_message(client, worlds):
    login(client, "sb")
    minutes_id = _create(client)
    response = client.post(
        f"/texte/niederschriften/{minutes_id}/erstellen",
        data={"csrf_token": csrf_of(client), "transkript": "   "},
    )
    assert response.status_code == 400
    assert "Das Transkript ist leer" in response.text


def test_finishing_before_building_is_refused(client, worlds):
    login(client, "sb")
    minutes_id = _create(client)
    response = client.post(
        f"/texte/niederschriften/{minutes_id}/status",
        data={"csrf_token": csrf_of(client), "status": "fertig"},
    )
    assert response.status_code == 400 and "erst als fertig" in response.text


def test_oparl_file_upload(client, worlds):
    login(client, "sb")
    meeting = {
        "id": "https://ratsinfo.example/m/7",
        "name": "Bauausschuss (öffentlich)",
        "start": "2025-05-06T17:30:00+02:00",
        "location": {"description": "Rathaus, Raum 101"},
        "agendaItem": [
            {"number": "1", "name": "Eröffnung", "order": 1},
            {"number": "2", "name": "Bauvoranfrage Lindenweg", "order": 2},
            "https://ratsinfo.example/ai/3",
        ],
    }
    response = client.post(
        "/texte/niederschriften/neu",
        data={"csrf_token": csrf_of(client), "titel": "", "tagesordnung": ""},
        files={"oparl_datei": ("sitzung.json", json.dumps(meeting).encode(), "application/json")},
    )
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    assert "Bauausschuss" in page.text and "Bauvoranfrage Lindenweg" in page.text
    assert "Rathaus, Raum 101" in page.text
    assert "Beim Import nicht geladen (1)" in page.text


def test_bad_oparl_url_is_explained(client, worlds):
    login(client, "sb")
    response = client.post(
        "/texte/niederschriften/neu",
        data={"csrf_token": csrf_of(client), "titel": "X", "oparl_url": "ftp://example.org/x"},
    )
    assert response.status_code == 400 and "keine gültige OParl-Adresse" in response.text


def test_escaping(client, worlds):
    login(client, "sb")
    minutes_id = _create(
        client, titel="<script>alert(1)</script>", tagesordnung="TOP 1 <b>fett</b>"
    )
    page = client.get(f"/texte/niederschriften/{minutes_id}")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text and "&lt;b&gt;fett&lt;/b&gt;" in page.text


def test_permission_refused_without_writing_role(client, worlds):
    login(client, "dsb")
    assert client.get("/texte/niederschriften").status_code == 403
    assert client.get("/texte/niederschriften/neu").status_code == 403


def test_csrf_is_required(client, worlds):
    login(client, "sb")
    response = client.post("/texte/niederschriften/neu", data={"titel": "Ohne Token"})
    assert response.status_code in (400, 403)


def test_other_tenants_minutes_are_404(client, worlds, db):
    with db.session() as session:
        other = MeetingMinutes(
            tenant_id=worlds["b"].tenant.id, title="Geheim", agenda=[], transcript=[], result={}
        )
        session.add(other)
        session.commit()
        other_id = other.id
    login(client, "sb")
    assert client.get(f"/texte/niederschriften/{other_id}").status_code == 404
    assert client.get(f"/texte/niederschriften/{other_id}.pdf").status_code == 404
    response = client.post(
        f"/texte/niederschriften/{other_id}/erstellen",
        data={"csrf_token": csrf_of(client), "transkript": "TOP 1 Test."},
    )
    assert response.status_code == 404
    assert "Geheim" not in client.get("/texte/niederschriften").text
    assert client.get(f"/api/v1/texte/niederschriften/{other_id}").status_code == 404


def test_json_api_with_api_key(client, worlds, db):
    with db.session() as session:
        key, _ = apikeys.create(session, tenant=worlds["a"].tenant, channel="api", name="ris")
        session.commit()
    headers = {"Authorization": f"Bearer {key}"}
    body = {
        "title": "Gemeinderat März",
        "body_name": "Gemeinderat",
        "agenda_text": AGENDA,
        "transcript": [{"start": s, "end": s + 15, "text": t} for s, t in TRANSCRIPT],
    }
    created = client.post("/api/v1/texte/niederschriften", json=body, headers=headers)
    assert created.status_code == 201, created.text
    data = created.json()
    school = data["result"]["items"][1]
    assert school["votes"][0]["yes"] == 14 and school["votes"][0]["start"] == 230
    fetched = client.get(f"/api/v1/texte/niederschriften/{data['id']}", headers=headers)
    assert fetched.json()["title"] == "Gemeinderat März"
    pdf = client.get(data["pdf_url"], headers=headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    word = client.get(data["docx_url"], headers=headers)
    assert word.status_code == 200 and word.content.startswith(b"PK")

    empty = client.post(
        "/api/v1/texte/niederschriften",
        json={"title": "Leer", "transcript_text": ""},
        headers=headers,
    )
    assert empty.status_code == 400 and "Transkript ist leer" in empty.json()["detail"]
    assert client.post("/api/v1/texte/niederschriften", json=body).status_code == 401
    bad = client.post(
        "/api/v1/texte/niederschriften", json=body, headers={"X-API-Key": "rh_falsch"}
    )
    assert bad.status_code == 401


def test_json_api_with_session_needs_csrf_header(client, worlds):
    login(client, "sb")
    body = {"title": "Kurz", "transcript_text": "TOP 1 Haushalt. Einstimmig beschlossen."}
    assert client.post("/api/v1/texte/niederschriften", json=body).status_code == 403
    ok = client.post(
        "/api/v1/texte/niederschriften", json=body, headers={"X-CSRF-Token": csrf_of(client)}
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["result"]["items"][0]["votes"][0]["unanimous"] is True


def _minutes_suggestions(db):
    from sqlalchemy import select

    from rathaus.core.models import AiSuggestion

    with db.session() as session:
        rows = session.scalars(
            select(AiSuggestion)
            .where(AiSuggestion.function == "niederschrift")
            .order_by(AiSuggestion.id)
        )
        return [
            {"tenant_id": r.tenant_id, "subject": (r.subject_type, r.subject_id),
             "input_sha256": r.input_sha256, "decision": r.decision, "output": r.output,
             "final": r.final, "decided_by_id": r.decided_by_id}
            for r in rows
        ]  # fmt: skip


def test_minutes_are_recorded_edited_and_accepted(client, worlds, db):
    from rathaus.governance.decisions import sha256_text
    from rathaus.web.writing_minutes import transcript_as_text

    login(client, "sb")
    minutes_id = _create(client)
    token = csrf_of(client)
    built = client.post(
        f"/texte/niederschriften/{minutes_id}/erstellen",
        data={"csrf_token": token, "transkript": TRANSCRIPT_TEXT},
    )
    assert built.status_code == 303
    with db.session() as session:
        expected = sha256_text(
            transcript_as_text(session.get(MeetingMinutes, minutes_id).transcript)
        )
    [first] = _minutes_suggestions(db)
    assert first["tenant_id"] == worlds["a"].tenant.id
    assert first["subject"] == ("minutes", str(minutes_id))
    assert first["input_sha256"] == expected and first["decision"] is None
    school = first["output"]["items"][1]
    assert school["votes"][0]["yes"] == 14 and "Sanierung" in first["output"]["text"]

    client.post(
        f"/texte/niederschriften/{minutes_id}/bearbeiten",
        data={"csrf_token": token, "beschluss_1": "Beschlossen: Sanierung für 2,4 Mio. €."},
    )
    [edited] = _minutes_suggestions(db)
    assert edited["decision"] == "bearbeitet" and edited["decided_by_id"] is not None
    assert "+Beschluss: Beschlossen: Sanierung für 2,4 Mio. €." in edited["final"]["diff"]

    # building again supersedes nothing decided; the new one is accepted when finished
    client.post(f"/texte/niederschriften/{minutes_id}/erstellen", data={"csrf_token": token})
    client.post(
        f"/texte/niederschriften/{minutes_id}/status",
        data={"csrf_token": token, "status": "fertig"},
    )
    rows = _minutes_suggestions(db)
    assert [r["decision"] for r in rows] == ["bearbeitet", "angenommen"]

    # an API key's minutes belong to its own tenant only
    with db.session() as session:
        key, _ = apikeys.create(session, tenant=worlds["b"].tenant, channel="api", name="ris")
        session.commit()
    body = {"title": "Beta", "agenda_text": AGENDA,
            "transcript": [{"start": s, "end": s + 15, "text": t} for s, t in TRANSCRIPT]}  # fmt: skip
    created = client.post(
        "/api/v1/texte/niederschriften", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert created.status_code == 201, created.text
    beta = _minutes_suggestions(db)[-1]
    assert beta["tenant_id"] == worlds["b"].tenant.id
    assert beta["subject"] == ("minutes", str(created.json()["id"])) and beta["decision"] is None

    for tenant, count in (("alpha", 2), ("beta", 1)):
        client.cookies.clear()
        login(client, "admin", tenant)
        listed = client.get("/governance/entscheidungen?funktion=niederschrift")
        assert listed.status_code == 200 and listed.text.count("Niederschrift</td>") == count
