"""Version history of knowledge entries: a save, a changing re-import and a restore each keep the
content before the change; a restore re-indexes like a save and is audited; the cap holds;
versions go with their entry and tenant and never cross tenants. Real embedder, short entries."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import delete, func, select

from rathaus.assistant import editorial, knowledge, retrieve, versions
from rathaus.assistant.entries import EntryData
from rathaus.core.errors import NotFoundError
from rathaus.core.models import (
    AuditEvent,
    KnowledgeChunk,
    KnowledgeEntry,
    KnowledgeEntryVersion,
    Tenant,
    User,
)
from tests.factories import build_tenant

ORIGINAL = (
    "Den Personalausweis beantragen Sie persönlich im Bürgerbüro.\n\n"
    "Bitte bringen Sie ein biometrisches Passfoto mit."
)
AUSWEIS = EntryData(
    source="test",
    external_id="ausweis",
    title="Personalausweis beantragen",
    url="https://stadt.example/ausweis",
    body=ORIGINAL,
    keywords="Perso, Ausweis",
    facts={"fees": "37,00 Euro", "required_documents": ["Passfoto", "alter Ausweis"]},
)
EDITED = (
    "Den Personalausweis beantragen Sie persönlich im Bürgerbüro.\n\n"
    "Neu: Das Foto machen wir kostenlos am Fotoautomaten aus Quittenholz."
)


@pytest.fixture
def world(db, embedder):  # type: ignore[no-untyped-def]
    with db.session() as session:
        alpha = build_tenant(session, "alpha")
        beta = build_tenant(session, "beta")
        for tenant in (alpha.tenant, beta.tenant):
            knowledge.upsert_entries(
                session, tenant_id=tenant.id, entries=[AUSWEIS], embedder=embedder
            )
        ids = {
            t.tenant.slug: session.scalar(
                select(KnowledgeEntry.id).where(KnowledgeEntry.tenant_id == t.tenant.id)
            )
            for t in (alpha, beta)
        }
        return {
            "tenant": alpha.tenant.id,
            "other": beta.tenant.id,
            "user": alpha.users["redaktion"].id,
            "entry": ids["alpha"],
            "other_entry": ids["beta"],
        }


def _edit(session, world, embedder, **changes):  # type: ignore[no-untyped-def]
    entry = session.get(KnowledgeEntry, world["entry"])
    fields = {
        "title": entry.title,
        "url": entry.url,
        "body": entry.body,
        "keywords": entry.keywords,
        "facts": dict(entry.facts),
        "is_published": entry.is_published,
        **changes,
    }
    return editorial.update_fields(
        session,
        tenant_id=world["tenant"],
        entry_id=entry.id,
        embedder=embedder,
        user=session.get(User, world["user"]),
        **fields,
    )


def _versions(session, entry_id: int) -> list[KnowledgeEntryVersion]:  # type: ignore[no-untyped-def]
    return list(
        session.scalars(
            select(KnowledgeEntryVersion)
            .where(KnowledgeEntryVersion.entry_id == entry_id)
            .order_by(KnowledgeEntryVersion.number)
        )
    )


def test_a_save_keeps_the_old_content_and_an_unchanged_save_keeps_nothing(db, world, embedder):
    with db.session() as session:
        editorial.mark_verified(
            session,
            tenant_id=world["tenant"],
            entry_id=world["entry"],
            user=session.get(User, world["user"]),
        )
        _edit(session, world, embedder, body=EDITED, facts={"fees": "22,80 Euro"})
    with db.session() as session:
        (first,) = _versions(session, world["entry"])
        assert first.number == 1 and first.tenant_id == world["tenant"]
        assert first.body == ORIGINAL and first.title == "Personalausweis beantragen"
        assert first.facts == AUSWEIS.facts and first.keywords == "Perso, Ausweis"
        assert first.is_published is True and first.language == "de"
        assert first.reason == "bearbeitet" and first.changed_by == "Redaktion"
        assert first.changed_fields == ["body", "facts.fees", "facts.required_documents"]
        assert first.last_verified_at is not None and first.verified_by == "Redaktion"
        assert [versions.field_label(f) for f in first.changed_fields] == [
            "Text",
            "Gebühren",
            "Mitzubringen / Unterlagen",
        ]
        assert session.get(KnowledgeEntry, world["entry"]).body == EDITED

        _edit(session, world, embedder)  # the same content again
        _edit(session, world, embedder, title="  Personalausweis beantragen  ", body=EDITED + "\n")
        assert len(_versions(session, world["entry"])) == 1


def test_a_reimport_that_changes_the_entry_keeps_a_version(db, world, embedder):
    with db.session() as session:
        _edit(session, world, embedder, body=EDITED)  # the Redaktion's careful correction
        report = knowledge.upsert_entries(
            session, tenant_id=world["tenant"], entries=[AUSWEIS], embedder=embedder
        )
        assert report.updated == 1
        assert session.get(KnowledgeEntry, world["entry"]).body == ORIGINAL
        unchanged = knowledge.upsert_entries(
            session, tenant_id=world["tenant"], entries=[AUSWEIS], embedder=embedder
        )
        assert unchanged.unchanged == 1
        moved = dataclasses.replace(AUSWEIS, url="https://stadt.example/neu")
        knowledge.upsert_entries(
            session,
            tenant_id=world["tenant"],
            entries=[moved],
            embedder=embedder,
            actor="Redaktion",
        )
    with db.session() as session:
        edit, imported, relinked = _versions(session, world["entry"])
        assert (edit.reason, edit.body) == ("bearbeitet", ORIGINAL)
        assert imported.number == 2 and imported.reason == "import"
        assert imported.changed_by == "Import test" and imported.changed_fields == ["body"]
        assert imported.body == EDITED  # the correction the import overwrote is kept
        assert relinked.changed_by == "Import test (Redaktion)"
        assert (
            relinked.changed_fields == ["url"] and relinked.url == "https://stadt.example/ausweis"
        )
        # the other tenant's entry of the same source and id was not touched
        assert _versions(session, world["other_entry"]) == []


def test_restore_brings_the_content_back_reindexed_and_audited(db, world, embedder):
    with db.session() as session:
        _edit(session, world, embedder, body=EDITED, keywords="Perso", is_published=False)
        (first,) = _versions(session, world["entry"])
        changed = editorial.restore_version(
            session,
            tenant_id=world["tenant"],
            entry_id=world["entry"],
            version_id=first.id,
            embedder=embedder,
            user=session.get(User, world["user"]),
        )
        assert changed == ["body", "is_published", "keywords"]
    with db.session() as session:
        entry = session.get(KnowledgeEntry, world["entry"])
        assert entry.body == ORIGINAL and entry.keywords == "Perso, Ausweis"
        assert entry.is_published is True and entry.last_verified_at is None
        first, second = _versions(session, world["entry"])
        assert second.number == 2 and second.reason == "wiederhergestellt"
        assert second.body == EDITED and second.is_published is False  # what it replaced
        texts = " ".join(
            session.scalars(select(KnowledgeChunk.text).where(KnowledgeChunk.entry_id == entry.id))
        )
        assert "biometrisches Passfoto" in texts and "Quittenholz" not in texts
        hits = retrieve.search(
            session, tenant_id=world["tenant"], query="biometrisches Passfoto", embedder=embedder
        )
        assert hits and hits[0].entry_id == entry.id
        assert any("biometrisches Passfoto" in c.text for c in hits[0].chunks)
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "knowledge_entry_restored")
        ).one()
        assert event.actor == "redaktion" and event.tenant_id == world["tenant"]
        assert event.subject == f"knowledge_entry:{entry.id}"
        assert event.data["version"] == 1
        assert event.data["fields"] == ["body", "is_published", "keywords"]

        # restoring the content the entry already has writes nothing
        again = editorial.restore_version(
            session,
            tenant_id=world["tenant"],
            entry_id=world["entry"],
            version_id=first.id,
            embedder=embedder,
            user=session.get(User, world["user"]),
        )
        assert again == [] and len(_versions(session, world["entry"])) == 2


def test_only_the_newest_versions_are_kept(db, world):
    extra = 3
    with db.session() as session:
        for n in range(versions.KEEP_VERSIONS + extra):
            # no embedder: the full-text index alone keeps the loop quick
            _edit(session, world, None, body=f"{ORIGINAL}\n\nStand {n}.")
    with db.session() as session:
        kept = _versions(session, world["entry"])
        assert len(kept) == versions.KEEP_VERSIONS
        assert kept[0].number == extra + 1
        assert kept[-1].number == versions.KEEP_VERSIONS + extra
        assert kept[-1].body == f"{ORIGINAL}\n\nStand {versions.KEEP_VERSIONS + extra - 2}."
        listed = versions.list_versions(session, tenant_id=world["tenant"], entry_id=world["entry"])
        assert [v.number for v in listed] == [v.number for v in reversed(kept)]
        gone = session.scalar(select(func.min(KnowledgeEntryVersion.id))) - 1
        with pytest.raises(NotFoundError):
            versions.get_version(
                session, tenant_id=world["tenant"], entry_id=world["entry"], version_id=gone
            )


def test_versions_of_another_tenant_or_entry_are_not_found(db, world, embedder):
    with db.session() as session:
        _edit(session, world, embedder, body=EDITED)
        (own,) = _versions(session, world["entry"])
        user = session.get(User, world["user"])
        for tenant_id, entry_id in (
            (world["other"], world["entry"]),  # the right ids, asked by another tenant
            (world["other"], world["other_entry"]),  # its own entry, another tenant's version
        ):
            with pytest.raises(NotFoundError):
                versions.get_version(
                    session, tenant_id=tenant_id, entry_id=entry_id, version_id=own.id
                )
            with pytest.raises(NotFoundError):
                editorial.restore_version(
                    session,
                    tenant_id=tenant_id,
                    entry_id=entry_id,
                    version_id=own.id,
                    embedder=embedder,
                    user=user,
                )
        assert (
            versions.list_versions(session, tenant_id=world["other"], entry_id=world["entry"]) == []
        )
    with db.session() as session:
        assert session.get(KnowledgeEntry, world["entry"]).body == EDITED
        assert session.get(KnowledgeEntry, world["other_entry"]).body == ORIGINAL


def test_versions_go_with_their_entry_and_their_tenant(db, world, embedder):
    with db.session() as session:
        _edit(session, world, embedder, body=EDITED)
        editorial.delete_entry(
            session,
            tenant_id=world["tenant"],
            entry_id=world["entry"],
            user=session.get(User, world["user"]),
        )
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(KnowledgeEntryVersion)) == 0
        # A tenant without audit events (the audit chain refuses deletion) can be removed
        # by the database; its versions go with it.
        gamma = Tenant(slug="gamma", name="Stadt Gamma")
        session.add(gamma)
        session.flush()
        for body in (ORIGINAL, EDITED):
            knowledge.upsert_entries(
                session,
                tenant_id=gamma.id,
                entries=[dataclasses.replace(AUSWEIS, body=body)],
                embedder=None,
            )
        assert session.scalar(select(func.count()).select_from(KnowledgeEntryVersion)) == 1
        session.execute(delete(Tenant).where(Tenant.id == gamma.id))
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(KnowledgeEntryVersion)) == 0


def test_backup_and_restore_carry_the_versions(db, world, embedder, tmp_path):
    from rathaus.core.backup import write_archive
    from rathaus.core.db import Database
    from rathaus.core.restore import restore_archive

    with db.session() as session:
        _edit(session, world, embedder, body=EDITED)
    (tmp_path / "daten").mkdir()
    archive = write_archive(db, tmp_path / "daten", tmp_path / "sicherung.tar.gz")
    target = Database(f"sqlite:///{tmp_path / 'ziel' / 'rathaus.db'}")
    try:
        restore_archive(archive.path, target, tmp_path / "ziel")
        with target.session() as session:
            (version,) = _versions(session, world["entry"])
            assert version.body == ORIGINAL and version.tenant_id == world["tenant"]
            assert version.changed_fields == ["body"] and version.reason == "bearbeitet"
    finally:
        target.dispose()


def test_body_diff_marks_lines_and_leaves_out_long_equal_runs():
    old = "\n".join(f"Zeile {n}" for n in range(1, 21))
    new = old.replace("Zeile 10", "Zeile zehn <b>neu</b>")
    diff = versions.body_diff(old, new)
    kinds = [line.kind for line in diff]
    assert kinds[0] == "auslassung" and diff[0].text == "6"
    assert ("alt", "Zeile 10") in [(d.kind, d.text) for d in diff]
    assert ("neu", "Zeile zehn <b>neu</b>") in [(d.kind, d.text) for d in diff]
    assert kinds.count("gleich") == 6 and kinds[-1] == "auslassung" and diff[-1].text == "7"
    assert versions.body_diff(old, old) == []
    assert [(d.kind, d.text) for d in versions.body_diff("", "Neu")] == [("neu", "Neu")]
