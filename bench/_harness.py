"""Shared parts of the load benchmarks: a throw-away environment (PostgreSQL database,
Redis key prefix, working folder), the real server as a subprocess, and closed-loop load
from separate processes (httpx on uvloop, or ``wrk``) with the CPU of both sides and the
server's peak memory.

A benchmark describes its requests as `Scenario`s and gets a `Measurement` for each.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import uvloop
from redis.asyncio import Redis
from rich.console import Console
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from beatmachine.core import migrate

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

Tool = Literal["httpx", "wrk"]

# Wide enough for the tables when the output goes to a file or a pipe.
console = Console() if sys.stdout.isatty() else Console(width=140)


OptionsT = TypeVar("OptionsT")


def default_tool() -> Tool:
    return "wrk" if shutil.which("wrk") else "httpx"


# --- what is measured -------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One kind of request, sent over and over.

    `variants` are (headers, body, path) triples, cycled through (e.g. one per account,
    or one per resource); an empty path is the scenario's `path`. A response counts as
    an error unless its status is `expect`.
    """

    key: str
    method: str
    path: str
    variants: tuple[tuple[tuple[tuple[str, str], ...], bytes, str], ...]
    expect: int = 200
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @staticmethod
    def make(
        key: str,
        method: str,
        path: str,
        headers: Sequence[dict[str, str]] = ({},),
        body: bytes = b"",
        expect: int = 200,
        note: str = "",
    ) -> Scenario:
        return Scenario.rotating(key, method, path, [(h, body) for h in headers], expect, note)

    @staticmethod
    def rotating(
        key: str,
        method: str,
        path: str,
        requests: Sequence[tuple[Mapping[str, str], bytes]],
        expect: int = 200,
        note: str = "",
    ) -> Scenario:
        """Requests that differ in headers and body too, e.g. a login per account."""
        variants = tuple((tuple(headers.items()), body, "") for headers, body in requests)
        return Scenario(key, method, path, variants, expect, note)

    @staticmethod
    def across(
        key: str,
        method: str,
        paths: Sequence[str],
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        expect: int = 200,
        note: str = "",
    ) -> Scenario:
        """The same request to several paths in turn, e.g. one per pattern."""
        fixed = tuple((headers or {}).items())
        variants = tuple((fixed, body, path) for path in paths)
        return Scenario(key, method, paths[0], variants, expect, note)


@dataclass(frozen=True)
class Measurement:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    body_bytes: float  # mean body size of the answers (after any content coding)
    server_cpu_pct: float  # percent of one core, all server processes
    client_cpu_pct: float  # percent of one core, all load-generator processes
    expect: int
    server_peak_rss_mib: float = math.nan  # all server processes together

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != str(self.expect))

    @property
    def server_cpu_us(self) -> float:
        """Server CPU time per request, in microseconds. Unlike requests/s it does not
        depend on how much of the machine the server got, so it is the steadier figure
        when other work shares the CPUs."""
        return self.server_cpu_pct * 1e4 / self.rps if self.rps else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": self.seconds,
            "rps": self.rps,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "expected_status": self.expect,
            "statuses": self.statuses,
            "errors": self.errors,
            "body_bytes": self.body_bytes,
            "server_cpu_pct": self.server_cpu_pct,
            "server_cpu_us_per_request": self.server_cpu_us,
            "client_cpu_pct": self.client_cpu_pct,
            "server_peak_rss_mib": self.server_peak_rss_mib,
        }


@dataclass(frozen=True)
class LoadOptions:
    tool: Tool
    concurrency: int
    duration: float
    warmup: float
    client_procs: int = 1  # httpx only


# --- the environment: database, Redis prefix, working folder ----------------------------


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


