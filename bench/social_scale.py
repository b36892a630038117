"""The social domain at scale: the feed at 10,000 and at 1,000,000 activities, creating a
pattern as an author with 100,000 followers, and that author's followers list.

Creates two fresh PostgreSQL databases (migrated), each with the real server (``beatmachine
serve``, default machines installed, its in-process job worker on) and a private Redis
key prefix, and seeds both in bulk with COPY, indexes built after the load:

    users          100,000 people (plus the reader, the celebrity and a quiet author)
    follows        each person follows two others; the reader follows 1,000 people (the
                   active ones are followed more); all 100,000 follow the celebrity
    activities     pattern_created, pattern_liked, user_followed of public, private and
                   deleted patterns and of real follows, with the patterns and likes they
                   name: 10,000 in the baseline database, 1,000,000 in the other
    feed_entries   each activity in the feed of every follower of its actor, as the
                   listeners write them (fan-out on write)

Then it measures, each beside its baseline in the same run, rounds taking turns:

    GET /api/feed (page 1)       the reader, 1,000,000 against 10,000 activities (target 1.5)
    POST /api/patterns           the celebrity against the author nobody follows (target
                                 1.2), and how long until the new pattern is in all
                                 100,000 feeds (the delivery time; documented bound 5 s)
    GET /users/{id}/followers    the celebrity's, page 100 against page 1 (target 1.5)

and times, inside PostgreSQL, the feed's own SQL against the fan-out-on-read alternative
(the followees' activities joined at read time). It prints EXPLAIN (ANALYZE, BUFFERS) of
the SQL behind every missed target. Everything it creates (servers, databases, Redis
keys) is removed at the end, also on failure or Ctrl-C. See bench/README.md.

    .venv/bin/python bench/social_scale.py [--large 1000000] [--followers 100000]
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from _harness import (
    BENCH_DIR,
    Environment,
    LoadOptions,
    Measurement,
    Scenario,
    Server,
    Tool,
    console,
    default_tool,
    environment,
    measure,
    percentile,
    phase,
    run_benchmark,
    service_parser,
    wait_idle,
    warn_if_busy,
    write_run,
)
from argon2 import PasswordHasher
from patterns_scale import (
    DEFAULT_PREFERENCES,
    PATTERN_COLUMNS,
    PREFERENCE_COLUMNS,
    USER_COLUMNS,
    MachineRef,
    Sql,
    asyncpg_dsn,
    configurations_for,
    new_ids,
    wait_for_machines,
    zipf_cum_weights,
)
from rich.table import Table
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from beatmachine.core.pagination import PageParams
from beatmachine.social import repository

PASSWORD = "bench-" + secrets.token_urlsafe(12)
FEED_PATH = "/api/feed?page=1&limit=20"
PAGE_LIMIT = 20
FEED_MAX_ITEMS = 1000  # the default of FEED_MAX_ITEMS
DELIVERY_BOUND_SECONDS = 5.0  # docs/api.md, "Feed": "How soon"
RETENTION = timedelta(days=89)  # activities inside the 90-day retention
TWO_YEARS = timedelta(days=730)
CHUNK = 25_000  # activities generated and copied at a time
FLAVORS = ("Salsa", "Merengue")
# What the activities are, in this proportion (a like needs a public pattern, a follow
# activity a follow that is not yet taken).
TYPE_SHARES = (("pattern_created", 0.25), ("pattern_liked", 0.60), ("user_followed", 0.15))
PUBLIC_SHARE = 0.85
DELETED_SHARE = 0.04
LEAVING_SHARE = 0.005  # accounts awaiting deletion: their activities are not shown
# The tables seeded in bulk: their indexes (and primary keys that no foreign key needs)
# are dropped before the COPY and built again after it.
BULK_TABLES = ("follows", "patterns", "pattern_likes", "activities", "feed_entries")
ACTIVITY_COLUMNS = (
    "id",
    "type",
    "actor_id",
    "pattern_id",
    "comment_id",
    "subject_id",
    "created_at",
)
ENTRY_COLUMNS = ("user_id", "created_at", "activity_id", "actor_id")
FOLLOW_COLUMNS = ("follower_id", "followee_id", "created_at")
LIKE_COLUMNS = ("pattern_id", "user_id", "created_at")
CONFIGURATION = {
    "instruments": [
        {"id": "clave", "enabled": True, "activeProgram": 0, "volume": 0.9, "pitchOffset": 0},
        {"id": "cowbell", "enabled": True, "activeProgram": 0, "volume": 0.8, "pitchOffset": 0},
        {"id": "congas", "enabled": False, "activeProgram": 0, "volume": 0.5, "pitchOffset": 2},
    ]
}

# The fan-out-on-read alternative: the reader's followees' activities, joined at read
# time through ix_activities_actor_created, with the same checks as the feed.
_ON_READ_FROM = """
FROM activities a
JOIN follows f ON f.followee_id = a.actor_id AND f.follower_id = $1
JOIN users actor ON actor.id = a.actor_id
LEFT JOIN patterns p ON p.id = a.pattern_id
LEFT JOIN users subject ON subject.id = a.subject_id
WHERE actor.deletion_scheduled_at IS NULL
  AND (a.pattern_id IS NULL
       OR (p.deleted_at IS NULL AND (p.is_public IS true OR p.user_id = $1)))
  AND (a.subject_id IS NULL OR subject.deletion_scheduled_at IS NULL)
  AND (a.type != 'pattern_liked' OR EXISTS (
       SELECT 1 FROM pattern_likes l WHERE l.pattern_id = a.pattern_id AND l.user_id = a.actor_id))
  AND (a.type != 'user_followed' OR EXISTS (
       SELECT 1 FROM follows b WHERE b.follower_id = a.actor_id AND b.followee_id = a.subject_id))
