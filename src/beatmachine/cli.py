"""The `beatmachine` command line."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import typer
import uvicorn
from rich.console import Console

from beatmachine.analytics import service as analytics_service
from beatmachine.core import migrate as migrations
from beatmachine.core.config import get_settings
from beatmachine.core.db import transaction
from beatmachine.core.errors import AppError
from beatmachine.core.logging import configure_logging
from beatmachine.instance import build_state
from beatmachine.machines import service as machines_service
from beatmachine.machines.xml import MachineXmlError, parse_machine_xml
from beatmachine.users import service as users_service
from beatmachine.worker import run_worker, supervise

app = typer.Typer(help="SalsaNor Beat Machine backend.", no_args_is_help=True)
console = Console()


@app.command()
def migrate(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Upgrade the database to the newest schema (or to REVISION)."""
    migrations.upgrade(get_settings().effective_database_url, revision)
    console.print(f"[green]database at {revision}[/green]")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (HOST)."),
    port: int | None = typer.Option(None, help="Port (PORT)."),
    workers: int | None = typer.Option(None, help="Processes (WORKERS)."),
    no_migrate: bool = typer.Option(False, "--no-migrate", help="Skip migrating first."),
) -> None:
    """Migrate, then serve the API."""
    settings = get_settings()
    if not no_migrate:
        migrations.upgrade(settings.effective_database_url)
    settings.signing_secret()  # every worker process must share one generated secret
    uvicorn.run(
        "beatmachine.main:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
        access_log=False,
        log_config=None,
    )


@app.command("create-admin")
def create_admin(email: str = typer.Argument(..., help="E-mail of an existing account.")) -> None:
    """Make an existing account an administrator."""

    async def run() -> None:
        state = build_state(get_settings())
        try:
            async with transaction(state.sessionmaker) as session:
                user = await users_service.make_admin(session, email)
            console.print(f"[green]{user.email} ({user.id}) is now an administrator[/green]")
        finally:
            await state.aclose()

    try:
        asyncio.run(run())
    except Exception as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


@app.command("analytics-rollup")
def analytics_rollup(
    as_json: bool = typer.Option(False, "--json", help="Print what it did as one JSON object."),
) -> None:
    """Run the analytics rollup once, now (what the periodic job does), and say which days
    it touched and how long it took. Safe beside the scheduler: the rollup takes its lock."""

    async def run() -> tuple[analytics_service.RollupRun, float]:
        state = build_state(get_settings())
        try:
            started = time.perf_counter()
            done = await analytics_service.roll_up(state)
            return done, time.perf_counter() - started
        finally:
            await state.aclose()

    try:
        done, seconds = asyncio.run(run())
    except Exception as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if as_json:
        report = {
            "after": done.after.isoformat() if done.after else None,
            "upto": done.upto.isoformat(),
            "days": [day.isoformat() for day in done.days],
            "seconds": round(seconds, 3),
        }
        typer.echo(json.dumps(report))
        return
    since = done.after.isoformat() if done.after else "the beginning"
    if not done.days:
        console.print(f"nothing new recorded since {since} ({seconds:.2f} s)")
        return
    first, last = done.days[0].isoformat(), done.days[-1].isoformat()
    span = first if first == last else f"{first} to {last}"
    console.print(
        f"[green]rolled up the events recorded from {since} to {done.upto.isoformat()}: "
        f"{len(done.days)} day(s), {span}, in {seconds:.2f} s[/green]"
    )


@app.command("import-machine")
def import_machine(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A machine XML file."),
    machine_id: str | None = typer.Option(None, "--id", help="Machine id (default: its flavor)."),
    note: str = typer.Option("", "--note", help="Change note of the new version."),
) -> None:
    """Import a front-end machine XML file as a new machine or a new version."""

    # Read and parse before the event loop starts: nothing else runs yet.
    try:
        document = parse_machine_xml(file.read_bytes(), machine_id)
    except MachineXmlError as exc:
        console.print(f"[red]refused: {exc}[/red]")
        raise typer.Exit(1) from exc

    async def run() -> None:
        state = build_state(get_settings())
        try:
            async with transaction(state.sessionmaker) as session:
                result = await machines_service.publish(
                    session,
                    state.cache,
                    document,
                    author_id=None,
                    change_note=note or f"Imported from {file.name}",
                    skip_if_unchanged=True,
                )
            published = result.published
            verb = "published as" if result.changed else "unchanged at"
            console.print(
                f"[green]{published.machine.id} {verb} version {published.version.version}[/green]"
            )
        finally:
            await state.aclose()

    try:
        asyncio.run(run())
    except AppError as exc:
        console.print(f"[red]refused: {exc.message}[/red]")
        raise typer.Exit(1) from exc


@app.command()
def worker(
    processes: int = typer.Option(1, "--processes", min=1, max=64, help="Worker processes."),
) -> None:
    """Run queued and periodic jobs (production: the API processes set RUN_WORKER=false
    and RUN_SCHEDULER=false)."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    if processes == 1:
        asyncio.run(run_worker(settings))
    else:
        supervise(processes)


if __name__ == "__main__":
    app()
