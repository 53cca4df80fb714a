"""The bad input of issue 3 through the real entry points: an e-mail with 40 attachments,
nested e-mails, a ZIP bomb as DOCX and as XLSX, a PDF over the page limit. Each becomes a
case flagged for manual review with its reason (the original kept, byte for byte) or is
refused with a German message; the rest of the upload is not lost."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rathaus.core import apikeys
from rathaus.core.models import Case, Document, InsightDataset
from rathaus.core.storage import OriginalStore
from rathaus.core.zipguard import MB, ZipBounds, bomb_reason
from tests.inbox.test_documents import docx, mail, text_pdf
from tests.web.conftest import csrf_of, demo_app, login


@pytest.fixture
def app(db, tmp_path):  # type: ignore[no-untyped-def]
    return demo_app(
        db,
        tmp_path,
        inbox={"max_pdf_pages": 2, "max_attachments": 20},
    )


@pytest.fixture
def key(db, worlds):  # type: ignore[no-untyped-def]
    with db.session() as session:
        created, _ = apikeys.create(session, tenant=worlds["a"].tenant, channel="api", name="Scan")
    return created


def _send(client: TestClient, key: str, files: list[tuple[str, bytes, str]]) -> list[dict]:
    response = client.post(
        "/api/v1/inbox/items",
        headers={"X-API-Key": key},
        files=[("files", f) for f in files],
    )
    assert response.status_code == 201, response.text
    return response.json()


def _case(db, case_id: int) -> tuple[str, list[tuple[str, str, str]]]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        case = session.get(Case, case_id)
        documents = [
            (d.sha256, d.extraction_status, d.extraction_error or "") for d in case.documents
        ]
        return case.needs_review_reason or "", documents


def _kept(app, db, case_id: int, original: bytes) -> None:  # type: ignore[no-untyped-def]
    """The stored original is the sent file, byte for byte."""
    store = OriginalStore(app.state.settings.originals_dir)
    with db.session() as session:
        case = session.get(Case, case_id)
        (document,) = case.documents
        assert document.sha256 == hashlib.sha256(original).hexdigest()
        assert store.get(case.tenant_id, document.sha256) == original


def bomb_xlsx() -> bytes:
    """A valid workbook with one extra member of 4 MB zeros (compressed about 1000-fold)."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["Datum", "Betrag", "Empfänger"])
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/bombe.bin", b"\x00" * (4 * MB))
    return buffer.getvalue()


def test_an_email_with_forty_attachments_is_flagged_and_kept(app, client, key, db):
    files = [(f"foto-{i:02d}.txt", "text/plain", f"Anhang {i}".encode()) for i in range(40)]
    eml = mail(files)
    (receipt,) = _send(client, key, [("viele.eml", eml, "message/rfc822")])
    reason, [(_, status, note)] = _case(db, receipt["case_id"])
    assert status == "fehler"
    assert "viele.eml: foto-20.txt: Anhang nicht ausgewertet (mehr als 20 Anhänge)" in reason
    assert "(und 19 weitere Hinweise)" in reason
    assert "Die E-Mail hat 40 Anhänge; ausgewertet wurden die ersten 20" in note
    assert "foto-39.txt" in note  # every attachment beyond the limit is listed
    _kept(app, db, receipt["case_id"], eml)


def test_too_deeply_nested_emails_are_flagged(app, client, key, db):
    inner = mail([("innen.txt", "text/plain", b"ganz innen")])
    for _ in range(4):
        inner = mail([("weitergeleitet.eml", "message/rfc822", inner)])
    (receipt,) = _send(client, key, [("kette.eml", inner, "message/rfc822")])
    reason, _ = _case(db, receipt["case_id"])
    assert "zu tief verschachtelte weitergeleitete E-Mails" in reason
    _kept(app, db, receipt["case_id"], inner)


def test_a_docx_zip_bomb_is_flagged_the_rest_of_the_upload_is_not_lost(app, client, key, db):
    bomb = docx(["Hallo"], {"word/media/bombe.bin": b"\x00" * (4 * MB)})
    letter = "Antrag auf Sondernutzung des Gehwegs vor der Bäckerei Schmidt.".encode()
    receipts = _send(
        client,
        key,
        [
            ("bombe.docx", bomb, "application/octet-stream"),
            ("antrag.txt", letter, "text/plain"),
        ],
    )
    assert [r["error"] for r in receipts] == [None, None]
    reason, [(_, status, note)] = _case(db, receipts[0]["case_id"])
    assert (
        status == "fehler" and "mögliche ZIP-Bombe" in reason and "Original ist gespeichert" in note
    )
    _kept(app, db, receipts[0]["case_id"], bomb)
    other_reason, [(_, other_status, _)] = _case(db, receipts[1]["case_id"])
    assert other_status == "ok" and "ZIP" not in other_reason


def test_a_pdf_over_the_page_limit_is_read_in_part_and_flagged(app, client, key, db):
    pdf = text_pdf(pages=4)
    (receipt,) = _send(client, key, [("lang.pdf", pdf, "application/pdf")])
    reason, [(_, status, note)] = _case(db, receipt["case_id"])
    assert "lang.pdf: nur die ersten 2 von 4 Seiten gelesen – bitte den Rest im Original" in reason
    assert "Die PDF-Datei hat 4 Seiten; gelesen wurden nur die ersten 2" in note
    assert status == "ok"  # what was read is good; the flag says what was not
    _kept(app, db, receipt["case_id"], pdf)


@pytest.mark.parametrize("path", ["/lagebild/buchungen/import", "/lagebild/prognose/import"])
def test_an_xlsx_zip_bomb_is_refused_before_unpacking(client, worlds, db, path):  # type: ignore[no-untyped-def]
    login(client, "leitung")
    response = client.post(
        path,
        data={"csrf_token": csrf_of(client)},
        files={"datei": ("liste.xlsx", bomb_xlsx(), "application/octet-stream")},
    )
    assert response.status_code == 422, response.text[:500]
    assert "Die Excel-Datei wurde nicht geöffnet" in response.text
    assert "mögliche ZIP-Bombe" in response.text and "als CSV speichern" in response.text
    with db.session() as session:
        assert session.scalar(select(func.count(InsightDataset.id))) == 0
        assert session.scalar(select(func.count(Document.id))) == 0


def test_zip_bounds_name_each_reason():
    def archive(members: dict[str, bytes]) -> zipfile.ZipFile:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in members.items():
                z.writestr(name, data)
        return zipfile.ZipFile(buffer)

    bounds = ZipBounds(max_members=3, max_unzipped_bytes=2 * MB, max_ratio=100)
    assert bomb_reason(archive({"a": b"x", "b": b"y"}), bounds) is None
    assert "mehr als 3 Bestandteile" in (
        bomb_reason(archive({str(i): b"" for i in range(4)}), bounds) or ""
    )
    assert "entpackt mehr als 2 MB" in (bomb_reason(archive({"a": b"\0" * (3 * MB)}), bounds) or "")
    loose = ZipBounds(max_unzipped_bytes=10 * MB)
    assert "100-fach verdichtet" in (bomb_reason(archive({"a": b"\0" * (2 * MB)}), loose) or "")
    import os

    noise = os.urandom(2 * MB)  # incompressible: no ratio problem
    assert bomb_reason(archive({"a": noise}), loose) is None
