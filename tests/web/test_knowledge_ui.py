"""The Redaktion's pages under /wissen: list, edit (re-indexed), verify, the answers that used an
entry, the gaps report with its CSV, the import, and who may do what. Entries are indexed with
the real embedder; two short ones keep that cheap."""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from sqlalchemy import select

from rathaus.assistant import knowledge
from rathaus.assistant.entries import EntryData
from rathaus.core.models import (
    AssistantCitation,
    AssistantConversation,
    AssistantTurn,
    KnowledgeChunk,
    KnowledgeEntry,
)
from tests.factories import PASSWORD
from tests.web.conftest import csrf_of, login

XSS = "<script>alert(1)</script>"


def _entries(tenant_id: int) -> list[EntryData]:
    return [
        EntryData(
            source="test",
            external_id="ausweis",
            title="Personalausweis beantragen",
            url="https://stadt.example/ausweis",
            body="Den Personalausweis beantragen Sie persönlich im Bürgerbüro.",
            keywords="Perso",
            facts={
                "fees": "37,00 Euro",
                "forms": [{"title": "Antrag", "url": "https://x.example/a"}],
            },
        ),
        EntryData(source="test", external_id="xss", title=XSS, body=f"Text mit {XSS} darin."),
    ]


@pytest.fixture
def kb(worlds, db, embedder):  # type: ignore[no-untyped-def]
    """Two entries in alpha, one in beta; the ids by tenant and external id."""
    ids = {}
    with db.session() as session:
        for key in ("a", "b"):
            tenant_id = worlds[key].tenant.id
            entries = _entries(tenant_id) if key == "a" else _entries(tenant_id)[:1]
            knowledge.upsert_entries(
                session, tenant_id=tenant_id, entries=entries, embedder=embedder
            )
            for e in session.scalars(
                select(KnowledgeEntry).where(KnowledgeEntry.tenant_id == tenant_id)
            ):
                ids[(key, e.external_id)] = e.id
    return ids


@pytest.fixture
def app(app, embedder):  # type: ignore[no-untyped-def]
    app.state.knowledge_embedder = embedder  # the same real model as the fixtures above
    return app


def _turn(
    db,
    tenant_id: int,
    question: str,
    *,
    cites=(),
    abstained=False,
    confidence=0.9,
    language="de",
    searched_as="",
):  # type: ignore[no-untyped-def]
    with db.session() as session:
        conversation = AssistantConversation(tenant_id=tenant_id, public_id=uuid.uuid4().hex)
        session.add(conversation)
        session.flush()
        turn = AssistantTurn(
            tenant_id=tenant_id,
            conversation_id=conversation.id,
            question=question,
            answer={
                "text": "Bringen Sie ein Passfoto mit.",
                "sentences": [],
                **({"searched_as": searched_as} if searched_as else {}),
            },
            confidence=confidence,
            abstained=abstained,
            language=language,
        )
        session.add(turn)
        session.flush()
        for rank, entry_id in enumerate(cites):
            session.add(
                AssistantCitation(
                    tenant_id=tenant_id, turn_id=turn.id, entry_id=entry_id, rank=rank
                )
            )


