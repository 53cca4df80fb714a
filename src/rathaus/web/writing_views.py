"""The Schreibassistenz start page under /texte: one entry per function."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from rathaus.core.roles import Permission
from rathaus.web.deps import CurrentTenant, require
from rathaus.web.templating import render

router = APIRouter(include_in_schema=False)

FUNCTIONS = (
    (
        "/texte/zusammenfassung",
        "Zusammenfassen",
        "Dokument, ganzer Vorgang oder lange Ratsvorlage – jeder Satz mit seiner Fundstelle, "
        "dazu ein Bericht, welche Abschnitte eingeflossen sind.",
    ),
    (
        "/texte/niederschriften",
        "Niederschrift",
        "Aus einer Aufnahme oder einem Transkript, gegliedert nach der Tagesordnung (auch aus "
        "dem Ratsinformationssystem über OParl): Beratung, Anträge, Abstimmungen, Beschlüsse, "
        "Aufgaben; Export als DOCX und PDF.",
    ),
    (
        "/texte/transkription",
        "Transkription",
        "Eine Aufnahme (Sitzung, Diktat) mit Zeitmarken abschreiben lassen – im Hintergrund, "
        "mit Fortschritt und abbrechbar; Ergebnis als Text, SRT oder WebVTT.",
    ),
    (
        "/texte/leichte-sprache",
        "Leichte Sprache",
        "Prüft jeden Satz gegen die Regeln der Leichten Sprache, zeigt die Lesbarkeit und "
        "schreibt mit einem Sprachmodell um – ohne neue Fakten.",
    ),
    (
        "/texte/pressemitteilung",
        "Pressemitteilung",
        "Aus Stichpunkten: Überschrift, Vorspann, Text, Zitat, Kontakt – und eine Kurzfassung "
        "für soziale Medien.",
    ),
    (
        "/texte/brief",
        "Brief nach DIN 5008",
        "Aus einem Textbaustein und den Angaben eines Vorgangs, als DOCX oder PDF.",
    ),
    (
        "/texte/uebersetzung",
        "Übersetzung",
        "Mit einem eingerichteten Sprachmodell; sagt klar, wenn keines zuverlässig übersetzt.",
    ),
    (
        "/texte/bausteine",
        "Textbausteine",
        "Wiederverwendbare Texte je Fachbereich mit Platzhaltern für die Angaben eines Vorgangs.",
    ),
)


@router.get("/texte", dependencies=[Depends(require(Permission.USE_WRITING))])
def index(request: Request, tenant: CurrentTenant) -> Response:
    return render(request, "writing_index.html", {"tenant": tenant, "functions": FUNCTIONS})
