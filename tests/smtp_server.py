"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, on a free port.

Every message it accepts is parsed into an `email.message.EmailMessage` and kept
in `SmtpServer.messages`. aiosmtpd's `Controller` serves from its own thread and
event loop, so the app under test talks to it over a real socket.

    from tests.smtp_server import SmtpServer, smtp_server_fixture  # noqa: F401

    @pytest.fixture
    def settings_overrides(smtp_server: SmtpServer) -> dict[str, Any]:
        return {"SMTP_URL": smtp_server.url}
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller

HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 5.0

MessageFilter = Callable[[EmailMessage], bool]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def closed_smtp_url() -> str:
    """An SMTP URL whose port refuses connections (a mail relay that is down)."""
    return f"smtp://{HOST}:{free_port()}"


class _Collector:
    """The aiosmtpd handler: parse and keep each message it is given."""

    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self._server.take_hold():
            # Never answers: the sender is stuck in the middle of this message, like a
            # worker in the middle of a job, until it is killed.
            await asyncio.Event().wait()
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        message = message_from_bytes(raw, policy=policy.default)
        self._server.record(message, envelope.mail_from, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, *, hold_first: bool = False) -> None:
        """`hold_first`: never answer the first message (it is not kept); `held` is set
        once a sender is stuck in it."""
        self._hold_first = hold_first
        self.held = threading.Event()
        self.messages: list[EmailMessage] = []
        # (envelope sender, envelope recipients) of each message, in the same order.
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"smtp://{HOST}:{self.port}"

    def start(self, port: int | None = None) -> None:
        """Serve on `port` (a relay coming back where it was), or on a free one."""
        if port is not None:
            controller = Controller(_Collector(self), hostname=HOST, port=port)
            controller.start()
            self._controller, self.port = controller, port
            return
        for _attempt in range(5):
            port = free_port()
            controller = Controller(_Collector(self), hostname=HOST, port=port)
            try:
                controller.start()
            except OSError as exc:  # somebody took the port in between; pick another
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            self._controller, self.port = controller, port
            return
        raise RuntimeError("no free port for the SMTP server")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def take_hold(self) -> bool:
        with self._lock:
            if self._hold_first and not self.held.is_set():
                self.held.set()
                return True
            return False

    async def wait_until_held(self, within: float = DEFAULT_TIMEOUT) -> None:
        """Until a sender is stuck in the held message; fails the test after `within`."""
        if not await asyncio.to_thread(self.held.wait, within):
            pytest.fail(f"no message reached the SMTP server within {within} s")

    def record(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        with self._lock:
            self.messages.append(message)
            self.envelopes.append((sender, recipients))

    def received(self, where: MessageFilter | None = None) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if where is None or where(m)]

    async def wait_for(
        self, where: MessageFilter | None = None, *, count: int = 1, within: float = DEFAULT_TIMEOUT
    ) -> list[EmailMessage]:
        """The messages matching `where`, once at least `count` of them arrived.

        Polls until the deadline and fails the test if they never come.
        """
        deadline = time.monotonic() + within
        while True:
            found = self.received(where)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                pytest.fail(
                    f"expected {count} matching message(s) within {within} s, got {len(found)}; "
                    f"subjects received: {[m['Subject'] for m in self.received()]}"
                )
            await asyncio.sleep(0.02)


def to_address(address: str) -> MessageFilter:
    """Filter: messages addressed to `address`."""
    return lambda message: str(message["To"]).lower() == address.lower()


def with_subject(subject: str) -> MessageFilter:
    return lambda message: str(message["Subject"]) == subject


def body_text(message: EmailMessage) -> str:
    """The text/plain body, with Unix line ends."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the message has no text/plain body"
    content: str = cast(EmailMessage, part).get_content()
    return content.replace("\r\n", "\n")  # SMTP carries CRLF line ends


def link_token(message: EmailMessage, link_prefix: str) -> str:
    """The `token` query parameter of the one link in the body that starts with `link_prefix`
    (e.g. `http://localhost:3009/reset-password`)."""
    links = [
        word
        for line in body_text(message).splitlines()
        for word in line.split()
        if word.startswith(link_prefix + "?")
    ]
    assert len(links) == 1, f"expected one {link_prefix} link in:\n{body_text(message)}"
    tokens = parse_qs(urlsplit(links[0]).query).get("token", [])
    assert len(tokens) == 1 and tokens[0], f"no token in {links[0]}"
    return tokens[0]


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[SmtpServer]:
    """A fresh SMTP server for one test."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
