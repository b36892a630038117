"""The machines service: publishing rules and the questions other domains ask it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.errors import ValidationFailed
from beatmachine.core.state import AppState
from beatmachine.machines import service
from beatmachine.machines.document import MachineDocument
from beatmachine.machines.exceptions import MachineExists, MachineNotFound
from beatmachine.machines.service import InstrumentChoice, ValidatedAgainst
from beatmachine.machines.xml import parse_machine_xml
from tests.machines.helpers import real_machine_xml, stored_versions

FIELD = "configuration.instruments"


def salsa_document(**changes: Any) -> MachineDocument:
    return parse_machine_xml(real_machine_xml("salsa")).model_copy(update=changes)


async def publish(
    state: AppState, document: MachineDocument, **options: Any
) -> service.PublishResult:
    """Publish in a transaction of its own, committed."""
    async with state.sessionmaker() as session, session.begin():
        return await service.publish(session, state.cache, document, author_id=None, **options)


@pytest.fixture
async def salsa(state: AppState) -> service.PublishResult:
    return await publish(state, salsa_document())


@pytest.fixture
async def session(state: AppState) -> AsyncIterator[AsyncSession]:
    async with state.sessionmaker() as opened:
        yield opened


def failed_fields(caught: pytest.ExceptionInfo[ValidationFailed]) -> list[dict[str, str]]:
    assert caught.value.details is not None
    fields: list[dict[str, str]] = caught.value.details["fields"]
    return fields


# --- validate_choices -------------------------------------------------------------------


async def test_valid_choices_return_the_machine_version(
    session: AsyncSession, salsa: service.PublishResult
) -> None:
    result = await service.validate_choices(
        session, "Salsa", [InstrumentChoice("clave", 0), InstrumentChoice("piano", 20)], FIELD
    )

    assert result == ValidatedAgainst(machine_id="salsa", version=1)


async def test_choices_are_checked_against_the_current_version(
    state: AppState, session: AsyncSession, salsa: service.PublishResult
) -> None:
    await publish(state, salsa_document(bpm=190))

    result = await service.validate_choices(session, "Salsa", [InstrumentChoice("clave", 1)], FIELD)

    assert result == ValidatedAgainst(machine_id="salsa", version=2)


async def test_unknown_instrument_names_its_id_field(
    session: AsyncSession, salsa: service.PublishResult
) -> None:
    choices = [InstrumentChoice("clave", 0), InstrumentChoice("kickdrum", 0)]

    with pytest.raises(ValidationFailed) as caught:
        await service.validate_choices(session, "Salsa", choices, FIELD)

    assert caught.value.code == "VALIDATION_ERROR"
    fields = failed_fields(caught)
    assert [(f["field"], f["type"]) for f in fields] == [
        ("configuration.instruments.1.id", "unknown_instrument")
    ]
    assert "kickdrum" in fields[0]["message"]


@pytest.mark.parametrize("program", [2, -1])
async def test_program_out_of_range_names_its_active_program_field(
    session: AsyncSession, salsa: service.PublishResult, program: int
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await service.validate_choices(
            session, "Salsa", [InstrumentChoice("clave", program)], FIELD
        )

    fields = failed_fields(caught)
    assert [(f["field"], f["type"]) for f in fields] == [
        ("configuration.instruments.0.activeProgram", "out_of_range")
    ]
    assert fields[0]["message"] == "clave has 2 programs"


async def test_every_bad_choice_is_reported(
    session: AsyncSession, salsa: service.PublishResult
) -> None:
    choices = [
        InstrumentChoice("gong", 0),
        InstrumentChoice("clave", 0),
        InstrumentChoice("bass", 99),
    ]

    with pytest.raises(ValidationFailed) as caught:
        await service.validate_choices(session, "Salsa", choices, FIELD)

    assert [f["field"] for f in failed_fields(caught)] == [
        "configuration.instruments.0.id",
        "configuration.instruments.2.activeProgram",
    ]


async def test_unknown_flavor_names_the_flavor_field(
    session: AsyncSession, salsa: service.PublishResult
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await service.validate_choices(session, "Tango", [InstrumentChoice("clave", 0)], FIELD)

    fields = failed_fields(caught)
    assert [(f["field"], f["type"]) for f in fields] == [("flavor", "enum")]
    assert fields[0]["message"] == "must be one of Salsa"


async def test_known_flavors_lists_every_machine(state: AppState, session: AsyncSession) -> None:
    await publish(state, salsa_document())
    await publish(state, parse_machine_xml(real_machine_xml("merengue")))

    assert await service.known_flavors(session) == ["Merengue", "Salsa"]


async def test_instrument_titles_name_every_instrument_of_every_machine(
    state: AppState, session: AsyncSession
) -> None:
    salsa = salsa_document()
    merengue = parse_machine_xml(real_machine_xml("merengue"))
    await publish(state, salsa)
    await publish(state, merengue)
    expected: dict[str, str] = {}
    for document in (merengue, salsa):  # by machine id: an id in both takes Merengue's
        for instrument in document.instruments:
            expected.setdefault(instrument.id, instrument.title)

    assert await service.instrument_titles(session, state.memo) == expected


async def test_instrument_titles_follow_the_current_version(
    state: AppState, salsa: service.PublishResult
) -> None:
    async with state.sessionmaker() as session:
        assert (await service.instrument_titles(session, state.memo))["clave"] == "Clave"
    renamed = [
        instrument.model_copy(update={"title": "Clave 3-2"})
        if instrument.id == "clave"
        else instrument
        for instrument in salsa.published.document.instruments
    ]

    await publish(state, salsa_document(instruments=renamed))

    async with state.sessionmaker() as session:
        assert (await service.instrument_titles(session, state.memo))["clave"] == "Clave 3-2"


async def test_instrument_titles_are_read_from_the_memo_once_parsed(
    state: AppState, salsa: service.PublishResult
) -> None:
    async with state.sessionmaker() as session:
        await service.instrument_titles(session, state.memo)
    # What the memo keeps for this content is what the next call answers with: the
    # document is not parsed again.
    key = f"machines:titles:{salsa.published.version.content_hash}"
    assert await state.memo.get(key) is not None
    await state.memo.set(key, b'{"clave": "Kept"}')

    async with state.sessionmaker() as session:
        assert (await service.instrument_titles(session, state.memo))["clave"] == "Kept"


# --- publish ----------------------------------------------------------------------------


async def test_publishing_the_same_content_can_be_skipped(
    state: AppState, db: AsyncSession, salsa: service.PublishResult
) -> None:
    result = await publish(state, salsa_document(), skip_if_unchanged=True)

    assert result.changed is False
    assert result.published.version.version == 1
    assert await stored_versions(db, "salsa") == [1]


async def test_publishing_changed_content_makes_the_next_version(
    state: AppState, db: AsyncSession, salsa: service.PublishResult
) -> None:
    result = await publish(state, salsa_document(key_note=3), skip_if_unchanged=True)

    assert result.changed is True
    assert result.published.version.version == 2
    assert result.published.machine.current_version == 2
    assert await stored_versions(db, "salsa") == [1, 2]


async def test_create_refuses_an_existing_machine(
    state: AppState, db: AsyncSession, salsa: service.PublishResult
) -> None:
    with pytest.raises(MachineExists):
        await publish(state, salsa_document(key_note=3), create=True)

    assert await stored_versions(db, "salsa") == [1]


async def test_update_refuses_a_missing_machine(state: AppState, db: AsyncSession) -> None:
    with pytest.raises(MachineNotFound):
        await publish(state, salsa_document(), create=False)

    assert await stored_versions(db, "salsa") == []


async def test_empty_title_becomes_the_flavor_machine_title(
    salsa: service.PublishResult,
) -> None:
    assert salsa.published.machine.title == "Salsa Beat Machine"
    assert salsa.published.document.title == "Salsa Beat Machine"


def test_content_hash_follows_the_content() -> None:
    document = salsa_document()

    assert service.content_hash(document) == service.content_hash(salsa_document())
    assert service.content_hash(document) != service.content_hash(salsa_document(bpm=181))


async def test_rollback_republishes_the_old_document(
    state: AppState, session: AsyncSession, salsa: service.PublishResult
) -> None:
    await publish(state, salsa_document(bpm=200))

    async with state.sessionmaker() as rollback_session, rollback_session.begin():
        published = await service.rollback(
            rollback_session, state.cache, "salsa", 1, author_id=None
        )

    assert published.version.version == 3
    assert published.version.change_note == "Rollback to version 1"
    assert published.document == salsa.published.document
    assert published.version.content_hash == salsa.published.version.content_hash
