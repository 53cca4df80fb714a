"""Text extraction from incoming files: every format, and every kind of bad input without raising.

All inputs are generated here: PDFs written by hand (Helvetica text objects, or a rendered page as
an image for a "scan"), DOCX built with zipfile, e-mails built with the stdlib.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import subprocess
import zipfile
import zlib
from email.message import EmailMessage
from pathlib import Path

import pytest

from rathaus.ai.ocr import OcrResult
from rathaus.inbox.documents import DOCX_TYPE, Extraction, Limits, detect_media_type, extract

LETTER = [
    "Stadt Musterstadt, Ordnungsamt",
    "Widerspruch gegen den Bescheid vom 12.03.2025",
    "Aktenzeichen 32-411/2025",
    "Sehr geehrte Damen und Herren,",
    "hiermit lege ich Widerspruch ein. Die Gebühr",
    "von 1.471,60 Euro ist zu hoch. Mit freundlichen Grüßen",
]


# --- generated inputs ------------------------------------------------------------------------


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF with correct cross-reference offsets; object 1 must be the catalog."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(content), extra) + content + b"\nendstream"


def text_pdf(lines: list[str] = LETTER, pages: int = 1) -> bytes:
    """A text-layer PDF: Helvetica (WinAnsi, so umlauts work), one line per text row."""
    ops = [b"BT /F1 14 Tf 72 760 Td 20 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(b"(" + escaped.encode("cp1252") + b") Tj T*")
    ops.append(b"ET")
    content = "\n".join(o.decode("latin-1") for o in ops).encode("latin-1")
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(pages)).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Lang (de-DE) >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i in range(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(_stream(content))
    return _pdf(objects)


def render_png(pdf: bytes, tmp_path: Path, dpi: int = 200) -> bytes:
    """A "scan" of the PDF's first page: rendered to grey PNG with pdftoppm."""
    source = tmp_path / "render.pdf"
    source.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-gray", "-png", "-singlefile", str(source),
         str(tmp_path / "scan")],
        check=True, timeout=30,
    )  # fmt: skip
    return (tmp_path / "scan.png").read_bytes()


def scanned_pdf(pdf: bytes, tmp_path: Path, dpi: int = 200) -> bytes:
    """An image-only PDF (no text layer): the rendered page embedded as a Flate grey image."""
    source = tmp_path / "render.pdf"
    source.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-gray", "-singlefile", str(source), str(tmp_path / "scan")],
        check=True,
        timeout=30,
    )
    pgm = (tmp_path / "scan.pgm").read_bytes()
    # P5 header: magic, width, height, maxval, each followed by whitespace.
    fields = pgm.split(maxsplit=4)
    width, height, pixels = int(fields[1]), int(fields[2]), fields[4]
    image = _stream(
        zlib.compress(pixels),
        b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /FlateDecode" % (width, height),
    )
    draw = b"q 595 0 0 842 0 0 cm /Im1 Do Q"
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>",
            image,
            _stream(draw),
        ]
    )


