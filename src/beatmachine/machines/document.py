"""The machine document: what a front-end machine XML file holds, as typed data.

A document is immutable once published as a version; the API serves it as JSON
and as the front end's XML.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from beatmachine.core.schemas import CamelModel

SLUG_PATTERN = r"^[a-z][a-z0-9_-]{0,49}$"
MAX_PROGRAM_LENGTH = 256
MAX_PROGRAMS = 64
MAX_NOTES = 1024
MAX_INSTRUMENTS = 64

# Characters an XML 1.0 document can hold (no C0 controls but tab, newline, return).
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: str) -> str:
    if _NOT_XML_CHAR.search(value):
        raise ValueError("contains a control character that XML cannot hold")
    return value


# Text is stripped as the XML reader strips it, so every document survives a round trip.
XmlText = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_xml_text)]
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
ShortText = Annotated[XmlText, StringConstraints(max_length=200)]
LongText = Annotated[XmlText, StringConstraints(max_length=2000)]


class Note(CamelModel):
    index: int = Field(ge=0)
    pitch: int = Field(ge=-127, le=127)
    velocity: float | None = Field(None, ge=0.0, le=1.0)
    length: float | None = Field(None, gt=0, le=MAX_PROGRAM_LENGTH)
    hand: Literal["left", "right"] | None = None
    piano_tonic: bool | None = None


class Program(CamelModel):
    title: ShortText
    length: int = Field(ge=1, le=MAX_PROGRAM_LENGTH)
    notes: list[Note] = Field(default_factory=list, max_length=MAX_NOTES)
    separate_hands: bool | None = None
    tonic_pitch: int | None = Field(None, ge=-127, le=127)

    @model_validator(mode="after")
    def _notes_inside(self) -> Self:
        for position, note in enumerate(self.notes):
            if note.index >= self.length:
                raise ValueError(
                    f"note {position} has index {note.index}, outside a program of "
                    f"length {self.length}"
                )
        return self


class Instrument(CamelModel):
    """One instrument; the defaults are those the front end applies to a missing element."""

    id: Slug
    title: ShortText
    enabled: bool = False
    active_program: int = Field(0, ge=0)
    respects_clave: bool = False
    keyed_instrument: bool = False
    pitch_offset: int = Field(0, ge=-127, le=127)
    play_both_hands: bool = False
    left_hand_pitch_offset: int = Field(0, ge=-127, le=127)
    volume: float = Field(1.0, ge=0.0, le=1.0)
    visible: bool | None = None
    tonic_plus8: bool | None = None
    comment: LongText | None = None
    programs: list[Program] = Field(default_factory=list, max_length=MAX_PROGRAMS)
    # The XML element name when it is not just the capitalised id (`KickDrum` for
    # `kickdrum`), kept so exports read as the originals. Importing lower-cases it into
    # the id, so it must spell the id.
    element: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,49}$")] | None = (
        None
    )

    @model_validator(mode="after")
    def _active_program_exists(self) -> Self:
        # Without programs only the front end's default (0) is allowed.
        if self.active_program >= max(1, len(self.programs)):
            raise ValueError(
                f"activeProgram {self.active_program} is outside its {len(self.programs)} programs"
            )
        return self

    @model_validator(mode="after")
    def _element_spells_id(self) -> Self:
        if self.element is not None:
            if self.element.lower() != self.id:
                raise ValueError(f"element {self.element!r} does not spell the id {self.id!r}")
            if self.element == self._default_element_name():
                self.element = None
        return self

    def _default_element_name(self) -> str:
        return self.id[:1].upper() + self.id[1:]

    @property
    def element_name(self) -> str:
        return self.element or self._default_element_name()


class MachineDocument(CamelModel):
    """A whole machine: its settings and instruments."""

    id: Slug
    title: ShortText
    flavor: Annotated[XmlText, StringConstraints(min_length=1, max_length=50)]
    description: LongText = ""
    bpm: int = Field(120, ge=40, le=300)
    key_note: int = Field(0, ge=0, le=11)
    instruments: list[Instrument] = Field(default_factory=list, max_length=MAX_INSTRUMENTS)
    # Machine-level fields of the XML format, kept so a round trip loses nothing.
    machine_key: ShortText | None = None
    author: ShortText | None = None
    time_created: ShortText | None = None
    parent_machine: ShortText | None = None
    machine_version: int | None = None
    enabled: bool | None = None
    clave32: bool | None = None
    volume: float | None = Field(None, ge=0.0, le=1.0)
    auto_control_enabled: bool | None = None
    auto_control_interval: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _unique_instruments(self) -> Self:
        seen: set[str] = set()
        for instrument in self.instruments:
            if instrument.id in seen:
                raise ValueError(f"instrument id {instrument.id!r} appears twice")
            seen.add(instrument.id)
        return self

    def instrument(self, instrument_id: str) -> Instrument | None:
        return next((i for i in self.instruments if i.id == instrument_id), None)
