"""What recording domain events costs: `POST /api/patterns/:id/play` with and without
event recording, in one run.

Creates a fresh PostgreSQL database with its own Redis key prefix, registers an account
and creates public patterns through the API, then measures, round after round, the same
closed-loop load (N keep-alive connections, each play going to the next pattern in turn)
on two servers started one after the other on that database:

    with events      the real server: every play writes a `pattern.played` event into the
                     outbox in its transaction, and the relay of every process hands the
                     outbox on (marks it relayed) in the background
    without events   the same server and code, with `events.record` replaced by a no-op
                     (bench/_events_off.py): the baseline

and reports requests/s, p50/p99 latency and server CPU per request of each, and the
throughput ratio (target: with events at least 0.85 of without). It checks that the
events really were recorded in the first and not in the second. Everything it creates is
removed at the end, also on failure or Ctrl-C. See bench/README.md.

    .venv/bin/python bench/events_overhead.py [--duration 10] [--rounds 3] [--patterns 50]
"""

from __future__ import annotations

import asyncio
import os
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from _harness import (
    BENCH_DIR,
    Environment,
    LoadOptions,
    Measurement,
    Scenario,
    Tool,
    console,
    default_tool,
    environment,
    git_commit,
    machine_info,
    measure,
    phase,
    result_stamp,
    run_benchmark,
    save_results,
    service_parser,
    warn_if_busy,
)
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

VARIANTS = {"with": None, "without": "_events_off:app"}
CONFIGURATION = {
    "instruments": [
        {"id": "clave", "enabled": True, "activeProgram": 0, "volume": 0.9, "pitchOffset": 0},
        {"id": "cowbell", "enabled": True, "activeProgram": 0, "volume": 0.8, "pitchOffset": 0},
    ]
}


@dataclass(frozen=True)
class Options:
    admin_url: str
    redis_url: str
    workers: int
    concurrency: int
    duration: float
    warmup: float
    rounds: int
    patterns: int
    tool: Tool
    client_procs: int
    target: float
    results_dir: Path

    @property
    def load(self) -> LoadOptions:
        return LoadOptions(
            tool=self.tool,
            concurrency=self.concurrency,
            duration=self.duration,
            warmup=self.warmup,
            client_procs=self.client_procs,
        )


def parse_options(argv: list[str] | None = None) -> Options:
    parser = service_parser(__doc__)
    parser.add_argument("--workers", type=int, default=1, help="server processes (WORKERS)")
    parser.add_argument("--concurrency", type=int, default=32, help="open connections")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured each")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both variants")
    parser.add_argument("--patterns", type=int, default=50, help="public patterns played")
    parser.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--client-procs", type=int, default=1, help="httpx load processes")
    parser.add_argument("--target", type=float, default=0.85, help="minimum ratio")
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH_DIR / "results", help="where to write JSON"
    )
    args = parser.parse_args(argv)
    return Options(
        admin_url=args.admin_url,
        redis_url=args.redis_url,
        workers=args.workers,
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        rounds=args.rounds,
        patterns=args.patterns,
        tool=default_tool() if args.tool == "auto" else args.tool,
        client_procs=args.client_procs,
        target=args.target,
        results_dir=args.results_dir,
    )


