"""``rathaus audit``: Prüfprotokoll: Hash-Kette prüfen, exportieren, Export-Signatur prüfen."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="Prüfprotokoll: Hash-Kette prüfen, exportieren, Export-Signatur prüfen.",
    no_args_is_help=True,
)

TenantOpt = typer.Option(
    None,
    "--mandant",
    "--kommune",
    help="Kommune (Kürzel). Ohne Angabe: alle Kommunen und die Systemkette.",
)


def _number(n: int) -> str:
    return f"{n:,}".replace(",", ".")


@app.callback()
def _group() -> None:
    """Prüfprotokoll: Hash-Kette prüfen, exportieren, Export-Signatur prüfen."""


@app.command("verify")
def verify(
    mandant: str | None = TenantOpt,
    as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben."),
) -> None:
    """Hash-Ketten neu berechnen; nennt den ersten gebrochenen Eintrag (Exit-Code 1)."""
    from rathaus.cli.common import database, settings
    from rathaus.core.repo import tenant_by_slug
    from rathaus.governance.audit_log import describe_break, verify_all

    s = settings()
    with database(s).session() as session:
        tenant = tenant_by_slug(session, mandant) if mandant else None
        reports = verify_all(session, tenant)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=2))
    else:
        for report in reports:
            result = report.result
            if report.ok:
                typer.echo(
                    f"{report.label}: {_number(result.checked)} Einträge geprüft – Kette intakt."
                )
            else:
                assert result.broken is not None
                typer.echo(
                    f"{report.label}: Kette GEBROCHEN nach {_number(result.checked - 1)} "
                    "intakten Einträgen."
                )
                typer.echo(f"  {describe_break(result.broken)}")
    broken = [r for r in reports if not r.ok]
    if broken:
        typer.secho(
            f"Fehler: {len(broken)} von {len(reports)} Ketten sind gebrochen. Das Prüfprotokoll "
            "wurde außerhalb von Rathaus verändert; bitte die Datenschutz- und IT-Sicherheits"
            "beauftragten informieren und die Datenbank-Sicherung zum Vergleich heranziehen.",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(1)


@app.command("export")
def export(
    ausgabe: Path = typer.Option(..., "--ausgabe", help="Zieldatei; die Signatur: DATEI.sig."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl oder csv."),
    mandant: str | None = TenantOpt,
    von: str | None = typer.Option(None, "--von", help="Erster Tag (JJJJ-MM-TT)."),
    bis: str | None = typer.Option(None, "--bis", help="Letzter Tag (JJJJ-MM-TT)."),
) -> None:
    """Prüfprotokoll als JSON Lines oder CSV mit Signaturdatei (HMAC-SHA256) exportieren."""
    from rathaus.cli.common import database, settings
    from rathaus.core.errors import RathausError
    from rathaus.core.repo import tenant_by_slug
    from rathaus.governance.audit_log import FORMATS, Period, export_to_file, signature_path

    if fmt not in FORMATS:
        raise RathausError(f"Unbekanntes Format „{fmt}“. Erlaubt: {', '.join(FORMATS)}.")
    period = Period.parse(von, bis)
    if ausgabe.is_dir():
        raise RathausError(f"{ausgabe} ist ein Verzeichnis. Bitte einen Dateinamen angeben.")
    s = settings()
    with database(s).session() as session:
        tenant = tenant_by_slug(session, mandant) if mandant else None
        sig = export_to_file(
            session,
            ausgabe,
            fmt=fmt,
            tenant=tenant,
            period=period,
            secret_key=s.secret_key.get_secret_value(),
        )
    typer.echo(
        f"{_number(sig['rows'])} Einträge aus {len(sig['chains'])} Kette(n) nach {ausgabe} "
        f"geschrieben; Signatur: {signature_path(ausgabe)}."
    )


@app.command("export-pruefen")
def check(
    datei: Path = typer.Argument(..., help="Exportdatei; DATEI.sig muss daneben liegen."),
    nur_kette: bool = typer.Option(
        False,
        "--nur-kette",
        help="Ohne den geheimen Schlüssel: nur Dateihash und Kette prüfen, nicht die HMAC-Signatur.",
    ),
) -> None:
    """Signatur, Dateihash und Kette eines Exports prüfen (Exit-Code 1 bei Abweichung)."""
    from rathaus.governance.audit_log import check_export

    secret = None
    if not nur_kette:
        from rathaus.cli.common import settings

        secret = settings().secret_key.get_secret_value()
    result = check_export(datei, secret_key=secret)
    chains = ", ".join(
        f"{'Systemkette' if k == 'system' else f'Mandant-Nr. {k}'}: {_number(n)}"
        for k, n in result.chains.items()
    )
    typer.echo(f"{datei}: {_number(result.rows)} Einträge, Kette unversehrt ({chains or 'leer'}).")
    typer.echo(
        "Signatur (HMAC-SHA256) gültig."
        if result.signature_checked
        else "Signatur NICHT geprüft (--nur-kette): nur Dateihash und Verkettung sind bestätigt."
    )
    if result.complete_from_start:
        typer.echo("Der Export beginnt bei jeder Kette mit ihrem ersten Eintrag.")
    else:
        typer.echo(
            "Der Export ist ein Ausschnitt (Zeitraum): seine erste Verkettung ist nicht prüfbar."
        )
