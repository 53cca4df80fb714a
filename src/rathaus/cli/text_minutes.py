"""`rathaus text protokoll …` (Niederschrift) und `rathaus eval minutes`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

DEFAULT_MEETINGS = Path("../shared/data/council/meetings.jsonl")


def _print(result: dict[str, Any]) -> None:
    from rathaus.writing.minutes import format_time, vote_counts_text

    for note in result.get("notes", []):
        typer.echo(f"Hinweis: {note}")
    if result.get("attendance"):
        typer.echo(
            "Anwesenheit: "
            + "; ".join(f"{a['name']} ({a['status']})" for a in result["attendance"])
        )
    for item in result["items"]:
        when = (
            f" [{format_time(item['start'])}–{format_time(item['end'])}]"
            if item.get("start") is not None
            else ""
        )
        typer.echo(f"\nTOP {item['number']} {item['name']}{when} – {item['sentence_count']} Sätze")
        for sentence in item["summary"]:
            typer.echo(f"  Beratung: {sentence['text']}")
        for motion in item["motions"]:
            typer.echo(f"  Antrag{' ' + motion['by'] if motion['by'] else ''}: {motion['text']}")
        for vote in item["votes"]:
            how = (
                "einstimmig " if vote["unanimous"] else "mehrheitlich " if vote["majority"] else ""
            )
            counts = vote_counts_text(vote)
            counts = f" ({counts})" if counts else ""
            at = f" [{format_time(vote['start'])}]" if vote["start"] is not None else ""
            typer.echo(f"  Abstimmung: {how}{vote['outcome'] or '?'}{counts}{at}")
        if item["decision_text"]:
            typer.echo(f"  Beschluss: {item['decision_text']}")
        for action in item["actions"]:
            due = f" (bis {action['due']})" if action["due"] else ""
            typer.echo(f"  Aufgabe: {action['owner']} – {action['task']}{due}")


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this file's commands to ``rathaus text`` (and its measurements to ``rathaus eval``)."""
    protokoll = typer.Typer(
        help="Niederschrift: Transkript nach der Tagesordnung gliedern, OParl, DOCX/PDF.",
        no_args_is_help=True,
    )
    app.add_typer(protokoll, name="protokoll")

    @protokoll.command("erstellen")
    def create(
        transkript: Path = typer.Option(
            ..., "--transkript", help="Transkript (Text, SRT, WebVTT oder JSON-Segmente)."
        ),
        tagesordnung: Path | None = typer.Option(
            None, "--tagesordnung", help="Tagesordnung als Text, ein Punkt je Zeile."
        ),
        oparl_url: str | None = typer.Option(None, "--oparl", help="OParl-Adresse der Sitzung."),
        oparl_datei: Path | None = typer.Option(
            None, "--oparl-datei", help="OParl-Datei (JSON/JSONL)."
        ),
        sitzung: str | None = typer.Option(
            None, "--sitzung", help="Kennung der Sitzung in der OParl-Datei."
        ),
        titel: str = typer.Option("", "--titel", help="Titel für DOCX/PDF (Standard: aus OParl)."),
        kommune: str = typer.Option(
            "", "--kommune-name", help="Name der Kommune im Kopf von DOCX/PDF."
        ),
        docx_out: Path | None = typer.Option(None, "--docx", help="DOCX hierhin schreiben."),
        pdf_out: Path | None = typer.Option(None, "--pdf", help="PDF hierhin schreiben."),
        as_json: bool = typer.Option(False, "--json", help="Ergebnis als JSON ausgeben."),
    ) -> None:
        """Ein Transkript nach der Tagesordnung gliedern: Beratung, Anträge, Abstimmungen,
        Beschlüsse und Aufgaben je Punkt; optional als DOCX und PDF."""
        from rathaus.cli.common import settings
        from rathaus.core.errors import RathausError
        from rathaus.writing import minutes, oparl
        from rathaus.writing.minutes_export import MinutesDocument, to_docx, to_pdf
        from rathaus.writing.minutes_extract import parse_transcript_text

        if sum(x is not None for x in (tagesordnung, oparl_url, oparl_datei)) > 1:
            raise RathausError(
                "Bitte nur eine Quelle der Tagesordnung angeben: --tagesordnung, --oparl oder "
                "--oparl-datei."
            )
        if not transkript.is_file():
            raise RathausError(f"Die Datei {transkript} gibt es nicht. Bitte den Pfad prüfen.")
        raw = transkript.read_text(encoding="utf-8-sig")
        segments: list[dict[str, Any]]
        if transkript.suffix.lower() == ".json":
            data = json.loads(raw)
            data = data.get("segments", data) if isinstance(data, dict) else data
            segments = [s for s in data if isinstance(s, dict)]
        else:
            segments = parse_transcript_text(raw)
        meeting = None
        agenda: list[minutes.AgendaItem] = []
        if tagesordnung is not None:
            if not tagesordnung.is_file():
                raise RathausError(f"Die Datei {tagesordnung} gibt es nicht.")
            agenda = minutes.parse_agenda_text(tagesordnung.read_text(encoding="utf-8-sig"))
        elif oparl_url:
            s = settings()
            with oparl.OParlClient(
                timeout_s=s.writing.oparl_timeout_s,
                max_pages=s.writing.oparl_max_pages,
                allowed_networks=s.network.allowed_networks,
            ) as client:
                meeting = client.meeting(oparl_url)
        elif oparl_datei is not None:
            meeting = oparl.meeting_from_file(oparl_datei, sitzung)
        if meeting is not None:
            agenda = meeting.agenda
            for what, why in meeting.failures:
                typer.echo(f"Nicht geladen: {what}: {why}", err=True)
        result = minutes.structure(
            agenda=agenda,
            transcript=segments,
            attendance=meeting.participants if meeting else [],
        )
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        else:
            _print(result)
        if docx_out or pdf_out:
            doc = MinutesDocument(
                municipality=kommune or "Kommune",
                title=titel or (meeting.name if meeting else "Sitzung"),
                body_name=meeting.body_name if meeting else "",
                meeting_date=oparl.local_time(meeting.start) if meeting else None,
                location=meeting.location if meeting else "",
                attendance=result["attendance"],
                items=result["items"],
                notes=result["notes"],
            )
            if docx_out:
                docx_out.write_bytes(to_docx(doc))
                typer.echo(f"DOCX geschrieben: {docx_out}", err=True)
            if pdf_out:
                pdf_out.write_bytes(to_pdf(doc))
                typer.echo(f"PDF geschrieben: {pdf_out}", err=True)

    @protokoll.command("oparl-sitzungen")
    def list_meetings(
        quelle: str = typer.Argument(
            ..., help="OParl-Adresse (System, Körperschaft, Sitzungsliste) oder Datei."
        ),
        anzahl: int = typer.Option(30, "--anzahl", min=1, max=10000, help="Höchstens so viele."),
    ) -> None:
        """Sitzungen eines OParl-Servers oder einer OParl-Datei auflisten (neueste zuerst)."""
        from rathaus.cli.common import settings
        from rathaus.writing import oparl

        path = Path(quelle)
        truncated = False
        if not quelle.startswith(("http://", "https://")) and path.exists():
            found = oparl.meetings_in_file(path)
        else:
            s = settings()
            with oparl.OParlClient(
                timeout_s=s.writing.oparl_timeout_s,
                max_pages=s.writing.oparl_max_pages,
                allowed_networks=s.network.allowed_networks,
            ) as client:
                listed = client.meetings(quelle)
            found, truncated = listed.meetings, listed.truncated
        for meeting in found[:anzahl]:
            when = meeting.start.strftime("%d.%m.%Y %H:%M") if meeting.start else "ohne Datum"
            where = f" – {meeting.location}" if meeting.location else ""
            typer.echo(f"{when}  {meeting.name}{where}\n    {meeting.id}")
        typer.echo(f"{min(len(found), anzahl)} von {len(found)} Sitzungen angezeigt.", err=True)
        if truncated:
            typer.echo(
                "Es gibt weitere Seiten; RATHAUS_WRITING__OPARL_MAX_PAGES begrenzt das Laden.",
                err=True,
            )

    @eval_app.command("minutes")
    def evaluate(
        data: Path = typer.Option(DEFAULT_MEETINGS, "--data", help="OParl-Sitzungen (JSONL)."),
        sitzungen: int = typer.Option(
            200, "--sitzungen", min=1, help="Sitzungen für die Zuordnung."
        ),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    ) -> None:
        """Abstimmungs- und Beschlusserkennung sowie Zuordnung zur Tagesordnung auf echten
        Karlsruher Sitzungen messen."""
        from rathaus.cli.eval_cmd import record_run
        from rathaus.core.errors import RathausError
        from rathaus.writing.minutes_eval import evaluate as run
        from rathaus.writing.minutes_eval import format_report

        if not data.is_file():
            raise RathausError(
                f"Die Sitzungsdaten {data} fehlen. Bitte mit --data eine OParl-JSONL-Datei angeben."
            )
        report = run(data, assign_meetings=sitzungen)
        if as_json:
            typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        else:
            typer.echo(format_report(report))
        record_run("minutes", report.as_dict(), data)
