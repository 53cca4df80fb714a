"""Offline evaluation of inbox routing on the Konstanz Mängelmelder export (``rathaus eval inbox``).

Split and metrics (as in ``../shared/data/README.md``):
- Training: ``Jahr`` 2020 and 2021; test: ``Jahr`` 2022.
- Unit (``Gruppe``): whitespace stripped; rows whose unit is ``Moderation``, ``Administration`` or
  empty are left out (they are not responsible units). Category (``Kategorie``): the same rows.
- ``accuracy`` and ``macro_f1`` (over the labels present in test or predicted) on the test year.
- ``auto_share_at_95``: share of test items whose top calibrated probability is at or above a
  threshold. The threshold is chosen on the **training years only**: out-of-fold probabilities
  from a k-fold cross-validation of the whole model on 2020–2021, then the lowest threshold whose
  routed items are ≥ 95 % precise (:func:`threshold_for_precision`). The folds are blocks of
  whole calendar months (``Jahr``/``Monat``), so that reports of the same incident a few days
  apart never sit on both sides of a fold. ``precision_at_threshold`` is the precision those
  routed test items really reached; ``threshold`` is the value used.

Features and models (chosen by validation inside the training years only: train 2020 →
validate 2021, and train 2020 + first half of 2021 → validate second half of 2021):
- Category: the report text only (TF-IDF words + character n-grams of the normalised text, plus
  multilingual-e5-small sentence embeddings when an embedder is given); one linear SVM,
  calibrated with Platt scaling on k folds (``RoutingModel(ensemble=False)``).
- Unit: the same text features plus the location of the report: district (``Stadtteil``), street
  and postcode of the automatically determined address, and lat/lon grid cells of about 0.5 and
  2 km. Model: the stacked ensemble of :class:`RoutingModel` (text SVM, text + location SVM,
  vote of the 10 most similar earlier reports by embedding, combined by a logistic regression
  on out-of-fold scores). The citizen-chosen category is *not* used.
- Unit as the product sees an Open311 report (``unit_open311``): the citizen picks a service
  (``service_code``) when filing, and the Open311 channel writes its name into the subject
  (``"<Leistung>: <Beschreibung>"``). Here the ``Kategorie`` plays that part
  (:func:`open311_text`); text and embeddings of that text plus the place the report carries
  (coordinates and address: street, postcode, grid cells; no district, which Open311 does not
  send; :func:`location_features` with ``district=False``), exactly what the live model is
  trained on and predicts from (:func:`rathaus.inbox.places.case_places`). The same stacked
  :class:`RoutingModel`.
Embeddings can be cached in a folder (one ``.npy`` per text, named by the SHA-256 of the text).
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rathaus.core.errors import RathausError
from rathaus.inbox.places import place_features
from rathaus.inbox.routing import (
    RoutingModel,
    routed_share_and_precision,
    threshold_for_precision,
)

REQUIRED = ("Text", "Kategorie", "Gruppe", "Jahr", "Automatisch-ermittelte-Adresse", "lat", "lon")
NOT_UNITS = {"", "Moderation", "Administration"}
TRAIN_YEARS = {"2020", "2021"}
TEST_YEARS = {"2022"}
TARGET_PRECISION = 0.95


def read_reports(path: str | Path) -> list[dict[str, str]]:
    """The CSV rows, checked for encoding and required columns, with a German error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise RathausError(
            f"Die Datei {path} gibt es nicht. Bitte den Pfad zur Konstanz-CSV angeben "
            "(z. B. ../shared/data/inbox/konstanz_maengelmelder_2020-2022.csv)."
        )
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = reader.fieldnames or []
    except UnicodeDecodeError as exc:
        raise RathausError(
            f"Die Datei {path} ist nicht UTF-8-kodiert. Bitte als UTF-8 speichern und erneut "
            "versuchen."
        ) from exc
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise RathausError(
            f"In {path} fehlen die Spalten {', '.join(missing)}. Erwartet wird der "
            "Mängelmelder-Export mit Komma als Trennzeichen."
        )
    return rows


def location_features(row: dict[str, str], *, district: bool = True) -> dict[str, Any]:
    """Where the report is: district, street, postcode and two grid cells (one-hot strings,
    :func:`rathaus.inbox.places.place_features`). ``district=False``: as the live model sees
    a report that came in over Open311 (coordinates and address, no district; see
    :func:`rathaus.inbox.places.case_places`)."""
    return place_features(
        address=row.get("Automatisch-ermittelte-Adresse"),
        latitude=row.get("lat"),
        longitude=row.get("lon"),
        district=(row.get("Stadtteil") or "") if district else None,
    )


def open311_text(category: str, description: str) -> str:
    """The text the inbox learns from and predicts on for a report filed over Open311 with
    ``category`` as its service: the channel makes the subject ``"<name>: <first 120
    characters>"`` (:func:`rathaus.inbox.channels.open311.submit`) and the training set joins
    subject and message (:func:`rathaus.inbox.training.training_set`)."""
    description = description or ""
    subject = f"{category}: {description[:120]}" if description else category
    return f"{subject}\n{description}"


