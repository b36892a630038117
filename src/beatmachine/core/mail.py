"""Outgoing e-mail: SMTP (`SMTP_URL`) or, in the embedded set-up, `.eml` files in an outbox.

Sending never blocks a request: `send_later` hands the message to a background
task, tracked so that shutdown waits for it.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib
import anyio
import structlog

from beatmachine.core.ids import new_id
from beatmachine.core.metrics import Metrics

log = structlog.get_logger(__name__)


class Mailer:
    def __init__(self, smtp_url: str, sender: str, outbox: Path, metrics: Metrics) -> None:
        self._smtp_url = smtp_url
        self.sender = sender
        self._outbox = outbox
        self._metrics = metrics
        self._tasks: set[asyncio.Task[None]] = set()

    def compose(self, to: str, subject: str, text: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(text)
        return message

    def send_later(self, message: EmailMessage) -> None:
        task = asyncio.create_task(self.send(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, message: EmailMessage) -> None:
        transport = "smtp" if self._smtp_url else "outbox"
        try:
            if self._smtp_url:
                await self._send_smtp(message)
            else:
                await self._write_outbox(message)
        except Exception:
            self._metrics.mail_sent.labels(transport, "failed").inc()
            log.exception("mail_failed", to=message["To"], subject=message["Subject"])
            return
        self._metrics.mail_sent.labels(transport, "sent").inc()
        log.info("mail_sent", transport=transport, to=message["To"], subject=message["Subject"])

    async def _send_smtp(self, message: EmailMessage) -> None:
        url = urlsplit(self._smtp_url)
        use_tls = url.scheme == "smtps"
        await aiosmtplib.send(
            message,
            hostname=url.hostname or "127.0.0.1",
            port=url.port or (465 if use_tls else 25),
            username=unquote(url.username) if url.username else None,
            password=unquote(url.password) if url.password else None,
            use_tls=use_tls,
            start_tls=True if url.scheme == "smtp+starttls" else None,
            timeout=15,
        )

    async def _write_outbox(self, message: EmailMessage) -> None:
        folder = anyio.Path(self._outbox)
        await folder.mkdir(parents=True, exist_ok=True)
        await (folder / f"{new_id('eml')}.eml").write_bytes(bytes(message))
        log.info(
            "mail_outbox", to=message["To"], subject=message["Subject"], body=message.get_content()
        )

    async def drain(self) -> None:
        """Wait for messages still being sent (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
