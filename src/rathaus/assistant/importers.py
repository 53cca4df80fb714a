"""Knowledge import: read service pages from files (Munich catalogue, CSV, JSON, Markdown, HTML,
PDF) into :class:`EntryData`, independent of how they are stored.

Contract: a file that cannot be read at all raises :class:`KnowledgeImportError` with a German
message that names the file and says what to do; nothing of it is returned. Inside a CSV or JSON
list, a single bad record (no title, an unsafe link, a repeated id) is collected in
:class:`ReadReport.failed` and the other records are returned. Nothing is fetched from the
network; links are only checked to be ``http(s)`` so that no ``javascript:`` link reaches a page.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from rathaus.assistant.entries import FACTS, LIST_FACTS, EntryData
from rathaus.core.errors import RathausError
from rathaus.core.parsing import ParseProblem, decode_utf16, is_utf16, parse_json

FORMATS: dict[str, str] = {
    "muenchen": "Münchner Dienstleistungskatalog (JSON)",
    "csv": "CSV-Tabelle",
    "json": "JSON-Liste",
    "markdown": "Markdown-Seite",
    "html": "HTML-Seite",
    "pdf": "PDF-Dokument",
}
# The source recorded for entries of each format unless the caller names one.
DEFAULT_SOURCES = {
    "muenchen": "muenchen-dldb",
    "csv": "csv",
    "json": "json",
    "markdown": "markdown",
    "html": "html",
    "pdf": "pdf",
}
SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
FORMAT_ALIASES = {"md": "markdown", "htm": "html", "dldb": "muenchen", "münchen": "muenchen"}
MUENCHEN_SOURCE = "muenchen-dldb"
MAX_TITLE = 300
MAX_URL = 500
MAX_EXTERNAL_ID = 300
MAX_SOURCE = 60
HINT_FORMATS = "CSV, JSON, Münchner Katalog-JSON, Markdown (.md), HTML (.html) und PDF"

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_INVISIBLE[0xA0] = " "


class KnowledgeImportError(RathausError):
    """A knowledge file (or folder) cannot be read; the message names it and says what to do."""


@dataclass
class ReadReport:
    """What reading noticed besides the entries: records left out, and notes for the user.

    ``failed`` holds (record, German reason), e.g. ``("liste.csv, Zeile 4", "… kein Titel …")``.
    """

    files: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _RecordError(ValueError):
    """One record of a CSV/JSON file is unusable; the message is German."""


# --- entry points ------------------------------------------------------------------------------


def normalize_format(fmt: str | None) -> str | None:
    """The canonical format name for user input (``md`` → ``markdown``), or a German error."""
    if fmt is None:
        return None
    key = fmt.strip().lower()
    key = FORMAT_ALIASES.get(key, key)
    if key not in FORMATS:
        raise KnowledgeImportError(
            f"Das Format „{fmt}“ ist unbekannt. Erlaubt sind: {', '.join(FORMATS)}."
        )
    return key


def detect_format(path: Path) -> str:
    """The format of one file, from its name and, for JSON and unknown endings, its content."""
    path = Path(path)
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt == "json":
        return "muenchen" if _is_muenchen(_load_json(path)) else "json"
    if fmt:
        return fmt
    head = _read_bytes(path)[:1024]
    if b"%PDF-" in head:
        return "pdf"
    raise KnowledgeImportError(
        f"Das Format der Datei „{path.name}“ ist unbekannt. Unterstützt werden {HINT_FORMATS}; "
        "bitte die Dateiendung prüfen oder das Format mit --format angeben."
    )


def read_entries(
    path: Path | str,
    fmt: str | None = None,
    *,
    source: str | None = None,
    report: ReadReport | None = None,
) -> Iterator[EntryData]:
    """The entries of a file or of every supported file in a folder (recursively, sorted).

    ``fmt`` forces the format (for a folder: only files of that format are read). ``source``
    replaces the per-format default (see ``DEFAULT_SOURCES``). Files in a folder are identified
    by their path relative to it, so importing the folder again updates the same entries.
    Records left out and notes go to ``report``; without one they are dropped silently.
    """
    root = Path(path)
    report = report if report is not None else ReadReport()
    fmt = normalize_format(fmt)
    if source is not None:
        source = _check_source(source)
    if not root.exists():
        raise KnowledgeImportError(
            f"„{root}“ gibt es nicht. Bitte den Pfad zur Datei oder zum Ordner prüfen."
        )
    seen: dict[tuple[str, str], str] = {}
    if root.is_dir():
        files = _folder_files(root, fmt, report)
        if not files:
            raise KnowledgeImportError(
                f"Im Ordner „{root}“ liegt keine lesbare Wissensdatei. Unterstützt werden "
                f"{HINT_FORMATS}."
            )
        for file in files:
            yield from _unique(
                _read_file(file, fmt, source, file.relative_to(root).as_posix(), report),
                seen,
                report,
            )
    else:
        yield from _unique(_read_file(root, fmt, source, root.name, report), seen, report)


def _unique(
    entries: Iterable[tuple[str, EntryData]], seen: dict[tuple[str, str], str], report: ReadReport
) -> Iterator[EntryData]:
    for where, entry in entries:
        key = (entry.source, entry.external_id)
        if key in seen:
            report.failed.append(
                (
                    where,
                    f"Die Kennung „{entry.external_id}“ kommt schon vor ({seen[key]}); der "
                    "Eintrag wurde übersprungen. Bitte jedem Eintrag eine eigene Kennung geben.",
                )
            )
            continue
        seen[key] = where
        yield entry


def _folder_files(root: Path, fmt: str | None, report: ReadReport) -> list[Path]:
    files = []
    skipped = []
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root)
        if any(part.startswith((".", "_")) for part in rel.parts) or not file.is_file():
            continue
        kind = SUFFIXES.get(file.suffix.lower())
        if kind is None:
            skipped.append(rel.as_posix())
            continue
        if fmt is not None and kind != fmt and not (fmt == "muenchen" and kind == "json"):
            continue
        files.append(file)
    if skipped:
        shown = ", ".join(skipped[:5]) + (" …" if len(skipped) > 5 else "")
        report.notes.append(
            f"{len(skipped)} Datei(en) mit unbekannter Endung wurden nicht gelesen: {shown}."
        )
    return files


def _read_file(
    path: Path, fmt: str | None, source: str | None, name: str, report: ReadReport
) -> Iterator[tuple[str, EntryData]]:
    kind = fmt or detect_format(path)
    report.files += 1
    src = source or DEFAULT_SOURCES[kind]
    if kind == "muenchen":
        for entry in read_muenchen(path, source=src):
            yield f"{path.name}, Leistung {entry.external_id}", entry
    elif kind in ("csv", "json"):
        reader = read_csv if kind == "csv" else read_json
        yield from reader(path, source=src, report=report)
    elif kind == "markdown":
        yield name, read_markdown(path, source=src, external_id=name, report=report)
    elif kind == "html":
        yield name, read_html(path, source=src, external_id=name, report=report)
    else:
        yield name, read_pdf(path, source=src, external_id=name)


# --- reading and decoding ------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KnowledgeImportError(
            f"Die Datei „{path.name}“ kann nicht gelesen werden ({exc.strerror or exc}). Bitte "
            "Pfad und Zugriffsrechte prüfen."
        ) from exc


def _decode(path: Path, report: ReadReport | None = None) -> str:
    """UTF-8 (with or without BOM); Windows-1252 as a fallback, with a note."""
    data = _read_bytes(path)
    if b"\x00" in data[:8192] and not is_utf16(data):
        raise KnowledgeImportError(
            f"Die Datei „{path.name}“ ist keine Textdatei (sie enthält Binärdaten). Bitte "
            "prüfen, ob die Dateiendung stimmt."
        )
    if is_utf16(data):
        try:
            return decode_utf16(data)
        except ParseProblem as exc:
            raise KnowledgeImportError(
                f"„{path.name}“: {exc.message}. Bitte als UTF-8 speichern und erneut importieren."
            ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
    text = data.decode("cp1252", errors="replace")
    if "\ufffd" in text:
        raise KnowledgeImportError(
            f"Die Datei „{path.name}“ ist nicht UTF-8-kodiert (erstes unlesbares Zeichen in "
            f"Zeile {line}) und auch nicht Windows-1252. Bitte als UTF-8 speichern und erneut "
            "importieren."
        )
    if report is not None:
        report.notes.append(
            f"„{path.name}“ ist nicht UTF-8-kodiert und wurde als Windows-1252 gelesen. Bitte "
            "Umlaute stichprobenartig prüfen; eindeutig ist das Speichern als UTF-8."
        )
    return text


def _load_json(path: Path, report: ReadReport | None = None) -> Any:
    text = _decode(path, report)
    try:
        return parse_json(text)
    except ParseProblem as exc:
        raise KnowledgeImportError(
            f"Die Datei „{path.name}“ ist kein gültiges JSON: {exc.message}. Bitte die Stelle "
            "korrigieren und erneut importieren."
        ) from None


# --- text helpers ------------------------------------------------------------------------------


def clean(text: str) -> str:
    """One line: invisible characters removed, whitespace collapsed."""
    return " ".join(text.translate(_INVISIBLE).split())


def clean_body(text: str) -> str:
    """Plain text with paragraphs split by one blank line and no trailing spaces."""
    text = text.translate(_INVISIBLE).replace("\r\n", "\n").replace("\r", "\n")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    body = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", body).strip()


def slug(text: str) -> str:
    """``Personalausweis beantragen`` → ``personalausweis-beantragen`` (a fallback id)."""
    folded = text.translate(str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"}))
    folded = unicodedata.normalize("NFKD", folded.casefold()).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:200]


def _key(name: str) -> str:
    """Column and key names compared loosely: ``Gebühren`` = ``gebuehren``, ``E-Mail`` = ``email``."""
    return re.sub(r"[^a-z0-9]", "", slug(name))


def _safe_url(value: str, what: str) -> str:
    value = clean(value)
    if not value:
        return ""
    if not re.match(r"^https?://[^\s/]+", value, re.IGNORECASE):
        raise _RecordError(
            f"{what} „{value[:80]}“ ist kein Link mit http:// oder https://. Bitte eine "
            "vollständige Adresse angeben."
        )
    if len(value) > MAX_URL:
        raise _RecordError(f"{what} ist länger als {MAX_URL} Zeichen. Bitte kürzen.")
    return value


def _check_source(source: str) -> str:
    source = clean(source)
    if not source or len(source) > MAX_SOURCE:
        raise KnowledgeImportError(
            f"Der Name der Quelle muss 1 bis {MAX_SOURCE} Zeichen lang sein. Bitte mit --quelle "
            "einen kürzeren Namen angeben."
        )
    return source


# --- HTML to text ------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_BLOCKS = _words(
    "p div section article main aside table tr thead tbody tfoot blockquote pre dl dt dd address "
    "figure figcaption form fieldset details summary hr center"
)
_SKIP = _words("script style noscript template svg nav header footer iframe button select")
_VOID = _words("br hr img input meta link area base col embed source track wbr")


class _HtmlText(HTMLParser):
    """HTML to the body convention: blocks become paragraphs, list items lines (``- …``),
    ``h2``–``h6`` ``## `` sections; the ``h1`` and ``<title>`` are kept apart as titles. When the
    page has a ``<main>``, only its content is kept."""

    def __init__(self, *, headings: bool = True) -> None:
        super().__init__(convert_charrefs=True)
        self.headings = headings
        self.blocks: list[tuple[bool, list[str]]] = []  # (inside <main>, lines)
        self.lines: list[str] = []
        self.pieces: list[str] = []
        self.prefix = ""
        self.lists: list[list[int]] = []  # per open list: [is_ordered, counter]
        self.skip = 0
        self.main = 0
        self.saw_main = False
        self.capture: str | None = None  # "title", "h1" or a heading tag
        self.captured: list[str] = []
        self.title = ""
        self.h1 = ""
        self.canonical = ""
        self.meta: dict[str, str] = {}
        self.bold = 0
        self.pseudo: set[int] = set()  # indexes of blocks that are bold lines made headings
        self.strong_only = True  # the open paragraph has only bold text so far

    # text flow
    def _flush_line(self) -> None:
        text = clean("".join(self.pieces))
        self.pieces = []
        if text:
            self.lines.append(self.prefix + text)
            self.prefix = "  " * len(self.lists) if self.lists else ""

    def _end_block(self) -> None:
        self._flush_line()
        if self.lines:
            self.blocks.append((self.main > 0, self.lines))
        self.lines = []
        self.prefix = ""
        self.strong_only = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "link" and "canonical" in values.get("rel", "").lower().split():
            self.canonical = values.get("href", "")
        if tag == "meta" and values.get("content"):
            name = (values.get("name") or values.get("property") or "").lower()
            self.meta[name] = values["content"]
        if tag in _SKIP:
            if tag not in _VOID:
                self.skip += 1
            return
        if self.skip:
            return
        if tag == "main" or values.get("role") == "main":
            self._end_block()  # what came before belongs outside
            self.main += 1
            self.saw_main = True
        if tag in ("title", "h1", "h2", "h3", "h4", "h5", "h6"):
            self._end_block()
            self.capture, self.captured = tag, []
        elif tag in ("ul", "ol"):
            if not self.lists:
                self._end_block()
            else:
                self._flush_line()
            self.lists.append([tag == "ol", 0])
        elif tag == "li":
            self._flush_line()
            if not self.lists:  # a stray <li>
                self.lists.append([False, 0])
            current = self.lists[-1]
            current[1] += 1
            marker = f"{current[1]}." if current[0] else "-"
            self.prefix = "  " * (len(self.lists) - 1) + marker + " "
        elif tag == "br":
            self._flush_line()
        elif tag in ("td", "th"):
            if self.pieces and clean("".join(self.pieces)):
                self.pieces.append(" | ")
        elif tag in _BLOCKS or tag in ("body", "html"):
            if self.lists:
                self._flush_line()
            else:
                self._end_block()
        elif tag in ("strong", "b"):
            self.bold += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip:
            return
        if tag == self.capture:
            text = clean("".join(self.captured))
            self.capture = None
            if tag == "title":
                self.title = self.title or text
            elif tag == "h1" and not self.h1:
                self.h1 = text
            elif text:
                line = f"## {text.rstrip(':')}" if self.headings else text
                self.blocks.append((self.main > 0, [line]))
            return
        if tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            if self.lists:
                self._flush_line()
            else:
                self._end_block()
        elif tag == "li":
            self._flush_line()
        elif tag in ("strong", "b"):
            self.bold = max(0, self.bold - 1)
        elif tag == "p" and not self.lists and self.strong_only and self.headings:
            self._flush_line()
            lines = self.lines
            if (
                len(lines) == 1
                and len(lines[0]) <= 80
                and not lines[0].startswith("- ")
                and not lines[0].endswith((".", "!"))
            ):
                # A paragraph of only bold text is how the catalogue writes a subheading.
                self.lines = [f"## {lines[0].rstrip(':').strip()}"]
                self._end_block()
                self.pseudo.add(len(self.blocks) - 1)
            self._end_block()
        elif tag in _BLOCKS:
            if self.lists:
                self._flush_line()
            else:
                self._end_block()
        if tag == "main" and self.main:
            self._end_block()
            self.main -= 1

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.capture:
            self.captured.append(data)
            return
        if not self.bold and data.strip():
            self.strong_only = False
        self.pieces.append(data)

    def text(self) -> str:
        self._end_block()
        kept = [
            (i in self.pseudo, lines)
            for i, (in_main, lines) in enumerate(self.blocks)
            if in_main or not self.saw_main
        ]
        # A bold line made a heading stays a plain line when no text follows it.
        out: list[str] = []
        for i, (pseudo, lines) in enumerate(kept):
            following = kept[i + 1][1] if i + 1 < len(kept) else None
            if pseudo and (following is None or following[0].startswith("## ")):
                out.append(lines[0][3:])
            else:
                out.append("\n".join(lines))
        return clean_body("\n\n".join(out))


def html_to_text(html: str, *, headings: bool = True) -> str:
    """Plain text of an HTML fragment or page in the body convention (see :class:`EntryData`);
    without ``headings`` no ``## `` lines are made (for facts)."""
    parser = _HtmlText(headings=headings)
    parser.feed(html or "")
    parser.close()
    return parser.text()


