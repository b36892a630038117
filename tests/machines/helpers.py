"""Shared helpers of the machines tests: the front end's real machine files, an admin,
imports through the API, and the rows the machines domain stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.machines.models import Machine, MachineVersion
from tests.factories import Account
from tests.services import missing

REPO_ROOT = Path(__file__).resolve().parents[2]
# The front end's machine files live beside the project, never inside it.
MACHINES_DATA = REPO_ROOT.parent / "shared" / "data" / "machines"

XML_HEADERS = {"Content-Type": "application/xml"}

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<bm:Machine xmlns:bm="http://www.salsabeatmachine.org/xns/bm">
  <bm:title>&lol9;</bm:title>
  <bm:flavor>Laughs</bm:flavor>
</bm:Machine>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE machine [
  <!ENTITY secret SYSTEM "file:///etc/passwd">
]>
<bm:Machine xmlns:bm="http://www.salsabeatmachine.org/xns/bm">
  <bm:description>&secret;</bm:description>
  <bm:flavor>Leaky</bm:flavor>
</bm:Machine>
"""


def real_machine_file(name: str) -> Path:
    """The front end's `<name>.xml`; skips (or fails under BM_REQUIRE_SERVICES=1) without it."""
    path = MACHINES_DATA / f"{name}.xml"
    if not path.is_file():
        reason = (
            f"the front end's machine file {path} is missing: this clone has no "
            "../shared/data/machines folder beside the project"
        )
        missing(reason)
    return path


def real_machine_xml(name: str) -> bytes:
    return real_machine_file(name).read_bytes()


def machine_xml(
    instruments: str = "", machine_fields: str = "<bm:flavor>Test</bm:flavor>"
) -> bytes:
    """A small machine file in the front end's format, for structural cases."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bm:Machine xmlns="http://www.salsabeatmachine.org/xns/bm"
            xmlns:bm="http://www.salsabeatmachine.org/xns/bm">
  <bm:instrumentList>{instruments}</bm:instrumentList>
  {machine_fields}
</bm:Machine>
""".encode()


def instrument_xml(body: str, name: str = "Clave", title: str = "Clave") -> str:
    return (
        f'<{name} xmlns="http://www.salsabeatmachine.org/xns/instruments" title="{title}">'
        f"{body}</{name}>"
    )


def program_xml(notes: str = '<bm:Note index="0" pitch="0" />', length: int = 4) -> str:
    return f'<programs><bm:Program title="Basic" length="{length}">{notes}</bm:Program></programs>'


def instrument_body(instrument_id: str = "conga2", **changes: Any) -> dict[str, Any]:
    """A valid custom instrument as the JSON API takes it (`...` drops a field)."""
    values: dict[str, Any] = {
        "id": instrument_id,
        "title": "Second Conga",
        "enabled": True,
        "activeProgram": 0,
        "respectsClave": True,
        "volume": 0.8,
        "programs": [
            {
                "title": "Tumbao",
                "length": 8,
                "notes": [{"index": 2, "pitch": 2}, {"index": 6, "pitch": 3, "velocity": 0.5}],
            }
        ],
    }
    values.update(changes)
    return {key: value for key, value in values.items() if value is not ...}


def machine_body(machine_id: str = "bachata", **changes: Any) -> dict[str, Any]:
    """A valid whole machine as POST/PUT /api/machines take it (`...` drops a field)."""
    values: dict[str, Any] = {
        "id": machine_id,
        "title": "Bachata Beat Machine",
        "flavor": "Bachata",
        "description": "Guitar and güira.",
        "bpm": 130,
        "keyNote": 2,
        "instruments": [
            {
                "id": "guira",
                "title": "Güira",
                "enabled": True,
                "activeProgram": 0,
                "respectsClave": False,
                "programs": [
                    {
                        "title": "Basic",
                        "length": 4,
                        "notes": [{"index": 0, "pitch": 0}, {"index": 2, "pitch": 0}],
                    }
                ],
            }
        ],
    }
    values.update(changes)
    return {key: value for key, value in values.items() if value is not ...}


async def import_xml(
    client: httpx.AsyncClient,
    admin: Account,
    data: bytes,
    *,
    machine_id: str | None = None,
    change_note: str | None = None,
) -> httpx.Response:
    params = {}
    if machine_id is not None:
        params["id"] = machine_id
    if change_note is not None:
        params["changeNote"] = change_note
    return await client.post(
        "/api/machines/import",
        content=data,
        params=params,
        headers={**admin.headers, **XML_HEADERS},
    )


async def import_real(client: httpx.AsyncClient, admin: Account, name: str) -> dict[str, Any]:
    """Import the front end's `<name>.xml` through the API; returns the published machine."""
    response = await import_xml(client, admin, real_machine_xml(name), machine_id=name)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def stored_versions(db: AsyncSession, machine_id: str) -> list[int]:
    """The version numbers stored for a machine, oldest first (a fresh read)."""
    await db.rollback()
    rows = await db.execute(
        select(MachineVersion.version)
        .where(MachineVersion.machine_id == machine_id)
        .order_by(MachineVersion.version)
    )
    return list(rows.scalars())


async def stored_machine_ids(db: AsyncSession) -> list[str]:
    await db.rollback()
    return list((await db.execute(select(Machine.id).order_by(Machine.id))).scalars())
