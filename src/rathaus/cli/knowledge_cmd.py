"""`rathaus wissen …`: the citizen assistant's knowledge base (import, list, re-index)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from rathaus.cli.common import database, settings

app = typer.Typer(
    help="Wissensbasis des Bürgerassistenten: importieren, auflisten, neu indexieren.",
    no_args_is_help=True,
)
TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)
MAX_FAILED_SHOWN = 25


def _tenant(session, slug: str | None):  # type: ignore[no-untyped-def]
    from rathaus.core.repo import tenant_by_slug

    return tenant_by_slug(session, slug or settings().default_tenant)


def _public(embedder):  # type: ignore[no-untyped-def]
    """The knowledge base is the municipality's public information: level oeffentlich."""
    from rathaus.governance.gateway import scoped

    return scoped(embedder, level="oeffentlich", actor="wissen")


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A transient progress bar on stderr (stdout keeps only the summary); the callback
    advances it by the number of entries done."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.advance(task, done)


def _who(name: str | None) -> str:
    """The person running the import: ``--bearbeitet-von``, else the operating-system user,
    else "cli" (no user name to be had, e.g. in a container without a passwd entry)."""
    import getpass

    if name is not None:
        name = " ".join(name.split())
        if not name:
            raise typer.BadParameter("Bitte einen Namen angeben.", param_hint="--bearbeitet-von")
        return name[:100]
    try:
        return getpass.getuser() or "cli"
    except (KeyError, OSError):
        return "cli"


@app.command("import")
def import_(
    path: Path = typer.Argument(
        ..., help="Datei oder Ordner (alle unterstützten Dateien darin, auch in Unterordnern)."
    ),
    format_: str | None = typer.Option(
        None,
        "--format",
        help="muenchen, csv, json, markdown, html oder pdf (Standard: an Endung und Inhalt "
        "erkennen; bei einem Ordner nur Dateien dieses Formats).",
    ),
    quelle: str | None = typer.Option(
        None,
        "--quelle",
        help="Name der Quelle (Standard: nach Format, z. B. muenchen-dldb, csv, markdown). "
        "Zusammen mit der Kennung identifiziert sie einen Eintrag beim erneuten Import.",
    ),
    bearbeitet_von: str | None = typer.Option(
        None,
        "--bearbeitet-von",
        help="Wer importiert (erscheint in den Versionen und im Protokoll); Standard: der "
        "Benutzername des Betriebssystems.",
    ),
    kommune: str | None = TenantOpt,
) -> None:
    """Wissen importieren; ein erneuter Import aktualisiert, statt zu verdoppeln."""
    from rathaus.ai.registry import get_embedder
    from rathaus.assistant import knowledge
    from rathaus.assistant.importers import ReadReport, read_entries
    from rathaus.core import audit

    # Everything is read before the database is touched: a file that does not parse stops the
    # import (exit code 1) with nothing half-written.
    who = _who(bearbeitet_von)
    read = ReadReport()
    entries = list(read_entries(path, format_, source=quelle, report=read))
    s = settings()
    failed = list(read.failed)
    with database(s).session() as session:
        tenant = _tenant(session, kommune)
        if entries:
            with _progress("Importiere Wissen", len(entries)) as advance:
                report = knowledge.upsert_entries(
                    session,
                    tenant_id=tenant.id,
                    entries=entries,
                    embedder=_public(get_embedder(s)),
                    progress=advance,
                    actor=who,
                )
            failed += report.failed
            counts = (report.created, report.updated, report.unchanged)
            audit.record(
                session,
                audit.Event(
                    kind="knowledge_imported",
                    actor=f"cli:{who}",
                    tenant_id=tenant.id,
                    subject=f"knowledge_import:{path.name}",
                    data={
                        "file": path.name,
                        "created": report.created,
                        "updated": report.updated,
                        "unchanged": report.unchanged,
                        "failed": len(failed),
                    },
                ),
            )
        else:
            counts = (0, 0, 0)
    files = f"{read.files} Datei" if read.files == 1 else f"{read.files} Dateien"
    typer.echo(f"{path.name or path}: {files}, {len(entries) + len(read.failed)} Einträge gelesen.")
    typer.echo(
        f"Neu: {counts[0]} / aktualisiert: {counts[1]} / unverändert: {counts[2]} / "
        f"fehlerhaft: {len(failed)}"
    )
    for where, reason in failed[:MAX_FAILED_SHOWN]:
        typer.secho(f"  {where}: {reason}", fg=typer.colors.RED)
    if len(failed) > MAX_FAILED_SHOWN:
        typer.echo(f"  … und {len(failed) - MAX_FAILED_SHOWN} weitere.")
    for note in read.notes:
        typer.secho(f"Hinweis: {note}", fg=typer.colors.YELLOW)
    if not entries and failed:
        raise typer.Exit(1)


