"""The user-editable state of a pattern, and its configuration checked against its
flavor's machine."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.machines import service as machines_service
from beatmachine.patterns.models import Pattern
from beatmachine.patterns.schemas import Configuration

log = structlog.get_logger(__name__)


def snapshot(pattern: Pattern) -> dict[str, Any]:
    """The user-editable state of a pattern, as kept in its versions (camelCase)."""
    return {
        "title": pattern.title,
        "description": pattern.description,
        "flavor": pattern.flavor,
        "bpm": pattern.bpm,
        "keyNote": pattern.key_note,
        "isPublic": pattern.is_public,
        "configuration": pattern.configuration,
    }


def apply_snapshot(pattern: Pattern, state: dict[str, Any]) -> None:
    """Make `pattern` look as `state` (a snapshot) says."""
    pattern.title = state["title"]
    pattern.description = state["description"]
    pattern.flavor = state["flavor"]
    pattern.bpm = state["bpm"]
    pattern.key_note = state["keyNote"]
    pattern.is_public = state["isPublic"]
    pattern.configuration = state["configuration"]


async def validate_configuration(
    session: AsyncSession, flavor: str, configuration: Configuration
) -> machines_service.ValidatedAgainst:
    """Every instrument must exist in the flavor's machine, with a program it has."""
    choices = [
        machines_service.InstrumentChoice(id=i.id, active_program=i.active_program)
        for i in configuration.instruments
    ]
    return await machines_service.validate_choices(
        session, flavor, choices, "configuration.instruments"
    )


def configuration_json(configuration: Configuration) -> dict[str, Any]:
    """A configuration as stored: the JSON of its wire form."""
    return configuration.model_dump(mode="json", by_alias=True)


def instrument_ids(pattern: Pattern) -> list[str]:
    """The instruments a pattern switches on."""
    return [i["id"] for i in pattern.configuration["instruments"] if i.get("enabled", True)]
