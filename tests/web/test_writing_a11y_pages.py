"""axe-core (WCAG 2.1 A/AA) on every page of the Schreibassistenz in a real Chromium, each page
also kept as a screenshot: overview, summaries, minutes, press release, letters, Leichte Sprache,
translation, Textbausteine and transcription jobs, with results and error messages shown."""

from __future__ import annotations

import pytest

from rathaus.core.models import Message, WritingJob, WritingJobStatus
from tests.a11y import PageAudit
from tests.browser.keyboard import login
from tests.factories import PASSWORD, build_tenant
from tests.web.test_browser import _serve, page  # noqa: F401 - the shared browser fixture

DOCUMENT = """Sanierung der Grundschule

Die Grundschule am Mühlbach wurde 1968 gebaut. Die Fenster sind undicht, die Heizung ist alt.
Im Winter 2025 fiel die Heizung an elf Tagen aus.

Kosten

Die Sanierung kostet nach der Schätzung des Bauamts 2,4 Millionen Euro. Das Land fördert
40 Prozent der Kosten. Den Rest trägt die Stadt aus dem Haushalt 2027.

Zeitplan

Die Arbeiten beginnen in den Sommerferien 2027. Der Unterricht findet in dieser Zeit in
Containern auf dem Sportplatz statt. Die Schule ist zum Schuljahr 2028 fertig."""

TRANSCRIPT = """TOP 1 Eröffnung. Die Bürgermeisterin eröffnet die Sitzung.
TOP 2 Sanierung der Grundschule. Herr Weber stellt den Antrag, die Fenster 2027 zu erneuern.
Der Gemeinderat beschließt die Sanierung mit 12 Ja-Stimmen, 3 Nein-Stimmen und 1 Enthaltung.
Die Verwaltung wird beauftragt, bis März die Ausschreibung vorzubereiten."""


class _DraftModel:
    """Stands in for a model server so that the pages showing a model's draft can be checked;
    what a real model writes is tested in tests/writing with the bundled model."""

    name = "entwurf"
    model = "entwurf-1"
    version = "1"

    def complete(self, messages, *, max_tokens=512, temperature=0.0, json_mode=False):  # type: ignore[no-untyped-def]
        from rathaus.ai.llm import Completion

        return Completion(text="Sie zahlen 30 Euro. Bis zum 1. Juli.", model=self.model)

    def stream(self, messages, *, max_tokens=512, temperature=0.0):  # type: ignore[no-untyped-def]  # pragma: no cover
        yield self.complete(messages).text


@pytest.fixture
def writing_pages_server(sqlite_db, tmp_path, monkeypatch):
    """Stadt Alpha with a finished and a running transcription job, and a model stand-in."""
    from rathaus.ai import registry
    from rathaus.web import writing_letters

    monkeypatch.setattr(
        registry, "get_language_model", lambda settings, function=None: _DraftModel()
    )
    monkeypatch.setattr(writing_letters, "_backend", lambda settings, function: "openai")
    jobs = {}
    with sqlite_db.session() as session:
        world = build_tenant(session, "alpha", "Stadt Alpha")
        case = world.cases["OA-GW"]  # in the leader's area
        session.add(
            Message(tenant_id=world.tenant.id, case_id=case.id, direction="in", body=DOCUMENT)
        )
        for key, status, progress in (
            ("fertig", WritingJobStatus.FERTIG, 1.0),
            ("laeuft", WritingJobStatus.LAEUFT, 0.4),
        ):
            job = WritingJob(
                tenant_id=world.tenant.id,
                kind="transkription",
                status=status.value,
                progress=progress,
                message="Fertig." if key == "fertig" else "Läuft: 00:00:04 von 00:00:10 erkannt.",
                filename=f"rat-{key}.wav",
                created_by="leitung",
                result={
                    "segments": [
                        {"start": 0.0, "end": 2.0, "text": "Guten Abend."},
                        {"start": 2.0, "end": 5.5, "text": "Wir kommen zu TOP 1."},
                    ],
                    "duration": 10.0,
                    "model": "whisper-base",
                },
            )
            session.add(job)
            session.flush()
            jobs[key] = job.id
        jobs["vorgang"] = case.id
    for server in _serve(sqlite_db, tmp_path):
        yield server, jobs