"""
ON_READ_PAGE = (
    "SELECT a.id, a.type, a.actor_id, a.pattern_id, a.comment_id, a.subject_id, a.created_at, "
    "actor.display_name, p.title, subject.display_name"
    + _ON_READ_FROM
    + "ORDER BY a.created_at DESC, a.id DESC LIMIT $2"
)
ON_READ_COUNT = "SELECT count(*) FROM (SELECT a.id" + _ON_READ_FROM + "LIMIT $2) AS visible"  # noqa: S608 (constant text)


@dataclass(frozen=True)
class Options:
    admin_url: str
    redis_url: str
    small: int
    large: int
    users: int
    followers: int
    followees: int
    follows_per_user: int
    workers: int
    concurrency: int
    duration: float
    warmup: float
    rounds: int
    posts: int
    post_warmup: int
    poll_ms: float
    delivery_timeout: float
    sql_repeat: int
    tool: Tool
    client_procs: int
    feed_target: float
    post_target: float
    followers_target: float
    far_page: int
    seed: int
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
    parser = service_parser(__doc__)
    parser.add_argument("--small", type=int, default=10_000, help="activities, baseline")
    parser.add_argument("--large", type=int, default=1_000_000, help="activities, measured")
    parser.add_argument("--users", type=int, default=100_000, help="people seeded")
    parser.add_argument(
        "--followers", type=int, default=100_000, help="followers of the celebrity (<= --users)"
    )
    parser.add_argument("--followees", type=int, default=1_000, help="people the reader follows")
    parser.add_argument(
        "--follows-per-user", type=int, default=2, help="people each person follows"
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes (WORKERS)")
    parser.add_argument("--concurrency", type=int, default=4, help="open connections (reads)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured each")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each read pair")
    parser.add_argument("--posts", type=int, default=20, help="measured posts per author")
    parser.add_argument("--post-warmup", type=int, default=2, help="posts before measuring")
    parser.add_argument(
        "--poll-ms", type=float, default=100.0, help="how often the delivery is checked"
    )
    parser.add_argument(
        "--delivery-timeout", type=float, default=120.0, help="give up on a delivery after"
    )
    parser.add_argument("--sql-repeat", type=int, default=7, help="executions per timed query")
    parser.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--client-procs", type=int, default=1, help="httpx load processes")
    parser.add_argument("--feed-target", type=float, default=1.5, help="max p50 ratio")
    parser.add_argument("--post-target", type=float, default=1.2, help="max p50 ratio")
    parser.add_argument("--followers-target", type=float, default=1.5, help="max p50 ratio")
    parser.add_argument("--far-page", type=int, default=100, help="the far followers page")
    parser.add_argument("--seed", type=int, default=20261201, help="random seed of the data")
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH_DIR / "results", help="where the JSON goes"
    )
    args = parser.parse_args(argv)
    if not 0 < args.small < args.large:
        parser.error("need 0 < --small < --large")
    if not 0 < args.followers <= args.users or not 0 < args.followees < args.users:
        parser.error("need 0 < --followers <= --users and 0 < --followees < --users")
    if args.far_page * PAGE_LIMIT > args.followers:
        parser.error("--far-page lies past the celebrity's followers")
    return Options(
        admin_url=args.admin_url,
        redis_url=args.redis_url,
        small=args.small,
        large=args.large,
        users=args.users,
        followers=args.followers,
        followees=args.followees,
        follows_per_user=args.follows_per_user,
        workers=args.workers,
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        rounds=args.rounds,
        posts=args.posts,
        post_warmup=args.post_warmup,
        poll_ms=args.poll_ms,
        delivery_timeout=args.delivery_timeout,
        sql_repeat=args.sql_repeat,
        tool=default_tool() if args.tool == "auto" else args.tool,
        client_procs=args.client_procs,
        feed_target=args.feed_target,
        post_target=args.post_target,
        followers_target=args.followers_target,
        far_page=args.far_page,
        seed=args.seed,
        results_dir=args.results_dir,
    )


# --- generating the data -------------------------------------------------------------------


@dataclass(frozen=True)
class PatternSeed:
    """A pattern before its machine is known (the databases install theirs each)."""

    id: str
    author: str
    title: str
    flavor: str
    bpm: int
    key_note: int
    is_public: bool
    configuration: int  # index into the machine's configurations
    deleted_at: datetime | None
    created_at: datetime


@dataclass
class Chunk:
    """Activities with the patterns and likes they name and the feed entries they made."""

    patterns: list[PatternSeed] = field(default_factory=list)
    likes: list[tuple[Any, ...]] = field(default_factory=list)
    activities: list[tuple[Any, ...]] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    reader_entries: int = 0


@dataclass
class Social:
    """The people and who follows whom; then the activities, chunk by chunk."""

    rng: random.Random
    now: datetime
    password_hash: str
    user_ids: list[str]  # the seeded people; the first write the most
    reader: str
    celebrity: str
    quiet: str
    leaving: set[int]  # indexes of accounts awaiting deletion
    followees: list[int]  # whom the reader follows
    followers_of: list[list[str]]  # by person: who sees their activities
    edges: list[tuple[int, int]]  # the follows among the people, shuffled
    actor_cum: list[float]
    edge_cursor: int = 0
    likeable: list[tuple[str, str]] = field(default_factory=list)  # (pattern, author)
    liked: set[tuple[str, str]] = field(default_factory=set)
    activities: int = 0
    titles: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def create(cls, options: Options) -> Social:
        rng = random.Random(options.seed)
        n = options.users
        user_ids = new_ids(rng, "usr", n)
        reader, celebrity, quiet = new_ids(rng, "usr", 3)
        actor_cum = zipf_cum_weights(n, 0.8)
        # People follow the active ones more: the reader's followees are drawn by the
        # same weights as the actors of the activities.
        chosen: set[int] = set()
        while len(chosen) < options.followees:
            chosen.update(
                rng.choices(range(n), cum_weights=actor_cum, k=options.followees - len(chosen))
            )
        followees = sorted(chosen)
        followers_of: list[list[str]] = [[] for _ in range(n)]
        edges: list[tuple[int, int]] = []
        for follower in range(n):
            targets: set[int] = set()
            while len(targets) < options.follows_per_user:
                target = rng.randrange(n)
                if target != follower:
                    targets.add(target)
            for target in sorted(targets):
                edges.append((follower, target))
                followers_of[target].append(user_ids[follower])
        for followee in followees:
            followers_of[followee].append(reader)
        rng.shuffle(edges)
        leaving = {i for i in range(n) if rng.random() < LEAVING_SHARE}
        password_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
        return cls(
            rng=rng,
            now=datetime.now(UTC),
            password_hash=password_hash,
            user_ids=user_ids,
            reader=reader,
            celebrity=celebrity,
            quiet=quiet,
            leaving=leaving,
            followees=followees,
            followers_of=followers_of,
            edges=edges,
            actor_cum=actor_cum,
        )

    def when(self, span: timedelta) -> datetime:
        return self.now - timedelta(seconds=self.rng.random() * span.total_seconds())

    def user_rows(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        users, preferences = [], []
        named = [("reader", self.reader), ("celebrity", self.celebrity), ("quiet", self.quiet)]
        people = [(f"user{i + 1}", user_id) for i, user_id in enumerate(self.user_ids)]
        for index, (name, user_id) in enumerate(named + people):
            created = self.when(TWO_YEARS) - TWO_YEARS
            leaving = index - len(named) in self.leaving
            users.append(
                (
                    user_id,
                    f"{name}@bench.example.com",
                    self.password_hash,
                    name.capitalize() if index < len(named) else f"Dancer {index - 2}",
                    None,
                    None,
                    False,
                    created,
                    None,
                    self.when(timedelta(days=20)) if leaving else None,
                    created,
                    created,
                )
            )
            preferences.append((user_id, *DEFAULT_PREFERENCES))
        return users, preferences

    def follow_rows(self, celebrity_followers: int) -> list[tuple[Any, ...]]:
        rows = [
            (self.user_ids[follower], self.user_ids[followee], self.when(TWO_YEARS))
            for follower, followee in self.edges
        ]
        rows += [(self.reader, self.user_ids[i], self.when(TWO_YEARS)) for i in self.followees]
        rows += [
            (user_id, self.celebrity, self.when(TWO_YEARS))
            for user_id in self.user_ids[:celebrity_followers]
        ]
        return rows

    def chunks(self, n: int) -> Iterator[Chunk]:
        left = n
        while left > 0:
            size = min(CHUNK, left)
            left -= size
            yield self._chunk(size)

    def _chunk(self, n: int) -> Chunk:
        rng, chunk = self.rng, Chunk()
        ids = new_ids(rng, "act", n)
        actors = rng.choices(range(len(self.user_ids)), cum_weights=self.actor_cum, k=n)
        cum_shares = list(itertools.accumulate(share for _, share in TYPE_SHARES))
        kinds = rng.choices([kind for kind, _ in TYPE_SHARES], cum_weights=cum_shares, k=n)
        for activity_id, actor, kind in zip(ids, actors, kinds, strict=True):
            created = self.when(RETENTION)
            actor_id = self.user_ids[actor]
            pattern_id = subject_id = None
            if kind == "user_followed" and self.edge_cursor < len(self.edges):
                actor, followee = self.edges[self.edge_cursor]
                self.edge_cursor += 1
                actor_id, subject_id = self.user_ids[actor], self.user_ids[followee]
            elif kind != "pattern_created" and (liked := self._like(actor_id)):
                kind, pattern_id = "pattern_liked", liked
                chunk.likes.append((pattern_id, actor_id, created))
            else:
                kind, pattern_id = "pattern_created", self._pattern(chunk, actor_id, created)
            chunk.activities.append(
                (activity_id, kind, actor_id, pattern_id, None, subject_id, created)
            )
            for follower in self.followers_of[actor]:
                chunk.entries.append((follower, created, activity_id, actor_id))
                if follower == self.reader:
                    chunk.reader_entries += 1
        self.activities += n
        return chunk

    def _like(self, actor_id: str) -> str | None:
        for _ in range(4):
            if not self.likeable:
                return None
            pattern_id, author = self.likeable[self.rng.randrange(len(self.likeable))]
            if author != actor_id and (pattern_id, actor_id) not in self.liked:
                self.liked.add((pattern_id, actor_id))
                return pattern_id
        return None

    def _pattern(self, chunk: Chunk, author: str, created: datetime) -> str:
        rng = self.rng
        pattern_id = new_ids(rng, "pat", 1)[0]
        public = rng.random() < PUBLIC_SHARE
        deleted = created + (self.now - created) * rng.random()
        flavor = FLAVORS[0] if rng.random() < 0.75 else FLAVORS[1]
        chunk.patterns.append(
            PatternSeed(
                id=pattern_id,
                author=author,
                title=f"Groove {next(self.titles)}",
                flavor=flavor,
                bpm=rng.randint(80, 220),
                key_note=rng.randrange(12),
                is_public=public,
                configuration=rng.randrange(64),
                deleted_at=deleted if rng.random() < DELETED_SHARE else None,
                created_at=created,
            )
        )
        if public:  # liked while it was public, even if deleted since
            self.likeable.append((pattern_id, author))
        return pattern_id


def pattern_rows(seeds: Sequence[PatternSeed], machines: dict[str, MachineRef]) -> list[Any]:
    rows = []
    for seed in seeds:
        machine = machines[seed.flavor]
        rows.append(
            (
                seed.id,
                seed.author,
                seed.title,
                "",
                seed.flavor,
                seed.bpm,
                seed.key_note,
                seed.is_public,
                machine.configurations[seed.configuration % len(machine.configurations)],
                None,
                machine.id,
                machine.version,
                1,
                0,
                0,
                0,
                0,
                None,
                seed.deleted_at,
                seed.created_at,
                seed.created_at,
            )
        )
    return rows


# --- the databases -------------------------------------------------------------------------


@dataclass
class Target:
    """One database and its server."""

    label: str
    env: Environment
    dsn: str
    machines: dict[str, MachineRef]
    activities: int = 0
    reader_entries: int = 0
    seed_seconds: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def server(self) -> Server:
        assert self.env.server is not None
        return self.env.server


async def _copy(
    connection: asyncpg.Connection, table: str, columns: Sequence[str], rows: Any
) -> None:
    if rows:
        await connection.copy_records_to_table(table, records=rows, columns=columns)


async def _connect(dsn: str) -> asyncpg.Connection:
    connection = await asyncpg.connect(dsn)
    # Foreign-key triggers skipped: the data is consistent by construction.
    await connection.execute("SET session_replication_role = replica")
    return connection


async def drop_bulk_indexes(dsn: str, tables: Sequence[str] = BULK_TABLES) -> list[str]:
    """Drop the indexes of the bulk `tables`, and their primary keys where no foreign key
    points at them; returns the statements that build them again."""
    connection = await asyncpg.connect(dsn)
    try:
        keys = await connection.fetch(
            "SELECT c.conname, c.conrelid::regclass::text AS tab, pg_get_constraintdef(c.oid) "
            "AS def FROM pg_constraint c WHERE c.contype = 'p' "
            "AND c.conrelid::regclass::text = ANY($1::text[]) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = c.conrelid)",
            list(tables),
        )
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY($1::text[]) AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint)",
            list(tables),
        )
        statements = []
        for key in keys:
            await connection.execute(f'ALTER TABLE {key["tab"]} DROP CONSTRAINT "{key["conname"]}"')
            statements.append(
                f'ALTER TABLE {key["tab"]} ADD CONSTRAINT "{key["conname"]}" {key["def"]}'
            )
        for index in indexes:
            await connection.execute(f'DROP INDEX "{index["indexname"]}"')
            statements.append(index["indexdef"])
        return statements
    finally:
        await connection.close()


async def build_indexes(dsn: str, statements: Sequence[str], apart: str = "feed_entries") -> None:
    """Build the dropped indexes again, on two connections, those of the largest table
    (`apart`) on one of them."""
    first = [s for s in statements if apart in s]
    rest = [s for s in statements if s not in first]

    async def build(part: Sequence[str]) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute("SET maintenance_work_mem = '512MB'")
            for statement in part:
                await connection.execute(statement)
        finally:
            await connection.close()

    await asyncio.gather(build(first), build(rest))


async def settle(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("VACUUM (ANALYZE)")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


async def seed_people(targets: Sequence[Target], social: Social, followers: int) -> None:
    users, preferences = social.user_rows()
    follows = social.follow_rows(followers)
    for target in targets:
        started = time.perf_counter()
        connection = await _connect(target.dsn)
        try:
            await _copy(connection, "users", USER_COLUMNS, users)
            await _copy(connection, "user_preferences", PREFERENCE_COLUMNS, preferences)
            await _copy(connection, "follows", FOLLOW_COLUMNS, follows)
        finally:
            await connection.close()
        target.seed_seconds["people"] = time.perf_counter() - started


async def seed_activities(targets: Sequence[Target], chunks: Iterator[Chunk]) -> float:
    """COPY the chunks into every target, two connections each; returns the time spent
    generating them (the rest is COPY)."""
    connections = [(await _connect(t.dsn), await _connect(t.dsn)) for t in targets]
    generating = 0.0
    try:
        while True:
            started = time.perf_counter()
            chunk = next(chunks, None)
            generating += time.perf_counter() - started
            if chunk is None:
                return generating
            copies: list[Awaitable[None]] = []
            for target, (one, two) in zip(targets, connections, strict=True):
                copies.append(_copy(one, "feed_entries", ENTRY_COLUMNS, chunk.entries))
                copies.append(_copy_rest(two, target, chunk))
                target.activities += len(chunk.activities)
                target.reader_entries += chunk.reader_entries
            await asyncio.gather(*copies)
    finally:
        for one, two in connections:
            await one.close()
            await two.close()


async def _copy_rest(connection: asyncpg.Connection, target: Target, chunk: Chunk) -> None:
    await _copy(
        connection, "patterns", PATTERN_COLUMNS, pattern_rows(chunk.patterns, target.machines)
    )
    await _copy(connection, "pattern_likes", LIKE_COLUMNS, chunk.likes)
    await _copy(connection, "activities", ACTIVITY_COLUMNS, chunk.activities)


async def finish_seeding(target: Target, statements: Sequence[str]) -> None:
    started = time.perf_counter()
    await build_indexes(target.dsn, statements)
    target.seed_seconds["indexes"] = time.perf_counter() - started
    started = time.perf_counter()
    await settle(target.dsn)
    target.seed_seconds["vacuum_analyze_checkpoint"] = time.perf_counter() - started


async def table_facts(target: Target, social: Social) -> dict[str, Any]:
    connection = await asyncpg.connect(target.dsn)
    try:
        facts: dict[str, Any] = {}
        for table in (
            "users",
            "follows",
            "patterns",
            "pattern_likes",
            "activities",
            "feed_entries",
        ):
            facts[table] = await connection.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
        facts["activity_types"] = {
            row["type"]: row["n"]
            for row in await connection.fetch(
                "SELECT type, count(*) AS n FROM activities GROUP BY type ORDER BY type"
            )
        }
        facts["reader_entries"] = await connection.fetchval(
            "SELECT count(*) FROM feed_entries WHERE user_id = $1", social.reader
        )
        facts["reader_visible"] = await connection.fetchval(ON_READ_COUNT, social.reader, 10**9)
        facts["celebrity_followers"] = await connection.fetchval(
            "SELECT count(*) FROM follows f JOIN users u ON u.id = f.follower_id "
            "WHERE f.followee_id = $1 AND u.deletion_scheduled_at IS NULL",
            social.celebrity,
        )
        facts["size"] = await connection.fetchval(
            "SELECT pg_size_pretty(pg_total_relation_size('feed_entries') "
            "+ pg_total_relation_size('activities'))"
        )
        return facts
    finally:
        await connection.close()


# --- the SQL the server runs, for timing and EXPLAIN ----------------------------------------


async def recorded_sql(
    database_url: str, call: Callable[[AsyncSession], Awaitable[Any]], marker: str
) -> list[Sql]:
    """The statements (containing `marker`) that `call` sends on the bench database."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    statements: list[Sql] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def record(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if marker in statement:
            statements.append(Sql(statement, tuple(parameters or ())))

    try:
        async with AsyncSession(engine) as session:
            await call(session)
    finally:
        await engine.dispose()
    return statements


