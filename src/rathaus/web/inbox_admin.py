"""Posteingang administration pages: routing rules (with a test against history), versions of the
routing model with activation and rollback, and per-department automatic routing.

Each of them decides where incoming items, with the personal data in them, go, and a rule or an
automatic release does so without a person looking. So saving, switching on or off a rule,
changing the automatic routing of a unit and activating or rolling back a model ask for the
password first (:mod:`rathaus.web.reauth`, ASVS 3.7.1); testing a rule against history is a dry
run and needs none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import (
    Case,
    CaseStatus,
    OrgUnit,
    OrgUnitKind,
    RoutingRule,
    Service,
    Tenant,
    User,
)
from rathaus.inbox import router as rules
from rathaus.inbox import training
from rathaus.web import reauth, reauth_step
from rathaus.web.deps import (
    CsrfDep,
    CurrentTenant,
    CurrentUser,
    SessionDep,
    SettingsDep,
)
from rathaus.web.inbox_views import ADMIN, _directory, _int, _notice, _queue_job
from rathaus.web.templating import render

router = APIRouter(include_in_schema=False)


# -- rules --------------------------------------------------------------------------------------


@dataclass
class RuleInput:
    name: str = ""
    keywords: str = ""
    pattern: str = ""
    scope: str = "text"
    org_unit_id: int | None = None
    service_id: int | None = None
    priority: int = 100

    @classmethod
    def of(cls, rule: RoutingRule) -> RuleInput:
        return cls(
            rule.name,
            rule.keywords,
            rule.pattern,
            rule.scope,
            rule.org_unit_id,
            rule.service_id,
            rule.priority,
        )


def _rule_input(
    session: Session,
    tenant: Tenant,
    *,
    name: str,
    keywords: str,
    pattern: str,
    scope: str,
    org_unit_id: str,
    service_id: str,
    priority: str,
) -> tuple[RuleInput, list[str]]:
    errors: list[str] = []
    data = RuleInput(
        name.strip(), keywords.strip(), pattern.strip(), scope, _int(org_unit_id), _int(service_id)
    )
    if not data.name:
        errors.append("Bitte geben Sie der Regel einen Namen.")
    try:
        rules.validate_rule(data.keywords, data.pattern)
    except RathausError as exc:
        errors.append(exc.message)
    if scope not in rules.RULE_SCOPES:
        errors.append("Bitte wählen Sie, wo gesucht wird (Text, Betreff, Absender oder Kanal).")
        data.scope = "text"
    unit = session.get(OrgUnit, data.org_unit_id) if data.org_unit_id else None
    if unit is None or unit.tenant_id != tenant.id:
        errors.append("Bitte wählen Sie das Amt, an das die Regel zuordnet.")
        data.org_unit_id = None
    if data.service_id:
        service = session.get(Service, data.service_id)
        if service is None or service.tenant_id != tenant.id:
            errors.append("Diese Leistung gibt es in Ihrer Kommune nicht.")
            data.service_id = None
    try:
        data.priority = int(priority)
        if not 0 <= data.priority <= 10000:
            raise ValueError
    except ValueError:
        errors.append("Die Reihenfolge muss eine ganze Zahl von 0 bis 10000 sein.")
    return data, errors


def _rules_page(
    request: Request,
    session: Session,
    tenant: Tenant,
    *,
    form: RuleInput,
    rule: RoutingRule | None = None,
    errors: list[str] | None = None,
    test: dict[str, Any] | None = None,
    notice: str = "",
    status_code: int = 200,
    reauth_state: dict[str, Any] | None = None,
    step: dict[str, Any] | None = None,
) -> Response:
    units, services = _directory(session, tenant.id)
    all_rules = session.scalars(
        select(RoutingRule)
        .where(RoutingRule.tenant_id == tenant.id)
        .order_by(RoutingRule.is_active.desc(), RoutingRule.priority, RoutingRule.id)
    ).all()
    return render(
        request,
        "inbox_rules.html",
        {
            "tenant": tenant,
            "rules": all_rules,
            "rule": rule,
            "form": form,
            "errors": errors or [],
            "test": test,
            "units": units,
            "services": services,
            "scopes": rules.RULE_SCOPES,
            "notice": notice,
            "reauth": reauth_state or reauth.state(request),
            "step": step,
        },
        status_code=status_code,
    )


def _tenant_rule(session: Session, tenant: Tenant, rule_id: int) -> RoutingRule:
    rule = session.get(RoutingRule, rule_id)
    if rule is None or rule.tenant_id != tenant.id:
        raise NotFoundError(f"Die Regel {rule_id} gibt es nicht.")
    return rule


def _test(session: Session, tenant: Tenant, data: RuleInput) -> dict[str, Any]:
    probe = RoutingRule(
        tenant_id=tenant.id,
        name=data.name,
        keywords=data.keywords,
        pattern=data.pattern,
        scope=data.scope,
        org_unit_id=data.org_unit_id,
        service_id=data.service_id,
        priority=data.priority,
    )
    return rules.test_rule(session, probe)


def _rule_audit(session: Session, user: User, rule: RoutingRule, kind: str) -> None:
    audit.record(
        session,
        audit.Event(
            kind=kind,
            actor=user.username,
            tenant_id=rule.tenant_id,
            subject=f"routing_rule:{rule.id}",
            data={
                "name": rule.name,
                "keywords": rule.keywords,
                "pattern": rule.pattern,
                "scope": rule.scope,
                "org_unit_id": rule.org_unit_id,
                "service_id": rule.service_id,
                "priority": rule.priority,
                "is_active": rule.is_active,
            },
        ),
    )


RuleForm = Annotated[str, Form(max_length=2000)]
Password = Annotated[str, Form(max_length=500)]
Step = Annotated[str, Form(max_length=20)]


@router.get("/posteingang/regeln", dependencies=[ADMIN])
def rules_page(
    request: Request, tenant: CurrentTenant, session: SessionDep, meldung: str = ""
) -> Response:
    return _rules_page(request, session, tenant, form=RuleInput(), notice=_notice(meldung))


@router.get("/posteingang/regeln/{rule_id}", dependencies=[ADMIN])
def rule_page(
    request: Request,
    rule_id: int,
    tenant: CurrentTenant,
    session: SessionDep,
    testen: bool = False,
    meldung: str = "",
) -> Response:
    rule = _tenant_rule(session, tenant, rule_id)
    form = RuleInput.of(rule)
    test = _test(session, tenant, form) if testen else None
    return _rules_page(
        request, session, tenant, form=form, rule=rule, test=test, notice=_notice(meldung)
    )


def _save_rule(
    request: Request,
    session: Session,
    tenant: Tenant,
    user: User,
    rule: RoutingRule | None,
    aktion: str,
    password: str,
    **fields: str,
) -> Response:
    """Test (a dry run, no password) or save the rule. Saving asks for the password once the
    input is valid (nothing would be saved otherwise); refused, the form stays as typed."""
    data, errors = _rule_input(session, tenant, **fields)
    if errors:
        return _rules_page(
            request, session, tenant, form=data, rule=rule, errors=errors, status_code=400
        )
    if aktion == "testen":
        test = _test(session, tenant, data)
        return _rules_page(request, session, tenant, form=data, rule=rule, test=test)
    gate, error = reauth_step.confirm_without_command(
        request,
        session,
        user,
        password=password,
        action="zuordnungsregel_speichern",
        what="das Speichern der Regel",
    )
    if not gate.ok:
        page = _rules_page(
            request,
            session,
            tenant,
            form=data,
            rule=rule,
            status_code=gate.status_code,
            reauth_state=reauth.state(request, action="regel", error=error),
        )
        return gate.finish(request, page)
    created = rule is None
    if rule is None:
        rule = RoutingRule(tenant_id=tenant.id)
        session.add(rule)
    for key, value in vars(data).items():
        setattr(rule, key, value)
    session.flush()
    _rule_audit(session, user, rule, "routing_rule_created" if created else "routing_rule_changed")
    done = RedirectResponse(f"/posteingang/regeln/{rule.id}?meldung=regel", 303)
    return gate.finish(request, done)


def _rule_fields(
    name: RuleForm = "",
    keywords: RuleForm = "",
    pattern: RuleForm = "",
    scope: RuleForm = "text",
    org_unit_id: RuleForm = "",
    service_id: RuleForm = "",
    priority: RuleForm = "100",
) -> dict[str, str]:
    """The rule form's fields, as typed (checked by ``_rule_input``)."""
    return {
        "name": name,
        "keywords": keywords,
        "pattern": pattern,
        "scope": scope,
        "org_unit_id": org_unit_id,
        "service_id": service_id,
        "priority": priority,
    }