@dataclass
class Environment:
    """A fresh, migrated database, a Redis key prefix and a working folder of one run."""

    run_id: str
    admin_url: str
    redis_url: str
    db_name: str
    prefix: str
    workdir: Path
    database_url: str = ""
    server: Server | None = None

    def server_env(self, workers: int, **extra: str) -> dict[str, str]:
        """The server's environment: this run's database and prefix, no rate limits, no
        scheduler, quiet logs, a random signing key, mail to a folder."""
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "REDIS_KEY_PREFIX": self.prefix,
            "RATE_LIMIT_ENABLED": "false",
            "RUN_SCHEDULER": "false",
            "LOG_LEVEL": "WARNING",
            "JWT_SECRET": secrets.token_urlsafe(48),
            "WORKERS": str(workers),
            "VAR_DIR": str(self.workdir / "var"),
            "OUTBOX_DIR": str(self.workdir / "outbox"),
            "SMTP_URL": "",
            "SENTRY_DSN": "",
            "MACHINES_DIR": "",
            **extra,
        }

    def cli(self, env: dict[str, str], *args: str) -> str:
        """Run `beatmachine ARGS...` with `env` in the working folder; its output."""
        completed = subprocess.run(
            [sys.executable, "-m", "beatmachine.cli", *args],
            env={**env, "COLUMNS": "200"},
            cwd=self.workdir,  # no developer's .env is picked up
            capture_output=True,
            text=True,
            check=False,
        )
        output = (completed.stdout + completed.stderr).strip()
        if completed.returncode != 0:
            raise RuntimeError(f"beatmachine {' '.join(args)} failed:\n{output}")
        return output

    def start_server(self, env: dict[str, str], workers: int, app: str | None = None) -> Server:
        self.server = start_server(env, self.workdir, workers, app)
        wait_ready(self.server)
        return self.server

    def stop_server(self) -> None:
        if self.server is not None:
            stop_server(self.server)
            self.server = None


def service_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's argument parser, with the options every one of them has: where its
    database is created and which Redis it uses."""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0] if doc else None,
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
    return parser


@contextmanager
def environment(
    admin_url: str, redis_url: str, db_prefix: str, *, keep_database: bool = False
) -> Iterator[Environment]:
    """Create and migrate a database `<db_prefix>_<id>`; on exit (also on errors and
    Ctrl-C) stop the server, drop the database (unless `keep_database`, to study its
    queries afterwards) and delete the Redis keys."""
    run_id = secrets.token_hex(4)
    env = Environment(
        run_id=run_id,
        admin_url=admin_url,
        redis_url=redis_url,
        db_name=f"{db_prefix}_{run_id}",
        prefix=f"bench-{run_id}:",
        workdir=Path(tempfile.mkdtemp(prefix=f"bench-{run_id}-")),
    )
    try:
        with phase("creating the database and migrating"):
            env.database_url = asyncio.run(create_database(admin_url, env.db_name))
            migrate.upgrade(env.database_url)
        yield env
    finally:
        _cleanup(env, keep_database=keep_database)


def _cleanup(env: Environment, *, keep_database: bool = False) -> None:
    # A second Ctrl-C or SIGTERM must not cut the clean-up short.
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        if env.server is not None:
            stop_server(env.server)
        if keep_database:
            console.print(f"kept database {env.db_name} (drop it with DROP DATABASE)")
        else:
            try:  # IF EXISTS: safe when the creation itself failed
                asyncio.run(drop_database(env.admin_url, env.db_name))
            except Exception as exc:
                console.print(f"[red]could not drop database {env.db_name}: {exc}[/red]")
        try:
            asyncio.run(delete_redis_keys(env.redis_url, env.prefix))
        except Exception as exc:
            console.print(f"[red]could not delete Redis keys {env.prefix}*: {exc}[/red]")
        shutil.rmtree(env.workdir, ignore_errors=True)
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


# --- the server --------------------------------------------------------------------------


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

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the server exited ({self.process.returncode}):\n{self.log_tail()}")

    def pids(self) -> list[int]:
        return _descendants(self.process.pid)


def start_server(
    env: dict[str, str], workdir: Path, workers: int, app: str | None = None
) -> Server:
    """`beatmachine serve --no-migrate` (uvicorn, uvloop, httptools) on a free port; with
    `app` (`module:attribute`, importable from bench/), uvicorn serving that app instead,
    with the same server options."""
    port = free_port()
    log_path = workdir / "server.log"
    address = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if app is None:
        command = [sys.executable, "-m", "beatmachine.cli", "serve", "--no-migrate", *address]
    else:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            *address,
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
        ]
        env = {**env, "PYTHONPATH": str(BENCH_DIR)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=workdir,
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
            server.check_alive()
            try:
                response = client.get("/readyz")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout:.0f}s ({last}):\n{server.log_tail()}")


# --- CPU and memory of the server (all its processes, from /proc) -----------------------


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
    peak_rss_mib: float  # sampled every 0.1 s


def sample_server(server: Server, start_at: float, seconds: float) -> ServerSample:
    """CPU and peak memory of the server between start_at and start_at + seconds."""
    if not Path("/proc").is_dir():
        return ServerSample(math.nan, math.nan)
    time.sleep(max(0.0, start_at - time.time()))
    pids = server.pids()
    before, begun = _cpu_seconds(pids), time.perf_counter()
    peak = _rss_mib(pids)
    while (left := seconds - (time.perf_counter() - begun)) > 0:
        time.sleep(min(0.1, left))
        peak = max(peak, _rss_mib(pids))
    after, elapsed = _cpu_seconds(pids), time.perf_counter() - begun
    return ServerSample(100.0 * (after - before) / elapsed, peak)


def sample_server_cpu(server: Server, start_at: float, seconds: float) -> float:
    """Percent of one core the server used between start_at and start_at + seconds."""
    return sample_server(server, start_at, seconds).cpu_pct


def wait_idle(server: Server, timeout: float = 60.0) -> None:
    """Wait until the server has finished the work of requests whose clients are gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sample_server_cpu(server, 0.0, 0.5) < 10.0:
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


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)]