def cached_embeddings(texts: Sequence[str], embedder: Any, cache_dir: Path | None) -> np.ndarray:
    """Passage embeddings for ``texts``; already computed ones are read from ``cache_dir``."""
    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    vectors: dict[str, np.ndarray] = {}
    if cache_dir is not None:
        cache_dir = cache_dir / embedder.name
        cache_dir.mkdir(parents=True, exist_ok=True)
        for key in set(keys):
            file = cache_dir / f"{key}.npy"
            if file.exists():
                vectors[key] = np.load(file)
    todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in vectors}.items())
    if todo:
        computed = embedder.embed_passages([t for _, t in todo])
        for (key, _), vector in zip(todo, computed, strict=True):
            vectors[key] = vector
            if cache_dir is not None:
                np.save(cache_dir / f"{key}.npy", vector)
    return np.stack([vectors[k] for k in keys]).astype(np.float32)


def _oof_proba(
    make: Any,
    texts: list[str],
    y: np.ndarray,
    extra: Any,
    vectors: Any,
    folds: int,
    groups: Any = None,
):
    """Out-of-fold calibrated probabilities on the training data, columns = sorted labels.

    With ``groups`` (e.g. the month of each report) whole groups are held out together."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    classes = np.unique(y)
    proba = np.zeros((len(y), len(classes)))
    if groups is not None and len(set(groups)) >= folds:
        splits = GroupKFold(folds).split(texts, y, groups)
    else:
        smallest = int(min(np.unique(y, return_counts=True)[1]))
        splitter = StratifiedKFold(folds, shuffle=True, random_state=1)
        strat = y if smallest >= folds else np.zeros(len(y))  # rare classes: plain shuffled folds
        splits = splitter.split(texts, strat)
    for train, held in splits:
        model = make().fit(
            [texts[i] for i in train],
            y[train],
            extra_features=None if extra is None else [extra[i] for i in train],
            vectors=None if vectors is None else vectors[train],
        )
        part = model.predict_proba(
            [texts[i] for i in held],
            extra_features=None if extra is None else [extra[i] for i in held],
            vectors=None if vectors is None else vectors[held],
        )
        proba[np.ix_(held, np.searchsorted(classes, model.classes_))] = part
    return proba, classes


def _task(
    train_texts: list[str],
    y_train: np.ndarray,
    test_texts: list[str],
    y_test: np.ndarray,
    *,
    extra: tuple[Any, Any] = (None, None),
    vectors: tuple[Any, Any] = (None, None),
    folds: int,
    groups: Any = None,
    ensemble: bool = True,
) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    def make() -> RoutingModel:
        return RoutingModel(ensemble=ensemble, folds=folds)

    oof, oof_classes = _oof_proba(make, train_texts, y_train, extra[0], vectors[0], folds, groups)
    threshold = threshold_for_precision(y_train, oof, TARGET_PRECISION, classes=oof_classes)
    model = make().fit(train_texts, y_train, extra_features=extra[0], vectors=vectors[0])
    proba = model.predict_proba(test_texts, extra_features=extra[1], vectors=vectors[1])
    predicted = model.classes_[proba.argmax(axis=1)]
    share, precision = routed_share_and_precision(y_test, proba, threshold, classes=model.classes_)
    return {
        "accuracy": round(float(accuracy_score(y_test, predicted)), 4),
        "macro_f1": round(float(f1_score(y_test, predicted, average="macro")), 4),
        "auto_share_at_95": round(share, 4),
        "precision_at_threshold": None if precision is None else round(precision, 4),
        "threshold": None if not np.isfinite(threshold) else round(threshold, 4),
        "n_train": len(y_train),
        "n_test": len(y_test),
    }


def _labels(rows: list[dict[str, str]], column: str) -> np.ndarray:
    return np.array([r[column].strip() for r in rows])


def _monthly_accuracy(
    train_texts: list[str],
    y_train: np.ndarray,
    test_texts: list[str],
    y_test: np.ndarray,
    test_months: list[int],
    *,
    extra: tuple[Any, Any] = (None, None),
    vectors: tuple[Any, Any] = (None, None),
    folds: int,
    ensemble: bool = True,
) -> float:
    """Accuracy on the test year when the model is retrained at the start of every month on
    everything decided so far (the training years plus the test year's earlier months), as a
    scheduled monthly retraining would do in operation. No test item is seen before its month."""
    months = np.array(test_months)

    def pick(items: Any, index: np.ndarray) -> Any:
        return [items[i] for i in index]

    correct = 0
    for month in sorted(set(test_months)):
        seen = np.flatnonzero(months < month)
        now = np.flatnonzero(months == month)
        texts = train_texts + pick(test_texts, seen)
        features = None if extra[0] is None else list(extra[0]) + pick(extra[1], seen)
        vecs = None if vectors[0] is None else np.vstack([vectors[0], vectors[1][seen]])
        model = RoutingModel(ensemble=ensemble, folds=folds).fit(
            texts,
            np.concatenate([y_train, y_test[seen]]),
            extra_features=features,
            vectors=vecs,
        )
        proba = model.predict_proba(
            pick(test_texts, now),
            extra_features=None if extra[1] is None else pick(extra[1], now),
            vectors=None if vectors[1] is None else vectors[1][now],
        )
        correct += int((model.classes_[proba.argmax(axis=1)] == y_test[now]).sum())
    return round(correct / len(y_test), 4)


def evaluate_inbox(
    path: str | Path,
    *,
    embedder: Any = None,
    cache_dir: str | Path | None = None,
    folds: int = 5,
    monthly: bool = False,
) -> dict[str, Any]:
    """Train on 2020–2021, test on 2022; ``{"unit", "category", "unit_open311", "setup"}``.

    ``embedder`` (an :class:`rathaus.ai.embeddings.Embedder`) adds sentence embeddings to the
    text features; without it only TF-IDF is used. ``folds`` is the k of the cross-validation on
    the training years that chooses the auto-routing threshold.
    """
    started = time.perf_counter()
    rows = [r for r in read_reports(path) if (r.get("Gruppe") or "").strip() not in NOT_UNITS]
    train = [r for r in rows if r["Jahr"].strip() in TRAIN_YEARS]
    test = [r for r in rows if r["Jahr"].strip() in TEST_YEARS]
    if not train or not test:
        raise RathausError(
            "Für die Auswertung braucht es Meldungen aus 2020–2021 (Training) und 2022 (Test) "
            "in der Spalte „Jahr“."
        )
    train_texts = [r["Text"] or "" for r in train]
    test_texts = [r["Text"] or "" for r in test]
    vectors: tuple[Any, Any] = (None, None)
    if embedder is not None:
        cache = Path(cache_dir) if cache_dir is not None else None
        both = cached_embeddings(train_texts + test_texts, embedder, cache)
        vectors = (both[: len(train)], both[len(train) :])
    places = ([location_features(r) for r in train], [location_features(r) for r in test])
    intake_places = (
        [location_features(r, district=False) for r in train],
        [location_features(r, district=False) for r in test],
    )
    intake = (
        [open311_text(r["Kategorie"].strip(), r["Text"] or "") for r in train],
        [open311_text(r["Kategorie"].strip(), r["Text"] or "") for r in test],
    )
    intake_vectors: tuple[Any, Any] = (None, None)
    if embedder is not None:
        both = cached_embeddings(intake[0] + intake[1], embedder, cache)
        intake_vectors = (both[: len(train)], both[len(train) :])
    months = [f"{r['Jahr'].strip()}-{(r.get('Monat') or '').strip()}" for r in train]
    y_unit = _labels(train, "Gruppe"), _labels(test, "Gruppe")
    y_category = _labels(train, "Kategorie"), _labels(test, "Kategorie")

    unit = _task(
        train_texts,
        y_unit[0],
        test_texts,
        y_unit[1],
        extra=places,
        vectors=vectors,
        folds=folds,
        groups=months,
    )
    unit_open311 = _task(
        intake[0],
        y_unit[0],
        intake[1],
        y_unit[1],
        extra=intake_places,
        vectors=intake_vectors,
        folds=folds,
        groups=months,
    )
    category = _task(
        train_texts,
        y_category[0],
        test_texts,
        y_category[1],
        vectors=vectors,
        folds=folds,
        groups=months,
        ensemble=False,
    )
    text = "tfidf_word_char" + ("+" + embedder.name if embedder is not None else "")
    result: dict[str, Any] = {
        "unit": unit,
        "category": category,
        "unit_open311": unit_open311,
        "setup": {
            "split": "train Jahr 2020-2021, test Jahr 2022",
            "unit_features": text + "+location(stadtteil,strasse,plz,grid)",
            "unit_model": "stacked: svm(text), svm(text+location)"
            + (", knn(embeddings)" if embedder is not None else "")
            + " -> logistic regression",
            "unit_open311_features": text
            + " of the text as filed over Open311: category name as subject + report"
            + "+location(strasse,plz,grid)",
            "category_features": text,
            "category_model": "svm(text), platt-calibrated",
            "threshold_chosen_on": (
                f"{folds}-fold cross-validation on the training years, folds = whole months"
            ),
        },
    }
    if monthly:
        test_months = [int((r.get("Monat") or "0").strip() or 0) for r in test]
        result["monthly_retraining"] = {
            "unit_accuracy": _monthly_accuracy(
                train_texts,
                y_unit[0],
                test_texts,
                y_unit[1],
                test_months,
                extra=places,
                vectors=vectors,
                folds=folds,
            ),
            "category_accuracy": _monthly_accuracy(
                train_texts,
                y_category[0],
                test_texts,
                y_category[1],
                test_months,
                vectors=vectors,
                folds=folds,
                ensemble=False,
            ),
            "how": "retrained at the start of every 2022 month on 2020-2021 plus the earlier 2022 months",
        }
    result["setup"]["seconds"] = round(time.perf_counter() - started, 1)
    return result
