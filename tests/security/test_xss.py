"""Output encoding (ASVS V5.3.1, V5.3.3, V14.4.1): hostile text in every kind of object, shown by
every page of the app, arrives escaped; only non-HTML downloads carry it raw.

One tenant gets an object of every kind (tests/web/tenant_data.py) whose every text field holds a
markup payload: case subjects, sender, fields, documents and their file names, knowledge entries,
templates, minutes, datasets, audit entries … Then every GET route is fetched with that tenant's
ids.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from rathaus.web.app import all_routes
from tests.web.conftest import csrf_of, login
from tests.web.tenant_data import into_session, plan_routes, seed

# Short enough for every seeded column (the conversation id has 40 characters in PostgreSQL).
MARKUP = "<svg onload=alert(1)>"
PAYLOAD = f"\"'>{MARKUP}"
ESCAPED = "&lt;svg onload=alert(1)&gt;"
VOCABULARY = {
    "fmt": ("json", "xml", "csv", "xlsx", "geojson", "gpx"),
    "ext": ("txt", "srt", "vtt", "json"),
    "tabelle": ("eingang", "kanaele", "leistungen", "rueckstand", "bearbeitungszeit", "personal"),
    "name": ("aktivitaeten", "varianten", "engpaesse"),
}
SKIP = {"/docs", "/openapi.json", "/login/oidc", "/auth/oidc/callback"}
# Types a browser renders as a document (and would run script in).
RENDERED = ("text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml")


@pytest.fixture
def hostile(db, app, worlds, embedder) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        world = into_session(session, worlds["a"])
        marks = seed(
            session,
            world,
            mark=PAYLOAD,
            originals=app.state.settings.originals_dir,
            embedder=embedder,
        )
    plan_routes(db, marks)
    return marks.values


def _urls(path: str, values: dict[str, str]) -> list[str]:
    urls = [path]
    for name in re.findall(r"\{(\w+)(?::\w+)?\}", path):
        choices = VOCABULARY.get(name, (values.get(name, "1"),))
        urls = [
            re.sub(r"\{" + name + r"(?::\w+)?\}", str(choice), url)
            for url in urls
            for choice in choices
        ]
    return urls


def test_every_page_shows_hostile_text_escaped(client, app, hostile):  # type: ignore[no-untyped-def]
    login(client, "admin")
    raw_in_html, raw_elsewhere, escaped_pages, fetched = [], [], set(), 0
    for route in all_routes(app):
        if not isinstance(route, APIRoute) or "GET" not in route.methods or route.path in SKIP:
            continue
        for url in _urls(route.path, hostile):
            response = client.get(url)
            fetched += 1
            assert response.status_code != 500, url
            kind = response.headers.get("content-type", "")
            text = response.content.decode("utf-8", "replace")
            if kind.startswith("text/html"):
                if MARKUP in text:
                    raw_in_html.append(url)
                if ESCAPED in text:
                    escaped_pages.add(route.path)
            elif MARKUP in text:
                raw_elsewhere.append((url, kind, response.headers.get("x-content-type-options")))
    assert raw_in_html == []
    # Raw text only in data and downloads that a browser does not render as a page (XML, e.g.
    # Open311 or GPX, escapes it as well), never sniffed into HTML.
    for url, kind, sniffing in raw_elsewhere:
        assert not kind.startswith(RENDERED) and sniffing == "nosniff", (url, kind)
    assert fetched >= 120
    # The payload really was on the pages (escaped): cases, documents, knowledge, texts, insights.
    for path in (
        "/vorgaenge/{case_id}",
        "/wissen/{entry_id}",
        "/texte/niederschriften/{minutes_id:int}",
    ):
        assert path in escaped_pages, sorted(escaped_pages)
    assert len(escaped_pages) >= 25, sorted(escaped_pages)


def test_every_response_forbids_content_sniffing(client, app, hostile):  # type: ignore[no-untyped-def]
    login(client, "admin")
    case_id, document_id = hostile["case_id"], hostile["document_id"]
    for url in ("/", f"/vorgaenge/{case_id}", "/api/v1/cases", "/gibt-es-nicht",
                f"/vorgaenge/{case_id}/dokumente/{document_id}", "/static/rathaus.css"):  # fmt: skip
        response = client.get(url)
        assert response.headers["X-Content-Type-Options"] == "nosniff", url


def test_uploaded_html_is_never_served_as_a_page(client, db, worlds, app):  # type: ignore[no-untyped-def]
    """An original that claims to be HTML (or is HTML) is a download in a sandbox, never a page."""
    from rathaus.core.models import Document
    from rathaus.core.storage import OriginalStore

    body = f"<html><body>{MARKUP}<script>alert(2)</script></body></html>".encode()
    case = worlds["a"].cases["BA"]
    with db.session() as session:
        stored = OriginalStore(app.state.settings.originals_dir).put(worlds["a"].tenant.id, body)
        document = Document(
            tenant_id=worlds["a"].tenant.id,
            case_id=case.id,
            filename=f'{PAYLOAD}.html"\r\nX-Evil: 1',
            media_type="text/html",
            size=len(body),
            sha256=stored.sha256,
            storage_path=stored.relative_path,
            extracted_text="",
            extraction_status="fertig",
        )
        session.add(document)
        session.commit()
        document_id = document.id
    login(client, "admin")
    for query in ("", "?ansicht=1"):
        response = client.get(f"/vorgaenge/{case.id}/dokumente/{document_id}{query}")
        assert response.status_code == 200 and response.content == body
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-disposition"].startswith("attachment;")
        assert "sandbox" in response.headers["content-security-policy"]
        assert "x-evil" not in response.headers
    page = client.get(f"/vorgaenge/{case.id}")
    assert MARKUP not in page.text and ESCAPED in page.text


def test_public_assistant_escapes_the_question_and_the_knowledge(client, hostile):  # type: ignore[no-untyped-def]
    """The citizen's page (no login) and the widget's JSON: the question and a knowledge entry
    with markup are text, never markup (the widget builds its DOM with textContent)."""
    answered = client.post(
        "/assistent", data={"question": f"{PAYLOAD} Hundesteuer anmelden", "kommune": "alpha"}
    )
    assert answered.status_code == 200, answered.text[:500]
    assert MARKUP not in answered.text and ESCAPED in answered.text
    api = client.post(
        "/api/v1/assistant/ask", json={"question": "Hundesteuer anmelden", "kommune": "alpha"}
    )
    assert api.status_code == 200 and api.headers["content-type"].startswith("application/json")
    widget = client.get("/static/assistant.js").text
    assert "innerHTML" not in widget and "insertAdjacentHTML" not in widget


def test_knowledge_link_cannot_be_a_script_url(db, worlds):  # type: ignore[no-untyped-def]
    """A knowledge entry's link is rendered as ``href``: only http(s) is stored at all."""
    from rathaus.assistant import knowledge
    from rathaus.core.models import KnowledgeEntry

    with db.session() as session:
        report = knowledge.upsert_entries(
            session,
            tenant_id=worlds["a"].tenant.id,
            entries=[
                knowledge.EntryData(
                    source="test", external_id=name, title="Link", url=url, body="Text"
                )
                for name, url in (("js", "javascript:alert(1)"), ("data", "data:text/html,x"))
            ],
            embedder=None,
        )
        assert [why for _name, why in report.failed] == [
            "Die Adresse „javascript:alert(1)“ ist kein http(s)-Link.",
            "Die Adresse „data:text/html,x“ ist kein http(s)-Link.",
        ]
        assert session.scalar(select(KnowledgeEntry.id)) is None


def test_content_security_policy_blocks_inline_script(client, worlds):  # type: ignore[no-untyped-def]
    login(client, "sb")
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "base-uri 'self'" in csp
    assert csrf_of(client)  # the page is a real staff page
