"""``rathaus lage``: Prognose des Eingangsvolumens.

``prognose`` forecasts own cases (all, per department, per service) or an imported series,
``zeitreihen`` lists what can be forecast, ``zeitreihe-import`` imports a count series (CSV or
XLSX, aggregated or one row per request); ``rathaus eval forecast`` measures the model on
Boston's 311 requests of 2015 (protocol in docs/forecast.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rathaus.core.numbers import german_number as num
from rathaus.core.numbers import german_percent as pct

TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)
DEFAULT_BOSTON = Path("../shared/data/forecasting/boston311_2015_subset.csv.gz")


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}".replace(".", ",")


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this function's commands to ``rathaus lage`` and its measurement to ``rathaus eval``."""

    @app.command("prognose")
    def prognose(
        quelle: str = typer.Option(
            "alle",
            "--quelle",
            help="alle, amt:<Nr. oder Kürzel>, leistung:<Nr. oder Kürzel> oder "
            "datensatz:<Nr.>:<Reihe> (siehe `rathaus lage zeitreihen`).",
        ),
        horizont: int | None = typer.Option(
            None,
            "--horizont",
            help="Tage (bis 184, Standard 28) bzw. Wochen (bis 52, Standard 12).",
        ),
        aufloesung: str = typer.Option("tag", "--aufloesung", help="tag oder woche."),
        faelle: float | None = typer.Option(
            None, "--faelle-je-personentag", help="Für den Personalbedarf je Woche."
        ),
        kommune: str | None = TenantOpt,
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    ) -> None:
        """Eingänge der nächsten Tage oder Wochen mit 80-/95-%-Intervallen und Rückblick-Fehler."""
        from rathaus.cli.common import database, settings
        from rathaus.core.repo import tenant_by_slug
        from rathaus.insights.forecast import DEFAULT_HORIZON
        from rathaus.insights.forecast_service import run_forecast

        s = settings()
        with database(s).session() as session:
            tenant = tenant_by_slug(session, kommune or s.default_tenant)
            result = run_forecast(
                session,
                tenant,
                quelle,
                horizon=horizont or DEFAULT_HORIZON.get(aufloesung, 28),
                freq=aufloesung,
                cases_per_person_day=faelle,
            )
        if as_json:
            typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
            return
        fc, bt = result.forecast, result.forecast.backtest
        typer.echo(f"Prognose {fc.series} ({'Tage' if fc.freq == 'tag' else 'Wochen'}):")
        typer.echo(
            f"Rückblick: MASE {_num(bt.mase, 2)} (unter 1: besser als gleicher Wochentag der "
            f"Vorwoche), im 80-%-Intervall {_num(bt.coverage80 and bt.coverage80 * 100, 0)} %, "
            f"im 95-%-Intervall {_num(bt.coverage95 and bt.coverage95 * 100, 0)} % "
            f"({bt.origins} Ursprünge)."
        )
        typer.echo(f"{'Beginn':<11} {'erwartet':>9} {'80 %':>17} {'95 %':>17}")
        for r in fc.rows:
            holiday = f"  {', '.join(r.holidays)}" if r.holidays else ""
            typer.echo(
                f"{r.start:%d.%m.%Y} {_num(r.expected):>9} "
                f"{_num(r.lower80):>8}–{_num(r.upper80):<8} "
                f"{_num(r.lower95):>8}–{_num(r.upper95):<8}{holiday}"
            )
        if result.staffing:
            typer.echo(f"\nPersonalbedarf ({_num(faelle)} Fälle je Personentag):")
            for row in result.staffing:
                typer.echo(
                    f"Woche ab {row.week_start:%d.%m.%Y}: {_num(row.person_days)} Personentage "
                    f"(80 %: {_num(row.lower80)}–{_num(row.upper80)})"
                )
        for note in fc.notes:
            typer.echo(f"Hinweis: {note}")

    @app.command("zeitreihen")
    def zeitreihen(
        kommune: str | None = TenantOpt,
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    ) -> None:
        """Zeitreihen, die prognostiziert werden können (für --quelle)."""
        from rathaus.cli.common import database, settings
        from rathaus.core.repo import tenant_by_slug
        from rathaus.insights.forecast_data import list_sources

        s = settings()
        with database(s).session() as session:
            tenant = tenant_by_slug(session, kommune or s.default_tenant)
            sources = list_sources(session, tenant.id)
        if as_json:
            data = [{"key": x.key, "label": x.label, "group": x.group} for x in sources]
            typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
            return
        for x in sources:
            typer.echo(f"{x.key:<40} {x.label} ({x.group})")

    @app.command("zeitreihe-import")
    def zeitreihe_import(
        datei: Path = typer.Argument(..., help="CSV (auch .csv.gz) oder XLSX."),
        format: str = typer.Option(  # noqa: A002 - the option's name
            "auto",
            "--format",
            help="aggregiert (Datum; Reihe; Anzahl), einzeln (eine Zeile je Anliegen) oder auto.",
        ),
        spalte_datum: str = typer.Option("", "--spalte-datum", help="Spalte mit dem Datum."),
        spalte_reihe: str = typer.Option(
            "", "--spalte-reihe", help="Spalte mit der Reihe (z. B. Amt, Department)."
        ),
        spalte_anzahl: str = typer.Option(
            "", "--spalte-anzahl", help="Spalte mit der Anzahl (nur aggregiert)."
        ),
        name: str = typer.Option("", "--name", help="Name des Datensatzes (Standard: Dateiname)."),
        kommune: str | None = TenantOpt,
        as_json: bool = typer.Option(False, "--json", help="Ergebnis als JSON ausgeben."),
    ) -> None:
        """Eine Zeitreihe importieren – ganz oder gar nicht; das Original wird aufbewahrt."""
        from rathaus.cli.common import database, settings
        from rathaus.core.errors import RathausError
        from rathaus.core.repo import tenant_by_slug
        from rathaus.core.storage import OriginalStore
        from rathaus.insights.forecast_data import dataset_info, import_series

        if not datei.is_file():
            raise RathausError(f"Die Datei {datei} gibt es nicht. Bitte den Pfad prüfen.")
        s = settings()
        mapping = {"datum": spalte_datum, "reihe": spalte_reihe, "anzahl": spalte_anzahl}
        with database(s).session() as session:
            tenant = tenant_by_slug(session, kommune or s.default_tenant)
            dataset = import_series(
                session,
                OriginalStore(s.originals_dir),
                tenant_id=tenant.id,
                data=datei.read_bytes(),
                filename=datei.name,
                name=name,
                mapping={k: v for k, v in mapping.items() if v},
                layout=format,
                created_by="cli",
            )
            info = dataset_info(dataset)
        if as_json:
            typer.echo(json.dumps(info, ensure_ascii=False, indent=2))
            return
        typer.echo(
            f"Importiert als Datensatz {info['id']} „{info['name']}“: {info['rows']} Zeilen, "
            f"{len(info['series'])} Reihe(n), {info['first_day']} bis {info['last_day']} "
            f"(Format {info['format']})."
        )
        for series in sorted(info["series"]):
            typer.echo(f"  --quelle 'datensatz:{info['id']}:{series}'")

    @eval_app.command("forecast")
    def forecast_eval(
        data: Path = typer.Option(DEFAULT_BOSTON, "--data", help="Boston-311-CSV (auch .gz)."),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
        validierung: bool = typer.Option(
            False,
            "--validierung",
            help="Auf der Validierungsaufteilung (Vergangenheit Jan–Jun, Test Jul–Sep) messen, "
            "mit der die Einstellungen gewählt wurden.",
        ),
        abteilungen: str = typer.Option(
            "", "--abteilungen", help="Nur diese Abteilungen (Komma-getrennt)."
        ),
    ) -> None:
        """Volumenprognose: je Abteilung Jan–Sep 2015 → Okt–Dez, MASE und 80-%-Abdeckung."""
        from rathaus.cli.eval_cmd import record_run
        from rathaus.insights.forecast_eval import TEST, VALIDATION, evaluate_forecast

        wanted = [a.strip() for a in abteilungen.split(",") if a.strip()] or None
        result = evaluate_forecast(
            data, departments=wanted, split=VALIDATION if validierung else TEST
        )
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
            record_run("forecast", result, data)
            return
        typer.echo(
            f"MASE {num(result['mase'], 3)} (Mittel über {result['n_departments']} Abteilungen), "
            f"80-%-Abdeckung {pct(result['coverage_80'])}, 95-%-Abdeckung "
            f"{pct(result['coverage_95'])}."
        )
        for name, d in result["departments"].items():
            typer.echo(
                f"  {name:<8} MASE {num(d['mase'], 3)}  80 %: {pct(d['coverage_80'])}  "
                f"95 %: {pct(d['coverage_95'])}  ({num(d['mean_per_day_history'])} je Tag)"
            )
        secondary = result["secondary_92_days_ahead"]
        typer.echo(
            f"Zweitwert (92 Tage im Voraus, ein Ursprung): MASE {num(secondary['mase'], 3)}, "
            f"80-%-Abdeckung {pct(secondary['coverage_80'])}."
        )
        excluded = result["excluded"]["departments"]
        if excluded:
            typer.echo(f"Ausgelassen ({result['excluded']['rule']}): {', '.join(excluded)}.")
        record_run("forecast", result, data)