async def feed_sql(database_url: str, reader: str) -> tuple[Sql, Sql]:
    """The page query and the count query of GET /feed (page 1), as the service sends
    them: `social.repository.feed_page` called on the bench database."""
    statements = await recorded_sql(
        database_url,
        lambda s: repository.feed_page(s, reader, PageParams(1, PAGE_LIMIT), FEED_MAX_ITEMS),
        "feed_entries",
    )
    counts = [sql for sql in statements if "count(" in sql.text]
    pages = [sql for sql in statements if "count(" not in sql.text]
    if len(counts) != 1 or len(pages) != 1:
        raise RuntimeError(f"expected a page and a count query, recorded {statements}")
    return pages[0], counts[0]


async def followers_sql(database_url: str, user_id: str, page: int) -> list[Sql]:
    """The statements of the followers list (the page and the two counts)."""
    return await recorded_sql(
        database_url,
        lambda s: repository.people_page(s, user_id, PageParams(page, PAGE_LIMIT), followers=True),
        "follows",
    )


def on_read_sql(reader: str) -> tuple[Sql, Sql]:
    return Sql(ON_READ_PAGE, (reader, PAGE_LIMIT)), Sql(ON_READ_COUNT, (reader, FEED_MAX_ITEMS))


async def page_ids(dsn: str, sql: Sql) -> list[str]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(sql.text, *sql.args)
        return [row[0] if isinstance(row[0], str) else str(row[0]) for row in rows]
    finally:
        await connection.close()