# --- load: httpx in separate processes ---------------------------------------------------


@dataclass(frozen=True)
class _LoadSpec:
    url: str
    scenario: Scenario
    connections: int
    offset: int  # spreads the variants over the processes
    warmup: float
    duration: float


@dataclass
class _LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    body_bytes: int = 0
    cpu_seconds: float = 0.0


async def _load(spec: _LoadSpec, pipe: Connection) -> _LoadResult:
    result = _LoadResult()
    limits = httpx.Limits(
        max_connections=spec.connections,
        max_keepalive_connections=spec.connections,
        keepalive_expiry=120.0,
    )
    measure_from = measure_until = math.inf
    base = spec.url.removesuffix(spec.scenario.path)
    variants = [
        (dict(headers), body, base + path if path else spec.url)
        for headers, body, path in spec.scenario.variants
    ]
    method = spec.scenario.method

    async def connection_loop(client: httpx.AsyncClient, slot: int) -> None:
        index = spec.offset + slot
        while time.time() < measure_until:
            headers, body, url = variants[index % len(variants)]
            index += spec.connections
            size = 0
            started = time.perf_counter()
            try:
                request = client.build_request(method, url, headers=headers, content=body)
                response = await client.send(request, stream=True)
                try:
                    # Raw bytes: the client does not decode gzip or brotli.
                    async for chunk in response.aiter_raw():
                        size += len(chunk)
                finally:
                    await response.aclose()
                status = str(response.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            finished = time.perf_counter()
            if measure_from <= time.time() < measure_until:
                result.statuses[status] += 1
                result.body_bytes += size
                result.latencies_ms.append((finished - started) * 1000.0)

    async def cpu_marker() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.time()))
        cpu_at_start = time.process_time()
        await asyncio.sleep(max(0.0, measure_until - time.time()))
        result.cpu_seconds = time.process_time() - cpu_at_start

    async with httpx.AsyncClient(limits=limits, timeout=120.0) as client:
        # Start barrier: the parent answers once every process has started, with a
        # wall-clock start time common to all of them.
        pipe.send("ready")
        start_at: float = pipe.recv()
        measure_from = start_at + spec.warmup
        measure_until = measure_from + spec.duration
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await asyncio.gather(
            cpu_marker(), *(connection_loop(client, i) for i in range(spec.connections))
        )
    return result


