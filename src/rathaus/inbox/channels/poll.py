"""Polled inbox sources (IMAP mailboxes, watched folders): the ledger and the periodic job.

Exactly once
------------
A channel hands every item it finds to :func:`take_item`, which stores the original, creates the
case and writes the ledger row ``InboxSourceItem(source_id, item_key)`` in **one** transaction and
commits it. The ledger has a unique constraint on ``(source_id, item_key)``: an item whose key is
in the ledger is never taken again, also when a poll was interrupted after the commit and before
the mail was moved or the file was put away, or when two workers poll the same source at once.
The same bytes under another key are one case as well (content hash in
:func:`rathaus.inbox.service.receive`). Triage is queued only after the commit.

The job
-------
:data:`poll_sources_job` runs every minute on every worker and polls each active source of each
active tenant at most once per ``inbox.poll_interval_s`` (coarsely: the job runs once a minute, so
shorter intervals mean "every minute"). A source is claimed with a compare-and-set on
``last_polled_at`` so that several workers do not poll it at the same minute.

This module imports no AI library; the channel modules are imported when a source is polled.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rathaus.core.cases import transition
from rathaus.core.errors import RathausError
from rathaus.core.models import (
    CaseStatus,
    InboxSource,
    InboxSourceItem,
    Tenant,
    utcnow,
)
from rathaus.core.storage import OriginalStore
from rathaus.inbox.service import IncomingItem, receive
from rathaus.jobs import job, job_settings

if TYPE_CHECKING:
    from rathaus.inbox.channels.folder import FolderRoots

log = logging.getLogger(__name__)

KINDS = ("imap", "folder")
KIND_LABELS = {"imap": "IMAP-Postfach", "folder": "Ordner"}
MAX_ERROR_CHARS = 4000
TAKE_ATTEMPTS = 3
_NAME = re.compile(r"^[\w][\w .\-]{0,99}$")

Enqueue = Callable[[list[int]], Any]


class ChannelError(RathausError):
    """A source cannot be polled (unreachable, login refused, folder missing, bad settings)."""


class SourceSettingsError(ChannelError):
    """The settings of a source are invalid (wrong input: exit code 2 on the command line)."""

    exit_code = 2


@dataclass
class PollResult:
    """What one poll of one source did."""

    source: str
    kind: str
    new_case_ids: list[int] = field(default_factory=list)
    duplicates: int = 0  # content already a case (another key, same bytes)
    already_taken: int = 0  # key already in the ledger: finished (moved) now, nothing new
    skipped: int = 0  # not ready yet (file still being written)
    errors: list[str] = field(default_factory=list)  # the source needs attention (last_error)
    notes: list[str] = field(default_factory=list)  # per item, e.g. taken but too large to read

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, taken: Taken, review_reason: str | None, label: str) -> None:
        """Count one item's outcome; ``label`` names it in a note ("E-Mail UID 7 → …")."""
        if taken.already_taken:
            self.already_taken += 1
        elif taken.duplicate:
            self.duplicates += 1
        elif review_reason:
            self.notes.append(f"{label}{taken.reference}: {review_reason}")
        else:
            assert taken.case_id is not None
            self.new_case_ids.append(taken.case_id)

    def summary(self) -> str:
        """One German line for the CLI and the log."""
        parts = [f"{len(self.new_case_ids)} neu"]
        if self.duplicates:
            parts.append(f"{self.duplicates} Dublette(n)")
        if self.already_taken:
            parts.append(f"{self.already_taken} bereits erfasst")
        if self.skipped:
            parts.append(f"{self.skipped} noch nicht fertig geschrieben")
        if self.notes:
            parts.append(f"{len(self.notes)} Hinweis(e)")
        if self.errors:
            parts.append(f"{len(self.errors)} Fehler")
        return ", ".join(parts)


@dataclass(frozen=True)
class Taken:
    """The outcome of :func:`take_item`: the case and whether it was new."""

    case_id: int | None
    reference: str
    new: bool
    duplicate: bool
    already_taken: bool


# --- the ledger -----------------------------------------------------------------------------


def taken_keys(session: Session, source: InboxSource, *, prefix: str = "") -> set[str]:
    """Item keys already in the ledger of ``source`` (optionally only those with ``prefix``)."""
    query = select(InboxSourceItem.item_key).where(InboxSourceItem.source_id == source.id)
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(InboxSourceItem.item_key.like(f"{escaped}%", escape="\\"))
    return set(session.scalars(query))


