"""Open311 GeoReport v2: services, request submission and status queries, JSON and XML.

Reporting apps submit here; a report becomes a case like any other item. Errors use the
specification's error list (``[{"code": …, "description": …}]``). Public queries show only the
report itself (service, description, place, status), never the reporter's contact data.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core.access import not_confidential
from rathaus.core.cases import OPEN_STATUSES
from rathaus.core.models import Case, CaseStatus, Service, Tenant
from rathaus.core.storage import OriginalStore
from rathaus.inbox.service import IncomingItem, receive

MAX_DESCRIPTION = 4000
MAX_RESULTS = 1000
DEFAULT_WINDOW_DAYS = 90
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[A-Za-z]{2,}$")


class Open311Error(Exception):
    """An error in the GeoReport format: HTTP status plus German description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description

    def as_list(self) -> list[dict[str, Any]]:
        return [{"code": self.status, "description": self.description}]


def _service_dict(service: Service) -> dict[str, Any]:
    return {
        "service_code": service.code,
        "service_name": service.name,
        "description": service.description,
        "metadata": False,
        "type": "realtime",
        "keywords": service.keywords,
        "group": service.org_unit.name if service.org_unit else "",
    }


def _services(session: Session, tenant: Tenant) -> list[Service]:
    query = (
        select(Service)
        .where(Service.tenant_id == tenant.id, Service.open311_enabled, Service.is_active)
        .order_by(Service.name)
    )
    return list(session.scalars(query))


def list_services(session: Session, tenant: Tenant) -> list[dict[str, Any]]:
    return [_service_dict(s) for s in _services(session, tenant)]


def _service(session: Session, tenant: Tenant, code: str) -> Service:
    service = session.scalar(
        select(Service).where(
            Service.tenant_id == tenant.id,
            Service.code == code,
            Service.open311_enabled,
            Service.is_active,
        )
    )
    if service is None:
        raise Open311Error(
            404, f"Den Dienst „{code[:60]}“ gibt es hier nicht (service_code prüfen)."
        )
    return service


def service_definition(session: Session, tenant: Tenant, code: str) -> dict[str, Any]:
    service = _service(session, tenant, code)
    return {"service_code": service.code, "attributes": []}


def _float(params: dict[str, str], name: str, low: float, high: float) -> float | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        raise Open311Error(
            400, f"„{name}“ muss eine Zahl sein (Dezimalgrad, z. B. 47.66)."
        ) from None
    if not low <= value <= high:
        raise Open311Error(400, f"„{name}“ muss zwischen {low:g} und {high:g} liegen.")
    return value