def create_patterns(base_url: str, count: int) -> list[str]:
    """An account and `count` public patterns, through the API."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.post(
            "/api/auth/register",
            json={
                "email": "bench-events@example.com",
                "password": "correct horse battery",
                "displayName": "Bench",
                "acceptTerms": True,
            },
        )
        response.raise_for_status()
        headers = {"Authorization": f"Bearer {response.json()['data']['token']}"}
        ids = []
        for number in range(count):
            created = client.post(
                "/api/patterns",
                headers=headers,
                json={
                    "title": f"Groove {number}",
                    "description": "",
                    "flavor": "Salsa",
                    "bpm": 180,
                    "keyNote": 5,
                    "isPublic": True,
                    "configuration": CONFIGURATION,
                },
            )
            created.raise_for_status()
            ids.append(created.json()["data"]["id"])
    return ids


async def _played_events(database_url: str) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            count = await connection.execute(
                text("SELECT count(*) FROM outbox WHERE name = 'pattern.played'")
            )
            return int(count.scalar_one())
    finally:
        await engine.dispose()


def played_events(env: Environment) -> int:
    """How many `pattern.played` events the outbox holds."""
    return asyncio.run(_played_events(env.database_url))


def median_by_rps(measurements: list[Measurement]) -> Measurement:
    return sorted(measurements, key=lambda m: m.rps)[len(measurements) // 2]


def render(chosen: dict[str, Measurement], ratio: float, target: float) -> Table:
    table = Table(title="POST /api/patterns/:id/play, median of the rounds")
    for column in ("events", "req/s", "p50 ms", "p99 ms", "server CPU µs/req", "÷ without"):
        table.add_column(column, justify="right")
    base = chosen["without"]
    for name, measurement in chosen.items():
        table.add_row(
            name,
            f"{measurement.rps:,.0f}",
            f"{measurement.p50_ms:.2f}",
            f"{measurement.p99_ms:.2f}",
            f"{measurement.server_cpu_us:,.0f}",
            f"{measurement.rps / base.rps:.2f}",
        )
    verdict = "PASS" if ratio >= target else "FAIL"
    table.caption = f"with ÷ without = {ratio:.2f} (target ≥ {target:.2f}: {verdict})"
    return table


def run(options: Options) -> int:
    try:
        with environment(options.admin_url, options.redis_url, "bench_events") as env:
            server_env = env.server_env(options.workers, INSTALL_DEFAULT_MACHINES="true")
            with phase(f"creating {options.patterns} public patterns"):
                env.start_server(server_env, options.workers)
                assert env.server is not None
                ids = create_patterns(env.server.base_url, options.patterns)
                env.stop_server()
            scenario = Scenario.across(
                "play",
                "POST",
                [f"/api/patterns/{pattern_id}/play" for pattern_id in ids],
                note="anonymous play, one pattern after the other",
            )
            load_before = warn_if_busy()
            rounds: dict[str, list[Measurement]] = {name: [] for name in VARIANTS}
            recorded: dict[str, list[int]] = {name: [] for name in VARIANTS}
            for number in range(1, options.rounds + 1):
                for name, app in VARIANTS.items():
                    before = played_events(env)
                    what = f"round {number}/{options.rounds}, {name} events"
                    with phase(f"{what}: {options.warmup:g}s warm-up + {options.duration:g}s"):
                        server = env.start_server(server_env, options.workers, app)
                        rounds[name].append(measure(options.load, server, scenario, env.workdir))
                        env.stop_server()
                    recorded[name].append(played_events(env) - before)
            chosen = {name: median_by_rps(ms) for name, ms in rounds.items()}
            ratio = chosen["with"].rps / chosen["without"].rps
            console.print(render(chosen, ratio, options.target))
            cpu_ratio = chosen["without"].server_cpu_us / chosen["with"].server_cpu_us
            console.print(f"server CPU per request, without ÷ with: {cpu_ratio:.2f}")
            console.print(f"events recorded per round: {recorded}")
            path = write_results(options, rounds, chosen, ratio, recorded, load_before)
            console.print(f"results: {path}")
            return check(options, chosen, ratio, recorded)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; cleaned up[/yellow]")
        return 130
    except Exception as exc:
        console.print(f"[red]benchmark failed: {exc}[/red]")
        return 1


def check(
    options: Options,
    chosen: dict[str, Measurement],
    ratio: float,
    recorded: dict[str, list[int]],
) -> int:
    """Errors or a switch that did not switch make the run invalid (1); a missed
    target is 2."""
    failed = [name for name, measurement in chosen.items() if measurement.errors]
    if failed:
        console.print(f"[red]errors with {', '.join(failed)} events: the run is invalid[/red]")
        return 1
    if any(count == 0 for count in recorded["with"]) or any(recorded["without"]):
        console.print("[red]events were not recorded as the variants say: invalid run[/red]")
        return 1
    if ratio < options.target:
        console.print(f"[red]with events: {ratio:.0%} of the throughput without: FAIL[/red]")
        return 2
    console.print(f"[green]with events: {ratio:.0%} of the throughput without: PASS[/green]")
    return 0


def write_results(
    options: Options,
    rounds: dict[str, list[Measurement]],
    chosen: dict[str, Measurement],
    ratio: float,
    recorded: dict[str, list[int]],
    load_before: tuple[float, float, float],
) -> Path:
    stamp = result_stamp()
    document: dict[str, Any] = {
        "benchmark": "events_overhead",
        "finished_at": stamp,
        "git_commit": git_commit(),
        "machine": machine_info(load_before, os.getloadavg()),
        "options": {k: v for k, v in asdict(options).items() if k not in ("admin_url",)},
        "ratio_with_to_without": ratio,
        "median_ratio_of_rounds": statistics.median(
            w.rps / wo.rps for w, wo in zip(rounds["with"], rounds["without"], strict=True)
        ),
        "events_recorded_per_round": recorded,
        "variants": {
            name: {**chosen[name].as_dict(), "rounds": [m.as_dict() for m in rounds[name]]}
            for name in rounds
        },
    }
    return save_results(options.results_dir, "events_overhead", stamp, document)


def main() -> None:
    run_benchmark(parse_options, run)


if __name__ == "__main__":
    main()
