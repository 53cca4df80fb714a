"""Watched folders: every finished file becomes one case, exactly once, and is moved away."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from rathaus import jobs
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.models import Case, CaseStatus, Document, InboxSource, Tenant
from rathaus.core.storage import OriginalStore
from rathaus.inbox.channels import folder, poll
from rathaus.inbox.channels.poll import SourceSettingsError
from tests.factories import build_tenant
from tests.test_lazy_imports import loaded_after

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def write(path: Path, data: bytes, *, age_s: float = 10.0) -> Path:
    path.write_bytes(data)
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path


@dataclass
class Setup:
    db: Database
    store: OriginalStore
    inbox: Path
    tenant_id: int
    source_id: int
    roots: folder.FolderRoots

    def poll(self, max_bytes: int = 10 * 1024 * 1024) -> poll.PollResult:
        with self.db.session() as session:
            source = session.get(InboxSource, self.source_id)
            assert source is not None
            return poll.poll_source(
                session,
                source,
                store=self.store,
                max_bytes=max_bytes,
                enqueue=lambda ids: None,
                folder_roots=self.roots,
            )

    def cases(self) -> list[Case]:
        with self.db.session() as session:
            return list(
                session.scalars(select(Case).where(Case.channel == "ordner").order_by(Case.id))
            )

    def source(self) -> InboxSource:
        with self.db.session() as session:
            source = session.get(InboxSource, self.source_id)
            assert source is not None
            return source


@pytest.fixture
def setup(db: Database, tmp_path: Path) -> Setup:
    # The root allowed for folder sources is tmp_path/wurzel; alpha may watch below .../alpha.
    roots = folder.FolderRoots(roots=(tmp_path / "wurzel",))
    inbox = tmp_path / "wurzel" / "alpha" / "scanner"
    inbox.mkdir(parents=True)
    with db.session() as session:
        world = build_tenant(session, "alpha")
        source = poll.create_source(
            session,
            tenant=world.tenant,
            kind="folder",
            name="Scanner",
            settings={"path": str(inbox)},
            folder_roots=roots,
        )
        ids = (world.tenant.id, source.id)
    return Setup(db, OriginalStore(tmp_path / "originals"), inbox, *ids, roots)


def test_files_become_cases_once_and_are_moved(setup: Setup):
    write(setup.inbox / "brief.pdf", PDF)
    write(setup.inbox / "notiz.txt", "Bitte Sperrmüll abholen.".encode())
    first = setup.poll()
    assert first.errors == [] and len(first.new_case_ids) == 2
    cases = setup.cases()
    assert [c.subject for c in cases] == ["brief.pdf", "notiz.txt"]
    assert all(c.status == CaseStatus.NEU for c in cases)
    with setup.db.session() as session:
        documents = session.scalars(select(Document).order_by(Document.id)).all()
        assert [d.media_type for d in documents] == ["application/pdf", "text/plain"]
        assert setup.store.get(setup.tenant_id, documents[0].sha256) == PDF
    done = setup.inbox / "erledigt"
    assert sorted(p.name for p in done.iterdir()) == ["brief.pdf", "notiz.txt"]
    assert [p.name for p in setup.inbox.iterdir()] == ["erledigt"]

    assert setup.poll().new_case_ids == []
    # The same file dropped again: no second case, moved beside the first under a free name.
    write(setup.inbox / "brief.pdf", PDF)
    again = setup.poll()
    assert again.new_case_ids == [] and again.already_taken + again.duplicates == 1
    assert (done / "brief (2).pdf").read_bytes() == PDF
    assert len(setup.cases()) == 2
    assert setup.source().last_error is None


def test_partial_hidden_and_fresh_files_wait(setup: Setup):
    write(setup.inbox / ".versteckt", b"x")
    write(setup.inbox / "~$brief.docx", b"lock")
    write(setup.inbox / "scan.pdf.part", PDF)
    write(setup.inbox / "upload.TMP", PDF)
    (setup.inbox / "unterordner").mkdir()
    write(setup.inbox / "unterordner" / "tief.txt", b"nicht hier")
    write(setup.inbox / "frisch.txt", b"wird noch geschrieben", age_s=0)
    result = setup.poll()
    assert result.new_case_ids == [] and result.skipped == 1 and result.errors == []
    assert (setup.inbox / "frisch.txt").exists()

    os.utime(setup.inbox / "frisch.txt", (time.time() - 5, time.time() - 5))
    (setup.inbox / "scan.pdf.part").rename(setup.inbox / "scan.pdf")
    result = setup.poll()
    assert len(result.new_case_ids) == 2
    assert sorted(c.subject for c in setup.cases()) == ["frisch.txt", "scan.pdf"]
    assert (setup.inbox / ".versteckt").exists() and (setup.inbox / "upload.TMP").exists()


def test_failed_move_never_creates_a_second_case(setup: Setup):
    blocker = setup.inbox.parent / "blockiert"
    blocker.write_bytes(b"")  # a file where the done folder should be: every move fails
    with setup.db.session() as session:
        source = session.get(InboxSource, setup.source_id)
        source.settings = {**source.settings, "done_dir": str(blocker)}
    write(setup.inbox / "antrag.txt", b"Antrag auf Sondernutzung")

    first = setup.poll()
    assert len(first.new_case_ids) == 1
    error = setup.source().last_error
    assert error is not None and "konnte aber nicht nach" in error and "kein zweites Mal" in error
    second = setup.poll()
    assert second.new_case_ids == [] and second.already_taken == 1
    assert len(setup.cases()) == 1 and (setup.inbox / "antrag.txt").exists()

    with setup.db.session() as session:
        source = session.get(InboxSource, setup.source_id)
        settings = dict(source.settings)
        settings.pop("done_dir")
        source.settings = settings
    third = setup.poll()
    assert third.new_case_ids == [] and third.errors == []
    assert [p.name for p in (setup.inbox / "erledigt").iterdir()] == ["antrag.txt"]
    assert len(setup.cases()) == 1
    assert setup.source().last_error is None


CRASH_SCRIPT = """
import os, sys
from pathlib import Path
from rathaus.core.db import Database
from rathaus.core.models import InboxSource
from rathaus.core.storage import OriginalStore
from rathaus.inbox.channels import folder, poll

