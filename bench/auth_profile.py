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
removed at the end, also on Ctrl-C. See bench/README.md.

    .venv/bin/python bench/auth_profile.py [--duration 10] [--workers 1] [--tool httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Literal

import httpx
import uvloop
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from beatmachine.core import migrate
from beatmachine.core.config import Settings

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "bench-" + secrets.token_urlsafe(12)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

Kind = Literal["healthz", "login", "me"]


@dataclass(frozen=True)
class Endpoint:
    kind: Kind
    method: str
    path: str

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS = (
    Endpoint("healthz", "GET", "/healthz"),
    Endpoint("login", "POST", "/api/auth/login"),
    Endpoint("me", "GET", "/api/users/me"),
)

# Wide enough for the table when the output goes to a file or a pipe.
console = Console() if sys.stdout.isatty() else Console(width=140)


# --- options ---------------------------------------------------------------------------


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
    tool: Literal["httpx", "wrk"]
    argon2_time_cost: int
    argon2_memory_cost: int
    results_dir: Path


def parse_options(argv: list[str] | None = None) -> Options:
    production = Settings.model_fields
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_ADMIN_URL),
        help="PostgreSQL URL of a database from which the bench database is created "
        "(env BENCH_PG_ADMIN_URL)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis URL; keys go under a unique prefix (env BENCH_REDIS_URL)",
    )
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
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "httpx"
        if tool == "httpx":
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


# --- the environment: database, Redis prefix, server -----------------------------------------


async def create_database(admin_url: str, name: str) -> str:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, name: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


async def delete_redis_keys(redis_url: str, prefix: str) -> int:
    redis = Redis.from_url(redis_url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await redis.delete(*batch)
                batch.clear()
        if batch:
            deleted += await redis.delete(*batch)
    finally:
        await redis.aclose()
    return deleted


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        with suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_server(options: Options, env: dict[str, str], workdir: Path) -> Server:
    port = free_port()
    log_path = workdir / "server.log"
    command = [
        sys.executable,
        "-m",
        "beatmachine.cli",
        "serve",
        "--no-migrate",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(options.workers),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=workdir,  # no developer's .env is picked up
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl-C reaches us, not it
        )
    return Server(process, f"http://127.0.0.1:{port}", log_path)


def stop_server(server: Server) -> None:
    if server.process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=5)


def wait_ready(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"server exited ({server.process.returncode}):\n{server.log_tail()}"
                )
            try:
                response = client.get("/readyz")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout:.0f}s ({last}):\n{server.log_tail()}")


# --- accounts ----------------------------------------------------------------------------------


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


def request_parts(kind: Kind, accounts: list[Account]) -> list[tuple[dict[str, str], bytes]]:
    """Per account: the headers and body of one request of this kind."""
    if kind == "healthz":
        return [({}, b"")]
    if kind == "login":
        return [
            (
                {"Content-Type": "application/json"},
                json.dumps({"email": account.email, "password": PASSWORD}).encode(),
            )
            for account in accounts
        ]
    return [({"Authorization": f"Bearer {account.token}"}, b"") for account in accounts]


# --- load: httpx in separate processes -------------------------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    base_url: str
    endpoint: Endpoint
    parts: list[tuple[dict[str, str], bytes]]
    connections: int
    offset: int  # spreads the accounts over the processes
    warmup: float
    duration: float


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    cpu_seconds: float = 0.0


async def _load(spec: LoadSpec, pipe: Connection) -> LoadResult:
    result = LoadResult()
    limits = httpx.Limits(
        max_connections=spec.connections,
        max_keepalive_connections=spec.connections,
        keepalive_expiry=120.0,
    )
    measure_from = measure_until = math.inf
    method, url = spec.endpoint.method, spec.base_url + spec.endpoint.path
    parts = spec.parts

    async def connection_loop(slot: int) -> None:
        index = spec.offset + slot
        while time.time() < measure_until:
            headers, body = parts[index % len(parts)]
            index += spec.connections
            started = time.perf_counter()
            try:
                response = await client.request(method, url, headers=headers, content=body)
                status = str(response.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            finished = time.perf_counter()
            if measure_from <= time.time() < measure_until:
                result.statuses[status] += 1
                result.latencies_ms.append((finished - started) * 1000.0)

    async def cpu_marker() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.time()))
        cpu_at_start = time.process_time()
        await asyncio.sleep(max(0.0, measure_until - time.time()))
        result.cpu_seconds = time.process_time() - cpu_at_start

    async with httpx.AsyncClient(limits=limits, timeout=120.0, http2=False) as client:
        # Start barrier: the parent answers once every process has started, with a
        # wall-clock start time common to all of them.
        pipe.send("ready")
        start_at: float = pipe.recv()
        measure_from = start_at + spec.warmup
        measure_until = measure_from + spec.duration
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await asyncio.gather(cpu_marker(), *(connection_loop(i) for i in range(spec.connections)))
    return result


