"""``rathaus lage``: Winterdienst-Tourenplanung des Bauhofs."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rathaus.core.numbers import german_number as num

TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)
DEFAULT_DATA = Path("../shared/data/winter")
EXPORT_FORMATS = ("geojson", "gpx", "csv", "xlsx", "json")


def _summary_line(ev) -> str:  # type: ignore[no-untyped-def]
    from rathaus.insights.winter.evaluate import fmt_num

    state = "alle Regeln eingehalten" if ev.feasible else f"{len(ev.violations)} Regelverstöße"
    return (
        f"Gesamtfahrzeit {fmt_num(ev.total_time, 1)} min, Gesamtstrecke "
        f"{fmt_num(ev.total_length / 1000, 2)} km, {state}."
    )


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this function's commands to ``rathaus lage`` and its measurement to ``rathaus eval``."""

    @app.command("winterdienst-import")
    def winterdienst_import(
        datei: Path = typer.Argument(..., help="Streckennetz im ROAR-NET-JSON-Format."),
        name: str | None = typer.Option(None, "--name", help="Name des Plans."),
        kommune: str | None = TenantOpt,
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    ) -> None:
        """Streckennetz (Streustrecken, Fahrzeuge, Depots) prüfen und als Plan anlegen."""
        from rathaus.cli.common import database, settings
        from rathaus.core.errors import RathausError
        from rathaus.core.repo import tenant_by_slug
        from rathaus.insights.winter import service

        if not datei.is_file():
            raise RathausError(f"Die Datei {datei} gibt es nicht.")
        s = settings()
        with database(s).session() as session:
            tenant = tenant_by_slug(session, kommune or s.default_tenant)
            plan = service.import_plan(
                session,
                settings=s,
                tenant_id=tenant.id,
                user_name="cli",
                filename=datei.name,
                data=datei.read_bytes(),
                name=name,
            )
            info = service.plan_public(plan, details=True)
        if as_json:
            typer.echo(json.dumps(info, ensure_ascii=False, indent=2))
            return
        n = info["network"]
        typer.echo(
            f"Plan {plan.id} „{info['name']}“ angelegt: {n['required_links']} zu streuende "
            f"Strecken, {n['vehicles']} Fahrzeuge, Depots {', '.join(n['depots'])}."
        )
        if info["message"]:
            typer.echo(f"Hinweis: {info['message']}")

    @app.command("winterdienst-planen")
    def winterdienst_planen(
        plan_id: int = typer.Argument(..., help="Nummer des Plans."),
        zeitlimit: int = typer.Option(60, "--zeitlimit", help="Rechenzeit in Sekunden (1–600)."),
        kommune: str | None = TenantOpt,
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    ) -> None:
        """Touren berechnen (hier und jetzt, nicht über die Warteschlange) und speichern."""
        from rathaus.cli.common import database, settings
        from rathaus.core.errors import RathausError
        from rathaus.core.repo import tenant_by_slug
        from rathaus.insights.winter import service

        s = settings()
        db = database(s)
        seconds = service.check_time_limit(zeitlimit)
        with db.session() as session:
            tenant = tenant_by_slug(session, kommune or s.default_tenant)
            plan = service.get_plan(session, tenant_id=tenant.id, plan_id=plan_id)
            if plan.status in service.RUNNING:
                raise RathausError(f"Der Plan {plan_id} wird bereits berechnet.")
            plan.options = {**(plan.options or {}), "time_limit_s": seconds}
            plan.status = service.WARTET
        status = service.run_planning(db, plan_id=plan_id)
        with db.session() as session:
            plan = service.get_plan(session, tenant_id=tenant.id, plan_id=plan_id)
            info = service.plan_public(plan, details=True)
            ev = service.evaluation_of(plan)
        if as_json:
            typer.echo(json.dumps(info, ensure_ascii=False, indent=2))
        else:
            typer.echo(info["message"])
            if ev is not None:
                typer.echo(_summary_line(ev))
                for v in ev.vehicles:
                    typer.echo(
                        f"  Fahrzeug {v.vehicle}: {num(v.time)} min, {num(v.length / 1000, 2)} km, "
                        f"Salz {num(v.salt, 0)}, {v.refills}× nachgeladen, Ende an {v.ends_at}"
                    )
                for x in ev.violations:
                    typer.echo(f"  Verstoß: {x.message}")
        if status != service.FERTIG:
            raise typer.Exit(1)

    @app.command("winterdienst-export")
    def winterdienst_export(
        plan_id: int = typer.Argument(..., help="Nummer des Plans."),
        format: str = typer.Option("csv", "--format", help="geojson, gpx, csv, xlsx oder json."),
        ausgabe: Path | None = typer.Option(None, "--ausgabe", "-o", help="Zieldatei."),
        kommune: str | None = TenantOpt,
    ) -> None:
        """Abbiegeliste (CSV/XLSX), GeoJSON, GPX oder Lösung (ROAR-NET-JSON) ausgeben."""
        from rathaus.cli.common import database, settings
        from rathaus.core.errors import RathausError
        from rathaus.core.repo import tenant_by_slug
        from rathaus.insights.winter import service

        if format not in EXPORT_FORMATS:
            raise RathausError(
                f"Unbekanntes Format „{format}“. Erlaubt: {', '.join(EXPORT_FORMATS)}."
            )
        s = settings()
        with database(s).session() as session:
            tenant = tenant_by_slug(session, kommune or s.default_tenant)
            plan = service.get_plan(session, tenant_id=tenant.id, plan_id=plan_id)
            body, _media, _name = service.export_bytes(plan, format)
        if ausgabe is not None:
            ausgabe.write_bytes(body)
            typer.echo(f"{format.upper()} geschrieben: {ausgabe}")
        elif format == "xlsx":
            raise RathausError("XLSX bitte mit --ausgabe in eine Datei schreiben.")
        else:
            typer.echo(body.decode("utf-8-sig"), nl=False)

    @app.command("winterdienst-pruefen")
    def winterdienst_pruefen(
        netz: Path = typer.Argument(..., help="Streckennetz (ROAR-NET-JSON)."),
        touren: Path = typer.Argument(..., help="Touren: ROAR-NET-Lösung oder Knotenfolgen."),
        offenes_ende: bool = typer.Option(
            False, "--offenes-ende", help="Tour darf nach der letzten Streustrecke enden."
        ),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    ) -> None:
        """Vorhandene Touren mit demselben Kostenmodell prüfen (Zeit, Salz, Wenden, Limit)."""
        from rathaus.insights.winter.evaluate import evaluate
        from rathaus.insights.winter.network import parse_network
        from rathaus.insights.winter.routes import parse_route_file

        network = parse_network(netz.read_bytes(), f"„{netz.name}“")
        routes, notes = parse_route_file(network, touren.read_bytes())
        ev = evaluate(network, routes, end_at_depot=not offenes_ende)
        if as_json:
            data = ev.to_dict(steps=False) | {"notes": notes}
            typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
            return
        for note in notes:
            typer.echo(f"Hinweis: {note}")
        typer.echo(_summary_line(ev))
        for x in ev.violations:
            typer.echo(f"  Verstoß: {x.message}")

    @eval_app.command("winter")
    def winter(
        data: Path = typer.Option(DEFAULT_DATA, "--data", help="Ordner mit den ROAR-NET-Daten."),
        zeitlimit: float = typer.Option(55.0, "--zeitlimit", help="Rechenzeit in Sekunden."),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    ) -> None:
        """Kerteminde planen und mit der Praxistour (Mandrup) vergleichen, gleiches Kostenmodell."""
        from rathaus.cli.eval_cmd import record_run
        from rathaus.insights.winter.service import measure

        result = measure(data, time_limit_s=zeitlimit)
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
            record_run("winter", result, data)
            return
        typer.echo(
            f"Kerteminde: {num(result['total_time'])} min ({num(result['total_length'] / 1000)} km), "
            f"zulässig: {'ja' if result['feasible'] else 'nein'}; Praxistour "
            f"{num(result['practitioner_time'])} min (bis zum Depot {num(result['practitioner_time_to_depot'])}"
            f" min); Verhältnis {num(result['ratio'], 3)} bzw. {num(result['ratio_to_depot'], 3)}; untere "
            f"Schranke {num(result['lower_bound_time'])} min."
        )
        record_run("winter", result, data)
