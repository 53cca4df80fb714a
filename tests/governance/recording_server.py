"""A real OpenAI-compatible HTTP server on 127.0.0.1 that records every request it receives.

It answers ``POST /v1/chat/completions`` (also streaming, in pieces of three characters, so a
placeholder is split across pieces) by repeating the placeholders it was sent, and
``POST /v1/embeddings`` with deterministic 384-dimensional vectors. Everything it received is
kept in :attr:`RecordingServer.received` as text: the raw body and the decoded JSON with
non-ASCII characters unescaped, so an assertion sees what a model server would see.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

PLACEHOLDER = re.compile(r"\[[A-Z_]+_\d+\]")
DIM = 384


def default_answer(messages: list[dict[str, str]]) -> str:
    """A reply that uses every placeholder of the last user message (a model that keeps them)."""
    user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    found = list(dict.fromkeys(PLACEHOLDER.findall(user)))
    return "Guten Tag " + " ".join(found) + ", vielen Dank für Ihre Nachricht."


def vector(text: str) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIM)
    return (v / np.linalg.norm(v)).tolist()


class RecordingServer:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is the ``/v1`` base URL."""

    def __init__(self, answer: Callable[[list[dict[str, str]]], str] = default_answer) -> None:
        self.answer = answer
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep the test output clean
                pass

            def _json(self, status: int, data: Any) -> None:
                body = json.dumps(data).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.rstrip("/") == "/v1/models":
                    self._json(200, {"data": [{"id": "aufzeichnung"}]})
                else:
                    self._json(404, {"error": "unbekannt"})

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                payload = json.loads(raw)
                with server._lock:
                    server.received.append(
                        {
                            "path": self.path,
                            "raw": raw.decode("utf-8"),
                            "text": json.dumps(payload, ensure_ascii=False),
                            "payload": payload,
                        }
                    )
                if self.path == "/v1/embeddings":
                    texts = payload["input"]
                    texts = [texts] if isinstance(texts, str) else texts
                    data = [
                        {"object": "embedding", "index": i, "embedding": vector(t)}
                        for i, t in enumerate(texts)
                    ]
                    self._json(200, {"data": data, "model": payload.get("model", "e5")})
                elif self.path == "/v1/chat/completions":
                    text = server.answer(payload["messages"])
                    if payload.get("stream"):
                        self._stream(text)
                    else:
                        self._json(
                            200,
                            {
                                "model": "aufzeichnung",
                                "choices": [
                                    {
                                        "message": {"role": "assistant", "content": text},
                                        "finish_reason": "stop",
                                    }
                                ],
                                "usage": {"prompt_tokens": 10, "completion_tokens": 10},
                            },
                        )
                else:
                    self._json(404, {"error": "unbekannt"})

            def _stream(self, text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for i in range(0, len(text), 3):
                    chunk = {"choices": [{"delta": {"content": text[i : i + 3]}}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> RecordingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def all_text(self) -> str:
        """Everything received, raw and decoded, as one string to search."""
        with self._lock:
            return "\n".join(r["raw"] + "\n" + r["text"] for r in self.received)

    def paths(self) -> list[str]:
        with self._lock:
            return [r["path"] for r in self.received]