def _load_process(spec: LoadSpec, pipe: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(_load(spec, pipe))
    pipe.send(result)
    pipe.close()


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_httpx(
    options: Options, server: Server, endpoint: Endpoint, parts: list[tuple[dict[str, str], bytes]]
) -> Measurement:
    context = multiprocessing.get_context("spawn")
    processes: list[tuple[BaseProcess, Connection]] = []
    try:
        offset = 0
        for connections in split(options.concurrency, options.client_procs):
            receiver, sender = context.Pipe(duplex=True)
            spec = LoadSpec(
                server.base_url,
                endpoint,
                parts,
                connections,
                offset,
                options.warmup,
                options.duration,
            )
            worker = context.Process(target=_load_process, args=(spec, sender), daemon=True)
            worker.start()
            sender.close()
            processes.append((worker, receiver))
            offset += connections
        for _, receiver in processes:
            if not receiver.poll(120) or receiver.recv() != "ready":
                raise RuntimeError("a load-generator process did not start")
        start_at = time.time() + 0.2
        for _, receiver in processes:
            receiver.send(start_at)
        sample = sample_server(server, start_at + options.warmup, options.duration)
        results: list[LoadResult] = []
        for process, receiver in processes:
            if not receiver.poll(options.duration + 180):
                raise RuntimeError("a load-generator process did not report")
            results.append(receiver.recv())
            process.join(timeout=10)
    finally:
        for process, receiver in processes:
            receiver.close()
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
    latencies = sorted(value for result in results for value in result.latencies_ms)
    statuses: Counter[str] = Counter()
    for result in results:
        statuses.update(result.statuses)
    return Measurement(
        requests=len(latencies),
        seconds=options.duration,
        p50_ms=percentile(latencies, 50),
        p90_ms=percentile(latencies, 90),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else math.nan,
        statuses=dict(statuses),
        server_cpu_pct=sample.cpu_pct,
        server_peak_rss_mib=sample.peak_rss_mib,
        client_cpu_pct=100.0 * sum(r.cpu_seconds for r in results) / options.duration,
    )


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)]


# --- load: wrk -------------------------------------------------------------------------------

