"""Base models of the wire format: camelCase fields, UTC `Z` timestamps, the envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, model_validator
from pydantic.alias_generators import to_camel

from beatmachine.core.ids import isoformat_z

Timestamp = Annotated[datetime, PlainSerializer(isoformat_z, return_type=str, when_used="json")]


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
        # No database stores U+0000 in text (PostgreSQL refuses it outright).
        if _has_nul(data):
            raise ValueError("text must not contain the NUL character (U+0000)")
        return data


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


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


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI declarations of the error envelopes a route can answer with."""
    return {status: {"model": ErrorEnvelope} for status in statuses}
