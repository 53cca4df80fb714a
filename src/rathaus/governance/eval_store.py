"""Stored results of ``rathaus eval …`` runs: the measured quality that the AI register shows.

Every ``rathaus eval`` command hands its result to :func:`save_run` after printing it; the
register reads the newest run per measurement with :func:`latest_runs`. A run is global
(``tenant_id`` None: the measurements use public data sets) unless a tenant is named.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from rathaus import __version__
from rathaus.core.config import Settings
from rathaus.core.db import Database
from rathaus.core.errors import DatabaseUnavailableError
from rathaus.core.models import EvalRun

# Lists longer than this are cut when a result is stored: the register shows headline numbers,
# the full per-item detail stays in the command's own JSON output.
MAX_LIST_ITEMS = 50
MAX_TEXT = 500


def _plain(value: Any) -> Any:
    """``value`` as JSON data: numpy scalars, dates, paths, sets and tuples made plain."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        return [_plain(v) for v in items[:MAX_LIST_ITEMS]]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "item"):  # numpy scalar
        return _plain(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "as_dict"):
        return _plain(value.as_dict())
    return str(value)


def save_run(
    database: Database,
    *,
    name: str,
    metrics: dict[str, Any],
    data: str | Path,
    command: str,
    tenant_id: int | None = None,
) -> EvalRun:
    """Store one run of the measurement ``name`` (e.g. ``forecast``) and return the row."""
    plain = _plain(metrics)
    # Fail here, not in the database driver, if something is still not JSON.
    json.dumps(plain, ensure_ascii=False)
    run = EvalRun(
        tenant_id=tenant_id,
        name=name[:60],
        metrics=plain,
        data=str(data)[:MAX_TEXT],
        command=command[:MAX_TEXT],
        version=__version__,
    )
    with database.session() as session:
        session.add(run)
        session.flush()
        session.expunge(run)
    return run


def latest_runs(session: Session, *, tenant_id: int | None = None) -> dict[str, EvalRun]:
    """The newest run of every measurement: global runs, and with ``tenant_id`` that tenant's."""
    scope = (
        EvalRun.tenant_id.is_(None)
        if tenant_id is None
        else or_(EvalRun.tenant_id.is_(None), EvalRun.tenant_id == tenant_id)
    )
    newest = select(func.max(EvalRun.id)).where(scope).group_by(EvalRun.name)
    rows = session.scalars(select(EvalRun).where(EvalRun.id.in_(newest.scalar_subquery())))
    return {row.name: row for row in rows}


def existing_database(settings: Settings) -> Database:
    """The configured database if it exists and is migrated; never creates a SQLite file.

    Raises :class:`DatabaseUnavailableError` with a German message otherwise.
    """
    from rathaus.core.migrate import current_revision, head_revision

    if settings.is_sqlite:
        path = Path(settings.effective_database_url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise DatabaseUnavailableError(
                f"es gibt noch keine Datenbank unter {path}; zuerst `rathaus db upgrade` ausführen"
            )
    database = Database.from_settings(settings)
    try:
        database.ping()
        if current_revision(database) != head_revision():
            raise DatabaseUnavailableError(
                "das Datenbankschema ist nicht aktuell; zuerst `rathaus db upgrade` ausführen"
            )
    except DatabaseUnavailableError:
        database.dispose()
        raise
    return database
