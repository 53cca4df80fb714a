"""``rathaus lage buchungen…``: Buchungsprüfung der Kämmerei, and ``rathaus eval bookings``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rathaus.core.errors import RathausError
from rathaus.core.numbers import german_number as num
from rathaus.core.numbers import german_percent as pct

DEFAULT_DATA = Path("../shared/data/bookings/oxford_spend_over_500_2014-2018_harmonised.csv.gz")
TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)


def _fail(exc: RathausError) -> None:
    typer.secho(f"Fehler: {exc.message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(exc.exit_code)


def _tenant(session, slug: str | None):  # type: ignore[no-untyped-def]
    from rathaus.cli.common import settings
    from rathaus.core.repo import tenant_by_slug

    return tenant_by_slug(session, slug or settings().default_tenant)


def _latest(session, tenant, dataset_id: int | None):  # type: ignore[no-untyped-def]
    from rathaus.insights import bookings

    if dataset_id is not None:
        return bookings.get_dataset(session, tenant, dataset_id)
    found = bookings.datasets(session, tenant)
    if not found:
        raise RathausError(
            "Es gibt noch keine Zahlungsliste. Bitte zuerst `rathaus lage buchungen-import` "
            "ausführen."
        )
    return found[0]


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this function's commands to ``rathaus lage`` and its measurement to ``rathaus eval``."""

    @app.command("buchungen-import")
    def buchungen_import(
        datei: Path = typer.Argument(..., help="Zahlungsliste als CSV (auch .csv.gz) oder XLSX."),
        name: str = typer.Option("", "--name", help="Name der Liste (Standard: Dateiname)."),
        spalte: list[str] = typer.Option(
            [],
            "--spalte",
            help="Spaltenzuordnung FELD=Spaltenname, mehrfach; Felder: supplier, amount, date, "
            "reference, category, unit, description (Standard: an bekannten Namen erkennen).",
        ),
        ueberspringen: bool = typer.Option(
            False,
            "--ueberspringen",
            help="Zeilen ohne gültiges Datum, Betrag oder Lieferant überspringen (mit "
            "Zeilennummern gemeldet) statt den Import abzubrechen.",
        ),
        kommune: str | None = TenantOpt,
    ) -> None:
        """Zahlungsliste importieren: ganz oder gar nicht; das Original wird aufbewahrt."""
        import gzip

        from rathaus.cli.common import database, settings
        from rathaus.core.storage import OriginalStore
        from rathaus.insights import bookings

        try:
            if not datei.is_file():
                raise RathausError(f"Die Datei {datei} gibt es nicht. Bitte den Pfad prüfen.")
            mapping = {}
            for item in spalte:
                field, sep, column = item.partition("=")
                if not sep or not column:
                    raise RathausError(f"„{item}“: bitte als FELD=Spaltenname angeben.")
                mapping[field.strip()] = column.strip()
            data = datei.read_bytes()
            filename = datei.name
            if filename.endswith(".gz"):
                data, filename = gzip.decompress(data), filename.removesuffix(".gz")
            s = settings()
            with database(s).session() as session:
                tenant = _tenant(session, kommune)
                dataset = bookings.import_payments(
                    session,
                    tenant=tenant,
                    data=data,
                    filename=filename,
                    actor="cli",
                    store=OriginalStore(s.originals_dir),
                    name=name,
                    mapping=mapping,
                    skip_invalid=ueberspringen,
                )
                summary, dataset_id, rows = dataset.summary, dataset.id, dataset.rows
                columns = dataset.mapping
        except RathausError as exc:
            _fail(exc)
        typer.echo(
            f"Zahlungsliste {dataset_id} importiert: {rows} Zahlungen vom "
            f"{summary['first_date']} bis {summary['last_date']}, {summary['suppliers']} Lieferanten."
        )
        typer.echo("Spalten: " + ", ".join(f"{k} ← {v}" for k, v in columns.items()))
        if summary["skipped"]:
            shown = ", ".join(str(r["row"]) for r in summary["skipped_rows"][:20])
            more = " …" if summary["skipped"] > 20 else ""
            typer.secho(
                f"Übersprungen: {summary['skipped']} Zeilen ohne gültiges Datum oder Betrag "
                f"(Zeilen {shown}{more}).",
                fg=typer.colors.YELLOW,
            )
        for note in summary.get("notes", []):
            typer.secho(f"Hinweis: {note}", fg=typer.colors.YELLOW)

    @app.command("buchungen-pruefen")
    def buchungen_pruefen(
        datensatz: int | None = typer.Option(
            None, "--datensatz", help="Nummer der Liste (Standard: die neueste)."
        ),
        wertgrenzen: str | None = typer.Option(
            None,
            "--wertgrenzen",
            help='Vergabe-Wertgrenzen in ganzen Beträgen, z. B. "1000;5000;25000;100000".',
        ),
        tage_aehnlich: int | None = typer.Option(
            None,
            "--tage-aehnlich",
            min=0,
            max=90,
            help="Ähnliche Zahlungen: höchstens so viele Tage auseinander (7).",
        ),
        toleranz: float | None = typer.Option(
            None,
            "--toleranz",
            min=0,
            max=20,
            help="Ähnliche Zahlungen: Betragsabweichung in % (1).",
        ),
        tage_splitting: int | None = typer.Option(
            None,
            "--tage-splitting",
            min=1,
            max=365,
            help="Auftragsteilung: Zeitfenster in Tagen (30).",
        ),
        neu_ab: float | None = typer.Option(
            None, "--neu-ab", min=0, help="Neue Lieferanten: Summe der ersten 30 Tage ab (25000)."
        ),
        land: str | None = typer.Option(
            None, "--land", help="Feiertage: Staat (ISO-Code, Standard DE)."
        ),
        region: str | None = typer.Option(
            None, "--region", help="Feiertage: Land/Region (Standard: Land der Kommune)."
        ),
        waehrung: str | None = typer.Option(None, "--waehrung", help="Währungszeichen (€)."),
        kommune: str | None = TenantOpt,
    ) -> None:
        """Prüfungen laufen lassen; bestehende Entscheidungen bleiben erhalten."""
        from rathaus.cli.common import database
        from rathaus.insights import bookings

        try:
            overrides = {
                "near_days": tage_aehnlich,
                "near_tolerance_pct": toleranz,
                "split_days": tage_splitting,
                "new_amount_cents": round(neu_ab * 100) if neu_ab is not None else None,
                "currency": waehrung,
                "split_thresholds_cents": bookings.parse_thresholds(wertgrenzen)
                if wertgrenzen
                else None,
            }
            with database().session() as session:
                tenant = _tenant(session, kommune)
                dataset = _latest(session, tenant, datensatz)
                if land:
                    overrides["holiday_country"] = land.upper()
                    overrides["holiday_subdiv"] = region.upper() if region else ""
                elif region:
                    overrides["holiday_subdiv"] = region.upper()
                config = bookings.config_for(tenant, **overrides)
                report = bookings.run_checks(
                    session, tenant=tenant, dataset=dataset, config=config, actor="cli"
                )
                dataset_id = dataset.id
        except RathausError as exc:
            _fail(exc)
        from rathaus.insights.booking_checks import KINDS

        typer.echo(
            f"Liste {dataset_id}: {report.new} neue Hinweise, {report.updated} bestätigt, "
            f"{report.removed} offene entfallen, {report.kept_decided} entschiedene behalten."
        )
        for kind, label in KINDS.items():
            typer.echo(f"  {label}: {report.counts.get(kind, 0)}")

    @app.command("buchungen")
    def buchungen(
        datensatz: int | None = typer.Option(
            None, "--datensatz", help="Nummer der Liste (Standard: die neueste)."
        ),
        art: str = typer.Option("", "--art", help="Nur diese Prüfung (duplikat, aehnlich, …)."),
        status: str = typer.Option("", "--status", help="offen, unauffaellig oder pruefen."),
        lieferant: str = typer.Option("", "--lieferant", help="Lieferant enthält diesen Text."),
        limit: int = typer.Option(50, "--limit", min=1, max=100_000, help="Höchstens so viele."),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
        kommune: str | None = TenantOpt,
    ) -> None:
        """Prüfhinweise der Liste auflisten (Stärkste zuerst)."""
        from rathaus.cli.common import database
        from rathaus.insights import bookings
        from rathaus.insights.booking_checks import KINDS

        try:
            with database().session() as session:
                tenant = _tenant(session, kommune)
                dataset = _latest(session, tenant, datensatz)
                flags, total = bookings.list_flags(
                    session, dataset, kind=art, status=status, supplier=lieferant, limit=limit
                )
                items = [
                    {
                        "id": f.id,
                        "kind": f.kind,
                        "supplier": f.supplier,
                        "payment_ids": f.payment_ids,
                        "score": f.score,
                        "explanation": f.explanation,
                        "status": f.status,
                        "decision_note": f.decision_note,
                        "decided_by": f.decided_by,
                        "decided_at": f.decided_at.isoformat() if f.decided_at else None,
                    }
                    for f in flags
                ]
                dataset_id, name = dataset.id, dataset.name
        except RathausError as exc:
            _fail(exc)
        if as_json:
            data = {"dataset": dataset_id, "total": total, "flags": items}
            typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
            return
        typer.echo(f"Liste {dataset_id} „{name}“: {total} Prüfhinweise (gezeigt {len(items)}).")
        for item in items:
            typer.echo(
                f"#{item['id']} [{KINDS.get(item['kind'], item['kind'])} · "
                f"{bookings.STATUSES.get(item['status'], item['status'])}] {item['explanation']}"
            )

    @eval_app.command("bookings")
    def eval_bookings(
        data: Path = typer.Option(DEFAULT_DATA, "--data", help="Zahlungsliste (CSV, auch .gz)."),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
        seed: int = typer.Option(2024, "--seed", help="Startwert der Zufallsauswahl."),
        anzahl: int = typer.Option(50, "--anzahl", min=1, max=1000, help="Anomalien je Art."),
        limit: int | None = typer.Option(None, "--limit", help="Nur die ersten N Zeilen."),
        seeds: int = typer.Option(
            1,
            "--seeds",
            min=1,
            max=200,
            help="Anzahl Startwerte (--seed, --seed+1, …): Mittel und Streuung der Trefferquote.",
        ),
    ) -> None:
        """Bekannte Anomalien in echte Zahlungen einstreuen: Trefferquote und Hinweise je 1000."""
        from rathaus.cli.eval_cmd import record_run
        from rathaus.insights.booking_eval import evaluate_bookings

        try:
            result = evaluate_bookings(data, seed=seed, per_kind=anzahl, limit=limit, seeds=seeds)
        except RathausError as exc:
            _fail(exc)
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
            record_run("bookings", result, data)
            return
        kinds = ", ".join(f"{k} {pct(v, 0)}" for k, v in result["recall_by_kind"].items())
        typer.echo(
            f"{result['real_payments']} echte Zahlungen, {result['injected_anomalies']} "
            f"eingestreute Anomalien: Trefferquote {pct(result['recall'])} ({kinds}); "
            f"{num(result['flags_per_1000'])} Hinweise je 1000 echte Zahlungen."
        )
        if "multi_seed" in result:
            multi = result["multi_seed"]
            recall = multi["recall"]
            kinds = ", ".join(f"{k} {pct(v['mean'])}" for k, v in multi["recall_by_kind"].items())
            typer.echo(
                f"Über {len(multi['seeds'])} Startwerte ({multi['seeds'][0]}–"
                f"{multi['seeds'][-1]}): Trefferquote im Mittel {pct(recall['mean'])} "
                f"(95-%-Intervall {pct(recall['ci95'][0])}–{pct(recall['ci95'][1])}, "
                f"Spanne {pct(recall['min'])}–{pct(recall['max'])}; {kinds}); "
                f"{num(multi['flags_per_1000']['mean'])} Hinweise je 1000 echte Zahlungen."
            )
        record_run("bookings", result, data)
