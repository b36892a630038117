"""Wire shapes of the users domain."""

from __future__ import annotations

import base64
import binascii
import html
import re
from typing import Annotated, Literal

import nh3
from pydantic import AfterValidator, Field, StringConstraints, field_validator

from beatmachine.core.schemas import (
    CamelModel,
    RequestModel,
    Timestamp,
    UpdateModel,
    WholeNumber,
    not_nullable,
    refuse_null,
)

_DATA_URL = re.compile(r"^data:(image/(?:png|jpeg|webp|gif));base64,([A-Za-z0-9+/=\s]+)$")
AVATAR_URL_MAX_LENGTH = 2048


_PLAIN_TEXT_PASSES = 8


def plain_text(value: str) -> str:
    """User text is stored as plain text: every HTML tag removed, so it can never run as
    markup, and entities decoded, so `&` and `<3` come back as typed (and never grow past
    the column's length). Cleaning repeats until stable, so escaped markup such as
    `&lt;img ...&gt;` cannot decode into a live tag."""
    text = value
    for _ in range(_PLAIN_TEXT_PASSES):
        cleaned = html.unescape(nh3.clean(text, tags=set()))
        if cleaned == text:
            return text.strip()
        text = cleaned
    raise ValueError("contains markup that could not be removed")


def _non_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be empty or only markup")
    return value


DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(plain_text),
    AfterValidator(_non_blank),
]
Bio = Annotated[str, StringConstraints(max_length=500), AfterValidator(plain_text)]


def validate_avatar(value: str) -> str:
    """An http(s) URL of an image (fetched by a job), or a base64 data URL of a PNG, JPEG,
    WebP or GIF image (what its bytes really are is checked when it is taken)."""
    value = value.strip()
    if value.startswith(("https://", "http://")):
        if len(value) > AVATAR_URL_MAX_LENGTH or any(ch.isspace() for ch in value):
            raise ValueError(f"must be a URL of at most {AVATAR_URL_MAX_LENGTH} characters")
        return value
    match = _DATA_URL.match(value)
    if not match:
        raise ValueError("must be an http(s) URL or a data:image/...;base64 URL")
    media_type, payload = match.groups()
    try:
        raw = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("is not valid base64") from exc
    if not raw:
        raise ValueError("holds no image")
    return f"data:{media_type};base64,{base64.b64encode(raw).decode()}"


Avatar = Annotated[str, AfterValidator(validate_avatar)]

Flavor = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Theme = Literal["light", "dark", "auto"]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]


class Preferences(CamelModel):
    default_bpm: int
    default_key: int
    default_flavor: str
    use_glass_ui: bool = Field(alias="useGlassUI")
    auto_play: bool
    show_beat_numbers: bool
    default_volume: float
    theme: Theme
    language: str
    notify_likes: bool
    notify_comments: bool
    notify_follows: bool
    notify_newsletter: bool


class PreferencesUpdate(UpdateModel):
    default_bpm: Annotated[int, Field(ge=80, le=250, strict=True), WholeNumber] | None = None
    default_key: Annotated[int, Field(ge=0, le=11, strict=True), WholeNumber] | None = None
    default_flavor: Flavor | None = None
    use_glass_ui: Annotated[bool, Field(strict=True)] | None = Field(None, alias="useGlassUI")
    auto_play: Annotated[bool, Field(strict=True)] | None = None
    show_beat_numbers: Annotated[bool, Field(strict=True)] | None = None
    default_volume: Annotated[float, Field(ge=0.0, le=1.0, strict=True)] | None = None
    theme: Theme | None = None
    language: Language | None = None
    notify_likes: Annotated[bool, Field(strict=True)] | None = None
    notify_comments: Annotated[bool, Field(strict=True)] | None = None
    notify_follows: Annotated[bool, Field(strict=True)] | None = None
    notify_newsletter: Annotated[bool, Field(strict=True)] | None = None


class ProfileUpdate(RequestModel):
    """Any of the fields; `bio` and `avatar` may be null to clear them, a name cannot be."""

    display_name: DisplayName | None = Field(None, json_schema_extra=not_nullable)
    bio: Bio | None = None
    avatar: Avatar | None = None

    _name_not_null = field_validator("display_name", mode="before")(refuse_null)


class OwnStats(CamelModel):
    patterns_created: int
    patterns_shared: int
    followers: int
    following: int


class PublicStats(CamelModel):
    patterns_shared: int
    followers: int


class AvatarFetch(CamelModel):
    """An image URL given as avatar that is not the avatar yet: `pending` while it is
    fetched, `failed` with the reason."""

    url: str
    status: Literal["pending", "failed"]
    error: str | None


class Me(CamelModel):
    id: str
    email: str
    display_name: str
    avatar: str | None
    bio: str | None
    avatar_fetch: AvatarFetch | None
    email_verified: bool
    is_admin: bool
    preferences: Preferences
    stats: OwnStats
    deletion_scheduled_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


class ProfileUpdated(CamelModel):
    id: str
    display_name: str
    bio: str | None
    avatar: str | None
    avatar_fetch: AvatarFetch | None
    updated_at: Timestamp


class PreferencesEnvelope(CamelModel):
    preferences: Preferences


class PublicProfile(CamelModel):
    id: str
    display_name: str
    avatar: str | None
    bio: str | None
    stats: PublicStats
    is_following: bool
    created_at: Timestamp
