"""Datenschutz pages: retention rules, Art. 15/17 requests and the access log.

Everything under ``/governance/datenschutz`` needs ``Permission.MANAGE_PRIVACY``; every form
that changes something carries the CSRF token. A person's identifiers travel only in POST
bodies (never in URLs, so not in server logs) and are not stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from rathaus.core.config import Settings
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import Tenant, User
from rathaus.core.roles import Permission
from rathaus.core.storage import OriginalStore
from rathaus.governance import access_log, privacy, retention
from rathaus.inbox.classify import REQUEST_TYPES
from rathaus.insights.export import table_response
from rathaus.web import reauth, reauth_step
from rathaus.web.deps import CsrfDep, CurrentTenant, CurrentUser, SessionDep, SettingsDep, require
from rathaus.web.governance_nav import nav_context
from rathaus.web.templating import render

router = APIRouter(include_in_schema=False)

PRIVACY = Depends(require(Permission.MANAGE_PRIVACY))
BASE = "/governance/datenschutz"
NOTICES = {
    "regel": "Die Aufbewahrungsregel wurde gespeichert und im Prüfprotokoll festgehalten.",
    "regel_entfernt": "Die Aufbewahrungsregel wurde entfernt.",
}
PERSON_FIELDS = (
    ("name", "Name (Vor- und Nachname)"),
    ("email", "E-Mail"),
    ("telefon", "Telefon"),
    ("iban", "IBAN"),
    ("anschrift", "Anschrift (Straße und Hausnummer)"),
    ("aktenzeichen", "Aktenzeichen"),
)

Field = Annotated[str, Form(max_length=300)]
Password = Annotated[str, Form(max_length=500)]
ERASE_CLI = "`rathaus datenschutz loeschen`"
APPLY_CLI = "`rathaus datenschutz aufbewahrung-anwenden`"
RULE_CLI = "`rathaus datenschutz aufbewahrung-setzen`"
REMOVE_RULE_CLI = "`rathaus datenschutz aufbewahrung-entfernen`"
RULE_GONE = "Diese Aufbewahrungsregel gibt es nicht (mehr); die Liste zeigt die vorhandenen."


def _person(form: dict[str, str]) -> privacy.Person:
    return privacy.Person.parse(
        names=[form.get("name", "")],
        emails=[form.get("email", "")],
        phones=[form.get("telefon", "")],
        ibans=[form.get("iban", "")],
        addresses=[form.get("anschrift", "")],
        references=[form.get("aktenzeichen", "")],
    )


def _keyring(settings: Settings) -> Any:
    from rathaus.governance.keys import Keyring

    return Keyring.from_settings(settings)


def _page(
    request: Request,
    session: Any,
    user: User,
    tenant: Tenant,
    settings: Settings,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    rules = retention.list_rules(session, tenant_id=tenant.id)
    days, from_rule = retention.conversation_period(
        session, tenant_id=tenant.id, default_days=settings.assistant.retention_days
    )
    context = nav_context(
        user,
        tenant,
        rules=[(r, retention.rule_label(r)) for r in rules],
        conversation_days=days,
        conversation_rule=from_rule,
        request_types=REQUEST_TYPES,
        person_fields=PERSON_FIELDS,
        person={},
        reauth=reauth.state(request),
        rule_form={"ziel": "vorgang", "art": "", "tage": "", "aktion": "loeschen", "aktiv": True},
        step=None,
    )
    context.update(extra)
    return render(request, "governance_privacy.html", context, status_code=status_code)


@router.get(BASE, dependencies=[PRIVACY])
def privacy_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
    settings: SettingsDep,
    meldung: str = "",
) -> Response:
    return _page(request, session, user, tenant, settings, notice=NOTICES.get(meldung, ""))


# -- retention rules ----------------------------------------------------------------------------


def _without_rule(rule: Any) -> str:
    """What applies once ``rule`` is gone (said on the confirmation card)."""
    if rule.target == "unterhaltung":
        return "Für Unterhaltungen gilt danach wieder die Frist aus der Einstellung."
    if rule.request_type:
        return (
            "Für diese Anliegenart gilt danach die Regel für alle übrigen Arten; gibt es keine, "
            "bleiben solche Vorgänge unbegrenzt."
        )
    return "Abgeschlossene Vorgänge ohne eigene Regel bleiben danach unbegrenzt."


@router.post(f"{BASE}/regeln", dependencies=[CsrfDep, PRIVACY])
def save_rule(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
    settings: SettingsDep,
    ziel: Annotated[str, Form(max_length=30)] = "vorgang",
    art: Annotated[str, Form(max_length=30)] = "",
    tage: Annotated[str, Form(max_length=10)] = "",
    aktion: Annotated[str, Form(max_length=20)] = "loeschen",
    aktiv: Annotated[str, Form(max_length=5)] = "",
    passwort: Password = "",
) -> Response:
    """Create or change a rule, after the password (:mod:`reauth`): a shorter period deletes
    cases at the next run. A refused password shows the form as it was typed."""
    typed = {"ziel": ziel, "art": art, "tage": tage, "aktion": aktion, "aktiv": bool(aktiv)}
    gate = reauth.confirm(
        request, session, password=passwort, action="aufbewahrungsregel_speichern", cli=RULE_CLI
    )
    if not gate.ok:
        state = reauth.state(request, action="regel", error=gate.error)
        page = _page(
            request,
            session,
            user,
            tenant,
            settings,
            gate.status_code,
            reauth=state,
            rule_form=typed,
        )
        return gate.finish(request, page)
    try:
        try:
            days = int(tage.strip())
        except ValueError:
            raise RathausError(
                f"„{tage[:10]}“ ist keine Zahl: bitte die Frist in Tagen angeben."
            ) from None
        retention.set_rule(
            session,
            tenant_id=tenant.id,
            target=ziel,
            request_type=art,
            days=days,
            action=aktion,
            is_active=bool(aktiv),
            actor=user.username,
        )
    except RathausError as exc:
        session.rollback()
        page = _page(
            request, session, user, tenant, settings, 422, error=exc.message, rule_form=typed
        )
        return gate.finish(request, page)
    done = RedirectResponse(f"{BASE}?meldung=regel", status_code=303)
    return gate.finish(request, done)


@router.post(f"{BASE}/regeln/entfernen", dependencies=[CsrfDep, PRIVACY])
def delete_rule(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
    settings: SettingsDep,
    ziel: Annotated[str, Form(max_length=30)] = "vorgang",
    art: Annotated[str, Form(max_length=30)] = "",
    passwort: Password = "",
    schritt: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Remove a rule after the password (:mod:`reauth`): the row's button asks on a card first
    (:mod:`rathaus.web.reauth_step`) unless this session confirmed in the last minutes."""
    try:
        target, request_type = retention.validate_rule(ziel, art, 1, "loeschen")
    except RathausError as exc:
        return _page(request, session, user, tenant, settings, 422, error=exc.message)
    rules = retention.list_rules(session, tenant_id=tenant.id)
    found = next((r for r in rules if (r.target, r.request_type) == (target, request_type)), None)
    if found is None:  # nothing to remove: no password needed to say so
        return _page(request, session, user, tenant, settings, 404, error=RULE_GONE)
    gate = reauth.confirm(
        request,
        session,
        password=passwort,
        action="aufbewahrungsregel_entfernen",
        cli=REMOVE_RULE_CLI,
    )
    if not gate.ok:
        error = reauth_step.step_error(gate, password=passwort, step=schritt)
        step = {
            "id": "regel-entfernen",
            "title": "Aufbewahrungsregel entfernen",
            "text": f"Die Regel „{retention.rule_label(found)}“ wird entfernt. "
            + _without_rule(found),
            "url": f"{BASE}/regeln/entfernen",
            "hidden": [("ziel", found.target), ("art", found.request_type)],
            "action": "regel_entfernen",
            "when": " das Entfernen",
            "button": "Regel endgültig entfernen",
            "back": BASE,
        }
        state = reauth.state(request, action="regel_entfernen", error=error)
        page = _page(
            request, session, user, tenant, settings, gate.status_code, reauth=state, step=step
        )
        return gate.finish(request, page)
    try:
        retention.remove_rule(
            session,
            tenant_id=tenant.id,
            target=target,
            request_type=request_type,
            actor=user.username,
        )
    except RathausError as exc:
        session.rollback()
        page = _page(request, session, user, tenant, settings, 422, error=exc.message)
        return gate.finish(request, page)
    done = RedirectResponse(f"{BASE}?meldung=regel_entfernt", status_code=303)
    return gate.finish(request, done)


