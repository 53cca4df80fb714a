"""Knowledge import: every format from small files written here, the Munich catalogue from the
shared data, and every kind of file that does not parse (a German error, nothing returned)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from rathaus.assistant.entries import FACTS
from rathaus.assistant.importers import (
    DEMO_DIR,
    KnowledgeImportError,
    ReadReport,
    demo_entries,
    detect_format,
    html_to_text,
    read_entries,
)
from rathaus.core.demo import read_demo_file
from tests.inbox.test_documents import text_pdf

REPO = Path(__file__).resolve().parents[2]
MUENCHEN_FILE = REPO.parent / "shared" / "data" / "knowledge" / "muenchen_services_de.json"


def read(path: Path, fmt: str | None = None, **kwargs):  # type: ignore[no-untyped-def]
    report = ReadReport()
    entries = list(read_entries(path, fmt, report=report, **kwargs))
    return entries, report


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


# --- Munich service catalogue ------------------------------------------------------------------

needs_muenchen = pytest.mark.skipif(
    not MUENCHEN_FILE.exists(),
    reason=f"Münchner Dienstleistungskatalog fehlt ({MUENCHEN_FILE}); Test übersprungen.",
)


@needs_muenchen
def test_muenchen_catalogue_is_read_completely():
    assert detect_format(MUENCHEN_FILE) == "muenchen"
    entries, report = read(MUENCHEN_FILE)
    assert len(entries) == 287 and report.failed == [] and report.files == 1
    assert len({e.external_id for e in entries}) == 287
    assert {e.source for e in entries} == {"muenchen-dldb"}
    for entry in entries:
        everything = entry.body + json.dumps(entry.facts, ensure_ascii=False)
        assert not re.search(r"<[a-zA-Z/][^>]*>", everything), entry.external_id
        assert (
            "\u200b" not in everything and "&nbsp;" not in everything and "\xa0" not in everything
        )
        assert "{serviceId}" not in everything + entry.url
        assert entry.url.startswith("https://") and entry.external_id in entry.url
        assert entry.leika_key is None or re.fullmatch(r"\d{14}", entry.leika_key)
        assert "\n\n\n" not in entry.body
    # Facts as fields: fees for the 193 services that state them, forms, links.
    assert sum("fees" in e.facts for e in entries) == 193
    assert sum("forms" in e.facts for e in entries) > 150
    assert sum("online_url" in e.facts for e in entries) > 10
    assert sum("appointment_url" in e.facts for e in entries) > 250
    raw = json.loads(MUENCHEN_FILE.read_text(encoding="utf-8"))["data"]
    assert sum(bool(e.keywords) for e in entries) == sum(bool(s["meta"]["keywords"]) for s in raw)
    assert all(e.facts.get("office") == "Stadtverwaltung München" for e in entries)
    # No data-protection boilerplate among the forms.
    forms = [f["title"] for e in entries for f in e.facts.get("forms", [])]
    assert not any("Datenschutz" in t for t in forms)

    gewerbe = next(e for e in entries if e.external_id == "1063423")
    assert gewerbe.title == "Gewerbe-Anmeldung"
    assert gewerbe.facts["fees"] == "50 bis 60 Euro (abhängig von der Rechtsform)"
    assert gewerbe.body.startswith("Sie haben eine gewerbliche Niederlassung")
    assert "## So funktioniert die Online-Anmeldung\n\n1. Anmeldung starten\n" in gewerbe.body
    assert gewerbe.leika_key == "99050012104000"
    assert "Gewerbeanmeldung" in gewerbe.keywords
    assert gewerbe.facts["appointment_url"].endswith("/services/1063423")
    kfz = next(e for e in entries if e.external_id == "1063424")
    assert "\n- Sie haben die Möglichkeit, ein Wunschkennzeichen zu beantragen.\n" in kfz.body
    assert kfz.facts["online_url"].startswith("https://www.buergerservice-portal.de/")
    assert {"title": "Vollmacht", "url": kfz.facts["forms"][0]["url"]} == kfz.facts["forms"][0]
    # Fees are a fact, not a section: no heading lines in them.
    assert not any("## " in e.facts.get("fees", "") for e in entries)


def test_muenchen_format_from_a_small_file(tmp_path):
    service = {
        "id": "42",
        "name": "Hund\u200b anmelden",
        "description": "<p>\u200bText&nbsp;mit <strong>fett</strong>.</p><ul><li>eins</li><li>zwei</li></ul>",
        "fees": "<p>10 Euro<br>ermäßigt 5 Euro</p>",
        "meta": {"url": "https://example.org/#/services/{serviceId}", "keywords": "Hund, Steuer"},
        "authorities": [{"name": "Stadtverwaltung"}],
        "locations": [{"appointment": {"allowed": True}}],
        "appointment": {"link": "https://example.org/termin/{serviceId}"},
        "links": [],
        "forms": [
            {"name": "Antrag", "link": "https://example.org/antrag.pdf"},
            {"name": "Schadcode", "link": "javascript:alert(1)"},
        ],
        "leika": "",
    }
    path = write(tmp_path / "katalog.json", json.dumps({"meta": {}, "data": [service]}))
    (entry,), report = read(path)
    assert entry.source == "muenchen-dldb" and entry.external_id == "42"
    assert entry.title == "Hund anmelden"
    assert entry.body == "Text mit fett.\n\n- eins\n- zwei"
    assert entry.url == "https://example.org/#/services/42"
    assert entry.facts == {
        "fees": "10 Euro\nermäßigt 5 Euro",
        "office": "Stadtverwaltung",
        "appointment_url": "https://example.org/termin/42",
        "forms": [{"title": "Antrag", "url": "https://example.org/antrag.pdf"}],
    }
    assert entry.leika_key is None and entry.keywords == "Hund, Steuer"


# --- HTML to text ------------------------------------------------------------------------------


def test_html_to_text_keeps_paragraphs_lists_and_sections():
    html = (
        "<p>Erster&nbsp;Absatz\n mit   Umbruch.</p><p><strong>Unterlagen:</strong></p>"
        "<ol><li>Ausweis</li><li>Foto<br>biometrisch</li></ol><h3>Kosten</h3><p>5 Euro</p>"
        "<script>alert(1)</script><style>p{}</style><p>&lt;b&gt; bleibt Text</p>"
    )
    assert html_to_text(html) == (
        "Erster Absatz mit Umbruch.\n\n## Unterlagen\n\n1. Ausweis\n2. Foto\nbiometrisch"
        "\n\n## Kosten\n\n5 Euro\n\n<b> bleibt Text"
    )
    # A bold paragraph that is a sentence, or that is followed by no text, stays text.
    assert html_to_text("<p><b>Wichtig: bitte Termin buchen.</b></p><p>Mehr.</p>") == (
        "Wichtig: bitte Termin buchen.\n\nMehr."
    )
    assert html_to_text("<p><b>Ende</b></p>") == "Ende"
    assert html_to_text("") == ""


# --- CSV ---------------------------------------------------------------------------------------

CSV_TEXT = (
    "id;Titel;Beschreibung;Gebühren;Unterlagen;Zuständig;Telefon;Formulare;Schlagworte;URL;Farbe\n"
    '1;Personalausweis;"Antrag im Bürgeramt.\n\nDauer drei Wochen.";37,00 €;'
    '"Ausweis; Passfoto";Bürgeramt;01234 5;"Antrag: https://x.de/a.pdf";Ausweis, Perso;'
    "https://x.de/ausweis;rot\n"
    ";Sperrmüll anmelden;Zweimal im Jahr kostenlos.;;;;;;;;\n"
)


def test_csv_with_german_columns(tmp_path):
    path = write(tmp_path / "leistungen.csv", CSV_TEXT)
    assert detect_format(path) == "csv"
    entries, report = read(path)
    assert report.failed == []
    ausweis, sperr = entries
    assert ausweis.source == "csv" and ausweis.external_id == "1"
    assert ausweis.title == "Personalausweis"
    assert ausweis.body == "Antrag im Bürgeramt.\n\nDauer drei Wochen."
    assert ausweis.url == "https://x.de/ausweis" and ausweis.keywords == "Ausweis, Perso"
    assert ausweis.facts == {
        "fees": "37,00 €",
        "required_documents": ["Ausweis", "Passfoto"],
        "office": "Bürgeramt",
        "phone": "01234 5",
        "forms": [{"title": "Antrag", "url": "https://x.de/a.pdf"}],
    }
    # Without an id the title gives a stable one.
    assert sperr.external_id == "sperrmuell-anmelden" and sperr.facts == {}
    assert any("„Farbe“" in note and "unbekannt" in note for note in report.notes)


def test_csv_bad_rows_are_reported_and_the_rest_is_imported(tmp_path):
    text = (
        "title,text,url,leika\n"
        "Gut,Ein Text.,https://x.de/gut,\n"
        ",Text ohne Titel,,\n"
        "Böser Link,Text,javascript:alert(1),\n"
        "Leer,,,\n"
        "Gut,Gleicher Titel noch einmal.,,\n"
        "Falscher Schlüssel,Text,,123\n"
        "Auch gut,Noch ein Text.,,99008001000000\n"
    )
    entries, report = read(write(tmp_path / "liste.csv", text))
    assert [e.title for e in entries] == ["Gut", "Auch gut"]
    assert entries[1].leika_key == "99008001000000"
    failed = dict(report.failed)
    assert set(failed) == {
        "liste.csv, Zeile 3",
        "liste.csv, Zeile 4",
        "liste.csv, Zeile 5",
        "liste.csv, Zeile 6",
        "liste.csv, Zeile 7",
    }
    assert "keinen Titel" in failed["liste.csv, Zeile 3"]
    assert "kein Link mit http:// oder https://" in failed["liste.csv, Zeile 4"]
    assert "weder Text noch Angaben" in failed["liste.csv, Zeile 5"]
    assert "kommt schon vor (liste.csv, Zeile 2)" in failed["liste.csv, Zeile 6"]
    assert "nicht 14 Ziffern" in failed["liste.csv, Zeile 7"]


def test_csv_encodings(tmp_path):
    text = "titel;text\nGebühren für Straßenfeste;Öffentliche Flächen kosten Gebühr.\n"
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    (entry,), report = read(bom)
    assert entry.title == "Gebühren für Straßenfeste" and report.notes == []
    (entry,), report = read(write(tmp_path / "excel.csv", text, "cp1252"))
    assert entry.body == "Öffentliche Flächen kosten Gebühr."
    assert any("Windows-1252" in note for note in report.notes)


def test_malformed_csv_files_raise_german_errors(tmp_path):
    with pytest.raises(KnowledgeImportError) as caught:
        read(write(tmp_path / "ohne.csv", "name_x;text\nA;B\n"))
    assert "keine Spalte für den Titel" in caught.value.message
    assert "„name_x“" in caught.value.message
    with pytest.raises(KnowledgeImportError) as caught:
        read(write(tmp_path / "kaputt.csv", 'title,text\nA,"B"C\nD,E\n'))
    assert "„kaputt.csv“ ist ab Zeile 2 nicht lesbar" in caught.value.message
    with pytest.raises(KnowledgeImportError) as caught:
        read(write(tmp_path / "leer.csv", "  \n"))
    assert "ist leer" in caught.value.message
    binary = tmp_path / "bild.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(KnowledgeImportError) as caught:
        read(binary)
    assert "keine Textdatei" in caught.value.message


# --- JSON --------------------------------------------------------------------------------------


def test_generic_json(tmp_path):
    doc = {
        "eintraege": [
            {
                "id": "hund",
                "name": "Hundesteuer",
                "text": ["Absatz eins.", "Absatz zwei."],
                "keywords": ["Hund", "Steuer"],
                "unterlagen": ["Formular", "Chipnummer"],
                "formulare": [{"titel": "Anmeldung", "url": "https://x.de/hund.pdf"}],
                "oeffnungszeiten": "Mo–Fr 8–12 Uhr",
                "online_url": "https://x.de/online",
                "language": "de",
            },
            "kein Objekt",
            {"title": "HTML-Text", "description": "<p>Eins</p><ul><li>a</li></ul>"},
        ]
    }
    path = write(tmp_path / "wissen.json", json.dumps(doc))
    assert detect_format(path) == "json"
    entries, report = read(path)
    hund, html = entries
    assert hund.external_id == "hund" and hund.body == "Absatz eins.\n\nAbsatz zwei."
    assert hund.keywords == "Hund, Steuer"
    assert hund.facts["required_documents"] == ["Formular", "Chipnummer"]
    assert hund.facts["forms"] == [{"title": "Anmeldung", "url": "https://x.de/hund.pdf"}]
    assert hund.facts["opening_hours"] == "Mo–Fr 8–12 Uhr"
    assert html.body == "Eins\n\n- a"
    assert report.failed == [("wissen.json, Eintrag 2", report.failed[0][1])]
    assert "kein JSON-Objekt" in report.failed[0][1]
    # A plain list works as well.
    entries, _ = read(write(tmp_path / "liste.json", json.dumps([{"title": "A", "body": "B"}])))
    assert entries[0].title == "A" and entries[0].source == "json"


def test_malformed_json_names_the_line(tmp_path):
    path = write(
        tmp_path / "kaputt.json", '[\n  {"title": "A",\n   "text": "B"\n  {"title": "C"}\n]'
    )
    with pytest.raises(KnowledgeImportError) as caught:
        read(path)
    message = caught.value.message
    assert message == (
        "Die Datei „kaputt.json“ ist kein gültiges JSON: In Zeile 4, Spalte 3 fehlt ein Komma. "
        "Bitte die Stelle korrigieren und erneut importieren."
    )
    with pytest.raises(KnowledgeImportError) as caught:
        read(write(tmp_path / "objekt.json", '{"titel": "A"}'))
    assert "keine Liste von Einträgen" in caught.value.message


# --- Markdown ----------------------------------------------------------------------------------

MARKDOWN = """---
url: https://www.musterstadt.de/sperrmuell
keywords: Sperrmüll, Möbel
gebuehren: "2 Abholungen frei, danach 35,00 €"
unterlagen:
  - Anschrift
  - Liste der Gegenstände
