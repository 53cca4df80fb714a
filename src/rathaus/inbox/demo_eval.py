"""``rathaus eval demo-inbox``: the whole triage on the 60 Musterstadt items with known answers.

A fresh SQLite database in a temporary folder gets the demo municipality (420 historical cases,
60 incoming items with the expected unit, service, request type and urgency written by hand),
the routing model is trained on the history exactly as ``rathaus demo`` does, and every item is
triaged. The result compares the pipeline's output with the expected answers. The history is
generated from templates, so these numbers describe the demo, not a real municipality; the real
measure is ``rathaus eval inbox`` on the Konstanz data.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.demo.loader import SLUG, load_demo
from rathaus.core.errors import RathausError
from rathaus.core.migrate import upgrade
from rathaus.core.models import AiSuggestion, Case, CaseStatus, OrgUnit, Tenant


def train_demo(db: Database, settings: Any, embedder: Any, *, trigger: str = "demo") -> Any:
    """Train Musterstadt's routing model on its history (as ``rathaus demo`` does); returns
    the new :class:`RoutingModelVersion` (detached, read its fields right away)."""
    from rathaus.inbox import training

    with db.session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == SLUG))
        if tenant is None:
            raise RathausError("Die Demo-Kommune Musterstadt ist nicht geladen (`rathaus demo`).")
        version = training.train(
            session,
            tenant,
            data_dir=settings.data_dir,
            secret_key=settings.secret_key.get_secret_value(),
            embedder=embedder,
            trigger=trigger,
            actor="demo",
        )
        session.flush()
        session.expunge(version)
        return version


def evaluate_demo_inbox(*, embeddings: bool = True) -> dict[str, Any]:
    from rathaus.ai.registry import get_embedder
    from rathaus.inbox.pipeline import TriageKit, triage_many

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(mode="demo", data_dir=Path(tmp))
        db = Database.from_settings(settings)
        upgrade(db)
        load_demo(db, password_hasher=lambda p: "-")
        embedder = get_embedder(settings) if embeddings else None
        kit = TriageKit.from_settings(settings, embedder=embedder, language_model=None)
        version = train_demo(db, settings, embedder, trigger="auswertung")
        with db.session() as session:
            tenant = session.scalar(select(Tenant).where(Tenant.slug == SLUG))
            assert tenant is not None
            cases = [
                c
                for c in session.scalars(select(Case).where(Case.tenant_id == tenant.id))
                if (c.fields or {}).get("demo_id")
            ]
            triage_many(session, cases, kit)
            units = {u.id: u.code for u in session.scalars(select(OrgUnit))}
            routing = {
                s.case_id: s
                for s in session.scalars(
                    select(AiSuggestion).where(AiSuggestion.function == "routing")
                )
            }
            result = _compare(cases, routing, units)
        db.dispose()
    result["setup"] = {
        "items": len(cases),
        "history": version.n_train,
        "model": f"v{version.version}, held-out accuracy {version.metrics['accuracy']}",
        "embeddings": embedder.version if embedder is not None else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return result


def _compare(
    cases: list[Case], routing: dict[int, AiSuggestion], units: dict[int, str]
) -> dict[str, Any]:
    n = len(cases)
    hits = {"unit_top1": 0, "unit_top3": 0, "service_top1": 0, "request_type": 0, "urgency": 0}
    auto, auto_right, flagged = [], 0, {}
    for case in cases:
        expected = case.fields["demo_expected"]
        candidates = routing[case.id].output.get("candidates", []) if case.id in routing else []
        codes = [c["unit_code"] for c in candidates]
        hits["unit_top1"] += bool(codes) and codes[0] == expected["department"]
        hits["unit_top3"] += expected["department"] in codes
        hits["service_top1"] += bool(candidates) and (
            candidates[0].get("service_code") == expected["service"]
        )
        hits["request_type"] += case.request_type == expected["request_type"]
        hits["urgency"] += case.urgency == expected["urgency"]
        if case.status == CaseStatus.ZUGEWIESEN:
            auto.append(case.fields["demo_id"])
            auto_right += units.get(case.org_unit_id or -1) == expected["department"]
        if case.needs_review_reason:
            flagged[case.fields["demo_id"]] = case.needs_review_reason.splitlines()[0][:120]
    return {
        **{k: round(v / n, 3) for k, v in hits.items()},
        "auto_routed": len(auto),
        "auto_routed_correct": auto_right,
        "flagged": flagged,
    }
