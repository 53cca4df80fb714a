"""The Eingangsquellen page: administrators add, pause, poll and remove mailboxes and folders in
the browser; a folder polled from the page becomes cases; others are refused."""

from __future__ import annotations

import os
import time

from sqlalchemy import select

from rathaus.core.models import AuditEvent, Case, InboxSource
from tests.factories import PASSWORD
from tests.web.conftest import csrf_of, login


def _form(client, **fields):  # type: ignore[no-untyped-def]
    return {"csrf_token": csrf_of(client), **fields}


def _source(db, name: str) -> InboxSource:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(select(InboxSource).where(InboxSource.name == name))


def test_admin_adds_polls_pauses_and_removes_a_folder(client, worlds, db, tmp_path) -> None:
    # The app of tests/web/conftest.py runs in demo mode with data_dir=tmp_path: folder sources
    # are allowed below tmp_path/eingang/<Kommune> (inbox.folder_roots left empty).
    inbox = tmp_path / "eingang" / "alpha" / "scanner"
    inbox.mkdir(parents=True)
    login(client, "admin")
    page = client.get("/posteingang/quellen")
    assert page.status_code == 200 and "Noch keine Quelle eingerichtet." in page.text

    created = client.post(
        "/posteingang/quellen/ordner", data=_form(client, name="Scanner", pfad=str(inbox))
    )
    assert created.status_code == 303
    source = _source(db, "Scanner")
    assert source.kind == "folder" and source.settings["path"] == str(inbox)
    listed = client.get(created.headers["location"]).text
    assert "Die Quelle wurde eingerichtet." in listed and str(inbox) in listed

    letter = inbox / "brief.txt"
    letter.write_text("Sehr geehrte Damen und Herren, die Straßenlaterne ist defekt.", "utf-8")
    past = time.time() - 60
    os.utime(letter, (past, past))
    polled = client.post(f"/posteingang/quellen/{source.id}/abrufen", data=_form(client))
    assert polled.status_code == 200 and "Abruf von „Scanner“" in polled.text
    with db.session() as session:
        assert (
            len(session.scalars(select(Case).where(Case.tenant_id == source.tenant_id)).all()) == 4
        )
    assert not letter.exists() and (inbox / "erledigt" / "brief.txt").exists()

    paused = client.post(f"/posteingang/quellen/{source.id}/aktiv", data=_form(client))
    assert paused.status_code == 303 and not _source(db, "Scanner").is_active
    removed = client.post(
        f"/posteingang/quellen/{source.id}/entfernen", data=_form(client, passwort=PASSWORD)
    )
    assert removed.status_code == 303 and _source(db, "Scanner") is None
    with db.session() as session:
        kinds = set(session.scalars(select(AuditEvent.kind)))
    assert {"inbox_source_created", "inbox_source_paused", "inbox_source_removed"} <= kinds


def test_bad_imap_settings_give_a_german_error_and_keep_the_form(client, worlds, db) -> None:
    login(client, "admin")
    answer = client.post(
        "/posteingang/quellen/imap",
        data=_form(
            client,
            name="Bürgerpost",
            host="imap.example.org",
            tls="none",
            benutzer="post<script>",
        ),
    )
    assert answer.status_code == 422
    assert 'role="alert"' in answer.text and "none" in answer.text
    assert 'value="imap.example.org"' in answer.text and "<script>" not in answer.text
    assert _source(db, "Bürgerpost") is None

    ok = client.post(
        "/posteingang/quellen/imap",
        data=_form(client, name="Bürgerpost", host="imap.example.org", benutzer="post"),
    )
    assert ok.status_code == 303, ok.text[ok.text.find('role="alert"') :][:400]
    source = _source(db, "Bürgerpost")
    assert source.settings["password_env"] == "RATHAUS_IMAP_ALPHA_BUERGERPOST"
    assert "password" not in source.settings


def test_sources_are_for_administrators_of_the_own_municipality(
    client, worlds, db, tmp_path
) -> None:
    login(client, "admin", tenant="beta")
    beta_inbox = tmp_path / "eingang" / "beta" / "scanner"
    beta_inbox.mkdir(parents=True)
    client.post(
        "/posteingang/quellen/ordner", data=_form(client, name="Beta", pfad=str(beta_inbox))
    )
    beta = _source(db, "Beta")
    client.post("/logout", data=_form(client))

    login(client, "admin")
    for action in ("abrufen", "aktiv", "idle", "entfernen"):
        answer = client.post(f"/posteingang/quellen/{beta.id}/{action}", data=_form(client))
        assert answer.status_code == 404
    assert _source(db, "Beta").is_active
    assert (
        client.post("/posteingang/quellen/ordner", data={"name": "X", "pfad": "/tmp"}).status_code
        == 403
    )
    client.post("/logout", data=_form(client))

    login(client, "sb")
    assert client.get("/posteingang/quellen").status_code == 403


def test_imap_idle_is_switched_on_and_off_in_the_browser(client, worlds, db, tmp_path) -> None:
    """IDLE is chosen when a mailbox is set up and switched per mailbox later; the listener
    service (`rathaus inbox lauschen`) follows exactly the mailboxes switched on here."""
    from rathaus.inbox.channels.idle import idle_sources

    login(client, "admin")
    created = client.post(
        "/posteingang/quellen/imap",
        data=_form(client, name="Poststelle", host="imap.example.org", benutzer="post", idle="1"),
    )
    assert created.status_code == 303
    source = _source(db, "Poststelle")
    assert source.settings["idle"] is True
    with db.session() as session:
        assert source.id in idle_sources(session)
    assert "IDLE ausschalten" in client.get("/posteingang/quellen").text

    off = client.post(f"/posteingang/quellen/{source.id}/idle", data=_form(client))
    assert off.status_code == 303 and off.headers["location"].endswith("meldung=idle-aus")
    assert "idle" not in _source(db, "Poststelle").settings
    with db.session() as session:
        assert source.id not in idle_sources(session)
    page = client.get(off.headers["location"]).text
    assert "IMAP IDLE ist aus" in page and "IDLE einschalten" in page

    on = client.post(f"/posteingang/quellen/{source.id}/idle", data=_form(client))
    assert on.headers["location"].endswith("meldung=idle-an")
    assert _source(db, "Poststelle").settings["idle"] is True
    with db.session() as session:
        kinds = list(session.scalars(select(AuditEvent.kind)))
    assert {"inbox_source_idle_off", "inbox_source_idle_on"} <= set(kinds)

    # A folder has no IDLE: a German error, nothing changed.
    inbox = tmp_path / "eingang" / "alpha" / "scan"
    inbox.mkdir(parents=True)
    client.post("/posteingang/quellen/ordner", data=_form(client, name="Scan", pfad=str(inbox)))
    folder = _source(db, "Scan")
    refused = client.post(f"/posteingang/quellen/{folder.id}/idle", data=_form(client))
    assert refused.status_code == 422 and "nur für IMAP-Postfächer" in refused.text
    assert "idle" not in _source(db, "Scan").settings
