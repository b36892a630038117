"""Request and response models of the webhooks domain."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field, StringConstraints

from beatmachine.core.pagination import Pagination
from beatmachine.core.schemas import CamelModel, RequestModel, Timestamp, UpdateModel
from beatmachine.users.schemas import plain_text
from beatmachine.webhooks.models import DESCRIPTION_MAX, URL_MAX

# The events an endpoint can subscribe to.
EventType = Literal["pattern.created", "pattern.liked", "user.followed", "comment.created"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
# The type of the deliveries `POST /admin/webhooks/:id/test` sends.
PING = "webhook.ping"
DeliveryStatus = Literal["pending", "succeeded", "failed", "skipped"]


def _distinct(events: list[str]) -> list[str]:
    return list(dict.fromkeys(events))


EndpointUrl = Annotated[str, StringConstraints(min_length=1, max_length=URL_MAX)]
Events = Annotated[
    list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES) * 2), AfterValidator(_distinct)
]
Description = Annotated[
    str, StringConstraints(max_length=DESCRIPTION_MAX), AfterValidator(plain_text)
]


class EndpointCreate(RequestModel):
    """An endpoint to register: an http(s) URL, the events it receives, what it is for."""

    url: EndpointUrl
    events: Events
    description: Description = ""


class EndpointUpdate(UpdateModel):
    """Any of the fields; `enabled: true` switches a disabled endpoint on again."""

    url: EndpointUrl | None = None
    events: Events | None = None
    description: Description | None = None
    enabled: bool | None = None


class EndpointOut(CamelModel):
    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_at: Timestamp | None
    disabled_reason: Literal["admin", "failing"] | None
    failing_since: Timestamp | None
    secret_rotated_at: Timestamp | None
    previous_secret_expires_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


class EndpointCreated(EndpointOut):
    """The new endpoint with its signing secret: shown this once."""

    secret: str


class EndpointList(CamelModel):
    endpoints: list[EndpointOut]
    pagination: Pagination


class SecretRotated(CamelModel):
    """The new secret (shown this once); the previous one still signs until
    `previousSecretExpiresAt`."""

    secret: str
    previous_secret_expires_at: Timestamp | None
    endpoint: EndpointOut


class DeliveryOut(CamelModel):
    id: str
    endpoint_id: str
    event_type: str
    event_id: str | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: Timestamp | None
    last_attempt_at: Timestamp | None
    last_response_status: int | None
    last_error: str | None
    created_at: Timestamp


class DeliveryList(CamelModel):
    deliveries: list[DeliveryOut]
    pagination: Pagination


class AttemptOut(CamelModel):
    number: int
    attempted_at: Timestamp
    duration_ms: int
    succeeded: bool
    response_status: int | None
    response_body: str | None
    error: str | None


class DeliveryDetail(DeliveryOut):
    """A delivery with the body it sends and every attempt, the first first."""

    payload: dict[str, Any]
    attempt_log: list[AttemptOut]