def _load_process(spec: _LoadSpec, pipe: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(_load(spec, pipe))
    pipe.send(result)
    pipe.close()


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_httpx(options: LoadOptions, server: Server, scenario: Scenario) -> Measurement:
    context = multiprocessing.get_context("spawn")
    processes: list[tuple[BaseProcess, Connection]] = []
    results: list[_LoadResult] = []
    try:
        offset = 0
        for connections in split(
            options.concurrency, min(options.client_procs, options.concurrency)
        ):
            receiver, sender = context.Pipe(duplex=True)
            spec = _LoadSpec(
                server.base_url + scenario.path,
                scenario,
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
        server_sample = sample_server(server, start_at + options.warmup, options.duration)
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
        body_bytes=sum(r.body_bytes for r in results) / len(latencies) if latencies else 0.0,
        server_cpu_pct=server_sample.cpu_pct,
        client_cpu_pct=100.0 * sum(r.cpu_seconds for r in results) / options.duration,
        expect=scenario.expect,
        server_peak_rss_mib=server_sample.peak_rss_mib,
    )


# --- load: wrk ---------------------------------------------------------------------------

# `response` counts the status codes and body sizes per thread; `done` adds them up and
# prints one JSON line.
WRK_SCRIPT = """
local method, path = %(method)s, %(path)s
local variants = %(variants)s
local threads = {}
local counter = 0
function setup(thread)
  table.insert(threads, thread)
  thread:set("offset", #threads - 1)
end
function init(args)
  statuses = {}
  body_bytes = 0
end
function request()
  counter = counter + 1
  local v = variants[((counter + (offset or 0)) %% #variants) + 1]
  return wrk.format(method, v[3] or path, v[1], v[2])
end
function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if body then body_bytes = body_bytes + #body end
end
function done(summary, latency, requests)
  local total, counts = 0, {}
  for _, thread in ipairs(threads) do
    total = total + (thread:get("body_bytes") or 0)
    for status, n in pairs(thread:get("statuses") or {}) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format("\\"%%s\\": %%d", status, n))
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50_us\\": %%d, "
    .. "\\"p90_us\\": %%d, \\"p99_us\\": %%d, \\"max_us\\": %%d, \\"connect\\": %%d, "
    .. "\\"read\\": %%d, \\"write\\": %%d, \\"timeout\\": %%d, \\"body_bytes\\": %%d, "
    .. "\\"statuses\\": {%%s}}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, total,
    table.concat(parts, ", ")))
end
"""


def _lua_string(value: str | bytes) -> str:
    raw = value.decode() if isinstance(value, bytes) else value
    return json.dumps(raw)  # a JSON string of ASCII is a valid Lua string literal


def wrk_script(scenario: Scenario) -> str:
    lua_variants = []
    for headers, body, path in scenario.variants:
        lua_headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers)
        lua_body = _lua_string(body) if body else "nil"
        lua_path = _lua_string(path) if path else "nil"
        lua_variants.append(f"{{{{{lua_headers}}}, {lua_body}, {lua_path}}}")
    return WRK_SCRIPT % {
        "method": _lua_string(scenario.method),
        "path": _lua_string(scenario.path),
        "variants": "{" + ",\n".join(lua_variants) + "}",
    }


def wrk_threads(concurrency: int) -> int:
    return min(concurrency, os.cpu_count() or 1)


