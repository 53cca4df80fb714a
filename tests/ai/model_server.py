"""A real OpenAI-compatible model server on 127.0.0.1 that can fail, stop and come back.

:class:`ModelServer` answers ``POST /v1/chat/completions`` (also streaming, in pieces of five
characters) with ``answer(messages)`` (by default "Antwort von <name>.") and ``GET /v1/models``.
It records what it received. For the fault tests it can

- answer every chat request with an HTTP error (:attr:`fail_with`, e.g. 503),
- send the first piece of a stream and then cut the connection (:attr:`cut_streams`),
- hold each request until released (:attr:`hold`), to fill a concurrency limit,
- stop listening (:meth:`stop`: connections are refused) and start again on the same port
  (:meth:`start`).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.ai.conftest import free_port


class ModelServer:
    """Start with :meth:`start`; ``url`` is the ``/v1`` base URL and stays the same on restart."""

    def __init__(
        self, name: str, answer: Callable[[list[dict[str, str]]], str] | None = None
    ) -> None:
        self.name = name
        self.answer = answer or (lambda messages: f"Antwort von {name}.")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.received: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.cut_streams = False
        self.hold: threading.Event | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # what it received ---------------------------------------------------------------------------
    def chats(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.received if r["path"] == "/v1/chat/completions"]

    def texts(self) -> list[str]:
        """The last user message of each chat request (the one after any worked examples), in
        order."""
        return [
            [m["content"] for m in r["payload"]["messages"] if m["role"] == "user"][-1]
            for r in self.chats()
        ]

    # running ------------------------------------------------------------------------------------
    def start(self) -> ModelServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 for chunked streams (a cut stream is then an error, not a short answer);
            # every answer closes its connection, so a stopped server keeps no live connection.
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep the test output clean
                pass

            def _json(self, status: int, data: Any) -> None:
                body = json.dumps(data).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.rstrip("/") == "/v1/models":
                    self._json(200, {"data": [{"id": server.name}]})
                else:
                    self._json(404, {"error": "unbekannt"})

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                payload = json.loads(raw)
                with server._lock:
                    server.received.append({"path": self.path, "payload": payload})
                if server.hold is not None:
                    server.hold.wait(30)
                if self.path != "/v1/chat/completions":
                    self._json(404, {"error": "unbekannt"})
                elif server.fail_with is not None:
                    self._json(server.fail_with, {"error": "Modell überlastet"})
                elif payload.get("stream"):
                    self._stream(server.answer(payload["messages"]))
                else:
                    text = server.answer(payload["messages"])
                    self._json(
                        200,
                        {
                            "model": server.name,
                            "choices": [
                                {
                                    "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {"prompt_tokens": 7, "completion_tokens": 5},
                        },
                    )

            def _stream(self, text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for i in range(0, len(text), 5):
                    piece = {"choices": [{"delta": {"content": text[i : i + 5]}}]}
                    self._chunk(f"data: {json.dumps(piece)}\n\n".encode())
                    if server.cut_streams:
                        # The server dies mid-answer: no [DONE], no end of the chunked body,
                        # which the client sees as a broken connection.
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")

        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        httpd.allow_reuse_address = True
        httpd.daemon_threads = True
        httpd.server_bind()
        httpd.server_activate()
        self._server = httpd
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
