"""Outgoing e-mail: SMTP delivery, the outbox folder, and a mail relay that is down."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.jobs.models import FailedJob
from beatmachine.core.mail import Mailer
from beatmachine.core.metrics import Metrics
from beatmachine.core.state import AppState
from tests.factories import login, register
from tests.jobs import settle
from tests.smtp_server import (
    SmtpServer,
    body_text,
    closed_smtp_url,
    free_port,
    link_token,
    smtp_server_fixture,  # noqa: F401  (the smtp_server fixture)
    with_subject,
)
from tests.waiting import eventually

SENDER = "Beat Machine <no-reply@salsanor.no>"
RESET_SUBJECT = "Reset your Beat Machine password"
FORGOT_MESSAGE = "If an account exists for this email, a reset link is on its way."


def sent_count(metrics: Metrics, transport: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "mail_sent_total", {"transport": transport, "outcome": outcome}
    )
    return value or 0.0


async def scraped_mail_count(
    client: httpx.AsyncClient, state: AppState, transport: str, outcome: str
) -> float:
    """`mail_sent_total{transport, outcome}` as `/metrics` shows its scraper."""
    scraper = {"Authorization": f"Bearer {state.settings.metrics_token}"}
    response = await client.get("/metrics", headers=scraper)
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "mail_sent_total" and sample.labels == {
                "transport": transport,
                "outcome": outcome,
            }:
                return float(sample.value)
    return 0.0


def outbox_messages(outbox: Path) -> list[EmailMessage]:
    if not outbox.exists():
        return []
    return [
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        for path in sorted(outbox.glob("*.eml"))
    ]


# --- the Mailer on its own --------------------------------------------------------------


async def test_mailer_delivers_a_message_over_smtp(smtp_server: SmtpServer, tmp_path: Path) -> None:
    metrics = Metrics()
    mailer = Mailer(smtp_server.url, SENDER, tmp_path / "outbox", metrics)

    await mailer.send(mailer.compose("ana@example.com", "Your link", "Open it.\n"))

    [mail] = await smtp_server.wait_for()
    assert mail["From"] == SENDER
    assert mail["To"] == "ana@example.com"
    assert mail["Subject"] == "Your link"
    assert body_text(mail) == "Open it.\n"
    assert smtp_server.envelopes == [("no-reply@salsanor.no", ["ana@example.com"])]
    assert sent_count(metrics, "smtp", "sent") == 1
    assert not (tmp_path / "outbox").exists()


async def test_mailer_keeps_non_ascii_text_intact(smtp_server: SmtpServer, tmp_path: Path) -> None:
    mailer = Mailer(smtp_server.url, SENDER, tmp_path, Metrics())
    subject = "Glem ikke å danse, Señor Bjørn"
    text = "Hei Bjørn,\n\nvelkommen tilbake til rueda-ringen — ¡vamos!\n"

    await mailer.send(mailer.compose("bjorn@example.com", subject, text))

    [mail] = await smtp_server.wait_for()
    assert mail["Subject"] == subject
    assert body_text(mail) == text


async def test_mailer_keeps_a_long_link_whole(smtp_server: SmtpServer, tmp_path: Path) -> None:
    mailer = Mailer(smtp_server.url, SENDER, tmp_path, Metrics())
    token = "T" * 120
    link = f"https://beats.example.org/reset-password?token={token}"

    await mailer.send(mailer.compose("ana@example.com", "Link", f"Here:\n\n{link}\n"))

    [mail] = await smtp_server.wait_for()
    assert link_token(mail, "https://beats.example.org/reset-password") == token


async def test_mailer_raises_and_counts_a_failure_when_smtp_is_unreachable(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    mailer = Mailer(closed_smtp_url(), SENDER, tmp_path / "outbox", metrics)

    with pytest.raises(OSError):
        await mailer.send(mailer.compose("ana@example.com", "Lost", "Nobody will read this.\n"))

    assert sent_count(metrics, "smtp", "failed") == 1
    assert sent_count(metrics, "smtp", "sent") == 0
    assert not (tmp_path / "outbox").exists()


async def test_mailer_writes_an_eml_file_to_the_outbox_without_smtp(tmp_path: Path) -> None:
    metrics = Metrics()
    outbox = tmp_path / "outbox"
    mailer = Mailer("", SENDER, outbox, metrics)

    await mailer.send(mailer.compose("ana@example.com", "Stored", "On disk.\n"))

    [mail] = outbox_messages(outbox)
    assert mail["From"] == SENDER
    assert mail["To"] == "ana@example.com"
    assert mail["Subject"] == "Stored"
    assert body_text(mail) == "On disk.\n"
    assert sent_count(metrics, "outbox", "sent") == 1


# --- the app in the embedded set-up: mail goes to the outbox folder ----------------------


async def test_reset_mail_lands_in_the_outbox_without_smtp(
    client: httpx.AsyncClient, state: AppState, outbox: Path
) -> None:
    account = await register(client)

    response = await client.post("/api/auth/forgot-password", json={"email": account.email})

    assert response.status_code == 200
    await settle(state)
    [mail] = [m for m in outbox_messages(outbox) if m["Subject"] == RESET_SUBJECT]
    assert mail["To"] == account.email
    assert mail["From"] == state.settings.mail_from
    token = link_token(mail, "http://localhost:3009/reset-password")
    reset = await client.post(
        "/api/auth/reset-password", json={"token": token, "newPassword": "fresh password 1"}
    )
    assert reset.status_code == 200
    assert (await login(client, account.email, "fresh password 1")).status_code == 200


async def test_registration_mail_lands_in_the_outbox_without_smtp(
    client: httpx.AsyncClient, state: AppState, outbox: Path
) -> None:
    account = await register(client)

    await settle(state)

    [mail] = outbox_messages(outbox)
    assert mail["To"] == account.email
    assert mail["Subject"] == "Confirm your e-mail for the Beat Machine"
    assert link_token(mail, "http://localhost:3009/verify-email")
    assert await scraped_mail_count(client, state, "outbox", "sent") == 1


@pytest.mark.parametrize("settings_overrides", [{"APP_URL": "https://beats.example.org/"}])
async def test_mail_links_point_at_the_app_url(
    client: httpx.AsyncClient, state: AppState, outbox: Path
) -> None:
    account = await register(client)

    await client.post("/api/auth/forgot-password", json={"email": account.email})

    await settle(state)
    [mail] = [m for m in outbox_messages(outbox) if m["Subject"] == RESET_SUBJECT]
    assert link_token(mail, "https://beats.example.org/reset-password")


# --- the app with its SMTP relay down ------------------------------------------------------


class TestWhenSmtpIsDown:
    """Each mail is tried `JOB_RETRIES` times, then kept as a failed job."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {
            "SMTP_URL": closed_smtp_url(),
            "JOB_RETRIES": 2,
            "JOB_RETRY_BASE_DELAY": 0.01,
        }

    async def test_forgot_password_still_answers_200(
        self, client: httpx.AsyncClient, state: AppState
    ) -> None:
        account = await register(client)

        response = await client.post("/api/auth/forgot-password", json={"email": account.email})
        await settle(state)

        assert response.status_code == 200
        assert response.json() == {"success": True, "data": {"message": FORGOT_MESSAGE}}

    async def test_registration_still_succeeds(
        self, client: httpx.AsyncClient, state: AppState
    ) -> None:
        account = await register(client)
        await settle(state)

        me = await client.get("/api/users/me", headers=account.headers)
        assert me.status_code == 200
        assert me.json()["data"]["email"] == account.email

    async def test_every_attempt_is_counted_as_failed_in_metrics(
        self, client: httpx.AsyncClient, state: AppState
    ) -> None:
        account = await register(client)
        await settle(state)
        failed_before = await scraped_mail_count(client, state, "smtp", "failed")

        await client.post("/api/auth/forgot-password", json={"email": account.email})
        await settle(state)

        assert await scraped_mail_count(client, state, "smtp", "failed") == failed_before + 2
        assert await scraped_mail_count(client, state, "smtp", "sent") == 0

    async def test_mail_that_never_got_through_is_kept_as_a_failed_job(
        self, client: httpx.AsyncClient, state: AppState, db: AsyncSession
    ) -> None:
        await register(client)
        await settle(state)

        [failed] = (await db.execute(select(FailedJob))).scalars().all()
        assert failed.task_name == "mail.send"
        assert failed.status == "failed"
        assert failed.attempts == 2
        assert failed.error.startswith(("ConnectionRefusedError", "SMTPConnectError", "OSError"))

    async def test_mail_is_not_written_to_the_outbox_instead(
        self, client: httpx.AsyncClient, state: AppState, outbox: Path
    ) -> None:
        account = await register(client)
        await client.post("/api/auth/forgot-password", json={"email": account.email})
        await settle(state)

        assert outbox_messages(outbox) == []