# --- facts ---------------------------------------------------------------------------------------

_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "nr", "nummer", "kennung", "schluessel", "external_id", "externe_id"),
    "title": ("title", "titel", "name", "leistung", "bezeichnung", "ueberschrift"),
    "body": ("body", "text", "beschreibung", "description", "inhalt", "content"),
    "url": ("url", "link", "webseite", "website", "seite"),
    "keywords": ("keywords", "schlagworte", "schlagwoerter", "stichworte", "suchbegriffe", "synonyme"),
    "leika": ("leika", "leika_key", "leikaschluessel", "leika_schluessel"),
    "language": ("language", "sprache"),
    "fees": ("fees", "gebuehren", "gebuehr", "kosten"),
    "required_documents": (
        "required_documents", "unterlagen", "dokumente", "mitzubringen", "erforderliche_unterlagen",
    ),
    "office": ("office", "zustaendig", "zustaendige_stelle", "zustaendigkeit", "amt", "stelle", "behoerde"),
    "address": ("address", "adresse", "anschrift"),
    "opening_hours": ("opening_hours", "oeffnungszeiten", "sprechzeiten"),
    "phone": ("phone", "telefon", "tel", "telefonnummer"),
    "email": ("email", "e_mail", "mail"),
    "online_url": ("online_url", "onlinedienst", "online_dienst", "onlineantrag", "online_antrag", "online"),
    "appointment_url": ("appointment_url", "termin", "terminvereinbarung", "termin_url", "terminbuchung"),
    "forms": ("forms", "formulare", "formular"),
}  # fmt: skip
FIELD_FOR_KEY = {_key(alias): name for name, aliases in _ALIASES.items() for alias in aliases}
_FORM_LINE = re.compile(
    r"^(?P<title>.*?)\s*(?:[:|–-]\s*|<\s*|\(\s*)?(?P<url>[a-z][a-z0-9+.-]*://\S+?)\s*[>)]?$", re.I
)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    text = str(value).strip()
    if not text:
        return []
    parts = re.split(r"\s*(?:\n|\||;)\s*", text)
    return [re.sub(r"^[-*•]\s+", "", p) for p in parts if p.strip()]


