"""Start-up checks for ``rathaus serve`` and ``rathaus worker``: all or nothing.

A service that starts half-way (the web app up, but every request fails because the database
is missing; a worker that takes no jobs because Redis refuses connections) is worse than one that
does not start: the load balancer sends traffic to it and the operator learns of the fault from
citizens. So both commands run these checks first and refuse to start, with one German line per
problem, when any fails. ``rathaus config pruefen`` runs the same checks on demand.

Every check is cheap (one query, one ping) and loads no model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from rathaus.core.config import Settings
from rathaus.core.db import Database
from rathaus.core.errors import ConfigError, RathausError
from rathaus.core.migrate import current_revision, head_revision, schema_state
from rathaus.core.tenants import require_tenant

Role = Literal["web", "worker"]


@dataclass(frozen=True)
class Check:
    """One start-up check: what was checked, whether it passed, and a German sentence."""

    name: str
    ok: bool
    message: str
    fatal: bool = True


def _data_dir(settings: Settings) -> Check:
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return Check("Datenverzeichnis", False, f"{path} lässt sich nicht anlegen ({exc}).")
    if not os.access(path, os.W_OK):
        return Check(
            "Datenverzeichnis",
            False,
            f"{path} ist nicht beschreibbar. Bitte RATHAUS_DATA_DIR und die Rechte prüfen.",
        )
    return Check("Datenverzeichnis", True, f"{path} beschreibbar.")


def _database(settings: Settings) -> tuple[list[Check], Database | None]:
    try:
        db = Database.from_settings(settings)
    except Exception as exc:  # a URL SQLAlchemy cannot parse or whose driver is missing
        return [
            Check(
                "Datenbank",
                False,
                f"Die Datenbankadresse RATHAUS_DATABASE_URL ist ungültig ({exc}).",
            )
        ], None
    try:
        db.ping()
    except RathausError as exc:
        db.dispose()
        return [Check("Datenbank", False, exc.message)], None
    checks = [Check("Datenbank", True, f"{'SQLite' if db.is_sqlite else 'PostgreSQL'} erreichbar.")]
    current, head = current_revision(db), head_revision()
    if schema_state(current) == "neuer":
        checks.append(
            Check(
                "Datenbankschema",
                False,
                f"Das Datenbankschema (Stand {current}) ist neuer als dieses Programm ({head}): "
                "eine neuere Version hat schon migriert. Das ist während eines Updates erlaubt; "
                "bitte auch diesen Rechner aktualisieren.",
                fatal=False,
            )
        )
        return checks, db
    if current != head:
        checks.append(
            Check(
                "Datenbankschema",
                False,
                f"Das Datenbankschema ist nicht aktuell (Stand {current or 'leer'}, benötigt "
                f"{head}). Bitte zuerst `rathaus db upgrade` ausführen.",
            )
        )
        db.dispose()
        return checks, None
    checks.append(Check("Datenbankschema", True, f"Schema auf Stand {head}."))
    return checks, db


def _default_tenant(settings: Settings, db: Database) -> Check:
    with db.session() as session:
        try:
            tenant = require_tenant(session, settings.default_tenant)
        except ConfigError as exc:
            return Check("Standard-Kommune", False, exc.message)
        name, active = tenant.name, tenant.is_active
    if not active:
        # Locking one municipality must not stop an installation that serves many.
        return Check(
            "Standard-Kommune",
            False,
            f"Die Kommune {settings.default_tenant!r} aus RATHAUS_DEFAULT_TENANT ist gesperrt: "
            "ihre öffentlichen Seiten antworten mit 404, die anderen Kommunen arbeiten weiter.",
            fatal=False,
        )
    return Check("Standard-Kommune", True, f"{name} ({settings.default_tenant}).")


def _queue(settings: Settings) -> Check:
    from rathaus.jobs import check_queue, describe_queue

    if settings.queue.backend == "memory":
        if settings.is_demo:
            return Check("Warteschlange", True, "Im Speicher (nur für Tests und Demo).")
        return Check(
            "Warteschlange",
            False,
            "RATHAUS_QUEUE__BACKEND=memory ist nur für Tests gedacht: Aufträge gingen beim "
            "Neustart verloren. Bitte sqlite oder redis einstellen.",
        )
    try:
        pending, scheduled = check_queue(settings)
    except RathausError as exc:
        return Check("Warteschlange", False, exc.message)
    return Check(
        "Warteschlange",
        True,
        f"{describe_queue(settings)} erreichbar ({pending} wartend, {scheduled} geplant).",
    )


def _topology(settings: Settings, role: Role, web_workers: int) -> Check | None:
    """Combinations that would start but lose or duplicate work."""
    if role == "web" and web_workers > 1 and settings.is_sqlite:
        return Check(
            "Betriebsart",
            False,
            f"{web_workers} Webprozesse mit einer SQLite-Datenbank: SQLite lässt nur einen "
            "schreibenden Prozess zur Zeit zu, und jeder Webprozess startet eigene Worker. Für "
            "mehrere Webprozesse PostgreSQL (RATHAUS_DATABASE_URL) und Redis empfohlen.",
            fatal=False,
        )
    if not settings.is_sqlite and settings.queue.backend == "sqlite":
        return Check(
            "Betriebsart",
            True,
            "PostgreSQL mit einer SQLite-Warteschlange: Worker auf anderen Rechnern sehen diese "
            "Aufträge nicht. Für den Serverbetrieb RATHAUS_QUEUE__BACKEND=redis empfohlen.",
            fatal=False,
        )
    return None


def run_checks(settings: Settings, role: Role, *, web_workers: int = 1) -> list[Check]:
    """Every start-up check for ``role``, in order; later checks are skipped when the database
    cannot be used (they would only repeat its error)."""
    checks = [_data_dir(settings)]
    topology = _topology(settings, role, web_workers)
    if topology is not None:
        checks.append(topology)
    db_checks, db = _database(settings)
    checks.extend(db_checks)
    if db is not None:
        try:
            if role == "web":
                checks.append(_default_tenant(settings, db))
        finally:
            db.dispose()
    checks.append(_queue(settings))
    return checks


def require_ready(
    settings: Settings,
    role: Role,
    *,
    web_workers: int = 1,
    echo: Callable[[str], object] | None = None,
) -> list[Check]:
    """Run the checks; raise one :class:`ConfigError` listing every failed one.

    Warnings (non-fatal checks that failed) are passed to ``echo`` and do not stop the start.
    """
    checks = run_checks(settings, role, web_workers=web_workers)
    failed = [c for c in checks if not c.ok and c.fatal]
    if echo is not None:
        for c in checks:
            if not c.ok and not c.fatal:
                echo(f"Hinweis – {c.name}: {c.message}")
    if failed:
        what = "Der Webserver" if role == "web" else "Der Worker"
        lines = "\n".join(f"  – {c.name}: {c.message}" for c in failed)
        raise ConfigError(f"{what} startet nicht, weil die Startprüfung fehlschlägt:\n{lines}")
    return checks