WRK_SCRIPT = """
local method, path = %(method)s, %(path)s
local parts = %(parts)s
local counter = 0
function setup(thread)
  thread:set("offset", math.random(0, #parts - 1))
end
function request()
  counter = counter + 1
  local part = parts[((counter + (offset or 0)) %% #parts) + 1]
  return wrk.format(method, path, part[1], part[2])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50_us\\": %%d, "
    .. "\\"p90_us\\": %%d, \\"p99_us\\": %%d, \\"max_us\\": %%d, \\"connect\\": %%d, "
    .. "\\"read\\": %%d, \\"write\\": %%d, \\"status\\": %%d, \\"timeout\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def _lua_string(value: str | bytes) -> str:
    raw = value.decode() if isinstance(value, bytes) else value
    return json.dumps(raw)  # a JSON string of ASCII is a valid Lua string literal


def wrk_script(endpoint: Endpoint, parts: list[tuple[dict[str, str], bytes]]) -> str:
    lua_parts = []
    for headers, body in parts:
        lua_headers = ", ".join(
            f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()
        )
        lua_body = _lua_string(body) if body else "nil"
        lua_parts.append(f"{{{{{lua_headers}}}, {lua_body}}}")
    return WRK_SCRIPT % {
        "method": _lua_string(endpoint.method),
        "path": _lua_string(endpoint.path),
        "parts": "{" + ",\n".join(lua_parts) + "}",
    }


def run_wrk(
    options: Options,
    server: Server,
    endpoint: Endpoint,
    parts: list[tuple[dict[str, str], bytes]],
    workdir: Path,
) -> Measurement:
    script = workdir / f"{endpoint.kind}.lua"
    script.write_text(wrk_script(endpoint, parts))
    threads = str(min(options.concurrency, os.cpu_count() or 1))

    def wrk(seconds: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "wrk",
                "-t",
                threads,
                "-c",
                str(options.concurrency),
                "-d",
                f"{max(1, round(seconds))}s",
                "--timeout",
                "120s",
                "-s",
                str(script),
                server.base_url + endpoint.path,
            ],
            capture_output=True,
            text=True,
            check=True,
        )

    if options.warmup > 0:
        wrk(options.warmup)
        wait_idle(server)  # wrk leaves unanswered requests behind (logins still hashing)
    # The server's CPU is sampled while wrk runs; wrk's own CPU comes from the rusage of
    # our finished children.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = _sample_in_background(server, time.time() + 0.2, options.duration - 0.4)
    completed = wrk(options.duration)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sample = sampler()
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = data["duration_us"] / 1e6
    errors = {k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    ok = data["requests"] - errors.get("status", 0)
    client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Measurement(
        requests=data["requests"],
        seconds=seconds,
        p50_ms=data["p50_us"] / 1000.0,
        p90_ms=data["p90_us"] / 1000.0,
        p99_ms=data["p99_us"] / 1000.0,
        max_ms=data["max_us"] / 1000.0,
        statuses={"2xx/3xx": ok, **{f"wrk {k}": v for k, v in errors.items()}},
        server_cpu_pct=sample.cpu_pct,
        server_peak_rss_mib=sample.peak_rss_mib,
        client_cpu_pct=100.0 * client_cpu / seconds,
    )


# --- CPU of the server (all its processes, from /proc) -------------------------------------


def _descendants(pid: int) -> list[int]:
    pids = [pid]
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    index = 0
    while index < len(pids):
        pids.extend(children.get(pids[index], []))
        index += 1
    return pids


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return total * PAGE_SIZE / 2**20


@dataclass(frozen=True)
class ServerSample:
    cpu_pct: float  # of one core
    peak_rss_mib: float  # all server processes together, sampled every 0.1 s


def sample_server(server: Server, start_at: float, seconds: float) -> ServerSample:
    """CPU and peak memory of the server between start_at and start_at + seconds."""
    if not Path("/proc").is_dir():
        return ServerSample(math.nan, math.nan)
    time.sleep(max(0.0, start_at - time.time()))
    pids = _descendants(server.process.pid)
    before, begun = _cpu_seconds(pids), time.perf_counter()
    peak = _rss_mib(pids)
    while (left := seconds - (time.perf_counter() - begun)) > 0:
        time.sleep(min(0.1, left))
        peak = max(peak, _rss_mib(pids))
    after, elapsed = _cpu_seconds(pids), time.perf_counter() - begun
    return ServerSample(100.0 * (after - before) / elapsed, peak)


def wait_idle(server: Server, timeout: float = 60.0) -> None:
    """Wait until the server has finished the work of requests whose clients are gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sample_server(server, 0.0, 0.5).cpu_pct < 10.0:
            return


def _sample_in_background(
    server: Server, start_at: float, seconds: float
) -> Callable[[], ServerSample]:
    box: list[ServerSample] = []
    thread = threading.Thread(
        target=lambda: box.append(sample_server(server, start_at, max(0.5, seconds))),
        daemon=True,
    )
    thread.start()

    def result() -> ServerSample:
        thread.join()
        return box[0] if box else ServerSample(math.nan, math.nan)

    return result


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    server_cpu_pct: float
    server_peak_rss_mib: float
    client_cpu_pct: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if not _is_ok(status))


def _is_ok(status: str) -> bool:
    return status == "2xx/3xx" or (status.isdigit() and 200 <= int(status) < 400)


def render(options: Options, results: dict[Kind, Measurement]) -> Table:
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
    for endpoint in ENDPOINTS:
        m = results[endpoint.kind]
        table.add_row(
            endpoint.label,
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


def git_commit() -> str | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=BENCH_DIR, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return completed.stdout.strip() or None


def write_results(
    options: Options,
    results: dict[Kind, Measurement],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> Path:
    base = results["healthz"]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "benchmark": "auth_profile",
        "finished_at": stamp,
        "git_commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "options": {
            **{k: v for k, v in asdict(options).items() if k not in ("admin_url", "results_dir")},
        },
        "endpoints": {
            endpoint.kind: {
                "method": endpoint.method,
                "path": endpoint.path,
                **asdict(results[endpoint.kind]),
                "rps": results[endpoint.kind].rps,
                "errors": results[endpoint.kind].errors,
                "rps_ratio_to_healthz": results[endpoint.kind].rps / base.rps,
                "p50_ratio_to_healthz": results[endpoint.kind].p50_ms / base.p50_ms,
            }
            for endpoint in ENDPOINTS
        },
    }
    options.results_dir.mkdir(parents=True, exist_ok=True)
    path = options.results_dir / f"auth_profile-{stamp}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


