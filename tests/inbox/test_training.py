"""Routing model versions: training, the gate against the live model, activation, rollback."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import select

from rathaus.core.db import Database
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import Case, Message
from rathaus.inbox import training
from tests.inbox.history import build_history_world

SECRET = "training-test-secret-0123456789abcdef"


def _train(session, world, tmp_path: Path, **kwargs):  # type: ignore[no-untyped-def]
    return training.train(session, world.tenant, data_dir=tmp_path, secret_key=SECRET, **kwargs)


def test_too_little_history_says_what_happens_instead(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        world = build_history_world(session, per_service=2)
        with pytest.raises(RathausError, match="Ähnlichkeit zu den Beschreibungen"):
            _train(session, world, tmp_path)
        assert training.versions(session, world.tenant.id) == []


def test_first_version_goes_live_with_thresholds_and_files(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        world = build_history_world(session)
        version = _train(session, world, tmp_path)
        assert version.status == "live" and version.version == 1
        assert version.metrics["gate"] == "bestanden"
        assert version.metrics["held_out"] == 10  # newest fifth of 50, at least 10
        assert set(version.metrics["tasks"]) == {"unit", "service", "request_type"}
        assert 0 < version.metrics["thresholds"]["*"] <= 1.01
        live = training.live_model(session, world.tenant, data_dir=tmp_path, secret_key=SECRET)
        assert live is not None and live.label == "routing-v1"
        assert live.models["unit"].predict(["Laute Musik, Ruhestörung"], k=1)[0][0].label == "OA"
        with pytest.raises(RathausError, match="Prüfsumme"):
            training._CACHE.clear()
            training.live_model(
                session, world.tenant, data_dir=tmp_path, secret_key="ein-anderer-schluessel-123"
            )


def test_a_worse_candidate_is_rejected_and_the_live_model_stays(
    db: Database, tmp_path: Path
) -> None:
    """Many wrongly decided cases (older than the held-out ones) make the candidate worse on
    the newest, correctly decided cases: the gate keeps the live model."""
    with db.session() as session:
        world = build_history_world(session)
        first = _train(session, world, tmp_path)
        units = [world.units["BA"].id, world.units["OA"].id, world.units["OA-GW"].id]
        rng = random.Random(3)
        oldest = session.scalars(
            select(Case).where(Case.tenant_id == world.tenant.id).order_by(Case.received_at)
        ).all()
        texts = {
            m.case_id: m.body
            for m in session.scalars(select(Message).where(Message.direction == "in"))
        }
        for i, case in enumerate(oldest[:36] * 3):
            noisy = Case(
                tenant_id=world.tenant.id,
                reference=f"N-2026-{i:06d}",
                subject=case.subject,
                status=case.status,
                org_unit_id=rng.choice([u for u in units if u != case.org_unit_id]),
                received_at=case.received_at,
            )
            session.add(noisy)
            session.flush()
            session.add(
                Message(
                    tenant_id=world.tenant.id,
                    case_id=noisy.id,
                    direction="in",
                    body=texts[case.id],
                )
            )
        session.flush()
        second = _train(session, world, tmp_path)
        assert second.status == "abgelehnt"
        assert second.metrics["gate"] == "nicht bestanden"
        assert second.metrics["accuracy"] < second.metrics["live_accuracy"] - 0.01
        assert second.metrics.get("tasks") is None  # no files for a rejected candidate
        live = training.live_model(session, world.tenant, data_dir=tmp_path, secret_key=SECRET)
        assert live is not None and live.version.id == first.id


def test_rollback_and_activate(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        world = build_history_world(session)
        first = _train(session, world, tmp_path)
        second = _train(session, world, tmp_path, trigger="zeitplan")
        assert (first.status, second.status) == ("abgelöst", "live")
        back = training.rollback(session, world.tenant)
        assert back.id == first.id and back.status == "live" and second.status == "abgelöst"
        with pytest.raises(RathausError, match="keine frühere Modellversion"):
            training.rollback(session, world.tenant)
        assert training.activate(session, world.tenant, 2).status == "live"
        with pytest.raises(NotFoundError):
            training.activate(session, world.tenant, 99)
