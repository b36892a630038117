"""Machines that arrive without the HTTP API: MACHINES_DIR and the project's defaults at
start-up, and the `beatmachine import-machine` command."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner, Result

from beatmachine import cli
from beatmachine.app import create_app
from beatmachine.core.config import Settings, get_settings
from beatmachine.machines.bootstrap import DEFAULTS_DIR
from beatmachine.machines.models import MachineVersion
from beatmachine.machines.xml import parse_machine_xml
from tests.conftest import Backend
from tests.machines.helpers import (
    BILLION_LAUGHS,
    real_machine_file,
    real_machine_xml,
    stored_machine_ids,
    stored_versions,
)


@pytest.fixture
def machines_dir(tmp_path: Path) -> Path:
    """A MACHINES_DIR holding a copy of the front end's salsa.xml."""
    folder = tmp_path / "machines"
    folder.mkdir()
    shutil.copyfile(real_machine_file("salsa"), folder / "salsa.xml")
    return folder


@pytest.fixture
def settings_overrides(machines_dir: Path) -> dict[str, Any]:
    return {"MACHINES_DIR": machines_dir}


@asynccontextmanager
async def another_instance(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Start (and at the end stop) one more app instance on the same database."""
    application = create_app(settings.model_copy(update=changes))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, client=("198.51.100.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def change_notes(db: AsyncSession, machine_id: str) -> list[str]:
    await db.rollback()
    rows = await db.execute(
        select(MachineVersion.change_note)
        .where(MachineVersion.machine_id == machine_id)
        .order_by(MachineVersion.version)
    )
    return list(rows.scalars())


# --- MACHINES_DIR -----------------------------------------------------------------------


async def test_machines_dir_is_imported_at_start_up(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await client.get("/api/machines/salsa")

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["version"], data["flavor"], data["bpm"]) == (1, "Salsa", 180)
    assert [i["id"] for i in data["instruments"]][:3] == ["clave", "cowbell", "congas"]
    assert await change_notes(db, "salsa") == ["Imported from salsa.xml"]


async def test_second_start_with_the_same_files_publishes_nothing(
    client: httpx.AsyncClient, settings: Settings, db: AsyncSession
) -> None:
    async with another_instance(settings) as second:
        response = await second.get("/api/machines/salsa")

    assert response.json()["data"]["version"] == 1
    assert await stored_versions(db, "salsa") == [1]


async def test_second_start_with_changed_content_publishes_version_2(
    client: httpx.AsyncClient, settings: Settings, machines_dir: Path, db: AsyncSession
) -> None:
    path = machines_dir / "salsa.xml"
    path.write_bytes(path.read_bytes().replace(b"<bm:bpm>180</bm:bpm>", b"<bm:bpm>190</bm:bpm>"))

    async with another_instance(settings) as second:
        response = await second.get("/api/machines/salsa")

    data = response.json()["data"]
    assert (data["version"], data["bpm"]) == (2, 190)
    assert await stored_versions(db, "salsa") == [1, 2]


async def test_refused_file_is_skipped_and_the_others_imported(
    client: httpx.AsyncClient, settings: Settings, machines_dir: Path, db: AsyncSession
) -> None:
    (machines_dir / "evil.xml").write_bytes(BILLION_LAUGHS)
    shutil.copyfile(real_machine_file("merengue"), machines_dir / "merengue.xml")

    async with another_instance(settings) as second:
        response = await second.get("/api/machines")

    assert [m["id"] for m in response.json()["data"]["machines"]] == ["merengue", "salsa"]
    assert await stored_machine_ids(db) == ["merengue", "salsa"]


async def test_second_file_of_a_known_flavor_is_skipped(
    client: httpx.AsyncClient, settings: Settings, machines_dir: Path, db: AsyncSession
) -> None:
    shutil.copyfile(machines_dir / "salsa.xml", machines_dir / "salsa-classic.xml")

    async with another_instance(settings) as second:
        response = await second.get("/api/machines")

    assert [m["id"] for m in response.json()["data"]["machines"]] == ["salsa"]
    assert await stored_versions(db, "salsa") == [1]


# --- the project's defaults -------------------------------------------------------------


def default_files() -> list[Path]:
    files = sorted(DEFAULTS_DIR.glob("*.xml"))
    assert files, f"no default machines in {DEFAULTS_DIR}"
    return files


@pytest.mark.parametrize("settings_overrides", [{"INSTALL_DEFAULT_MACHINES": True}])
async def test_default_machines_are_installed_at_start_up(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    files = default_files()

    response = await client.get("/api/machines")

    machines = response.json()["data"]["machines"]
    assert [m["id"] for m in machines] == [path.stem.lower() for path in files]
    assert {"salsa", "merengue"} <= {m["id"] for m in machines}
    for machine, path in zip(machines, files, strict=True):
        document = parse_machine_xml(path.read_bytes(), path.stem.lower())
        assert (machine["flavor"], machine["currentVersion"]) == (document.flavor, 1)
        served = (await client.get(f"/api/machines/{machine['id']}")).json()["data"]
        assert len(served["instruments"]) == len(document.instruments)


async def test_defaults_never_replace_a_published_machine(
    client: httpx.AsyncClient, settings: Settings, db: AsyncSession
) -> None:
    default_files()
    before = (await client.get("/api/machines/salsa")).json()["data"]

    async with another_instance(
        settings, install_default_machines=True, machines_dir=None
    ) as second:
        after = (await second.get("/api/machines/salsa")).json()["data"]
        listed = (await second.get("/api/machines")).json()["data"]["machines"]

    assert after == before
    assert await stored_versions(db, "salsa") == [1]
    assert "merengue" in [m["id"] for m in listed]


@pytest.mark.parametrize("settings_overrides", [{"INSTALL_DEFAULT_MACHINES": True}])
async def test_defaults_are_installed_once(
    client: httpx.AsyncClient, settings: Settings, db: AsyncSession
) -> None:
    async with another_instance(settings):
        pass

    assert await stored_versions(db, "salsa") == [1]
    assert await stored_versions(db, "merengue") == [1]


# --- the import-machine command ---------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, backend: Backend, settings: Settings, app: Any
) -> Iterator[None]:
    """The command's environment: the test database (and Redis) of the running app."""
    monkeypatch.setenv("DATABASE_URL", backend.database_url)
    monkeypatch.setenv("REDIS_URL", backend.redis_url)
    monkeypatch.setenv("REDIS_KEY_PREFIX", settings.redis_key_prefix)
    monkeypatch.setenv("VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("JWT_SECRET", settings.jwt_secret)
    monkeypatch.setenv("LOG_JSON", "false")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def run_cli(*args: str) -> Result:
    # The command runs its own event loop, so it runs in a thread of its own.
    return await asyncio.to_thread(runner.invoke, cli.app, list(args))


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_cli_imports_a_machine_file(
    cli_env: None, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    result = await run_cli("import-machine", str(real_machine_file("salsa")), "--id", "salsa")

    assert result.exit_code == 0, result.output
    assert "salsa published as version 1" in result.output
    assert await stored_versions(db, "salsa") == [1]
    assert await change_notes(db, "salsa") == ["Imported from salsa.xml"]
    data = (await client.get("/api/machines/salsa")).json()["data"]
    assert (data["bpm"], data["keyNote"]) == (180, 0)


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_cli_import_of_unchanged_content_publishes_nothing(
    cli_env: None, db: AsyncSession
) -> None:
    path = str(real_machine_file("salsa"))
    await run_cli("import-machine", path, "--id", "salsa")

    result = await run_cli("import-machine", path, "--id", "salsa")

    assert result.exit_code == 0, result.output
    assert "salsa unchanged at version 1" in result.output
    assert await stored_versions(db, "salsa") == [1]


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_cli_import_of_changed_content_keeps_the_note(
    cli_env: None, tmp_path: Path, db: AsyncSession
) -> None:
    await run_cli("import-machine", str(real_machine_file("salsa")), "--id", "salsa")
    changed = tmp_path / "faster.xml"
    changed.write_bytes(
        real_machine_xml("salsa").replace(b"<bm:bpm>180</bm:bpm>", b"<bm:bpm>200</bm:bpm>")
    )

    result = await run_cli("import-machine", str(changed), "--id", "salsa", "--note", "Faster")

    assert result.exit_code == 0, result.output
    assert "salsa published as version 2" in result.output
    assert await change_notes(db, "salsa") == ["Imported from salsa.xml", "Faster"]


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_cli_refuses_billion_laughs(cli_env: None, tmp_path: Path, db: AsyncSession) -> None:
    path = tmp_path / "laughs.xml"
    path.write_bytes(BILLION_LAUGHS)

    result = await run_cli("import-machine", str(path), "--id", "laughs")

    assert result.exit_code == 1
    assert "refused" in result.output
    assert await stored_machine_ids(db) == []