def _form(client, entry_id: int, **changes: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The edit form's fields as the page shows them, with ``changes`` applied."""
    page = client.get(f"/wissen/{entry_id}").text
    fields = {
        name: value
        for name, value in re.findall(
            r'<input id="[^"]+" name="([a-z_]+)"[^>]*value="([^"]*)"', page
        )
    }
    for name, value in re.findall(
        r'<textarea id="[^"]+" name="([a-z_]+)"[^>]*>([^<]*)</textarea>', page
    ):
        fields[name] = value
    fields["is_published"] = "1"
    fields["csrf_token"] = csrf_of(client)
    fields.update(changes)
    return fields


def test_only_the_redaktion_sees_and_uses_the_pages(client, kb):
    entry = kb[("a", "ausweis")]
    login(client, "sb")
    assert 'href="/wissen"' not in client.get("/").text
    token = csrf_of(client)
    for url in (
        "/wissen",
        f"/wissen/{entry}",
        "/wissen/luecken",
        "/wissen/luecken.csv",
        "/wissen/import",
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "Berechtigung" in response.text
    for url in (f"/wissen/{entry}", f"/wissen/{entry}/geprueft", "/wissen/import"):
        assert client.post(url, data={"csrf_token": token, "title": "X"}).status_code == 403

    client.post("/logout", data={"csrf_token": token})
    login(client, "redaktion")
    start = client.get("/").text
    assert 'href="/wissen"' in start
    page = client.get("/wissen")
    assert page.status_code == 200
    assert "Personalausweis beantragen" in page.text and "nie geprüft" in page.text
    assert 'aria-current="page">Wissen' in page.text
    assert len(re.findall(r'href="/wissen/\d+"', client.get("/wissen?q=perso").text)) == 1
    assert "Kein Eintrag passt" in client.get("/wissen?q=gibtsnicht&ungeprueft=1").text


def test_admin_may_too_but_not_in_another_tenant(client, kb):
    login(client, "admin")
    assert client.get(f"/wissen/{kb[('a', 'ausweis')]}").status_code == 200
    other = kb[("b", "ausweis")]
    assert client.get(f"/wissen/{other}").status_code == 404
    token = csrf_of(client)
    assert client.post(f"/wissen/{other}/geprueft", data={"csrf_token": token}).status_code == 404
    assert (
        client.post(f"/wissen/{other}", data={"csrf_token": token, "title": "x"}).status_code == 404
    )


def test_edit_reindexes_and_mark_verified(client, kb, db):
    entry = kb[("a", "ausweis")]
    login(client, "redaktion")
    page = client.get(f"/wissen/{entry}").text
    assert ">37,00 Euro</textarea>" in page
    assert "Antrag | https://x.example/a</textarea>" in page  # forms: one "Titel | URL" per line
    fields = _form(
        client,
        entry,
        body="Neu: Den Ausweis gibt es jetzt auch als Quittenholz-Karte.",
        fact_fees="22,80 Euro",
        fact_required_documents="Passfoto\nalter Ausweis",
    )
    response = client.post(f"/wissen/{entry}", data=fields)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/wissen/{entry}?meldung=gespeichert"
    assert "neu indexiert" in client.get(response.headers["location"]).text
    with db.session() as session:
        texts = " ".join(
            session.scalars(select(KnowledgeChunk.text).where(KnowledgeChunk.entry_id == entry))
        )
        stored = session.get(KnowledgeEntry, entry)
        assert "Quittenholz" in texts and "persönlich im Bürgerbüro" not in texts
        assert stored.facts["required_documents"] == ["Passfoto", "alter Ausweis"]
        assert stored.facts["forms"] == [{"title": "Antrag", "url": "https://x.example/a"}]
        assert stored.last_verified_at is None

    again = client.post(f"/wissen/{entry}", data=_form(client, entry))
    assert again.headers["location"].endswith("meldung=unveraendert")

    verified = client.post(f"/wissen/{entry}/geprueft", data={"csrf_token": csrf_of(client)})
    assert verified.status_code == 303
    page = client.get(verified.headers["location"]).text
    assert "als geprüft markiert" in page
    assert re.search(r"Zuletzt geprüft am \d\d\.\d\d\.\d{4}, \d\d:\d\d von Redaktion", page)
    with db.session() as session:
        assert session.get(KnowledgeEntry, entry).verified_by == "Redaktion"


def test_invalid_edit_shows_german_errors_and_keeps_the_input(client, kb, db):
    entry = kb[("a", "ausweis")]
    login(client, "redaktion")
    fields = _form(client, entry, title="", url="javascript:alert(1)", body="Mein Entwurf")
    response = client.post(f"/wissen/{entry}", data=fields)
    assert response.status_code == 400
    assert "Bitte geben Sie dem Eintrag einen Titel." in response.text
    assert "mit http:// oder https:// beginnt" in response.text
    assert "Mein Entwurf</textarea>" in response.text
    with db.session() as session:
        assert session.get(KnowledgeEntry, entry).title == "Personalausweis beantragen"


def test_missing_csrf_is_rejected(client, kb, db):
    entry = kb[("a", "ausweis")]
    login(client, "redaktion")
    fields = _form(client, entry, title="Gekapert")
    del fields["csrf_token"]
    response = client.post(f"/wissen/{entry}", data=fields)
    assert response.status_code == 403 and "CSRF" in response.text
    assert (
        client.post(f"/wissen/{entry}/geprueft", data={"csrf_token": "falsch"}).status_code == 403
    )
    with db.session() as session:
        stored = session.get(KnowledgeEntry, entry)
        assert stored.title == "Personalausweis beantragen" and stored.last_verified_at is None


def test_titles_and_questions_are_escaped(client, kb, worlds, db):
    entry = kb[("a", "xss")]
    _turn(db, worlds["a"].tenant.id, f"Frage {XSS}", cites=[entry], abstained=True)
    login(client, "redaktion")
    for url in ("/wissen", f"/wissen/{entry}", "/wissen/luecken"):
        page = client.get(url).text
        assert XSS not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url


def test_answers_using_the_entry(client, kb, worlds, db):
    entry = kb[("a", "ausweis")]
    tenant_id = worlds["a"].tenant.id
    _turn(db, tenant_id, "Was brauche ich für den Ausweis?", cites=[entry, entry], confidence=0.82)
    _turn(db, tenant_id, "Ausweis verloren?", cites=[entry], abstained=True)
    _turn(db, tenant_id, "Wo ist der Wertstoffhof?", cites=[kb[("a", "xss")]])
    login(client, "redaktion")
    page = client.get(f"/wissen/{entry}").text
    section = page[page.index('id="h-antworten"') :]
    assert "Was brauche ich für den Ausweis?" in section and "82 %" in section
    assert section.count("Was brauche ich für den Ausweis?") == 1  # one row per answer
    assert section.index("Ausweis verloren?") < section.index("Was brauche")  # newest first
    assert "Enthaltung" in section
    assert "Wertstoffhof" not in section
    listed = client.get("/wissen?sortierung=nutzung").text
    assert listed.index("Personalausweis beantragen") < listed.index("&lt;script&gt;")


def test_gaps_report_groups_equal_questions_and_downloads_csv(client, kb, worlds, db):
    tenant_id = worlds["a"].tenant.id
    _turn(db, tenant_id, "Wo melde ich Sperrmüll an?", abstained=True, confidence=0.1)
    _turn(db, tenant_id, "wo melde ich sperrmüll an", abstained=True, confidence=0.2)
    _turn(db, tenant_id, "Was kostet der Ausweis?", cites=[kb[("a", "ausweis")]], confidence=0.3)
    _turn(db, tenant_id, "Wie spät ist es?", confidence=0.95)  # answered well: not a gap
    _turn(db, worlds["b"].tenant.id, "Wo melde ich Sperrmüll an?", abstained=True)
    login(client, "redaktion")
    page = client.get("/wissen/luecken?tage=7&schwelle=0.5")
    assert page.status_code == 200
    assert "3 Fragen in 2 Gruppen" in page.text
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td class=\"num\">(\d+)</td>", page.text, re.S)
    assert [(q.strip(), n) for q, n in rows] == [
        ("wo melde ich sperrmüll an", "2"),
        ("Was kostet der Ausweis?", "1"),
    ]
    assert "2 × Enthaltung" in page.text and "1 × geringe Sicherheit" in page.text
    assert "Wie spät" not in page.text
    assert f'href="/wissen/{kb[("a", "ausweis")]}"' in page.text  # the cited entry is linked
    assert "Personalausweis beantragen" in page.text

    lower = client.get("/wissen/luecken?schwelle=0.3").text
    assert "2 Fragen in 1 Gruppe." in lower  # 0.3 is not below 0.3

    download = client.get("/wissen/luecken.csv?tage=7&schwelle=0.5")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(download.text.lstrip("\ufeff")), delimiter=";"))
    assert table[0][0] == "Frage"
    assert table[1][:2] == ["wo melde ich sperrmüll an", "2"] and table[1][6] == "nein"
    assert table[2][6] == "ja" and table[2][7] == "Personalausweis beantragen"
    assert table[0][9] == "Sprachen" and table[1][9] == table[2][9] == ""


