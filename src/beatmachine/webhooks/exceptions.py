"""Errors of the webhooks domain."""

from __future__ import annotations

from beatmachine.core.errors import AppError, Conflict, ValidationFailed


class WebhookNotFound(AppError):
    code, status, message = "WEBHOOK_NOT_FOUND", 404, "No such webhook endpoint."


class WebhookDeliveryNotFound(AppError):
    code, status, message = "WEBHOOK_DELIVERY_NOT_FOUND", 404, "No such webhook delivery."


class DeliveryPending(Conflict):
    message = "This delivery is still being attempted; wait for it to succeed or fail."


class EndpointDisabled(Conflict):
    message = "This webhook endpoint is disabled; enable it first."


class InvalidEndpointUrl(ValidationFailed):
    message = "The endpoint URL is not allowed."

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The endpoint URL {reason}.",
            details={"fields": [{"field": "url", "message": reason, "type": "url_refused"}]},
        )
