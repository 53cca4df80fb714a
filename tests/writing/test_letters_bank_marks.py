"""Bank details of the municipality in the letter footer, and the fold and punch marks of the DOCX."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from docx import Document
from lxml import etree
from sqlalchemy import select

from rathaus.core import tenants
from rathaus.core.models import AuditEvent, TenantSettings, TextTemplate
from rathaus.writing import bank, letters
from tests.factories import build_tenant
from tests.test_cli import run

VALID = "DE89 3704 0044 0532 0130 00"
NS = {
    "w": "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "wp": "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing",
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
}
EMU_PER_MM = 36_000


# -- IBAN and BIC -------------------------------------------------------------------------------


def test_iban_is_checked_with_its_check_digits():
    assert bank.normalize_iban(VALID) == "DE89370400440532013000"
    assert bank.normalize_iban("de02 1203 0000 0000 2020 51") == "DE02120300000000202051"
    with pytest.raises(bank.BankDetailsError) as wrong:
        bank.normalize_iban("DE89 3704 0044 0532 0130 01")  # one digit off
    assert "Prüfziffern stimmen nicht" in wrong.value.message
    with pytest.raises(bank.BankDetailsError) as short:
        bank.normalize_iban("DE89 3704 0044 0532 0130")
    assert "20 Stellen" in short.value.message and "22" in short.value.message
    with pytest.raises(bank.BankDetailsError) as country:
        bank.normalize_iban("XX89 3704 0044 0532 0130 00")
    assert "Länderkürzel" in country.value.message
    with pytest.raises(bank.BankDetailsError):
        bank.normalize_iban("DE89 3704 0044 0532 0130 0!")


def test_make_collects_every_problem_in_german():
    details = bank.make(institute=" Sparkasse  Musterstadt ", iban=VALID, bic="cobadeffxxx")
    assert details == bank.BankDetails("Sparkasse Musterstadt", "DE89370400440532013000",
                                       "COBADEFFXXX")  # fmt: skip
    assert details.footer() == (
        "Sparkasse Musterstadt · IBAN DE89 3704 0044 0532 0130 00 · BIC COBADEFFXXX"
    )
    with pytest.raises(bank.BankDetailsError) as info:
        bank.make(institute="", iban="DE00 1234", bic="ABC")
    message = info.value.message
    assert "Kreditinstitut" in message and "IBAN" in message and "BIC" in message
    with pytest.raises(bank.BankDetailsError) as mismatch:
        bank.make(institute="Bank", iban=VALID, bic="BKAUATWWXXX")
    assert "verschiedene Länder" in mismatch.value.message


def test_a_typed_bank_line_is_checked_for_its_iban():
    line = f"Sparkasse Musterstadt, IBAN {VALID}, BIC COBADEFFXXX"
    assert bank.check_line(line) == line
    assert bank.check_line("Barzahlung an der Stadtkasse") == "Barzahlung an der Stadtkasse"
    with pytest.raises(bank.BankDetailsError):
        bank.check_line("IBAN DE89 3704 0044 0532 0130 01 BIC COBADEFFXXX")
    with pytest.raises(bank.BankDetailsError):
        bank.check_line("IBAN DE89 3704 0044")  # cut short after the word IBAN


# -- stored per tenant, used in every letter -----------------------------------------------------


def _letter(session, world, **kwargs):
    template = TextTemplate(
        tenant_id=world.tenant.id, name="T", kind="brief", subject="Betreff", body="Text."
    )
    return letters.letter_from_case(
        world.cases["BA"], world.tenant, template, today=dt.date(2026, 11, 21), **kwargs
    )


def test_tenant_bank_details_are_the_default_footer_and_a_letter_may_override(db):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        assert _letter(session, world).sender.bank == ""
        details = bank.make(institute="Sparkasse Alpha", iban=VALID, bic="COBADEFFXXX")
        bank.save(session, tenant=world.tenant, details=details, actor="admin")
        # a quota and a policy set later keep the bank details, and the policy sees no new level
        tenants.set_quota(session, slug="alpha", requests_per_minute=5)
        tenants.set_policy(session, slug="alpha", level="intern", locations=["lokal"],
                           installation={"intern": ["lokal"]})  # fmt: skip
    with db.session() as session:
        world_tenant = tenants.get(session, slug="alpha")
        assert bank.get(session, tenant_id=world_tenant.id) == details
        assert tenants.model_policies(session, world_tenant.id) == {"intern": ["lokal"]}
        overview = tenants.list_tenants(session)[0]
        assert overview.policies == {"intern": ["lokal"]}
        assert session.get(TenantSettings, world_tenant.id).requests_per_minute == 5
        kinds = session.scalars(select(AuditEvent.kind)).all()
        assert "mandant.bankverbindung" in kinds
    with db.session() as session:
        tenant = tenants.get(session, slug="alpha")
        template = TextTemplate(tenant_id=tenant.id, name="T", kind="brief", subject="B", body="x")
        stored = letters.letter_from_fields(
            tenant, subject=template.subject, body=template.body, values={},
            recipient_name="Eva Muster", recipient_address="Weg 1, 12345 Ort",
        )  # fmt: skip
        assert stored.sender.bank == details.footer()
        assert any(f"Bankverbindung: {details.footer()}" in line for line in stored.footer_lines())
        own = letters.letter_from_fields(
            tenant, subject="B", body="x", values={}, recipient_name="Eva",
            recipient_address="Weg 1", bank="Kasse Beta, IBAN DE02 1203 0000 0000 2020 51",
        )  # fmt: skip
        assert own.sender.bank.startswith("Kasse Beta")
        with pytest.raises(bank.BankDetailsError):
            letters.letter_from_fields(
                tenant, subject="B", body="x", values={}, recipient_name="Eva",
                recipient_address="Weg 1", bank="IBAN DE02 1203 0000 0000 2020 52",
            )  # fmt: skip
        pdf = letters.to_pdf(stored)
        from pypdf import PdfReader

        text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
        assert "IBAN DE89 3704 0044 0532 0130 00" in text
        bank.save(session, tenant=tenant, details=None, actor="admin")
        assert bank.get(session, tenant_id=tenant.id) is None
        assert tenants.model_policies(session, tenant.id) == {"intern": ["lokal"]}


def test_cli_sets_shows_and_removes_bank_details(sqlite_db, tmp_path):
    with sqlite_db.session() as session:
        build_tenant(session, "alpha")
    env = {"RATHAUS_DATABASE_URL": sqlite_db.url, "RATHAUS_DEFAULT_TENANT": "alpha"}
    bad = run(["mandanten", "bankverbindung", "alpha", "--kreditinstitut", "Sparkasse",
               "--iban", "DE89 3704 0044 0532 0130 01"], tmp_path, **env)  # fmt: skip
    assert bad.returncode == 2 and "Prüfziffern stimmen nicht" in bad.stderr
    ok = run(["mandanten", "bankverbindung", "alpha", "--kreditinstitut", "Sparkasse Alpha",
              "--iban", VALID, "--bic", "COBADEFFXXX"], tmp_path, **env)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "IBAN DE89 3704 0044 0532 0130 00" in ok.stdout
    shown = run(["mandanten", "zeigen", "alpha"], tmp_path, **env)
    assert "Bankverbindung: Sparkasse Alpha · IBAN DE89" in shown.stdout
    assert "eigene Richtlinie" not in run(["mandanten", "liste"], tmp_path, **env).stdout
    gone = run(["mandanten", "bankverbindung", "alpha", "--entfernen"], tmp_path, **env)
    assert gone.returncode == 0 and "entfernt" in gone.stdout
    neither = run(["mandanten", "bankverbindung", "alpha"], tmp_path, **env)
    assert neither.returncode == 2 and "--entfernen" in neither.stderr


# -- fold and punch marks in the DOCX ------------------------------------------------------------


def _anchors(docx: bytes) -> dict[str, list[dict[str, object]]]:
    """Per header part (first page / default): the anchored shapes with their page positions."""
    found: dict[str, list[dict[str, object]]] = {}
    with zipfile.ZipFile(io.BytesIO(docx)) as archive:
        document = etree.fromstring(archive.read("word/document.xml"))
        rels = etree.fromstring(archive.read("word/_rels/document.xml.rels"))
        targets = {r.get("Id"): r.get("Target") for r in rels}
        sect = document.find(".//w:body/w:sectPr", NS)
        assert sect is not None and sect.find("w:titlePg", NS) is not None  # own first page
        for ref in sect.findall("w:headerReference", NS):
            kind = ref.get(f"{{{NS['w']}}}type")
            part = etree.fromstring(archive.read("word/" + targets[ref.get(f"{{{NS['r']}}}id")]))
            shapes = []
            for anchor in part.iter(f"{{{NS['wp']}}}anchor"):
                h = anchor.find("wp:positionH", NS)
                v = anchor.find("wp:positionV", NS)
                extent = anchor.find("wp:extent", NS)
                shapes.append(
                    {
                        "name": anchor.find("wp:docPr", NS).get("name"),
                        "relative": (h.get("relativeFrom"), v.get("relativeFrom")),
                        "x_mm": int(h.find("wp:posOffset", NS).text) / EMU_PER_MM,
                        "y_mm": int(v.find("wp:posOffset", NS).text) / EMU_PER_MM,
                        "length_mm": int(extent.get("cx")) / EMU_PER_MM,
                        "height": int(extent.get("cy")),
                        "geometry": anchor.find(".//a:prstGeom", NS).get("prst"),
                        "behind": anchor.get("behindDoc"),
                    }
                )
            found[kind] = shapes
    return found


def test_docx_has_fold_marks_and_punch_mark_on_the_first_page(db):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        letter = _letter(session, world)
    docx = letters.to_docx(letter)
    anchors = _anchors(docx)
    assert set(anchors) == {"first", "default"}
    assert anchors["default"] == []  # later pages: no marks
    marks = {m["name"]: m for m in anchors["first"]}
    assert set(marks) == {"Falzmarke 1", "Falzmarke 2", "Lochmarke"}
    # Form B (address field at 45 mm): folds at 105 and 210 mm, punch mark at 148.5 mm
    assert letters.ADDRESS_Y == 45.0
    assert marks["Falzmarke 1"]["y_mm"] == pytest.approx(105.0)
    assert marks["Falzmarke 2"]["y_mm"] == pytest.approx(210.0)
    assert marks["Lochmarke"]["y_mm"] == pytest.approx(148.5)
    for mark in marks.values():
        assert mark["relative"] == ("page", "page")
        assert mark["geometry"] == "line" and mark["height"] == 0 and mark["behind"] == "1"
        assert mark["x_mm"] + mark["length_mm"] < letters.LEFT  # in the margin, not in the text
    assert marks["Lochmarke"]["length_mm"] > marks["Falzmarke 1"]["length_mm"]
    # the document still opens and both headers carry the letterhead
    doc = Document(io.BytesIO(docx))
    section = doc.sections[0]
    assert section.different_first_page_header_footer
    assert letter.sender.name in section.first_page_header.paragraphs[0].text
    assert letter.sender.name in section.header.paragraphs[0].text
    footer = "\n".join(p.text for p in section.first_page_footer.paragraphs)
    assert letter.sender.name in footer and "Seite" in footer
