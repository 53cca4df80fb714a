"""DOCX (Word 2007+) read with zipfile and the XML parser, guarded against ZIP and XML bombs."""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET  # noqa: S405 - DTDs are refused before parsing, see _parse
import zipfile
import zlib
from io import BytesIO

from rathaus.core.zipguard import ZipBounds, bomb_reason
from rathaus.inbox.formats.base import KEPT, Extraction, Limits

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
OFFICE_DOCUMENT = "/officeDocument"

BOMB = (
    "Die Datei entpackt sich zu einer ungewöhnlich großen Datenmenge (mögliche ZIP-Bombe) und "
    f"wurde aus Sicherheitsgründen nicht geöffnet. {KEPT}; bitte beim Absender ein PDF anfordern."
)
DAMAGED = (
    "Die Word-Datei (DOCX) ist beschädigt und kann nicht gelesen werden. "
    f"{KEPT}; bitte beim Absender eine neue Kopie oder ein PDF anfordern."
)


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def zip_kind(data: bytes) -> str:
    """``"docx"``, ``"odt"`` or ``"zip"`` from the archive's member names (no member is read)."""
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return "zip"
    if "word/document.xml" in names or (
        "[Content_Types].xml" in names and any(n.startswith("word/") for n in names)
    ):
        return "docx"
    if "content.xml" in names and "mimetype" in names:
        return "odt"
    return "zip"


def read_docx(data: bytes, result: Extraction, limits: Limits) -> None:
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            budget = _check_archive(archive, limits)
            main = _main_part(archive, budget)
            parts = [main]
            # Footnotes, endnotes, then headers and footers (letterheads carry the sender).
            names = sorted(archive.namelist())
            for prefix in ("word/footnotes", "word/endnotes", "word/header", "word/footer"):
                parts += [n for n in names if n.startswith(prefix) and n.endswith(".xml")]
            sections: list[str] = []
            lang: str | None = None
            for name in parts:
                if name not in archive.NameToInfo:
                    continue
                root = _parse(_read_member(archive, name, budget))
                text = _paragraphs(root)
                if text.strip():
                    sections.append(text.strip())
                if name == main:
                    lang = _language(root)
            if lang is None and "word/styles.xml" in archive.NameToInfo:
                lang = _language(_parse(_read_member(archive, "word/styles.xml", budget)))
    except _Refused as exc:
        result.error = exc.message
        return
    except (zipfile.BadZipFile, ET.ParseError, KeyError, OSError, ValueError, EOFError,
            NotImplementedError, RuntimeError, zlib.error):  # fmt: skip
        result.error = DAMAGED
        return
    result.text = "\n\n".join(sections)
    result.method = "docx"
    result.language_hint = lang
    if not result.text:
        result.warnings.append("Die Word-Datei enthält keinen Text. Bitte das Original ansehen.")


class _Budget:
    """Bytes still allowed to be unpacked from this archive."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining


def _check_archive(archive: zipfile.ZipFile, limits: Limits) -> _Budget:
    bounds = ZipBounds(limits.max_zip_members, limits.max_unzipped_bytes, limits.max_zip_ratio)
    if bomb_reason(archive, bounds) is not None:
        raise _Refused(BOMB)
    if any(info.flag_bits & 0x1 for info in archive.infolist()):
        raise _Refused(
            "Die Word-Datei ist mit einem Passwort geschützt und kann nicht gelesen werden. "
            f"{KEPT}; bitte eine ungeschützte Fassung anfordern."
        )
    return _Budget(limits.max_unzipped_bytes)


def _read_member(archive: zipfile.ZipFile, name: str, budget: _Budget) -> bytes:
    """Read one member in chunks and stop as soon as the budget is used: the sizes in the ZIP
    directory are written by the sender and may lie."""
    chunks: list[bytes] = []
    with archive.open(name) as member:
        while chunk := member.read(64 * 1024):
            budget.remaining -= len(chunk)
            if budget.remaining < 0:
                raise _Refused(BOMB)
            chunks.append(chunk)
    return b"".join(chunks)


def _main_part(archive: zipfile.ZipFile, budget: _Budget) -> str:
    """The main document's name from the package relationships (usually word/document.xml)."""
    if "_rels/.rels" in archive.NameToInfo:
        rels = _parse(_read_member(archive, "_rels/.rels", budget))
        for rel in rels.iter(f"{REL}Relationship"):
            if rel.get("Type", "").endswith(OFFICE_DOCUMENT):
                target = posixpath.normpath(rel.get("Target", "").lstrip("/"))
                if target in archive.NameToInfo:
                    return target
    return "word/document.xml"


def _parse(xml: bytes) -> ET.Element:
    # OOXML parts never carry a DTD; refusing one rules out entity expansion ("billion laughs").
    if re.search(rb"<!(DOCTYPE|ENTITY)", xml, re.IGNORECASE):
        raise _Refused(DAMAGED)
    return ET.fromstring(xml)  # noqa: S314 - no DTD possible, see above


def _paragraphs(root: ET.Element) -> str:
    """Text per paragraph; table cells separated by tabs, rows by line breaks."""
    lines: list[str] = []
    for paragraph in root.iter(f"{W}p"):
        parts: list[str] = []
        for node in paragraph.iter():
            if node.tag == f"{W}t" and node.text:
                parts.append(node.text)
            elif node.tag == f"{W}tab":
                parts.append("\t")
            elif node.tag in (f"{W}br", f"{W}cr"):
                parts.append("\n")
        lines.append("".join(parts))
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text)


def _language(root: ET.Element) -> str | None:
    for node in root.iter(f"{W}lang"):
        value = node.get(f"{W}val")
        if value:
            return value.split("-")[0].lower()
    return None