def crash(*args, **kwargs):
    os._exit(3)  # dies after the commit, before the file is moved

folder._move = crash
db = Database(sys.argv[1])
with db.session() as session:
    source = session.get(InboxSource, int(sys.argv[2]))
    poll.poll_source(session, source, store=OriginalStore(Path(sys.argv[3])),
                     max_bytes=10**7, enqueue=lambda ids: None,
                     folder_roots=folder.FolderRoots(roots=(Path(sys.argv[4]),)))
"""


def test_process_killed_before_the_move_does_not_duplicate(setup: Setup):
    write(setup.inbox / "a.txt", b"Erster Antrag")
    write(setup.inbox / "b.txt", b"Zweiter Antrag")
    crashed = subprocess.run(
        [
            sys.executable,
            "-c",
            CRASH_SCRIPT,
            setup.db.url,
            str(setup.source_id),
            str(setup.store.root),
            str(setup.roots.roots[0]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == 3, crashed.stderr
    assert len(setup.cases()) == 1 and (setup.inbox / "a.txt").exists()

    setup.db = Database(setup.db.url)  # a fresh process state
    result = setup.poll()
    assert result.already_taken == 1 and len(result.new_case_ids) == 1
    assert sorted(c.subject for c in setup.cases()) == ["a.txt", "b.txt"]
    assert sorted(p.name for p in (setup.inbox / "erledigt").iterdir()) == ["a.txt", "b.txt"]
    setup.db.dispose()


def test_symlinks_are_refused(setup: Setup, tmp_path: Path):
    secret = tmp_path / "geheim" / "passwoerter.txt"
    secret.parent.mkdir()
    secret.write_bytes(b"root:geheim")
    (setup.inbox / "harmlos.txt").symlink_to(secret)
    write(setup.inbox / "echt.txt", b"Ein echter Brief")
    (setup.inbox / "intern.txt").symlink_to(setup.inbox / "echt.txt")
    result = setup.poll()
    assert len(result.new_case_ids) == 1
    assert [c.subject for c in setup.cases()] == ["echt.txt"]
    messages = " ".join(result.errors)
    assert "„harmlos.txt“ ist eine Verknüpfung (Symlink) aus dem Ordner hinaus" in messages
    assert "„intern.txt“ ist eine Verknüpfung" in messages
    with setup.db.session() as session:
        hashes = set(session.scalars(select(Document.sha256)))
    assert hashlib.sha256(b"root:geheim").hexdigest() not in hashes
    assert (setup.inbox / "harmlos.txt").is_symlink()  # left alone for a person to remove


def test_file_swapped_for_a_link_after_listing_is_not_opened(tmp_path: Path):
    real = write(tmp_path / "a.txt", b"a")
    listed = os.lstat(real)
    other = write(tmp_path / "b.txt", b"b")
    assert folder._open_listed(str(other), listed) is None  # another file than the listed one
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    assert folder._open_listed(str(link), listed) is None  # O_NOFOLLOW
    fd = folder._open_listed(str(real), listed)
    assert fd is not None
    os.close(fd)


def test_watched_folder_turned_into_a_link_is_refused(setup: Setup, tmp_path: Path):
    elsewhere = tmp_path / "anderswo"
    elsewhere.mkdir()
    write(elsewhere / "fremd.txt", b"fremd")
    setup.inbox.rename(tmp_path / "alt")
    setup.inbox.symlink_to(elsewhere)
    result = setup.poll()
    assert result.new_case_ids == [] and "Verknüpfung" in result.errors[0]
    assert (elsewhere / "fremd.txt").exists()


def test_big_file_is_kept_unread_with_a_german_reason(setup: Setup):
    big = os.urandom(5000)
    write(setup.inbox / "riesig.tif", big)
    result = setup.poll(max_bytes=1000)
    assert result.new_case_ids == [] and result.errors == [] and len(result.notes) == 1
    (case,) = setup.cases()
    assert case.status == CaseStatus.TRIAGE and case.triaged_at is not None
    reason = case.needs_review_reason
    assert "„riesig.tif“" in reason and "größer als erlaubt" in reason
    kept = setup.inbox / "zu-gross" / "riesig.tif"
    assert str(kept) in reason and kept.read_bytes() == big
    assert setup.poll(max_bytes=1000).notes == []
    assert len(setup.cases()) == 1


def test_settings_are_checked(db: Database, tmp_path: Path):
    roots = folder.FolderRoots(roots=(tmp_path,))
    area = tmp_path / "alpha"
    inbox = area / "eingang"
    inbox.mkdir(parents=True)

    def check(settings: dict) -> dict:
        return folder.check_settings(settings, roots=roots, tenant_slug="alpha")

    with pytest.raises(SourceSettingsError, match="absoluter Pfad"):
        check({"path": "relativ/eingang"})
    with pytest.raises(SourceSettingsError, match="gibt es nicht"):
        check({"path": str(area / "fehlt")})
    with pytest.raises(SourceSettingsError, match="nicht der beobachtete Ordner selbst"):
        check({"path": str(inbox), "done_dir": "."})
    with pytest.raises(SourceSettingsError, match="nicht der beobachtete Ordner selbst"):
        check({"path": str(inbox), "done_dir": str(area)})
    checked = check({"path": str(inbox) + "/"})
    assert checked["done_dir"] == str(inbox / "erledigt")
    with db.session() as session:
        a = build_tenant(session, "alpha").tenant
        b = build_tenant(session, "beta").tenant
        poll.create_source(
            session,
            tenant=a,
            kind="folder",
            name="Scan",
            settings={"path": str(inbox)},
            folder_roots=roots,
        )
        with pytest.raises(SourceSettingsError, match="nicht in einem für die Kommune beta"):
            poll.create_source(
                session,
                tenant=b,
                kind="folder",
                name="Scan",
                settings={"path": str(inbox)},
                folder_roots=roots,
            )
        with pytest.raises(SourceSettingsError, match="gibt es in der Kommune alpha schon"):
            poll.create_source(
                session,
                tenant=a,
                kind="folder",
                name="Scan",
                settings={"path": str(area)},
                folder_roots=roots,
            )


def test_periodic_job_polls_due_sources_and_queues_triage(setup: Setup, tmp_path: Path):
    assert "rathaus.inbox.channels.poll" in jobs.JOB_MODULES
    assert "rathaus.inbox.channels.poll.poll_sources_job" in jobs.registered_jobs()
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path / "data",
        database_url=setup.db.url,
        queue={"backend": "sqlite"},
        inbox={"poll_interval_s": 300, "folder_roots": [str(setup.roots.roots[0])]},
    )
    huey = jobs.get_huey(settings)
    try:
        write(setup.inbox / "brief.txt", b"Bitte um Termin.")
        assert poll.poll_sources_job() == 1
        assert huey.pending_count() == 1  # triage queued after the commit
        (case,) = setup.cases()
        assert case.subject == "brief.txt"
        write(setup.inbox / "zweiter.txt", b"Noch ein Brief.")
        assert poll.poll_sources_job() == 0  # not due again within poll_interval_s
        with setup.db.session() as session:
            source = session.get(InboxSource, setup.source_id)
            source.last_polled_at = source.last_polled_at.replace(year=2000)
        assert poll.poll_sources_job() == 1
        assert len(setup.cases()) == 2
    finally:
        jobs.reset()


def test_inactive_tenant_and_source_are_not_polled(setup: Setup, tmp_path: Path):
    settings = load_settings(mode="demo", data_dir=tmp_path / "data", database_url=setup.db.url)
    write(setup.inbox / "brief.txt", b"Bitte um Termin.")
    with setup.db.session() as session:
        session.get(InboxSource, setup.source_id).is_active = False
    assert poll.poll_due_sources(setup.db, settings, enqueue=lambda ids: None) == 0
    with setup.db.session() as session:
        session.get(InboxSource, setup.source_id).is_active = True
        session.get(Tenant, setup.tenant_id).is_active = False
    assert poll.poll_due_sources(setup.db, settings, enqueue=lambda ids: None) == 0
    assert setup.cases() == []


def test_job_module_loads_no_model_library():
    assert loaded_after("import rathaus.inbox.channels.poll") == []


def test_cli_folder_source(setup: Setup, tmp_path: Path):
    import typer

    from rathaus.cli import inbox_io
    from tests.test_cli import in_process

    app = typer.Typer()
    inbox_io.register(app)
    roots = json.dumps([str(setup.roots.roots[0])])
    cli = in_process(tmp_path, setup.db, app=app, queue="sqlite", RATHAUS_INBOX__FOLDER_ROOTS=roots)
    second = setup.inbox.parent / "post"
    second.mkdir()
    created = cli("quelle-ordner", "Post", "--pfad", str(second))
    assert created.exit_code == 0, created.output
    write(second / "brief.txt", b"Hallo Rathaus")
    try:
        fetched = cli("abrufen", "--quelle", "Post")
    finally:
        jobs.reset()
    assert fetched.exit_code == 0, fetched.output
    assert "Post: 1 neu" in fetched.output
    listed = cli("quellen-liste").output
    assert "Post" in listed and "Scanner" in listed and "Ordner" in listed
    bad = cli("quelle-ordner", "X", "--pfad", "relativ")
    assert isinstance(bad.exception, SourceSettingsError) and bad.exception.exit_code == 2
    assert cli("quelle-entfernen", "Post").exit_code == 0
    gone = cli("quelle-entfernen", "Post")
    assert "gibt es in der Kommune alpha nicht" in str(gone.exception)