PLAN_MODES = ("custom", "generic")
STATEMENT_TIMEOUT_MS = 20_000


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


async def _plan_mode(connection: asyncpg.Connection, mode: str) -> None:
    """Set the plan cache mode of this session (the server's connections force custom
    plans through asyncpg's `server_settings`; this connection sets its own) and check
    that it holds."""
    await connection.execute(f"SET plan_cache_mode = force_{mode}_plan")
    await connection.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
    actual = await connection.fetchval("SHOW plan_cache_mode")
    if actual != f"force_{mode}_plan":
        raise RuntimeError(f"plan_cache_mode is {actual}, not force_{mode}_plan")


async def timed_plan(dsn: str, sql: Sql, repeat: int, mode: str) -> float:
    """Median execution time (ms) of `sql` as a prepared statement with the plan cache in
    `mode` (`custom`: planned for the reader; `generic`: one plan for any reader, which a
    prepared statement switches to after 5 runs when its estimate is no worse).
    Infinity when a run exceeds STATEMENT_TIMEOUT_MS."""
    connection = await asyncpg.connect(dsn)
    try:
        await _plan_mode(connection, mode)
        await connection.execute(f"PREPARE bench_q AS {sql.text}")
        execute = "EXECUTE bench_q(" + ", ".join(_literal(a) for a in sql.args) + ")"
        times = []
        for _ in range(repeat):
            try:
                rows = await connection.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {execute}")
            except asyncpg.QueryCanceledError:
                return math.inf
            times.append(float(json.loads(rows[0][0])[0]["Execution Time"]))
        return statistics.median(times)
    finally:
        await connection.close()


