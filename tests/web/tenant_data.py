"""Seeds one tenant with a marked object of every kind the web app shows, for the isolation
tests: each text field holds ``<Mark>-<kind>`` (``Betamarke-vorgang`` …), so a page of another
tenant that shows any of it is caught by a plain substring search."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.assistant import knowledge
from rathaus.core import apikeys, audit
from rathaus.core.models import (
    AiSuggestion,
    AssistantConversation,
    AssistantTurn,
    BookingFlag,
    CaseAccess,
    CaseEvent,
    Document,
    EvalRun,
    InboxSource,
    InsightDataset,
    KnowledgeEntry,
    KnowledgeEntryVersion,
    MeetingMinutes,
    Message,
    ModelCall,
    Payment,
    PrivacyRequest,
    ProcessEvent,
    RoutingRule,
    Service,
    TextTemplate,
    WritingJob,
    utcnow,
)
from rathaus.core.storage import OriginalStore
from rathaus.insights.forecast_data import import_series
from rathaus.insights.winter.service import import_plan, run_planning
from tests.factories import World
from tests.insights.test_winter import tiny


@dataclass
class Seeded:
    """The ids (and other path values) of one tenant's marked objects, by path parameter."""

    mark: str
    values: dict[str, str] = field(default_factory=dict)
    api_key: str = ""


def into_session(session: Session, world: Any) -> Any:
    """The world of a tenant (built by the ``worlds`` fixture in another session) merged into
    ``session``, so ``seed`` can attach new objects to it."""
    world.tenant = session.merge(world.tenant)
    world.units = {k: session.merge(v) for k, v in world.units.items()}
    world.users = {k: session.merge(v) for k, v in world.users.items()}
    world.cases = {k: session.merge(v) for k, v in world.cases.items()}
    return world


