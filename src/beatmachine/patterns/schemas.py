"""Wire shapes of the patterns domain."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from beatmachine.core.pagination import Pagination
from beatmachine.core.schemas import (
    CamelModel,
    RequestModel,
    Timestamp,
    UpdateModel,
    WholeNumber,
)
from beatmachine.machines.document import MAX_PROGRAMS, SLUG_PATTERN
from beatmachine.users.schemas import plain_text

MAX_INSTRUMENTS = 64
TITLE_MAX = 200
DESCRIPTION_MAX = 2000


# Characters XML 1.0 cannot hold (C0 controls but tab, newline, return; non-characters):
# a saved pattern must always export as the front end's machine XML.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _non_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be empty or only markup")
    return value


def _xml_safe(value: str) -> str:
    if _NOT_XML_CHAR.search(value):
        raise ValueError("contains a control character that the machine XML cannot hold")
    return value


# The same rule in the OpenAPI schema (ECMA-262 and Python regex alike), so clients and
# generated requests know it.
XML_TEXT = Field(
    json_schema_extra={"pattern": r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]*$"}
)

Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX),
    XML_TEXT,
    AfterValidator(plain_text),
    AfterValidator(_non_blank),
    AfterValidator(_xml_safe),
]
Description = Annotated[
    str,
    StringConstraints(max_length=DESCRIPTION_MAX),
    XML_TEXT,
    AfterValidator(plain_text),
    AfterValidator(_xml_safe),
]
Bpm = Annotated[int, Field(ge=80, le=250, strict=True), WholeNumber]
KeyNote = Annotated[int, Field(ge=0, le=11, strict=True), WholeNumber]
# No control characters: PostgreSQL refuses NUL in text, which would otherwise be a 500.
Flavor = Annotated[
    str, StringConstraints(min_length=1, max_length=50, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class InstrumentSetting(RequestModel):
    id: Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
    enabled: Annotated[bool, Field(strict=True)] = True
    active_program: Annotated[int, Field(ge=0, lt=MAX_PROGRAMS, strict=True), WholeNumber] = 0
    volume: Annotated[float, Field(ge=0.0, le=1.0, strict=True)] = 1.0
    pitch_offset: Annotated[int, Field(ge=-127, le=127, strict=True), WholeNumber] = 0


class Configuration(RequestModel):
    instruments: list[InstrumentSetting] = Field(max_length=MAX_INSTRUMENTS)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        ids = [instrument.id for instrument in self.instruments]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"instrument ids must be unique: {', '.join(duplicates)}")
        return self


class PatternCreate(RequestModel):
    title: Title
    description: Description = ""
    flavor: Flavor
    bpm: Bpm
    key_note: KeyNote
    is_public: Annotated[bool, Field(strict=True)] = False
    configuration: Configuration


class PatternUpdate(UpdateModel):
    title: Title | None = None
    description: Description | None = None
    flavor: Flavor | None = None
    bpm: Bpm | None = None
    key_note: KeyNote | None = None
    is_public: Annotated[bool, Field(strict=True)] | None = None
    configuration: Configuration | None = None


class Author(CamelModel):
    id: str
    display_name: str
    avatar: str | None


class ListStats(CamelModel):
    plays: int
    likes: int
    comments: int
    forks: int


class PatternStats(ListStats):
    is_liked_by_current_user: bool


class InstrumentSettingOut(CamelModel):
    id: str
    enabled: bool
    active_program: int
    volume: float
    pitch_offset: int


class ConfigurationOut(CamelModel):
    instruments: list[InstrumentSettingOut]


class PatternListItem(CamelModel):
    id: str
    title: str
    description: str
    flavor: str
    bpm: int
    key_note: int
    is_public: bool
    thumbnail: str | None
    author: Author
    stats: ListStats
    original_id: str | None
    created_at: Timestamp
    updated_at: Timestamp


class PatternOut(PatternListItem):
    configuration: ConfigurationOut
    stats: PatternStats
    machine_id: str
    machine_version: int
    version: int
    share_url: str | None


class PatternList(CamelModel):
    patterns: list[PatternListItem]
    pagination: Pagination


class PatternCreated(CamelModel):
    id: str
    title: str
    description: str
    flavor: str
    bpm: int
    key_note: int
    is_public: bool
    share_url: str | None
    created_at: Timestamp


class PatternUpdated(CamelModel):
    id: str
    title: str
    version: int
    updated_at: Timestamp


class LikeResult(CamelModel):
    liked: bool
    like_count: int


class PlayResult(CamelModel):
    play_count: int


class ForkResult(CamelModel):
    id: str
    title: str
    original_id: str
    created_at: Timestamp


SortOrder = Literal["recent", "popular", "liked"]