@router.post(f"{BASE}/anwenden", dependencies=[CsrfDep, PRIVACY])
def apply_rules(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
    settings: SettingsDep,
    ausfuehren: Annotated[str, Form(max_length=5)] = "",
    passwort: Password = "",
) -> Response:
    """Without ``ausfuehren`` a dry run; with it, after the password (:mod:`reauth`), the rules
    are applied now."""
    gate = reauth.Gate(ok=True)
    if ausfuehren:
        gate = reauth.confirm(
            request, session, password=passwort, action="aufbewahrung_anwenden", cli=APPLY_CLI
        )
        if not gate.ok:
            state = reauth.state(request, action="anwenden", error=gate.error)
            page = _page(request, session, user, tenant, settings, gate.status_code, reauth=state)
            return gate.finish(request, page)
    report = retention.apply(
        session,
        tenant_id=tenant.id,
        store=OriginalStore(settings.originals_dir),
        default_conversation_days=settings.assistant.retention_days,
        dry_run=not ausfuehren,
        actor=user.username,
    )
    page = _page(request, session, user, tenant, settings, retention_report=report)
    return gate.finish(request, page)


# -- Art. 15 / 17 -------------------------------------------------------------------------------


def _person_form(
    name: Field = "",
    email: Field = "",
    telefon: Field = "",
    iban: Field = "",
    anschrift: Field = "",
    aktenzeichen: Field = "",
) -> dict[str, str]:
    """The fields that describe the person of an Art. 15/17 request, trimmed."""
    values = {"name": name, "email": email, "telefon": telefon, "iban": iban}
    values |= {"anschrift": anschrift, "aktenzeichen": aktenzeichen}
    return {k: (v or "").strip() for k, v in values.items()}


