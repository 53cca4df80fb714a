"""Press release downloads give exactly the version shown and edited: the model's when it wrote
one, the assembled one otherwise, each with its post for social media (TXT and DOCX)."""

from __future__ import annotations

import html
import io
import re

import pytest
from docx import Document
from sqlalchemy import select

from rathaus.ai.llm import Completion
from rathaus.core.models import AiSuggestion
from rathaus.writing import press
from tests.web.conftest import app, client, csrf_of, login, worlds  # noqa: F401
from tests.writing.test_press_release import KEY_POINTS

MODEL_TEXT = (
    "Glasfaser für Musterstadt\n\nAb dem 2. März 2027 werden 4.200 Haushalte angeschlossen."
    "\n\nDer Ausbau kostet 99 Mio. €.\n\nDer Bund trägt die Hälfte."
)


class _Scripted:
    """A fixed model answer: plumbing only (the real model is tested below)."""

    name = "openai"
    model = "skript-1"
    version = "1"

    def complete(self, messages, **_kw):  # type: ignore[no-untyped-def]
        return Completion(text=MODEL_TEXT, model=self.model)

    def stream(self, messages, **_kw):  # type: ignore[no-untyped-def]  # pragma: no cover
        yield MODEL_TEXT


def _docx_text(data: bytes) -> str:
    return "\n".join(p.text for p in Document(io.BytesIO(data)).paragraphs)


def test_form_round_trip_gives_the_same_version():
    points = press.parse_key_points(KEY_POINTS)
    generated, assembled = press.generate(points, _Scripted(), place="Musterstadt")
    for release in (generated, assembled):
        again = press.release_from_form(press.form_values(release))
        assert again.text() == release.text()
    # the flag for a new fact survives only while the fact is still in the text
    assert "99" in generated.new_facts
    values = press.form_values(generated)
    assert "Achtung" in generated.text() and "99" in press.release_from_form(values).new_facts
    values["absaetze"] = values["absaetze"].replace("Der Ausbau kostet 99 Mio. €.\n\n", "")
    fixed = press.release_from_form(values)
    assert fixed.new_facts == [] and "Achtung" not in fixed.text()
    assert fixed.body == ["Der Bund trägt die Hälfte."]


def test_edited_version_is_checked_in_german():
    release = press.from_key_points(press.parse_key_points(KEY_POINTS), place="Musterstadt")
    values = press.form_values(release) | {"ueberschrift": " ", "kurzfassung": "x" * 281}
    with pytest.raises(press.PressInputError) as info:
        press.release_from_form(values)
    assert "Überschrift" in info.value.message and "281 Zeichen" in info.value.message
    shown = press.release_from_form(values, check=False)  # shown again, nothing lost
    assert shown.social == "x" * 281


