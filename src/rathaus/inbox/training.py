"""Training, gating, activating and rolling back the tenant's routing model.

- **Training data:** the tenant's decided cases (a unit is set and the case left the triage
  queue), text = subject + incoming message + extracted document text; labels = unit code,
  service code and request type. Every human correction changes a case's unit, so the next
  training learns from it. Where cases carry a place (coordinates, an address given or found in
  the text), the models also read it (:func:`rathaus.inbox.places.case_places`: street,
  postcode, grid cells; ``"unbekannt"`` where missing) and the version records
  ``uses_location``; versions trained before that read the text only and still do.
- **Gate:** the newest 20 % of those cases (at least 10) are held out. A candidate trained on the
  rest must not be worse on them than the live model (``inbox.gate_tolerance``); only then is it
  trained on all cases and goes live. Its thresholds for automatic routing come from the
  held-out predictions: per unit (≥ 8 held-out items) and overall, the lowest confidence at which
  ≥ 95 % of routed items were right.
- **Versions:** each training is a :class:`RoutingModelVersion` (candidate → live | rejected);
  :func:`rollback` makes the previous live version live again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import (
    Case,
    CaseStatus,
    Document,
    Message,
    OrgUnit,
    RoutingModelVersion,
    Service,
    Tenant,
    utcnow,
)
from rathaus.inbox.places import case_places, place_features
from rathaus.inbox.routing import Features, RoutingModel, threshold_for_precision

TARGET_PRECISION = 0.95
MIN_CASES = 20
TASKS = ("unit", "service", "request_type")


@dataclass
class TrainingSet:
    case_ids: list[int]
    texts: list[str]
    received: list[dt.datetime]
    labels: dict[str, list[str | None]]
    # Per case, where it is (:func:`rathaus.inbox.places.case_places`).
    places: list[dict[str, str]]

    @property
    def has_places(self) -> bool:
        """Whether any case has a known place (else the place features say nothing)."""
        nowhere = place_features()
        return any(p != nowhere for p in self.places)

    def __len__(self) -> int:
        return len(self.case_ids)


def training_set(session: Session, tenant_id: int) -> TrainingSet:
    """All decided cases of the tenant, oldest first."""
    rows = session.execute(
        select(
            Case.id,
            Case.subject,
            Case.received_at,
            OrgUnit.code,
            Service.code,
            Case.request_type,
            Case.address,
            Case.latitude,
            Case.longitude,
        )
        .join(OrgUnit, OrgUnit.id == Case.org_unit_id)
        .outerjoin(Service, Service.id == Case.service_id)
        .where(
            Case.tenant_id == tenant_id,
            Case.status.not_in([CaseStatus.NEU, CaseStatus.TRIAGE]),
        )
        .order_by(Case.received_at, Case.id)
    ).all()
    ids = [r[0] for r in rows]
    bodies: dict[int, list[str]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for case_id, body in session.execute(
            select(Message.case_id, Message.body)
            .where(Message.case_id.in_(chunk), Message.direction == "in")
            .order_by(Message.id)
        ):
            bodies.setdefault(case_id, []).append(body or "")
        for case_id, text in session.execute(
            select(Document.case_id, Document.extracted_text).where(
                Document.case_id.in_(chunk), Document.extracted_text.is_not(None)
            )
        ):
            bodies.setdefault(case_id, []).append(text or "")
    texts = [f"{r[1]}\n" + "\n".join(dict.fromkeys(bodies.get(r[0], []))) for r in rows]
    return TrainingSet(
        case_ids=ids,
        texts=[t[:20000] for t in texts],
        received=[r[2] for r in rows],
        labels={
            "unit": [r[3] for r in rows],
            "service": [r[4] for r in rows],
            "request_type": [r[5] for r in rows],
        },
        places=[case_places(r) for r in rows],
    )


# -- model files -------------------------------------------------------------------------------


def model_key(secret_key: str) -> bytes:
    return hashlib.sha256(b"rathaus-routing-model\x00" + secret_key.encode("utf-8")).digest()


@dataclass
class LiveModel:
    """The loaded models of one version; ``unit`` always, ``service``/``request_type`` if there
    were enough labels. ``uses_location``: the models read the place of an item as
    ``extra_features`` (:func:`rathaus.inbox.places.case_places`); versions from before that
    read the text (and vectors) only."""

    version: RoutingModelVersion
    models: dict[str, RoutingModel]
    thresholds: dict[str, float]
    uses_vectors: bool
    uses_location: bool = False

    @property
    def label(self) -> str:
        return f"routing-v{self.version.version}"


_CACHE: dict[tuple[str, str], dict[str, RoutingModel]] = {}
_CACHE_LOCK = threading.Lock()


def _files(data_dir: Path, tenant: Tenant, version: int) -> dict[str, Path]:
    folder = data_dir / "models" / "routing" / tenant.slug
    return {task: folder / f"v{version}-{task}.bin" for task in TASKS}


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.read_bytes())
    return h.hexdigest()


def live_model(
    session: Session, tenant: Tenant, *, data_dir: Path, secret_key: str
) -> LiveModel | None:
    """The tenant's live routing model, loaded once per process and version."""
    version = session.scalar(
        select(RoutingModelVersion).where(
            RoutingModelVersion.tenant_id == tenant.id, RoutingModelVersion.status == "live"
        )
    )
    if version is None:
        return None
    key = (str(data_dir.resolve()), version.file_sha256)
    with _CACHE_LOCK:
        models = _CACHE.get(key)
        if models is None:
            models = {}
            for task in version.metrics.get("tasks", ["unit"]):
                path = data_dir / version.file_path / f"v{version.version}-{task}.bin"
                models[task] = RoutingModel.load(path, key=model_key(secret_key))
            _CACHE[key] = models
    return LiveModel(
        version=version,
        models=models,
        thresholds={k: float(v) for k, v in version.metrics.get("thresholds", {}).items()},
        uses_vectors=bool(version.metrics.get("uses_vectors")),
        uses_location=bool(version.metrics.get("uses_location")),
    )