def is_taken(session: Session, source: InboxSource, key: str) -> bool:
    return (
        session.scalar(
            select(InboxSourceItem.id).where(
                InboxSourceItem.source_id == source.id, InboxSourceItem.item_key == key
            )
        )
        is not None
    )


def take_item(
    session: Session,
    *,
    source: InboxSource,
    tenant: Tenant,
    key: str,
    item: IncomingItem,
    store: OriginalStore,
    review_reason: str | None = None,
) -> Taken:
    """Store ``item`` as a case and record ``key`` in the ledger, in one committed transaction.

    Contract: returns ``already_taken=True`` (and changes nothing) when the key is in the ledger,
    also when a concurrent poll committed it first. ``review_reason`` (German) puts the case
    straight into the triage queue with that reason instead of the AI triage (used for items
    that could not be read, e.g. too large). Other database errors propagate after a rollback.
    """
    if len(key) > 300:
        raise ValueError("item key longer than 300 characters")
    for attempt in range(TAKE_ATTEMPTS):
        if is_taken(session, source, key):
            return Taken(None, "", new=False, duplicate=False, already_taken=True)
        try:
            received = receive(session, tenant=tenant, item=item, store=store)
            case = received.case
            if review_reason and not received.duplicate:
                transition(session, case, CaseStatus.TRIAGE, actor=None, reason="Prüfung nötig")
                case.needs_review_reason = review_reason
                case.triaged_at = utcnow()
            session.add(
                InboxSourceItem(
                    tenant_id=tenant.id, source_id=source.id, item_key=key, case_id=case.id
                )
            )
            session.commit()
        except IntegrityError:
            # Another poll took this key (or an Aktenzeichen) at the same time: look again.
            session.rollback()
            log.info("Quelle %s: Schlüssel %s gleichzeitig erfasst, neuer Versuch", source.id, key)
            if attempt == TAKE_ATTEMPTS - 1:
                raise
            continue
        except BaseException:
            session.rollback()
            raise
        return Taken(
            case.id,
            case.reference,
            new=not received.duplicate,
            duplicate=received.duplicate,
            already_taken=False,
        )
    raise AssertionError("unreachable")  # pragma: no cover


# --- polling --------------------------------------------------------------------------------


def poll_source(
    session: Session,
    source: InboxSource,
    *,
    store: OriginalStore,
    max_bytes: int,
    enqueue: Enqueue | None = None,
    now: dt.datetime | None = None,
    allowed_networks: Sequence[str] = (),
    folder_roots: FolderRoots | None = None,
) -> PollResult:
    """Poll one source now: take every new item exactly once, then hand new cases to triage.

    ``allowed_networks`` (``network.allowed_networks``) are the internal networks an IMAP host
    may be in; without them only public addresses are reached (:mod:`rathaus.core.netguard`).
    ``folder_roots`` (:meth:`FolderRoots.from_settings`) are the folders a folder source may
    read; without them a folder source is refused.

    Never raises for a source that cannot be polled: the German reason is in the result and in
    ``source.last_error`` (cleared after a clean poll). Commits per item and at the end.
    ``enqueue`` (default: :func:`rathaus.inbox.jobs.enqueue_triage`) gets the ids of the new
    cases after they were committed.
    """
    if enqueue is None:
        from rathaus.inbox.jobs import enqueue_triage

        enqueue = enqueue_triage
    result = PollResult(source=source.name, kind=source.kind)
    source_id = source.id
    tenant = session.get(Tenant, source.tenant_id)
    assert tenant is not None
    try:
        if source.kind == "imap":
            from rathaus.inbox.channels import imap

            imap.poll(
                session,
                source,
                tenant,
                store=store,
                max_bytes=max_bytes,
                result=result,
                allowed_networks=allowed_networks,
            )
        elif source.kind == "folder":
            from rathaus.inbox.channels import folder

            folder.poll(
                session,
                source,
                tenant,
                store=store,
                max_bytes=max_bytes,
                result=result,
                roots=folder_roots,
            )
        else:
            raise ChannelError(
                f"Die Quelle „{source.name}“ hat die unbekannte Art „{source.kind}“; "
                f"erlaubt sind {', '.join(KINDS)}."
            )
    except RathausError as exc:
        session.rollback()
        result.errors.append(exc.message)
    except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
        session.rollback()
        log.exception("Abruf der Quelle %s fehlgeschlagen", source_id)
        result.errors.append(
            f"Unerwarteter Fehler beim Abruf ({type(exc).__name__}: {str(exc)[:200]}). "
            "Bereits erfasste Eingänge bleiben erhalten; bitte das Protokoll des Workers prüfen."
        )
    finally:
        _finish(session, source_id, result, now or utcnow())
        if result.new_case_ids:
            try:
                enqueue(list(result.new_case_ids))
            except Exception:  # noqa: BLE001 - the reconcile job triages them later
                log.exception("Vorprüfung für %s konnte nicht eingereiht werden", source_id)
    for error in result.errors:
        log.warning("Quelle %s (%s): %s", source.name, source.kind, error)
    return result


