"""Tables of the webhooks domain: endpoints, the deliveries made to them, and every
attempt of a delivery."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from beatmachine.core.db import Base, IdMixin, TimestampMixin
from beatmachine.core.ids import utcnow

URL_MAX = 2048
DESCRIPTION_MAX = 500


class WebhookEndpoint(IdMixin, TimestampMixin, Base):
    """A receiver: where deliveries go, which events it takes, the secret that signs them
    (and, during a rotation, the previous one until `previous_secret_expires_at`)."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(URL_MAX))
    description: Mapped[str] = mapped_column(String(DESCRIPTION_MAX), default="")
    events: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None]
    secret_rotated_at: Mapped[datetime | None]
    # Since when every attempt has failed (cleared by a success); past
    # `WEBHOOK_DISABLE_AFTER` the endpoint is disabled.
    failing_since: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    # `admin` (switched off by an administrator) or `failing` (switched off automatically).
    disabled_reason: Mapped[str | None] = mapped_column(String(20))
    created_by: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL")
    )


class WebhookDelivery(IdMixin, Base):
    """One message to one endpoint: its id is the `webhook-id` header (the same on every
    attempt), its body is fixed when it is made. `attempts` counts the attempts so far,
    `round_start` is the number of the first attempt of the current round (a redelivery
    starts a new round with a fresh set of retries)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # An endpoint's deliveries, newest first.
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
        # The oldest deliveries, removed after the retention period.
        Index("ix_webhook_deliveries_created", "created_at"),
    )

    endpoint_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(50))
    # The domain event it comes from (None for a test ping).
    event_id: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    # pending (an attempt is due), succeeded, failed (gave up), skipped (the content is
    # no longer public).
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    round_start: Mapped[int] = mapped_column(Integer, default=1)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_response_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookAttempt(IdMixin, Base):
    """One try of a delivery: when, how long, what came back (the first bytes of the body)
    or what went wrong."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery_number", "delivery_id", "number"),)

    delivery_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
