"""Text extraction from incoming files: detect the real format, read it within limits, never raise.

``extract`` is the one entry point. Bad input (damaged, encrypted, oversized, hostile, unknown)
never raises: it returns an ``Extraction`` whose ``error`` is a German sentence saying what to do,
and the caller keeps the original and puts the item up for manual review with that reason.
Only programming errors propagate.
"""

from __future__ import annotations

import logging

from rathaus.ai.ocr import OcrEngine, TesseractOcr
from rathaus.inbox.formats.base import KEPT, Extraction, Limits
from rathaus.inbox.formats.docx import DOCX, read_docx, zip_kind
from rathaus.inbox.formats.images import read_image
from rathaus.inbox.formats.mail import read_email
from rathaus.inbox.formats.pdf import read_pdf
from rathaus.inbox.formats.text import looks_like_text, read_html, read_plain

__all__ = ["DOCX_TYPE", "Extraction", "Limits", "detect_media_type", "extract"]

DOCX_TYPE = DOCX

log = logging.getLogger(__name__)

OCTET = "application/octet-stream"
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (b"Rar!", "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\x1f\x8b", "application/gzip"),
)
_MAIL_HEADERS = (
    b"from", b"to", b"subject", b"date", b"received", b"return-path", b"message-id",
    b"mime-version", b"delivered-to", b"reply-to", b"content-type",
)  # fmt: skip
_KNOWN_NAMES = {
    "application/pdf": "PDF",
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/tiff": "TIFF",
    DOCX: "DOCX",
    "message/rfc822": "E-Mail",
    "text/plain": "Text",
    "text/html": "HTML",
}


def detect_media_type(data: bytes) -> str:
    """The media type from the content (magic bytes and structure), never from the file name."""
    head = data[:1024]
    if b"%PDF-" in head:  # the header may follow a little junk
        return "application/pdf"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    # "BM" alone starts many texts ("BMW parkt …"): a BMP also has four reserved zero bytes and
    # a known header size.
    if (
        head.startswith(b"BM")
        and len(head) >= 18
        and head[6:10] == b"\0\0\0\0"
        and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)
    ):
        return "image/bmp"
    if head.startswith(b"PK\x03\x04"):
        kind = zip_kind(data)
        return {
            "docx": DOCX,
            "odt": "application/vnd.oasis.opendocument.text",
        }.get(kind, "application/zip")
    if not looks_like_text(data):
        return OCTET
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html")) or (
        stripped.startswith(b"<") and b"<body" in data[:8192].lower()
    ):
        return "text/html"
    if _looks_like_mail(data):
        return "message/rfc822"
    return "text/plain"


def _looks_like_mail(data: bytes) -> bool:
    """Header lines from the first line on, at least two of them well-known mail headers."""
    lines = data[:8192].replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[0].startswith(b"From "):  # mbox separator line
        lines = lines[1:]
    known = 0
    for index, line in enumerate(lines[:60]):
        if not line.strip():
            return index > 0 and known >= 2
        if line[:1] in (b" ", b"\t"):
            continue  # folded header continuation
        name, colon, _ = line.partition(b":")
        if not colon or not name or b" " in name.strip(b" ") or len(name) > 76:
            return False
        known += name.strip().lower() in _MAIL_HEADERS
    return known >= 2


def extract(
    data: bytes,
    filename: str,
    media_type: str | None = None,
    *,
    limits: Limits | None = None,
    ocr: OcrEngine | None = None,
) -> Extraction:
    """Read the text of one incoming file.

    ``media_type`` is what the sender claimed; the format is detected from the content and a
    mismatch is only a warning. ``ocr`` defaults to Tesseract (``deu``) with the limits' per-page
    timeout. Never raises for bad input; see ``Extraction`` for the result.
    """
    limits = limits or Limits()
    ocr = ocr or TesseractOcr(languages="deu", timeout_s=limits.ocr_timeout_s)
    return _extract(data, filename, media_type, limits, ocr, depth=0)