async def explain_plan(dsn: str, sql: Sql, mode: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) in a plan mode; the plan alone when it runs too long."""
    connection = await asyncpg.connect(dsn)
    try:
        await _plan_mode(connection, mode)
        await connection.execute(f"PREPARE bench_q AS {sql.text}")
        execute = "EXECUTE bench_q(" + ", ".join(_literal(a) for a in sql.args) + ")"
        try:
            rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {execute}")
            note = ""
        except asyncpg.QueryCanceledError:
            rows = await connection.fetch(f"EXPLAIN {execute}")
            note = (
                f"(cancelled after {STATEMENT_TIMEOUT_MS / 1000:.0f} s: the plan without ANALYZE)\n"
            )
        return note + "\n".join(row[0] for row in rows)
    finally:
        await connection.close()


# --- the requests ---------------------------------------------------------------------------


def login(base_url: str, email: str) -> str:
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        response = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        response.raise_for_status()
        token: str = response.json()["data"]["token"]
        return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def pattern_body(number: int) -> dict[str, Any]:
    """The body of tests/patterns/helpers.py's `pattern_body`."""
    return {
        "title": f"Bench groove {number}",
        "description": "A tumbao to practise with",
        "flavor": "Salsa",
        "bpm": 180,
        "keyNote": 5,
        "isPublic": True,
        "configuration": CONFIGURATION,
    }


@dataclass
class Posts:
    """Sequential POST /patterns of one author, and the deliveries to the followers."""

    author: str
    followers: int
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    # From sending the request to the activity being recorded (the first batch written)
    # and to every follower's entry being there.
    recorded_s: list[float] = field(default_factory=list)
    delivered_s: list[float] = field(default_factory=list)
    timeouts: int = 0

    @property
    def p50(self) -> float:
        return percentile(sorted(self.latencies_ms), 50)

    @property
    def p99(self) -> float:
        return percentile(sorted(self.latencies_ms), 99)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "201")

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {
            "author": self.author,
            "followers": self.followers,
            "requests": len(ordered),
            "p50_ms": self.p50,
            "p90_ms": percentile(ordered, 90),
            "p99_ms": self.p99,
            "max_ms": ordered[-1] if ordered else None,
            "mean_ms": statistics.fmean(ordered) if ordered else None,
            "statuses": self.statuses,
            "recorded_s": self.recorded_s,
            "delivered_s": self.delivered_s,
            "delivery_timeouts": self.timeouts,
        }


async def _delivery(
    connection: asyncpg.Connection, pattern_id: str, followers: int, sent: float, options: Options
) -> tuple[float | None, float | None]:
    """Poll until the pattern's activity is in `followers` feeds: the seconds from `sent`
    to the activity's first batch and to the last entry (None when it timed out)."""
    recorded: float | None = None
    deadline = sent + options.delivery_timeout
    while time.perf_counter() < deadline:
        entries = await connection.fetchval(
            "SELECT count(*) FROM feed_entries WHERE activity_id = "
            "(SELECT id FROM activities WHERE pattern_id = $1 AND type = 'pattern_created')",
            pattern_id,
        )
        exists = entries > 0 or await connection.fetchval(
            "SELECT count(*) FROM activities WHERE pattern_id = $1", pattern_id
        )
        now = time.perf_counter() - sent
        if exists and recorded is None:
            recorded = now
        if exists and entries >= followers:
            return recorded, now
        await asyncio.sleep(options.poll_ms / 1000.0)
    return recorded, None


async def post_patterns(target: Target, social: Social, options: Options) -> dict[str, Posts]:
    """Alternate the two authors' posts; after each, wait until its activity reached all
    the author's followers and the server is idle again, so that no fan-out runs while
    the next request is measured."""
    counts = {social.celebrity: options.followers, social.quiet: 0}
    results = {
        name: Posts(name, counts[user])
        for name, user in (("celebrity", social.celebrity), ("quiet", social.quiet))
    }
    users = {"celebrity": social.celebrity, "quiet": social.quiet}
    number = itertools.count(1)
    connection = await asyncpg.connect(target.dsn)
    try:
        async with httpx.AsyncClient(base_url=target.server.base_url, timeout=120.0) as client:
            for index in range(options.post_warmup + options.posts):
                order = ("celebrity", "quiet") if index % 2 == 0 else ("quiet", "celebrity")
                for name in order:
                    result = results[name]
                    sent = time.perf_counter()
                    response = await client.post(
                        "/api/patterns",
                        json=pattern_body(next(number)),
                        headers=bearer(target.tokens[name]),
                    )
                    elapsed = (time.perf_counter() - sent) * 1000.0
                    measured = index >= options.post_warmup
                    status = str(response.status_code)
                    if measured:
                        result.latencies_ms.append(elapsed)
                        result.statuses[status] = result.statuses.get(status, 0) + 1
                    if response.status_code != 201:
                        continue
                    pattern_id = response.json()["data"]["id"]
                    recorded, delivered = await _delivery(
                        connection, pattern_id, counts[users[name]], sent, options
                    )
                    if measured and recorded is not None:
                        result.recorded_s.append(recorded)
                    if delivered is None:
                        result.timeouts += 1
                    elif measured:
                        result.delivered_s.append(delivered)
                    await asyncio.to_thread(wait_idle, target.server)
    finally:
        await connection.close()
    return results


