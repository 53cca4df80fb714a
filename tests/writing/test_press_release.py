"""Press releases: assembled from key points without new facts; the fact check; export."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from docx import Document

from rathaus.ai.llm import Completion
from rathaus.writing import press

KEY_POINTS = """\
Thema: Glasfaserausbau in Musterstadt startet
Wer: Die Stadt Musterstadt und die Netzgesellschaft Süd
Was: beginnen mit dem Ausbau des Glasfasernetzes
Wann: ab dem 2. März 2027
Wo: in den Ortsteilen Nord und Oberdorf
Warum: Schnelles Internet für Haushalte, Schulen und Betriebe
Fakten:
- 4.200 Haushalte erhalten einen Anschluss
- Die Kosten betragen 12,5 Mio. €, davon trägt der Bund 50 Prozent
- Der Hausanschluss ist bis zum 30.06.2027 kostenlos
Zitat: Schnelles Internet gehört zur Daseinsvorsorge
Sprecher: Bürgermeisterin Maria Beispiel
Kontakt:
Pressestelle der Stadt Musterstadt
Telefon 01234 5678-120
Datum: 2026-11-21
"""


def test_parse_and_assemble_without_new_facts():
    points = press.parse_key_points(KEY_POINTS)
    assert points.fakten[0] == "4.200 Haushalte erhalten einen Anschluss"
    assert points.datum == dt.date(2026, 11, 21)
    release = press.from_key_points(points, place="Musterstadt")
    assert release.headline == "Glasfaserausbau in Musterstadt startet"
    assert release.dateline == "Musterstadt, 21. November 2026 –"
    assert release.lead.startswith(
        "Die Stadt Musterstadt und die Netzgesellschaft Süd beginnen mit dem Ausbau des "
        "Glasfasernetzes ab dem 2. März 2027 in den Ortsteilen Nord und Oberdorf."
    )
    assert "Hintergrund: Schnelles Internet" in release.lead
    assert release.quote == (
        "„Schnelles Internet gehört zur Daseinsvorsorge.“, sagt Bürgermeisterin Maria Beispiel."
    )
    assert "Telefon 01234 5678-120" in release.contact
    assert "ohne Sprachmodell" in release.label
    assert len(release.social) <= 280
    assert "#Glasfaserausbau" in release.social and "#Musterstadt" in release.social
    # Nothing in the assembled text is new.
    assert press._new_facts(points.source_text() + release.dateline, release.text()) == []


def test_new_facts_finds_numbers_dates_amounts_and_names():
    source = "Die Kosten betragen 1.471,60 € bis zum 21.03.2026. Sprecherin ist Maria Beispiel."
    ok = "Bis zum 21. März 2026 kostet es 1471,60 Euro, sagt Maria Beispiel."
    assert press.new_facts(source, ok) == []
    bad = "Es kostet 2.000 € ab dem 5. Mai 2026, sagt Landrat Otto Erfunden."
    found = press.new_facts(source, bad)
    assert "2.000" in found
    assert "5" in found
    assert any("Otto Erfunden" in f for f in found)


def test_social_post_is_cut_at_a_word():
    post = press.social_post("Thema", "Wort " * 100, ["#Eins", "#Zwei"])
    assert len(post) <= 280 and post.endswith("#Eins #Zwei") and "…" in post


def test_incomplete_key_points_are_refused_in_german():
    with pytest.raises(press.PressInputError) as info:
        press.from_key_points(press.KeyPoints(thema="", zitat="Toll"))
    assert "Bitte ein Thema angeben" in info.value.message
    assert "wer es sagt" in info.value.message
    with pytest.raises(press.PressInputError):
        press.parse_key_points("Unsinn ohne Feld")


class _Scripted:
    name = "openai"
    model = "test-modell"
    version = "test-modell"

    def __init__(self, text: str) -> None:
        self.text = text

    def complete(self, messages, **_kw):  # type: ignore[no-untyped-def]
        return Completion(text=self.text, model=self.model)


def test_generated_version_is_checked_and_labelled():
    points = press.parse_key_points(KEY_POINTS)
    text = (
        "Glasfaser für Musterstadt\n\nAb dem 2. März 2027 werden 4.200 Haushalte angeschlossen."
        "\n\nDer Ausbau kostet 99 Mio. €, sagt Kämmerer Fritz Falsch."
    )
    generated, assembled = press.generate(points, _Scripted(text), place="Musterstadt")
    assert generated.headline == "Glasfaser für Musterstadt"
    assert "99" in generated.new_facts
    assert any("Fritz Falsch" in f for f in generated.new_facts)
    assert "nicht in den Stichpunkten" in generated.hints[0]
    assert "test-modell" in generated.label and "Demo-Qualität" not in generated.label
    assert generated.quote == assembled.quote  # the quote is never rewritten
    local = press.model_label("local", "qwen")
    assert "Demo-Qualität" in local


def test_docx_export():
    release = press.from_key_points(press.parse_key_points(KEY_POINTS), place="Musterstadt")
    doc = Document(io.BytesIO(press.to_docx(release)))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "Glasfaserausbau in Musterstadt startet" in text
    assert "Pressekontakt" in text and "Entwurf" in text
