"""Wire shapes of the machines domain."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from beatmachine.core.pagination import Pagination
from beatmachine.core.schemas import INT32_MAX, CamelModel, Int32, RequestModel, Timestamp
from beatmachine.machines.document import (
    MAX_INSTRUMENTS,
    MAX_NOTES,
    MAX_PROGRAM_LENGTH,
    MAX_PROGRAMS,
    Instrument,
    MachineDocument,
    Note,
    Program,
)

ChangeNote = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class MachineSummary(CamelModel):
    id: str
    title: str
    flavor: str
    description: str
    current_version: int


class MachineList(CamelModel):
    machines: list[MachineSummary]


class MachineOut(MachineDocument):
    """A machine document plus the version it is."""

    version: int


# The request side of a machine document, with every integer bounded: the document leaves
# some open (its validators refuse what is out of range, but neither the schema says so
# nor, for two machine-level fields, anything at all: a machine must hash, store and
# render). These bounds belong on the document itself; until then they stand here.
class NoteWrite(Note):
    index: int = Field(ge=0, lt=MAX_PROGRAM_LENGTH)


class ProgramWrite(Program):
    notes: list[NoteWrite] = Field(default_factory=list, max_length=MAX_NOTES)  # type: ignore[assignment]


class InstrumentBody(Instrument):
    active_program: int = Field(0, ge=0, lt=MAX_PROGRAMS)
    programs: list[ProgramWrite] = Field(default_factory=list, max_length=MAX_PROGRAMS)  # type: ignore[assignment]


class MachineWrite(MachineDocument):
    """Body of create and update: the whole machine, plus why it changed."""

    model_config = ConfigDict(extra="forbid")

    instruments: list[InstrumentBody] = Field(default_factory=list, max_length=MAX_INSTRUMENTS)  # type: ignore[assignment]
    machine_version: Int32 | None = None
    auto_control_interval: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None
    change_note: ChangeNote = ""

    def document(self) -> MachineDocument:
        return MachineDocument.model_validate(self.model_dump(exclude={"change_note"}))


def within_bounds(document: MachineDocument) -> MachineDocument:
    """`document` (an imported XML file, say) held to the bounds of a written machine;
    raises pydantic's `ValidationError` where it is not."""
    MachineWrite.model_validate(document.model_dump(by_alias=True))
    return document


class InstrumentWrite(InstrumentBody):
    """Body of adding or replacing one instrument, plus why it changed."""

    model_config = ConfigDict(extra="forbid")

    change_note: ChangeNote = ""

    def instrument(self) -> Instrument:
        return Instrument.model_validate(self.model_dump(exclude={"change_note"}))


class RollbackRequest(RequestModel):
    version: int = Field(ge=1, le=INT32_MAX)
    change_note: ChangeNote = ""


class Author(CamelModel):
    id: str
    display_name: str


class VersionSummary(CamelModel):
    version: int
    change_note: str
    content_hash: str
    author: Author | None
    created_at: Timestamp
    current: bool


class VersionList(CamelModel):
    versions: list[VersionSummary]
    pagination: Pagination
