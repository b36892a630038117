"""Standard Webhooks signing: `whsec_` secrets and the three headers of a delivery.

The signature is HMAC-SHA256, keyed with the secret's base64-decoded bytes, of
`{webhook-id}.{webhook-timestamp}.{body}`, sent as `v1,<base64>`; several signatures (the
new and the previous secret during a rotation) are separated by spaces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The `v1,<base64>` signature of one message with one secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(
    secrets_in_use: Sequence[str], message_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, signed with every secret in use."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, body) for secret in secrets_in_use
        ),
    }