def docx(
    paragraphs: list[str], extra: dict[str, bytes] | None = None, document: str | None = None
) -> bytes:
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join(
        f"<w:p><w:r><w:rPr><w:lang w:val='de-DE'/></w:rPr><w:t xml:space='preserve'>{p}</w:t>"
        "</w:r></w:p>"
        for p in paragraphs
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            "<?xml version='1.0'?><Types xmlns='http://schemas.openxmlformats.org/package/2006/"
            "content-types'><Override PartName='/word/document.xml' ContentType='application/"
            "vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml'/></Types>",
        )
        archive.writestr(
            "_rels/.rels",
            "<?xml version='1.0'?><Relationships xmlns='http://schemas.openxmlformats.org/package/"
            "2006/relationships'><Relationship Id='rId1' Type='http://schemas.openxmlformats.org/"
            "officeDocument/2006/relationships/officeDocument' Target='word/document.xml'/>"
            "</Relationships>",
        )
        archive.writestr(
            "word/document.xml",
            document
            or f"<?xml version='1.0' encoding='UTF-8'?><w:document xmlns:w='{w}'><w:body>{body}"
            "</w:body></w:document>",
        )
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def mail(attachments: list[tuple[str, str, bytes]], body: str = "Sehr geehrte Damen und Herren,"):
    message = EmailMessage()
    message["From"] = "Erika Mustermann <erika@example.org>"
    message["To"] = "poststelle@musterstadt.de"
    message["Subject"] = "Widerspruch gegen Gebührenbescheid"
    message.set_content(body + "\nhiermit lege ich Widerspruch ein.")
    message["Content-Language"] = "de-DE"
    message.add_alternative(f"<html><body><p>{body}</p><script>alert(1)</script></body></html>",
                            subtype="html")  # fmt: skip
    for name, media_type, data in attachments:
        if media_type == "message/rfc822":
            forwarded = email.message_from_bytes(data, policy=email.policy.default)
            message.add_attachment(forwarded, filename=name)
            continue
        maintype, subtype = media_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


class NoText:
    """An OCR engine that finds nothing: for tests of parsing, not of recognition."""

    name = "none"
    language = "de"

    def recognize(self, image: Path, *, dpi: int | None = None) -> OcrResult:
        return OcrResult(text="", confidence=None, seconds=0.0)


# --- PDF -------------------------------------------------------------------------------------


def test_text_layer_pdf() -> None:
    result = extract(text_pdf(), "bescheid.pdf", "application/pdf")
    assert result.error is None, result.error
    assert result.method == "text-layer"
    assert result.media_type == "application/pdf"
    assert result.pages == 1
    assert result.language_hint == "de"
    assert "Widerspruch gegen den Bescheid" in result.text
    assert "Grüßen" in result.text
    assert "1.471,60 Euro" in result.text
    assert result.warnings == []


def test_pages_are_separated_and_limited() -> None:
    result = extract(text_pdf(pages=5), "lang.pdf", None, limits=Limits(max_pdf_pages=3))
    assert result.error is None
    assert result.pages == 5
    assert result.text.count("\f") == 2
    assert any("5 Seiten" in w and "ersten 3" in w for w in result.warnings)


def test_scanned_pdf_is_recognised(tmp_path: Path) -> None:
    result = extract(scanned_pdf(text_pdf(), tmp_path), "scan.pdf", "application/pdf")
    assert result.error is None, result.error
    assert result.method == "ocr"
    assert result.language_hint == "de"
    assert "Widerspruch" in result.text
    assert "Aktenzeichen" in result.text


def test_scanned_png_is_recognised(tmp_path: Path) -> None:
    png = render_png(text_pdf(), tmp_path)
    result = extract(png, "scan.pdf", "application/pdf")  # name and type lie
    assert result.media_type == "image/png"
    assert result.method == "ocr"
    assert result.error is None, result.error
    assert "Widerspruch" in result.text
    assert "Musterstadt" in result.text
    assert any("angekündigt" in w and "PNG" in w for w in result.warnings)


