"""Plain text with encoding detection, and HTML reduced to its text without running anything."""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from rathaus.inbox.formats.base import Extraction

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes, declared: str | None = None) -> tuple[str, str, list[str]]:
    """Decode bytes to text: BOM, then a declared charset, UTF-8, UTF-16 without BOM, and last
    Windows-1252 (Latin-1 for its five undefined bytes) with a warning. Returns (text, codec,
    warnings); never raises."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, errors="replace"), codec, []
    if declared:
        try:
            return data.decode(declared), declared, []
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError:
        pass
    utf16 = _utf16_without_bom(data)
    if utf16:
        return data.decode(utf16, errors="replace"), utf16, []
    warning = (
        "Der Text ist nicht in UTF-8 kodiert und wurde als Windows-1252 (Westeuropäisch) gelesen. "
        "Bitte Umlaute und Sonderzeichen mit dem Original vergleichen."
    )
    try:
        return data.decode("cp1252"), "cp1252", [warning]
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1", [warning.replace("Windows-1252", "Latin-1")]


def _utf16_without_bom(data: bytes) -> str | None:
    """Recognise UTF-16 text without BOM by the zero high bytes of ASCII characters."""
    sample = data[:4096]
    if len(sample) < 8 or len(sample) % 2:
        return None
    even_zero = sample[0::2].count(0) / (len(sample) / 2)
    odd_zero = sample[1::2].count(0) / (len(sample) / 2)
    if odd_zero > 0.3 and even_zero < 0.05:
        return "utf-16-le"
    if even_zero > 0.3 and odd_zero < 0.05:
        return "utf-16-be"
    return None


def looks_like_text(data: bytes) -> bool:
    """True for bytes that decode as text: a BOM, or no NUL bytes and few control characters."""
    if any(data.startswith(bom) for bom, _ in _BOMS) or _utf16_without_bom(data):
        return True
    sample = data[:8192]
    if b"\x00" in sample:
        return False
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls <= len(sample) * 0.02


def read_plain(data: bytes, result: Extraction) -> None:
    text, _codec, warnings = decode_text(data)
    result.text = normalize_newlines(text)
    result.method = "plain"
    result.warnings.extend(warnings)


def read_html(data: bytes, result: Extraction) -> None:
    raw, _codec, warnings = decode_text(data, _meta_charset(data))
    result.text = html_to_text(raw)
    result.method = "html"
    result.warnings.extend(warnings)


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def _meta_charset(data: bytes) -> str | None:
    match = re.search(rb"""charset\s*=\s*["']?([A-Za-z0-9_\-]{2,40})""", data[:4096])
    return match.group(1).decode("ascii") if match else None


_BLOCK = {
    "p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
    "blockquote", "pre", "section", "article", "header", "footer", "hr", "address", "dd", "dt",
}  # fmt: skip
_SKIP = {"script", "style", "head", "title", "template", "noscript", "svg", "object", "iframe"}


class _TextCollector(HTMLParser):
    """Collects visible text; scripts, styles and embedded objects are dropped, never run."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        elif tag == "td" or tag == "th":
            self.parts.append("\t")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The visible text of an HTML document, paragraphs on their own lines."""
    collector = _TextCollector()
    try:
        collector.feed(html)
        collector.close()
    except Exception:  # noqa: S110 - html.parser is lenient; keep what it collected
        pass
    text = "".join(collector.parts)
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
