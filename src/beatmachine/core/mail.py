"""Outgoing e-mail: SMTP (`SMTP_URL`) or, in the embedded set-up, `.eml` files in an outbox.

A request never sends mail itself: `Mailer.queue` puts the message on the job queue as
part of the request's transaction, and a worker sends it. A relay that is down makes the
job fail and come back later (with backoff), so the message arrives once the relay is up.
"""

from __future__ import annotations

from email import message_from_string, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib
import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.ids import new_id
from beatmachine.core.jobs import JobQueue
from beatmachine.core.metrics import Metrics

log = structlog.get_logger(__name__)

MAIL_JOB = "mail.send"
SMTP_TIMEOUT_SECONDS = 15


class Mailer:
    def __init__(
        self,
        smtp_url: str,
        sender: str,
        outbox: Path,
        metrics: Metrics,
        jobs: JobQueue | None = None,
    ) -> None:
        """Send with `smtp_url` (or into the `outbox` folder when empty); with `jobs`, the
        mail job is registered there and `queue` can be used."""
        self._smtp_url = smtp_url
        self.sender = sender
        self._outbox = outbox
        self._metrics = metrics
        self._jobs = jobs
        if jobs is not None:
            jobs.register(MAIL_JOB, self._send_job)

    def compose(self, to: str, subject: str, text: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(text)
        return message

    def queue(self, session: AsyncSession, message: EmailMessage) -> None:
        """Send `message` once the session's transaction has committed (never for a
        change that was rolled back), retrying while the relay is down."""
        if self._jobs is None:
            raise RuntimeError("this mailer has no job queue")
        self._jobs.enqueue(session, MAIL_JOB, message=message.as_string())

    async def _send_job(self, message: str) -> None:
        parsed = message_from_string(message, policy=policy.default)
        await self.send(parsed)

    async def send(self, message: EmailMessage) -> None:
        """Hand `message` to the transport now; raises when it could not."""
        transport = "smtp" if self._smtp_url else "outbox"
        try:
            if self._smtp_url:
                await self._send_smtp(message)
            else:
                await self._write_outbox(message)
        except Exception:
            self._metrics.mail_sent.labels(transport, "failed").inc()
            log.warning("mail_failed", to=message["To"], subject=message["Subject"])
            raise
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
            timeout=SMTP_TIMEOUT_SECONDS,
        )

    async def _write_outbox(self, message: EmailMessage) -> None:
        folder = anyio.Path(self._outbox)
        await folder.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name and renamed: a reader never sees half a file.
        name = new_id("eml")
        partial = folder / f".{name}.tmp"
        await partial.write_bytes(bytes(message))
        await partial.rename(folder / f"{name}.eml")
        log.info(
            "mail_outbox", to=message["To"], subject=message["Subject"], body=message.get_content()
        )