def check_feed_answer(
    target: Target, social: Social, expected_ids: list[str], visible: int
) -> list[str]:
    """The API's first page must be the fan-out-on-read query's, and its total the
    visible entries (at most FEED_MAX_ITEMS)."""
    with httpx.Client(base_url=target.server.base_url, timeout=60.0) as client:
        response = client.get(FEED_PATH, headers=bearer(target.tokens["reader"]))
    if response.status_code != 200:
        return [f"{target.label}: GET /feed {response.status_code} {response.text[:300]}"]
    data = response.json()["data"]
    problems = []
    ids = [activity["id"] for activity in data["activities"]]
    if ids != expected_ids:
        problems.append(
            f"{target.label}: the feed's page differs from the activities joined at read time"
        )
    if data["pagination"]["total"] != min(visible, FEED_MAX_ITEMS):
        problems.append(
            f"{target.label}: feed total {data['pagination']['total']}, database "
            f"{min(visible, FEED_MAX_ITEMS)}"
        )
    if len(ids) != min(PAGE_LIMIT, visible):
        problems.append(f"{target.label}: {len(ids)} activities on the feed's first page")
    return problems


def check_followers_answer(target: Target, social: Social, page: int, total: int) -> list[str]:
    with httpx.Client(base_url=target.server.base_url, timeout=60.0) as client:
        response = client.get(
            f"/api/users/{social.celebrity}/followers", params={"page": page, "limit": PAGE_LIMIT}
        )
    if response.status_code != 200:
        return [f"followers page {page}: {response.status_code} {response.text[:300]}"]
    data = response.json()["data"]
    problems = []
    if data["pagination"]["total"] != total:
        problems.append(f"followers total {data['pagination']['total']}, database {total}")
    if len(data["users"]) != PAGE_LIMIT:
        problems.append(f"followers page {page}: {len(data['users'])} people")
    return problems


def followers_scenario(social: Social, page: int) -> Scenario:
    return Scenario.make(
        f"followers-page{page}",
        "GET",
        f"/api/users/{social.celebrity}/followers?page={page}&limit={PAGE_LIMIT}",
        note="anonymous",
    )


async def cancel_leftovers(dsns: Sequence[str], older_than_s: float = 5.0) -> int:
    """Cancel the statements still running, for longer than `older_than_s`, on the bench
    databases: requests the load generator gave up on (its timeout is 120 s) would
    otherwise go on taking the CPUs from the next measurement."""
    cancelled = 0
    for dsn in dsns:
        connection = await asyncpg.connect(dsn)
        try:
            cancelled += await connection.fetchval(
                "SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state = 'active' AND now() - query_start > make_interval(secs => $1)",
                older_than_s,
            )
        finally:
            await connection.close()
    return cancelled


def alternate(
    options: Options,
    pairs: Sequence[tuple[str, Server, Scenario]],
    workdir: Path,
    what: str,
    dsns: Sequence[str],
) -> dict[str, list[Measurement]]:
    """Measure the scenarios in turn, `rounds` times, the order reversed every other
    round, so that a drift of the machine's speed touches all of them."""
    rounds: dict[str, list[Measurement]] = {key: [] for key, _, _ in pairs}
    for number in range(1, options.rounds + 1):
        ordered = pairs if number % 2 else list(reversed(pairs))
        for key, server, scenario in ordered:
            label = f"{what} round {number}/{options.rounds}, {key}"
            with phase(f"{label}: {options.warmup:g}s warm-up + {options.duration:g}s"):
                rounds[key].append(measure(options.load, server, scenario, workdir))
            cancelled = asyncio.run(cancel_leftovers(dsns))
            if cancelled:
                console.print(f"[yellow]  cancelled {cancelled} statements still running[/yellow]")
    return rounds


def median_by_p50(measurements: list[Measurement]) -> Measurement:
    return sorted(measurements, key=lambda m: m.p50_ms)[len(measurements) // 2]


# --- reporting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    name: str
    baseline_label: str
    measured_label: str
    baseline_p50: float
    baseline_p99: float
    measured_p50: float
    measured_p99: float
    requests: str
    errors: int
    target: float

    @property
    def ratio(self) -> float:
        return self.measured_p50 / self.baseline_p50 if self.baseline_p50 else math.nan

    @property
    def p99_ratio(self) -> float:
        return self.measured_p99 / self.baseline_p99 if self.baseline_p99 else math.nan

    @property
    def passed(self) -> bool:
        return self.ratio <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ratio": self.ratio,
            "p99_ratio": self.p99_ratio,
            "passed": self.passed,
        }


def from_rounds(
    name: str,
    labels: tuple[str, str],
    rounds: dict[str, list[Measurement]],
    keys: tuple[str, str],
    target: float,
) -> Comparison:
    base, other = (median_by_p50(rounds[key]) for key in keys)
    return Comparison(
        name=name,
        baseline_label=labels[0],
        measured_label=labels[1],
        baseline_p50=base.p50_ms,
        baseline_p99=base.p99_ms,
        measured_p50=other.p50_ms,
        measured_p99=other.p99_ms,
        requests=f"{sum(m.requests for m in rounds[keys[0]])}/"
        f"{sum(m.requests for m in rounds[keys[1]])}",
        errors=sum(m.errors for key in keys for m in rounds[key]),
        target=target,
    )


