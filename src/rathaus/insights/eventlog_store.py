"""Event logs in the database: import (all or nothing, original kept), loading for the analysis
(an imported data set or Rathaus's own case event log) and export as OCEL 2.0 JSON.

The web pages and the CLI call these functions; both pass a session whose transaction they own,
so an import that fails anywhere leaves neither the data set nor a single event behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.errors import NotFoundError
from rathaus.core.models import (
    Case,
    CaseEvent,
    Confidentiality,
    InsightDataset,
    OrgUnit,
    ProcessEvent,
)
from rathaus.core.storage import OriginalStore
from rathaus.insights.eventlog import ParsedLog, parse_event_log
from rathaus.insights.process import EventArrays, from_columns

KIND = "ereignisprotokoll"
OWN_LOG = "eigen"  # the key of Rathaus's own case event log in URLs and on the command line
OWN_LOG_NAME = "Eigenes Vorgangsprotokoll (Rathaus)"
BATCH = 5000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _as_utc(value: dt.datetime) -> dt.datetime:
    """A time *read back from the database* in UTC. Rathaus stores UTC; SQLite keeps no zone and
    returns it naive, PostgreSQL returns it aware. Times from an imported file never come here
    naive: the readers (:class:`~rathaus.insights.eventlog.LocalTime`) have already decided
    their zone, so this is no place for the municipality's local time."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def to_us(value: dt.datetime) -> int:
    return (_as_utc(value) - EPOCH) // dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class ImportResult:
    dataset: InsightDataset
    log: ParsedLog


def import_event_log(
    session: Session,
    tenant_id: int,
    data: bytes,
    *,
    filename: str,
    name: str = "",
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    object_type: str | None = None,
    zone: str | None = None,
    store: OriginalStore | None = None,
    actor: str = "system",
) -> ImportResult:
    """Parse the whole file first, then write data set and events in the caller's transaction
    (a parse error raises before anything is written). The original goes to ``store``.
    Timestamps without offset are read in ``zone`` (IANA name; empty: ``Europe/Berlin``); the
    zone used is kept in the data set's mapping (``timezone``) and in the audit event."""
    log = parse_event_log(
        data, filename, fmt=fmt, mapping=mapping, object_type=object_type, zone=zone
    )
    sha = ""
    if store is not None:
        sha = store.put(tenant_id, data).sha256
    times = [e.timestamp for e in log.events]
    dataset = InsightDataset(
        tenant_id=tenant_id,
        kind=KIND,
        name=(name or filename or "Ereignisprotokoll")[:300],
        filename=filename[:300],
        original_sha256=sha,
        rows=len(log.events),
        mapping=log.mapping | {"format": log.format},
        summary={
            "format": log.format,
            "events": len(log.events),
            "cases": log.cases,
            "activities": log.activities,
            "first": min(times).isoformat(),
            "last": max(times).isoformat(),
            "notes": log.notes,
        },
        created_by=actor[:120],
    )
    session.add(dataset)
    session.flush()
    rows = (
        {
            "tenant_id": tenant_id,
            "dataset_id": dataset.id,
            "position": e.position,
            "case_key": e.case_key,
            "activity": e.activity,
            "timestamp": e.timestamp,
            "resource": e.resource,
            "data": e.data,
        }
        for e in log.events
    )
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            session.execute(insert(ProcessEvent), batch)
            batch = []
    if batch:
        session.execute(insert(ProcessEvent), batch)
    audit.record(
        session,
        audit.Event(
            kind="insights.eventlog_imported",
            actor=actor,
            tenant_id=tenant_id,
            subject=f"dataset:{dataset.id}",
            data={
                "format": log.format,
                "events": len(log.events),
                "sha256": sha,
                "timezone": log.mapping.get("timezone", ""),
            },
        ),
    )
    session.flush()
    return ImportResult(dataset, log)


def list_datasets(session: Session, tenant_id: int) -> list[InsightDataset]:
    return list(
        session.scalars(
            select(InsightDataset)
            .where(InsightDataset.tenant_id == tenant_id, InsightDataset.kind == KIND)
            .order_by(InsightDataset.created_at.desc(), InsightDataset.id.desc())
        )
    )


def get_dataset(session: Session, tenant_id: int, dataset_id: int) -> InsightDataset:
    dataset = session.get(InsightDataset, dataset_id)
    if dataset is None or dataset.tenant_id != tenant_id or dataset.kind != KIND:
        raise NotFoundError(f"Das Ereignisprotokoll {dataset_id} gibt es nicht.")
    return dataset


