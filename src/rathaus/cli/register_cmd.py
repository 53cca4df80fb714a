"""``rathaus register``: KI-Register: Übersicht aller KI-Funktionen exportieren (JSON, PDF)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="KI-Register: Übersicht aller KI-Funktionen exportieren (JSON, PDF).", no_args_is_help=True
)

FORMATS = ("json", "pdf")


@app.callback()
def _group() -> None:
    """KI-Register: Übersicht aller KI-Funktionen exportieren (JSON, PDF)."""


def _fail(message: str, code: int) -> None:
    typer.secho(f"Fehler: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


@app.command("export")
def export(
    ausgabe: Path = typer.Option(..., "--ausgabe", help="Zieldatei."),
    fmt: str = typer.Option("json", "--format", help="json oder pdf."),
    mandant: str | None = typer.Option(
        None,
        "--mandant",
        "--kommune",
        help="Kommune (Kürzel): mit ihrem Zuordnungsmodell und Landesrecht. Ohne Angabe: "
        "das Register der Installation.",
    ),
) -> None:
    """Das KI-Register als JSON oder PDF schreiben (Zweck, Modelle, Risikoklasse, Qualität …)."""
    from rathaus.cli.common import database, settings
    from rathaus.core.errors import RathausError
    from rathaus.core.repo import tenant_by_slug
    from rathaus.governance.register import build_register

    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        _fail(f"Unbekanntes Format „{fmt[:20]}“. Erlaubt sind: json, pdf.", 2)
    if ausgabe.is_dir():
        _fail(f"{ausgabe} ist ein Ordner. Bitte mit --ausgabe einen Dateinamen angeben.", 2)
    if not ausgabe.parent.is_dir():
        _fail(f"Der Ordner {ausgabe.parent} existiert nicht. Bitte zuerst anlegen.", 2)
    try:
        s = settings()
        with database(s).session() as session:
            tenant = tenant_by_slug(session, mandant) if mandant else None
            register = build_register(s, session=session, tenant=tenant)
    except RathausError as exc:
        _fail(exc.message, exc.exit_code)
    if fmt == "json":
        content = (json.dumps(register.as_dict(), ensure_ascii=False, indent=2) + "\n").encode()
    else:
        from rathaus.governance.register_pdf import to_pdf

        try:
            content = to_pdf(register)
        except RathausError as exc:
            _fail(exc.message, exc.exit_code)
    try:
        ausgabe.write_bytes(content)
    except OSError as exc:
        _fail(f"{ausgabe} lässt sich nicht schreiben ({exc.strerror}). Bitte Pfad prüfen.", 1)
    runs = {q.measurement: q.status for e in register.entries for q in e.quality}
    measured = sum(1 for status in runs.values() if status == "gemessen")
    missing = len(runs) - measured
    typer.echo(
        f"KI-Register mit {len(register.entries)} Funktionen nach {ausgabe} geschrieben "
        f"({fmt.upper()}); Messungen: {measured} vorhanden, {missing} noch nicht gemessen."
    )
