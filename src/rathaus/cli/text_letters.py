"""`rathaus text pressemitteilung|brief|uebersetzen|bausteine …`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rathaus.cli.common import database, settings
from rathaus.core.errors import RathausError

TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)


class BadInputError(RathausError):
    """Wrong input on the command line: exit code 2."""

    exit_code = 2


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise BadInputError(f"Die Datei {path} gibt es nicht.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(
            f"Die Datei {path} lässt sich nicht als UTF-8-Text lesen ({exc})."
        ) from exc


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise BadInputError(f"Die Datei {path} lässt sich nicht schreiben ({exc}).") from exc
    typer.echo(f"Geschrieben: {path}")


def _tenant(session, slug: str | None):  # type: ignore[no-untyped-def]
    from rathaus.core.errors import NotFoundError
    from rathaus.core.repo import tenant_by_slug

    try:
        return tenant_by_slug(session, slug or settings().default_tenant)
    except NotFoundError as exc:
        raise BadInputError(exc.message) from exc


def _model(s, tenant_id: int, function: str):  # type: ignore[no-untyped-def]
    from rathaus.ai.calls import DatabaseRecorder, RecordingLanguageModel
    from rathaus.ai.registry import get_language_model
    from rathaus.governance.gateway import scoped

    inner = get_language_model(s, function.removeprefix("texte."))
    if inner is None:
        return None
    recording = RecordingLanguageModel(
        inner, DatabaseRecorder(database(s)), function=function, actor="cli", tenant_id=tenant_id
    )
    # Press texts and translations are internal; the operator sees the real values again.
    return scoped(recording, level="intern", tenant_id=tenant_id, may_reidentify=True, actor="cli")


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this file's commands to ``rathaus text`` (and its measurements to ``rathaus eval``)."""
    app.command("pressemitteilung")(pressemitteilung)
    app.command("brief")(brief)
    app.command("uebersetzen")(uebersetzen)
    bausteine = typer.Typer(
        help="Textbausteine: auflisten, anlegen, anzeigen.", no_args_is_help=True
    )
    bausteine.command("liste")(bausteine_liste)
    bausteine.command("neu")(bausteine_neu)
    bausteine.command("anzeigen")(bausteine_anzeigen)
    app.add_typer(bausteine, name="bausteine")


def pressemitteilung(
    stichpunkte: Path = typer.Option(
        ...,
        "--stichpunkte",
        help="Datei mit Stichpunkten (Thema:, Fakten: - …, Zitat: …) oder JSON.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Ergebnis als JSON ausgeben."),
    mit_modell: bool = typer.Option(
        False, "--mit-modell", help="Zusätzlich vom eingestellten Sprachmodell formulieren lassen."
    ),
    docx: Path | None = typer.Option(
        None,
        "--docx",
        help="Als DOCX: die Fassung des Modells, wenn es eine schrieb, sonst die zusammengesetzte.",
    ),
    kommune: str | None = TenantOpt,
) -> None:
    """Pressemitteilung aus Stichpunkten (Entwurf; ohne neue Fakten)."""
    from rathaus.writing import press

    points = press.parse_key_points(_read(stichpunkte))
    s = settings()
    with database(s).session() as session:
        tenant = _tenant(session, kommune)
        place, tenant_id = tenant.city, tenant.id
    assembled = press.from_key_points(points, place=place)
    generated = None
    if mit_modell:
        model = _model(s, tenant_id, "texte.pressemitteilung")
        if model is None:
            typer.secho("Kein Sprachmodell eingerichtet (RATHAUS_LLM__BACKEND=none).", err=True)
        else:
            generated, _ = press.generate(points, model, place=place)
    if docx is not None:
        _write(docx, press.to_docx(generated or assembled))
    if as_json:
        out = {"zusammengesetzt": assembled.as_dict()}
        if generated is not None:
            out["erzeugt"] = generated.as_dict()
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if generated is not None:
        typer.echo(generated.text())
        typer.echo("-" * 72)
    typer.echo(assembled.text())


def brief(
    baustein: str = typer.Option(..., "--baustein", help="Name (oder Nummer) des Textbausteins."),
    vorgang: str | None = typer.Option(None, "--vorgang", help="Aktenzeichen des Vorgangs."),
    pdf: Path | None = typer.Option(None, "--pdf", help="PDF hierhin schreiben."),
    docx: Path | None = typer.Option(None, "--docx", help="DOCX hierhin schreiben."),
    empfaenger: str | None = typer.Option(None, "--empfaenger", help="Name des Empfängers."),
    anschrift: str | None = typer.Option(
        None, "--anschrift", help="Anschrift, Zeilen mit Komma getrennt."
    ),
    kommune: str | None = TenantOpt,
) -> None:
    """Brief nach DIN 5008 aus einem Textbaustein und einem Vorgang (PDF/DOCX)."""
    from sqlalchemy import select

    from rathaus.core.models import Case
    from rathaus.writing import letters
    from rathaus.writing import templates as tb

    s = settings()
    with database(s).session() as session:
        tenant = _tenant(session, kommune)
        rows = tb.list_all(session, tenant_id=tenant.id)
        wanted = baustein.strip().lower()
        template = next((r for r in rows if r.name.lower() == wanted or str(r.id) == wanted), None)
        if template is None:
            raise BadInputError(
                f"Einen Textbaustein „{baustein}“ gibt es nicht. "
                "`rathaus text bausteine liste` zeigt alle."
            )
        if vorgang:
            case = session.scalar(
                select(Case).where(Case.tenant_id == tenant.id, Case.reference == vorgang.strip())
            )
            if case is None:
                raise BadInputError(
                    f"Einen Vorgang mit dem Aktenzeichen „{vorgang}“ gibt es nicht."
                )
            letter = letters.letter_from_case(
                case, tenant, template, recipient_name=empfaenger, recipient_address=anschrift
            )
        else:
            letter = letters.letter_from_fields(
                tenant,
                subject=template.subject,
                body=template.body,
                values={},
                recipient_name=empfaenger or "",
                recipient_address=anschrift or "",
            )
    if pdf is not None:
        _write(pdf, letters.to_pdf(letter))
    if docx is not None:
        _write(docx, letters.to_docx(letter))
    if pdf is None and docx is None:
        typer.echo(letter.plain_text())
    if letter.gaps:
        typer.secho(f"Es fehlen Angaben: {', '.join(letter.gaps)}.", fg=typer.colors.YELLOW)
    if letter.unknown:
        typer.secho(f"Unbekannte Platzhalter: {', '.join(letter.unknown)}.", fg=typer.colors.YELLOW)