RuleFields = Annotated[dict[str, str], Depends(_rule_fields)]


@router.post("/posteingang/regeln", dependencies=[CsrfDep, ADMIN])
def create_rule(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    fields: RuleFields,
    aktion: RuleForm = "speichern",
    passwort: Password = "",
) -> Response:
    return _save_rule(request, session, tenant, user, None, aktion, passwort, **fields)


@router.post("/posteingang/regeln/{rule_id}", dependencies=[CsrfDep, ADMIN])
def update_rule(
    request: Request,
    rule_id: int,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    fields: RuleFields,
    aktion: RuleForm = "speichern",
    passwort: Password = "",
) -> Response:
    rule = _tenant_rule(session, tenant, rule_id)
    return _save_rule(request, session, tenant, user, rule, aktion, passwort, **fields)


@router.post("/posteingang/regeln/{rule_id}/aktiv", dependencies=[CsrfDep, ADMIN])
def toggle_rule(
    request: Request,
    rule_id: int,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    aktiv: Annotated[str, Form(max_length=5)] = "0",
    passwort: Password = "",
    schritt: Step = "",
) -> Response:
    """Switch a rule on or off after the password: the row's button asks on a card first
    (:mod:`rathaus.web.reauth_step`) unless this session confirmed in the last minutes."""
    rule = _tenant_rule(session, tenant, rule_id)  # an unknown rule: 404, no password needed
    on = aktiv == "1"
    verb = "aktivieren" if on else "deaktivieren"
    gate, error = reauth_step.confirm_without_command(
        request,
        session,
        user,
        password=passwort,
        action=f"zuordnungsregel_{verb}",
        what=f"das {verb.capitalize()} der Regel",
        step=schritt,
    )
    if not gate.ok:
        unit = f"„{rule.org_unit.name}“" if rule.org_unit else "das gewählte Amt"
        step = {
            "id": "regel-umschalten",
            "title": f"Regel „{rule.name}“ {verb}",
            "text": (
                f"Eingänge, auf die sie zutrifft, gehen danach mit voller Sicherheit an {unit}; "
                "wo die automatische Zuordnung freigegeben ist, ohne dass ein Mensch sie prüft."
                if on
                else "Eingänge, auf die sie zutrifft, ordnen danach wieder das gelernte Modell "
                "oder die Beschäftigten zu. Sie lässt sich jederzeit wieder aktivieren."
            ),
            "url": f"/posteingang/regeln/{rule.id}/aktiv",
            "hidden": [("aktiv", "1" if on else "0")],
            "action": "regel_umschalten",
            "when": f" das {verb.capitalize()}",
            "button": f"Regel {verb}",
            "back": "/posteingang/regeln",
        }
        page = _rules_page(
            request,
            session,
            tenant,
            form=RuleInput(),
            status_code=gate.status_code,
            reauth_state=reauth.state(request, action="regel_umschalten", error=error),
            step=step,
        )
        return gate.finish(request, page)
    rule.is_active = on
    session.flush()
    _rule_audit(
        session,
        user,
        rule,
        "routing_rule_activated" if rule.is_active else "routing_rule_deactivated",
    )
    notice = "regel_an" if rule.is_active else "regel_aus"
    return gate.finish(request, RedirectResponse(f"/posteingang/regeln?meldung={notice}", 303))