# -- training ----------------------------------------------------------------------------------


def _usable(labels: list[str | None]) -> bool:
    values = [v for v in labels if v]
    if len(values) < MIN_CASES:
        return False
    _, counts = np.unique(values, return_counts=True)
    return int((counts >= 2).sum()) >= 2


def _fit(
    task_labels: list[str | None],
    texts: list[str],
    vectors: Any,
    idx: np.ndarray,
    places: list[dict[str, str]] | None = None,
):
    keep = [i for i in idx if task_labels[i]]
    model = RoutingModel()
    model.fit(
        [texts[i] for i in keep],
        [task_labels[i] for i in keep],
        extra_features=None if places is None else [places[i] for i in keep],
        vectors=None if vectors is None else vectors[keep],
    )
    return model


def _thresholds(y: list[str], proba: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """Overall and per predicted unit: lowest confidence with ≥ 95 % precision."""
    result = {"*": threshold_for_precision(y, proba, TARGET_PRECISION, classes=classes)}
    predicted = classes[proba.argmax(axis=1)]
    for unit in np.unique(predicted):
        mask = predicted == unit
        if mask.sum() >= 8:
            result[str(unit)] = threshold_for_precision(
                [y[i] for i in np.flatnonzero(mask)], proba[mask], TARGET_PRECISION, classes=classes
            )
    return {k: (v if np.isfinite(v) else 1.01) for k, v in result.items()}


def _accuracy(
    model: RoutingModel, texts: list[str], y: list[str], vectors: Any, places: Features | None
) -> float:
    proba = model.predict_proba(texts, extra_features=places, vectors=vectors)
    return float(np.mean(model.classes_[proba.argmax(axis=1)] == np.asarray(y)))


def train(
    session: Session,
    tenant: Tenant,
    *,
    data_dir: Path,
    secret_key: str,
    embedder: Any = None,
    trigger: str = "manuell",
    actor: str = "system",
    tolerance: float = 0.01,
) -> RoutingModelVersion:
    """Train a candidate, gate it against the live model on held-out cases, and activate it if
    it is not worse. Returns the new version (status ``live`` or ``rejected``)."""
    data = training_set(session, tenant.id)
    if not _usable(data.labels["unit"]):
        raise RathausError(
            f"Zu wenige entschiedene Vorgänge zum Trainieren ({len(data)}; mindestens "
            f"{MIN_CASES} mit zwei oder mehr Ämtern). Bis dahin schlägt Rathaus Zuständigkeiten "
            "nach Ähnlichkeit zu den Beschreibungen der Ämter und Leistungen vor."
        )
    vectors = None
    if embedder is not None:
        from rathaus.inbox.vectors import case_vectors

        vectors = case_vectors(session, tenant.id, data.case_ids, data.texts, embedder)
    n = len(data)
    held = max(10, n // 5)
    train_idx, test_idx = np.arange(0, n - held), np.arange(n - held, n)
    y_unit = data.labels["unit"]
    # The place features only where some case has a place: otherwise they are all "unbekannt".
    places = data.places if data.has_places else None

    candidate = _fit(y_unit, data.texts, vectors, train_idx, places)
    test_texts = [data.texts[i] for i in test_idx]
    test_vectors = None if vectors is None else vectors[test_idx]
    test_places = [data.places[i] for i in test_idx]
    y_test = [str(y_unit[i]) for i in test_idx]
    proba = candidate.predict_proba(
        test_texts, extra_features=None if places is None else test_places, vectors=test_vectors
    )
    accuracy = float(np.mean(candidate.classes_[proba.argmax(axis=1)] == np.asarray(y_test)))
    thresholds = _thresholds(y_test, proba, candidate.classes_)

    live = live_model(session, tenant, data_dir=data_dir, secret_key=secret_key)
    live_accuracy = None
    if live is not None:
        live_vectors = test_vectors if live.uses_vectors else None
        if live.uses_vectors and live_vectors is None:
            live_accuracy = None  # cannot compare without the same embedder
        else:
            # Each model gets the inputs it was trained with (an older one: text only).
            live_accuracy = _accuracy(
                live.models["unit"],
                test_texts,
                y_test,
                live_vectors,
                test_places if live.uses_location else None,
            )
    passed = live_accuracy is None or accuracy >= live_accuracy - tolerance

    number = (
        session.scalar(
            select(func.max(RoutingModelVersion.version)).where(
                RoutingModelVersion.tenant_id == tenant.id
            )
        )
        or 0
    ) + 1
    files = _files(data_dir, tenant, number)
    folder = files["unit"].parent
    version = RoutingModelVersion(
        tenant_id=tenant.id,
        version=number,
        status="candidate",
        file_path=str(folder.relative_to(data_dir)),
        n_train=n,
        trigger=trigger,
        created_by=actor,
        metrics={
            "accuracy": round(accuracy, 4),
            "live_accuracy": None if live_accuracy is None else round(live_accuracy, 4),
            "live_version": live.version.version if live else None,
            "held_out": len(test_idx),
            "thresholds": {k: round(v, 4) for k, v in thresholds.items()},
            "uses_vectors": vectors is not None,
            "uses_location": places is not None,
            "embedder": getattr(embedder, "version", None),
            "gate": "bestanden" if passed else "nicht bestanden",
        },
    )
    if passed:
        folder.mkdir(parents=True, exist_ok=True)
        key = model_key(secret_key)
        tasks = []
        everything = np.arange(n)
        for task in TASKS:
            labels = data.labels[task]
            if task != "unit" and not _usable(labels):
                continue
            model = _fit(labels, data.texts, vectors, everything, places)
            model.save(files[task], key=key)
            tasks.append(task)
        version.metrics = {**version.metrics, "tasks": tasks}
        version.file_sha256 = _digest([files[t] for t in tasks])
        session.execute(
            update(RoutingModelVersion)
            .where(RoutingModelVersion.tenant_id == tenant.id, RoutingModelVersion.status == "live")
            .values(status="abgelöst")
        )
        version.status = "live"
        version.activated_at = utcnow()
    else:
        version.status = "abgelehnt"
    session.add(version)
    session.flush()
    return version


def versions(session: Session, tenant_id: int) -> list[RoutingModelVersion]:
    return list(
        session.scalars(
            select(RoutingModelVersion)
            .where(RoutingModelVersion.tenant_id == tenant_id)
            .order_by(RoutingModelVersion.version.desc())
        )
    )


def activate(session: Session, tenant: Tenant, version_number: int) -> RoutingModelVersion:
    """Make an earlier version live again (rollback); its files must still be intact."""
    target = session.scalar(
        select(RoutingModelVersion).where(
            RoutingModelVersion.tenant_id == tenant.id,
            RoutingModelVersion.version == version_number,
        )
    )
    if target is None or not target.metrics.get("tasks"):
        raise NotFoundError(
            f"Modellversion {version_number} gibt es nicht oder sie wurde nie gespeichert "
            "(abgelehnte Kandidaten haben keine Dateien)."
        )
    session.execute(
        update(RoutingModelVersion)
        .where(RoutingModelVersion.tenant_id == tenant.id, RoutingModelVersion.status == "live")
        .values(status="abgelöst")
    )
    target.status = "live"
    target.activated_at = utcnow()
    session.flush()
    return target


def rollback(session: Session, tenant: Tenant) -> RoutingModelVersion:
    """Go back to the most recently activated version before the live one."""
    live = session.scalar(
        select(RoutingModelVersion).where(
            RoutingModelVersion.tenant_id == tenant.id, RoutingModelVersion.status == "live"
        )
    )
    earlier = [
        v
        for v in versions(session, tenant.id)
        if v.metrics.get("tasks")
        and v.status != "live"
        and v.activated_at is not None
        and (live is None or v.version < live.version)
    ]
    if not earlier:
        raise RathausError("Es gibt keine frühere Modellversion, zu der zurückgekehrt werden kann.")
    return activate(session, tenant, earlier[0].version)
