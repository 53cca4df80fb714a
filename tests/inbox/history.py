"""A small municipality with services and decided history, for triage and training tests."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy.orm import Session

from rathaus.core.models import Case, CaseStatus, Message, Service
from tests.factories import World, build_tenant

SERVICES = {
    # code: (unit, name, keywords, description)
    "personalausweis": (
        "BA",
        "Personalausweis beantragen",
        "Ausweis, Personalausweis, Perso, abgelaufen",
        "Den Personalausweis beantragen Sie persönlich im Bürgeramt.",
    ),
    "meldebescheinigung": (
        "BA",
        "Meldebescheinigung",
        "Meldebescheinigung, Wohnsitz, Anmeldung, Umzug",
        "Eine Bescheinigung über Ihren Wohnsitz stellt das Bürgeramt aus.",
    ),
    "laermbeschwerde": (
        "OA",
        "Lärmbeschwerde",
        "Lärm, Ruhestörung, Musik, Nachbarn, Gaststätte",
        "Beschwerden über Lärm und Ruhestörung bearbeitet das Ordnungsamt.",
    ),
    "gewerbeanmeldung": (
        "OA-GW",
        "Gewerbe anmelden",
        "Gewerbe, Gewerbeanmeldung, Firma, Betrieb, selbständig",
        "Wer ein Gewerbe beginnt, meldet es beim Sachgebiet Gewerbe an.",
    ),
}

TEMPLATES = {
    "personalausweis": [
        "Mein Personalausweis läuft am {d} ab. Ich bitte um einen Termin für einen neuen Ausweis.",
        "Ich habe meinen Ausweis verloren und brauche einen neuen Personalausweis.",
        "Wie lange dauert es, bis der neue Personalausweis fertig ist? Gruß {n}",
        "Mein Perso ist abgelaufen, kann ich online einen Termin im Bürgeramt buchen?",
    ],
    "meldebescheinigung": [
        "Bitte senden Sie mir eine Meldebescheinigung für meine Wohnung {s} zu.",
        "Für den Arbeitgeber brauche ich eine Meldebescheinigung über meinen Wohnsitz.",
        "Ich bin in die {s} umgezogen und benötige eine Bescheinigung der Anmeldung.",
        "Meldebescheinigung für die Bank erforderlich, bitte per Post an {n}.",
    ],
    "laermbeschwerde": [
        "Seit Wochen laute Musik bis nach Mitternacht in der {s}. Ruhestörung jede Nacht.",
        "Die Gaststätte in der {s} ist jeden Abend zu laut, ich beschwere mich über den Lärm.",
        "Mein Nachbar {n} feiert ständig laute Partys, das ist eine Ruhestörung.",
        "Lärm durch Baustelle am Sonntag in der {s}, bitte schreiten Sie ein.",
    ],
    "gewerbeanmeldung": [
        "Ich möchte ein Gewerbe anmelden: Hausmeisterservice {n}, Beginn am {d}.",
        "Anmeldung meines Betriebs (Friseursalon) in der {s}, bitte um Gewerbeanmeldung.",
        "Wir gründen eine Firma und möchten das Gewerbe zum {d} anmelden.",
        "Ich mache mich selbständig als Fotograf. Wie melde ich das Gewerbe an?",
    ],
}
STREETS = ["Lindenstraße", "Bahnhofstraße", "Am Markt", "Gartenweg", "Kirchgasse", "Rosenweg"]
NAMES = ["Anna Beispiel", "Paul Muster", "Ece Örnek", "Jan Probe", "Mia Testfrau"]


def build_history_world(
    session: Session, slug: str = "alpha", *, per_service: int = 12, seed: int = 7
) -> World:
    """Tenant with the factory's units and staff, four services and decided cases."""
    world = build_tenant(session, slug)
    rng = random.Random(seed)
    services: dict[str, Service] = {}
    for code, (unit, name, keywords, description) in SERVICES.items():
        services[code] = Service(
            tenant_id=world.tenant.id,
            org_unit_id=world.units[unit].id,
            code=code,
            name=name,
            keywords=keywords,
            description=description,
            sla_working_days=10,
        )
    session.add_all(services.values())
    session.flush()
    start = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
    number = 100
    cases = []
    for i in range(per_service):
        for code, templates in TEMPLATES.items():
            number += 1
            text = rng.choice(templates).format(
                d=f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.2026",
                s=f"{rng.choice(STREETS)} {rng.randint(1, 60)}",
                n=rng.choice(NAMES),
            )
            case = Case(
                tenant_id=world.tenant.id,
                reference=f"H-2026-{number:06d}",
                subject=text.split(".")[0][:80],
                status=CaseStatus.ERLEDIGT,
                org_unit_id=world.units[SERVICES[code][0]].id,
                service_id=services[code].id,
                request_type="Beschwerde" if code == "laermbeschwerde" else "Antrag",
                received_at=start + dt.timedelta(days=i * 5, hours=number % 7),
                triaged_at=start,
            )
            session.add(case)
            cases.append((case, text))
    session.flush()
    for case, text in cases:
        session.add(Message(tenant_id=world.tenant.id, case_id=case.id, direction="in", body=text))
    session.flush()
    world.services = services  # type: ignore[attr-defined]
    return world