@pytest.mark.browser
def test_every_writing_page_passes_axe(writing_pages_server, page):  # noqa: F811
    server, jobs = writing_pages_server
    audit = PageAudit(page)
    login(page, server, "leitung", PASSWORD)  # Fachbereichsleitung: may also create Textbausteine

    audit.visit(server + "/texte", "texte")

    # summaries: form, an error, the result
    audit.visit(server + "/texte/zusammenfassung", "texte-zusammenfassung")
    page.get_by_role("button", name="Zusammenfassen").click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").is_visible()
    audit.refused()
    audit.check("texte-zusammenfassung-fehler")
    page.get_by_label("Text einfügen").fill(DOCUMENT)
    page.get_by_role("button", name="Zusammenfassen").click()
    page.get_by_role("heading", name="Gesamtfassung").wait_for()
    audit.check("texte-zusammenfassung-ergebnis")
    # the used sentences are marked in the text, without the inbox's empty "[kind]" label
    marked = page.locator("p.paragraph mark").first
    assert marked.evaluate("m => getComputedStyle(m, '::after').content") == "none"

    audit.visit(
        server + f"/texte/zusammenfassung/vorgang/{jobs['vorgang']}",
        "texte-zusammenfassung-vorgang",
    )

    # minutes: list, new (with an error), detail before and after the transcript
    audit.visit(server + "/texte/niederschriften", "texte-niederschriften-leer")
    audit.visit(server + "/texte/niederschriften/neu", "texte-niederschrift-neu")
    page.get_by_label("OParl-Adresse der Sitzung").fill("ftp://nicht-erlaubt.example/x")
    page.get_by_role("button", name="Niederschrift anlegen").click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").is_visible()
    audit.refused()
    audit.check("texte-niederschrift-neu-fehler")
    page.get_by_label("OParl-Adresse der Sitzung").fill("")
    page.get_by_label("Titel").fill("Gemeinderat 12. Sitzung")
    page.get_by_label("Gremium").fill("Gemeinderat")
    page.get_by_label("Tagesordnung eingeben").fill("TOP 1 Eröffnung\nTOP 2 Sanierung")
    page.get_by_role("button", name="Niederschrift anlegen").click()
    page.wait_for_url("**/texte/niederschriften/*")
    audit.check("texte-niederschrift")
    page.get_by_role("textbox", name="Transkript").fill(TRANSCRIPT)
    page.get_by_role("button", name="Niederschrift erstellen").click()
    page.get_by_role("heading", name="Ergebnis").wait_for()
    audit.check("texte-niederschrift-ergebnis")
    audit.visit(server + "/texte/niederschriften", "texte-niederschriften")

    # press release: form and both versions (assembled and the model's)
    audit.visit(server + "/texte/pressemitteilung", "texte-pressemitteilung")
    page.get_by_label("Thema").fill("Grundschule wird saniert")
    page.get_by_label("Wer?").fill("Die Stadt Alpha")
    page.get_by_label("Was?", exact=False).fill("saniert die Grundschule am Mühlbach")
    page.get_by_label("Fakten").fill("Kosten 2,4 Millionen Euro\nBeginn Sommer 2027")
    if page.get_by_label("Zusätzlich vom Sprachmodell", exact=False).count():
        page.get_by_label("Zusätzlich vom Sprachmodell", exact=False).check()
    page.get_by_role("button", name="Erstellen").click()
    page.get_by_role("heading", name="Zusammengesetzte Fassung").wait_for()
    audit.check("texte-pressemitteilung-ergebnis")

    # Textbausteine: list, new form with an error, entry with a preview, letter with it
    audit.visit(server + "/texte/bausteine", "texte-bausteine-leer")
    audit.visit(server + "/texte/bausteine/neu", "texte-baustein-neu")
    page.get_by_label("Name").fill("Eingangsbestätigung")
    page.get_by_label("Text", exact=True).fill("Guten Tag {{unbekannt,")
    page.get_by_role("button", name="Speichern").click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").is_visible()
    audit.refused()
    audit.check("texte-baustein-neu-fehler")
    page.get_by_label("Text", exact=True).fill(
        "vielen Dank für Ihr Schreiben zum Vorgang {{aktenzeichen}}. Wir melden uns."
    )
    page.get_by_role("button", name="Speichern").click()
    page.wait_for_url("**/texte/bausteine/*")
    audit.check("texte-baustein")
    page.get_by_label("Aktenzeichen").fill("ALP-2026-000002")
    page.get_by_role("button", name="Vorschau").click()
    page.wait_for_url("**/texte/bausteine/*vorgang=*")
    audit.check("texte-baustein-vorschau")
    audit.visit(server + "/texte/bausteine", "texte-bausteine")
    audit.visit(server + "/texte/brief", "texte-brief")
    page.get_by_label("Textbaustein").select_option(label="Eingangsbestätigung")
    page.get_by_label("Name", exact=True).fill("Erika Mustermann")
    page.get_by_role("button", name="Vorschau").click()
    page.get_by_role("heading", name="Vorschau").wait_for()
    audit.check("texte-brief-vorschau")

    audit.visit(server + f"/texte/brief/vorgang/{jobs['vorgang']}", "texte-brief-vorgang")

    # Leichte Sprache: check, report, rewrite
    audit.visit(server + "/texte/leichte-sprache", "texte-leichte-sprache")
    page.get_by_label("Text", exact=True).fill(
        "Der Antrag wurde aufgrund fehlender Unterlagen nicht bearbeitet. Sie zahlen 30 Euro "
        "bis zum 1. Juli."
    )
    page.get_by_role("button", name="Prüfen", exact=True).click()
    page.get_by_role("heading", name="Prüfung").wait_for()
    audit.check("texte-leichte-sprache-pruefung")
    page.get_by_role("button", name="Prüfen und umschreiben").click()
    page.get_by_role("heading", name="Faktenprüfung").wait_for()
    audit.check("texte-leichte-sprache-entwurf")

    # translation: form and a result
    audit.visit(server + "/texte/uebersetzung", "texte-uebersetzung")
    page.get_by_label("Deutscher Text").fill("Sie zahlen 30 Euro bis zum 1. Juli.")
    page.get_by_role("button", name="Übersetzen").click()
    page.wait_for_load_state()
    audit.check("texte-uebersetzung-ergebnis")

    # transcription: the form with the list of jobs, a finished and a running job
    audit.visit(server + "/texte/transkription", "texte-transkription")
    audit.visit(server + f"/texte/auftraege/{jobs['fertig']}", "texte-auftrag-fertig")
    audit.visit(server + f"/texte/auftraege/{jobs['laeuft']}", "texte-auftrag-laeuft")
    # HTMX replaces the progress block while the job runs: the swapped-in block is checked too
    page.evaluate("document.getElementById('auftrag-stand').dataset.alt = 'ja'")
    page.locator("#auftrag-stand:not([data-alt])").wait_for()
    audit.check("texte-auftrag-laeuft-aktualisiert")

    audit.assert_clean()