def _extract(
    data: bytes,
    filename: str,
    claimed: str | None,
    limits: Limits,
    ocr: OcrEngine,
    depth: int,
) -> Extraction:
    if len(data) > limits.max_bytes:
        # Hashing is the only pass over an oversized file; it is not parsed or copied.
        result = Extraction.empty_for(data, filename, claimed or OCTET)
        result.error = (
            f"Die Datei ist mit {_megabytes(len(data))} zu groß (höchstens "
            f"{_megabytes(limits.max_bytes)}). {KEPT}; bitte beim Absender eine kleinere "
            "Datei oder einzelne Seiten anfordern."
        )
        return result
    if not data.strip(b"\x00 \t\r\n"):
        result = Extraction.empty_for(data, filename, claimed or OCTET)
        result.error = (
            "Die Datei ist leer. Bitte beim Absender die Datei erneut anfordern."
            if not data
            else "Die Datei enthält nur Leerzeichen oder Nullbytes, keinen Inhalt. "
            "Bitte beim Absender die Datei erneut anfordern."
        )
        return result

    detected = detect_media_type(data)
    said_mail = _base(claimed or "") == "message/rfc822" or filename.lower().endswith(".eml")
    if detected == "text/plain" and said_mail:
        detected = "message/rfc822"  # headers too broken to recognise; the parser tolerates it
    result = Extraction.empty_for(data, filename, detected)
    if claimed and _base(claimed) not in (detected, OCTET) and detected != OCTET:
        result.warnings.append(
            f"Die Datei wurde als {_base(claimed)} angekündigt, ist aber "
            f"{_KNOWN_NAMES.get(detected, detected)}; gelesen wurde sie als "
            f"{_KNOWN_NAMES.get(detected, detected)}."
        )

    def child(payload: bytes, name: str, declared: str | None, child_depth: int) -> Extraction:
        return _extract(payload, name, declared, limits, ocr, child_depth)

    if detected == "application/pdf":
        read_pdf(data, result, limits, ocr)
    elif detected in ("image/png", "image/jpeg", "image/tiff"):
        read_image(data, result, limits, ocr)
    elif detected == DOCX:
        read_docx(data, result, limits)
    elif detected == "message/rfc822":
        read_email(data, result, limits, depth, child)
    elif detected == "text/html":
        read_html(data, result)
    elif detected == "text/plain":
        read_plain(data, result)
    else:
        result.error = _unsupported(detected)

    if len(result.text) > limits.max_text_chars:
        result.text = result.text[: limits.max_text_chars]
        result.warnings.append(
            f"Der Text war länger als {limits.max_text_chars} Zeichen und wurde gekürzt. "
            "Bitte den Rest im Original ansehen."
        )
    return result


def _unsupported(detected: str) -> str:
    what = {
        "application/x-ole-storage": "ein älteres Office-Format (.doc, .xls oder Outlook-.msg)",
        "application/vnd.oasis.opendocument.text": "ein OpenDocument-Text (.odt)",
        "application/zip": "ein ZIP-Archiv",
        "application/vnd.rar": "ein RAR-Archiv",
        "application/x-7z-compressed": "ein 7z-Archiv",
        "application/gzip": "ein gzip-Archiv",
        "image/gif": "ein GIF-Bild",
        "image/bmp": "ein BMP-Bild",
        "image/webp": "ein WebP-Bild",
    }.get(detected)
    if what is None:
        return (
            "Das Dateiformat wurde nicht erkannt. "
            f"{KEPT}; bitte beim Absender ein PDF oder eine Textdatei anfordern."
        )
    return (
        f"Die Datei ist {what}; dieses Format wird nicht automatisch gelesen. "
        f"{KEPT}; bitte von Hand ansehen oder beim Absender ein PDF anfordern."
    )


_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": "application/pdf",
}


def _base(media_type: str) -> str:
    base = media_type.split(";")[0].strip().lower()
    return _ALIASES.get(base, base)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB".replace(".", ",")
