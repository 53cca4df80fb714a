"""Learned routing: a text classifier with calibrated confidence, thresholds and safe model files."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import pickle  # noqa: S403 - only unpickled after the HMAC over the exact bytes has been checked
import re
import warnings
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


_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def normalise(text: str | None) -> str:
    """Text as the word and character n-grams see it: lower case, umlauts and ß folded
    (``Straße`` = ``Strasse``, ``Mülleimer`` = ``Muelleimer``), every number written as ``0``
    (house and lamp numbers say little about who is responsible)."""
    return re.sub(r"\d+", "0", (text or "").lower().translate(_UMLAUTS))


class RoutingModel:
    """Calibrated classifier over free text, optional named features and optional dense vectors.

    Contract:
    - ``fit(texts, labels, *, extra_features=None, vectors=None)`` learns from historical items.
      ``extra_features`` is one mapping per item; string values become one-hot indicators
      (``{"stadtteil": "Egg", "strasse": "flurweg"}``), numbers stay numeric. ``vectors`` is a
      dense array of shape ``(n, d)``, e.g. sentence embeddings with unit-length rows.
      Optional: ``sample_weight``, one non-negative weight per item (e.g. more for recent ones).
    - ``predict_proba`` returns an ``(n, len(classes_))`` array whose rows sum to 1 and whose
      values are calibrated: among items shown with 0.9, about 90 % are right. Calibration is
      fitted on held-out folds, never on the items it was trained on.
    - ``predict(..., k=3)`` returns the top-k :class:`Suggestion` per item, best first.

    Features: TF-IDF over words (uni- and bigrams) and over character 2–5-grams inside words of
    the normalised text (:func:`normalise`), which copes with German compounds and typos, plus
    the vectors and the extra features.

    Model (``ensemble=True``, the default): a stacked ensemble. Base models – a linear SVM on
    the text (and vectors), a linear SVM on text plus extra features, and a vote of the
    ``neighbours`` most similar known items by vector (cosine) – are fitted ``folds`` times;
    their scores on the held-out fold are the input of a multinomial logistic regression
    (``meta_C``) that weighs them and yields the calibrated probabilities. For prediction the
    base models are refitted on all items. ``ensemble=False`` is the single linear SVM on all
    features, calibrated with Platt scaling (``calibration="sigmoid"``) or isotonic regression
    on ``folds`` folds (``CalibratedClassifierCV``). Model files written before the ensemble
    existed load and predict as before.
    """

    def __init__(
        self,
        *,
        C: float = 0.5,
        calibration: str = "sigmoid",
        folds: int = 5,
        extra_weight: float = 0.5,
        vector_weight: float = 1.0,
        random_state: int = 0,
        ensemble: bool = True,
        meta_C: float = 0.03,
        neighbours: int = 10,
        neighbour_temperature: float = 0.05,
        class_weight: str | None = None,
    ) -> None:
        self.C = C
        self.calibration = calibration
        self.folds = folds
        self.extra_weight = extra_weight
        self.vector_weight = vector_weight
        self.random_state = random_state
        self.ensemble = ensemble
        self.meta_C = meta_C
        self.neighbours = neighbours
        self.neighbour_temperature = neighbour_temperature
        self.class_weight = class_weight
        self.classes_: np.ndarray = np.array([])
        self._word: Any = None
        self._char: Any = None
        self._dict: Any = None
        self._dim = 0
        self._clf: Any = None
        self._normalise = True
        self._base: dict[str, Any] | None = None
        self._meta: Any = None
        self._scaler: Any = None

    # -- features ---------------------------------------------------------------------------

    def _clean(self, texts: Sequence[str]) -> list[str]:
        # Models written before text normalisation existed see the text as they were trained.
        if getattr(self, "_normalise", False):
            return [normalise(t) for t in texts]
        return [t or "" for t in texts]

    def _text_parts(
        self, texts: Sequence[str], vectors: Any, text: list[Any] | None = None
    ) -> list[Any]:
        """Word and character TF-IDF of the texts (``text``: computed already, see
        :class:`SharedText`), then the vectors."""
        from scipy.sparse import csr_matrix

        if text is None:
            clean = self._clean(texts)
            text = [self._word.transform(clean), self._char.transform(clean)]
        parts = list(text)
        if self._dim:
            if vectors is None:
                raise ValueError("Dieses Modell wurde mit Vektoren trainiert; sie fehlen.")
            parts.append(csr_matrix(np.asarray(vectors, dtype=np.float64) * self.vector_weight))
        return parts

    def _extra_part(self, extra_features: Features | None) -> Any:
        if extra_features is None:
            raise ValueError("Dieses Modell wurde mit Zusatzmerkmalen trainiert; sie fehlen.")
        return self._dict.transform(list(extra_features)) * self.extra_weight

    def _matrix(
        self,
        texts: Sequence[str],
        extra_features: Features | None,
        vectors: Any,
        text: list[Any] | None = None,
    ) -> Any:
        from scipy.sparse import hstack

        parts = self._text_parts(texts, vectors, text)
        if self._dict is not None:
            parts.append(self._extra_part(extra_features))
        return hstack(parts).tocsr()

    def _inputs(
        self,
        texts: Sequence[str],
        extra_features: Features | None,
        vectors: Any,
        text: list[Any] | None = None,
    ) -> dict:
        """The matrices the base models of the ensemble read."""
        from scipy.sparse import hstack

        parts = self._text_parts(texts, vectors, text)
        inputs: dict[str, Any] = {"text": hstack(parts).tocsr()}
        if self._dict is not None:
            inputs["extra"] = hstack([*parts, self._extra_part(extra_features)]).tocsr()
        if self._dim:
            inputs["vectors"] = _unit_rows(vectors)
        return inputs

    # -- training and prediction -----------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        extra_features: Features | None = None,
        vectors: Any = None,
        sample_weight: Any = None,
    ) -> RoutingModel:
        """Learn from ``texts`` with their ``labels``; returns ``self``.

        ``sample_weight``: one non-negative weight per item (SVMs and combining model).
        """
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [t or "" for t in texts]
        y = np.asarray([str(label) for label in labels])
        if len(texts) != len(y):
            raise ValueError("Zum Trainieren braucht es gleich viele Texte und Labels.")
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if weights is not None and weights.shape != (len(y),):
            raise ValueError("sample_weight braucht genau einen Wert je Text.")
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
            weights = None if weights is None else weights[keep]
            y = y[keep]
        if len(set(y)) < 2:
            raise ValueError(
                "Zum Trainieren braucht es gleich viele Texte und Labels, mind. 2 Klassen."
            )
        self._normalise = True
        clean = [normalise(t) for t in texts]
        self._word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        self._char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2
        )
        self._word.fit(clean)
        try:
            self._char.fit(clean)
        except ValueError:  # tiny corpora: no n-gram occurs twice
            self._char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
            self._char.fit(clean)
        self._dict = None
        if extra_features is not None:
            self._dict = DictVectorizer()
            self._dict.fit(list(extra_features))
        self._dim = 0 if vectors is None else int(np.asarray(vectors).shape[1])
        if self.ensemble:
            self._fit_ensemble(self._inputs(texts, extra_features, vectors), y, weights)
        else:
            self._fit_single(self._matrix(texts, extra_features, vectors), y, weights)
        return self

    def _fit_single(self, X: Any, y: np.ndarray, weights: np.ndarray | None) -> None:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold
        from sklearn.svm import LinearSVC

        # Each class needs a member in every calibration fold; rare classes cap the fold count.
        smallest = int(min(np.unique(y, return_counts=True)[1]))
        folds = max(2, min(self.folds, smallest))
        base = LinearSVC(
            C=self.C,
            class_weight=self.class_weight,
            random_state=self.random_state,
        )
        cv = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        self._base = self._meta = self._scaler = None
        self._clf = CalibratedClassifierCV(base, method=self.calibration, cv=cv)
        self._clf.fit(X, y, sample_weight=weights)
        self.classes_ = self._clf.classes_

    def _fit_ensemble(self, inputs: dict, y: np.ndarray, weights: np.ndarray | None) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold
        from sklearn.preprocessing import StandardScaler

        self._clf = None
        self.classes_ = np.unique(y)
        # Out-of-fold scores of the base models are what the combining model learns from.
        # Every label has ≥ 2 items, so each training part holds at least one of each label.
        largest = int(max(np.unique(y, return_counts=True)[1]))
        folds = max(2, min(self.folds, largest))
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        scores: np.ndarray | None = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "least populated class has only 2 members"
            for train, held in splitter.split(np.zeros(len(y)), y):
                base = self._fit_base(_rows(inputs, train), y[train], _pick(weights, train))
                part = self._base_scores(base, _rows(inputs, held))
                if scores is None:
                    scores = np.zeros((len(y), part.shape[1]))
                scores[held] = part
        assert scores is not None
        self._base = self._fit_base(inputs, y, weights)
        self._scaler = StandardScaler().fit(scores)
        self._meta = LogisticRegression(C=self.meta_C, max_iter=5000)
        self._meta.fit(self._scaler.transform(scores), y, sample_weight=weights)
        self.classes_ = self._meta.classes_

    def _fit_base(self, inputs: dict, y: np.ndarray, weights: np.ndarray | None) -> dict:
        base: dict[str, Any] = {"text": self._svm(inputs["text"], y, weights)}
        if "extra" in inputs:
            base["extra"] = self._svm(inputs["extra"], y, weights)
        if "vectors" in inputs:
            base["neighbours"] = (inputs["vectors"], np.searchsorted(self.classes_, y))
        return base

    def _svm(self, X: Any, y: np.ndarray, weights: np.ndarray | None) -> Any:
        from sklearn.svm import LinearSVC

        if len(np.unique(y)) < 2:
            return None  # a tiny fold without a second label: that part scores as unknown
        svm = LinearSVC(C=self.C, class_weight=self.class_weight, random_state=self.random_state)
        return svm.fit(X, y, sample_weight=weights)

    def _base_scores(self, base: dict[str, Any], inputs: dict) -> np.ndarray:
        n = inputs["text"].shape[0]
        parts = [_svm_scores(base["text"], inputs["text"], self.classes_)]
        if "extra" in inputs:
            parts.append(_svm_scores(base["extra"], inputs["extra"], self.classes_))
        if "vectors" in inputs:
            known, labels = base["neighbours"]
            parts.append(
                _neighbour_vote(
                    inputs["vectors"],
                    known,
                    labels,
                    len(self.classes_),
                    k=self.neighbours,
                    temperature=self.neighbour_temperature,
                )
            )
        return np.hstack(parts).reshape(n, -1)

    def predict_proba(
        self,
        texts: Sequence[str],
        *,
        extra_features: Features | None = None,
        vectors: Any = None,
        text: list[Any] | None = None,
    ) -> np.ndarray:
        """Calibrated probabilities, one row per text, columns in the order of ``classes_``.
        ``text``: the word and character TF-IDF of ``texts`` for this model, computed already
        (:meth:`SharedText.features`)."""
        if getattr(self, "_meta", None) is not None:
            inputs = self._inputs(texts, extra_features, vectors, text)
            scores = self._base_scores(self._base or {}, inputs)
            return self._meta.predict_proba(self._scaler.transform(scores))
        if self._clf is None:
            raise RathausError("Das Zuordnungsmodell ist noch nicht trainiert.")
        return self._clf.predict_proba(self._matrix(texts, extra_features, vectors, text))

    def predict(
        self,
        texts: Sequence[str],
        *,
        k: int = 3,
        extra_features: Features | None = None,
        vectors: Any = None,
        text: list[Any] | None = None,
    ) -> list[list[Suggestion]]:
        """The ``k`` most likely labels per text with their calibrated probabilities."""
        proba = self.predict_proba(texts, extra_features=extra_features, vectors=vectors, text=text)
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


# What decides the n-grams a TF-IDF vectorizer reads from a text (not which of them it keeps).
_ANALYSIS = (
    "input",
    "encoding",
    "decode_error",
    "strip_accents",
    "lowercase",
    "preprocessor",
    "tokenizer",
    "analyzer",
    "stop_words",
    "token_pattern",
    "ngram_range",
    "dtype",
)


class SharedText:
    """The word and character TF-IDF of several routing models (one per task: unit, service,
    request type) over the same texts, with each text read once.

    Each model has vectorizers of its own (fitted on the items that had its label), but they cut
    a text into the same n-grams. Vectorizers that read alike are grouped; per group the texts
    are counted once against the union of their vocabularies (sklearn's own counting), and each
    vectorizer takes its columns from that and weighs them with its own IDF. The result is the
    same matrix as the vectorizer's own ``transform`` (see tests/inbox/test_routing.py); other
    vectorizers (a callable analyzer, stop words) transform as usual.
    """

    def __init__(self, models: Sequence[RoutingModel]) -> None:
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

        self.models = list(models)
        # Per group: the union counter and, per member (model index, part), its columns in it.
        self._groups: list[tuple[bool, Any, list[tuple[int, int, np.ndarray]]]] = []
        members: dict[tuple, list[tuple[int, int, Any]]] = {}
        self._own: list[tuple[int, int]] = []
        for m, model in enumerate(self.models):
            normalised = bool(getattr(model, "_normalise", False))
            for part, vectorizer in enumerate((model._word, model._char)):
                params = vectorizer.get_params()
                if (
                    type(vectorizer) is not TfidfVectorizer
                    or not isinstance(params["analyzer"], str)
                    or params["preprocessor"] is not None
                    or params["tokenizer"] is not None
                    or params["stop_words"] is not None
                    or not hasattr(vectorizer, "vocabulary_")
                ):
                    self._own.append((m, part))
                    continue
                key = (normalised, *(repr(params[name]) for name in _ANALYSIS))
                members.setdefault(key, []).append((m, part, vectorizer))
        for key, group in members.items():
            union: dict[str, int] = {}
            for _, _, vectorizer in group:
                for term in vectorizer.vocabulary_:
                    union.setdefault(term, len(union))
            first = group[0][2]
            counter = CountVectorizer(
                **{name: first.get_params()[name] for name in _ANALYSIS}, vocabulary=union
            )
            counter._validate_vocabulary()  # once here, not at the first transform
            columns = []
            for m, part, vectorizer in group:
                order = np.empty(len(vectorizer.vocabulary_), dtype=np.int64)
                for term, index in vectorizer.vocabulary_.items():
                    order[index] = union[term]
                columns.append((m, part, order))
            self._groups.append((key[0], counter, columns))

    def features(self, texts: Sequence[str]) -> list[list[Any]]:
        """Per model, ``[word, char]`` TF-IDF matrices of ``texts``, as its vectorizers'
        ``transform`` gives them."""
        out: list[list[Any]] = [[None, None] for _ in self.models]
        clean: dict[bool, list[str]] = {}
        for normalised, counter, columns in self._groups:
            if normalised not in clean:
                clean[normalised] = (
                    [normalise(t) for t in texts] if normalised else [t or "" for t in texts]
                )
            counts = counter.transform(clean[normalised])
            for m, part, order in columns:
                vectorizer = (self.models[m]._word, self.models[m]._char)[part]
                X = counts[:, order]
                X.sort_indices()
                if vectorizer.binary:
                    X.data.fill(1)
                out[m][part] = vectorizer._tfidf.transform(X, copy=False)
        for m, part in self._own:
            model = self.models[m]
            vectorizer = (model._word, model._char)[part]
            out[m][part] = vectorizer.transform(model._clean(texts))
        return out


_SHARED: dict[tuple[int, ...], SharedText] = {}


def predict_many(
    models: Mapping[str, RoutingModel],
    texts: Sequence[str],
    *,
    k: int = 3,
    vectors: Any = None,
    extra_features: Features | None = None,
) -> dict[str, list[list[Suggestion]]]:
    """:meth:`RoutingModel.predict` of several models (by task) over the same texts, each text
    cut into n-grams once for all of them (:class:`SharedText`, kept per set of models).
    ``vectors`` and ``extra_features`` go to every model, as to :meth:`RoutingModel.predict`."""
    key = tuple(id(m) for m in models.values())
    shared = _SHARED.get(key)
    if shared is None or any(
        a is not b for a, b in zip(shared.models, models.values(), strict=True)
    ):
        shared = SharedText(list(models.values()))
        while len(_SHARED) >= 16:
            _SHARED.pop(next(iter(_SHARED)))
        _SHARED[key] = shared
    text = shared.features(texts)
    return {
        task: model.predict(
            texts, k=k, vectors=vectors, extra_features=extra_features, text=text[i]
        )
        for i, (task, model) in enumerate(models.items())
    }


def _pick(weights: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if weights is None else weights[rows]


def _rows(inputs: dict, rows: np.ndarray) -> dict:
    return {name: matrix[rows] for name, matrix in inputs.items()}


def _unit_rows(vectors: Any) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def _svm_scores(model: Any, X: Any, classes: np.ndarray) -> np.ndarray:
    """Decision values in the column order of ``classes``; labels the model never saw score
    -1 (the margin of a clear "no")."""
    out = np.full((X.shape[0], len(classes)), -1.0)
    if model is None:
        return out
    values = model.decision_function(X)
    if values.ndim == 1:  # two labels: one column, positive for the second
        values = np.c_[-values, values]
    columns = np.searchsorted(classes, model.classes_)
    known = (columns < len(classes)) & (
        classes[np.minimum(columns, len(classes) - 1)] == model.classes_
    )
    out[:, columns[known]] = values[:, known]
    return out


def _neighbour_vote(
    vectors: np.ndarray,
    known: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    k: int,
    temperature: float,
) -> np.ndarray:
    """Log share of each label among the ``k`` most similar known items (cosine), weighted by
    ``exp((similarity - 1) / temperature)`` and smoothed towards the label frequencies."""
    n = len(vectors)
    prior = np.bincount(labels, minlength=n_classes) / max(len(labels), 1)
    votes = np.zeros((n, n_classes))
    if len(known) and n:
        k = min(k, len(known))
        similarity = vectors @ known.T
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weight = np.exp((np.take_along_axis(similarity, nearest, axis=1) - 1.0) / temperature)
        rows = np.repeat(np.arange(n), k)
        np.add.at(votes, (rows, labels[nearest].ravel()), weight.ravel())
    share = (votes + 0.5 * prior) / (votes.sum(axis=1, keepdims=True) + 0.5)
    return np.log(share + 1e-4)


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