def render(comparisons: Sequence[Comparison]) -> Table:
    table = Table(title="Social at scale: each measurement beside its baseline, same run")
    for column in ("request", "baseline", "p50 ms", "p99 ms", "measured", "p50 ms", "p99 ms"):
        table.add_column(
            column, justify="left" if column in ("request", "baseline", "measured") else "right"
        )
    for column in ("p50 ratio", "p99 ratio", "target", "", "requests", "errors"):
        table.add_column(column, justify="right")
    for c in comparisons:
        table.add_row(
            c.name,
            c.baseline_label,
            f"{c.baseline_p50:.2f}",
            f"{c.baseline_p99:.2f}",
            c.measured_label,
            f"{c.measured_p50:.2f}",
            f"{c.measured_p99:.2f}",
            f"{c.ratio:.2f}",
            f"{c.p99_ratio:.2f}",
            f"≤ {c.target:g}",
            "[green]PASS[/green]" if c.passed else "[red]FAIL[/red]",
            c.requests,
            str(c.errors),
        )
    return table


SQL_ROWS = (
    ("on_write", "fan-out on write: the feed's SQL"),
    ("on_read", "fan-out on read: activities ⋈ follows"),
)


def render_sql(sql_ms: dict[str, dict[str, float]], sizes: Sequence[tuple[str, int]]) -> Table:
    table = Table(
        title="The feed inside PostgreSQL: median execution, ms (page 1 + count); custom plan "
        "(planned for this reader: what the server runs, its connections force it) and "
        "generic plan (one plan for any reader: what a prepared statement may switch to "
        "after 5 runs without plan_cache_mode)"
    )
    table.add_column("query")
    for _, activities in sizes:
        for mode in PLAN_MODES:
            table.add_column(f"{activities:,}\n{mode}", justify="right")
    for design, label in SQL_ROWS:
        for part in ("page", "count"):
            cells = [
                format_ms(sql_ms[key][f"{design}_{part}_{mode}"])
                for key, _ in sizes
                for mode in PLAN_MODES
            ]
            table.add_row(f"{label}: {part}", *cells)
    return table


def format_ms(value: float) -> str:
    return f"> {STATEMENT_TIMEOUT_MS / 1000:.0f} s" if math.isinf(value) else f"{value:.2f}"


# --- the run --------------------------------------------------------------------------------


def start(env: Environment, options: Options, label: str) -> Target:
    server_env = env.server_env(
        options.workers, INSTALL_DEFAULT_MACHINES="true", JWT_EXPIRES_IN="14400"
    )
    env.start_server(server_env, options.workers)
    dsn = asyncpg_dsn(env.database_url)
    installed = asyncio.run(wait_for_machines(dsn))
    rng = random.Random(options.seed)  # the same configurations in both databases
    machines = {
        flavor: MachineRef(machine_id, version, configurations_for(document, rng))
        for flavor, (machine_id, version, document) in sorted(installed.items())
    }
    return Target(label, env, dsn, machines)


def seed_all(small: Target, large: Target, social: Social, options: Options) -> None:
    targets = (small, large)
    statements = {t.label: asyncio.run(drop_bulk_indexes(t.dsn)) for t in targets}
    with phase(f"seeding {options.users:,} people and their follows into both databases"):
        asyncio.run(seed_people(targets, social, options.followers))
    with phase(f"seeding {options.small:,} activities into both databases"):
        started = time.perf_counter()
        generating = asyncio.run(seed_activities(targets, social.chunks(options.small)))
        for target in targets:
            target.seed_seconds["activities"] = time.perf_counter() - started
            target.seed_seconds["generating"] = generating
    with phase(f"seeding {options.large - options.small:,} more into the large one"):
        started = time.perf_counter()
        generating = asyncio.run(
            seed_activities([large], social.chunks(options.large - options.small))
        )
        large.seed_seconds["activities"] += time.perf_counter() - started
        large.seed_seconds["generating"] += generating
    for target in targets:
        with phase(f"building the indexes, VACUUM (ANALYZE) of the {target.label} database"):
            asyncio.run(finish_seeding(target, statements[target.label]))
        console.print(
            f"[dim]  {target.label}: "
            + ", ".join(f"{k} {v:.1f}s" for k, v in target.seed_seconds.items())
            + "[/dim]"
        )


def time_feed_sql(target: Target, social: Social, options: Options) -> dict[str, float]:
    """Each query of both designs in both plan modes."""
    page, count = asyncio.run(feed_sql(target.env.database_url, social.reader))
    queries = {
        "on_write_page": page,
        "on_write_count": count,
        "on_read_page": on_read_sql(social.reader)[0],
        "on_read_count": on_read_sql(social.reader)[1],
    }
    return {
        f"{name}_{mode}": asyncio.run(timed_plan(target.dsn, sql, options.sql_repeat, mode))
        for name, sql in queries.items()
        for mode in PLAN_MODES
    }


def explain_all(
    named: Sequence[tuple[str, Sql]], dsn: str, modes: Sequence[str] = PLAN_MODES
) -> dict[str, dict[str, str]]:
    found = {}
    for (name, sql), mode in itertools.product(named, modes):
        key = f"{name}, {mode} plan"
        found[key] = {"sql": sql.inline(), "plan": asyncio.run(explain_plan(dsn, sql, mode))}
        console.rule(key)
        console.print(found[key]["sql"], markup=False, highlight=False)
        console.print(found[key]["plan"], markup=False, highlight=False)
    return found