def run_wrk(options: LoadOptions, server: Server, scenario: Scenario, workdir: Path) -> Measurement:
    script = workdir / f"{scenario.key}.lua"
    script.write_text(wrk_script(scenario))

    def wrk(seconds: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "wrk",
                "-t",
                str(wrk_threads(options.concurrency)),
                "-c",
                str(options.concurrency),
                "-d",
                f"{max(1, math.ceil(seconds))}s",  # wrk takes whole seconds
                "--timeout",
                "120s",
                "-s",
                str(script),
                server.base_url + scenario.path,
            ],
            capture_output=True,
            text=True,
            check=True,
        )

    if options.warmup > 0:
        wrk(options.warmup)
        wait_idle(server)  # wrk may leave unanswered requests behind
    # The server's CPU is sampled while wrk runs; wrk's own CPU comes from the rusage of
    # our finished children.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_sample = _sample_in_background(server, time.time() + 0.2, options.duration - 0.4)
    completed = wrk(options.duration)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = data["duration_us"] / 1e6
    statuses: dict[str, int] = dict(data["statuses"])
    for kind in ("connect", "read", "write", "timeout"):
        if data[kind]:
            statuses[f"wrk {kind} error"] = data[kind]
    answered = sum(data["statuses"].values())
    client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    sample = server_sample()
    return Measurement(
        requests=data["requests"],
        seconds=seconds,
        p50_ms=data["p50_us"] / 1000.0,
        p90_ms=data["p90_us"] / 1000.0,
        p99_ms=data["p99_us"] / 1000.0,
        max_ms=data["max_us"] / 1000.0,
        statuses=statuses,
        body_bytes=data["body_bytes"] / answered if answered else 0.0,
        server_cpu_pct=sample.cpu_pct,
        client_cpu_pct=100.0 * client_cpu / seconds,
        expect=scenario.expect,
        server_peak_rss_mib=sample.peak_rss_mib,
    )


def measure(options: LoadOptions, server: Server, scenario: Scenario, workdir: Path) -> Measurement:
    """Warm up, then measure one scenario; waits for the server to go idle afterwards."""
    if options.tool == "wrk":
        result = run_wrk(options, server, scenario, workdir)
    else:
        result = run_httpx(options, server, scenario)
    server.check_alive()
    wait_idle(server)
    return result


def client_bound(options: LoadOptions, result: Measurement, workers: int) -> bool:
    """True when the server had CPU to spare while the load generator had none: then the
    client, not the server, set the pace."""
    server_cap = 100.0 * min(workers, os.cpu_count() or 1)
    client_cap = 100.0 * (
        wrk_threads(options.concurrency)
        if options.tool == "wrk"
        else min(options.client_procs, options.concurrency)
    )
    return result.server_cpu_pct < 0.8 * server_cap and result.client_cpu_pct > 0.8 * client_cap


# --- reporting -----------------------------------------------------------------------------


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


def run_benchmark(parse: Callable[[], OptionsT], run: Callable[[OptionsT], int]) -> None:
    """The `main` of a benchmark: parse its options, run it with SIGTERM taken as an
    interrupt (so it cleans up), print the total time and exit with its code."""
    options = parse()
    started = time.perf_counter()
    with sigterm_as_interrupt():
        code = run(options)
    console.print(f"[dim]total {time.perf_counter() - started:.0f}s[/dim]")
    sys.exit(code)


def result_stamp() -> str:
    """The UTC time that names and dates a run's results (`20261201T124808Z`)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def save_results(results_dir: Path, benchmark: str, stamp: str, document: Any) -> Path:
    """Write a run's results as `<benchmark>-<stamp>.json` in `results_dir`."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{benchmark}-{stamp}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def write_run(
    results_dir: Path,
    benchmark: str,
    options: Mapping[str, Any],
    body: Mapping[str, Any],
    load_before: tuple[float, float, float],
) -> Path:
    """Write a run's results: what every run records (when, the commit, the machine and
    its load before and after, the options but the admin URL) and the benchmark's own."""
    stamp = result_stamp()
    document: dict[str, Any] = {
        "benchmark": benchmark,
        "finished_at": stamp,
        "git_commit": git_commit(),
        "machine": machine_info(load_before, os.getloadavg()),
        "options": {k: v for k, v in options.items() if k != "admin_url"},
        **body,
    }
    return save_results(results_dir, benchmark, stamp, document)


def warn_if_busy() -> tuple[float, float, float]:
    load = os.getloadavg()
    if load[0] > 1.0:
        console.print(
            f"[yellow]load average {load[0]:.1f} before the run: other work is sharing the "
            "CPUs, and the figures will show it[/yellow]"
        )
    return load


def git_commit() -> str | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=BENCH_DIR, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return completed.stdout.strip() or None


def machine_info(
    load_before: tuple[float, float, float], load_after: tuple[float, float, float]
) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": shutil.which("wrk"),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
