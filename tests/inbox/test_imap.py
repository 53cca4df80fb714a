"""IMAP polling against a real Dovecot server (private instance per module, temp mail dir)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.models import Case, CaseStatus, Document, InboxSource, InboxSourceItem
from rathaus.core.storage import OriginalStore
from rathaus.inbox.channels import imap, poll
from rathaus.inbox.channels.poll import SourceSettingsError
from rathaus.inbox.documents import Limits, extract
from tests.factories import build_tenant, free_port
from tests.inbox.dovecot import DOVECOT, MISSING, PASSWORD, Dovecot, running_dovecot

pytestmark = pytest.mark.skipif(DOVECOT is None, reason=MISSING)
ENV = "RATHAUS_IMAP_ALPHA_POSTSTELLE"
# The test's Dovecot listens on the loopback address, which the SSRF guard refuses unless the
# administration allows it (network.allowed_networks): these tests allow it explicitly.
LOCAL = ["127.0.0.1/32", "::1/128"]


# --- the server -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


# --- helpers ----------------------------------------------------------------------------------


def mail(subject: str, body: str = "Bitte um Rückruf.", sender: str = "a@example.org") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "poststelle@alpha.example"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.org>"
    msg.set_content(body)
    return msg.as_bytes().replace(b"\n", b"\r\n")


@dataclass
class Setup:
    db: Database
    store: OriginalStore
    tenant_id: int
    source_id: int
    user: str
    queued: list[list[int]]

    def poll(self, max_bytes: int = 10 * 1024 * 1024) -> poll.PollResult:
        with self.db.session() as session:
            source = session.get(InboxSource, self.source_id)
            assert source is not None
            return poll.poll_source(
                session,
                source,
                store=self.store,
                max_bytes=max_bytes,
                enqueue=self.queued.append,
                allowed_networks=LOCAL,
            )

    def cases(self) -> list[Case]:
        with self.db.session() as session:
            return list(
                session.scalars(
                    select(Case).where(Case.channel == "email").order_by(Case.received_at, Case.id)
                )
            )

    def source(self) -> InboxSource:
        with self.db.session() as session:
            source = session.get(InboxSource, self.source_id)
            assert source is not None
            return source


def make_source(db, dovecot, tmp_path, monkeypatch, **settings) -> Setup:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(ENV, PASSWORD)
    user = dovecot.new_user()
    with db.session() as session:
        world = build_tenant(session, "alpha")
        values = {
            "host": "127.0.0.1",
            "port": dovecot.port,
            "tls": "none",
            "username": user,
            "password_env": ENV,
            **settings,
        }
        source = poll.create_source(
            session,
            tenant=world.tenant,
            kind="imap",
            name="Poststelle",
            settings=values,
            allowed_networks=LOCAL,
        )
        ids = (world.tenant.id, source.id)
    return Setup(db, OriginalStore(tmp_path / "originals"), ids[0], ids[1], user, [])


# --- tests ------------------------------------------------------------------------------------


def test_new_mails_become_cases_exactly_once(db, dovecot, tmp_path, monkeypatch):
    setup = make_source(db, dovecot, tmp_path, monkeypatch)
    raws = [
        mail(
            "=?utf-8?q?Stra=C3=9Fenlaterne_defekt?=",
            sender="=?iso-8859-1?q?J=FCrgen_M=FCller?= <jm@example.org>",
        ),
        mail("Sperrmüll", body="Abholung bitte am Montag."),
        mail("Hundesteuer abmelden"),
    ]
    for raw in raws:
        dovecot.append(setup.user, raw)

    seen_by_enqueue: list[int] = []

    def enqueue(ids: list[int]) -> None:
        # Called only after the commit: a separate connection sees every case.
        with Database(db.url).session() as other:
            seen_by_enqueue.extend(other.scalars(select(Case.id).where(Case.id.in_(ids))))
        setup.queued.append(ids)

    with db.session() as session:
        source = session.get(InboxSource, setup.source_id)
        first = poll.poll_source(
            session,
            source,
            store=setup.store,
            max_bytes=10**7,
            enqueue=enqueue,
            allowed_networks=LOCAL,
        )
    assert first.errors == [] and len(first.new_case_ids) == 3
    assert sorted(seen_by_enqueue) == sorted(first.new_case_ids)

    cases = setup.cases()
    assert [c.subject for c in cases] == [
        "Straßenlaterne defekt",
        "Sperrmüll",
        "Hundesteuer abmelden",
    ]
    assert cases[0].sender_name == "Jürgen Müller"
    assert cases[0].sender_contact == "jm@example.org"
    assert all(c.status == CaseStatus.NEU and c.channel == "email" for c in cases)
    with db.session() as session:
        documents = session.scalars(select(Document).order_by(Document.id)).all()
        assert [d.media_type for d in documents] == ["message/rfc822"] * 3
        assert all(
            d.filename.startswith("mail-") and d.filename.endswith(".eml") for d in documents
        )
        for document, raw in zip(documents, raws, strict=True):
            assert setup.store.get(setup.tenant_id, document.sha256) == raw  # unchanged
        keys = session.scalars(select(InboxSourceItem.item_key)).all()
        assert len(keys) == 3 and all(k.split(":")[1].isdigit() for k in keys)

    again = setup.poll()
    assert again.new_case_ids == [] and again.errors == []
    assert len(setup.cases()) == 3
    assert dovecot.count(setup.user) == 3  # without move_to the mails stay untouched
    assert setup.source().last_error is None and setup.source().last_polled_at is not None


def test_same_bytes_twice_are_one_case(db, dovecot, tmp_path, monkeypatch):
    setup = make_source(db, dovecot, tmp_path, monkeypatch)
    raw = mail("Doppelt gesendet")
    dovecot.append(setup.user, raw)
    dovecot.append(setup.user, raw)
    result = setup.poll()
    assert len(result.new_case_ids) == 1 and result.duplicates == 1
    assert len(setup.cases()) == 1
    with db.session() as session:
        assert session.scalar(select(func.count(InboxSourceItem.id))) == 2


CRASH_SCRIPT = """
import os, sys
from pathlib import Path
from rathaus.core.db import Database
from rathaus.core.models import InboxSource
from rathaus.core.storage import OriginalStore
from rathaus.inbox.channels import imap, poll

