"""``rathaus lage``: Prozessanalyse (Process Mining).

``prozess-import`` reads an event log (CSV with chosen columns, XES, OCEL 2.0) into a data set,
``prozess`` analyses a data set or Rathaus's own case event log (``eigen``), ``prozess-export``
writes OCEL 2.0 (JSON).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rathaus.core.numbers import german_percent as pct

TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)


def _mapping(values: list[str]) -> dict[str, str]:
    from rathaus.core.errors import RathausError
    from rathaus.insights.eventlog import CSV_FIELDS

    mapping: dict[str, str] = {}
    for value in values:
        field, sep, column = value.partition("=")
        if not sep or field.strip() not in CSV_FIELDS:
            raise RathausError(
                f"„{value}“ ist keine Spaltenzuordnung. Erwartet FELD=SPALTE mit FELD aus: "
                f"{', '.join(CSV_FIELDS)} (z. B. --spalte case=Aktenzeichen)."
            )
        mapping[field.strip()] = column.strip()
    return mapping


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this function's commands to ``rathaus lage`` and its measurement to ``rathaus eval``."""

    @app.command("prozess-import")
    def prozess_import(
        datei: Path = typer.Argument(
            ...,
            help="Ereignisprotokoll: .csv/.xlsx, .xes oder OCEL 2.0 als JSON, XML oder SQLite.",
        ),
        format: str | None = typer.Option(  # noqa: A002 - the option's name
            None, "--format", help="csv, xes oder ocel; Standard: an Endung und Inhalt erkannt."
        ),
        spalte: list[str] = typer.Option(
            [],
            "--spalte",
            help="Spaltenzuordnung FELD=SPALTE (case, activity, timestamp, resource, group), "
            "mehrfach möglich; ohne: Erkennung an den Spaltennamen.",
        ),
        objekttyp: str | None = typer.Option(
            None, "--objekttyp", help="OCEL: Objekttyp, der als Fall dient (z. B. order)."
        ),
        zeitzone: str | None = typer.Option(
            None,
            "--zeitzone",
            help="Zeitzone für Zeitpunkte ohne Zeitzonenangabe (IANA-Name, z. B. Europe/Vienna "
            "oder UTC); Standard: Europe/Berlin. Zeitpunkte mit Angabe (+01:00, Z) behalten sie.",
        ),
        name: str = typer.Option("", "--name", help="Name des Datensatzes (Standard: Dateiname)."),
        kommune: str | None = TenantOpt,
        as_json: bool = typer.Option(False, "--json", help="Ergebnis als JSON ausgeben."),
    ) -> None:
        """Ein Ereignisprotokoll importieren – ganz oder gar nicht; das Original wird aufbewahrt."""
        from rathaus.cli.common import database, settings
        from rathaus.core.errors import RathausError
        from rathaus.core.repo import tenant_by_slug
        from rathaus.core.storage import OriginalStore
        from rathaus.insights.eventlog_store import import_event_log

        if not datei.is_file():
            raise RathausError(f"Die Datei {datei} gibt es nicht. Bitte den Pfad prüfen.")
        s = settings()
        data = datei.read_bytes()
        with database(s).session() as session:
            tenant = tenant_by_slug(session, kommune or s.default_tenant)
            result = import_event_log(
                session,
                tenant.id,
                data,
                filename=datei.name,
                name=name,
                fmt=format,
                mapping=_mapping(spalte),
                object_type=objekttyp,
                zone=zeitzone,
                store=OriginalStore(s.originals_dir),
                actor="cli",
            )
            dataset_id, summary = result.dataset.id, dict(result.dataset.summary)
        if as_json:
            typer.echo(json.dumps({"id": dataset_id, **summary}, ensure_ascii=False, indent=2))
            return
        typer.echo(
            f"Importiert als Ereignisprotokoll {dataset_id}: {summary['events']} Ereignisse, "
            f"{summary['cases']} Fälle, {summary['activities']} Aktivitäten "
            f"({summary['format'].upper()})."
        )
        for note in summary.get("notes", []):
            typer.echo(f"Hinweis: {note}")

    @app.command("prozess")
    def prozess(
        quelle: str = typer.Argument(
            ..., help="Nummer des Ereignisprotokolls oder „eigen“ für das eigene Vorgangsprotokoll."
        ),
        min_kante: int = typer.Option(
            1, "--min-kante", min=1, help="Übergänge seltener als das weglassen."
        ),
        varianten: int | None = typer.Option(
            None, "--varianten", min=1, help="Nur die Fälle der k häufigsten Varianten."
        ),
        tabelle: str | None = typer.Option(
            None,
            "--export",
            help="Eine Tabelle als CSV auf die Standardausgabe (aktivitaeten, uebergaenge, "
            "varianten, engpaesse, uebergaben, nacharbeit, durchlaufzeit).",
        ),
        zeit: str = typer.Option(
            "kalender",
            "--zeit",
            help="Zeitbasis der Warte- und Durchlaufzeiten: kalender oder arbeitszeit (Mo–Fr, "
            "ohne Feiertage des Landes der Kommune).",
        ),
        von: str = typer.Option("08:00", "--von", help="Arbeitszeit: Beginn (HH:MM)."),
        bis: str = typer.Option("16:00", "--bis", help="Arbeitszeit: Ende (HH:MM)."),
        kommune: str | None = TenantOpt,
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    ) -> None:
        """Prozesslandkarte als Zahlen: Übergänge mit Wartezeiten, Varianten, Engpässe, Nacharbeit."""
        from rathaus.cli.common import database, settings
        from rathaus.core.repo import tenant_by_slug
        from rathaus.insights.eventlog_store import load_source
        from rathaus.insights.export import to_csv
        from rathaus.insights.process import analyse
        from rathaus.insights.process_hours import working_hours
        from rathaus.insights.process_tables import table

        s = settings()
        with database(s).session() as session:
            tenant = tenant_by_slug(session, kommune or s.default_tenant)
            hours = working_hours(zeit, von, bis, land=tenant.land)
            log, title = load_source(session, tenant.id, quelle)
        result = analyse(log, min_edge_count=min_kante, top_variants=varianten, hours=hours)
        format_duration = result.time_basis.fmt
        if tabelle:
            headers, rows = table(result, tabelle)
            typer.echo(to_csv(headers, rows).decode("utf-8-sig"), nl=False)
            return
        if as_json:
            typer.echo(
                json.dumps({"title": title, **result.to_dict()}, ensure_ascii=False, indent=2)
            )
            return
        t = result.throughput
        typer.echo(
            f"{title}: {result.cases} Fälle, {result.events} Ereignisse, "
            f"{len(result.activities)} Aktivitäten, {result.variants_total} Varianten. "
            f"Durchlaufzeit Median {format_duration(t.median_s)}, P90 {format_duration(t.p90_s)}."
        )
        typer.echo(f"Zeitbasis: {result.time_basis.label}.")
        for note in result.notes:
            typer.echo(f"Hinweis: {note}")
        typer.echo("\nÜbergänge (Anzahl, Wartezeit Median / P90):")
        for e in result.edges[:25]:
            typer.echo(
                f"  {e.source} → {e.target}: {e.count}, {format_duration(e.median_s)} / "
                f"{format_duration(e.p90_s)}"
            )
        if len(result.edges) > 25:
            typer.echo(f"  … und {len(result.edges) - 25} weitere (--export uebergaenge)")
        typer.echo("\nEngpässe (Wartezeit gesamt):")
        for i, e in enumerate(result.bottleneck_edges[:5], start=1):
            typer.echo(
                f"  {i}. {e.source} → {e.target}: {format_duration(e.total_s)} "
                f"({pct(e.share_of_wait, 0)}), Median {format_duration(e.median_s)}"
            )
        typer.echo("\nHäufigste Varianten:")
        for v in result.variants[:5]:
            typer.echo(
                f"  {v.rank}. {v.cases} Fälle ({pct(v.share, 0)}): {' → '.join(v.activities)}"
            )
        typer.echo(
            f"\nNacharbeit: {result.rework_cases} von {result.cases} Fällen wiederholen eine "
            "Aktivität."
        )

    @app.command("prozess-export")
    def prozess_export(
        quelle: str = typer.Argument(
            ..., help="Nummer des Ereignisprotokolls oder „eigen“ für das eigene Vorgangsprotokoll."
        ),
        ausgabe: str = typer.Option(
            "-", "--ausgabe", "-o", help="Zieldatei (.jsonocel) oder - für die Standardausgabe."
        ),
        kommune: str | None = TenantOpt,
    ) -> None:
        """Als OCEL 2.0 (JSON) exportieren."""
        from rathaus.cli.common import database, settings
        from rathaus.core.repo import tenant_by_slug
        from rathaus.insights.eventlog_store import export_ocel

        s = settings()
        with database(s).session() as session:
            tenant = tenant_by_slug(session, kommune or s.default_tenant)
            document = export_ocel(session, tenant.id, quelle)
        body = json.dumps(document, ensure_ascii=False, indent=1)
        if ausgabe == "-":
            typer.echo(body)
            return
        Path(ausgabe).write_text(body + "\n", encoding="utf-8")
        typer.echo(
            f"OCEL 2.0 geschrieben: {ausgabe} ({len(document['events'])} Ereignisse, "
            f"{len(document['objects'])} Objekte)."
        )
