"""``rathaus lage kennzahlen``: the dashboard figures on the command line."""

from __future__ import annotations

import json

import typer

TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add ``rathaus lage kennzahlen``."""

    @app.command("kennzahlen")
    def kennzahlen(
        kommune: str | None = TenantOpt,
        von: str | None = typer.Option(None, "--von", help="Beginn, z. B. 01.01.2026."),
        bis: str | None = typer.Option(None, "--bis", help="Ende (inklusive); Standard: heute."),
        einteilung: str = typer.Option("woche", "--einteilung", help="tag, woche oder monat."),
        fachbereich: list[str] = typer.Option(
            [], "--fachbereich", help="Kürzel einer Organisationseinheit (mehrfach möglich)."
        ),
        tabelle: str | None = typer.Option(
            None, "--export", help="Eine Tabelle als CSV auf die Standardausgabe."
        ),
        as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
    ) -> None:
        """Eingang, Rückstand, Bearbeitungszeiten und Fristen der ganzen Kommune."""
        from sqlalchemy import select

        from rathaus.cli.common import database, settings
        from rathaus.core.errors import RathausError
        from rathaus.core.models import OrgUnit
        from rathaus.core.repo import tenant_by_slug
        from rathaus.insights.dashboard import Period, compute
        from rathaus.insights.export import to_csv

        s = settings()
        period = Period.parse(von, bis, einteilung)
        with database(s).session() as session:
            tenant = tenant_by_slug(session, kommune or s.default_tenant)
            codes = dict(
                session.execute(
                    select(OrgUnit.code, OrgUnit.id).where(OrgUnit.tenant_id == tenant.id)
                ).all()
            )
            unknown = [c for c in fachbereich if c not in codes]
            if unknown:
                raise RathausError(
                    f"Unbekannte Organisationseinheit: {', '.join(unknown)}. Vorhanden: "
                    f"{', '.join(sorted(codes))}."
                )
            result = compute(
                session,
                tenant_id=tenant.id,
                period=period,
                allowed_units=None,
                selected_units=[codes[c] for c in fachbereich],
            )
        if tabelle:
            tables = result.tables()
            if tabelle not in tables:
                raise RathausError(f"Unbekannte Tabelle „{tabelle}“. Erlaubt: {', '.join(tables)}.")
            _title, headers, rows = tables[tabelle]
            typer.echo(to_csv(headers, rows).decode("utf-8-sig"), nl=False)
            return
        if as_json:
            typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
            return
        typer.echo(
            f"{tenant.name}, {period.start:%d.%m.%Y}–{period.end:%d.%m.%Y}: {result.received} "
            f"eingegangen, {result.closed} erledigt, {result.sla['open']} offen "
            f"({result.sla['open_overdue']} überfällig)."
        )
        for title, headers, rows in result.tables().values():
            if title.startswith("Eingang und Rückstand") or not rows:
                continue
            typer.echo(f"\n{title}")
            typer.echo("  " + " | ".join(headers))
            for row in rows:
                typer.echo("  " + " | ".join("–" if v is None else str(v) for v in row))
