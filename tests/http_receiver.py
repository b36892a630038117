"""A real HTTP server on loopback for tests of outgoing requests (webhook receivers).

`http.server` in a thread of its own, on a free port. Every request it is sent is kept
(method, path, headers, body) in `Receiver.requests`; what it answers is set per test with
`answer(...)`: a status, a body, extra headers (`Location` for a redirect) or `hold=True`
to keep the request waiting until the server stops (a receiver that never answers).

    async def test_x(receiver: Receiver) -> None:
        receiver.answer(503)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.waiting import DEADLINE_SECONDS, eventually


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False


class Receiver:
    """See the module's docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[Received] = []
        self._answers: list[Answer] = []
        self._default = Answer()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, status: int = 200, body: bytes = b"ok", **options: Any) -> None:
        """Answer every request from now on like this."""
        with self._lock:
            self._answers.clear()
            self._default = Answer(status, body, **options)

    def answer_next(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order, then as `answer` said."""
        with self._lock:
            self._answers.extend(answers)

    def _next_answer(self) -> Answer:
        with self._lock:
            return self._answers.pop(0) if self._answers else self._default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = receiver._next_answer()
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.command, self.path, dict(self.headers.items()), body)
                    )
                if answer.hold:
                    receiver._stopping.wait()
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_POST = do_GET = _serve

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    async def wait_for(self, count: int, within: float = DEADLINE_SECONDS) -> list[Received]:
        """Wait until at least `count` requests came in; returns them."""

        async def arrived() -> bool:
            return len(self.requests) >= count

        await eventually(arrived, within)
        return list(self.requests)


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[Receiver]:
    """A fresh loopback receiver per test."""
    server = Receiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()
