"""Job queue throughput and enqueue-to-start latency: 10,000 small jobs, two worker
processes.

Creates a fresh PostgreSQL database and a Redis key prefix of its own, starts two real
worker processes (bench/_job_worker.py: `build_state`, the job queue, taskiq's receiver and
the production Redis Streams broker, or with `--broker database` the embedded database
queue), and queues a small job that notes when it started. Two phases:

    burst   all jobs queued at once (in batches of 500): jobs per second from the first
            enqueue to the last start; the latency is then mostly the wait in the queue
    paced   the same number queued one by one at a steady rate (half the burst's rate
            by default): the latency a job sees when workers keep up

For each it reports jobs/s and the enqueue-to-start latency p50, p90, p99 and max, and
checks that every job ran exactly once. Everything it creates is removed at the end.

    .venv/bin/python bench/jobs_throughput.py [--jobs 10000] [--workers 2] [--broker redis]
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from _harness import (
    BENCH_DIR,
    console,
    environment,
    git_commit,
    machine_info,
    percentile,
    phase,
    result_stamp,
    run_benchmark,
    save_results,
    service_parser,
    warn_if_busy,
)
from redis.asyncio import Redis
from rich.table import Table

from beatmachine.core import migrate
from beatmachine.core.config import Settings
from beatmachine.core.jobs import JobCall, JobQueue
from beatmachine.instance import build_state

JOB = "bench.note"
BATCH = 500
Broker = Literal["redis", "database"]


@dataclass(frozen=True)
class Options:
    admin_url: str
    redis_url: str
    jobs: int
    workers: int
    concurrency: int
    broker: Broker
    paced_rate: float
    results_dir: Path


@dataclass(frozen=True)
class Phase:
    name: str
    jobs: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies_ms)
        return {
            "jobs": self.jobs,
            "seconds": self.seconds,
            "jobs_per_second": self.rate,
            "p50_ms": percentile(ordered, 50),
            "p90_ms": percentile(ordered, 90),
            "p99_ms": percentile(ordered, 99),
            "max_ms": ordered[-1] if ordered else float("nan"),
        }


def parse_options(argv: list[str] | None = None) -> Options:
    parser = service_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per phase")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--concurrency", type=int, default=20, help="jobs at once per worker (JOB_CONCURRENCY)"
    )
    parser.add_argument("--broker", choices=["redis", "database"], default="redis")
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=0.0,
        help="jobs/s of the paced phase (default: half the burst's rate)",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH_DIR / "results", help="where to write JSON"
    )
    args = parser.parse_args(argv)
    return Options(
        admin_url=args.admin_url,
        redis_url=args.redis_url,
        jobs=args.jobs,
        workers=args.workers,
        concurrency=args.concurrency,
        broker=args.broker,
        paced_rate=args.paced_rate,
        results_dir=args.results_dir,
    )


def worker_env(options: Options, database_url: str, prefix: str, workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": options.redis_url if options.broker == "redis" else "",
        "REDIS_KEY_PREFIX": prefix,
        "JOB_CONCURRENCY": str(options.concurrency),
        "LOG_LEVEL": "WARNING",
        "VAR_DIR": str(workdir / "var"),
        "INSTALL_DEFAULT_MACHINES": "false",
        "JWT_SECRET": "bench-" + "x" * 40,
        "BENCH_NOTES_URL": options.redis_url,
        "BENCH_NOTES_KEY": f"{prefix}bench:notes",
    }


def start_workers(env: dict[str, str], count: int, workdir: Path) -> list[subprocess.Popen[bytes]]:
    workers = []
    for number in range(count):
        log = (workdir / f"worker-{number}.log").open("wb")
        workers.append(
            subprocess.Popen(
                [sys.executable, str(BENCH_DIR / "_job_worker.py")],
                env=env,
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    deadline = time.monotonic() + 60
    for number, worker in enumerate(workers):
        log_path = workdir / f"worker-{number}.log"
        while b"bench_worker_ready" not in log_path.read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {number} did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


async def _wait_for(
    notes: Redis, key: str, count: int, within: float, jobs: JobQueue
) -> list[bytes]:
    """The notes of `count` jobs once all ran and the queue is empty; a job that ran twice
    (or one that never ran) makes the run invalid."""
    deadline = time.monotonic() + within
    while await notes.llen(key) < count or await jobs.backlog():
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {await notes.llen(key)} of {count} jobs ran in {within} s")
        await asyncio.sleep(0.05)
    values: list[bytes] = await notes.lrange(key, 0, -1)
    if len(values) != count:
        raise RuntimeError(f"{len(values)} runs of {count} jobs: some ran more than once")
    return values


def _phase(name: str, values: list[bytes], first_queued: float) -> Phase:
    latencies, starts = [], []
    for value in values:
        latency, started = value.split()
        latencies.append(float(latency) * 1000.0)
        starts.append(float(started))
    return Phase(name, len(values), max(starts) - first_queued, latencies)


async def run_phases(options: Options, settings: Settings, notes_key: str) -> list[Phase]:
    state = build_state(settings)
    notes = Redis.from_url(options.redis_url)
    state.jobs.register(JOB, _never_run_here)
    await state.jobs.start()
    phases = []
    try:
        first = time.time()
        for start in range(0, options.jobs, BATCH):
            size = min(BATCH, options.jobs - start)
            await state.jobs.submit_many([JobCall(JOB, {"queued_at": time.time()})] * size)
        values = await _wait_for(notes, notes_key, options.jobs, 600, state.jobs)
        burst = _phase("burst", values, first)
        phases.append(burst)
        await notes.delete(notes_key)

        rate = options.paced_rate or burst.rate / 2
        first = time.time()
        for number in range(options.jobs):
            due = first + number / rate
            await asyncio.sleep(max(0.0, due - time.time()))
            await state.jobs.submit(JOB, queued_at=time.time())
        values = await _wait_for(notes, notes_key, options.jobs, 600, state.jobs)
        phases.append(_phase(f"paced at {rate:,.0f}/s", values, first))
        await notes.delete(notes_key)
    finally:
        await notes.aclose()
        await state.aclose()
    return phases


async def _never_run_here(queued_at: float) -> None:
    raise RuntimeError("the benchmark's own process runs no worker")


def render(phases: list[Phase], options: Options) -> Table:
    table = Table(
        title=f"{options.jobs:,} jobs, {options.workers} worker processes x "
        f"{options.concurrency}, {options.broker} broker"
    )
    for column in ("phase", "jobs/s", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    for measured in phases:
        s = measured.summary()
        table.add_row(
            measured.name,
            f"{s['jobs_per_second']:,.0f}",
            f"{s['p50_ms']:.1f}",
            f"{s['p90_ms']:.1f}",
            f"{s['p99_ms']:.1f}",
            f"{s['max_ms']:.1f}",
        )
    return table


def run(options: Options) -> int:
    try:
        with environment(options.admin_url, options.redis_url, "bench_jobs") as env:
            workdir = Path(tempfile.mkdtemp(prefix="bench-jobs-", dir=env.workdir))
            database_url = (
                env.database_url
                if options.broker == "redis"
                else f"sqlite+aiosqlite:///{workdir / 'queue.db'}"
            )
            if options.broker == "database":
                migrate.upgrade(database_url)
            worker_vars = worker_env(options, database_url, env.prefix, workdir)
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                DATABASE_URL=database_url,
                REDIS_URL=worker_vars["REDIS_URL"],
                REDIS_KEY_PREFIX=env.prefix,
                VAR_DIR=workdir / "var",
                JWT_SECRET=worker_vars["JWT_SECRET"],
                INSTALL_DEFAULT_MACHINES=False,
                LOG_LEVEL="WARNING",
            )
            load_before = warn_if_busy()
            with phase(f"starting {options.workers} worker processes"):
                workers = start_workers(worker_vars, options.workers, workdir)
            try:
                with phase(f"queueing and running {options.jobs:,} jobs, twice"):
                    phases = asyncio.run(
                        run_phases(options, settings, worker_vars["BENCH_NOTES_KEY"])
                    )
            finally:
                stop_workers(workers)
            console.print(render(phases, options))
            path = write_results(options, phases, load_before)
            console.print(f"results: {path}")
            return 0
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; cleaned up[/yellow]")
        return 130
    except Exception as exc:
        console.print(f"[red]benchmark failed: {exc}[/red]")
        return 1


def write_results(options: Options, phases: list[Phase], load: tuple[float, float, float]) -> Path:
    stamp = result_stamp()
    document: dict[str, Any] = {
        "benchmark": "jobs_throughput",
        "finished_at": stamp,
        "git_commit": git_commit(),
        "machine": machine_info(load, os.getloadavg()),
        "options": {k: v for k, v in asdict(options).items() if k not in ("admin_url",)},
        "phases": {measured.name: measured.summary() for measured in phases},
    }
    return save_results(options.results_dir, "jobs_throughput", stamp, document)


def main() -> None:
    run_benchmark(parse_options, run)


if __name__ == "__main__":
    main()
