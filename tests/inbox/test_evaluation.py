"""Konstanz evaluation: the Open311 variant reads the text exactly as the live model does."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from rathaus.core.models import Case, CaseStatus, Service
from rathaus.core.storage import OriginalStore
from rathaus.inbox import training
from rathaus.inbox.channels import open311
from rathaus.inbox.evaluation import open311_text
from tests.factories import build_tenant


def test_open311_text_is_the_text_training_reads_for_an_open311_report(db, tmp_path: Path):
    description = "Die Laterne vor Hausnummer 4 flackert seit Tagen, abends ist es stockdunkel."
    with db.session() as session:
        world = build_tenant(session, "konstanz")
        session.add(
            Service(
                tenant_id=world.tenant.id,
                code="laterne",
                name="Beleuchtung > Straßenlaternen defekt",
                org_unit_id=world.units["OA"].id,
                open311_enabled=True,
            )
        )
        session.flush()
        params = {
            "service_code": "laterne",
            "lat": "47.66",
            "long": "9.17",
            "description": description,
        }
        open311.submit(session, world.tenant, params, store=OriginalStore(tmp_path))
        case = session.scalar(
            select(Case).where(Case.tenant_id == world.tenant.id, Case.channel == "open311")
        )
        assert case is not None
        case.status = CaseStatus.ZUGEWIESEN
        case.org_unit_id = world.units["OA"].id
        session.flush()
        data = training.training_set(session, world.tenant.id)
        text = data.texts[data.case_ids.index(case.id)]
    assert text == open311_text("Beleuchtung > Straßenlaternen defekt", description)
    assert text.startswith("Beleuchtung > Straßenlaternen defekt: Die Laterne")


def test_open311_text_without_description_is_the_service_name():
    assert open311_text("Fahrrad gefunden", "") == "Fahrrad gefunden\n"
    long = "x" * 300
    assert open311_text("Hinweise", long) == f"Hinweise: {'x' * 120}\n{long}"
