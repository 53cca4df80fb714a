"""Separation below the web layer: the main list and search service functions, called for
alpha, return alpha's marked objects and nothing of beta's (SQLite and PostgreSQL).

The web test (tests/web/test_tenant_isolation.py) covers every route; this one names the
service functions, so a future caller that skips the web layer (CLI, jobs) is covered too."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from rathaus.core.models import utcnow
from tests.factories import build_tenant
from tests.web.tenant_data import seed

ALPHA, BETA = "Alphamarke", "Betamarke"


def dump(value: Any) -> str:
    """Every field of ORM rows, dataclasses and containers as text."""
    if isinstance(value, list | tuple | set):
        return "\n".join(dump(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k}={dump(v)}" for k, v in value.items())
    table = getattr(value, "__table__", None)
    if table is not None:
        return dump({c.key: getattr(value, c.key) for c in value.__mapper__.column_attrs})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dump({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    return str(value)


def test_service_functions_return_only_the_callers_tenant(db, tmp_path, embedder) -> None:  # type: ignore[no-untyped-def]
    from rathaus.assistant import editorial, retrieve
    from rathaus.core.access import visible_cases
    from rathaus.governance import decisions
    from rathaus.insights import bookings, eventlog_store, forecast_data
    from rathaus.insights.winter import service as winter
    from rathaus.writing import minutes, templates, transcription

    with db.session() as session:
        alpha, beta = build_tenant(session, "alpha"), build_tenant(session, "beta")
        seed(session, alpha, mark=ALPHA, originals=tmp_path, embedder=embedder)
        seed(session, beta, mark=BETA, originals=tmp_path, embedder=embedder)
    with db.session() as session:
        a = alpha.tenant.id
        tenant = session.merge(alpha.tenant)
        admin = session.merge(alpha.users["admin"])
        calls: dict[str, Any] = {
            "visible_cases": lambda: list(session.scalars(visible_cases(session, admin))),
            "retrieve.search": lambda: retrieve.search(
                session, tenant_id=a, query="betamarke wissenstext hundesteuer", embedder=embedder
            ),
            "editorial.list_entries": lambda: editorial.list_entries(session, tenant_id=a),
            "editorial.gaps_report": lambda: editorial.gaps_report(
                session, tenant_id=a, since=utcnow() - dt.timedelta(days=30)
            ),
            "eventlog_store.list_datasets": lambda: eventlog_store.list_datasets(session, a),
            "forecast_data.list_sources": lambda: forecast_data.list_sources(session, a),
            "bookings.datasets": lambda: bookings.datasets(session, tenant),
            "winter.list_plans": lambda: winter.list_plans(session, tenant_id=a),
            "minutes.list_minutes": lambda: minutes.list_minutes(session, tenant_id=a),
            "templates.list_all": lambda: templates.list_all(session, tenant_id=a),
            "transcription.list_jobs": lambda: transcription.list_jobs(session, tenant_id=a),
            "decisions.list_rows": lambda: decisions.list_rows(session, tenant_id=a)[0],
        }
        for name, call in calls.items():
            text = dump(call())
            assert BETA not in text, name
            assert ALPHA in text, name
        # the search for beta's words, with alpha's own entry about the same topic, finds alpha's
        hits = retrieve.search(
            session, tenant_id=a, query="betamarke wissenstext hundesteuer", embedder=embedder
        )
        assert [h.url for h in hits] == ["https://alphamarke.example/hundesteuer"]
        assert BETA not in dump(editorial.list_entries(session, tenant_id=a, query="betamarke"))
