"""Machines that exist from the start: the project's own defaults, and the XML files of
`MACHINES_DIR`, imported at start-up when their content changed."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.to_thread
import structlog

from beatmachine.core.db import transaction
from beatmachine.core.state import AppState
from beatmachine.machines import service
from beatmachine.machines.document import MachineDocument
from beatmachine.machines.exceptions import MachineExists
from beatmachine.machines.xml import MachineXmlError, parse_machine_xml

log = structlog.get_logger(__name__)

DEFAULTS_DIR = Path(__file__).parent / "defaults"


async def _read_documents(folder: Path) -> list[tuple[Path, MachineDocument]]:
    paths = sorted([Path(p) async for p in anyio.Path(folder).glob("*.xml")])
    documents = []
    for path in paths:
        data = await anyio.Path(path).read_bytes()
        try:
            document = await anyio.to_thread.run_sync(parse_machine_xml, data, path.stem.lower())
        except MachineXmlError as exc:
            log.error("machine_import_refused", file=path.name, reason=str(exc))
            continue
        documents.append((path, document))
    return documents


async def import_folder(state: AppState, folder: Path, *, only_missing: bool) -> int:
    """Publish every machine XML in `folder`; returns how many versions were published.

    `only_missing` installs a machine only when its flavor has none yet (the defaults
    never overwrite what admins published).
    """
    published = 0
    for path, document in await _read_documents(folder):
        try:
            async with transaction(state.sessionmaker) as session:
                if only_missing and await service.machine_for_flavor(session, document.flavor):
                    continue
                result = await service.publish(
                    session,
                    state.cache,
                    document,
                    author_id=None,
                    change_note=f"Imported from {path.name}",
                    skip_if_unchanged=True,
                )
            if result.changed:
                published += 1
                log.info("machine_imported", file=path.name, machine_id=document.id)
        except MachineExists:
            # Another process imported it at the same moment.
            continue
    return published


async def install_machines(state: AppState) -> None:
    """Start-up work. A database outage must not stop the process from starting (then
    `/readyz` reports it), so failures are logged, not raised."""
    settings = state.settings
    try:
        if settings.machines_dir is not None:
            await import_folder(state, settings.machines_dir, only_missing=False)
        if settings.install_default_machines:
            await import_folder(state, DEFAULTS_DIR, only_missing=True)
    except Exception:
        log.exception("machine_install_failed")