# -- model versions and automatic routing -------------------------------------------------------


def _decided_cases(session: Session, tenant_id: int) -> tuple[int, int]:
    """How many decided cases there are to train on, and over how many units."""
    query = select(func.count(Case.id), func.count(func.distinct(Case.org_unit_id))).where(
        Case.tenant_id == tenant_id,
        Case.org_unit_id.is_not(None),
        Case.status.not_in([CaseStatus.NEU, CaseStatus.TRIAGE]),
    )
    count, units = session.execute(query).one()
    return int(count or 0), int(units or 0)


def _model_audit(session: Session, user: User, tenant: Tenant, kind: str, **data: Any) -> None:
    audit.record(
        session,
        audit.Event(
            kind=kind, actor=user.username, tenant_id=tenant.id, subject="routing_model", data=data
        ),
    )


ACTIVATE_CLI = "`rathaus inbox activate`"
ROLLBACK_CLI = "`rathaus inbox rollback`"


def _models_page(
    request: Request,
    tenant: Tenant,
    session: Session,
    *,
    meldung: str = "",
    fehler: str = "",
    status_code: int = 200,
    reauth_state: dict[str, Any] | None = None,
    step: dict[str, Any] | None = None,
    unit_form: dict[int, dict[str, Any]] | None = None,
) -> Response:
    """``unit_form``: the automatic routing per unit as typed (unit id → ``automatisch``,
    ``schwelle``), shown instead of the stored values after a refused password."""
    versions = training.versions(session, tenant.id)
    live = next((v for v in versions if v.status == "live"), None)
    units = session.scalars(
        select(OrgUnit)
        .where(
            OrgUnit.tenant_id == tenant.id,
            OrgUnit.is_active.is_(True),
            OrgUnit.kind != OrgUnitKind.FACHBEREICH,
        )
        .order_by(OrgUnit.name)
    ).all()
    count, unit_count = _decided_cases(session, tenant.id)
    errors = {
        "zu_wenige": f"Zu wenige entschiedene Vorgänge zum Trainieren ({count}; mindestens "
        f"{training.MIN_CASES} aus zwei oder mehr Ämtern).",
    }
    return render(
        request,
        "inbox_models.html",
        {
            "tenant": tenant,
            "versions": versions,
            "live": live,
            "can_rollback": live is not None
            and any(
                v.metrics.get("tasks") and v.activated_at and v.version < live.version
                for v in versions
            ),
            "thresholds": (live.metrics.get("thresholds") or {}) if live else {},
            "units": units,
            "decided": count,
            "decided_units": unit_count,
            "min_cases": training.MIN_CASES,
            "min_auto": rules.MIN_AUTO_CONFIDENCE,
            "notice": _notice(meldung),
            "error": errors.get(fehler, ""),
            "reauth": reauth_state or reauth.state(request),
            "step": step,
            "unit_form": unit_form or {},
        },
        status_code=status_code,
    )