def seed(session: Session, world: World, *, mark: str, originals: Path, embedder: Any) -> Seeded:
    """Mark the world's cases and add one object of every other kind; ``mark`` is e.g.
    ``Betamarke``."""
    t = world.tenant.id
    now = utcnow()
    seeded = Seeded(mark)

    def m(kind: str) -> str:
        return f"{mark}-{kind}"

    world.units["OA"].name = m("amt")
    world.users["sb"].display_name = m("person")
    for i, case in enumerate(world.cases.values()):
        case.subject = f"{m('vorgang')} {i}"
        case.sender_name = m("absender")
        case.address = m("adresse")
        case.fields = {"notiz": m("feld")}
        session.add(
            Message(tenant_id=t, case_id=case.id, direction="out", body=m("antwort"),
                    channel="entwurf", subject=m("betreff"), status="entwurf")
        )  # fmt: skip
        session.add(
            CaseEvent(tenant_id=t, case_id=case.id, kind="notiz", activity=m("aktivitaet"),
                      data={"text": m("ereignis")})
        )  # fmt: skip
    case = world.cases["BA"]
    service = Service(
        tenant_id=t,
        code=f"{mark.lower()}-dienst",
        name=m("leistung"),
        org_unit_id=world.units["BA"].id,
        description=m("beschreibung"),
        open311_enabled=True,
    )
    session.add(service)
    case.service = service
    case.channel = "open311"
    data = f"Brief {m('dokument')}".encode()
    stored = OriginalStore(originals).put(t, data)
    document = Document(
        tenant_id=t,
        case_id=case.id,
        filename=f"{m('datei')}.txt",
        media_type="text/plain",
        size=len(data),
        sha256=stored.sha256,
        storage_path=stored.relative_path,
        extracted_text=m("text"),
        extraction_status="fertig",
    )
    session.add(document)
    session.add(
        AiSuggestion(tenant_id=t, case_id=case.id, function="reply", backend="vorlage",
                     output={"text": m("vorschlag")})
    )  # fmt: skip
    rule = RoutingRule(
        tenant_id=t, name=m("regel"), keywords=m("stichwort"), org_unit_id=world.units["BA"].id
    )
    source = InboxSource(tenant_id=t, kind="folder", name=m("quelle"), settings={"path": "/tmp"})
    template = TextTemplate(tenant_id=t, name=m("baustein"), body=m("bausteintext"))
    minutes = MeetingMinutes(
        tenant_id=t,
        title=m("niederschrift"),
        body_name=m("gremium"),
        agenda=[{"number": "1", "name": m("tagesordnung"), "public": True}],
        transcript=[{"start": None, "end": None, "text": m("wortlaut")}],
    )
    session.add_all([rule, source, template, minutes])
    session.flush()
    job = WritingJob(
        tenant_id=t,
        kind="transkription",
        status="fertig",
        progress=1.0,
        message=m("auftrag"),
        filename=f"{m('aufnahme')}.wav",
        minutes_id=minutes.id,
        result={"text": m("transkript"), "segments": [{"start": 0, "end": 1, "text": m("satz")}]},
    )
    payments = InsightDataset(tenant_id=t, kind="zahlungen", name=m("zahlungen"), rows=2)
    log = InsightDataset(tenant_id=t, kind="ereignisprotokoll", name=m("protokoll"), rows=4)
    plan = import_plan(
        session,
        settings=SimpleNamespace(originals_dir=originals),  # type: ignore[arg-type]
        tenant_id=t,
        user_name=m("planer"),
        filename=f"{m('netz')}.json",
        data=json.dumps(tiny(name=m("winterplan"))).encode(),
    )
    # Planned by run_planning once committed (see plan_routes): exports need routes.
    plan.status, plan.options = "wartet", {"time_limit_s": 1, "end_at_depot": True}
    start = (now - dt.timedelta(days=60)).date()
    rows = [f"{start + dt.timedelta(days=d)};{m('reihe')};{d % 7}" for d in range(56)]
    series = import_series(
        session,
        OriginalStore(originals),
        tenant_id=t,
        data=("Datum;Reihe;Anzahl\n" + "\n".join(rows) + "\n").encode(),
        filename=f"{m('zeitreihe')}.csv",
        name=m("zeitreihe"),
    )
    session.add_all([job, payments, log])
    session.flush()
    for n in (1, 2):
        session.add(
            Payment(tenant_id=t, dataset_id=payments.id, row_number=n, supplier=m("lieferant"),
                    amount_cents=123_400, booked_on=now.date(), reference=m(f"beleg{n}"),
                    description=m("buchung"))
        )  # fmt: skip
    session.flush()
    flag = BookingFlag(tenant_id=t, dataset_id=payments.id, kind="duplikat",
                       supplier=m("lieferant"), explanation=m("hinweis"))  # fmt: skip
    session.add(flag)
    for position, (key, activity) in enumerate(
        [("F1", "eingang"), ("F1", "erledigt"), ("F2", "eingang"), ("F2", "erledigt")]
    ):
        session.add(
            ProcessEvent(tenant_id=t, dataset_id=log.id, position=position,
                         case_key=m(f"fall{key}"), activity=m(activity),
                         timestamp=now - dt.timedelta(hours=10 - position), resource=m("stelle"))
        )  # fmt: skip
    conversation = AssistantConversation(tenant_id=t, public_id=f"{mark.lower()}-gespraech")
    session.add(conversation)
    session.flush()
    session.add(
        AssistantTurn(tenant_id=t, conversation_id=conversation.id, question=m("frage"),
                      abstained=True, answer={"sentences": [], "notes": [m("notiz")]},
                      feedback=-1, feedback_comment=m("rueckmeldung"))
    )  # fmt: skip
    for stand in (m("fassung"), ""):  # the re-import keeps the first content as a version
        knowledge.upsert_entries(
            session,
            tenant_id=t,
            entries=[
                knowledge.EntryData(
                    source="test",
                    external_id=m("eintrag"),
                    title=f"{m('wissen')} Hundesteuer anmelden",
                    url=f"https://{mark.lower()}.example/hundesteuer",
                    body=f"Die Hundesteuer meldet man im Steueramt an. {m('wissenstext')} gilt "
                    f"hier. {stand}".strip(),
                    facts={"fees": m("gebuehr")},
                )
            ],
            embedder=embedder,
        )
    session.add_all(
        [
            CaseAccess(tenant_id=t, case_id=case.id, case_reference=case.reference,
                       username=m("leser")),
            PrivacyRequest(tenant_id=t, kind="auskunft", subject_sha256="0" * 64,
                           note=m("datenschutz"), requested_by=m("antragsteller")),
            EvalRun(tenant_id=t, name="routing", metrics={"genauigkeit": 0.5},
                    data=m("auswertung"), command=m("befehl")),
            ModelCall(tenant_id=t, function=m("funktion"), backend="openai", model=m("modell"),
                      latency_ms=1.0, input_sha256="0" * 64),
        ]
    )  # fmt: skip
    audit.record(
        session,
        audit.Event(kind="test.markiert", actor=m("akteur"), tenant_id=t, subject=m("pruefung")),
    )
    key, _ = apikeys.create(session, tenant=world.tenant, channel="api", name=m("schluessel"))
    session.flush()
    seeded.api_key = key
    seeded.values = {
        "case_id": str(case.id),
        "document_id": str(document.id),
        "rule_id": str(rule.id),
        "entry_id": "",  # filled below
        "minutes_id": str(minutes.id),
        "job_id": str(job.id),
        "template_id": str(template.id),
        "dataset_id": str(payments.id),
        "flag_id": str(flag.id),
        "plan_id": str(plan.id),
        "source": str(log.id),
        "code": service.code,
        "request_id": case.reference,
        "series_dataset_id": str(series.id),
        "series": m("reihe"),
        "unit_id": str(world.units["OA"].id),
        "service_id": str(service.id),
    }
    seeded.values["entry_id"] = str(
        session.scalar(select(KnowledgeEntry.id).where(KnowledgeEntry.tenant_id == t))
    )
    seeded.values["version_id"] = str(
        session.scalar(select(KnowledgeEntryVersion.id).where(KnowledgeEntryVersion.tenant_id == t))
    )
    return seeded


def plan_routes(db: Any, seeded: Seeded) -> None:
    """Solve the seeded winter-service plan (one second at most: a four-node network)."""
    assert run_planning(db, plan_id=int(seeded.values["plan_id"])) == "fertig"
