"""``rathaus demo``: load the demo municipality Musterstadt."""

from __future__ import annotations

import typer

from rathaus.cli.common import database, settings


def demo(
    if_empty: bool = typer.Option(
        False, "--if-empty", help="Nichts tun, wenn Musterstadt schon geladen ist."
    ),
    triage: bool = typer.Option(
        True,
        "--triage/--no-triage",
        help="Nach dem Laden das Zuordnungsmodell trainieren und die Eingänge vorprüfen.",
    ),
) -> None:
    """Demo-Kommune „Musterstadt“ laden (Ämter, Leistungen, Personen, Vorgänge, Wissen)."""
    from rathaus.core.demo.loader import load_demo
    from rathaus.core.security import hash_password

    s = settings()
    db = database(s)
    summary = load_demo(db, if_empty=if_empty, password_hasher=hash_password)
    typer.echo(str(summary))
    _load_knowledge(db, s)
    _load_text_templates(db)
    _load_payments(db, s)
    if summary.already_loaded or not triage:
        return
    from sqlalchemy import select

    from rathaus.cli.inbox_cmd import _describe, _summary_text, run_triage
    from rathaus.core.demo.loader import SLUG
    from rathaus.core.models import Case, Tenant
    from rathaus.inbox.demo_eval import train_demo
    from rathaus.inbox.pipeline import TriageKit

    kit = TriageKit.from_settings(s)
    typer.echo("Trainiere das Zuordnungsmodell auf den historischen Vorgängen …")
    typer.echo(_describe(train_demo(db, s, kit.embedder)))
    typer.echo("Prüfe die Eingänge vor …")
    with db.session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == SLUG))
        assert tenant is not None
        cases = list(
            session.scalars(
                select(Case)
                .where(Case.tenant_id == tenant.id, Case.triaged_at.is_(None))
                .where(Case.status == "neu")
                .order_by(Case.id)
            )
        )
        typer.echo(_summary_text(run_triage(session, cases, kit)))


def _load_knowledge(db, s) -> None:  # type: ignore[no-untyped-def]
    """Import the demo service pages into Musterstadt's knowledge base.

    Only when Musterstadt has no demo pages yet: a later run (``make run`` calls ``rathaus demo
    --if-empty`` on every start) must not overwrite what the Redaktion edited in the demo.
    """
    from sqlalchemy import select

    from rathaus.ai.registry import get_embedder
    from rathaus.assistant import knowledge
    from rathaus.assistant.importers import DEMO_SOURCE, demo_entries
    from rathaus.core.demo.loader import SLUG
    from rathaus.core.models import KnowledgeEntry
    from rathaus.core.repo import tenant_by_slug
    from rathaus.governance.gateway import scoped

    with db.session() as session:
        tenant = tenant_by_slug(session, SLUG)
        present = session.scalar(
            select(KnowledgeEntry.id)
            .where(KnowledgeEntry.tenant_id == tenant.id, KnowledgeEntry.source == DEMO_SOURCE)
            .limit(1)
        )
        if present is not None:
            return
        typer.echo("Lege die Wissensbasis des Bürgerassistenten an …")
        report = knowledge.upsert_entries(
            session,
            tenant_id=tenant.id,
            entries=demo_entries(),
            embedder=scoped(get_embedder(s), level="oeffentlich", actor="demo"),
        )
    typer.echo(f"Wissensbasis: {report.created} Seiten importiert.")


def _load_text_templates(db) -> None:  # type: ignore[no-untyped-def]
    """Add the demo Textbausteine to Musterstadt; by name, so a later run adds only missing ones
    and never overwrites what the departments edited."""
    from rathaus.core.demo.loader import SLUG
    from rathaus.core.repo import tenant_by_slug
    from rathaus.writing.templates import seed_demo

    with db.session() as session:
        added = seed_demo(session, tenant_by_slug(session, SLUG))
    if added:
        typer.echo(f"Textbausteine: {added} angelegt.")


def _load_payments(db, s) -> None:  # type: ignore[no-untyped-def]
    """Import Musterstadt's invented payment list and run the booking checks, once: a later
    run leaves the data set (and every decision on its flags) alone."""
    import datetime as dt

    from sqlalchemy import select

    from rathaus.core.demo import payments
    from rathaus.core.demo.loader import SLUG
    from rathaus.core.models import InsightDataset
    from rathaus.core.repo import tenant_by_slug
    from rathaus.core.storage import OriginalStore
    from rathaus.insights import bookings

    with db.session() as session:
        tenant = tenant_by_slug(session, SLUG)
        present = session.scalar(
            select(InsightDataset.id).where(
                InsightDataset.tenant_id == tenant.id, InsightDataset.name == payments.NAME
            )
        )
        if present is not None:
            return
        dataset = bookings.import_payments(
            session,
            tenant=tenant,
            data=payments.generate(dt.date.today()),
            filename=payments.FILENAME,
            actor="demo",
            store=OriginalStore(s.originals_dir),
            name=payments.NAME,
        )
        report = bookings.run_checks(
            session,
            tenant=tenant,
            dataset=dataset,
            config=bookings.config_for(tenant),
            actor="demo",
        )
        rows, counts = dataset.rows, report.counts
    found = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
    typer.echo(f"Buchungsprüfung: {rows} Demo-Zahlungen importiert; Prüfhinweise: {found}.")