@router.get("/posteingang/modelle", dependencies=[ADMIN])
def models_page(
    request: Request,
    tenant: CurrentTenant,
    session: SessionDep,
    meldung: str = "",
    fehler: str = "",
) -> Response:
    return _models_page(request, tenant, session, meldung=meldung, fehler=fehler)


def _model_gate(
    request: Request,
    tenant: Tenant,
    session: Session,
    *,
    password: str,
    step_sent: str,
    action: str,
    cli: str,
    step: dict[str, Any],
) -> tuple[reauth.Gate, Response | None]:
    """The password before a routing model goes live (:mod:`rathaus.web.reauth`): it decides
    where incoming items go. Refused: the page with the card of ``step``
    (:mod:`rathaus.web.reauth_step`)."""
    gate = reauth.confirm(request, session, password=password, action=action, cli=cli)
    if gate.ok:
        return gate, None
    error = reauth_step.step_error(gate, password=password, step=step_sent)
    page = _models_page(
        request,
        tenant,
        session,
        status_code=gate.status_code,
        reauth_state=reauth.state(request, action="modell", error=error),
        step={"id": "modell-bestaetigen", "action": "modell", "back": "/posteingang/modelle"}
        | step,
    )
    return gate, gate.finish(request, page)


@router.post("/posteingang/modelle/trainieren", dependencies=[CsrfDep, ADMIN])
def retrain_now(
    user: CurrentUser, tenant: CurrentTenant, session: SessionDep, settings: SettingsDep
) -> Response:
    from rathaus.inbox.jobs import retrain_job

    count, units = _decided_cases(session, tenant.id)
    if count < training.MIN_CASES or units < 2:
        return RedirectResponse("/posteingang/modelle?fehler=zu_wenige", 303)
    _model_audit(session, user, tenant, "routing_training_requested", decided_cases=count)
    session.commit()
    _queue_job(settings, retrain_job, tenant.id, "manuell", user.username)
    return RedirectResponse("/posteingang/modelle?meldung=training", 303)