def delete_dataset(session: Session, tenant_id: int, dataset_id: int, actor: str) -> None:
    dataset = get_dataset(session, tenant_id, dataset_id)
    session.execute(delete(ProcessEvent).where(ProcessEvent.dataset_id == dataset.id))
    session.delete(dataset)
    audit.record(
        session,
        audit.Event(
            kind="insights.eventlog_deleted",
            actor=actor,
            tenant_id=tenant_id,
            subject=f"dataset:{dataset_id}",
        ),
    )


def own_log_count(session: Session, tenant_id: int) -> int:
    return int(
        session.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.tenant_id == tenant_id))
        or 0
    )


# -- loading for the analysis ------------------------------------------------------------------


def _group_or_resource(resources: list[str], groups: list[str]) -> tuple[list[str] | None, str]:
    if any(groups):
        return groups, "Gruppe"
    if any(resources):
        return resources, "Ressource"
    return None, "Ressource"


def load_dataset(session: Session, tenant_id: int, dataset_id: int) -> EventArrays:
    """The events of an imported log as arrays. Handovers are counted between groups where the
    log has them (``org:group``), else between resources."""
    dataset = get_dataset(session, tenant_id, dataset_id)
    rows = session.execute(
        select(
            ProcessEvent.case_key,
            ProcessEvent.activity,
            ProcessEvent.timestamp,
            ProcessEvent.resource,
            ProcessEvent.position,
            ProcessEvent.data,
        )
        .where(ProcessEvent.dataset_id == dataset.id, ProcessEvent.tenant_id == tenant_id)
        # file order: without it PostgreSQL may return the rows in any order, and sums of
        # waiting times (shares, means) would differ in the last digit between equal logs
        .order_by(ProcessEvent.id)
    ).all()
    resources = [r[3] or "" for r in rows]
    groups = [str((r[5] or {}).get("group", "")) for r in rows]
    who, label = _group_or_resource(resources, groups)
    return from_columns(
        [r[0] for r in rows],
        [r[1] for r in rows],
        np.fromiter((to_us(r[2]) for r in rows), dtype=np.int64, count=len(rows)),
        who,
        [r[4] for r in rows],
        resource_label=label,
    )


def own_log_rows(session: Session, tenant_id: int) -> list[dict[str, Any]]:
    """Rathaus's own case events: case = Aktenzeichen, activity, time, and as "resource" the
    department (Organisationseinheit) of the case – never a person (works-council rule).
    A ``vertraulich`` case counts in every figure but appears under a stable pseudonym, not its
    Aktenzeichen: the Lagebild is seen by people outside its department."""
    rows = session.execute(
        select(
            Case.reference,
            Case.confidentiality,
            CaseEvent.activity,
            CaseEvent.created_at,
            OrgUnit.name,
            CaseEvent.id,
            CaseEvent.kind,
            CaseEvent.from_status,
            CaseEvent.to_status,
        )
        .join(Case, Case.id == CaseEvent.case_id)
        .outerjoin(OrgUnit, OrgUnit.id == Case.org_unit_id)
        .where(CaseEvent.tenant_id == tenant_id, Case.tenant_id == tenant_id)
        .order_by(CaseEvent.id)
    ).all()
    return [
        {
            "case": _shown_reference(r[0], r[1]),
            "activity": r[2],
            "time": _as_utc(r[3]),
            "unit": r[4] or "",
            "id": r[5],
            "kind": r[6],
            "from_status": r[7],
            "to_status": r[8],
        }
        for r in rows
    ]


def _shown_reference(reference: str, confidentiality: Any) -> str:
    if confidentiality != Confidentiality.VERTRAULICH:
        return reference
    return "vertraulich-" + hashlib.sha256(reference.encode()).hexdigest()[:10]


def load_own_log(session: Session, tenant_id: int) -> EventArrays:
    rows = own_log_rows(session, tenant_id)
    if not rows:
        raise NotFoundError(
            "Das eigene Vorgangsprotokoll ist noch leer: Es gibt keine Vorgangsereignisse."
        )
    return from_columns(
        [r["case"] for r in rows],
        [r["activity"] for r in rows],
        np.fromiter((to_us(r["time"]) for r in rows), dtype=np.int64, count=len(rows)),
        [r["unit"] for r in rows],
        resource_label="Organisationseinheit",
    )


def load_source(session: Session, tenant_id: int, source: str) -> tuple[EventArrays, str]:
    """``source`` is a data set id or :data:`OWN_LOG`; returns the arrays and a title."""
    if source == OWN_LOG:
        return load_own_log(session, tenant_id), OWN_LOG_NAME
    try:
        dataset_id = int(source)
    except ValueError:
        raise NotFoundError(
            f"Unbekannte Quelle „{source}“. Erlaubt: die Nummer eines Ereignisprotokolls oder "
            f"„{OWN_LOG}“ für das eigene Vorgangsprotokoll."
        ) from None
    dataset = get_dataset(session, tenant_id, dataset_id)
    return load_dataset(session, tenant_id, dataset_id), dataset.name


