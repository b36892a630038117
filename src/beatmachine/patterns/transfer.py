"""Export and import of patterns: a documented, versioned JSON format, and the front
end's machine XML (so a saved pattern opens in the static front end)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.errors import ValidationFailed, validation_details
from beatmachine.core.ids import isoformat_z, utcnow
from beatmachine.core.schemas import RequestModel
from beatmachine.machines import service as machines_service
from beatmachine.machines.document import MachineDocument
from beatmachine.machines.xml import MachineXmlError, machine_to_xml, parse_machine_xml
from beatmachine.patterns import service
from beatmachine.patterns.models import Pattern
from beatmachine.patterns.schemas import PatternCreate

FORMAT = "beatmachine.pattern"
BUNDLE_FORMAT = "beatmachine.patterns"
FORMAT_VERSION = 1
MAX_IMPORT_BYTES = 1024 * 1024


class PatternFile(RequestModel):
    """Version 1 of the pattern export format."""

    format: Literal["beatmachine.pattern"]
    format_version: Literal[1]
    pattern: PatternCreate
    machine: dict[str, Any] | None = None
    exported_at: str | None = None
    source_id: str | None = Field(None, max_length=64)


def to_json(pattern: Pattern) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "exportedAt": isoformat_z(utcnow()),
        "sourceId": pattern.id,
        "machine": {"id": pattern.machine_id, "version": pattern.machine_version},
        "pattern": service.snapshot(pattern),
    }


def bundle(patterns: list[Pattern]) -> dict[str, Any]:
    return {
        "format": BUNDLE_FORMAT,
        "formatVersion": FORMAT_VERSION,
        "exportedAt": isoformat_z(utcnow()),
        "patterns": [to_json(p) for p in patterns],
    }


async def to_machine_document(session: AsyncSession, pattern: Pattern) -> MachineDocument:
    """The pattern's machine (the version it was saved against) with its settings applied:
    instruments it does not mention are switched off."""
    published = await machines_service.get_published(
        session, pattern.machine_id, pattern.machine_version
    )
    settings = {i["id"]: i for i in pattern.configuration["instruments"]}
    instruments = []
    for instrument in published.document.instruments:
        chosen = settings.get(instrument.id)
        if chosen is None:
            instruments.append(instrument.model_copy(update={"enabled": False}))
        else:
            instruments.append(
                instrument.model_copy(
                    update={
                        "enabled": chosen["enabled"],
                        "active_program": chosen["activeProgram"],
                        "volume": chosen["volume"],
                        "pitch_offset": chosen["pitchOffset"],
                    }
                )
            )
    return published.document.model_copy(
        update={
            "title": pattern.title,
            "description": pattern.description,
            "bpm": pattern.bpm,
            "key_note": pattern.key_note,
            "instruments": instruments,
        }
    )


async def to_xml(session: AsyncSession, pattern: Pattern) -> bytes:
    return machine_to_xml(await to_machine_document(session, pattern))


def _refuse(message: str, details: dict[str, Any] | None = None) -> ValidationFailed:
    return ValidationFailed(message, details=details)


def parse_json_file(data: Any, *, title: str | None = None) -> PatternCreate:
    """A pattern export file (format version 1) as a create request; `title` replaces
    the file's title."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _refuse(f'Not a pattern file: expected "format": "{FORMAT}".')
    if data.get("formatVersion") != FORMAT_VERSION:
        raise _refuse(f"Unsupported formatVersion; this server reads version {FORMAT_VERSION}.")
    if title and isinstance(data.get("pattern"), dict):
        data = {**data, "pattern": {**data["pattern"], "title": title}}
    try:
        return PatternFile.model_validate(data).pattern
    except ValidationError as exc:
        raise _refuse("The pattern file is not valid.", validation_details(exc.errors())) from exc


def parse_xml_file(data: bytes, *, title: str | None) -> PatternCreate:
    """A front-end machine XML file as a create request: its flavor, tempo, key and each
    instrument's settings (the instruments themselves must exist in our machine)."""
    try:
        document = parse_machine_xml(data)
    except MachineXmlError as exc:
        raise _refuse(f"The machine XML was refused: {exc}", {"element": exc.element}) from exc
    try:
        return PatternCreate.model_validate(
            {
                "title": title or document.title or f"Imported {document.flavor} pattern",
                "description": document.description,
                "flavor": document.flavor,
                "bpm": document.bpm,
                "keyNote": document.key_note,
                "isPublic": False,
                "configuration": {
                    "instruments": [
                        {
                            "id": i.id,
                            "enabled": i.enabled,
                            "activeProgram": i.active_program,
                            "volume": i.volume,
                            "pitchOffset": i.pitch_offset,
                        }
                        for i in document.instruments
                    ]
                },
            }
        )
    except ValidationError as exc:
        raise _refuse(
            "The machine XML does not make a valid pattern.", validation_details(exc.errors())
        ) from exc