class TestWhenSmtpComesBack:
    """A relay that is down delays mail; it does not lose it."""

    @pytest.fixture
    def smtp_port(self) -> int:
        return free_port()

    @pytest.fixture
    def settings_overrides(self, smtp_port: int) -> dict[str, Any]:
        return {
            "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
            "JOB_RETRIES": 100,
            "JOB_RETRY_BASE_DELAY": 0.05,
            "JOB_RETRY_MAX_DELAY": 0.2,
        }

    async def test_reset_mail_is_retried_and_arrives_once_the_server_is_back(
        self, client: httpx.AsyncClient, state: AppState, smtp_port: int
    ) -> None:
        account = await register(client)
        await eventually(lambda: _failed_at_least(state, 1))  # the verification mail
        server = SmtpServer()

        response = await client.post("/api/auth/forgot-password", json={"email": account.email})
        assert response.status_code == 200
        failures = sent_count(state.metrics, "smtp", "failed")
        await eventually(lambda: _failed_at_least(state, failures + 2))
        server.start(port=smtp_port)
        try:
            [mail] = await server.wait_for(with_subject(RESET_SUBJECT), within=10)
            await settle(state)
        finally:
            server.stop()

        assert mail["To"] == account.email
        token = link_token(mail, "http://localhost:3009/reset-password")
        reset = await client.post(
            "/api/auth/reset-password", json={"token": token, "newPassword": "fresh password 1"}
        )
        assert reset.status_code == 200
        assert len(server.received(with_subject(RESET_SUBJECT))) == 1


async def _failed_at_least(state: AppState, count: float) -> bool:
    return sent_count(state.metrics, "smtp", "failed") >= count