# -- OCEL 2.0 export ---------------------------------------------------------------------------


def _iso(value: dt.datetime) -> str:
    return _as_utc(value).isoformat().replace("+00:00", "Z")


def _attr_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "string"


def _ocel_document(
    events: list[dict[str, Any]], objects: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    event_types: dict[str, dict[str, str]] = {}
    for e in events:
        types = event_types.setdefault(e["type"], {})
        for a in e["attributes"]:
            types.setdefault(a["name"], _attr_type(a["value"]))
    object_types: dict[str, dict[str, str]] = {}
    for o in objects.values():
        types = object_types.setdefault(o["type"], {})
        for a in o["attributes"]:
            types.setdefault(a["name"], _attr_type(a["value"]))
    return {
        "objectTypes": [
            {"name": t, "attributes": [{"name": n, "type": k} for n, k in sorted(a.items())]}
            for t, a in sorted(object_types.items())
        ],
        "eventTypes": [
            {"name": t, "attributes": [{"name": n, "type": k} for n, k in sorted(a.items())]}
            for t, a in sorted(event_types.items())
        ],
        "objects": list(objects.values()),
        "events": events,
    }


def export_dataset_ocel(session: Session, tenant_id: int, dataset_id: int) -> dict[str, Any]:
    """OCEL 2.0 (JSON) of an imported log. Cases become objects of the case notion (for an OCEL
    import the chosen object type, else ``Fall``); further OCEL objects are kept, and an event
    flattened onto several objects is written once."""
    dataset = get_dataset(session, tenant_id, dataset_id)
    case_type = str(dataset.mapping.get("object_type") or "Fall")
    rows = session.execute(
        select(ProcessEvent)
        .where(ProcessEvent.dataset_id == dataset.id, ProcessEvent.tenant_id == tenant_id)
        .order_by(ProcessEvent.position, ProcessEvent.id)
    ).scalars()
    events: list[dict[str, Any]] = []
    seen: set[str] = set()
    objects: dict[str, dict[str, Any]] = {}
    for row in rows:
        data = dict(row.data or {})
        ocel = data.pop("ocel", None)
        if ocel:
            eid = str(ocel.get("id"))
            rels = ocel.get("objects") or []
        else:
            eid = f"e{row.position + 1}"
            rels = [{"id": row.case_key, "type": case_type, "qualifier": ""}]
        for rel in rels:
            objects.setdefault(
                rel["id"], {"id": rel["id"], "type": rel["type"] or case_type, "attributes": []}
            )
        if eid in seen:
            continue
        seen.add(eid)
        attributes = [{"name": k, "value": v} for k, v in data.items()]
        if row.resource:
            attributes.append({"name": "org:resource", "value": row.resource})
        events.append(
            {
                "id": eid,
                "type": row.activity,
                "time": _iso(row.timestamp),
                "attributes": attributes,
                "relationships": [
                    {"objectId": r["id"], "qualifier": r.get("qualifier", "")} for r in rels
                ],
            }
        )
    return _ocel_document(events, objects)


def export_own_log_ocel(session: Session, tenant_id: int) -> dict[str, Any]:
    """OCEL 2.0 of Rathaus's own case event log: objects ``Vorgang`` (by Aktenzeichen) and
    ``Organisationseinheit``; no persons (the acting user is not exported)."""
    events: list[dict[str, Any]] = []
    objects: dict[str, dict[str, Any]] = {}
    for r in own_log_rows(session, tenant_id):
        objects.setdefault(r["case"], {"id": r["case"], "type": "Vorgang", "attributes": []})
        rels = [{"objectId": r["case"], "qualifier": "vorgang"}]
        if r["unit"]:
            unit_id = f"oe:{r['unit']}"
            objects.setdefault(
                unit_id, {"id": unit_id, "type": "Organisationseinheit", "attributes": []}
            )
            rels.append({"objectId": unit_id, "qualifier": "zuständig"})
        attributes = [{"name": "kind", "value": r["kind"]}]
        for key in ("from_status", "to_status"):
            if r[key]:
                attributes.append({"name": key, "value": r[key]})
        events.append(
            {
                "id": f"ce{r['id']}",
                "type": r["activity"],
                "time": _iso(r["time"]),
                "attributes": attributes,
                "relationships": rels,
            }
        )
    return _ocel_document(events, objects)


def export_ocel(session: Session, tenant_id: int, source: str) -> dict[str, Any]:
    if source == OWN_LOG:
        return export_own_log_ocel(session, tenant_id)
    try:
        return export_dataset_ocel(session, tenant_id, int(source))
    except ValueError:
        raise NotFoundError(f"Unbekannte Quelle „{source}“.") from None