# --- the run -------------------------------------------------------------------------------


@contextmanager
def phase(description: str) -> Iterator[None]:
    started = time.perf_counter()
    with console.status(description):
        yield
    console.print(f"[dim]{description}: {time.perf_counter() - started:.1f}s[/dim]")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(options: Options) -> int:
    run_id = secrets.token_hex(4)
    db_name = f"bench_auth_{run_id}"
    prefix = f"bench-{run_id}:"
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{run_id}-"))
    server: Server | None = None
    database_created = False
    try:
        with phase("creating the database and migrating"):
            database_created = True  # dropped IF EXISTS: safe even if creation fails
            database_url = asyncio.run(create_database(options.admin_url, db_name))
            migrate.upgrade(database_url)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": options.redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "RATE_LIMIT_ENABLED": "false",
            "RUN_SCHEDULER": "false",
            "LOG_LEVEL": "WARNING",
            "JWT_SECRET": secrets.token_urlsafe(48),
            "WORKERS": str(options.workers),
            "ARGON2_TIME_COST": str(options.argon2_time_cost),
            "ARGON2_MEMORY_COST": str(options.argon2_memory_cost),
            "VAR_DIR": str(workdir / "var"),
            "OUTBOX_DIR": str(workdir / "outbox"),
            "SMTP_URL": "",
            "SENTRY_DSN": "",
        }
        with phase(f"starting the server ({options.workers} worker(s))"):
            server = start_server(options, env, workdir)
            wait_ready(server)
        with phase(f"registering {options.users} accounts"):
            accounts = asyncio.run(register_accounts(server.base_url, run_id, options.users))
        results: dict[Kind, Measurement] = {}
        load_before = os.getloadavg()
        if load_before[0] > 1.0:
            console.print(
                f"[yellow]load average {load_before[0]:.1f} before the run: other work is "
                "sharing the CPUs, and the figures will show it[/yellow]"
            )
        for endpoint in ENDPOINTS:
            parts = request_parts(endpoint.kind, accounts)
            with phase(f"{endpoint.label}: {options.warmup:g}s warm-up + {options.duration:g}s"):
                if options.tool == "wrk":
                    results[endpoint.kind] = run_wrk(options, server, endpoint, parts, workdir)
                else:
                    results[endpoint.kind] = run_httpx(options, server, endpoint, parts)
            if server.process.poll() is not None:
                raise RuntimeError(f"the server died:\n{server.log_tail()}")
            wait_idle(server)
        console.print(render(options, results))
        path = write_results(options, results, load_before, os.getloadavg())
        console.print(f"results: {path}")
        return 0
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; cleaning up[/yellow]")
        return 130
    except Exception as exc:
        console.print(f"[red]benchmark failed: {exc}[/red]")
        return 1
    finally:
        _cleanup(options, server, database_created, db_name, prefix, workdir)


def _cleanup(
    options: Options,
    server: Server | None,
    database_created: bool,
    db_name: str,
    prefix: str,
    workdir: Path,
) -> None:
    # A second Ctrl-C or SIGTERM must not cut the clean-up short.
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        if server is not None:
            stop_server(server)
        if database_created:
            try:
                asyncio.run(drop_database(options.admin_url, db_name))
            except Exception as exc:
                console.print(f"[red]could not drop database {db_name}: {exc}[/red]")
        try:
            asyncio.run(delete_redis_keys(options.redis_url, prefix))
        except Exception as exc:
            console.print(f"[red]could not delete Redis keys {prefix}*: {exc}[/red]")
        shutil.rmtree(workdir, ignore_errors=True)
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


def main() -> None:
    options = parse_options()
    with sigterm_as_interrupt():
        code = run(options)
    sys.exit(code)


if __name__ == "__main__":
    main()
