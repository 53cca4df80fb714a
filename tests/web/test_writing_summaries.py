"""Summary pages and JSON API: permission, CSRF, escaping, uploads, case entry point."""

from __future__ import annotations

import pytest

from rathaus.core.models import Document
from tests.web.conftest import csrf_of, login
from tests.writing.test_summarize import TOPICS, long_text

pytestmark = pytest.mark.model


@pytest.fixture
def sb(client, worlds):  # type: ignore[no-untyped-def]
    login(client, "sb")
    return client


def test_form_needs_the_writing_permission(client, worlds) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/texte/zusammenfassung").status_code in (302, 303, 401)
    login(client, "dsb")
    page = client.get("/texte/zusammenfassung")
    assert page.status_code == 403
    response = client.post(
        "/api/v1/texte/zusammenfassung",
        json={"text": long_text()},
        headers={"X-CSRF-Token": csrf_of(client)},
    )
    assert response.status_code == 403


def test_page_summarises_with_links_coverage_and_escaping(sb) -> None:  # type: ignore[no-untyped-def]
    page = sb.get("/texte/zusammenfassung")
    assert page.status_code == 200 and 'name="modus"' in page.text
    text = long_text() + "\n\n5. Hinweis\n\nDie Anlage <script>alert(1)</script> bleibt beim Amt."
    result = sb.post(
        "/texte/zusammenfassung",
        data={"text": text, "modus": "extraktiv", "laenge": "kurz", "csrf_token": csrf_of(sb)},
    )
    assert result.status_code == 200, result.text
    assert "<script>alert(1)</script>" not in result.text
    assert "&lt;script&gt;" in result.text
    assert 'href="#absatz-' in result.text and 'id="absatz-1.1"' in result.text
    assert "Abdeckung" in result.text and "<table" in result.text
    assert "Formalien" in result.text or "doppelt" in result.text


def test_post_without_csrf_is_refused(sb) -> None:  # type: ignore[no-untyped-def]
    response = sb.post("/texte/zusammenfassung", data={"text": long_text()})
    assert response.status_code == 403
    api = sb.post("/api/v1/texte/zusammenfassung", json={"text": long_text()})
    assert api.status_code == 403


def test_empty_and_malformed_upload_get_german_messages(sb) -> None:  # type: ignore[no-untyped-def]
    empty = sb.post("/texte/zusammenfassung", data={"text": "  ", "csrf_token": csrf_of(sb)})
    assert empty.status_code == 400 and "Der Text ist leer" in empty.text
    broken = sb.post(
        "/texte/zusammenfassung",
        data={"csrf_token": csrf_of(sb)},
        files={"datei": ("vorlage.pdf", b"%PDF-1.7\n1 0 obj << /Broken", "application/pdf")},
    )
    assert broken.status_code == 400
    assert "PDF" in broken.text


def test_uploaded_text_file_is_summarised(sb) -> None:  # type: ignore[no-untyped-def]
    response = sb.post(
        "/texte/zusammenfassung",
        data={"csrf_token": csrf_of(sb), "laenge": "kurz"},
        files={"datei": ("vorlage.txt", long_text().encode(), "text/plain")},
    )
    assert response.status_code == 200
    assert "vorlage.txt" in response.text


def test_api_returns_sentences_with_links(sb) -> None:  # type: ignore[no-untyped-def]
    response = sb.post(
        "/api/v1/texte/zusammenfassung",
        json={"text": long_text(), "sentences": 3},
        headers={"X-CSRF-Token": csrf_of(sb)},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mode"] == "extraktiv" and len(body["sentences"]) == 3
    for s in body["sentences"]:
        assert s["supported"] and s["link"] == f"#absatz-{s['paragraph_id']}"
    assert {r["status"] for r in body["sections"]} >= {"verwendet"}
    empty = sb.post(
        "/api/v1/texte/zusammenfassung", json={"text": ""}, headers={"X-CSRF-Token": csrf_of(sb)}
    )
    assert empty.status_code == 400 and "leer" in empty.json()["detail"]


def test_case_summary_page_and_api_respect_access(sb, worlds, db) -> None:  # type: ignore[no-untyped-def]
    world = worlds["a"]
    case = world.cases["BA"]
    with db.session() as session:
        session.add(
            Document(
                tenant_id=world.tenant.id,
                case_id=case.id,
                filename="antrag.txt",
                sha256="1" * 64,
                storage_path="x",
                extracted_text=TOPICS["Sachverhalt"] + "\n\n" + TOPICS["Begründung"],
            )
        )
    page = sb.get(f"/texte/zusammenfassung/vorgang/{case.id}")
    assert page.status_code == 200, page.text
    assert case.reference in page.text and f"/vorgaenge/{case.id}/dokumente/" in page.text
    api = sb.post(
        f"/api/v1/texte/zusammenfassung/vorgang/{case.id}",
        headers={"X-CSRF-Token": csrf_of(sb)},
    )
    assert api.status_code == 200, api.text
    assert any(s["link"].startswith(f"/vorgaenge/{case.id}") for s in api.json()["sentences"])
    hidden = world.cases["OA-GW"]  # sb works in the Bürgeramt only
    assert sb.get(f"/texte/zusammenfassung/vorgang/{hidden.id}").status_code == 404
    other = worlds["b"].cases["BA"]
    assert (
        sb.post(
            f"/api/v1/texte/zusammenfassung/vorgang/{other.id}",
            headers={"X-CSRF-Token": csrf_of(sb)},
        ).status_code
        == 404
    )


def test_document_summaries_are_recorded_per_tenant(client, worlds, db) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from rathaus.core.models import AiSuggestion
    from rathaus.governance.decisions import sha256_text

    text = long_text()
    login(client, "sb")
    page = client.post(
        "/texte/zusammenfassung",
        data={"text": text, "laenge": "kurz", "csrf_token": csrf_of(client)},
    )
    assert page.status_code == 200
    client.cookies.clear()
    login(client, "sb", "beta")
    api = client.post(
        "/api/v1/texte/zusammenfassung",
        json={"text": text + "\n\nNachtrag.", "sentences": 2},
        headers={"X-CSRF-Token": csrf_of(client)},
    )
    assert api.status_code == 200, api.text
    with db.session() as session:
        rows = {
            r.tenant_id: (r.input_sha256, r.subject_type, r.subject_id, r.case_id, r.output)
            for r in session.scalars(
                select(AiSuggestion).where(AiSuggestion.function == "zusammenfassung")
            )
        }
    digest = sha256_text(text)
    assert set(rows) == {worlds["a"].tenant.id, worlds["b"].tenant.id}
    assert rows[worlds["a"].tenant.id][:4] == (digest, "dokument", digest[:16], None)
    assert rows[worlds["a"].tenant.id][4]["sentences"]
    other = sha256_text(text + "\n\nNachtrag.")
    assert rows[worlds["b"].tenant.id][:3] == (other, "dokument", other[:16])

    for tenant in ("alpha", "beta"):
        client.cookies.clear()
        login(client, "admin", tenant)
        listed = client.get("/governance/entscheidungen?funktion=zusammenfassung")
        assert listed.status_code == 200 and listed.text.count("Zusammenfassung</td>") == 1
