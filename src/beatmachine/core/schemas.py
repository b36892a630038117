"""Base models of the wire format: camelCase fields, UTC `Z` timestamps, the envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Path
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from beatmachine.core.ids import isoformat_z

Timestamp = Annotated[datetime, PlainSerializer(isoformat_z, return_type=str, when_used="json")]

# What an INTEGER column holds on every database we run on (32-bit signed): every integer a
# request carries is bounded to it, or tighter where the data model says so, so a huge
# number is a 422 and never a database error.
INT32_MAX = 2_147_483_647
INT32_MIN = -INT32_MAX - 1
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
# A version number (of a pattern or a machine) in a path: any integer the column holds,
# and one that names no version is that resource's 404.
VersionPath = Annotated[int, Path(ge=INT32_MIN, le=INT32_MAX)]


def _whole_number(value: object) -> object:
    # JSON Schema's `integer` is any number without a fraction, so `120.0` is the integer
    # 120 that the schema promises to take; `120.5`, `true` and `"120"` stay refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Metadata of a strict integer field (`Annotated[int, Field(strict=True), WholeNumber]`).
WholeNumber = BeforeValidator(_whole_number)


class CamelModel(BaseModel):
    """Responses: camelCase on the wire, built from attributes or keyword names."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class RequestModel(CamelModel):
    """Requests: camelCase only, unknown fields refused (no mass assignment)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=False,
        extra="forbid",
        str_strip_whitespace=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        # No database stores U+0000 in text (PostgreSQL refuses it outright), nor a lone
        # surrogate (`"\\ud800"` in JSON), which no encoding can write.
        if _has_unstorable_text(data):
            raise ValueError("text must not contain the NUL character (U+0000) or a lone surrogate")
        return data


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _has_unstorable_text(value: Any) -> bool:
    if isinstance(value, str):
        return _unstorable(value)
    if isinstance(value, dict):
        return any(_has_unstorable_text(k) or _has_unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_unstorable_text(item) for item in value)
    return False


def not_nullable(schema: dict[str, Any]) -> None:
    """`json_schema_extra` of an optional field that is never null: its JSON schema
    without the `null` branch and the `null` default."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [option for option in options if option.get("type") != "null"]
        if len(kept) == 1:
            del schema["anyOf"]
            schema.update(kept[0])
        else:
            schema["anyOf"] = kept
    if "default" in schema and schema["default"] is None:
        del schema["default"]


def _fields_not_nullable(schema: dict[str, Any]) -> None:
    for field in schema.get("properties", {}).values():
        not_nullable(field)


def refuse_null(value: object) -> object:
    """A `before` validator of a field that may be left out but is never null."""
    if value is None:
        raise ValueError("must not be null")
    return value


class UpdateModel(RequestModel):
    """Partial updates: every field may be left out (it keeps its value), none may be null
    (there is nothing to clear), and the OpenAPI schema says so."""

    model_config = ConfigDict(json_schema_extra=_fields_not_nullable)

    _not_null = field_validator("*", mode="before")(refuse_null)


DataT = TypeVar("DataT")


class Envelope(BaseModel, Generic[DataT]):
    success: Literal[True] = True
    data: DataT


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, object] | None = None


class ErrorEnvelope(BaseModel):
    success: Literal[False] = False
    error: ErrorDetail


class Message(CamelModel):
    message: str


def ok(data: DataT) -> Envelope[DataT]:
    return Envelope[DataT](data=data)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the error envelopes a route can answer with."""
    return {status: {"model": ErrorEnvelope} for status in statuses}


# What any operation can answer: 422 (a NUL in the URL is refused before routing, besides
# its own validation), 429 (the per-client limit) and 500. Declared once, for the app.
COMMON_ERROR_STATUSES = (422, 429, 500)
# What any operation that takes a body (POST, PUT, PATCH) can answer besides: a body over
# `MAX_BODY_BYTES` (413) or not JSON (415), refused before routing.
BODY_ERROR_STATUSES = (413, 415)
BODY_METHODS = ("post", "put", "patch")
# Reads that send an ETag answer a matching `If-None-Match` with 304 and no body.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified: the `If-None-Match` ETag is still current (no body)."}
}
