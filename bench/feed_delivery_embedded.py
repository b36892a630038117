"""The feed's delivery time in the embedded set-up: how long after `POST /api/patterns` an
author's new pattern is in the feeds of all 100,000 followers, when the server runs on its
defaults (SQLite file, in-process job queue and cache, no Redis), beside an author with
one follower measured in the same run.

Migrates a fresh SQLite database in a temporary folder, starts the real server on it
(``beatmachine serve``, default machines installed, its in-process job worker on),
registers the two authors through the API, seeds 100,000 people who follow the first
(SQLAlchemy bulk inserts into the same file), then posts patterns, the two authors taking
turns, and polls the file (read-only) until each pattern's activity is in every
follower's feed. Everything is removed at the end, also on failure or Ctrl-C. See
bench/README.md.

    .venv/bin/python bench/feed_delivery_embedded.py [--followers 100000] [--posts 10]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _harness import (
    BENCH_DIR,
    console,
    git_commit,
    machine_info,
    percentile,
    phase,
    result_stamp,
    run_benchmark,
    save_results,
    start_server,
    stop_server,
    wait_idle,
    wait_ready,
    warn_if_busy,
)
from rich.table import Table
from sqlalchemy import create_engine, insert

from beatmachine.core import migrate
from beatmachine.social.models import Follow
from beatmachine.users.models import User, UserPreferences

DELIVERY_BOUND_SECONDS = 5.0  # docs/api.md, "Feed": "How soon"
PASSWORD = "bench-" + secrets.token_urlsafe(12)
SEED_BATCH = 10_000


@dataclass(frozen=True)
class Options:
    followers: int
    posts: int
    post_warmup: int
    poll_ms: float
    delivery_timeout: float
    keep: bool


@dataclass
class Deliveries:
    """The posts of one author and how long each took to reach all its followers."""

    followers: int
    request_ms: list[float] = field(default_factory=list)
    recorded_s: list[float] = field(default_factory=list)
    delivered_s: list[float] = field(default_factory=list)
    timeouts: int = 0

    def summary(self) -> dict[str, Any]:
        delivered = sorted(self.delivered_s)
        return {
            "followers": self.followers,
            "posts": len(self.request_ms),
            "request_p50_ms": percentile(sorted(self.request_ms), 50),
            "recorded_p50_s": percentile(sorted(self.recorded_s), 50),
            "delivered_p50_s": percentile(delivered, 50),
            "delivered_max_s": delivered[-1] if delivered else None,
            "delivered_mean_s": statistics.fmean(delivered) if delivered else None,
            "timeouts": self.timeouts,
        }


def parse() -> Options:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--followers", type=int, default=100_000, help="of the first author")
    parser.add_argument("--posts", type=int, default=10, help="measured posts per author")
    parser.add_argument("--post-warmup", type=int, default=1, help="unmeasured posts first")
    parser.add_argument("--poll-ms", type=float, default=50.0, help="delivery check interval")
    parser.add_argument("--delivery-timeout", type=float, default=120.0)
    parser.add_argument("--keep", action="store_true", help="keep the folder (prints it)")
    args = parser.parse_args()
    return Options(
        followers=args.followers,
        posts=args.posts,
        post_warmup=args.post_warmup,
        poll_ms=args.poll_ms,
        delivery_timeout=args.delivery_timeout,
        keep=args.keep,
    )


def server_env(workdir: Path, database: Path) -> dict[str, str]:
    """The defaults of the embedded set-up, with no rate limits (the bench posts faster
    than a person may) and mail to a folder."""
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "REDIS_URL": "",
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "JWT_SECRET": secrets.token_urlsafe(48),
        "JWT_EXPIRES_IN": "14400",
        "VAR_DIR": str(workdir / "var"),
        "OUTBOX_DIR": str(workdir / "outbox"),
        "SMTP_URL": "",
        "SENTRY_DSN": "",
        "MACHINES_DIR": "",
        "INSTALL_DEFAULT_MACHINES": "true",
    }


def register(client: httpx.Client, name: str) -> tuple[str, str]:
    """A new account through the API: its id and token."""
    response = client.post(
        "/api/auth/register",
        json={
            "email": f"{name}-{secrets.token_hex(4)}@bench.example.com",
            "password": PASSWORD,
            "displayName": name.title(),
            "acceptTerms": True,
        },
    )
    response.raise_for_status()
    data = response.json()["data"]
    return data["user"]["id"], data["token"]


def people(count: int) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """`count` people in batches: their users rows and their preferences rows."""
    now = datetime.now(UTC)
    for start in range(0, count, SEED_BATCH):
        users, preferences = [], []
        for number in range(start, min(start + SEED_BATCH, count)):
            user_id = f"usr_bench{number:027d}"
            created = now - timedelta(days=30, seconds=number)
            users.append(
                {
                    "id": user_id,
                    "email": f"follower{number}@bench.example.com",
                    "password_hash": "!",  # no password: these people never sign in
                    "display_name": f"Follower {number}",
                    "is_admin": False,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            preferences.append({"user_id": user_id})
        yield users, preferences


def seed_followers(database: Path, author_id: str, count: int) -> None:
    """`count` people, each following `author_id`, in one transaction."""
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 60})
    try:
        with engine.begin() as connection:
            for users, preferences in people(count):
                connection.execute(insert(User.__table__), users)
                connection.execute(insert(UserPreferences.__table__), preferences)
                connection.execute(
                    insert(Follow.__table__),
                    [
                        {
                            "follower_id": user["id"],
                            "followee_id": author_id,
                            "created_at": user["created_at"],
                        }
                        for user in users
                    ],
                )
    finally:
        engine.dispose()


def pattern_body(number: int) -> dict[str, Any]:
    return {
        "title": f"Bench groove {number}",
        "flavor": "Salsa",
        "bpm": 180,
        "keyNote": 0,
        "isPublic": True,
        "configuration": {
            "instruments": [
                {"id": "clave", "enabled": True, "activeProgram": 0, "volume": 0.9},
            ]
        },
    }


def delivery(
    reader: sqlite3.Connection, pattern_id: str, followers: int, sent: float, options: Options
) -> tuple[float | None, float | None]:
    """Poll until the pattern's activity is in `followers` feeds: seconds from `sent` to
    the activity being recorded and to its last feed entry (None on a timeout)."""
    recorded: float | None = None
    deadline = sent + options.delivery_timeout
    while time.perf_counter() < deadline:
        activity = reader.execute(
            "SELECT id FROM activities WHERE pattern_id = ? AND type = 'pattern_created'",
            (pattern_id,),
        ).fetchone()
        now = time.perf_counter() - sent
        if activity is not None:
            if recorded is None:
                recorded = now
            (entries,) = reader.execute(
                "SELECT count(*) FROM feed_entries WHERE activity_id = ?", (activity[0],)
            ).fetchone()
            if entries >= followers:
                return recorded, time.perf_counter() - sent
        time.sleep(options.poll_ms / 1000.0)
    return recorded, None


def run(options: Options) -> int:
    load = warn_if_busy()
    workdir = Path(tempfile.mkdtemp(prefix="bench-embedded-feed-"))
    database = workdir / "var" / "beatmachine.db"
    server = None
    try:
        with phase("migrating a fresh SQLite database"):
            migrate.upgrade(f"sqlite+aiosqlite:///{database}")
        env = server_env(workdir, database)
        server = start_server(env, workdir, workers=1)
        wait_ready(server)
        with httpx.Client(base_url=server.base_url, timeout=120.0) as client:
            celebrity, celebrity_token = register(client, "celebrity")
            quiet, quiet_token = register(client, "quiet")
            _, follower_token = register(client, "follower")
            client.post(
                f"/api/users/{quiet}/follow", headers={"Authorization": f"Bearer {follower_token}"}
            ).raise_for_status()
            with phase(f"seeding {options.followers:,} followers of one author"):
                seed_followers(database, celebrity, options.followers)
            wait_idle(server)
            authors = {
                "celebrity": (celebrity_token, Deliveries(options.followers)),
                "quiet": (quiet_token, Deliveries(1)),
            }
            reader = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=60)
            number = 0
            try:
                for index in range(options.post_warmup + options.posts):
                    order = ("celebrity", "quiet") if index % 2 == 0 else ("quiet", "celebrity")
                    for name in order:
                        token, result = authors[name]
                        number += 1
                        sent = time.perf_counter()
                        response = client.post(
                            "/api/patterns",
                            json=pattern_body(number),
                            headers={"Authorization": f"Bearer {token}"},
                        )
                        elapsed_ms = (time.perf_counter() - sent) * 1000.0
                        if response.status_code != 201:
                            console.print(f"[red]POST /api/patterns: {response.text[:300]}[/red]")
                            return 1
                        recorded, delivered = delivery(
                            reader, response.json()["data"]["id"], result.followers, sent, options
                        )
                        wait_idle(server)
                        if index < options.post_warmup:
                            continue
                        result.request_ms.append(elapsed_ms)
                        if recorded is not None:
                            result.recorded_s.append(recorded)
                        if delivered is None:
                            result.timeouts += 1
                        else:
                            result.delivered_s.append(delivered)
            finally:
                reader.close()
        summaries = {name: result.summary() for name, (_, result) in authors.items()}
        table = Table(title="Delivery into the feeds, embedded set-up (SQLite, in-process queue)")
        for column in ("author", "followers", "POST p50 ms", "recorded p50 s", "delivered p50 s"):
            table.add_column(column, justify="right")
        table.add_column("delivered max s", justify="right")
        for name, summary in summaries.items():
            table.add_row(
                name,
                f"{summary['followers']:,}",
                f"{summary['request_p50_ms']:.1f}",
                f"{summary['recorded_p50_s']:.2f}",
                f"{summary['delivered_p50_s']:.2f}",
                f"{summary['delivered_max_s']:.2f}",
            )
        console.print(table)
        slowest = summaries["celebrity"]["delivered_max_s"]
        within = slowest is not None and slowest <= DELIVERY_BOUND_SECONDS
        timeouts = sum(summary["timeouts"] for summary in summaries.values())
        console.print(
            f"documented bound {DELIVERY_BOUND_SECONDS:g} s: "
            + ("[green]within[/green]" if within and not timeouts else "[red]exceeded[/red]")
        )
        path = save_results(
            BENCH_DIR / "results",
            "feed_delivery_embedded",
            result_stamp(),
            {
                "options": asdict(options),
                "commit": git_commit(),
                "machine": machine_info(load, os.getloadavg()),
                "authors": summaries,
                "raw": {name: asdict(result) for name, (_, result) in authors.items()},
                "bound_s": DELIVERY_BOUND_SECONDS,
                "within_bound": within,
            },
        )
        console.print(f"results: {path}")
        return 0 if within and not timeouts else 2
    finally:
        if server is not None:
            stop_server(server)
        if options.keep:
            console.print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    run_benchmark(parse, run)
