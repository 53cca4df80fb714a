"""``rathaus inbox``: the Posteingang from the command line: training, model versions, triage."""

from __future__ import annotations

import json

import typer

from rathaus.cli import inbox_io
from rathaus.cli.common import database, settings
from rathaus.core.numbers import german_number as num
from rathaus.core.numbers import german_percent as pct

app = typer.Typer(help="Posteingang: Zuordnungsmodell, Vorprüfung, Import.", no_args_is_help=True)
TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)


def _tenant(session, slug: str | None):  # type: ignore[no-untyped-def]
    from rathaus.core.repo import tenant_by_slug

    return tenant_by_slug(session, slug or settings().default_tenant)


def _describe(version) -> str:  # type: ignore[no-untyped-def]
    m = version.metrics
    live = m.get("live_accuracy")
    compared = f", Live-Modell {pct(live)}" if live is not None else ""
    thresholds = m.get("thresholds", {})
    return (
        f"v{version.version} {version.status:<10} Genauigkeit {pct(m.get('accuracy', 0))} auf "
        f"{m.get('held_out', 0)} zurückgehaltenen Vorgängen{compared}; Prüfung "
        f"{m.get('gate', '?')}; Schwelle {num(thresholds.get('*', float('nan')), 2)}; "
        f"{version.n_train} Vorgänge; {version.trigger}, {version.created_at:%d.%m.%Y %H:%M}"
    )


@app.command("train")
def train(
    kommune: str | None = TenantOpt,
    ohne_embeddings: bool = typer.Option(
        False, "--ohne-embeddings", help="Nur Wortmerkmale (schneller, etwas ungenauer)."
    ),
) -> None:
    """Neues Zuordnungsmodell trainieren; es geht nur live, wenn es nicht schlechter ist."""
    from rathaus.ai.registry import get_embedder
    from rathaus.inbox import training

    s = settings()
    with database(s).session() as session:
        tenant = _tenant(session, kommune)
        version = training.train(
            session,
            tenant,
            data_dir=s.data_dir,
            secret_key=s.secret_key.get_secret_value(),
            embedder=None if ohne_embeddings else get_embedder(s),
            trigger="manuell",
            actor="cli",
            tolerance=s.inbox.gate_tolerance,
        )
        typer.echo(_describe(version))
        if version.status != "live":
            typer.echo("Das bisherige Modell bleibt aktiv.")


@app.command("models")
def models(kommune: str | None = TenantOpt) -> None:
    """Alle Versionen des Zuordnungsmodells, neueste zuerst."""
    from rathaus.inbox import training

    with database().session() as session:
        tenant = _tenant(session, kommune)
        rows = training.versions(session, tenant.id)
        if not rows:
            typer.echo("Noch kein Modell trainiert: Vorschläge nach Ähnlichkeit zu den Ämtern.")
        for version in rows:
            typer.echo(_describe(version))


@app.command("activate")
def activate(
    version: int = typer.Argument(..., help="Versionsnummer aus `rathaus inbox models`."),
    kommune: str | None = TenantOpt,
) -> None:
    """Eine gespeicherte Modellversion live schalten."""
    from rathaus.inbox import training

    with database().session() as session:
        row = training.activate(session, _tenant(session, kommune), version)
        typer.echo(f"Live: {_describe(row)}")


@app.command("rollback")
def rollback(kommune: str | None = TenantOpt) -> None:
    """Zur zuletzt aktiven früheren Modellversion zurückkehren."""
    from rathaus.inbox import training

    with database().session() as session:
        row = training.rollback(session, _tenant(session, kommune))
        typer.echo(f"Live: {_describe(row)}")


@app.command("triage")
def triage(
    kommune: str | None = TenantOpt,
    als_json: bool = typer.Option(False, "--json", help="Ergebnis als JSON."),
) -> None:
    """Alle gespeicherten, noch nicht vorgeprüften Eingänge jetzt vorprüfen."""
    from sqlalchemy import select

    from rathaus.core.models import Case
    from rathaus.inbox.pipeline import TriageKit

    s = settings()
    kit = TriageKit.from_settings(s)
    with database(s).session() as session:
        tenant = _tenant(session, kommune)
        cases = list(
            session.scalars(
                select(Case)
                .where(Case.tenant_id == tenant.id, Case.triaged_at.is_(None))
                .where(Case.status.in_(["neu"]))
                .order_by(Case.id)
            )
        )
        summary = run_triage(session, cases, kit, quiet=als_json)
    typer.echo(json.dumps(summary, ensure_ascii=False) if als_json else _summary_text(summary))


def run_triage(session, cases, kit, *, quiet: bool = False) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Triage ``cases`` in batches with a progress bar; returns counts for the summary."""
    from rich.progress import Progress

    from rathaus.inbox.pipeline import triage_many

    batch = 32
    with Progress(disable=quiet, transient=True) as progress:
        task = progress.add_task("Vorprüfung", total=len(cases))
        for start in range(0, len(cases), batch):
            triage_many(session, cases[start : start + batch], kit, batch=batch)
            session.commit()
            progress.advance(task, len(cases[start : start + batch]))
    return {
        "vorgeprueft": len(cases),
        "automatisch_zugeordnet": sum(1 for c in cases if c.status == "zugewiesen"),
        "zur_pruefung": sum(1 for c in cases if c.status == "triage"),
        "markiert": sum(1 for c in cases if c.needs_review_reason),
    }


def _summary_text(summary: dict[str, int]) -> str:
    return (
        f"{summary['vorgeprueft']} Eingänge vorgeprüft: {summary['automatisch_zugeordnet']} "
        f"automatisch zugeordnet, {summary['zur_pruefung']} in der Triage, davon "
        f"{summary['markiert']} mit Prüfhinweis."
    )


inbox_io.register(app)  # import-csv, quellen-*, abrufen