def _finish(session: Session, source_id: int, result: PollResult, now: dt.datetime) -> None:
    source = session.get(InboxSource, source_id)
    if source is None:  # removed while polling
        return
    source.last_polled_at = now
    source.last_error = "\n".join(result.errors)[:MAX_ERROR_CHARS] or None
    session.commit()


def poll_tenant(
    session: Session,
    tenant: Tenant,
    *,
    store: OriginalStore,
    max_bytes: int,
    enqueue: Enqueue | None = None,
    allowed_networks: Sequence[str] = (),
    folder_roots: FolderRoots | None = None,
) -> list[PollResult]:
    """Poll every active source of ``tenant`` now (``rathaus inbox abrufen``)."""
    sources = list_sources(session, tenant=tenant, active_only=True)
    return [
        poll_source(
            session,
            source,
            store=store,
            max_bytes=max_bytes,
            enqueue=enqueue,
            allowed_networks=allowed_networks,
            folder_roots=folder_roots,
        )
        for source in sources
    ]


def claim(session: Session, source_id: int, *, interval_s: float, now: dt.datetime) -> bool:
    """Mark the source as being polled now if it is due; False if another worker was first."""
    slack = min(10.0, interval_s / 2)
    due_before = now - dt.timedelta(seconds=max(0.0, interval_s - slack))
    claimed = session.execute(
        update(InboxSource)
        .where(
            InboxSource.id == source_id,
            or_(InboxSource.last_polled_at.is_(None), InboxSource.last_polled_at <= due_before),
        )
        .values(last_polled_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return claimed.rowcount == 1  # type: ignore[attr-defined]


_DATABASES: dict[str, Any] = {}


def _database(settings: Any) -> Any:
    from rathaus.core.db import Database

    url = settings.effective_database_url
    if url not in _DATABASES:
        _DATABASES[url] = Database(url)
    return _DATABASES[url]


def poll_due_sources(db: Any, settings: Any, *, enqueue: Enqueue | None = None) -> int:
    """Poll every active source of every active tenant that is due; returns how many."""
    from rathaus.inbox.channels.folder import FolderRoots

    folder_roots = FolderRoots.from_settings(settings)
    now = utcnow()
    store = OriginalStore(settings.originals_dir)
    max_bytes = settings.inbox.max_upload_mb * 1024 * 1024
    with db.session() as session:
        ids = list(
            session.scalars(
                select(InboxSource.id)
                .join(Tenant, Tenant.id == InboxSource.tenant_id)
                .where(InboxSource.is_active.is_(True), Tenant.is_active.is_(True))
                .order_by(InboxSource.id)
            )
        )
    polled = 0
    for source_id in ids:
        with db.session() as session:
            if not claim(session, source_id, interval_s=settings.inbox.poll_interval_s, now=now):
                continue
            source = session.get(InboxSource, source_id)
            if source is None:
                continue
            poll_source(
                session,
                source,
                store=store,
                max_bytes=max_bytes,
                enqueue=enqueue,
                allowed_networks=settings.network.allowed_networks,
                folder_roots=folder_roots,
            )
            polled += 1
    return polled


@job(cron={"minute": "*"})
def poll_sources_job() -> int:
    """Every minute: poll the sources that are due (see the module docstring)."""
    settings = job_settings()
    return poll_due_sources(_database(settings), settings)


# --- managing sources -------------------------------------------------------------------------


def list_sources(
    session: Session, *, tenant: Tenant, active_only: bool = False
) -> list[InboxSource]:
    query = select(InboxSource).where(InboxSource.tenant_id == tenant.id)
    if active_only:
        query = query.where(InboxSource.is_active.is_(True))
    return list(session.scalars(query.order_by(InboxSource.name)))


def get_source(session: Session, *, tenant: Tenant, name: str) -> InboxSource:
    source = session.scalar(
        select(InboxSource).where(InboxSource.tenant_id == tenant.id, InboxSource.name == name)
    )
    if source is None:
        raise ChannelError(
            f"Die Quelle „{name}“ gibt es in der Kommune {tenant.slug} nicht. "
            "Vorhandene Quellen zeigt `rathaus inbox quellen-liste`."
        )
    return source


def create_source(
    session: Session,
    *,
    tenant: Tenant,
    kind: str,
    name: str,
    settings: dict[str, Any],
    allowed_networks: Sequence[str] = (),
    folder_roots: FolderRoots | None = None,
) -> InboxSource:
    """Add a source after checking its settings (without connecting); German error otherwise.

    ``allowed_networks``: as for :func:`poll_source` (an IMAP host given as IP address is
    checked now, a name when it is resolved at polling). ``folder_roots``: as there."""
    name = name.strip()
    if not _NAME.match(name):
        raise SourceSettingsError(
            f"Der Name „{name[:100]}“ ist ungültig: 1–100 Zeichen, Buchstaben, Ziffern, "
            "Leerzeichen, Punkt, Binde- und Unterstrich. Bitte einen anderen Namen wählen."
        )
    if kind == "imap":
        from rathaus.inbox.channels import imap

        checked = imap.check_settings(
            settings, tenant_slug=tenant.slug, allowed_networks=allowed_networks
        )
    elif kind == "folder":
        from rathaus.inbox.channels import folder

        checked = folder.check_settings(settings, roots=folder_roots, tenant_slug=tenant.slug)
        _refuse_shared_folder(session, tenant, checked)
    else:
        raise SourceSettingsError(
            f"Unbekannte Quellenart „{kind}“; erlaubt sind {', '.join(KINDS)}."
        )
    if session.scalar(
        select(InboxSource.id).where(InboxSource.tenant_id == tenant.id, InboxSource.name == name)
    ):
        raise SourceSettingsError(
            f"Eine Quelle „{name}“ gibt es in der Kommune {tenant.slug} schon. Bitte einen "
            "anderen Namen wählen oder die alte mit `rathaus inbox quelle-entfernen` entfernen."
        )
    source = InboxSource(tenant_id=tenant.id, kind=kind, name=name, settings=checked)
    session.add(source)
    session.flush()
    return source


def _refuse_shared_folder(session: Session, tenant: Tenant, checked: dict[str, Any]) -> None:
    """One folder, one source; and no folder of one municipality inside another's.

    The areas ``<root>/<slug>`` already keep municipalities apart; this also holds when roots
    were configured inside each other through links, and stops a source from watching the
    folder into which another source moves its files."""
    path = Path(checked["path"])
    mine = [Path(checked[key]) for key in ("path", "done_dir", "oversize_dir")]
    for other in session.scalars(select(InboxSource).where(InboxSource.kind == "folder")):
        stored = other.settings or {}
        if stored.get("path") == str(path):
            raise SourceSettingsError(
                f"Der Ordner {path} wird schon von der Quelle „{other.name}“ beobachtet. Jede "
                "Quelle braucht einen eigenen Ordner."
            )
        theirs = [Path(v) for k in ("path", "done_dir", "oversize_dir") if (v := stored.get(k))]
        if other.tenant_id != tenant.id:
            clash = any(
                a == b or a.is_relative_to(b) or b.is_relative_to(a) for a in mine for b in theirs
            )
        else:
            clash = path in theirs[1:] or Path(stored.get("path", "")) in mine[1:]
        if clash:
            raise SourceSettingsError(
                f"Der Ordner {path} (oder sein Ablageordner) überschneidet sich mit den Ordnern "
                "einer anderen Quelle. Jede Quelle braucht eigene Ordner, und die Ordner "
                "verschiedener Kommunen dürfen nicht ineinander liegen."
            )


def remove_source(session: Session, *, tenant: Tenant, name: str) -> None:
    """Delete the source and its ledger; the cases it created stay."""
    session.delete(get_source(session, tenant=tenant, name=name))
    session.flush()


def describe(source: InboxSource) -> str:
    """Where a source reads from, for lists (never a password)."""
    s = source.settings or {}
    if source.kind == "imap":
        return (
            f"{s.get('username', '')}@{s.get('host', '')}:{s.get('port', '')} "
            f"({s.get('tls', '')}), Ordner {s.get('mailbox', 'INBOX')}, "
            f"Passwort aus {s.get('password_env', '')}"
        )
    if source.kind == "folder":
        return f"{s.get('path', '')} → {s.get('done_dir', '')}"
    return ""
