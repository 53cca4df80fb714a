"""The live routing model reads where a report is: the same kind of text goes to the unit
responsible for its place (Open311 coordinates, an address in a letter), with a graceful
fallback without a place, and text-only model versions from before keep predicting."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from rathaus.core.db import Database
from rathaus.core.models import (
    AiSuggestion,
    Case,
    CaseStatus,
    Message,
    OrgUnit,
    OrgUnitKind,
    Service,
)
from rathaus.core.storage import OriginalStore
from rathaus.inbox import training
from rathaus.inbox.channels import open311
from rathaus.inbox.evaluation import location_features
from rathaus.inbox.pipeline import TriageKit, triage_case, triage_many
from rathaus.inbox.places import case_places
from rathaus.inbox.service import receive
from tests.factories import build_tenant
from tests.inbox.test_pipeline import text_item

N_CASES = 60
SECRET = "location-test-secret-0123456789abcdef"
REPORTS = [
    "Laterne defekt, die Lampe brennt nicht",
    "Straßenlaterne flackert seit Tagen",
    "Beleuchtung ausgefallen, alles dunkel",
    "Die Lampe am Mast ist kaputt",
    "Laterne leuchtet nicht mehr",
]
# Two districts about 4 km apart: different 0.5 km and 2 km cells.
NORTH = (47.700, 9.170, "Nordring", "78464")
SOUTH = (47.660, 9.170, "Seestraße", "78462")


def test_place_features_are_shared_by_evaluation_and_live_model() -> None:
    row = {
        "Automatisch-ermittelte-Adresse": "Flurweg 12a, 78464 Konstanz",
        "lat": "47.6701",
        "lon": "9.1702",
        "Stadtteil": " Egg ",
    }
    expected = {
        "strasse": "flurweg",
        "plz": "78464",
        "zelle_500m": "10593_1369",
        "zelle_2km": "2648_340",
    }
    assert location_features(row) == {"stadtteil": "Egg", **expected}
    assert location_features({**row, "Stadtteil": ""})["stadtteil"] == "unbekannt"
    assert location_features(row, district=False) == expected
    case = SimpleNamespace(
        address="Flurweg 12a, 78464 Konstanz", latitude=47.6701, longitude=9.1702
    )
    assert case_places(case) == expected
    nowhere = SimpleNamespace(address="", latitude=None, longitude=None)
    assert case_places(nowhere) == {"strasse": "unbekannt", "plz": "unbekannt"}
    assert location_features({"lat": "x", "lon": ""}, district=False) == case_places(nowhere)


def _world(session):  # type: ignore[no-untyped-def]
    """Two depots with the same work, one per district, and 40 decided street-light reports
    whose text says nothing about the district."""
    world = build_tenant(session, "ort")
    for case in world.cases.values():  # the factory's own cases: not decided here
        case.status = CaseStatus.TRIAGE
    north = OrgUnit(
        tenant_id=world.tenant.id, kind=OrgUnitKind.AMT, code="BH-N", name="Betriebshof Nord"
    )
    south = OrgUnit(
        tenant_id=world.tenant.id, kind=OrgUnitKind.AMT, code="BH-S", name="Betriebshof Süd"
    )
    session.add_all([north, south])
    session.flush()
    service = Service(
        tenant_id=world.tenant.id,
        org_unit_id=north.id,
        code="beleuchtung",
        name="Straßenbeleuchtung",
        open311_enabled=True,
    )
    session.add(service)
    session.flush()
    rng = random.Random(5)
    start = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    for i in range(N_CASES):
        unit, (lat, lon, street, postcode) = (north, NORTH) if i % 2 else (south, SOUTH)
        text = rng.choice(REPORTS)
        case = Case(
            tenant_id=world.tenant.id,
            reference=f"L-2026-{i:06d}",
            subject=f"Straßenbeleuchtung: {text}",
            status=CaseStatus.ERLEDIGT,
            channel="open311",
            org_unit_id=unit.id,
            address=f"{street} {rng.randint(1, 40)}, {postcode} Konstanz",
            latitude=lat + rng.uniform(-0.001, 0.001),
            longitude=lon + rng.uniform(-0.001, 0.001),
            received_at=start + dt.timedelta(days=i),
            triaged_at=start,
        )
        session.add(case)
        session.flush()
        session.add(Message(tenant_id=world.tenant.id, case_id=case.id, direction="in", body=text))
    session.flush()
    return world


def _kit(tmp_path: Path) -> TriageKit:
    return TriageKit(
        store=OriginalStore(tmp_path / "originals"), data_dir=tmp_path, secret_key=SECRET
    )


def _report(session, world, kit: TriageKit, lat: float, lon: float) -> Case:  # type: ignore[no-untyped-def]
    """A new street-light report over Open311 with coordinates only (no address)."""
    answer = open311.submit(
        session,
        world.tenant,
        {
            "service_code": "beleuchtung",
            "lat": str(lat),
            "long": str(lon),
            "description": f"Laterne defekt, die Lampe brennt nicht ({lat})",
        },
        store=kit.store,
    )
    return session.scalar(
        select(Case).where(
            Case.tenant_id == world.tenant.id,
            Case.reference == answer[0]["service_request_id"],
        )
    )


def _letter(session, world, kit: TriageKit, body: str) -> Case:  # type: ignore[no-untyped-def]
    item = text_item(body, subject="Laterne")
    return receive(session, tenant=world.tenant, item=item, store=kit.store).case


def _model_probabilities(session, case: Case) -> dict[str, float]:  # type: ignore[no-untyped-def]
    routing = session.scalars(
        select(AiSuggestion).where(
            AiSuggestion.case_id == case.id, AiSuggestion.function == "routing"
        )
    ).one()
    return {
        c["unit_code"]: c["probability"]
        for c in routing.output["candidates"]
        if c["source"] == "modell"
    }


def test_the_place_decides_between_two_units_with_the_same_text(
    db: Database, tmp_path: Path
) -> None:
    kit = _kit(tmp_path)
    with db.session() as session:
        world = _world(session)
        version = training.train(session, world.tenant, data_dir=tmp_path, secret_key=SECRET)
        assert version.status == "live" and version.metrics["uses_location"] is True
        live = training.live_model(session, world.tenant, data_dir=tmp_path, secret_key=SECRET)
        assert live is not None and live.uses_location
        assert version.metrics["accuracy"] >= 0.9  # the text alone could only guess

        # One by one: an Open311 report in the south goes to the southern depot, and back.
        south = triage_case(session, _report(session, world, kit, *SOUTH[:2]), kit)
        north = triage_case(session, _report(session, world, kit, *NORTH[:2]), kit)
        p_south, p_north = (
            _model_probabilities(session, south),
            _model_probabilities(session, north),
        )
        assert p_south["BH-S"] > p_south["BH-N"] + 0.15
        assert p_north["BH-N"] > p_north["BH-S"] + 0.15
        assert "nicht nutzbar" not in (south.needs_review_reason or "")

        # (Few cases, so the stacked model's probabilities stay modest.)
        # A batch (predicted before the fields step): a letter naming its street, a report
        # with coordinates and one with no place at all (no error: both stay possible).
        letter = _letter(
            session,
            world,
            kit,
            "Guten Tag, vor dem Haus Seestraße 7, 78462 Konstanz ist die "
            "Laterne defekt. Viele Grüße, Anna Beispiel",
        )
        again = _report(session, world, kit, *NORTH[:2])
        nowhere = _letter(session, world, kit, "Die Laterne brennt nicht.")
        triage_many(session, [letter, again, nowhere], kit)
        assert letter.address.startswith("Seestraße 7")
        p_letter = _model_probabilities(session, letter)
        assert p_letter["BH-S"] > p_letter["BH-N"] + 0.15
        assert _model_probabilities(session, again) == pytest.approx(p_north, abs=1e-6)
        p_nowhere = _model_probabilities(session, nowhere)
        assert set(p_nowhere) == {"BH-N", "BH-S"}
        assert abs(p_nowhere["BH-N"] - p_nowhere["BH-S"]) < 0.1  # the text cannot tell
        assert "nicht nutzbar" not in (nowhere.needs_review_reason or "")

        # The review page's decisive words keep the place fixed.
        from rathaus.web.inbox_views import occlusion

        why = occlusion(live.models["unit"], "Laterne defekt", place=case_places(south))
        assert why["unit_code"] == "BH-S"


def test_a_text_only_version_still_predicts_and_is_gated_on_text(
    db: Database, tmp_path: Path
) -> None:
    """A version from before places existed (no flag in its metrics) loads, predicts from the
    text only, and the gate feeds it text only while the new candidate gets the places."""
    kit = _kit(tmp_path)
    with db.session() as session:
        world = _world(session)
        located = session.scalars(select(Case).where(Case.tenant_id == world.tenant.id)).all()
        kept = {c.id: (c.address, c.latitude, c.longitude) for c in located}
        for case in located:
            case.address, case.latitude, case.longitude = "", None, None
        session.flush()
        old = training.train(session, world.tenant, data_dir=tmp_path, secret_key=SECRET)
        assert old.metrics["uses_location"] is False
        old.metrics = {k: v for k, v in old.metrics.items() if k != "uses_location"}
        session.flush()
        training._CACHE.clear()
        live = training.live_model(session, world.tenant, data_dir=tmp_path, secret_key=SECRET)
        assert live is not None and not live.uses_location

        case = triage_case(session, _report(session, world, kit, *SOUTH[:2]), kit)
        assert set(_model_probabilities(session, case)) == {"BH-N", "BH-S"}
        assert "nicht nutzbar" not in (case.needs_review_reason or "")

        for c in located:
            c.address, c.latitude, c.longitude = kept[c.id]
        session.flush()
        new = training.train(session, world.tenant, data_dir=tmp_path, secret_key=SECRET)
        assert new.metrics["uses_location"] is True and new.status == "live"
        assert new.metrics["live_version"] == old.version
        assert new.metrics["live_accuracy"] < 0.8 <= new.metrics["accuracy"]

        training.rollback(session, world.tenant)
        batch = [_report(session, world, kit, *SOUTH[:2]) for _ in range(2)]
        triage_many(session, batch, kit)
        for item in batch:
            assert set(_model_probabilities(session, item)) == {"BH-N", "BH-S"}
            assert "nicht nutzbar" not in (item.needs_review_reason or "")