def test_truncated_pdf_never_raises() -> None:
    data = text_pdf()
    for cut in (len(data) // 2, 300, 40, 9):
        result = extract(data[:cut], "kaputt.pdf", "application/pdf")
        assert result.media_type == "application/pdf"
        assert result.error or result.warnings, cut
        assert result.error is None or "beschädigt" in result.error or "keinen" in result.error


def test_garbage_after_pdf_header_is_damaged() -> None:
    result = extract(b"%PDF-1.7\n" + bytes(range(256)) * 20, "x.pdf", None)
    assert result.error is not None
    assert "beschädigt" in result.error
    assert "Original ist gespeichert" in result.error


def test_encrypted_pdf_asks_for_plain_copy() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf())))
    writer.encrypt(user_password="geheim", owner_password="noch-geheimer", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    result = extract(buffer.getvalue(), "verschluesselt.pdf", "application/pdf")
    assert result.error == (
        "Die PDF-Datei ist verschlüsselt und kann ohne Passwort nicht gelesen werden. "
        "Das Original ist gespeichert; bitte Klartext anfordern."
    )
    assert result.needs_review


def test_pdf_with_empty_user_password_is_read() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf())))
    writer.encrypt(user_password="", owner_password="besitzer", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    result = extract(buffer.getvalue(), "gesperrt.pdf", None)
    assert result.error is None
    assert "Widerspruch" in result.text


# --- DOCX ------------------------------------------------------------------------------------


def test_docx_text() -> None:
    data = docx(["Antrag auf Sondernutzung", "Straße: Hauptstraße 5 – Größe 3 m²"])
    result = extract(data, "antrag.docx", DOCX_TYPE)
    assert result.error is None
    assert result.method == "docx"
    assert result.media_type == DOCX_TYPE
    assert result.language_hint == "de"
    assert result.text == "Antrag auf Sondernutzung\nStraße: Hauptstraße 5 – Größe 3 m²"


def test_docx_zip_bomb_is_refused() -> None:
    bomb = docx(["Hallo"], {"word/media/blob.bin": b"\x00" * (200 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    result = extract(bomb, "bombe.docx", DOCX_TYPE)
    assert result.error is not None and "ZIP-Bombe" in result.error


def test_docx_with_lying_sizes_stops_reading() -> None:
    # The central directory claims small sizes; the reader must stop at its own budget.
    data = docx(["x" * 2_000_000])
    result = extract(data, "gross.docx", None, limits=Limits(max_unzipped_bytes=500_000))
    assert result.error is not None and "ZIP-Bombe" in result.error


def test_docx_with_entity_expansion_is_refused() -> None:
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;">]>'
        f'<w:document xmlns:w="{w}"><w:body><w:p><w:r><w:t>&b;</w:t></w:r></w:p></w:body>'
        "</w:document>"
    )
    result = extract(docx([], document=laughs), "laughs.docx", None)
    assert result.error is not None
    assert "beschädigt" in result.error


def test_forwarded_email_encoded_in_base64_is_opened() -> None:
    inner = mail([], body="Weitergeleitete Beschwerde")
    outer = EmailMessage()
    outer["From"] = "weiterleitung@example.org"
    outer["Subject"] = "WG: Beschwerde"
    outer.set_content("Siehe Anhang.")
    outer.add_attachment(inner, maintype="message", subtype="rfc822", filename="wg.eml")
    result = extract(outer.as_bytes(), "wg.eml", None)
    [child] = result.attachments
    assert child.method == "email"
    assert "Weitergeleitete Beschwerde" in child.text


def test_broken_docx_zip() -> None:
    data = docx(["Hallo Welt"])
    result = extract(data[: len(data) // 2], "halb.docx", DOCX_TYPE)
    assert result.error is not None
    assert result.needs_review


# --- E-mail ----------------------------------------------------------------------------------


def test_email_with_three_attachments(tmp_path: Path) -> None:
    pdf = text_pdf()
    data = mail(
        [
            ("bescheid.pdf", "application/pdf", pdf),
            ("notiz.txt", "text/plain", "Rückruf erbeten".encode("cp1252")),
            ("antrag.docx", "application/octet-stream", docx(["Antrag auf Wohngeld"])),
        ]
    )
    result = extract(data, "nachricht.eml", "message/rfc822")
    assert result.error is None
    assert result.method == "email"
    assert result.media_type == "message/rfc822"
    assert result.language_hint == "de"
    assert result.text.startswith("Betreff: Widerspruch gegen Gebührenbescheid")
    assert "hiermit lege ich Widerspruch ein." in result.text
    assert "alert" not in result.text
    assert result.metadata["from"] == "Erika Mustermann <erika@example.org>"
    assert [a.filename for a in result.attachments] == ["bescheid.pdf", "notiz.txt", "antrag.docx"]
    first, second, third = result.attachments
    assert first.method == "text-layer" and "Aktenzeichen 32-411/2025" in first.text
    assert first.sha256 == hashlib.sha256(pdf).hexdigest() and first.size == len(pdf)
    assert second.text == "Rückruf erbeten" and second.warnings
    assert third.media_type == DOCX_TYPE and third.text == "Antrag auf Wohngeld"
    assert not result.needs_review


def test_email_html_only_body_is_reduced_to_text() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Subject"] = "Straßenlaterne defekt"
    message.set_content(
        "<html><head><style>p{color:red}</style></head><body><p>Die Laterne in der "
        "Hauptstra&szlig;e ist aus.</p><img src='http://tracker.example/x.png'>"
        "<script>fetch('http://evil')</script><ul><li>seit Montag</li></ul></body></html>",
        subtype="html",
    )
    result = extract(message.as_bytes(), "mail.eml", None)
    assert result.error is None
    assert "Die Laterne in der Hauptstraße ist aus." in result.text
    assert "- seit Montag" in result.text
    assert "evil" not in result.text and "color" not in result.text


def test_email_with_forty_attachments_lists_the_rest() -> None:
    files = [(f"foto-{i:02d}.txt", "text/plain", f"Anhang {i}".encode()) for i in range(40)]
    result = extract(mail(files), "viele.eml", None)
    assert result.error is None
    assert len(result.attachments) == 40
    read, listed = result.attachments[:20], result.attachments[20:]
    assert all(a.text.startswith("Anhang") and a.error is None for a in read)
    assert all(a.text == "" and "nicht ausgewertet" in (a.error or "") for a in listed)
    assert listed[-1].filename == "foto-39.txt"
    assert listed[-1].sha256 == hashlib.sha256(b"Anhang 39").hexdigest()
    assert listed[-1].size == len(b"Anhang 39")
    assert any("40 Anhänge" in w and "ersten 20" in w for w in result.warnings)
    assert result.needs_review


def test_broken_mime_is_tolerated() -> None:
    data = (
        b"From: buerger@example.org\r\n"
        b"Subject: =?utf-8?B?R3LDvMOfZQ?=\r\n"  # broken base64 encoded-word
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\r\n'
        b"\r\n"
        b"--XYZ\r\n"
        b"Content-Type: text/plain; charset=klingonisch\r\n"
        b"\r\n"
        b"Die Stra\xdfe ist gesperrt.\r\n"
        b"--XYZ\r\n"
        b"Content-Type: application/pdf; name=kaputt.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=kaputt.pdf\r\n"
        b"\r\n"
        b"JVBERi0xLjQKJeLjz9MK!!!kein base64\r\n"
        # no closing boundary
    )
    result = extract(data, "kaputt.eml", "message/rfc822")
    assert result.error is None
    assert "Die Straße ist gesperrt." in result.text
    assert any("Formfehler" in w for w in result.warnings)
    assert any("klingonisch" in w for w in result.warnings)
    assert len(result.attachments) == 1
    assert result.attachments[0].filename == "kaputt.pdf"
    assert result.attachments[0].error is not None


def test_headerless_eml_is_still_read() -> None:
    result = extract(b"nur ein Satz ohne Kopfzeilen", "x.eml", None)
    assert result.error is None
    assert result.method == "email"
    assert "nur ein Satz ohne Kopfzeilen" in result.text


def test_attached_email_is_opened_to_a_limited_depth() -> None:
    inner = mail([("innen.txt", "text/plain", b"ganz innen")])
    for _ in range(4):
        inner = mail([("weitergeleitet.eml", "message/rfc822", inner)])
    result = extract(inner, "kette.eml", None, limits=Limits(max_depth=2))
    level = result
    for _ in range(2):
        assert level.attachments[0].method == "email"
        level = level.attachments[0]
    assert "verschachtelt" in (level.attachments[0].error or "")


# --- plain text and detection ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "warned"),
    [
        ("Grüße aus Köln – 5 €".encode(), False),
        (b"\xef\xbb\xbf" + "Grüße aus Köln – 5 €".encode(), False),
        ("Grüße aus Köln – 5 €".encode("utf-16"), False),
        ("Grüße aus Köln – 5 €".encode("utf-16-le"), False),
        ("Grüße aus Köln – 5 €".encode("cp1252"), True),
    ],
)
def test_plain_text_encodings(data: bytes, warned: bool) -> None:
    result = extract(data, "brief.txt", "text/plain")
    assert result.error is None
    assert result.method == "plain"
    assert result.text == "Grüße aus Köln – 5 €"
    assert bool(result.warnings) is warned
    if warned:
        assert "Windows-1252" in result.warnings[0]


def test_latin1_with_undefined_cp1252_bytes() -> None:
    result = extract(b"Stra\xdfe \x81", "x.txt", None)
    assert result.text.startswith("Straße")
    assert "Latin-1" in result.warnings[0]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"\xff\xd8\xff\xe0....", "image/jpeg"),
        (b"II*\x00....", "image/tiff"),
        (b"From: a@b.de\nTo: c@d.de\nSubject: x\n\nHallo", "message/rfc822"),
        (b"Betreff: Hallo\nDatum: heute\n\nText", "text/plain"),
        (b"<!DOCTYPE html><html><body>Hallo</body></html>", "text/html"),
        (b"\x00\x01\x02\x03binary", "application/octet-stream"),
        # A report that starts with "BM" is text, a real BMP header is an image.
        (b"BMW parkt seit Tagen auf dem Gehweg.", "text/plain"),
        (
            b"BM"
            + (70).to_bytes(4, "little")
            + b"\0" * 4
            + (54).to_bytes(4, "little")
            + (40).to_bytes(4, "little")
            + b"\0" * 52,
            "image/bmp",
        ),  # fmt: skip
    ],
)
def test_detect_media_type_from_content(data: bytes, expected: str) -> None:
    assert detect_media_type(data) == expected


# --- limits and hostile input ----------------------------------------------------------------


def test_oversized_input_is_refused_quickly() -> None:
    data = bytes(200 * 1024 * 1024)
    result = extract(data, "riesig.pdf", "application/pdf")
    assert result.error is not None
    assert "200 MB zu groß (höchstens 50 MB)" in result.error
    assert result.size == len(data)
    assert result.text == ""


def test_empty_file() -> None:
    result = extract(b"", "leer.pdf", "application/pdf")
    assert result.error == "Die Datei ist leer. Bitte beim Absender die Datei erneut anfordern."
    assert result.needs_review


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "älteres Office-Format"),
        (b"PK\x03\x04" + bytes(100), "ZIP-Archiv"),
        (b"GIF89a" + bytes(100), "GIF"),
        (bytes(range(256)) * 4, "nicht erkannt"),
    ],
)
def test_unsupported_formats_say_what_to_do(data: bytes, fragment: str) -> None:
    result = extract(data, "datei.bin", None)
    assert result.error is not None
    assert fragment in result.error
    assert "Original ist gespeichert" in result.error


def test_corrupt_image_gives_an_error(tmp_path: Path) -> None:
    png = render_png(text_pdf(), tmp_path, dpi=50)
    result = extract(png[:200], "scan.png", "image/png")
    assert result.error is not None or result.warnings
    assert result.method in ("ocr", "none")


def test_pixel_bomb_is_refused_before_ocr() -> None:
    header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (100_000).to_bytes(4, "big") * 2
    result = extract(header + bytes(64), "bombe.png", None)
    assert result.error is not None and "zu groß für die Texterkennung" in result.error


def test_every_bad_input_returns_an_extraction(tmp_path: Path) -> None:
    """Byte-level damage to every format yields a result, never an exception."""
    samples = [text_pdf(), docx(["Hallo"]), mail([("a.pdf", "application/pdf", text_pdf())])]
    for sample in samples:
        for position in range(0, len(sample), max(1, len(sample) // 25)):
            damaged = sample[:position] + b"\xff\x00" + sample[position + 2 :]
            assert isinstance(extract(damaged, "x", None, ocr=NoText()), Extraction)