def submit(
    session: Session, tenant: Tenant, params: dict[str, str], *, store: OriginalStore
) -> list[dict[str, Any]]:
    """Create a case from a GeoReport POST (``api_key`` is checked by the caller)."""
    code = (params.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, "Pflichtfeld „service_code“ fehlt.")
    service = _service(session, tenant, code)
    lat = _float(params, "lat", -90, 90)
    lon = _float(params, "long", -180, 180)
    address = (params.get("address_string") or params.get("address_id") or "").strip()[:300]
    if (lat is None) != (lon is None):
        raise Open311Error(400, "„lat“ und „long“ müssen zusammen angegeben werden.")
    if lat is None and not address:
        raise Open311Error(
            400, "Ein Ort fehlt: bitte „lat“ und „long“ oder „address_string“ angeben."
        )
    description = (params.get("description") or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise Open311Error(400, f"„description“ ist zu lang (höchstens {MAX_DESCRIPTION} Zeichen).")
    media_url = (params.get("media_url") or "").strip()
    if media_url and not re.match(r"^https?://[^\s]{1,2000}$", media_url):
        raise Open311Error(400, "„media_url“ muss eine http- oder https-Adresse sein.")
    email = (params.get("email") or "").strip()
    if email and not _EMAIL.match(email):
        raise Open311Error(400, "„email“ ist keine gültige E-Mail-Adresse.")
    name = " ".join(
        p
        for p in ((params.get("first_name") or "").strip(), (params.get("last_name") or "").strip())
        if p
    )
    contact = ", ".join(p for p in (email, (params.get("phone") or "").strip()) if p)
    payload = {k: v for k, v in sorted(params.items()) if k != "api_key"}
    item = IncomingItem(
        channel="open311",
        original=json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8"),
        filename="open311-meldung.json",
        media_type="application/json",
        subject=f"{service.name}: {description[:120]}" if description else service.name,
        body=description,
        sender_name=name,
        sender_contact=contact,
        address=address,
        latitude=lat,
        longitude=lon,
        service=service,
        fields={
            "open311": {
                "media_url": media_url,
                "device_id": (params.get("device_id") or "")[:100],
                "account_id": (params.get("account_id") or "")[:100],
            }
        },
    )
    received = receive(session, tenant=tenant, item=item, store=store)
    return [
        {
            "service_request_id": received.case.reference,
            "service_notice": "Vielen Dank, Ihre Meldung ist eingegangen."
            if not received.duplicate
            else "Diese Meldung lag bereits vor.",
            "account_id": None,
        }
    ]


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return aware.isoformat(timespec="seconds")


def request_dict(case: Case) -> dict[str, Any]:
    open_ = CaseStatus(case.status) in OPEN_STATUSES
    body = case.messages[0].body if case.messages else ""
    return {
        "service_request_id": case.reference,
        "status": "open" if open_ else "closed",
        "status_notes": None if open_ else "Erledigt.",
        "service_name": case.service.name if case.service else None,
        "service_code": case.service.code if case.service else None,
        "description": body,
        "agency_responsible": case.org_unit.name if case.org_unit else None,
        "service_notice": None,
        "requested_datetime": _iso(case.received_at),
        "updated_datetime": _iso(case.updated_at),
        "expected_datetime": _iso(case.due_at),
        "address": case.address or None,
        "address_id": None,
        "zipcode": None,
        "lat": case.latitude,
        "long": case.longitude,
        "media_url": (case.fields.get("open311") or {}).get("media_url") or None,
    }


def _date(params: dict[str, str], name: str) -> dt.datetime | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(
            400, f"„{name}“ muss ein Datum nach ISO 8601 sein, z. B. 2026-11-01T00:00:00Z."
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def query_requests(
    session: Session, tenant: Tenant, params: dict[str, str]
) -> list[dict[str, Any]]:
    """GET requests with the specification's filters; without ids, the last 90 days at most."""
    # Public status: a case marked vertraulich is not published (core/access.py).
    query = select(Case).where(
        Case.tenant_id == tenant.id, Case.channel == "open311", not_confidential()
    )
    ids = [i.strip() for i in (params.get("service_request_id") or "").split(",") if i.strip()]
    if ids:
        query = query.where(Case.reference.in_(ids[:MAX_RESULTS]))
    else:
        start, end = _date(params, "start_date"), _date(params, "end_date")
        if start and end and end < start:
            raise Open311Error(400, "„end_date“ liegt vor „start_date“.")
        if start is None:
            start = (end or dt.datetime.now(dt.UTC)) - dt.timedelta(days=DEFAULT_WINDOW_DAYS)
        query = query.where(Case.received_at >= start)
        if end is not None:
            query = query.where(Case.received_at <= end)
        code = (params.get("service_code") or "").strip()
        if code:
            query = query.join(Service, Service.id == Case.service_id).where(
                Service.code.in_(code.split(","))
            )
        status = (params.get("status") or "").strip().lower()
        if status:
            allowed = {
                "open": list(OPEN_STATUSES),
                "closed": [CaseStatus.ERLEDIGT, CaseStatus.ARCHIVIERT],
            }
            wanted = [s for part in status.split(",") for s in allowed.get(part, [])]
            if not wanted:
                raise Open311Error(400, "„status“ muss „open“ oder „closed“ sein.")
            query = query.where(Case.status.in_(wanted))
    query = query.order_by(Case.received_at.desc()).limit(MAX_RESULTS)
    return [request_dict(c) for c in session.scalars(query)]


def get_request(session: Session, tenant: Tenant, reference: str) -> list[dict[str, Any]]:
    found = query_requests(session, tenant, {"service_request_id": reference})
    if not found:
        raise Open311Error(404, f"Die Meldung „{reference[:60]}“ gibt es nicht.")
    return found


def to_xml(root: str, item: str, rows: list[dict[str, Any]]) -> bytes:
    """Serialise a list of flat dicts as GeoReport XML (``<services><service>…``)."""
    top = ET.Element(root)
    for row in rows:
        element = ET.SubElement(top, item)
        for key, value in row.items():
            child = ET.SubElement(element, key)
            if isinstance(value, bool):
                child.text = "true" if value else "false"
            elif value is not None:
                child.text = str(value)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8")
