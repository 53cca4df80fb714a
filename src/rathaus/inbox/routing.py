"""Learned routing: a text classifier with calibrated confidence, thresholds and safe model files."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import pickle  # noqa: S403 - only unpickled after the HMAC over the exact bytes has been checked
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rathaus.core.errors import RathausError

FORMAT_VERSION = 1
_MAGIC = b"RATHAUS-ROUTING\n"

Features = Sequence[Mapping[str, Any]]


class ModelFileError(RathausError):
    """A routing model file is missing, from another format version, or not the one we wrote."""


@dataclass(frozen=True)
class Suggestion:
    """One candidate label with its calibrated probability (0..1)."""

    label: str
    probability: float


class RoutingModel:
    """Calibrated classifier over free text, optional named features and optional dense vectors.

    Contract:
    - ``fit(texts, labels, *, extra_features=None, vectors=None)`` learns from historical items.
      ``extra_features`` is one mapping per item; string values become one-hot indicators
      (``{"stadtteil": "Egg", "strasse": "flurweg"}``), numbers stay numeric. ``vectors`` is a
      dense array of shape ``(n, d)``, e.g. sentence embeddings with unit-length rows.
    - ``predict_proba`` returns an ``(n, len(classes_))`` array whose rows sum to 1 and whose
      values are calibrated: among items shown with 0.9, about 90 % are right. Calibration is
      fitted on held-out folds (``CalibratedClassifierCV``), never on the items it was trained on.
    - ``predict(..., k=3)`` returns the top-k :class:`Suggestion` per item, best first.

    Features: TF-IDF over words (uni- and bigrams) and over character 2–5-grams inside words,
    which copes with German compounds and typos; a linear SVM on top, calibrated with Platt
    scaling (``method="sigmoid"``) or isotonic regression.
    """

    def __init__(
        self,
        *,
        C: float = 0.5,
        calibration: str = "sigmoid",
        folds: int = 5,
        extra_weight: float = 1.0,
        vector_weight: float = 1.0,
        random_state: int = 0,
    ) -> None:
        self.C = C
        self.calibration = calibration
        self.folds = folds
        self.extra_weight = extra_weight
        self.vector_weight = vector_weight
        self.random_state = random_state
        self.classes_: np.ndarray = np.array([])
        self._word: Any = None
        self._char: Any = None
        self._dict: Any = None
        self._clf: Any = None

    # -- features ---------------------------------------------------------------------------

    def _matrix(self, texts: Sequence[str], extra_features: Features | None, vectors: Any) -> Any:
        from scipy.sparse import csr_matrix, hstack

        texts = [t or "" for t in texts]
        parts = [self._word.transform(texts), self._char.transform(texts)]
        if self._dict is not None:
            if extra_features is None:
                raise ValueError("Dieses Modell wurde mit Zusatzmerkmalen trainiert; sie fehlen.")
            parts.append(self._dict.transform(list(extra_features)) * self.extra_weight)
        if self._dim:
            if vectors is None:
                raise ValueError("Dieses Modell wurde mit Vektoren trainiert; sie fehlen.")
            parts.append(csr_matrix(np.asarray(vectors, dtype=np.float64) * self.vector_weight))
        return hstack(parts).tocsr()

    # -- training and prediction -----------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        extra_features: Features | None = None,
        vectors: Any = None,
    ) -> RoutingModel:
        """Learn from ``texts`` with their ``labels``; returns ``self``."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.model_selection import StratifiedKFold
        from sklearn.svm import LinearSVC

        texts = [t or "" for t in texts]
        y = np.asarray([str(label) for label in labels])
        if len(texts) != len(y):
            raise ValueError("Zum Trainieren braucht es gleich viele Texte und Labels.")
        # A label seen only once cannot be calibrated on a held-out fold: it is left out until
        # a second example arrives.
        names, counts = np.unique(y, return_counts=True)
        keep = np.isin(y, names[counts >= 2])
        if not keep.all():
            texts = [t for t, k in zip(texts, keep, strict=True) if k]
            extra_features = (
                None
                if extra_features is None
                else [f for f, k in zip(extra_features, keep, strict=True) if k]
            )
            vectors = None if vectors is None else np.asarray(vectors)[keep]
            y = y[keep]
        if len(set(y)) < 2:
            raise ValueError(
                "Zum Trainieren braucht es gleich viele Texte und Labels, mind. 2 Klassen."
            )
        self._word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        self._char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2
        )
        self._word.fit(texts)
        try:
            self._char.fit(texts)
        except ValueError:  # tiny corpora: no n-gram occurs twice
            self._char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
            self._char.fit(texts)
        self._dict = None
        if extra_features is not None:
            self._dict = DictVectorizer()
            self._dict.fit(list(extra_features))
        self._dim = 0 if vectors is None else int(np.asarray(vectors).shape[1])
        X = self._matrix(texts, extra_features, vectors)

        # Each class needs a member in every calibration fold; rare classes cap the fold count.
        smallest = int(min(np.unique(y, return_counts=True)[1]))
        folds = max(2, min(self.folds, smallest))
        base = LinearSVC(C=self.C, class_weight=None, random_state=self.random_state)
        cv = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        self._clf = CalibratedClassifierCV(base, method=self.calibration, cv=cv)
        self._clf.fit(X, y)
        self.classes_ = self._clf.classes_
        return self

    def predict_proba(
        self,
        texts: Sequence[str],
        *,
        extra_features: Features | None = None,
        vectors: Any = None,
    ) -> np.ndarray:
        """Calibrated probabilities, one row per text, columns in the order of ``classes_``."""
        if self._clf is None:
            raise RathausError("Das Zuordnungsmodell ist noch nicht trainiert.")
        return self._clf.predict_proba(self._matrix(texts, extra_features, vectors))

    def predict(
        self,
        texts: Sequence[str],
        *,
        k: int = 3,
        extra_features: Features | None = None,
        vectors: Any = None,
    ) -> list[list[Suggestion]]:
        """The ``k`` most likely labels per text with their calibrated probabilities."""
        proba = self.predict_proba(texts, extra_features=extra_features, vectors=vectors)
        order = np.argsort(-proba, axis=1)[:, :k]
        return [
            [Suggestion(str(self.classes_[j]), float(row[j])) for j in top]
            for row, top in zip(proba, order, strict=True)
        ]

    # -- model files -----------------------------------------------------------------------

    def save(self, path: str | Path, *, key: bytes) -> None:
        """Write the model: magic line, JSON header (format version, HMAC-SHA256), pickle."""
        payload = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        header = {"format_version": FORMAT_VERSION, "hmac_sha256": _sign(payload, key)}
        buffer = io.BytesIO()
        buffer.write(_MAGIC)
        buffer.write(json.dumps(header).encode("ascii") + b"\n")
        buffer.write(payload)
        Path(path).write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path, *, key: bytes) -> RoutingModel:
        """Read a model written by :meth:`save`; refuses files that fail the HMAC check."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelFileError(
                f"Die Modelldatei {path} lässt sich nicht lesen ({exc.strerror}). Bitte das "
                "Modell neu trainieren."
            ) from exc
        if not raw.startswith(_MAGIC) or b"\n" not in raw[len(_MAGIC) :]:
            raise ModelFileError(
                f"{path} ist keine Rathaus-Modelldatei für die Zuordnung. Bitte das Modell neu "
                "trainieren."
            )
        head, payload = raw[len(_MAGIC) :].split(b"\n", 1)
        try:
            header = json.loads(head)
            version, signature = int(header["format_version"]), str(header["hmac_sha256"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelFileError(
                f"Der Kopf der Modelldatei {path} ist beschädigt. Bitte das Modell neu trainieren."
            ) from exc
        if version != FORMAT_VERSION:
            raise ModelFileError(
                f"Die Modelldatei {path} hat das Format {version}, erwartet wird {FORMAT_VERSION}. "
                "Bitte das Modell mit dieser Version neu trainieren."
            )
        if not hmac.compare_digest(signature, _sign(payload, key)):
            raise ModelFileError(
                f"Die Prüfsumme der Modelldatei {path} stimmt nicht: Die Datei wurde verändert "
                "oder mit einem anderen Schlüssel geschrieben. Sie wird nicht geladen; bitte das "
                "Modell neu trainieren."
            )
        model = pickle.loads(payload)  # noqa: S301 - authenticated above
        if not isinstance(model, cls):
            raise ModelFileError(f"{path} enthält kein Zuordnungsmodell.")
        return model


def _sign(payload: bytes, key: bytes) -> str:
    if not key:
        raise RathausError("Für Modelldateien ist ein Schlüssel nötig (leer übergeben).")
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


# -- thresholds ------------------------------------------------------------------------------


def _correct_and_confidence(
    y_true: Sequence[Any], proba: np.ndarray, classes: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray]:
    proba = np.asarray(proba, dtype=np.float64)
    best = proba.argmax(axis=1)
    if classes is None:
        truth = np.asarray(y_true, dtype=int)
        correct = best == truth
    else:
        correct = np.asarray(classes)[best] == np.asarray(y_true)
    return correct, proba.max(axis=1)


def threshold_for_precision(
    y_true: Sequence[Any],
    proba: np.ndarray,
    target: float = 0.95,
    *,
    classes: Sequence[Any] | None = None,
) -> float:
    """Lowest confidence threshold whose routed items (top probability ≥ threshold) are at
    least ``target`` precise, i.e. the one that routes the most items at that precision.

    ``y_true`` holds labels (with ``classes`` naming the columns of ``proba``) or, without
    ``classes``, column indices. Items with equal confidence are routed together or not at all.
    Returns ``inf`` when no threshold reaches the target: nothing is routed automatically.
    """
    correct, confidence = _correct_and_confidence(y_true, proba, classes)
    if len(confidence) == 0:
        return float("inf")
    order = np.argsort(-confidence, kind="stable")
    conf_sorted, hits = confidence[order], np.cumsum(correct[order])
    precision = hits / np.arange(1, len(order) + 1)
    # Only cut where the confidence changes, so ties are never split.
    last_of_tie = np.r_[conf_sorted[1:] != conf_sorted[:-1], True]
    ok = np.flatnonzero(last_of_tie & (precision >= target))
    if len(ok) == 0:
        return float("inf")
    return float(conf_sorted[ok[-1]])


def routed_share_and_precision(
    y_true: Sequence[Any],
    proba: np.ndarray,
    threshold: float,
    *,
    classes: Sequence[Any] | None = None,
) -> tuple[float, float | None]:
    """Share of items whose top probability is ≥ ``threshold`` and the precision among them
    (``None`` when nothing is routed)."""
    correct, confidence = _correct_and_confidence(y_true, proba, classes)
    routed = confidence >= threshold
    if len(routed) == 0 or not routed.any():
        return 0.0, None
    return float(routed.mean()), float(correct[routed].mean())
