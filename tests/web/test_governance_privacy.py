"""The Datenschutz pages: permission, CSRF, rules, Art. 15 ZIP, Art. 17 with confirmation, and
the access log that the case page, the original download and the API write."""

from __future__ import annotations

import io
import zipfile

from sqlalchemy import select

from rathaus.core.models import Case, CaseAccess, RetentionRule
from rathaus.core.storage import OriginalStore
from tests.factories import PASSWORD
from tests.governance.test_retention import make_case
from tests.web.conftest import csrf_of, login

BASE = "/governance/datenschutz"
ERIKA = {"name": "Erika Beispiel", "email": "erika.beispiel@example.org"}


def _erika(app, db, worlds) -> int:
    store = OriginalStore(app.state.settings.originals_dir)
    with db.session() as session:
        return make_case(session, worlds["a"], store, reference="ALP-W-1").id


def test_only_privacy_staff_and_csrf(client, worlds):
    login(client, "sb")
    assert client.get(BASE).status_code == 403
    client.cookies.clear()
    login(client, "dsb")
    page = client.get(BASE)
    assert page.status_code == 200 and "Aufbewahrungsregeln" in page.text
    refused = client.post(f"{BASE}/regeln", data={"ziel": "vorgang", "tage": "30"})
    assert refused.status_code in (400, 403)


def test_rules_editor(client, db, worlds):
    login(client, "dsb")
    token = csrf_of(client)
    bad = client.post(
        f"{BASE}/regeln", data={"csrf_token": token, "tage": "viele", "passwort": PASSWORD}
    )
    assert bad.status_code == 422 and "keine Zahl" in bad.text
    saved = client.post(
        f"{BASE}/regeln",
        data={"csrf_token": token, "ziel": "vorgang", "art": "Beschwerde", "tage": "90",
              "aktion": "anonymisieren", "aktiv": "1"},
    )  # fmt: skip
    assert saved.status_code == 303
    page = client.get(saved.headers["location"])
    assert "Vorgänge (Beschwerde): 90 Tage, anonymisieren" in page.text
    with db.session() as session:
        rule = session.scalar(select(RetentionRule))
        assert rule.updated_by == "dsb" and rule.tenant_id == worlds["a"].tenant.id
    dry = client.post(f"{BASE}/anwenden", data={"csrf_token": token})
    assert "Probelauf – nichts geändert" in dry.text
    removed = client.post(
        f"{BASE}/regeln/entfernen",
        data={"csrf_token": token, "ziel": "vorgang", "art": "Beschwerde"},
    )
    assert removed.status_code == 303


def test_access_zip_and_erasure(app, client, db, worlds):
    case_id = _erika(app, db, worlds)
    login(client, "dsb")
    token = csrf_of(client)
    found = client.post(f"{BASE}/auskunft", data={"csrf_token": token, **ERIKA})
    assert (
        found.status_code == 200 and "ALP-W-1" in found.text and "betrifft die Person" in found.text
    )
    download = client.post(f"{BASE}/auskunft/zip", data={"csrf_token": token, **ERIKA})
    assert download.headers["content-type"] == "application/zip"
    assert "auskunft.json" in zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    vague = client.post(f"{BASE}/loeschung", data={"csrf_token": token, "name": "Erika"})
    assert vague.status_code == 422 and "Vor- und Nachnamen" in vague.text
    plan = client.post(f"{BASE}/loeschung", data={"csrf_token": token, **ERIKA})
    assert "Probelauf – nichts gelöscht" in plan.text and 'name="bestaetigen"' in plan.text
    with db.session() as session:
        assert session.get(Case, case_id) is not None
    unconfirmed = client.post(
        f"{BASE}/loeschung", data={"csrf_token": token, **ERIKA, "bestaetigen": "1"}
    )
    assert unconfirmed.status_code == 401  # the password first (ASVS 3.7.1, test_reauth.py)
    with db.session() as session:
        assert session.get(Case, case_id) is not None
    done = client.post(
        f"{BASE}/loeschung",
        data={"csrf_token": token, **ERIKA, "bestaetigen": "1", "passwort": PASSWORD},
    )
    assert "Löschantrag Nr." in done.text
    with db.session() as session:
        assert session.get(Case, case_id) is None
    nobody = client.post(f"{BASE}/loeschung", data={"csrf_token": token, "email": "x@example.net"})
    assert nobody.status_code == 422 and "keine Daten gefunden" in nobody.text


def test_case_page_download_and_api_are_logged(app, client, db, worlds):
    case_id = _erika(app, db, worlds)
    with db.session() as session:
        document_id = session.get(Case, case_id).documents[0].id
    login(client, "sb")
    assert client.get(f"/vorgaenge/{case_id}").status_code == 200
    assert client.get(f"/vorgaenge/{case_id}/dokumente/{document_id}").status_code == 200
    assert client.get(f"/api/v1/cases/{case_id}").status_code == 200
    assert client.get(f"/vorgaenge/{worlds['b'].cases['BA'].id}").status_code == 404
    with db.session() as session:
        rows = session.scalars(select(CaseAccess).order_by(CaseAccess.id)).all()
        assert [(r.action, r.channel, r.username) for r in rows] == [
            ("angesehen", "web", "sb"), ("original", "web", "sb"), ("angesehen", "api", "sb"),
        ]  # fmt: skip
    client.cookies.clear()
    login(client, "dsb")
    page = client.get(f"{BASE}/zugriffe", params={"aktenzeichen": "ALP-W-1"})
    assert page.status_code == 200 and page.text.count("<tr><td>") == 3
    assert "Original heruntergeladen" in page.text
    csv = client.get(f"{BASE}/zugriffe.csv", params={"benutzer": "sb"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 4 and all("ALP-W-1" in line for line in lines[1:])
    bad = client.get(f"{BASE}/zugriffe", params={"von": "gestern"})
    assert bad.status_code == 422 and "kein gültiges Datum" in bad.text