def uebersetzen(
    datei: Path = typer.Argument(..., help="Textdatei (UTF-8) mit dem deutschen Text."),
    nach: str = typer.Option(..., "--nach", help="Zielsprache, z. B. en, tr, ar, uk, ru, pl, fr."),
    kommune: str | None = TenantOpt,
) -> None:
    """Text übersetzen (nur mit einem Modellserver, RATHAUS_LLM__BACKEND=openai)."""
    from rathaus.ai.registry import backend_for
    from rathaus.writing import translate

    text = _read(datei)
    try:
        translate.check_request(text, nach)
    except RathausError as exc:
        raise BadInputError(exc.message) from exc
    s = settings()
    backend = backend_for(s, "uebersetzung")
    reason = translate.unavailable_reason(backend)
    if reason:
        raise BadInputError(reason)
    with database(s).session() as session:
        tenant_id = _tenant(session, kommune).id
    result = translate.translate(
        text, nach, model=_model(s, tenant_id, "texte.uebersetzung"), backend=backend
    )
    typer.secho(result.label, err=True)
    if result.lost:
        typer.secho(
            "Es fehlen Zahlen, Daten oder Beträge des Originals: " + ", ".join(result.lost),
            err=True,
            fg=typer.colors.YELLOW,
        )
    typer.echo(result.text)


def bausteine_liste(kommune: str | None = TenantOpt) -> None:
    """Alle Textbausteine der Kommune."""
    from rathaus.core.models import OrgUnit
    from rathaus.writing import templates as tb

    with database().session() as session:
        tenant = _tenant(session, kommune)
        rows = tb.list_all(session, tenant_id=tenant.id)
        units = {u.id: u.code for u in session.query(OrgUnit).filter_by(tenant_id=tenant.id)}
        if not rows:
            typer.echo("Keine Textbausteine vorhanden.")
        for row in rows:
            where = units.get(row.org_unit_id, "?") if row.org_unit_id else "alle"
            typer.echo(f"{row.id:>4}  {tb.KINDS.get(row.kind, row.kind):<16} {where:<6} {row.name}")


def bausteine_neu(
    name: str = typer.Option(..., "--name", help="Name des Textbausteins."),
    datei: Path = typer.Option(..., "--datei", help="Textdatei mit dem Text ({{platzhalter}})."),
    art: str = typer.Option("baustein", "--art", help="baustein, brief oder pressemitteilung."),
    betreff: str = typer.Option("", "--betreff", help="Betreff (für Briefe)."),
    einheit: str | None = typer.Option(
        None, "--einheit", help="Kürzel der Organisationseinheit (leer: für alle)."
    ),
    kommune: str | None = TenantOpt,
) -> None:
    """Textbaustein anlegen; Platzhalter werden geprüft."""
    from sqlalchemy import select

    from rathaus.core.models import OrgUnit
    from rathaus.writing import templates as tb

    body = _read(datei)
    with database().session() as session:
        tenant = _tenant(session, kommune)
        unit_id = None
        if einheit:
            unit_id = session.scalar(
                select(OrgUnit.id).where(OrgUnit.tenant_id == tenant.id, OrgUnit.code == einheit)
            )
            if unit_id is None:
                raise BadInputError(f"Eine Organisationseinheit „{einheit}“ gibt es nicht.")
        data = tb.TemplateData(name=name, body=body, kind=art, subject=betreff, org_unit_id=unit_id)
        try:
            row = tb.create_for_tenant(session, tenant_id=tenant.id, data=data)
        except tb.TemplateInvalidError as exc:
            raise BadInputError(exc.message) from exc
        typer.echo(f"Textbaustein {row.id} „{row.name}“ angelegt.")


def bausteine_anzeigen(
    name: str = typer.Argument(..., help="Name oder Nummer des Textbausteins."),
    kommune: str | None = TenantOpt,
) -> None:
    """Einen Textbaustein mit seinen Platzhaltern zeigen."""
    from rathaus.writing import templates as tb

    with database().session() as session:
        tenant = _tenant(session, kommune)
        wanted = name.strip().lower()
        row = next(
            (
                r
                for r in tb.list_all(session, tenant_id=tenant.id)
                if r.name.lower() == wanted or str(r.id) == wanted
            ),
            None,
        )
        if row is None:
            raise BadInputError(f"Einen Textbaustein „{name}“ gibt es nicht.")
        typer.echo(f"{row.name} ({tb.KINDS.get(row.kind, row.kind)})")
        if row.subject:
            typer.echo(f"Betreff: {row.subject}")
        typer.echo("")
        typer.echo(row.body)
        typer.echo("")
        used = tb.template_placeholders(row)
        typer.echo("Platzhalter: " + (", ".join(used) if used else "keine"))
