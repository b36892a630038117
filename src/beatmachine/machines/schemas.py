"""Wire shapes of the machines domain."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from beatmachine.core.pagination import Pagination
from beatmachine.core.schemas import CamelModel, RequestModel, Timestamp
from beatmachine.machines.document import Instrument, MachineDocument

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


class MachineWrite(MachineDocument):
    """Body of create and update: the whole machine, plus why it changed."""

    model_config = ConfigDict(extra="forbid")

    change_note: ChangeNote = ""

    def document(self) -> MachineDocument:
        return MachineDocument.model_validate(self.model_dump(exclude={"change_note"}))


class InstrumentWrite(Instrument):
    model_config = ConfigDict(extra="forbid")

    change_note: ChangeNote = ""

    def instrument(self) -> Instrument:
        return Instrument.model_validate(self.model_dump(exclude={"change_note"}))


class RollbackRequest(RequestModel):
    version: int = Field(ge=1)
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