formulare:
  - Anmeldung: https://www.musterstadt.de/sperrmuell.pdf
telefon: 01234 5678-700
---

# Sperrmüll anmelden

Große Gegenstände holt die **Abfallwirtschaft** ab;
zweimal im Jahr [kostenlos](https://x.de).

## So geht es

- online anmelden
- Termin abwarten

### Was nicht dazu gehört

Elektrogeräte.
"""


def test_markdown_with_front_matter(tmp_path):
    path = write(tmp_path / "sperrmuell.md", MARKDOWN)
    (entry,), _ = read(path)
    assert entry.source == "markdown" and entry.external_id == "sperrmuell.md"
    assert entry.title == "Sperrmüll anmelden"
    assert entry.body == (
        "Große Gegenstände holt die Abfallwirtschaft ab; zweimal im Jahr kostenlos.\n\n"
        "## So geht es\n\n- online anmelden\n- Termin abwarten\n\n"
        "## Was nicht dazu gehört\n\nElektrogeräte."
    )
    assert entry.url == "https://www.musterstadt.de/sperrmuell"
    assert entry.keywords == "Sperrmüll, Möbel"
    assert entry.facts == {
        "fees": "2 Abholungen frei, danach 35,00 €",
        "required_documents": ["Anschrift", "Liste der Gegenstände"],
        "phone": "01234 5678-700",
        "forms": [{"title": "Anmeldung", "url": "https://www.musterstadt.de/sperrmuell.pdf"}],
    }


def test_markdown_without_heading_takes_the_file_name(tmp_path):
    (entry,), report = read(write(tmp_path / "bürger_büro.md", "Öffnungszeiten: Mo–Fr.\n"))
    assert entry.title == "Bürger büro" and entry.body == "Öffnungszeiten: Mo–Fr."
    assert report.notes == []
    # Windows-1252 is read, with a note to check the umlauts.
    (entry,), report = read(write(tmp_path / "alt.md", "# Gebühren\nFür Straßen.\n", "cp1252"))
    assert entry.title == "Gebühren" and entry.body == "Für Straßen."
    assert len(report.notes) == 1 and "„alt.md“ ist nicht UTF-8-kodiert" in report.notes[0]


def test_malformed_markdown_front_matter(tmp_path):
    with pytest.raises(KnowledgeImportError) as caught:
        read(write(tmp_path / "a.md", "---\nurl: https://x.de\n# Titel\n"))
    assert "nicht mit --- abgeschlossen" in caught.value.message
    with pytest.raises(KnowledgeImportError) as caught:
        read(write(tmp_path / "b.md", "---\nfarbe: rot\n---\n# Titel\nText\n"))
    assert "„farbe“ unbekannt" in caught.value.message
    with pytest.raises(KnowledgeImportError) as caught:
        read(write(tmp_path / "c.md", "---\nnur text\n---\n# Titel\nText\n"))
    assert "Zeile 2 im Kopfbereich von „c.md“" in caught.value.message
    with pytest.raises(KnowledgeImportError) as caught:
        read(write(tmp_path / "d.md", "---\nurl: javascript:alert(1)\n---\n# T\nText\n"))
    assert caught.value.message.startswith("„d.md“: Der Link der Seite")


# --- HTML pages --------------------------------------------------------------------------------

PAGE = """<!doctype html><html><head><title>Wohngeld – Stadt Musterstadt</title>
<meta charset="utf-8"><meta name="keywords" content="Wohngeld, Mietzuschuss">
<link rel="canonical" href="https://www.musterstadt.de/wohngeld"></head>
<body><header><a href="/">Startseite</a></header><nav><ul><li>Menü</li></ul></nav>
<main><h1>Wohngeld beantragen</h1><p>Ein Zuschuss zur Miete.</p>
<h2>Unterlagen</h2><ul><li>Mietvertrag</li><li>Einkommen</li></ul>
<script>var x = "<p>nicht</p>";</script></main>
<footer>Impressum</footer></body></html>"""


def test_html_page(tmp_path):
    path = write(tmp_path / "seiten" / "wohngeld.html", PAGE)
    (entry,), _ = read(path)
    assert entry.source == "html" and entry.external_id == "wohngeld.html"
    assert entry.title == "Wohngeld beantragen"
    assert entry.body == "Ein Zuschuss zur Miete.\n\n## Unterlagen\n\n- Mietvertrag\n- Einkommen"
    assert entry.url == "https://www.musterstadt.de/wohngeld"
    assert entry.keywords == "Wohngeld, Mietzuschuss"
    # Without <main> and <h1>: the whole body without navigation, the <title> as title.
    plain = "<html><head><title>Kita</title></head><body><nav>Menü</nav><p>Plätze.</p></body>"
    (entry,), _ = read(write(tmp_path / "kita.htm", plain))
    assert entry.title == "Kita" and entry.body == "Plätze."
    with pytest.raises(KnowledgeImportError) as caught:
        read(write(tmp_path / "leer.html", "<html><nav>Menü</nav></html>"))
    assert "keinen lesbaren Text" in caught.value.message


# --- PDF ---------------------------------------------------------------------------------------


def _with_title(pdf: bytes, title: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_title_from_metadata_or_first_line(tmp_path):
    lines = [
        "Merkblatt Hundesteuer",
        "Die Hundesteuer wird jedes Jahr zum 1. Juli fällig und beträgt",
        "108 Euro für den ersten Hund.",
        "Ein Hund ist binnen eines Monats anzumelden.",
    ]
    path = tmp_path / "merkblatt.pdf"
    path.write_bytes(text_pdf(lines))
    assert detect_format(path) == "pdf"
    (entry,), _ = read(path)
    assert entry.source == "pdf" and entry.external_id == "merkblatt.pdf"
    assert entry.title == "Merkblatt Hundesteuer"
    assert entry.body.startswith(
        "Die Hundesteuer wird jedes Jahr zum 1. Juli fällig und beträgt 108"
    )
    path.write_bytes(_with_title(text_pdf(lines), "Hundesteuer in Musterstadt"))
    (entry,), _ = read(path)
    assert entry.title == "Hundesteuer in Musterstadt"
    assert entry.body.startswith("Merkblatt Hundesteuer")


def test_damaged_pdf_raises_a_german_error(tmp_path):
    path = tmp_path / "kaputt.pdf"
    path.write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 50)
    with pytest.raises(KnowledgeImportError) as caught:
        read(path)
    message = caught.value.message
    assert message.startswith("Die PDF-Datei „kaputt.pdf“ kann nicht gelesen werden")
    assert "Bitte" in message and "Original ist gespeichert" not in message


# --- folders, formats, identity ------------------------------------------------------------------


def test_folder_imports_every_supported_file_with_stable_ids(tmp_path):
    root = tmp_path / "wissen"
    write(root / "a.md", "# A\nText A.\n")
    write(root / "unter" / "b.md", "# B\nText B.\n")
    write(root / "unter" / "c.html", "<h1>C</h1><p>Text C.</p>")
    write(root / "tabelle.csv", "titel;text\nD;Text D.\n")
    write(root / "notiz.txt", "nicht unterstützt")
    write(root / ".versteckt.md", "# X\nY\n")
    entries, report = read(root)
    assert [(e.source, e.external_id) for e in entries] == [
        ("markdown", "a.md"),
        ("csv", "d"),
        ("markdown", "unter/b.md"),
        ("html", "unter/c.html"),
    ]
    assert report.files == 4
    assert any("notiz.txt" in note for note in report.notes)
    only_md, _ = read(root, "md", source="handbuch")
    assert [(e.source, e.external_id) for e in only_md] == [
        ("handbuch", "a.md"),
        ("handbuch", "unter/b.md"),
    ]
    # The same content gives the same identity and hash on every run.
    again, _ = read(root)
    assert [e.content_sha256() for e in again] == [e.content_sha256() for e in entries]


def test_folder_with_a_broken_file_raises(tmp_path):
    write(tmp_path / "gut.md", "# Gut\nText.\n")
    write(tmp_path / "kaputt.json", "{")
    with pytest.raises(KnowledgeImportError) as caught:
        read(tmp_path)
    assert "„kaputt.json“ ist kein gültiges JSON" in caught.value.message


def test_unknown_and_missing_inputs(tmp_path):
    with pytest.raises(KnowledgeImportError) as caught:
        read(write(tmp_path / "notiz.txt", "Text"))
    assert "Format der Datei „notiz.txt“ ist unbekannt" in caught.value.message
    assert "--format" in caught.value.message
    with pytest.raises(KnowledgeImportError) as caught:
        read(tmp_path / "fehlt.csv")
    assert "gibt es nicht" in caught.value.message
    with pytest.raises(KnowledgeImportError) as caught:
        read(tmp_path / "notiz.txt", "docx")
    assert "Das Format „docx“ ist unbekannt" in caught.value.message
    empty = tmp_path / "leer"
    empty.mkdir()
    with pytest.raises(KnowledgeImportError) as caught:
        read(empty)
    assert "keine lesbare Wissensdatei" in caught.value.message
    # A forced format reads a file whatever its ending.
    (entry,), _ = read(write(tmp_path / "seite.txt", "# Titel\nText.\n"), "markdown")
    assert entry.title == "Titel"


# --- the demo municipality -------------------------------------------------------------------------


def test_demo_pages_match_musterstadt():
    entries = demo_entries()
    assert len(entries) == len(list(DEMO_DIR.glob("*.md"))) >= 12
    base = read_demo_file("musterstadt.json")
    phones = {u["phone"] for u in base["org_units"]}
    for entry in entries:
        assert entry.source == "demo" and entry.external_id.endswith(".md")
        assert entry.url.startswith("https://www.musterstadt.de/")
        assert entry.body and entry.keywords
        assert set(entry.facts) <= set(FACTS)
        assert entry.facts["phone"] in phones, entry.external_id
        assert "12345 Musterstadt" in entry.facts["address"]
        links = [entry.facts.get("online_url", ""), entry.facts.get("appointment_url", "")]
        links += [f["url"] for f in entry.facts.get("forms", [])]
        assert all(u.startswith("https://www.musterstadt.de/") for u in links if u)
    titles = {e.title for e in entries}
    assert {"Personalausweis beantragen", "Sperrmüll anmelden", "Wohngeld beantragen"} <= titles
    fees = {e.external_id: e.facts.get("fees", "") for e in entries}
    assert "37,00 €" in fees["personalausweis.md"] and "108,00 €" in fees["hundesteuer.md"]
