"""The Buchungsprüfung page and JSON API: import, checks, decision with CSRF and permission,
export."""

from __future__ import annotations

import re

from sqlalchemy import select

from rathaus.core.models import AuditEvent, BookingFlag
from tests.web.conftest import csrf_of, login

CSV = (
    "Kreditor;Betrag;Buchungsdatum;Belegnummer\n"
    "Müller GmbH;1.471,60;31.12.2015;B-1\n"
    "Müller GmbH;1.471,60;31.12.2015;B-1\n"
    "Schön KG;250,00;04.01.2016;B-2\n"
).encode("cp1252")


def _import(client, token):  # type: ignore[no-untyped-def]
    return client.post(
        "/lagebild/buchungen/import",
        data={"csrf_token": token, "name": "Testliste"},
        files={"datei": ("liste.csv", CSV, "text/csv")},
    )


def test_import_check_decide_export(client, worlds, db):  # type: ignore[no-untyped-def]
    login(client, "leitung")
    token = csrf_of(client)
    assert _import(client, "falsch").status_code == 403
    response = _import(client, token)
    assert response.status_code == 303, response.text
    dataset_id = int(re.search(r"datensatz=(\d+)", response.headers["location"]).group(1))
    run = client.post(f"/lagebild/buchungen/{dataset_id}/pruefen", data={"csrf_token": token})
    assert run.status_code == 303
    page = client.get(f"/lagebild/buchungen?datensatz={dataset_id}&art=duplikat")
    assert page.status_code == 200 and "Doppelte Zahlung" in page.text and "<svg" in page.text
    with db.session() as session:
        flag_id = session.scalar(select(BookingFlag.id).where(BookingFlag.kind == "duplikat"))
    detail = client.get(f"/lagebild/buchungen/hinweise/{flag_id}")
    assert "1.471,60" in detail.text and "kein Vorwurf" in detail.text
    decided = client.post(
        f"/lagebild/buchungen/hinweise/{flag_id}/entscheidung",
        data={"csrf_token": token, "entscheidung": "pruefen", "notiz": "Beleg anfordern"},
    )
    assert decided.status_code == 303
    detail = client.get(f"/lagebild/buchungen/hinweise/{flag_id}")
    assert "entschieden von leitung" in detail.text and "Beleg anfordern" in detail.text
    exported = client.get(f"/lagebild/buchungen/{dataset_id}/export.csv")
    assert exported.status_code == 200
    text = exported.content.decode("utf-8-sig")
    assert "Entschieden von" in text and "Beleg anfordern" in text and "leitung" in text
    xlsx = client.get(f"/lagebild/buchungen/{dataset_id}/export.xlsx")
    assert xlsx.content[:2] == b"PK"
    with db.session() as session:
        kinds = session.scalars(select(AuditEvent.kind)).all()
    assert "booking_flag_decided" in kinds


def test_bad_file_shows_german_message_and_writes_nothing(client, worlds):  # type: ignore[no-untyped-def]
    login(client, "leitung")
    token = csrf_of(client)
    bad = CSV + "Meier;zwölf;05.01.2016;B-3\n".encode("cp1252")
    response = client.post(
        "/lagebild/buchungen/import",
        data={"csrf_token": token},
        files={"datei": ("liste.csv", bad, "text/csv")},
    )
    assert response.status_code == 422 and "Zeile 5" in response.text
    assert client.get("/api/v1/lagebild/buchungen").json() == []


def test_api_flow_and_permissions(client, worlds, db):  # type: ignore[no-untyped-def]
    login(client, "leitung")
    token = csrf_of(client)
    created = client.post(
        "/api/v1/lagebild/buchungen",
        headers={"X-CSRF-Token": token},
        files={"datei": ("liste.csv", CSV, "text/csv")},
    )
    assert created.status_code == 201, created.text
    dataset_id = created.json()["id"]
    report = client.post(
        f"/api/v1/lagebild/buchungen/{dataset_id}/pruefung",
        json={"thresholds": [1000, 25000]},
        headers={"X-CSRF-Token": token},
    )
    assert report.status_code == 200 and report.json()["counts"]["duplikat"] == 1
    flags = client.get(f"/api/v1/lagebild/buchungen/{dataset_id}/hinweise?art=duplikat").json()
    flag_id = flags["flags"][0]["id"]
    assert client.get(f"/api/v1/lagebild/buchungen/hinweise/{flag_id}").json()["payments"]
    no_csrf = client.post(
        f"/api/v1/lagebild/buchungen/hinweise/{flag_id}/entscheidung", json={"status": "pruefen"}
    )
    assert no_csrf.status_code == 403
    ok = client.post(
        f"/api/v1/lagebild/buchungen/hinweise/{flag_id}/entscheidung",
        json={"status": "unauffaellig", "note": "Gutschrift"},
        headers={"X-CSRF-Token": token},
    )
    assert ok.status_code == 200 and ok.json()["decided_by"] == "leitung"
    wrong = client.post(
        f"/api/v1/lagebild/buchungen/hinweise/{flag_id}/entscheidung",
        json={"status": "schuldig"},
        headers={"X-CSRF-Token": token},
    )
    assert wrong.status_code == 422
    client.post("/logout", data={"csrf_token": token})

    # Datenschutz may view, but not decide; Sachbearbeitung may not even view.
    login(client, "dsb")
    token = csrf_of(client)
    assert client.get(f"/lagebild/buchungen/hinweise/{flag_id}").status_code == 200
    denied = client.post(
        f"/api/v1/lagebild/buchungen/hinweise/{flag_id}/entscheidung",
        json={"status": "pruefen"},
        headers={"X-CSRF-Token": token},
    )
    assert denied.status_code == 403
    page_denied = client.post(
        f"/lagebild/buchungen/hinweise/{flag_id}/entscheidung",
        data={"csrf_token": token, "entscheidung": "pruefen"},
    )
    assert page_denied.status_code == 403
    with db.session() as session:
        assert session.get(BookingFlag, flag_id).status == "unauffaellig"
    client.post("/logout", data={"csrf_token": token})
    login(client, "sb")
    assert client.get("/api/v1/lagebild/buchungen").status_code == 403


def test_other_tenant_cannot_see_flags(client, worlds):  # type: ignore[no-untyped-def]
    login(client, "leitung")
    token = csrf_of(client)
    dataset_id = client.post(
        "/api/v1/lagebild/buchungen",
        headers={"X-CSRF-Token": token},
        files={"datei": ("liste.csv", CSV, "text/csv")},
    ).json()["id"]
    client.post("/logout", data={"csrf_token": token})
    login(client, "leitung", tenant="beta")
    assert client.get(f"/api/v1/lagebild/buchungen/{dataset_id}").status_code == 404


def test_too_big_and_empty_uploads_are_refused_in_german(client, worlds, monkeypatch):  # type: ignore[no-untyped-def]
    from rathaus.web import insights_bookings

    monkeypatch.setattr(insights_bookings, "MAX_UPLOAD_BYTES", 64)
    login(client, "leitung")
    token = csrf_of(client)
    big = client.post(
        "/lagebild/buchungen/import",
        data={"csrf_token": token},
        files={"datei": ("liste.csv", CSV * 3, "text/csv")},
    )
    assert big.status_code == 422 and "größer als" in big.text
    empty = client.post(
        "/lagebild/buchungen/import",
        data={"csrf_token": token},
        files={"datei": ("leer.csv", b"", "text/csv")},
    )
    assert empty.status_code == 422 and "ist leer" in empty.text
    assert client.get("/api/v1/lagebild/buchungen").json() == []
