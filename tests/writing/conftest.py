"""Fixtures for the Schreibassistenz: the bundled language model, shared per session (the
embedder is the session one of tests/conftest.py)."""

from __future__ import annotations

from tests.ai.conftest import free_port, gguf_path, llama_server, local_llm  # noqa: F401
