"""Folder sources only inside the root folders the installation allows (ASVS 12.3): per
municipality below ``<root>/<slug>``, resolved through links and ``..``, checked when a source
is created and again at every poll; never the data or model folders."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from rathaus.core.config import load_settings
from rathaus.core.errors import ConfigError
from rathaus.core.models import Case, InboxSource
from rathaus.core.storage import OriginalStore
from rathaus.inbox.channels import poll
from rathaus.inbox.channels.folder import FolderRoots
from rathaus.inbox.channels.poll import SourceSettingsError
from tests.factories import build_tenant
from tests.web.conftest import csrf_of, login


def _letter(folder: Path, name: str = "brief.txt") -> Path:
    path = folder / name
    path.write_text("Bitte die Laterne reparieren.", "utf-8")
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def _create(session, tenant, path, roots, **extra):  # type: ignore[no-untyped-def]
    return poll.create_source(
        session,
        tenant=tenant,
        kind="folder",
        name=extra.pop("name", "Scanner"),
        settings={"path": str(path), **extra},
        folder_roots=roots,
    )


@pytest.fixture
def tenants(db):  # type: ignore[no-untyped-def]
    with db.session() as session:
        return {
            "a": build_tenant(session, "alpha").tenant,
            "b": build_tenant(session, "beta").tenant,
        }


def test_server_paths_outside_the_roots_are_refused_without_revealing_them(db, tenants, tmp_path):  # type: ignore[no-untyped-def]
    roots = FolderRoots(roots=(tmp_path / "wurzel",))
    (tmp_path / "wurzel" / "alpha").mkdir(parents=True)
    with db.session() as session:
        for path in ("/etc", "/", str(tmp_path), str(tmp_path / "gibt-es-nicht")):
            with pytest.raises(SourceSettingsError) as refused:
                _create(session, tenants["a"], path, roots)
            message = refused.value.message
            assert "nicht in einem für die Kommune alpha freigegebenen Ordner" in message
            assert str(tmp_path / "wurzel" / "alpha") in message
            assert "inbox.folder_roots" in message
            assert "gibt es nicht" not in message  # no oracle for which server paths exist
        assert session.scalars(select(InboxSource)).all() == []


def test_links_and_dotdot_out_of_the_area_are_refused(db, tenants, tmp_path):  # type: ignore[no-untyped-def]
    roots = FolderRoots(roots=(tmp_path / "wurzel",))
    area = tmp_path / "wurzel" / "alpha"
    (area / "scanner").mkdir(parents=True)
    (tmp_path / "wurzel" / "beta" / "scanner").mkdir(parents=True)
    (area / "link-nach-etc").symlink_to("/etc")
    with db.session() as session:
        for path in (area / "link-nach-etc", f"{area}/../beta/scanner", f"{area}/scanner/../.."):
            with pytest.raises(SourceSettingsError, match="nicht in einem für die Kommune alpha"):
                _create(session, tenants["a"], path, roots)
        # The done folder and the folder for big files are held to the same area.
        for key in ("done_dir", "oversize_dir"):
            with pytest.raises(SourceSettingsError, match="nicht in einem für die Kommune alpha"):
                _create(session, tenants["a"], area / "scanner", roots, **{key: "/tmp"})
            with pytest.raises(SourceSettingsError, match="nicht in einem für die Kommune alpha"):
                _create(session, tenants["a"], area / "scanner", roots, **{key: "../../beta"})
        ok = _create(session, tenants["a"], f"{area}/scanner/../scanner", roots)
        assert ok.settings["path"] == str((area / "scanner").resolve())


def test_one_municipality_never_watches_anothers_folder(db, tenants, tmp_path):  # type: ignore[no-untyped-def]
    roots = FolderRoots(roots=(tmp_path / "wurzel",))
    beta_scanner = tmp_path / "wurzel" / "beta" / "scanner"
    beta_scanner.mkdir(parents=True)
    (tmp_path / "wurzel" / "alpha").mkdir(parents=True)
    with db.session() as session:
        _create(session, tenants["b"], beta_scanner, roots)
        with pytest.raises(SourceSettingsError, match="nicht in einem für die Kommune alpha"):
            _create(session, tenants["a"], beta_scanner, roots)
    # Roots that an administrator nested through a link: the areas would overlap, the check of
    # the other sources' folders still keeps the municipalities apart.
    (tmp_path / "wurzel" / "beta" / "scanner" / "alpha").mkdir()
    nested = FolderRoots(roots=(tmp_path / "wurzel", tmp_path / "zweite"))
    (tmp_path / "zweite").symlink_to(beta_scanner)
    with db.session() as session, pytest.raises(SourceSettingsError, match="überschneidet sich"):
        _create(session, tenants["a"], tmp_path / "zweite" / "alpha", nested)


def test_data_and_model_folders_are_never_allowed(db, tenants, tmp_path):  # type: ignore[no-untyped-def]
    data = tmp_path / "alpha"  # an unlucky root: <root>/<slug> is the data directory itself
    (data / "originals" / "alpha").mkdir(parents=True)
    (data / "eingang" / "alpha").mkdir(parents=True)
    models = tmp_path / "modelle" / "alpha"
    models.mkdir(parents=True)
    roots = FolderRoots(roots=(tmp_path, tmp_path / "modelle"), data_dir=data, models_dir=models)
    with db.session() as session:
        for path, reason in (
            (data, "Datenverzeichnis"),
            (data / "originals" / "alpha", "Datenverzeichnis"),
            (models, "Modellordner"),
        ):
            with pytest.raises(SourceSettingsError, match=reason):
                _create(session, tenants["a"], path, roots)
        # Inside the data directory only its folder "eingang" may hold watched folders.
        assert _create(session, tenants["a"], data / "eingang" / "alpha", roots)


def test_roots_come_from_the_settings_and_none_in_production(tmp_path):  # type: ignore[no-untyped-def]
    production = load_settings(mode="production", secret_key="p" * 48, data_dir=tmp_path)
    assert FolderRoots.from_settings(production).roots == ()
    with pytest.raises(SourceSettingsError, match="nicht freigegeben.*inbox.folder_roots"):
        FolderRoots.from_settings(production).check(tmp_path, "alpha", "Ordner", str(tmp_path))
    demo = FolderRoots.from_settings(load_settings(mode="demo", data_dir=tmp_path))
    assert demo.areas("alpha", create=True) == [(tmp_path / "eingang" / "alpha").resolve()]
    assert (tmp_path / "eingang" / "alpha").is_dir()  # the demo area is made on demand
    configured = load_settings(
        mode="demo", data_dir=tmp_path, inbox={"folder_roots": ["/srv/rathaus/eingang/"]}
    )
    assert FolderRoots.from_settings(configured).roots == (Path("/srv/rathaus/eingang"),)
    with pytest.raises(ConfigError, match="INBOX__FOLDER_ROOTS.*kein absoluter Ordner"):
        load_settings(mode="demo", inbox={"folder_roots": ["relativ/eingang"]})
    with pytest.raises(ConfigError, match="nicht ineinander liegen"):
        load_settings(mode="demo", inbox={"folder_roots": ["/srv/a", "/srv/a/b"]})


def test_every_poll_checks_again_links_swapped_in_and_roots_withdrawn(db, tenants, tmp_path):  # type: ignore[no-untyped-def]
    roots = FolderRoots(roots=(tmp_path / "wurzel",))
    area = tmp_path / "wurzel" / "alpha"
    scanner = area / "scanner"
    scanner.mkdir(parents=True)
    store = OriginalStore(tmp_path / "originals")
    with db.session() as session:
        source_id = _create(session, tenants["a"], scanner, roots).id

    def run(with_roots: FolderRoots | None) -> poll.PollResult:
        with db.session() as session:
            source = session.get(InboxSource, source_id)
            return poll.poll_source(
                session,
                source,
                store=store,
                max_bytes=10**6,
                enqueue=lambda ids: None,
                folder_roots=with_roots,
            )

    # The municipality's area is swapped for a link to a folder of the server.
    secret = tmp_path / "server" / "scanner"
    secret.mkdir(parents=True)
    kept = _letter(secret, "geheim.txt")
    area.rename(tmp_path / "wurzel" / "alpha-alt")
    area.symlink_to(tmp_path / "server")
    swapped = run(roots)
    assert swapped.new_case_ids == [] and "Verknüpfung" in swapped.errors[0]
    assert kept.exists()
    area.unlink()
    (tmp_path / "wurzel" / "alpha-alt").rename(area)

    # The administration withdraws the root: the source stops with a German reason.
    letter = _letter(scanner)
    for withdrawn in (None, FolderRoots(roots=(tmp_path / "anderswo",))):
        refused = run(withdrawn)
        assert refused.new_case_ids == [] and letter.exists()
        assert "inbox.folder_roots" in refused.errors[0]
    with db.session() as session:
        assert "inbox.folder_roots" in session.get(InboxSource, source_id).last_error
        assert session.scalars(select(Case).where(Case.channel == "ordner")).all() == []
    assert len(run(roots).new_case_ids) == 1 and not letter.exists()


def test_the_sources_page_refuses_a_server_path_in_german(client, worlds, db, tmp_path):  # type: ignore[no-untyped-def]
    login(client, "admin")
    page = client.get("/posteingang/quellen")
    area = tmp_path / "eingang" / "alpha"  # demo mode: data_dir/eingang/<Kommune>
    assert str(area) in page.text and area.is_dir()
    answer = client.post(
        "/posteingang/quellen/ordner",
        data={"csrf_token": csrf_of(client), "name": "Server", "pfad": "/etc"},
    )
    assert answer.status_code == 422 and 'role="alert"' in answer.text
    assert "nicht in einem für die Kommune alpha freigegebenen Ordner" in answer.text
    with db.session() as session:
        assert session.scalars(select(InboxSource)).all() == []