def _local_date(at: dt.datetime | None) -> str:
    if at is None:
        return "nie"
    if at.tzinfo is None:  # SQLite gives back UTC without a zone
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(ZoneInfo("Europe/Berlin")).strftime("%d.%m.%Y")


@app.command("liste")
def list_(
    quelle: str | None = typer.Option(None, "--quelle", help="Nur Einträge dieser Quelle."),
    kommune: str | None = TenantOpt,
) -> None:
    """Einträge der Wissensbasis mit Nummer, Quelle, Titel, Zahl der Abschnitte und Prüfdatum."""
    from sqlalchemy import func, select

    from rathaus.core.models import KnowledgeChunk, KnowledgeEntry

    with database().session() as session:
        tenant = _tenant(session, kommune)
        query = (
            select(KnowledgeEntry, func.count(KnowledgeChunk.id))
            .outerjoin(KnowledgeChunk, KnowledgeChunk.entry_id == KnowledgeEntry.id)
            .where(KnowledgeEntry.tenant_id == tenant.id)
            .group_by(KnowledgeEntry.id)
            .order_by(KnowledgeEntry.source, KnowledgeEntry.title, KnowledgeEntry.id)
        )
        if quelle:
            query = query.where(KnowledgeEntry.source == quelle)
        rows = session.execute(query).all()
        if not rows:
            where = f" aus der Quelle „{quelle}“" if quelle else ""
            typer.echo(
                f"Die Wissensbasis von {tenant.name} enthält keine Einträge{where}. Bitte mit "
                "`rathaus wissen import PFAD` Wissen importieren."
            )
            return
        typer.echo(f"{'Nr.':>5}  {'Quelle':<14} {'Titel':<50} {'Abschn.':>7}  Geprüft")
        for entry, chunks in rows:
            title = entry.title if len(entry.title) <= 50 else entry.title[:49] + "…"
            hidden = "" if entry.is_published else "  (nicht veröffentlicht)"
            typer.echo(
                f"{entry.id:>5}  {entry.source[:14]:<14} {title:<50} {chunks:>7}  "
                f"{_local_date(entry.last_verified_at)}{hidden}"
            )
        typer.echo(f"{len(rows)} Einträge.")


@app.command("neu-indexieren")
def reindex(kommune: str | None = TenantOpt) -> None:
    """Abschnitte, Volltextindex und Vektoren aller Einträge neu aufbauen (z. B. nach einem
    Wechsel des Embedding-Modells); unveränderte Vektoren werden wiederverwendet."""
    from sqlalchemy import func, select

    from rathaus.ai.registry import get_embedder
    from rathaus.assistant import knowledge
    from rathaus.core.models import KnowledgeEntry

    s = settings()
    with database(s).session() as session:
        tenant = _tenant(session, kommune)
        total = session.scalar(
            select(func.count(KnowledgeEntry.id)).where(KnowledgeEntry.tenant_id == tenant.id)
        )
        with _progress("Indexiere Wissen", total or 0) as advance:
            count = knowledge.reindex(
                session, tenant_id=tenant.id, embedder=_public(get_embedder(s)), progress=advance
            )
    typer.echo(f"{count} Einträge von {tenant.name} neu indexiert.")