@router.post("/posteingang/modelle/{version}/aktivieren", dependencies=[CsrfDep, ADMIN])
def activate_version(
    request: Request,
    version: int,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    passwort: Password = "",
    schritt: Step = "",
) -> Response:
    versions = training.versions(session, tenant.id)
    before = next((v.version for v in versions if v.status == "live"), None)
    known = next((v for v in versions if v.version == version and v.metrics.get("tasks")), None)
    if known is None:  # nothing to activate: no password needed to say so
        raise NotFoundError(
            f"Modellversion {version} gibt es nicht oder sie wurde nie gespeichert "
            "(abgelehnte Kandidaten haben keine Dateien)."
        )
    gate, refused = _model_gate(
        request,
        tenant,
        session,
        password=passwort,
        step_sent=schritt,
        action="zuordnungsmodell_aktivieren",
        cli=ACTIVATE_CLI,
        step={
            "title": f"Modellversion v{version} aktivieren",
            "text": f"Version v{version} ordnet danach die neuen Eingänge zu"
            + (f" statt v{before}" if before is not None else "")
            + "; die automatische Zuordnung der Ämter folgt ihren Schwellen.",
            "url": f"/posteingang/modelle/{version}/aktivieren",
            "hidden": [],
            "when": " die Aktivierung",
            "button": f"v{version} aktivieren",
        },
    )
    if refused is not None:
        return refused
    target = training.activate(session, tenant, version)
    _model_audit(
        session, user, tenant, "routing_model_activated", version=target.version, previous=before
    )
    done = RedirectResponse("/posteingang/modelle?meldung=aktiviert", 303)
    return gate.finish(request, done)


@router.post("/posteingang/modelle/zurueckrollen", dependencies=[CsrfDep, ADMIN])
def rollback_version(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    passwort: Password = "",
    schritt: Step = "",
) -> Response:
    versions = training.versions(session, tenant.id)
    before = next((v.version for v in versions if v.status == "live"), None)
    if not any(  # the choice of training.rollback; nothing to go back to: no password needed
        v.metrics.get("tasks")
        and v.status != "live"
        and v.activated_at is not None
        and (before is None or v.version < before)
        for v in versions
    ):
        raise RathausError("Es gibt keine frühere Modellversion, zu der zurückgekehrt werden kann.")
    gate, refused = _model_gate(
        request,
        tenant,
        session,
        password=passwort,
        step_sent=schritt,
        action="zuordnungsmodell_zurueckrollen",
        cli=ROLLBACK_CLI,
        step={
            "title": "Auf die vorherige Modellversion zurückrollen",
            "text": "Die zuletzt vor der laufenden aktivierte Version ordnet danach die neuen "
            "Eingänge zu"
            + (f"; v{before} wird abgelöst" if before is not None else "")
            + ". Sie lässt sich jederzeit wieder aktivieren.",
            "url": "/posteingang/modelle/zurueckrollen",
            "hidden": [],
            "when": " das Zurückrollen",
            "button": "Zurückrollen",
        },
    )
    if refused is not None:
        return refused
    target = training.rollback(session, tenant)
    _model_audit(
        session, user, tenant, "routing_model_rollback", version=target.version, previous=before
    )
    done = RedirectResponse("/posteingang/modelle?meldung=zurueck", 303)
    return gate.finish(request, done)


