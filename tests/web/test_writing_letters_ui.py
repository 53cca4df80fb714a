"""Pages and JSON API of Textbausteine, letters, press releases and translation."""

from __future__ import annotations

import io

from pypdf import PdfReader

from rathaus.core.models import TextTemplate
from tests.web.conftest import csrf_of, login


def _template(db, world, name="Eingang", body="wir bestätigen {{aktenzeichen}}.", unit=None):
    with db.session() as session:
        row = TextTemplate(
            tenant_id=world.tenant.id, name=name, kind="brief", subject="Betreff {{aktenzeichen}}",
            body=body, org_unit_id=world.units[unit].id if unit else None,
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


def test_pages_for_a_case_worker(client, worlds):
    login(client, "sb")
    for path in (
        "/texte/bausteine",
        "/texte/brief",
        "/texte/pressemitteilung",
        "/texte/uebersetzung",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert 'lang="de"' in page.text
    # a case worker may not create templates
    assert client.get("/texte/bausteine/neu").status_code == 403


def test_without_writing_permission_everything_is_refused(client, worlds):
    login(client, "dsb")
    for path in ("/texte/bausteine", "/texte/brief", "/texte/pressemitteilung"):
        page = client.get(path)
        assert page.status_code == 403
        assert "Berechtigung" in page.text
    assert client.get("/api/v1/texte/bausteine").status_code == 403


def test_create_validate_escape_and_edit(client, worlds, db):
    login(client, "leitung")
    token = csrf_of(client)
    form = {
        "csrf_token": token,
        "name": "Warnung <script>alert(1)</script>",
        "kind": "brief",
        "subject": "",
        "body": "Hallo <script>alert(1)</script> {{aktenzeichen",
        "org_unit_id": str(worlds["a"].units["OA"].id),
    }
    refused = client.post("/texte/bausteine/neu", data=form)
    assert refused.status_code == 422
    assert "nicht geschlossen" in refused.text
    assert "<script>alert(1)</script>" not in refused.text
    form["body"] = "Hallo <script>alert(1)</script> {{aktenzeichen}}"
    created = client.post("/texte/bausteine/neu", data=form)
    assert created.status_code == 303
    page = client.get(created.headers["location"])
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert(1)</script>" not in page.text
    # without the CSRF token nothing changes
    no_csrf = client.post("/texte/bausteine/neu", data={**form, "csrf_token": "falsch"})
    assert no_csrf.status_code == 403
    assert "CSRF" in no_csrf.text


def test_tenant_isolation_and_department_scoping(client, worlds, db):
    foreign = _template(db, worlds["b"], name="Fremd")
    ordnung = _template(db, worlds["a"], name="Nur Ordnungsamt", unit="OA")
    login(client, "sb")  # Bürgeramt
    assert client.get(f"/texte/bausteine/{foreign}").status_code == 404
    assert client.get(f"/texte/bausteine/{ordnung}").status_code == 404
    assert "Nur Ordnungsamt" not in client.get("/texte/bausteine").text
    token = csrf_of(client)
    letter = client.post(
        "/texte/brief", data={"csrf_token": token, "vorlage": str(foreign), "format": "pdf"}
    )
    assert letter.status_code == 422
    assert "gibt es für Sie nicht" in letter.text


def test_letter_download_from_a_case(client, worlds, db):
    template = _template(db, worlds["a"])
    case = worlds["a"].cases["BA"]
    login(client, "sb")
    page = client.get(f"/texte/brief/vorgang/{case.id}")
    assert page.status_code == 200 and case.reference in page.text
    token = csrf_of(client)
    data = {
        "csrf_token": token,
        "vorlage": str(template),
        "vorgang": case.reference,
        "empfaenger_name": "Jörg Müller",
        "empfaenger_anschrift": "Lindenweg 3\n12345 Großdorf",
    }
    pdf = client.post("/texte/brief", data={**data, "format": "pdf"})
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert f'filename="Brief_{case.reference}.pdf"' in pdf.headers["content-disposition"]
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "Jörg Müller" in text and case.reference in text and "Stadt Alpha" in text
    docx = client.post("/texte/brief", data={**data, "format": "docx"})
    assert docx.headers["content-type"].startswith("application/vnd.openxmlformats")
    preview = client.post("/texte/brief", data={**data, "format": "vorschau"})
    assert "Großdorf" in preview.text
    # another department's case is not found
    other = worlds["a"].cases["OA-GW"]
    assert client.get(f"/texte/brief/vorgang/{other.id}").status_code == 404


def test_press_release_page_and_downloads(client, worlds):
    login(client, "redaktion")
    token = csrf_of(client)
    data = {
        "csrf_token": token,
        "thema": "Glasfaserausbau startet",
        "wer": "Die Stadt Alpha",
        "was": "baut das Glasfasernetz aus",
        "fakten": "4.200 Haushalte erhalten einen Anschluss\nDer Bund fördert mit 50 Prozent",
        "zitat": "Ein wichtiger Schritt",
        "sprecher": "Bürgermeisterin Maria Beispiel",
        "kontakt": "Pressestelle, Telefon 0711 1",
        "datum": "2026-11-21",
    }
    page = client.post("/texte/pressemitteilung", data=data)
    assert page.status_code == 200
    assert "Die Stadt Alpha baut das Glasfasernetz aus." in page.text
    assert "Pressekontakt" in page.text and "#Glasfaserausbau" in page.text
    txt = client.post("/texte/pressemitteilung", data={**data, "format": "txt"})
    assert txt.headers["content-type"].startswith("text/plain")
    assert "Pressemitteilung.txt" in txt.headers["content-disposition"]
    assert "4.200 Haushalte" in txt.text
    bad = client.post("/texte/pressemitteilung", data={**data, "thema": ""})
    assert bad.status_code == 422 and "Thema" in bad.text


def test_translation_page_explains_the_bundled_model(client, worlds):
    login(client, "sb")
    page = client.get("/texte/uebersetzung")
    assert "nicht zuverlässig" in page.text  # default backend: local
    token = csrf_of(client)
    refused = client.post(
        "/texte/uebersetzung", data={"csrf_token": token, "text": "Hallo", "nach": "en"}
    )
    assert refused.status_code == 503 and "7 Mrd." in refused.text


def test_json_api(client, worlds, db):
    template = _template(db, worlds["a"])
    assert client.get("/api/v1/texte/bausteine").status_code == 401
    login(client, "leitung")
    listed = client.get("/api/v1/texte/bausteine")
    assert [t["name"] for t in listed.json()] == ["Eingang"]
    assert listed.json()[0]["placeholders"] == ["aktenzeichen"]
    token = csrf_of(client)
    headers = {"X-CSRF-Token": token}
    no_csrf = client.post("/api/v1/texte/bausteine", json={"name": "A", "body": "b"})
    assert no_csrf.status_code == 403
    made = client.post(
        "/api/v1/texte/bausteine",
        json={"name": "Ordnung", "body": "{{amt}}", "org_unit_id": worlds["a"].units["OA"].id},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    invalid = client.post(
        "/api/v1/texte/bausteine", json={"name": "X", "body": "{{gibtsnicht}}"}, headers=headers
    )
    assert invalid.status_code == 422 and "gibt es nicht" in invalid.json()["detail"]
    case = worlds["a"].cases["OA-GW"]
    letter = client.post(
        "/api/v1/texte/brief",
        json={"baustein_id": template, "aktenzeichen": case.reference, "empfaenger_name": "Eva"},
        headers=headers,
    )
    body = letter.json()
    assert body["unser_zeichen"] == case.reference
    assert body["absender"].startswith("Stadt Alpha")
    assert body["empfaenger"][0] == "Eva" and "Anschrift" in body["luecken"]
    pdf = client.post(
        "/api/v1/texte/brief",
        json={"baustein": "Eingang", "aktenzeichen": case.reference, "format": "pdf"},
        headers=headers,
    )
    assert pdf.headers["content-type"] == "application/pdf"
    pm = client.post(
        "/api/v1/texte/pressemitteilung",
        json={"thema": "Neue Bibliothek", "fakten": ["Eröffnung am 3. Mai 2027"]},
        headers=headers,
    )
    assert pm.status_code == 200
    assert len(pm.json()["zusammengesetzt"]["kurzfassung"]) <= 280
    tr = client.post("/api/v1/texte/uebersetzung", json={"text": "Hallo", "nach": "en"},
                     headers=headers)  # fmt: skip
    assert tr.status_code == 503 and "nicht zuverlässig" in tr.json()["detail"]


# -- decision record ---------------------------------------------------------------------------


class _FakeModel:
    name = "fake"
    model = "fake-1"
    version = "1"

    def complete(self, messages, *, max_tokens=512, temperature=0.0, json_mode=False):
        from rathaus.ai.llm import Completion

        text = "Glasfaser für Alpha\n\nDie Stadt Alpha baut das Glasfasernetz aus.\n\nMehr folgt."
        return Completion(text=text, model=self.model)

    def stream(self, messages, *, max_tokens=512, temperature=0.0):  # pragma: no cover
        yield self.complete(messages).text


def _suggestions(db, function):
    from sqlalchemy import select

    from rathaus.core.models import AiSuggestion

    with db.session() as session:
        rows = session.scalars(select(AiSuggestion).where(AiSuggestion.function == function))
        return {r.tenant_id: (r.input_sha256, r.backend, r.model_version, r.output) for r in rows}


def test_model_texts_are_recorded_per_tenant(client, worlds, db, app, monkeypatch):
    from rathaus.ai import registry
    from rathaus.governance.decisions import sha256_text
    from rathaus.writing import press

    app.state.settings = app.state.settings.model_copy(
        update={"llm": app.state.settings.llm.model_copy(update={"backend": "openai"})}
    )
    monkeypatch.setattr(
        registry, "get_language_model", lambda settings, function=None: _FakeModel()
    )
    alpha, beta = worlds["a"].tenant.id, worlds["b"].tenant.id
    login(client, "redaktion")
    form = {"thema": "Glasfaserausbau startet", "wer": "Die Stadt Alpha",
            "was": "baut das Glasfasernetz aus", "fakten": "4.200 Haushalte"}  # fmt: skip
    page = client.post(
        "/texte/pressemitteilung", data={**form, "csrf_token": csrf_of(client), "mit_modell": "1"}
    )
    assert page.status_code == 200 and "Glasfaser für Alpha" in page.text
    translated = client.post(
        "/texte/uebersetzung",
        data={"csrf_token": csrf_of(client), "text": "Das Amt ist geschlossen.", "nach": "en"},
    )
    assert translated.status_code == 200, translated.text
    # beta through the API (a staff session: an API key together with the model-call record
    # hits a SQLite write lock, see the report)
    client.cookies.clear()
    login(client, "redaktion", "beta")
    headers = {"X-CSRF-Token": csrf_of(client)}
    api = client.post(
        "/api/v1/texte/pressemitteilung",
        json={"thema": "Glasfaser", "fakten": ["4.200 Haushalte"], "mit_modell": True},
        headers=headers,
    )
    assert api.status_code == 200 and api.json()["erzeugt"], api.text
    api = client.post(
        "/api/v1/texte/uebersetzung", json={"text": "Heute zu.", "nach": "tr"}, headers=headers
    )
    assert api.status_code == 200, api.text
    # an API key of beta (no person) with the model: its last use is committed before the
    # model call, so the call's record does not wait for the request's write lock (SQLite)
    from rathaus.core import apikeys

    with db.session() as session:
        key, _ = apikeys.create(session, tenant=worlds["b"].tenant, channel="api", name="presse")
    keyed = client.post(
        "/api/v1/texte/pressemitteilung",
        json={
            "thema": "Glasfaser per Schlüssel",
            "fakten": ["4.200 Haushalte"],
            "mit_modell": True,
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert keyed.status_code == 200 and keyed.json()["erzeugt"], keyed.text
    # the assembled press release (no model) is not an AI output
    plain = client.post(
        "/api/v1/texte/pressemitteilung", json={"thema": "Ohne", "fakten": ["x"]}, headers=headers
    )
    assert plain.status_code == 200

    releases = _suggestions(db, "pressemitteilung")
    assert set(releases) == {alpha, beta}
    with db.session() as session:
        from sqlalchemy import func, select

        from rathaus.core.models import AiSuggestion

        assert (
            session.scalar(
                select(func.count(AiSuggestion.id)).where(
                    AiSuggestion.function == "pressemitteilung", AiSuggestion.tenant_id == beta
                )
            )
            == 2
        )
    points = press.key_points_from_mapping({k: form.get(k, "") for k in form})
    assert releases[alpha][0] == sha256_text(points.source_text())
    assert releases[alpha][1:3] == ("openai", "fake-1")
    assert "Glasfaser für Alpha" in releases[alpha][3]["text"] and releases[alpha][3]["social"]
    translations = _suggestions(db, "uebersetzung")
    assert set(translations) == {alpha, beta}
    assert translations[alpha][0] == sha256_text("Das Amt ist geschlossen.")
    assert translations[beta][0] == sha256_text("Heute zu.")
    assert translations[beta][3]["target"] == "tr" and translations[beta][2] == "fake-1"

    for tenant in ("alpha", "beta"):
        client.cookies.clear()
        login(client, "admin", tenant)
        listed = client.get("/governance/entscheidungen")
        assert listed.text.count("Pressemitteilung</td>") == (1 if tenant == "alpha" else 2)
        assert listed.text.count("Übersetzung</td>") == 1