def test_gaps_report_names_the_languages_of_foreign_questions(client, worlds, db):
    """A gap asked in another language says which, so the Redaktion can add keywords in it."""
    tenant_id = worlds["a"].tenant.id
    for language in ("en", "en", "tr"):
        _turn(db, tenant_id, "My residence permit expires", abstained=True, language=language)
    # a model translated it for the search: the report says how it was understood
    german = "Meine Aufenthaltserlaubnis läuft ab"
    _turn(
        db,
        tenant_id,
        "My residence permit expires",
        abstained=True,
        language="en",
        searched_as=german,
    )
    _turn(db, tenant_id, "Wo melde ich Sperrmüll an?", abstained=True)
    login(client, "redaktion")
    page = client.get("/wissen/luecken?tage=7&schwelle=0.5").text
    row = page[page.index("My residence permit expires") :]
    badge = '<span class="badge"><span class="visually-hidden">Sprache: </span>Englisch, Türkisch'
    assert row[: row.index("</td>")].count(badge) == 1
    assert f'Gesucht als: <span lang="de">„{german}“</span>' in row[: row.index("</td>")]
    sperrmuell = page[page.index("Wo melde ich Sperrmüll an?") :]
    assert "badge" not in sperrmuell[: sperrmuell.index("</td>")]
    download = client.get("/wissen/luecken.csv?tage=7&schwelle=0.5").text
    table = list(csv.reader(io.StringIO(download.lstrip("\ufeff")), delimiter=";"))
    assert table[1][0] == "My residence permit expires" and table[1][9] == "Englisch, Türkisch"
    assert table[0][10] == "Gesucht als" and table[1][10] == german
    assert table[2][9] == table[2][10] == ""