def _threshold(raw: str, unit: OrgUnit) -> float | None:
    value = raw.strip().replace(",", ".").removesuffix("%").strip()
    if not value:
        return None
    try:
        percent = float(value)
    except ValueError:
        percent = -1.0
    if not rules.MIN_AUTO_CONFIDENCE * 100 <= percent <= 100:
        raise RathausError(
            f"Die Schwelle für „{unit.name}“ muss zwischen "
            f"{rules.MIN_AUTO_CONFIDENCE * 100:.0f} und 100 % liegen (oder leer bleiben: dann "
            "gilt die Schwelle des Modells)."
        )
    return round(percent / 100, 4)


@router.post("/posteingang/modelle/einheiten", dependencies=[CsrfDep, ADMIN])
def unit_settings(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    einheit: Annotated[list[int], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    schwelle: Annotated[list[str], Form()] = [],  # noqa: B006
    automatisch: Annotated[list[int], Form()] = [],  # noqa: B006
    passwort: Password = "",
) -> Response:
    """Automatic routing per unit: it decides whether items reach a department without a person
    looking at them, so a change needs the password (a form without one changes nothing: none
    needed) and is written to the audit log. Refused, the form stays as typed."""
    if len(einheit) != len(schwelle):
        raise RathausError("Das Formular ist unvollständig; bitte die Seite neu laden.")
    enabled = set(automatisch)
    changes: list[tuple[OrgUnit, dict[str, Any], dict[str, Any]]] = []
    for unit_id, raw in zip(einheit, schwelle, strict=True):
        unit = session.get(OrgUnit, unit_id)
        if unit is None or unit.tenant_id != tenant.id:
            raise NotFoundError("Diese Organisationseinheit gibt es in Ihrer Kommune nicht.")
        threshold = _threshold(raw, unit)
        before = {
            "auto_route_enabled": unit.auto_route_enabled,
            "threshold": unit.auto_route_threshold,
        }
        after = {"auto_route_enabled": unit_id in enabled, "threshold": threshold}
        if before != after:
            changes.append((unit, before, after))
    gate = reauth.Gate(ok=True)
    if changes:
        gate, error = reauth_step.confirm_without_command(
            request,
            session,
            user,
            password=passwort,
            action="automatische_zuordnung_aendern",
            what="die Änderung der automatischen Zuordnung",
        )
        if not gate.ok:
            typed = {
                unit_id: {"automatisch": unit_id in enabled, "schwelle": raw}
                for unit_id, raw in zip(einheit, schwelle, strict=True)
            }
            page = _models_page(
                request,
                tenant,
                session,
                status_code=gate.status_code,
                reauth_state=reauth.state(request, action="einheiten", error=error),
                unit_form=typed,
            )
            return gate.finish(request, page)
    for unit, before, after in changes:
        unit.auto_route_enabled = after["auto_route_enabled"]
        unit.auto_route_threshold = after["threshold"]
        audit.record(
            session,
            audit.Event(
                kind="auto_routing_changed",
                actor=user.username,
                tenant_id=tenant.id,
                subject=f"org_unit:{unit.code}",
                data={"unit": unit.name, "before": before, "after": after},
            ),
        )
    done = RedirectResponse("/posteingang/modelle?meldung=einheiten#einheiten", 303)
    return gate.finish(request, done)