PersonForm = Annotated[dict[str, str], Depends(_person_form)]


@router.post(f"{BASE}/auskunft", dependencies=[CsrfDep, PRIVACY])
def access_search(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
    settings: SettingsDep,
    form: PersonForm,
) -> Response:
    """Art. 15, step 1: what is stored about the person (reads only)."""
    try:
        person = _person(form)
        findings = privacy.find(
            session, tenant_id=tenant.id, person=person, keyring=_keyring(settings)
        )
    except RathausError as exc:
        return _page(request, session, user, tenant, settings, 422, error=exc.message, form=form)
    return _page(request, session, user, tenant, settings, findings=findings, form=form)


@router.post(f"{BASE}/auskunft/zip", dependencies=[CsrfDep, PRIVACY])
def access_zip(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
    settings: SettingsDep,
    form: PersonForm,
) -> Response:
    """Art. 15, step 2: the ZIP (recorded as a PrivacyRequest and in the access log)."""
    try:
        export = privacy.access_request(
            session,
            tenant=tenant,
            person=_person(form),
            actor=user.username,
            channel="web",
            store=OriginalStore(settings.originals_dir),
            keyring=_keyring(settings),
            default_conversation_days=settings.assistant.retention_days,
        )
    except RathausError as exc:
        session.rollback()
        return _page(request, session, user, tenant, settings, 422, error=exc.message, form=form)
    return Response(
        export.zip_bytes,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.post(f"{BASE}/loeschung", dependencies=[CsrfDep, PRIVACY])
def erasure(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
    settings: SettingsDep,
    form: PersonForm,
    offene: Annotated[str, Form(max_length=5)] = "",
    bestaetigen: Annotated[str, Form(max_length=5)] = "",
    passwort: Password = "",
) -> Response:
    """Art. 17: without ``bestaetigen`` the plan; with it, after the password (:mod:`reauth`),
    the erasure. A refused confirmation shows the plan again, with the form as it was."""
    gate = reauth.Gate(ok=True)
    if bestaetigen:
        gate = reauth.confirm(
            request, session, password=passwort, action="dsgvo_loeschung", cli=ERASE_CLI
        )
    confirmed = bool(bestaetigen) and gate.ok
    try:
        result = privacy.erasure_request(
            session,
            tenant=tenant,
            person=_person(form),
            actor=user.username,
            confirm=confirmed,
            include_open=bool(offene),
            store=OriginalStore(settings.originals_dir),
            keyring=_keyring(settings),
        )
    except (NotFoundError, RathausError) as exc:
        session.rollback()
        return _page(request, session, user, tenant, settings, 422, error=exc.message, form=form)
    if result.confirmed and result.training:
        session.commit()  # the retraining must see the erasure
        result.training["neutraining"] = _queue_retrain(settings, tenant.id, user.username)
    page = _page(
        request,
        session,
        user,
        tenant,
        settings,
        gate.status_code,
        erasure=result,
        form=form,
        include_open=bool(offene),
        reauth=reauth.state(request, action="loeschung", error=gate.error),
    )
    return gate.finish(request, page)


def _queue_retrain(settings: Settings, tenant_id: int, actor: str) -> str:
    from rathaus.inbox.jobs import retrain_job
    from rathaus.jobs import get_huey

    try:
        get_huey(settings)
        retrain_job.enqueue(tenant_id, "datenschutz", actor)
    except Exception:  # noqa: BLE001 - the recommendation stands; the nightly training catches up
        return "empfohlen"
    return "eingereiht"


# -- access log ---------------------------------------------------------------------------------

Text = Annotated[str | None, Query(max_length=120)]


@router.get(f"{BASE}/zugriffe", dependencies=[PRIVACY])
def access_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
    aktenzeichen: Text = None,
    benutzer: Text = None,
    von: Text = None,
    bis: Text = None,
) -> Response:
    form = {"aktenzeichen": aktenzeichen, "benutzer": benutzer, "von": von, "bis": bis}
    context = nav_context(user, tenant, form=form, query=request.url.query)
    try:
        items = access_log.entries(
            session,
            tenant_id=tenant.id,
            reference=aktenzeichen,
            username=benutzer,
            since=von,
            until=bis,
        )
    except RathausError as exc:
        context |= {"error": exc.message, "rows": []}
        return render(request, "governance_privacy_access.html", context, status_code=422)
    context["rows"] = access_log.rows(items)
    return render(request, "governance_privacy_access.html", context)


@router.get(f"{BASE}/zugriffe.csv", dependencies=[PRIVACY])
def access_csv(
    session: SessionDep,
    tenant: CurrentTenant,
    aktenzeichen: Text = None,
    benutzer: Text = None,
    von: Text = None,
    bis: Text = None,
) -> Response:
    items = access_log.entries(
        session,
        tenant_id=tenant.id,
        reference=aktenzeichen,
        username=benutzer,
        since=von,
        until=bis,
        limit=access_log.MAX_ROWS,
    )
    stamp = dt.date.today().isoformat()
    return table_response(
        "csv", f"zugriffe-{tenant.slug}-{stamp}", access_log.CSV_HEADERS, access_log.rows(items)
    )