def test_import_reports_each_file_and_survives_a_broken_one(client, kb, db, worlds):
    login(client, "redaktion")
    page = client.get("/wissen/import")
    assert page.status_code == 200 and 'name="dateien"' in page.text
    markdown = "# Hundesteuer\n\nWer einen Hund hält, meldet ihn binnen zwei Wochen an.\n"
    response = client.post(
        "/wissen/import",
        data={"csrf_token": csrf_of(client)},
        files=[
            ("dateien", ("kaputt.json", b'{"entries": [', "application/json")),
            ("dateien", ("hundesteuer.md", markdown.encode(), "text/markdown")),
        ],
    )
    assert response.status_code == 200
    results = response.text[response.text.index('class="upload-results"') :]
    broken = results[results.index("kaputt.json") : results.index("hundesteuer.md")]
    assert "nicht importiert" in broken
    assert "rathaus-wissen-" not in response.text  # no temporary path in the message
    assert "1 neu, 0 aktualisiert, 0 unverändert" in results
    with db.session() as session:
        titles = set(
            session.scalars(
                select(KnowledgeEntry.title).where(
                    KnowledgeEntry.tenant_id == worlds["a"].tenant.id
                )
            )
        )
    assert "Hundesteuer" in titles

    again = client.post(
        "/wissen/import",
        data={"csrf_token": csrf_of(client)},
        files=[("dateien", ("hundesteuer.md", markdown.encode(), "text/markdown"))],
    )
    assert "0 neu, 0 aktualisiert, 1 unverändert" in again.text  # the same file: no duplicate

    empty = client.post("/wissen/import", data={"csrf_token": csrf_of(client)})
    assert empty.status_code == 400 and "mindestens eine Datei" in empty.text


def test_delete_needs_confirmation(client, kb, db):
    entry = kb[("a", "xss")]
    login(client, "redaktion")
    refused = client.post(f"/wissen/{entry}/loeschen", data={"csrf_token": csrf_of(client)})
    assert refused.status_code == 400 and "Bitte bestätigen Sie das Löschen" in refused.text
    deleted = client.post(
        f"/wissen/{entry}/loeschen",
        data={"csrf_token": csrf_of(client), "bestaetigt": "1", "passwort": PASSWORD},
    )
    assert deleted.status_code == 303
    assert "Der Eintrag wurde gelöscht." in client.get(deleted.headers["location"]).text
    with db.session() as session:
        assert session.get(KnowledgeEntry, entry) is None
    assert client.get(f"/wissen/{entry}").status_code == 404