def run(options: Options) -> int:
    load_before = warn_if_busy()
    try:
        with ExitStack() as stack:
            envs = [
                stack.enter_context(environment(options.admin_url, options.redis_url, name))
                for name in ("bench_social_small", "bench_social_large")
            ]
            with phase("starting both servers (they install the default machines)"):
                small = start(envs[0], options, "small")
                large = start(envs[1], options, "large")
            with phase("generating the people and who follows whom"):
                social = Social.create(options)
            seed_all(small, large, social, options)
            facts = {t.label: asyncio.run(table_facts(t, social)) for t in (small, large)}
            for label, table_facts_ in facts.items():
                console.print(f"[dim]  {label}: {table_facts_}[/dim]")
            with phase("signing in the reader, the celebrity and the quiet author"):
                for target in (small, large):
                    for name in ("reader", "celebrity", "quiet"):
                        target.tokens[name] = login(
                            target.server.base_url, f"{name}@bench.example.com"
                        )

            # Answers first: the feed's page must be the one the join at read time gives.
            problems: list[str] = []
            for target in (small, large):
                expected = asyncio.run(page_ids(target.dsn, on_read_sql(social.reader)[0]))
                problems += check_feed_answer(
                    target, social, expected, facts[target.label]["reader_visible"]
                )
            for page in (1, options.far_page):
                problems += check_followers_answer(
                    large, social, page, facts["large"]["celebrity_followers"]
                )
            for problem in problems:
                console.print(f"[red]invalid answer: {problem}[/red]")

            feed_scenario = Scenario.make(
                "feed", "GET", FEED_PATH, headers=[bearer(large.tokens["reader"])]
            )
            small_feed = Scenario.make(
                "feed", "GET", FEED_PATH, headers=[bearer(small.tokens["reader"])]
            )
            feed_rounds = alternate(
                options,
                [("small", small.server, small_feed), ("large", large.server, feed_scenario)],
                envs[1].workdir,
                "feed",
                [small.dsn, large.dsn],
            )
            far = options.far_page
            followers_rounds = alternate(
                options,
                [
                    ("page1", large.server, followers_scenario(social, 1)),
                    (f"page{far}", large.server, followers_scenario(social, far)),
                ],
                envs[1].workdir,
                "followers",
                [large.dsn],
            )
            with phase(
                f"{options.post_warmup + options.posts} posts of each author, alternating, "
                "each delivered before the next"
            ):
                posts = asyncio.run(post_patterns(large, social, options))

            with phase("timing the feed's SQL and the fan-out-on-read alternative"):
                sql_ms = {t.label: time_feed_sql(t, social, options) for t in (small, large)}
            followers_ms = {}
            for page in (1, far):
                statements = asyncio.run(
                    followers_sql(large.env.database_url, social.celebrity, page)
                )
                followers_ms[f"page{page}"] = [
                    asyncio.run(timed_plan(large.dsn, sql, options.sql_repeat, "generic"))
                    for sql in statements
                ]
            for target in (small, large):
                target.server.check_alive()

            comparisons = [
                from_rounds(
                    "GET /api/feed",
                    (f"{options.small:,} activities", f"{options.large:,} activities"),
                    feed_rounds,
                    ("small", "large"),
                    options.feed_target,
                ),
                Comparison(
                    name="POST /api/patterns",
                    baseline_label="0 followers",
                    measured_label=f"{options.followers:,} followers",
                    baseline_p50=posts["quiet"].p50,
                    baseline_p99=posts["quiet"].p99,
                    measured_p50=posts["celebrity"].p50,
                    measured_p99=posts["celebrity"].p99,
                    requests=f"{len(posts['quiet'].latencies_ms)}/"
                    f"{len(posts['celebrity'].latencies_ms)}",
                    errors=posts["quiet"].errors + posts["celebrity"].errors,
                    target=options.post_target,
                ),
                from_rounds(
                    "GET /users/:id/followers",
                    ("page 1", f"page {far}"),
                    followers_rounds,
                    ("page1", f"page{far}"),
                    options.followers_target,
                ),
            ]
            console.print(render(comparisons))
            delivered = sorted(posts["celebrity"].delivered_s)
            recorded = sorted(posts["celebrity"].recorded_s)
            delivery = {
                "p50_s": percentile(delivered, 50),
                "max_s": delivered[-1] if delivered else math.nan,
                "recorded_p50_s": percentile(recorded, 50),
                "timeouts": posts["celebrity"].timeouts,
                "bound_s": DELIVERY_BOUND_SECONDS,
                "within_bound": bool(delivered)
                and delivered[-1] <= DELIVERY_BOUND_SECONDS
                and not posts["celebrity"].timeouts,
            }
            console.print(
                f"delivery to {options.followers:,} feeds (POST sent → last entry written, "
                f"{len(delivered)} patterns, polled every {options.poll_ms:g} ms): "
                f"p50 {delivery['p50_s']:.2f} s, max {delivery['max_s']:.2f} s "
                f"(activity recorded after {delivery['recorded_p50_s']:.2f} s); documented "
                f"bound {DELIVERY_BOUND_SECONDS:g} s: "
                + ("[green]within[/green]" if delivery["within_bound"] else "[red]exceeded[/red]")
            )
            sizes = [("small", options.small), ("large", options.large)]
            console.print(render_sql(sql_ms, sizes))
            console.print(
                f"followers list SQL at page 1 / page {far} (ms: page query, then the two "
                f"counts): {followers_ms}"
            )

            explains: dict[str, dict[str, str]] = {}
            if not comparisons[0].passed:
                feed_page, feed_count = asyncio.run(feed_sql(large.env.database_url, social.reader))
                explains |= explain_all(
                    [
                        ("feed page at large", feed_page),
                        ("feed count at large", feed_count),
                    ],
                    large.dsn,
                )
            if not comparisons[2].passed:
                statements = asyncio.run(
                    followers_sql(large.env.database_url, social.celebrity, far)
                )
                explains |= explain_all(
                    [
                        (f"followers page {far}: statement {i + 1}", s)
                        for i, s in enumerate(statements)
                    ],
                    large.dsn,
                )
            read_page, read_count = on_read_sql(social.reader)
            on_read_plans = {
                "fan-out on read, page": asyncio.run(explain_plan(large.dsn, read_page, "custom")),
                "fan-out on read, count": asyncio.run(
                    explain_plan(large.dsn, read_count, "custom")
                ),
            }

            path = write_results(
                options,
                {
                    "facts": facts,
                    "seed_seconds": {t.label: t.seed_seconds for t in (small, large)},
                    "comparisons": [c.as_dict() for c in comparisons],
                    "feed_rounds": {k: [m.as_dict() for m in ms] for k, ms in feed_rounds.items()},
                    "followers_rounds": {
                        k: [m.as_dict() for m in ms] for k, ms in followers_rounds.items()
                    },
                    "posts": {name: p.as_dict() for name, p in posts.items()},
                    "delivery": delivery,
                    "sql_ms": sql_ms,
                    "followers_sql_ms": followers_ms,
                    "explain": explains,
                    "fan_out_on_read_plans": on_read_plans,
                    "problems": problems,
                },
                load_before,
            )
            console.print(f"results: {path}")
            if problems or any(c.errors for c in comparisons):
                console.print("[red]invalid answers or errors: the run is invalid[/red]")
                return 1
            missed = [c.name for c in comparisons if not c.passed]
            if missed or not delivery["within_bound"]:
                console.print(f"[red]missed: {', '.join(missed) or 'the delivery bound'}[/red]")
                return 2
            return 0
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; cleaned up[/yellow]")
        return 130


def write_results(
    options: Options, body: dict[str, Any], load_before: tuple[float, float, float]
) -> Path:
    return write_run(options.results_dir, "social_scale", asdict(options), body, load_before)


def main() -> None:
    run_benchmark(parse_options, run)


if __name__ == "__main__":
    main()
