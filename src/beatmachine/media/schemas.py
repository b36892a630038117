"""Request and response models of the media domain."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, StringConstraints

from beatmachine.core.pagination import Pagination
from beatmachine.core.schemas import CamelModel, RequestModel, Timestamp
from beatmachine.media.models import NAME_MAX

# The front end's sound names: `<instrument>-<pitch>` (`clave-0`, `piano-59`), or with a
# language for spoken sounds, `<language>:<instrument>-<pitch>` (`italian:instructor-5`).
SAMPLE_NAME = re.compile(r"^(?:[a-z][a-z0-9]*:)?[a-z][a-z0-9_]*(?:-[a-z0-9_]+)*-\d{1,3}$")
SampleStatus = Literal["pending", "processing", "ready", "failed"]


def validate_sample_name(value: str) -> str:
    """`value` when it is a sound name of the front end (see `SAMPLE_NAME`)."""
    if len(value) > NAME_MAX or not SAMPLE_NAME.fullmatch(value):
        raise ValueError(
            "must be <instrument>-<pitch> or <language>:<instrument>-<pitch> in lower-case "
            "letters, digits and '_' (e.g. clave-0, italian:instructor-5)"
        )
    return value


SampleName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1),
    AfterValidator(validate_sample_name),
]


class SampleRename(RequestModel):
    name: SampleName


class Quota(CamelModel):
    """What the account keeps in samples, against its quota."""

    used_bytes: int
    limit_bytes: int


class SampleOut(CamelModel):
    """A sample: what was uploaded, where its conversion stands, and once `ready` its
    working form's figures and a link to its preview (valid for `STORAGE_URL_TTL`)."""

    id: str
    name: str
    status: SampleStatus
    error: str | None
    original_filename: str
    format: str
    codec: str
    size_bytes: int
    duration_seconds: float
    stored_bytes: int
    length_samples: int | None
    loudness_lufs: float | None
    true_peak_dbtp: float | None
    gain_db: float | None
    preview_url: str | None
    created_at: Timestamp
    updated_at: Timestamp


class SampleList(CamelModel):
    samples: list[SampleOut]
    quota: Quota
    pagination: Pagination


class SampleDeleted(CamelModel):
    id: str
    deleted: bool
