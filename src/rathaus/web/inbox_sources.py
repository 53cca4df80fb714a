"""Eingangsquellen in the browser under /posteingang/quellen: IMAP mailboxes and watched folders
of the municipality — list with last poll and error, add, pause, remove, poll now.

A thin shell over :mod:`rathaus.inbox.channels.poll` (the same functions as
``rathaus inbox quelle-…``); administrators only (``Permission.MANAGE_SETTINGS``). Passwords are
never entered here: an IMAP source names the environment variable of the worker that holds it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from rathaus.core import audit
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import InboxSource, InboxSourceItem, Tenant, User
from rathaus.core.roles import Permission
from rathaus.core.storage import OriginalStore
from rathaus.web import reauth, reauth_step
from rathaus.web.deps import (
    CsrfDep,
    CurrentTenant,
    CurrentUser,
    SessionDep,
    SettingsDep,
    get_settings,
    require,
)
from rathaus.web.templating import render

router = APIRouter(
    include_in_schema=False, dependencies=[Depends(require(Permission.MANAGE_SETTINGS))]
)

BASE = "/posteingang/quellen"
REMOVE_CLI = "`rathaus inbox quelle-entfernen`"
TLS_CHOICES = (
    ("ssl", "SSL/TLS (Port 993)"),
    ("starttls", "STARTTLS (Port 143)"),
    ("none", "keine (nur auf dem eigenen Rechner)"),
)
NOTICES = {
    "angelegt": "Die Quelle wurde eingerichtet. „Jetzt abrufen“ prüft die Verbindung.",
    "entfernt": "Die Quelle wurde entfernt; bereits erfasste Vorgänge bleiben.",
    "pausiert": "Die Quelle ist pausiert und wird nicht mehr abgerufen.",
    "aktiviert": "Die Quelle ist wieder aktiv.",
    "idle-an": (
        "IMAP IDLE ist an: Neue E-Mails kommen nach Sekunden, sobald der Dienst "
        "„rathaus inbox lauschen“ läuft; bis dahin wird das Postfach weiter regelmäßig abgerufen."
    ),
    "idle-aus": "IMAP IDLE ist aus; das Postfach wird regelmäßig abgerufen.",
}


def _page(
    request: Request,
    session: SessionDep,
    tenant: Tenant,
    *,
    notice: str = "",
    error: str = "",
    form: dict[str, Any] | None = None,
    poll: Any = None,
    status_code: int = 200,
    reauth_state: dict[str, Any] | None = None,
    step: dict[str, Any] | None = None,
) -> Response:
    from rathaus.inbox.channels import imap
    from rathaus.inbox.channels import poll as polling

    counts = dict(
        session.execute(
            select(InboxSourceItem.source_id, func.count(InboxSourceItem.id))
            .where(InboxSourceItem.tenant_id == tenant.id)
            .group_by(InboxSourceItem.source_id)
        ).all()
    )
    sources = [
        {"source": s, "where": polling.describe(s), "items": counts.get(s.id, 0)}
        for s in polling.list_sources(session, tenant=tenant)
    ]
    return render(
        request,
        "inbox_sources.html",
        {
            "tenant": tenant,
            "sources": sources,
            "notice": notice,
            "error": error,
            "form": form or {},
            "poll": poll,
            "tls_choices": TLS_CHOICES,
            "env_prefix": imap.env_prefix(tenant.slug),
            # Where this municipality may watch folders (the demo root's area is created).
            "folder_areas": _folder_roots(get_settings(request)).areas(tenant.slug, create=True),
            "reauth": reauth_state or reauth.state(request),
            "step": step,
        },
        status_code=status_code,
    )


def _folder_roots(settings: Any) -> Any:
    from rathaus.inbox.channels.folder import FolderRoots

    return FolderRoots.from_settings(settings)


def _source(session: SessionDep, tenant: Tenant, source_id: int) -> InboxSource:
    source = session.get(InboxSource, source_id)
    if source is None or source.tenant_id != tenant.id:
        raise NotFoundError("Diese Eingangsquelle gibt es nicht (mehr).")
    return source


def _record(
    session: SessionDep, user: User, tenant: Tenant, kind: str, source: InboxSource
) -> None:
    audit.record(
        session,
        audit.Event(
            kind=kind,
            actor=user.username,
            tenant_id=tenant.id,
            subject=f"inbox_source:{source.name}",
            data={"kind": source.kind},
        ),
    )


@router.get(BASE)
def sources_page(
    request: Request, session: SessionDep, tenant: CurrentTenant, meldung: str = ""
) -> Response:
    return _page(request, session, tenant, notice=NOTICES.get(meldung, ""))


def _create(
    request: Request,
    session: SessionDep,
    user: User,
    tenant: Tenant,
    *,
    kind: str,
    name: str,
    values: dict[str, Any],
) -> Response:
    from rathaus.inbox.channels import poll as polling

    try:
        source = polling.create_source(
            session,
            tenant=tenant,
            kind=kind,
            name=name,
            settings=values,
            allowed_networks=get_settings(request).network.allowed_networks,
            folder_roots=_folder_roots(get_settings(request)),
        )
    except RathausError as exc:
        session.rollback()
        form = {"kind": kind, "name": name, **values}
        return _page(request, session, tenant, error=exc.message, form=form, status_code=422)
    _record(session, user, tenant, "inbox_source_created", source)
    session.commit()
    return RedirectResponse(f"{BASE}?meldung=angelegt", 303)


@router.post(f"{BASE}/imap", dependencies=[CsrfDep])
def create_imap(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
    name: Annotated[str, Form()] = "",
    host: Annotated[str, Form()] = "",
    port: Annotated[str, Form()] = "",
    tls: Annotated[str, Form()] = "ssl",
    benutzer: Annotated[str, Form()] = "",
    postfach: Annotated[str, Form()] = "INBOX",
    passwort_variable: Annotated[str, Form()] = "",
    verschieben_nach: Annotated[str, Form()] = "",
    idle: Annotated[str, Form()] = "",
) -> Response:
    from rathaus.inbox.channels import imap

    variable = passwort_variable.strip() or imap.default_password_env(tenant.slug, name)
    values: dict[str, Any] = {
        "host": host.strip(),
        "tls": tls,
        "username": benutzer.strip(),
        "mailbox": postfach.strip() or "INBOX",
        "password_env": variable,
    }
    if port.strip():
        values["port"] = port.strip()
    if verschieben_nach.strip():
        values["move_to"] = verschieben_nach.strip()
    if idle:
        values["idle"] = True
    return _create(request, session, user, tenant, kind="imap", name=name, values=values)


@router.post(f"{BASE}/ordner", dependencies=[CsrfDep])
def create_folder(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
    name: Annotated[str, Form()] = "",
    pfad: Annotated[str, Form()] = "",
    ablage: Annotated[str, Form()] = "",
) -> Response:
    values = {"path": pfad.strip(), **({"done_dir": ablage.strip()} if ablage.strip() else {})}
    return _create(request, session, user, tenant, kind="folder", name=name, values=values)


@router.post(f"{BASE}/{{source_id}}/aktiv", dependencies=[CsrfDep])
def toggle(
    source_id: int, session: SessionDep, user: CurrentUser, tenant: CurrentTenant
) -> Response:
    source = _source(session, tenant, source_id)
    source.is_active = not source.is_active
    _record(
        session,
        user,
        tenant,
        "inbox_source_resumed" if source.is_active else "inbox_source_paused",
        source,
    )
    session.commit()
    return RedirectResponse(
        f"{BASE}?meldung={'aktiviert' if source.is_active else 'pausiert'}", 303
    )


@router.post(f"{BASE}/{{source_id}}/idle", dependencies=[CsrfDep])
def toggle_idle(
    request: Request,
    source_id: int,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
) -> Response:
    """IMAP IDLE for one mailbox on or off (polling stays as the safety net)."""
    source = _source(session, tenant, source_id)
    if source.kind != "imap":
        error = f"„{source.name}“ ist ein Ordner: IDLE gibt es nur für IMAP-Postfächer."
        return _page(request, session, tenant, error=error, status_code=422)
    values = {k: v for k, v in (source.settings or {}).items() if k != "idle"}
    on = not (source.settings or {}).get("idle")
    if on:
        values["idle"] = True
    source.settings = values
    _record(
        session, user, tenant, "inbox_source_idle_on" if on else "inbox_source_idle_off", source
    )
    session.commit()
    return RedirectResponse(f"{BASE}?meldung={'idle-an' if on else 'idle-aus'}", 303)


@router.post(f"{BASE}/{{source_id}}/entfernen", dependencies=[CsrfDep])
def remove(
    request: Request,
    source_id: int,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
    passwort: Annotated[str, Form(max_length=500)] = "",
    schritt: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Remove the source after the password (:mod:`rathaus.web.reauth`): without its source
    nothing more arrives from that mailbox or folder. The row's button asks on a card first
    (:mod:`rathaus.web.reauth_step`) unless this session confirmed in the last minutes."""
    from rathaus.inbox.channels import poll as polling

    source = _source(session, tenant, source_id)
    gate = reauth.confirm(
        request, session, password=passwort, action="eingangsquelle_entfernen", cli=REMOVE_CLI
    )
    if not gate.ok:
        error = reauth_step.step_error(gate, password=passwort, step=schritt)
        step = {
            "id": "quelle-entfernen",
            "title": f"Quelle „{source.name}“ entfernen",
            "text": "Rathaus ruft diese Quelle danach nicht mehr ab; bereits erfasste Vorgänge "
            "bleiben. Sie lässt sich jederzeit neu einrichten.",
            "url": f"{BASE}/{source.id}/entfernen",
            "hidden": [],
            "action": "entfernen",
            "when": " das Entfernen",
            "button": "Quelle endgültig entfernen",
            "back": BASE,
        }
        page = _page(
            request,
            session,
            tenant,
            status_code=gate.status_code,
            reauth_state=reauth.state(request, action="entfernen", error=error),
            step=step,
        )
        return gate.finish(request, page)
    _record(session, user, tenant, "inbox_source_removed", source)
    polling.remove_source(session, tenant=tenant, name=source.name)
    session.commit()
    return gate.finish(request, RedirectResponse(f"{BASE}?meldung=entfernt", 303))


@router.post(f"{BASE}/{{source_id}}/abrufen", dependencies=[CsrfDep])
async def poll_now(
    request: Request,
    source_id: int,
    session: SessionDep,
    tenant: CurrentTenant,
    settings: SettingsDep,
) -> Response:
    from rathaus.inbox.channels import poll as polling

    source = _source(session, tenant, source_id)
    result = await run_in_threadpool(
        polling.poll_source,
        session,
        source,
        store=OriginalStore(settings.originals_dir),
        max_bytes=settings.inbox.max_upload_mb * 1024 * 1024,
        allowed_networks=settings.network.allowed_networks,
        folder_roots=_folder_roots(settings),
    )
    return _page(request, session, tenant, poll=result)