def _fields(page_text: str, section: str) -> dict[str, str]:
    """The download form's fields of the section headed ``section`` on the page."""
    start = page_text.index(f">{section}</h2>")
    block = page_text[start : page_text.index("</form>", start)]
    fields = {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', block)
    }
    for m in re.finditer(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', block, re.S):
        fields[m.group(1)] = html.unescape(m.group(2))
    return fields


@pytest.fixture
def scripted(app, monkeypatch):  # type: ignore[no-untyped-def]  # noqa: F811
    from rathaus.ai import registry

    app.state.settings = app.state.settings.model_copy(
        update={"llm": app.state.settings.llm.model_copy(update={"backend": "openai"})}
    )
    monkeypatch.setattr(registry, "get_language_model", lambda settings, function=None: _Scripted())


FORM = {
    "thema": "Glasfaserausbau in Musterstadt startet",
    "wer": "Die Stadt Musterstadt",
    "was": "beginnt mit dem Ausbau des Glasfasernetzes",
    "wann": "ab dem 2. März 2027",
    "fakten": "4.200 Haushalte erhalten einen Anschluss\nDer Bund trägt die Hälfte",
    "datum": "2026-11-21",
    "ort": "Musterstadt",
}


def _decision(db, tenant_id):  # type: ignore[no-untyped-def]
    with db.session() as session:
        row = session.scalars(
            select(AiSuggestion).where(
                AiSuggestion.function == "pressemitteilung", AiSuggestion.tenant_id == tenant_id
            )
        ).one()
        return row.decision, row.final


def test_downloads_give_the_model_version_as_seen_and_edited(client, worlds, db, scripted):  # noqa: F811
    login(client, "redaktion")
    page = client.post(
        "/texte/pressemitteilung", data={**FORM, "csrf_token": csrf_of(client), "mit_modell": "1"}
    )
    assert page.status_code == 200
    model = _fields(page.text, "Fassung des Sprachmodells")
    assembled = _fields(page.text, "Zusammengesetzte Fassung")
    assert model["ueberschrift"] == "Glasfaser für Musterstadt"
    assert model["fassung"] == "modell" and model["vorschlag"].isdigit()
    points = press.key_points_from_mapping(FORM)
    expected, _ = press.generate(points, _Scripted(), place=worlds["a"].tenant.city)

    # unchanged: the file is the model's version, with its social post; decision "angenommen"
    txt = client.post("/texte/pressemitteilung/herunterladen", data={**model, "format": "txt"})
    assert txt.status_code == 200 and txt.headers["content-type"].startswith("text/plain")
    assert txt.text == press.release_from_form(model).text()
    assert "Glasfaser für Musterstadt" in txt.text and expected.social in txt.text
    assert "\n".join(expected.body) in txt.text.replace("\n\n", "\n") and "skript-1" in txt.text
    assert "Achtung" in txt.text  # the invented 99 Mio. € stays flagged
    tenant_id = worlds["a"].tenant.id
    assert _decision(db, tenant_id)[0] == "angenommen"

    # edited: exactly the edit goes into DOCX and TXT; decision "bearbeitet" with the diff
    edited = {**model, "ueberschrift": "Schnelles Internet für 4.200 Haushalte",
              "absaetze": "Der Bund trägt die Hälfte.", "kurzfassung": "Glasfaser kommt! #Netz"}  # fmt: skip
    docx = client.post("/texte/pressemitteilung/herunterladen", data={**edited, "format": "docx"})
    assert docx.headers["content-type"].startswith("application/vnd.openxmlformats")
    text = _docx_text(docx.content)
    assert "Schnelles Internet für 4.200 Haushalte" in text
    assert "Glasfaser kommt! #Netz" in text and "Kurzfassung für soziale Medien" in text
    assert "99 Mio" not in text and "Achtung" not in text
    assert "Glasfaser für Musterstadt" not in text
    decision, final = _decision(db, tenant_id)
    assert decision == "bearbeitet" and final["fassung"] == "sprachmodell"
    assert "+Schnelles Internet für 4.200 Haushalte" in final["diff"]

    # the assembled version downloaded instead: "korrigiert", its own text
    txt = client.post("/texte/pressemitteilung/herunterladen", data={**assembled, "format": "txt"})
    assert "aus den Stichpunkten zusammengesetzt" in txt.text and "skript-1" not in txt.text
    assert _decision(db, tenant_id)[0] == "korrigiert"

    # a bad edit is refused in German and comes back with everything typed
    bad = client.post(
        "/texte/pressemitteilung/herunterladen",
        data={**edited, "ueberschrift": "", "format": "txt"},
    )
    assert bad.status_code == 422 and "Überschrift" in bad.text
    assert "Glasfaser kommt! #Netz" in bad.text and "Ihre bearbeitete Fassung" in bad.text
    assert FORM["thema"] in bad.text  # the key points are kept too


def test_direct_download_gives_the_model_version_when_it_wrote_one(client, worlds, scripted):  # noqa: F811
    login(client, "redaktion")
    token = csrf_of(client)
    with_model = client.post(
        "/texte/pressemitteilung",
        data={**FORM, "csrf_token": token, "mit_modell": "1", "format": "docx"},
    )
    text = _docx_text(with_model.content)
    assert "Glasfaser für Musterstadt" in text and "skript-1" in text
    assert "Kurzfassung für soziale Medien" in text
    without = client.post("/texte/pressemitteilung", data={**FORM, "csrf_token": token,
                                                           "format": "txt"})  # fmt: skip
    assert "zusammengesetzt" in without.text and "skript-1" not in without.text
    headers = {"X-CSRF-Token": token}
    body = {"thema": FORM["thema"], "fakten": FORM["fakten"].splitlines(), "mit_modell": True}
    api = client.post("/api/v1/texte/pressemitteilung", json={**body, "format": "txt"},
                      headers=headers)  # fmt: skip
    assert api.status_code == 200 and "Glasfaser für Musterstadt" in api.text
    assert "Pressemitteilung.txt" in api.headers["content-disposition"]
    plain = client.post("/api/v1/texte/pressemitteilung",
                        json={**body, "mit_modell": False, "format": "docx"}, headers=headers)  # fmt: skip
    assert "zusammengesetzt" in _docx_text(plain.content)


def test_a_foreign_suggestion_is_not_decided(client, worlds, db, scripted):  # noqa: F811
    login(client, "redaktion", "beta")
    page = client.post(
        "/texte/pressemitteilung", data={**FORM, "csrf_token": csrf_of(client), "mit_modell": "1"}
    )
    beta_fields = _fields(page.text, "Fassung des Sprachmodells")
    client.cookies.clear()
    login(client, "redaktion")
    token = csrf_of(client)
    sent = client.post("/texte/pressemitteilung/herunterladen",
                       data={**beta_fields, "csrf_token": token, "format": "txt"})  # fmt: skip
    assert sent.status_code == 200  # the text is the person's own; the record is not touched
    assert _decision(db, worlds["b"].tenant.id)[0] is None


def test_real_bundled_model_version_downloads_unchanged(local_llm, client, worlds):  # noqa: F811
    points = press.key_points_from_mapping(FORM)
    generated, _ = press.generate(points, local_llm, place="Musterstadt", max_tokens=48)
    assert generated.headline and "Demo-Qualität" in generated.label
    login(client, "redaktion")
    fields = press.form_values(generated) | {"csrf_token": csrf_of(client), "fassung": "modell"}
    txt = client.post("/texte/pressemitteilung/herunterladen", data={**fields, "format": "txt"})
    assert txt.status_code == 200
    assert txt.text == generated.text()
    docx = client.post("/texte/pressemitteilung/herunterladen", data={**fields, "format": "docx"})
    text = _docx_text(docx.content)
    assert generated.headline in text and generated.social in text