def crash(*args, **kwargs):
    os._exit(3)  # the process dies after the commit, before the mail is moved

imap._put_away = crash
db = Database(sys.argv[1])
with db.session() as session:
    source = session.get(InboxSource, int(sys.argv[2]))
    poll.poll_source(session, source, store=OriginalStore(Path(sys.argv[3])),
                     max_bytes=10**7, enqueue=lambda ids: None,
                     allowed_networks=["127.0.0.1/32", "::1/128"])
"""


def test_process_killed_after_commit_does_not_create_a_second_case(
    db, dovecot, tmp_path, monkeypatch
):
    setup = make_source(db, dovecot, tmp_path, monkeypatch, move_to="Erledigt")
    for n in range(3):
        dovecot.append(setup.user, mail(f"Anliegen {n}"))
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, db.url, str(setup.source_id), str(setup.store.root)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, ENV: PASSWORD},
    )
    assert crashed.returncode == 3, crashed.stderr
    assert len(setup.cases()) == 1  # committed before the crash
    assert dovecot.count(setup.user) == 3  # but not moved

    # A fresh process state: new engine, nothing cached from before.
    setup.db = Database(db.url)
    result = setup.poll()
    assert result.errors == []
    assert result.already_taken == 1 and len(result.new_case_ids) == 2
    assert sorted(c.subject for c in setup.cases()) == ["Anliegen 0", "Anliegen 1", "Anliegen 2"]
    assert dovecot.count(setup.user) == 0
    assert dovecot.count(setup.user, "Erledigt") == 3
    assert setup.poll().new_case_ids == []
    setup.db.dispose()


def test_servers_without_move_get_copy_and_delete(db, dovecot, tmp_path, monkeypatch):
    setup = make_source(db, dovecot, tmp_path, monkeypatch, move_to="Eingänge erledigt")
    monkeypatch.setattr(imap, "_capabilities", lambda conn: {"IMAP4REV1", "UIDPLUS"})
    dovecot.append(setup.user, mail("Ohne MOVE"))
    dovecot.append(setup.user, mail("Bleibt liegen"))
    conn = dovecot.client(setup.user)
    conn.select("INBOX")
    conn.store("2", "+FLAGS", r"(\Deleted)")  # someone else's deleted mail, not ours to expunge
    conn.logout()
    monkeypatch.setattr(imap, "MAX_MAILS_PER_POLL", 1)  # take only the first mail now
    result = setup.poll()
    assert result.errors == [] and len(result.new_case_ids) == 1
    assert dovecot.count(setup.user, "Eingänge erledigt") == 1
    assert dovecot.count(setup.user) == 1  # only our copied mail was expunged
    result = setup.poll()
    assert len(result.new_case_ids) == 1 and dovecot.count(setup.user) == 0
    assert [c.subject for c in setup.cases()] == ["Ohne MOVE", "Bleibt liegen"]


def _forty_attachments() -> bytes:
    msg = EmailMessage()
    msg["From"] = "verein@example.org"
    msg["To"] = "poststelle@alpha.example"
    msg["Subject"] = "Antrag mit vielen Anlagen"
    msg.set_content("Anbei alle Unterlagen zum Antrag.")
    for n in range(40):
        msg.add_attachment(
            f"Anlage {n}: Nachweis".encode(),
            maintype="text",
            subtype="plain",
            filename=f"anlage-{n}.txt",
        )
    return msg.as_bytes().replace(b"\n", b"\r\n")


BROKEN = (
    b"From: =?utf-8?q?kaputt <broken@example.org>\r\n"
    b"Subject: =?unknown-8bit?b?////?= Beschwerde \xfc\xe4\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="NIE-DA"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"kaputte Kopfzeile ohne Doppelpunkt\r\n"
    b"\r\n"
    b"--FALSCH\r\nContent-Type: text/plain\r\n\r\nText ohne passende Grenze\r\n"
    b"--NIE-DA\r\nContent-Type: application/pdf; name=a.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n%%%nicht base64%%%\r\n"
)


def test_many_attachments_and_broken_mime_keep_the_original_and_the_batch(
    db, dovecot, tmp_path, monkeypatch
):
    setup = make_source(db, dovecot, tmp_path, monkeypatch)
    raws = [mail("Vorher"), _forty_attachments(), BROKEN, mail("Nachher")]
    for raw in raws:
        dovecot.append(setup.user, raw)
    result = setup.poll()
    assert result.errors == [] and len(result.new_case_ids) == 4
    cases = setup.cases()
    assert [c.subject for c in cases][::3] == ["Vorher", "Nachher"]
    with db.session() as session:
        documents = session.scalars(select(Document).order_by(Document.id)).all()
        stored = [setup.store.get(setup.tenant_id, d.sha256) for d in documents]
    assert stored == raws
    assert hashlib.sha256(stored[2]).hexdigest() == hashlib.sha256(BROKEN).hexdigest()

    assert cases[1].subject == "Antrag mit vielen Anlagen"
    assert "Beschwerde üä" in cases[2].subject and cases[2].sender_contact == "broken@example.org"
    # The stored originals are complete: all 40 attachments are still in there.
    many = extract(stored[1], "mail.eml", "message/rfc822", limits=Limits())
    assert len(many.attachments) == 40 and "40 Anhänge" in " ".join(many.warnings)
    broken = extract(stored[2], "mail.eml", "message/rfc822", limits=Limits())
    assert "nicht standardgerecht" in " ".join(broken.warnings)


def test_wrong_password_gives_german_error_and_other_sources_continue(
    db, dovecot, tmp_path, monkeypatch
):
    setup = make_source(db, dovecot, tmp_path, monkeypatch)
    dovecot.append(setup.user, mail("Geht verloren?"))
    monkeypatch.setenv(ENV, "falsches-passwort")
    good_user = dovecot.new_user()
    dovecot.append(good_user, mail("Kommt an"))
    monkeypatch.setenv("RATHAUS_IMAP_ALPHA_ZWEITE", PASSWORD)
    with db.session() as session:
        tenant = session.get(InboxSource, setup.source_id).tenant_id
        from rathaus.core.models import Tenant

        poll.create_source(
            session,
            tenant=session.get(Tenant, tenant),
            kind="imap",
            name="Zweite",
            settings={
                "host": "localhost",
                "port": dovecot.port,
                "tls": "none",
                "username": good_user,
                "password_env": "RATHAUS_IMAP_ALPHA_ZWEITE",
            },
            allowed_networks=LOCAL,
        )
    settings = load_settings(
        mode="demo", data_dir=tmp_path, database_url=db.url, network={"allowed_networks": LOCAL}
    )
    queued: list[list[int]] = []
    assert poll.poll_due_sources(db, settings, enqueue=queued.append) == 2

    error = setup.source().last_error
    assert error is not None
    assert "Anmeldung am Postfach" in error and "fehlgeschlagen" in error and ENV in error
    assert PASSWORD not in error and "falsches-passwort" not in error
    assert [c.subject for c in setup.cases()] == ["Kommt an"]
    assert len(queued) == 1

    # Fixed: the next poll takes the mail, nothing was lost, the error is gone.
    monkeypatch.setenv(ENV, PASSWORD)
    result = setup.poll()
    assert len(result.new_case_ids) == 1
    assert setup.source().last_error is None
    # Due again only after the interval: an immediate run polls nothing.
    assert poll.poll_due_sources(db, settings, enqueue=queued.append) == 0


def test_connection_problems_are_explained_in_german(db, dovecot, tmp_path, monkeypatch):
    setup = make_source(db, dovecot, tmp_path, monkeypatch)

    def set_settings(**changes):  # type: ignore[no-untyped-def]
        with db.session() as session:
            source = session.get(InboxSource, setup.source_id)
            source.settings = {**source.settings, **changes}

    monkeypatch.delenv(ENV)
    assert "Umgebungsvariable" in setup.poll().errors[0]
    monkeypatch.setenv(ENV, PASSWORD)

    set_settings(port=free_port())
    assert "nicht erreichbar (Verbindung abgelehnt)" in setup.poll().errors[0]

    set_settings(port=dovecot.tls_port, tls="ssl", host="localhost")
    error = setup.poll().errors[0]
    assert "TLS-Zertifikat" in error and "nicht anerkannt" in error and "ca_file" in error

    set_settings(ca_file=str(dovecot.cert))
    dovecot.append(setup.user, mail("Über TLS"))
    assert setup.poll().errors == []

    set_settings(port=dovecot.port, tls="starttls")
    dovecot.append(setup.user, mail("Über STARTTLS"))
    result = setup.poll()
    assert result.errors == [] and len(result.new_case_ids) == 1

    set_settings(mailbox="GibtEsNicht", tls="none")
    assert "Den Ordner „GibtEsNicht“ gibt es" in setup.poll().errors[0]
    assert setup.source().last_error is not None


def test_too_large_mail_is_kept_on_the_server_and_flagged(db, dovecot, tmp_path, monkeypatch):
    setup = make_source(db, dovecot, tmp_path, monkeypatch)
    big = mail("Riesige Anlage", body="x" * 200_000)
    dovecot.append(setup.user, big)
    result = setup.poll(max_bytes=100_000)
    assert result.new_case_ids == [] and len(result.notes) == 1
    (case,) = setup.cases()
    assert case.status == CaseStatus.TRIAGE and case.triaged_at is not None
    assert "größer als erlaubt" in case.needs_review_reason
    assert "Riesige Anlage" in case.needs_review_reason
    assert dovecot.count(setup.user) == 1  # the original stays in the mailbox
    assert setup.poll(max_bytes=100_000).notes == []  # and is not taken twice


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"host": "imap://mail.example.de"}, "ohne imap://"),
        ({"host": "mail.example.de/inbox"}, "kein Servername"),
        ({"host": "169.254.169.254"}, "nicht erlaubt"),
        ({"host": "0.0.0.0"}, "nicht erlaubt"),
        ({"port": 70000}, "1 bis 65535"),
        ({"tls": "aus"}, "erlaubt sind ssl"),
        ({"tls": "none", "host": "mail.example.de"}, "lesbar übertragen"),
        ({"password_env": "RATHAUS_SECRET_KEY"}, "RATHAUS_IMAP_ALPHA_"),
        ({"password_env": "RATHAUS_IMAP_BETA_POST"}, "RATHAUS_IMAP_ALPHA_"),
        ({"password": "geheim"}, "nicht in der Datenbank"),
        ({"move_to": "INBOX"}, "anderer Ordner"),
    ],
)
def test_settings_are_checked_before_saving(changes, expected):
    settings = {
        "host": "mail.example.de",
        "port": 993,
        "tls": "ssl",
        "username": "poststelle",
        "password_env": "RATHAUS_IMAP_ALPHA_POST",
        **changes,
    }
    with pytest.raises(SourceSettingsError) as caught:
        imap.check_settings(settings, tenant_slug="alpha")
    assert expected in caught.value.message
    assert caught.value.exit_code == 2


def test_plaintext_allowed_only_locally_or_explicitly():
    base = {"username": "p", "password_env": "RATHAUS_IMAP_ALPHA_P", "tls": "none"}
    assert imap.check_settings({**base, "host": "localhost"}, tenant_slug="alpha")["port"] == 143
    checked = imap.check_settings(
        {**base, "host": "10.0.0.5", "allow_plaintext": True},
        tenant_slug="alpha",
        allowed_networks=["10.0.0.0/8"],
    )
    assert checked["allow_plaintext"] is True and checked["host"] == "10.0.0.5"


def test_folder_names_are_sent_in_modified_utf7():
    assert imap._quote("Erledigt") == '"Erledigt"'
    assert imap._quote("Eingänge") == '"Eing&AOQ-nge"'
    assert imap._quote("A&B") == '"A&-B"'


def test_cli_sets_up_lists_and_polls_a_mailbox(db, dovecot, tmp_path, monkeypatch):
    import typer

    from rathaus import jobs
    from rathaus.cli import inbox_io
    from tests.test_cli import in_process

    with db.session() as session:
        build_tenant(session, "alpha")
    user = dovecot.new_user()
    dovecot.append(user, mail("Per Kommandozeile"))
    app = typer.Typer()
    inbox_io.register(app)
    cli = in_process(
        tmp_path,
        db,
        app=app,
        queue="sqlite",
        RATHAUS_IMAP_ALPHA_POSTSTELLE=PASSWORD,
        RATHAUS_NETWORK__ALLOWED_NETWORKS='["127.0.0.1/32"]',
    )
    args = ["quelle-imap", "Poststelle", "--host", "127.0.0.1", "--port", str(dovecot.port)]
    args += ["--tls", "none", "--benutzer", user, "--verschieben-nach", "Erledigt"]
    created = cli(*args)
    assert created.exit_code == 0, created.output
    assert "RATHAUS_IMAP_ALPHA_POSTSTELLE" in created.output
    try:
        fetched = cli("abrufen")
    finally:
        jobs.reset()
    assert fetched.exit_code == 0, fetched.output
    assert "Poststelle: 1 neu" in fetched.output
    listed = cli("quellen-liste")
    assert "Poststelle" in listed.output and "IMAP-Postfach" in listed.output
    assert dovecot.count(user, "Erledigt") == 1

    bad = cli("quelle-imap", "X", "--host", "imap://x", "--benutzer", "u")
    assert isinstance(bad.exception, SourceSettingsError) and bad.exception.exit_code == 2
    removed = cli("quelle-entfernen", "Poststelle")
    assert removed.exit_code == 0
    assert "Keine Eingangsquellen" in cli("quellen-liste").output
