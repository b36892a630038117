"""Base models of the wire format: camelCase fields, UTC `Z` timestamps, the envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer
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