def _form(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        title = next((value[k] for k in ("title", "titel", "name") if value.get(k)), "")
        url = next((value[k] for k in ("url", "link", "href") if value.get(k)), "")
        title, url = clean(str(title)), str(url)
    else:
        match = _FORM_LINE.match(clean(str(value)))
        if not match:
            raise _RecordError(
                f"Das Formular „{clean(str(value))[:80]}“ hat keinen Link. Bitte als „Titel: "
                "https://…“ angeben."
            )
        title, url = match["title"].strip(" :|–-"), match["url"]
    url = _safe_url(url, "Der Link des Formulars")
    if not url:
        raise _RecordError(f"Das Formular „{title}“ hat keinen Link. Bitte ergänzen.")
    return {"title": title or url, "url": url}


def build_facts(values: dict[str, Any]) -> dict[str, Any]:
    """The structured facts from raw values keyed by fact name; links checked, lists split."""
    facts: dict[str, Any] = {}
    for name in FACTS:
        value = values.get(name)
        if value is None or value == "" or value == []:
            continue
        if name == "forms":
            forms = [_form(v) for v in _as_list(value)]
            if forms:
                facts[name] = forms
        elif name in LIST_FACTS:
            items = [clean(str(v)) for v in _as_list(value)]
            if items := [i for i in items if i]:
                facts[name] = items
        elif name.endswith("_url"):
            if url := _safe_url(str(value), f"Der Link „{FACTS[name]}“"):
                facts[name] = url
        else:
            text = value if isinstance(value, str) else "; ".join(map(str, _as_list(value)))
            if text := clean_body(str(text)):
                facts[name] = text
    return facts


def _entry_from_fields(
    values: dict[str, Any], *, source: str, external_id: str | None, fallback_title: str = ""
) -> EntryData:
    """An entry from field values keyed by canonical name (see ``_ALIASES``); raises
    :class:`_RecordError` with a German reason when the record is unusable."""
    title = clean(str(values.get("title") or "")) or fallback_title
    if not title:
        raise _RecordError(
            "Der Eintrag hat keinen Titel. Bitte die Spalte bzw. das Feld „title“ (oder „titel“, "
            "„name“) ausfüllen."
        )
    if len(title) > MAX_TITLE:
        raise _RecordError(f"Der Titel ist länger als {MAX_TITLE} Zeichen. Bitte kürzen.")
    raw_body = values.get("body") or ""
    raw_body = "\n\n".join(map(str, raw_body)) if isinstance(raw_body, list) else str(raw_body)
    body = html_to_text(raw_body) if _looks_like_html(raw_body) else clean_body(raw_body)
    facts = build_facts(values)
    if not body and not facts:
        raise _RecordError(
            f"Der Eintrag „{title}“ hat weder Text noch Angaben wie Gebühren oder Unterlagen. "
            "Bitte einen Text (Spalte „text“ oder „beschreibung“) ergänzen."
        )
    ident = clean(str(values.get("id") or "")) or external_id or slug(title)
    if not ident:
        raise _RecordError(
            "Aus dem Titel lässt sich keine Kennung bilden. Bitte eine Spalte „id“ angeben."
        )
    if len(ident) > MAX_EXTERNAL_ID:
        raise _RecordError(f"Die Kennung ist länger als {MAX_EXTERNAL_ID} Zeichen. Bitte kürzen.")
    keywords = values.get("keywords") or ""
    if isinstance(keywords, list):
        keywords = ", ".join(clean(str(k)) for k in keywords if clean(str(k)))
    return EntryData(
        source=source,
        external_id=ident,
        title=title,
        body=body,
        url=_safe_url(str(values.get("url") or ""), "Der Link der Seite"),
        keywords=clean(str(keywords)),
        leika_key=_leika(values.get("leika")),
        facts=facts,
        language=clean(str(values.get("language") or "de")).lower()[:8] or "de",
    )


def _leika(value: Any) -> str | None:
    digits = re.sub(r"\D", "", str(value or ""))
    if not digits:
        return None
    if len(digits) != 14:
        raise _RecordError(
            f"Der LeiKa-Schlüssel „{value}“ hat nicht 14 Ziffern. Bitte korrigieren oder leer lassen."
        )
    return digits


def _looks_like_html(text: str) -> bool:
    return bool(re.search(r"<(p|br|li|ul|ol|div|strong|a|h[1-6])\b[^>]*>", text, re.I))


def _fields(raw: dict[str, Any], unknown: set[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in raw.items():
        canonical = FIELD_FOR_KEY.get(_key(str(name)))
        if canonical is None:
            if str(name).strip():
                unknown.add(str(name))
        elif canonical not in values or values[canonical] in ("", None, []):
            values[canonical] = value
    return values


def _note_unknown(unknown: set[str], path: Path, report: ReadReport, what: str) -> None:
    if unknown:
        names = ", ".join(f"„{n}“" for n in sorted(unknown)[:10])
        report.notes.append(
            f"„{path.name}“: {what} {names} sind unbekannt und wurden nicht übernommen "
            f"(bekannt sind u. a. title, text, url, keywords, leika und {', '.join(FACTS)})."
        )


# --- Munich service catalogue ---------------------------------------------------------------------

_ONLINE_HOST = re.compile(r"buergerservice-?portal\.de|/intelliform/", re.I)


def _is_muenchen(doc: Any) -> bool:
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list) or not doc["data"]:
        return False
    first = doc["data"][0]
    return isinstance(first, dict) and {"id", "name", "description", "locations"} <= set(first)


def read_muenchen(path: Path, *, source: str = MUENCHEN_SOURCE) -> list[EntryData]:
    """The services of the Munich catalogue (``{"meta": …, "data": [service, …]}``, the format of
    it-at-m/eappointment): HTML to text, fees, forms and links as facts, ``meta.keywords`` as
    keywords, the service's public page (with ``{serviceId}`` filled in) as its link."""
    doc = _load_json(path)
    if not _is_muenchen(doc):
        raise KnowledgeImportError(
            f"„{path.name}“ ist kein Münchner Dienstleistungskatalog (erwartet: ein Objekt mit "
            "„data“, einer Liste von Leistungen mit id, name, description und locations). Bitte "
            "das Format mit --format json oder csv angeben."
        )
    entries = []
    for service in doc["data"]:
        if not isinstance(service, dict) or not service.get("id") or not service.get("name"):
            continue
        entries.append(_muenchen_entry(service, source))
    return entries


def _muenchen_entry(service: dict[str, Any], source: str) -> EntryData:
    sid = str(service["id"])
    meta = service.get("meta") or {}

    def link(template: Any) -> str:
        url = str(template or "").replace("{serviceId}", sid)
        return url if url.startswith(("https://", "http://")) and len(url) <= MAX_URL else ""

    appointment = link((service.get("appointment") or {}).get("link"))
    bookable = any(
        (loc.get("appointment") or {}).get("allowed") for loc in service.get("locations") or []
    )
    links = [
        (clean(str(item.get("name") or "")), str(item.get("link") or ""))
        for item in (service.get("forms") or service.get("links") or [])
        if isinstance(item, dict)
    ]
    links = [(name, url) for name, url in links if url.startswith(("https://", "http://"))]
    online = next(
        (
            url
            for name, url in links
            if (_ONLINE_HOST.search(url) and "kontakt" not in name.lower())
            or name.lower().startswith("online")
        ),
        "",
    )
    forms = [
        {"title": name or url, "url": url}
        for name, url in links
        if not re.search(r"datenschutz|dsgvo", name, re.I) and len(url) <= MAX_URL
    ]
    authorities = [a.get("name") for a in service.get("authorities") or [] if isinstance(a, dict)]
    facts = build_facts(
        {
            "fees": html_to_text(str(service.get("fees") or ""), headings=False),
            "office": ", ".join(clean(str(a)) for a in authorities if a),
            "online_url": online,
            "appointment_url": appointment if bookable else "",
        }
    )
    if forms:
        facts["forms"] = forms
    leika = re.sub(r"\D", "", str(service.get("leika") or ""))
    return EntryData(
        source=source,
        external_id=sid,
        title=clean(str(service["name"]))[:MAX_TITLE],
        body=html_to_text(str(service.get("description") or "")),
        url=link(meta.get("url")) or appointment,
        keywords=clean(str(meta.get("keywords") or "")),
        leika_key=leika if len(leika) == 14 else None,
        facts=facts,
        language=str(meta.get("locale") or "de")[:8],
    )


# --- generic CSV and JSON ---------------------------------------------------------------------------


def _delimiter(text: str) -> str:
    header: list[str] = []
    quoted = False
    for char in text[:65536]:
        if char == '"':
            quoted = not quoted
        elif char in "\r\n" and not quoted:
            break
        elif not quoted:
            header.append(char)
    counts = {d: header.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(
    path: Path, *, source: str = "csv", report: ReadReport | None = None
) -> Iterator[tuple[str, EntryData]]:
    """Rows of a CSV table with a header (``;``, ``,`` or tab; UTF-8 or Windows-1252).

    Columns are matched by name (``title``/``titel``/``name``, ``text``/``beschreibung``, ``url``,
    ``keywords``/``schlagworte``, ``leika``, ``id`` and every fact, also German: ``gebuehren``,
    ``unterlagen``, ``zustaendig``, ``oeffnungszeiten``, ``telefon`` …). List facts separate their
    items with ``;``, ``|`` or line breaks. Yields (where, entry); bad rows go to ``report``.
    """
    report = report if report is not None else ReadReport()
    text = _decode(path, report)
    if not text.strip():
        raise KnowledgeImportError(
            f"Die Datei „{path.name}“ ist leer. Bitte die richtige Datei wählen."
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for values in reader:
            rows.append((start, values))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise KnowledgeImportError(
            f"Die CSV-Datei „{path.name}“ ist ab Zeile {start} nicht lesbar (Anführungszeichen "
            "oder Trennzeichen stimmen nicht). Bitte die Zeile prüfen und erneut importieren."
        ) from exc
    header = [h.strip() for h in rows[0][1]]
    unknown: set[str] = set()
    columns = _fields({h: i for i, h in enumerate(header)}, unknown)
    if "title" not in columns:
        found = ", ".join(f"„{h}“" for h in header[:12]) or "keine"
        raise KnowledgeImportError(
            f"Die CSV-Datei „{path.name}“ hat keine Spalte für den Titel (title, titel oder "
            f"name). Gefundene Spalten: {found}. Bitte die erste Zeile prüfen."
        )
    _note_unknown(unknown, path, report, "Die Spalten")
    for line, cells in rows[1:]:
        if not any(c.strip() for c in cells):
            continue
        values = {name: cells[i] if i < len(cells) else "" for name, i in columns.items()}
        where = f"{path.name}, Zeile {line}"
        try:
            yield where, _entry_from_fields(values, source=source, external_id=None)
        except _RecordError as exc:
            report.failed.append((where, str(exc)))


_JSON_LISTS = ("entries", "eintraege", "data", "items", "leistungen", "services")


def read_json(
    path: Path, *, source: str = "json", report: ReadReport | None = None
) -> Iterator[tuple[str, EntryData]]:
    """Objects of a JSON list (or of a list under ``entries``/``eintraege``/``data``/``items``)
    with the same field names as the CSV columns; lists may be JSON arrays, forms objects
    ``{"title", "url"}``. Yields (where, entry); bad objects go to ``report``."""
    report = report if report is not None else ReadReport()
    doc = _load_json(path, report)
    items = doc
    if isinstance(doc, dict):
        items = next((doc[k] for k in _JSON_LISTS if isinstance(doc.get(k), list)), None)
    if not isinstance(items, list):
        raise KnowledgeImportError(
            f"Die Datei „{path.name}“ enthält keine Liste von Einträgen. Erwartet wird eine "
            "JSON-Liste von Objekten (oder ein Objekt mit „entries“). Bitte den Aufbau prüfen."
        )
    unknown: set[str] = set()
    for number, item in enumerate(items, start=1):
        where = f"{path.name}, Eintrag {number}"
        if not isinstance(item, dict):
            report.failed.append(
                (where, "Der Eintrag ist kein JSON-Objekt. Bitte als {…} angeben.")
            )
            continue
        try:
            yield where, _entry_from_fields(_fields(item, unknown), source=source, external_id=None)
        except _RecordError as exc:
            report.failed.append((where, str(exc)))
    _note_unknown(unknown, path, report, "Die Felder")


# --- Markdown ------------------------------------------------------------------------------------


def _front_matter(path: Path, lines: list[str]) -> tuple[dict[str, Any], list[str]]:
    """``---`` / ``key: value`` / ``---`` at the top; a key without value takes ``- item`` lines."""
    if not lines or lines[0].strip() != "---":
        return {}, lines
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() in ("---", "..."))
    except StopIteration:
        raise KnowledgeImportError(
            f"Der Kopfbereich von „{path.name}“ beginnt mit --- , wird aber nicht mit --- "
            "abgeschlossen. Bitte die Zeile --- nach den Angaben ergänzen."
        ) from None
    values: dict[str, Any] = {}
    current: str | None = None
    for number, raw in enumerate(lines[1:end], start=2):
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = re.match(r"^\s*-\s+(.*)$", line)
        if item and current is not None:
            if not isinstance(values[current], list):
                values[current] = []
            values[current].append(_unquote(item[1]))
            continue
        match = re.match(r"^([A-Za-zÄÖÜäöüß_][\w\- ]*?)\s*:\s*(.*)$", line)
        if not match:
            raise KnowledgeImportError(
                f"Zeile {number} im Kopfbereich von „{path.name}“ ist keine Angabe der Form "
                "„name: wert“. Bitte korrigieren (Listen als Zeilen mit „- “)."
            )
        current = match[1].strip()
        values[current] = _unquote(match[2]) if match[2].strip() else []
    return values, lines[end + 1 :]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


_MD_INLINE = (
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images: alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links: their text
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)"), r"\1"),
    (re.compile(r"`([^`]*)`"), r"\1"),
    (re.compile(r"<[^>]+>"), ""),
)


def _md_inline(text: str) -> str:
    for pattern, replacement in _MD_INLINE:
        text = pattern.sub(replacement, text)
    return text


def markdown_to_text(lines: list[str]) -> tuple[str, str]:
    """(title, body) of Markdown lines: the first ``# `` heading is the title; other headings
    become ``## `` sections, list items ``- `` lines, paragraph lines are joined."""
    title = ""
    blocks: list[list[str]] = []
    current: list[str] = []

    def end() -> None:
        nonlocal current
        if current:
            blocks.append(current)
        current = []

    fence = False
    for raw in lines:
        line = raw.rstrip()
        if line.strip().startswith(("```", "~~~")):
            fence = not fence
            end()
            continue
        if fence:
            current.append(line.strip())
            continue
        heading = re.match(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if heading:
            end()
            text = clean(_md_inline(heading[2]))
            if heading[1] == "#" and not title:
                title = text
            elif text:
                blocks.append([f"## {text}"])
            continue
        if not line.strip() or re.match(r"^\s*([-*_])(\s*\1){2,}\s*$", line):
            end()
            continue
        item = re.match(r"^(\s*)(?:[-*+•]|(\d+)[.)])\s+(.*)$", line)
        text = clean(_md_inline(item[3] if item else line.lstrip("> ")))
        if item:
            marker = f"{item[2]}." if item[2] else "-"
            indent = "  " if len(item[1]) >= 2 else ""
            current.append(f"{indent}{marker} {text}")
        elif current and not re.match(r"^\s*(-|\d+\.)\s", current[-1]) and not raw.endswith("  "):
            current[-1] = f"{current[-1]} {text}"
        elif current and raw.startswith((" ", "\t")) and re.match(r"^\s*(-|\d+\.)\s", current[-1]):
            current[-1] = f"{current[-1]} {text}"  # continuation of a list item
        else:
            current.append(text)
    end()
    return title, clean_body("\n\n".join("\n".join(b) for b in blocks))


def read_markdown(
    path: Path,
    *,
    source: str = "markdown",
    external_id: str | None = None,
    report: ReadReport | None = None,
) -> EntryData:
    """One entry per Markdown file; an optional front matter holds url, keywords, leika and facts
    (e.g. ``gebuehren: 37,00 €`` or ``unterlagen:`` followed by ``- …`` lines)."""
    lines = _decode(path, report).replace("\r\n", "\n").split("\n")
    front, rest = _front_matter(path, lines)
    unknown: set[str] = set()
    values = _fields(front, unknown)
    if unknown:
        names = ", ".join(f"„{n}“" for n in sorted(unknown))
        raise KnowledgeImportError(
            f"Im Kopfbereich von „{path.name}“ sind die Angaben {names} unbekannt. Bekannt sind "
            f"id, title, url, keywords, leika, language und {', '.join(FACTS)} (auch deutsch, "
            "z. B. gebuehren, unterlagen, zustaendig). Bitte korrigieren."
        )
    title, body = markdown_to_text(rest)
    values["title"] = values.get("title") or title
    values["body"] = body
    return _file_entry(path, values, source, external_id)


def _file_entry(
    path: Path, values: dict[str, Any], source: str, external_id: str | None
) -> EntryData:
    try:
        return _entry_from_fields(
            values,
            source=source,
            external_id=external_id or path.name,
            fallback_title=_title_from_name(path),
        )
    except _RecordError as exc:
        raise KnowledgeImportError(f"„{path.name}“: {exc}") from exc


def _title_from_name(path: Path) -> str:
    return clean(re.sub(r"[_-]+", " ", path.stem)).capitalize()


# --- HTML pages and PDFs -------------------------------------------------------------------------


def read_html(
    path: Path,
    *,
    source: str = "html",
    external_id: str | None = None,
    report: ReadReport | None = None,
) -> EntryData:
    """One entry per HTML page: title from ``<h1>`` (else ``<title>``), the text of ``<main>``
    (else of the page) without navigation, header, footer and scripts; the canonical link as
    url and ``<meta name="keywords">`` as keywords."""
    parser = _HtmlText()
    parser.feed(_decode(path, report))
    parser.close()
    body = parser.text()
    canonical = parser.canonical or parser.meta.get("og:url", "")
    values = {
        "title": parser.h1 or parser.title,
        "body": body,
        "url": canonical if canonical.startswith(("https://", "http://")) else "",
        "keywords": parser.meta.get("keywords", ""),
    }
    if not body.strip():
        raise KnowledgeImportError(
            f"Die HTML-Seite „{path.name}“ enthält keinen lesbaren Text. Bitte prüfen, ob die "
            "Seite vollständig gespeichert wurde."
        )
    return _file_entry(path, values, source, external_id)


def read_pdf(path: Path, *, source: str = "pdf", external_id: str | None = None) -> EntryData:
    """One entry per PDF, read with the same text extraction (and OCR for scans) as the inbox;
    title from the document's metadata, else its first line."""
    from rathaus.inbox.documents import extract

    data = _read_bytes(path)
    result = extract(data, path.name, "application/pdf")
    if result.media_type != "application/pdf":
        raise KnowledgeImportError(
            f"„{path.name}“ ist keine PDF-Datei. Bitte die Datei prüfen oder das Format mit "
            "--format angeben."
        )
    if result.error:
        reason = result.error.split(". ")[0].rstrip(".")
        raise KnowledgeImportError(
            f"Die PDF-Datei „{path.name}“ kann nicht gelesen werden: {reason}. Bitte eine "
            "lesbare Fassung der Datei importieren."
        )
    body = _pdf_paragraphs(result.text)
    if not body:
        raise KnowledgeImportError(
            f"Die PDF-Datei „{path.name}“ enthält keinen lesbaren Text. Bitte eine Fassung mit "
            "Text importieren."
        )
    title = _pdf_title(data)
    if not title:
        # The first line of the document is its title (and is not repeated in the body).
        first = next((clean(line) for line in result.text.split("\n") if clean(line)), "")
        if len(first) <= 120 and body.startswith(first):
            title, body = first, body[len(first) :].strip() or body
    return _file_entry(path, {"title": title, "body": body}, source, external_id)


def _pdf_title(data: bytes) -> str:
    from pypdf import PdfReader

    try:
        info = PdfReader(io.BytesIO(data), strict=False).metadata
        title = clean(str(info.title or "")) if info else ""
    except Exception:  # metadata is optional; a damaged info dictionary is ignored
        return ""
    # Office exports often leave a template name or the file name as the title.
    if not title or title.lower().endswith((".doc", ".docx", ".pdf")) or title.lower() in (
        "untitled", "ohne titel", "microsoft word"
    ):  # fmt: skip
        return ""
    return title[:MAX_TITLE]


def _pdf_paragraphs(text: str) -> str:
    """PDF text lines to paragraphs: lines of a paragraph joined, hyphenation undone, a short
    line ending a sentence ends the paragraph; bullets start their own line."""
    paragraphs: list[str] = []
    for page in text.split("\f"):
        lines = [clean(line) for line in page.split("\n")]
        width = max((len(line) for line in lines), default=0)
        current = ""
        short = False  # the previous line ended before the right margin
        for line in lines:
            if not line:
                if current:
                    paragraphs.append(current)
                current = ""
                continue
            bullet = re.match(r"^[•▪◦·\-–*]\s*(.*)$", line)
            if bullet:
                current = f"{current}\n- {bullet[1]}" if current else f"- {bullet[1]}"
            elif short and current.rpartition("\n")[2].startswith("- "):
                paragraphs.append(current)  # text after a list
                current = line
            elif current.endswith("-") and line[:1].islower() and not current.endswith(" -"):
                current = current[:-1] + line
            else:
                current = f"{current} {line}" if current else line
            short = len(line) < 0.8 * width
            if line.endswith((".", "!", "?", ":")) and short:
                paragraphs.append(current)
                current = ""
        if current:
            paragraphs.append(current)
    return clean_body("\n\n".join(paragraphs))


# --- the demo municipality -----------------------------------------------------------------------

DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_SOURCE = "demo"


def demo_entries() -> list[EntryData]:
    """The service pages of the demo municipality Musterstadt (``assistant/demo/*.md``)."""
    return list(read_entries(DEMO_DIR, "markdown", source=DEMO_SOURCE))
