"""Throughput and latency of login and profile reads, measured against /healthz.

Starts the real server (``beatmachine serve``) on a fresh PostgreSQL database and a
private Redis key prefix, registers users through the API, then puts a closed-loop
load of N concurrent keep-alive connections on each of

    GET  /healthz         the baseline: the whole HTTP and middleware stack, no I/O
    POST /api/auth/login  Argon2id verification plus a new session row
    GET  /api/users/me    JWT check, session and user lookup, profile statistics

and reports requests/s, p50 and p99 latency and errors of each, with throughput and
p50 as ratios to /healthz. The load comes from separate processes: ``wrk`` when it is
on PATH, else httpx on uvloop. Everything it creates (server, database, Redis keys) is
removed at the end, also on failure or Ctrl-C. See bench/README.md.

    .venv/bin/python bench/auth_profile.py [--duration 10] [--workers 1] [--tool httpx]
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from _harness import (
    BENCH_DIR,
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

from beatmachine.core.config import Settings

PASSWORD = "bench-" + secrets.token_urlsafe(12)


@dataclass(frozen=True)
class Options:
    admin_url: str
    redis_url: str
    workers: int
    concurrency: int
    duration: float
    warmup: float
    users: int
    client_procs: int
    tool: Tool
    argon2_time_cost: int
    argon2_memory_cost: int
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


def parse_options(argv: Sequence[str] | None = None) -> Options:
    production = Settings.model_fields
    parser = service_parser(__doc__)
    parser.add_argument("--workers", type=int, default=1, help="server processes (WORKERS)")
    parser.add_argument("--concurrency", type=int, default=32, help="open connections")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured each")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--users", type=int, default=64, help="accounts registered and used")
    parser.add_argument(
        "--client-procs", type=int, default=1, help="load-generator processes (httpx tool)"
    )
    parser.add_argument(
        "--tool",
        choices=["auto", "wrk", "httpx"],
        default="auto",
        help="load generator: wrk from PATH, or httpx in Python processes "
        "(auto: wrk if it is on PATH)",
    )
    parser.add_argument(
        "--argon2-time-cost",
        type=int,
        default=production["argon2_time_cost"].default,
        help="ARGON2_TIME_COST of the server (default: the production setting)",
    )
    parser.add_argument(
        "--argon2-memory-cost",
        type=int,
        default=production["argon2_memory_cost"].default,
        help="ARGON2_MEMORY_COST in KiB (default: the production setting)",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH_DIR / "results", help="where the JSON goes"
    )
    args = parser.parse_args(argv)
    tool: Tool = default_tool() if args.tool == "auto" else args.tool
    if args.tool == "auto" and tool == "httpx":
        console.print(
            "[yellow]wrk is not on PATH (apt-get install wrk): using httpx, which can "
            "saturate its own CPU before the server on /healthz[/yellow]"
        )
    if tool == "wrk" and shutil.which("wrk") is None:
        parser.error("--tool wrk: wrk is not on PATH (apt-get install wrk)")
    if min(args.workers, args.concurrency, args.users, args.client_procs) < 1:
        parser.error("--workers, --concurrency, --users and --client-procs must be >= 1")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be > 0 and --warmup >= 0")
    return Options(
        admin_url=args.admin_url,
        redis_url=args.redis_url,
        workers=args.workers,
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        users=args.users,
        client_procs=min(args.client_procs, args.concurrency),
        tool=tool,
        argon2_time_cost=args.argon2_time_cost,
        argon2_memory_cost=args.argon2_memory_cost,
        results_dir=args.results_dir,
    )


# --- accounts and the requests made with them --------------------------------------------------


@dataclass(frozen=True)
class Account:
    email: str
    token: str


async def register_accounts(base_url: str, run_id: str, count: int) -> list[Account]:
    limits = httpx.Limits(max_connections=8)
    semaphore = asyncio.Semaphore(8)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120.0) as client:

        async def one(index: int) -> Account:
            email = f"bench-{run_id}-{index}@example.com"
            async with semaphore:
                response = await client.post(
                    "/api/auth/register",
                    json={
                        "email": email,
                        "password": PASSWORD,
                        "displayName": f"Bench {index}",
                        "acceptTerms": True,
                    },
                )
            if response.status_code != 201:
                raise RuntimeError(f"register failed: {response.status_code} {response.text}")
            return Account(email=email, token=response.json()["data"]["token"])

        accounts = await asyncio.gather(*(one(index) for index in range(count)))
        # One of each measured request, checked, so that a broken set-up fails here
        # and not as a column of errors.
        login = await client.post(
            "/api/auth/login", json={"email": accounts[0].email, "password": PASSWORD}
        )
        me = await client.get(
            "/api/users/me", headers={"Authorization": f"Bearer {accounts[0].token}"}
        )
        for response in (login, me):
            if response.status_code != 200:
                raise RuntimeError(
                    f"{response.request.method} {response.request.url.path}: "
                    f"{response.status_code} {response.text}"
                )
    return list(accounts)


def scenarios_for(accounts: Sequence[Account]) -> list[Scenario]:
    """The three endpoints; logins and profile reads go round the accounts."""
    logins = [
        (
            {"Content-Type": "application/json"},
            json.dumps({"email": account.email, "password": PASSWORD}).encode(),
        )
        for account in accounts
    ]
    bearers = [{"Authorization": f"Bearer {account.token}"} for account in accounts]
    return [
        Scenario.make("healthz", "GET", "/healthz"),
        Scenario.rotating("login", "POST", "/api/auth/login", logins),
        Scenario.make("me", "GET", "/api/users/me", bearers),
    ]


# --- results -----------------------------------------------------------------------------------


def render(options: Options, scenarios: list[Scenario], results: dict[str, Measurement]) -> Table:
    base = results["healthz"]
    table = Table(
        title=(
            f"concurrency {options.concurrency}, {options.duration:g}s each, "
            f"{options.workers} server worker(s), {options.tool}, "
            f"Argon2id t={options.argon2_time_cost} m={options.argon2_memory_cost} KiB"
        )
    )
    for header in (
        "endpoint",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "req/s ratio",
        "p50 ratio",
        "server CPU",
        "server MiB",
        "client CPU",
    ):
        table.add_column(header, justify="left" if header == "endpoint" else "right")
    for scenario in scenarios:
        m = results[scenario.key]
        table.add_row(
            scenario.label,
            f"{m.rps:,.1f}",
            f"{m.p50_ms:,.2f}",
            f"{m.p99_ms:,.2f}",
            f"[red]{m.errors}[/red]" if m.errors else "0",
            f"{m.rps / base.rps:.4f}" if base.rps else "-",
            f"{m.p50_ms / base.p50_ms:,.1f}" if base.p50_ms else "-",
            f"{m.server_cpu_pct:.0f}%",
            f"{m.server_peak_rss_mib:,.0f}",
            f"{m.client_cpu_pct:.0f}%",
        )
    return table


def write_results(
    options: Options,
    scenarios: list[Scenario],
    results: dict[str, Measurement],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> Path:
    base = results["healthz"]
    stamp = result_stamp()
    document = {
        "benchmark": "auth_profile",
        "finished_at": stamp,
        "git_commit": git_commit(),
        "machine": machine_info(load_before, load_after),
        "options": {
            k: v for k, v in asdict(options).items() if k not in ("admin_url", "results_dir")
        },
        "endpoints": {
            scenario.key: {
                "method": scenario.method,
                "path": scenario.path,
                **results[scenario.key].as_dict(),
                "rps_ratio_to_healthz": results[scenario.key].rps / base.rps,
                "p50_ratio_to_healthz": results[scenario.key].p50_ms / base.p50_ms,
            }
            for scenario in scenarios
        },
    }
    return save_results(options.results_dir, "auth_profile", stamp, document)


# --- the run -------------------------------------------------------------------------------


def run(options: Options) -> int:
    try:
        with environment(options.admin_url, options.redis_url, "bench_auth") as env:
            server_env = env.server_env(
                options.workers,
                ARGON2_TIME_COST=str(options.argon2_time_cost),
                ARGON2_MEMORY_COST=str(options.argon2_memory_cost),
            )
            with phase(f"starting the server ({options.workers} worker(s))"):
                server = env.start_server(server_env, options.workers)
            with phase(f"registering {options.users} accounts"):
                accounts = asyncio.run(
                    register_accounts(server.base_url, env.run_id, options.users)
                )
            scenarios = scenarios_for(accounts)
            load_before = warn_if_busy()
            results: dict[str, Measurement] = {}
            for scenario in scenarios:
                what = f"{scenario.label}: {options.warmup:g}s warm-up + {options.duration:g}s"
                with phase(what):
                    results[scenario.key] = measure(options.load, server, scenario, env.workdir)
            console.print(render(options, scenarios, results))
            path = write_results(options, scenarios, results, load_before, os.getloadavg())
            console.print(f"results: {path}")
            return 0
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; cleaned up[/yellow]")
        return 130
    except Exception as exc:
        console.print(f"[red]benchmark failed: {exc}[/red]")
        return 1


def main() -> None:
    run_benchmark(parse_options, run)


if __name__ == "__main__":
    main()
