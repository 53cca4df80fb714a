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
    """Demo-Kommune „Musterstadt“ laden (Ämter, Leistungen, Personen, Vorgänge)."""
    from rathaus.core.demo.loader import load_demo
    from rathaus.core.security import hash_password

    s = settings()
    db = database(s)
    summary = load_demo(db, if_empty=if_empty, password_hasher=hash_password)
    typer.echo(str(summary))
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
