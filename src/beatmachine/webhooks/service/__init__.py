"""The webhooks domain's logic, one concern per module: endpoints, deliveries, and the
job that sends them."""

from beatmachine.webhooks.service._deliveries import (
    DELIVER_JOB,
    DeliveryWithAttempts,
    delivery_with_attempts,
    get_delivery,
    list_deliveries,
    payload,
    prune_deliveries,
    record_event,
    redeliver,
    send_ping,
)
from beatmachine.webhooks.service._endpoints import (
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    list_endpoints,
    rotate_secret,
    update_endpoint,
)
from beatmachine.webhooks.service._sending import (
    RESPONSE_BODY_MAX,
    USER_AGENT,
    deliver,
    outbound_client,
)

__all__ = [
    "DELIVER_JOB",
    "RESPONSE_BODY_MAX",
    "USER_AGENT",
    "DeliveryWithAttempts",
    "create_endpoint",
    "delete_endpoint",
    "deliver",
    "delivery_with_attempts",
    "get_delivery",
    "get_endpoint",
    "list_deliveries",
    "list_endpoints",
    "outbound_client",
    "payload",
    "prune_deliveries",
    "record_event",
    "redeliver",
    "rotate_secret",
    "send_ping",
    "update_endpoint",
]
