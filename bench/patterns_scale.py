"""Latency of the public pattern listing, GET /api/patterns, at 10,000 and at 1,000,000
patterns.

Creates a fresh PostgreSQL database (migrated), starts the real server (``beatmachine
serve``, default machines installed) with a private Redis key prefix, and seeds users and
patterns in bulk with COPY: titles and descriptions drawn from a word list (some salsa
words, a few rare ones), Salsa and Merengue patterns with configurations valid for their
machine, about 70 % public, a few soft-deleted, skewed play and like counts, creation
times spread over two years. Then, first at 10,000 patterns (1,000 users) and again after
growing to 1,000,000 patterns (100,000 users), it sends sequential requests (one
keep-alive connection) for each of

    sort=recent   sort=popular   sort=liked   flavor=Salsa   search=<word>   page=50

and reports p50 and p99, and the ratio p50(large) / p50(small) with PASS or FAIL against
the target (1.5). For every scenario that fails it prints EXPLAIN (ANALYZE, BUFFERS) of
the listing's SQL (recorded from the service's own list function on the bench database).
Everything it creates (server, database, Redis keys) is removed at the end, also on
failure or Ctrl-C. See bench/README.md.

    .venv/bin/python bench/patterns_scale.py [--large 1000000] [--requests 200]
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
from _harness import (
    BENCH_DIR,
    Environment,
    console,
    delete_redis_keys,
    environment,
    git_commit,
    machine_info,
    percentile,
    phase,
    service_parser,
    sigterm_as_interrupt,
    warn_if_busy,
)
from argon2 import PasswordHasher
from rich.table import Table
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from beatmachine.core.cache import MemoryCache
from beatmachine.core.pagination import PageParams
from beatmachine.machines.document import MachineDocument
from beatmachine.patterns import service
from beatmachine.patterns.schemas import Configuration, SortOrder
from beatmachine.patterns.service import configuration_json

LIST_PATH = "/api/patterns"
PAGE_LIMIT = 20  # the listing's default page size
FLAVORS = ("Salsa", "Merengue")
FLAVOR_SHARE = {"Salsa": 0.75, "Merengue": 0.25}
PUBLIC_SHARE = 0.70
DELETED_SHARE = 0.02
FORK_SHARE = 0.02
TWO_YEARS = timedelta(days=730).total_seconds()
CHUNK = 25_000  # rows per COPY
TEXT_POOL = 50_000  # distinct (title, description) pairs per flavor
CONFIG_POOL = 64  # distinct configurations per flavor
COPY_CONNECTIONS = 2

# --- the words of titles and descriptions ----------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Everyday words, drawn with Zipf weights (the first is the most frequent).
COMMON_WORDS = _words("""
my new groove beat rhythm pattern loop jam the and with for practice basic classic night
slow fast simple dance latin party session version mix live take idea sketch studio band
warm up cool hot sweet easy hard long short first second final old favorite friday
saturday sunday summer winter morning evening late early class lesson workshop social
floor street club home test try variation remix cover tribute style feel swing drive
bright dark soft loud heavy light smooth tight open break intro outro verse chorus bridge
solo call response section part full half double steady straight shuffle syncopated
funky happy crazy little big one two three four five six seven eight of in on to from
""")

# Words of the domain, each with the share of patterns (of its flavor) that contain it.
SALSA_WORDS: tuple[tuple[str, float], ...] = (
    ("salsa", 0.20),
    ("clave", 0.08),
    ("son", 0.05),
    ("mambo", 0.04),
    ("tumbao", 0.03),
    ("conga", 0.03),
    ("piano", 0.03),
    ("bass", 0.03),
    ("timbales", 0.02),
    ("cowbell", 0.02),
    ("bongo", 0.02),
    ("guiro", 0.015),
    ("montuno", 0.01),
    ("cha", 0.01),
    ("cascara", 0.008),
    ("rumba", 0.008),
    ("guaguanco", 0.006),
    ("descarga", 0.005),
    ("timba", 0.005),
    ("songo", 0.004),
    ("bolero", 0.003),
    ("coro", 0.003),
    ("campana", 0.003),
    ("martillo", 0.003),
    ("pachanga", 0.002),
    ("charanga", 0.002),
    ("pregon", 0.001),
    ("abanico", 0.001),
)
MERENGUE_WORDS: tuple[tuple[str, float], ...] = (
    ("merengue", 0.20),
    ("tambora", 0.05),
    ("guira", 0.04),
    ("perico", 0.01),
    ("ripiao", 0.01),
    ("jaleo", 0.008),
    ("bass", 0.02),
    ("piano", 0.02),
    ("montuno", 0.002),
    ("clave", 0.005),
    ("apanpichao", 0.001),
)
# Rare words: a few hundred patterns in a million.
RARE_WORDS: tuple[tuple[str, float], ...] = tuple(
    (word, 0.0003)
    for word in _words("mozambique batanga yambu abakua bembe iyesa pilon guajira danzon changui")
)
DEFAULT_SEARCH = "montuno"  # ~0.8 % of all patterns: mid-frequency

SCENARIOS: tuple[tuple[str, str], ...] = (
    ("recent", "sort=recent"),
    ("popular", "sort=popular"),
    ("liked", "sort=liked"),
    ("flavor", "flavor=Salsa"),
    ("search", "search={search}"),
    ("page50", f"page=50&limit={PAGE_LIMIT}"),
)


@dataclass(frozen=True)
class Options:
    admin_url: str
    redis_url: str
    small: int
    large: int
    patterns_per_user: int
    requests: int
    warmup: int
    rounds: int
    max_seconds: float
    search: str
    target: float
    seed: int
    workers: int
    extra_sql: Path | None
    keep_database: bool
    results_dir: Path


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = service_parser(__doc__)
    parser.add_argument("--small", type=int, default=10_000, help="patterns, first measurement")
    parser.add_argument("--large", type=int, default=1_000_000, help="patterns, second one")
    parser.add_argument("--patterns-per-user", type=int, default=10, help="users = patterns / this")
    parser.add_argument(
        "--requests", type=int, default=200, help="measured requests per scenario and size"
    )
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests before")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="the requests of the scenarios are sent in this many interleaved blocks, so "
        "that a burst of other work on the machine does not hit one scenario only",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="measuring time cap per scenario and size (a slow scenario gets fewer requests)",
    )
    parser.add_argument("--search", default=DEFAULT_SEARCH, help="the word of the search")
    parser.add_argument("--target", type=float, default=1.5, help="max p50(large)/p50(small)")
    parser.add_argument("--seed", type=int, default=20261125, help="random seed of the data")
    parser.add_argument("--workers", type=int, default=1, help="server processes (WORKERS)")
    parser.add_argument(
        "--extra-sql",
        type=Path,
        help="a file of SQL statements (separated by ';') run on the bench database after "
        "the first seeding, e.g. CREATE INDEX ...: to try an index before writing its "
        "migration. Indexes survive the growth to the large size.",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="leave the large database in place at the end, to study its queries",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH_DIR / "results", help="where the JSON goes"
    )
    args = parser.parse_args(argv)
    if not 0 < args.small < args.large:
        parser.error("need 0 < --small < --large")
    if args.requests < args.rounds or args.rounds < 1:
        parser.error("need 1 <= --rounds <= --requests")
    return Options(
        admin_url=args.admin_url,
        redis_url=args.redis_url,
        small=args.small,
        large=args.large,
        patterns_per_user=args.patterns_per_user,
        requests=args.requests,
        warmup=args.warmup,
        rounds=args.rounds,
        max_seconds=args.max_seconds,
        search=args.search,
        target=args.target,
        seed=args.seed,
        workers=args.workers,
        extra_sql=args.extra_sql,
        results_dir=args.results_dir,
        keep_database=args.keep_database,
    )


# --- generating the data --------------------------------------------------------------------

_RFC_TO_CROCKFORD = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789abcdefghjkmnpqrstvwxyz"
)


def new_ids(rng: random.Random, prefix: str, n: int) -> list[str]:
    """Ids shaped like `beatmachine.core.ids.new_id` (16 Crockford base32 characters),
    from the seeded generator, fast."""
    return [
        f"{prefix}_" + base64.b32encode(rng.randbytes(10)).decode().translate(_RFC_TO_CROCKFORD)
        for _ in range(n)
    ]


def zipf_cum_weights(n: int, exponent: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank**exponent) for rank in range(1, n + 1)))


@dataclass(frozen=True)
class MachineRef:
    id: str
    version: int
    configurations: tuple[str, ...]  # JSON texts, valid for this machine


def configurations_for(
    document: MachineDocument,
    rng: random.Random,
    enabled_share: Callable[[int], float] = lambda _position: 0.7,
) -> tuple[str, ...]:
    """Configurations as the API would store them: every instrument of the machine, with a
    program it has, some disabled (each switched on with `enabled_share` of its position
    in the machine), various volumes."""
    result = []
    for _ in range(CONFIG_POOL):
        instruments = [
            {
                "id": instrument.id,
                "enabled": rng.random() < enabled_share(position),
                "activeProgram": rng.randrange(max(1, len(instrument.programs))),
                "volume": round(rng.uniform(0.3, 1.0), 2),
                "pitchOffset": rng.choice((0, 0, 0, -2, 2)),
            }
            for position, instrument in enumerate(document.instruments)
        ]
        # Through the API's own model: what POST /patterns would have stored.
        configuration = Configuration.model_validate({"instruments": instruments})
        result.append(json.dumps(configuration_json(configuration), separators=(",", ":")))
    return tuple(result)


def text_pool(
    rng: random.Random, special: Sequence[tuple[str, float]], size: int
) -> list[tuple[str, str]]:
    """(title, description) pairs: a few common words, and each special word with its
    own probability, in the title or the description."""
    common_cum = zipf_cum_weights(len(COMMON_WORDS), 1.0)
    pool = []
    for _ in range(size):
        title = rng.choices(COMMON_WORDS, cum_weights=common_cum, k=rng.randint(1, 3))
        description = (
            rng.choices(COMMON_WORDS, cum_weights=common_cum, k=rng.randint(4, 24))
            if rng.random() < 0.8
            else []
        )
        for word, probability in special:
            if rng.random() < probability:
                words = title if rng.random() < 0.5 or not description else description
                words.insert(rng.randint(0, len(words)), word)
        pool.append(
            (
                " ".join(word.capitalize() for word in title)[:200],
                (" ".join(description).capitalize() + "." if description else ""),
            )
        )
    return pool


@dataclass
class DataSet:
    """What the seeded patterns draw from; `user_ids` grows with the seeding."""

    rng: random.Random
    now: datetime
    machines: dict[str, MachineRef]
    texts: dict[str, list[tuple[str, str]]]
    password_hash: str
    user_ids: list[str] = field(default_factory=list)
    user_cum: list[float] = field(default_factory=list)
    fork_sources: list[str] = field(default_factory=list)
    patterns: int = 0  # seeded so far

    @classmethod
    def create(cls, seed: int, machines: dict[str, tuple[str, int, MachineDocument]]) -> DataSet:
        rng = random.Random(seed)
        refs = {
            flavor: MachineRef(machine_id, version, configurations_for(document, rng))
            for flavor, (machine_id, version, document) in sorted(machines.items())
        }
        special = {"Salsa": SALSA_WORDS + RARE_WORDS, "Merengue": MERENGUE_WORDS + RARE_WORDS}
        texts = {flavor: text_pool(rng, special[flavor], TEXT_POOL) for flavor in FLAVORS}
        # A real (cheap) argon2id hash; nobody logs in with these accounts.
        password_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x" * 12)
        return cls(rng, datetime.now(UTC), refs, texts, password_hash)

    def created_at(self) -> datetime:
        return self.now - timedelta(seconds=self.rng.random() * TWO_YEARS)

    def user_rows(self, n: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """`n` more users (and their preferences); the earlier ones write the most."""
        ids = new_ids(self.rng, "usr", n)
        start = len(self.user_ids)
        users, preferences = [], []
        for number, user_id in enumerate(ids, start=start + 1):
            created = self.created_at()
            users.append(
                (
                    user_id,
                    f"user{number}@bench.example.com",
                    self.password_hash,
                    f"Dancer {number}",
                    None,
                    None,
                    False,
                    created,
                    None,
                    None,
                    created,
                    created,
                )
            )
            preferences.append((user_id, *DEFAULT_PREFERENCES))
        self.user_ids.extend(ids)
        self.user_cum = zipf_cum_weights(len(self.user_ids), 0.8)
        return users, preferences

    def pattern_chunks(self, n: int) -> Iterator[list[tuple[Any, ...]]]:
        left = n
        while left > 0:
            size = min(CHUNK, left)
            left -= size
            yield self._pattern_rows(size)
            self.patterns += size

    def _pattern_rows(self, n: int) -> list[tuple[Any, ...]]:
        rng = self.rng
        ids = new_ids(rng, "pat", n)
        authors = rng.choices(self.user_ids, cum_weights=self.user_cum, k=n)
        rows = []
        for pattern_id, author in zip(ids, authors, strict=True):
            flavor = "Salsa" if rng.random() < FLAVOR_SHARE["Salsa"] else "Merengue"
            machine = self.machines[flavor]
            title, description = rng.choice(self.texts[flavor])
            created = self.created_at()
            updated = created + timedelta(seconds=rng.random() * 86_400 * rng.choice((0, 0, 1, 30)))
            updated = min(updated, self.now)
            # Heavy-tailed, like real engagement: most patterns are barely played.
            plays = min(int((rng.paretovariate(1.1) - 1.0) * 15), 5_000_000)
            likes = int(plays * rng.random() * 0.08)
            deleted = (
                self.now - timedelta(seconds=rng.random() * 30 * 86_400)
                if rng.random() < DELETED_SHARE
                else None
            )
            original = (
                rng.choice(self.fork_sources)
                if self.fork_sources and rng.random() < FORK_SHARE
                else None
            )
            rows.append(
                (
                    pattern_id,
                    author,
                    title,
                    description,
                    flavor,
                    rng.randint(80, 220) if flavor == "Salsa" else rng.randint(110, 180),
                    rng.randrange(12),
                    rng.random() < PUBLIC_SHARE,
                    rng.choice(machine.configurations),
                    None,
                    machine.id,
                    machine.version,
                    1 if rng.random() < 0.8 else rng.randint(2, 6),
                    plays,
                    likes,
                    0,
                    1 if original else 0,
                    original,
                    deleted,
                    created,
                    updated,
                )
            )
        if len(self.fork_sources) < 1000:
            self.fork_sources.extend(ids[: 1000 - len(self.fork_sources)])
        return rows


USER_COLUMNS = (
    "id",
    "email",
    "password_hash",
    "display_name",
    "bio",
    "avatar",
    "is_admin",
    "email_verified_at",
    "last_login_at",
    "deletion_scheduled_at",
    "created_at",
    "updated_at",
)
PREFERENCE_COLUMNS = (
    "user_id",
    "default_bpm",
    "default_key",
    "default_flavor",
    "use_glass_ui",
    "auto_play",
    "show_beat_numbers",
    "default_volume",
    "theme",
    "language",
    "notify_likes",
    "notify_comments",
    "notify_follows",
    "notify_newsletter",
)
# The defaults of UserPreferences, in PREFERENCE_COLUMNS order (after user_id).
DEFAULT_PREFERENCES = (
    120,
    0,
    "Salsa",
    True,
    False,
    True,
    0.8,
    "auto",
    "en",
    True,
    True,
    True,
    False,
)
PATTERN_COLUMNS = (
    "id",
    "user_id",
    "title",
    "description",
    "flavor",
    "bpm",
    "key_note",
    "is_public",
    "configuration",
    "thumbnail",
    "machine_id",
    "machine_version",
    "version",
    "plays_count",
    "likes_count",
    "comments_count",
    "forks_count",
    "original_id",
    "deleted_at",
    "created_at",
    "updated_at",
)  # search_vector is a generated column: PostgreSQL computes it.


# --- the database -----------------------------------------------------------------------------


def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


async def wait_for_machines(
    dsn: str, wait_seconds: float = 60.0
) -> dict[str, tuple[str, int, MachineDocument]]:
    """The machines the server installs at start-up: by flavor, the machine id, the
    number of its current version and that version's document."""
    deadline = time.monotonic() + wait_seconds
    connection = await asyncpg.connect(dsn)
    try:
        while True:
            rows = await connection.fetch(
                "SELECT m.id, m.flavor, m.current_version, v.document FROM machines m "
                "JOIN machine_versions v ON v.machine_id = m.id AND v.version = m.current_version"
            )
            found = {
                row["flavor"]: (
                    row["id"],
                    row["current_version"],
                    MachineDocument.model_validate(json.loads(row["document"])),
                )
                for row in rows
            }
            if all(flavor in found for flavor in FLAVORS):
                return found
            if time.monotonic() > deadline:
                raise RuntimeError(f"default machines not installed (found {sorted(found)})")
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


async def copy_rows(
    dsn: str, table: str, columns: Sequence[str], chunks: Iterable[list[tuple[Any, ...]]]
) -> int:
    """COPY the chunks over a few connections: while the server stores one chunk, the
    next one is generated. Foreign-key triggers are skipped (the data is consistent by
    construction); the generated search column is still computed."""
    iterator = iter(chunks)
    copied = 0

    async def worker() -> None:
        nonlocal copied
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute("SET session_replication_role = replica")
            for chunk in iterator:
                await connection.copy_records_to_table(table, records=chunk, columns=columns)
                copied += len(chunk)
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(COPY_CONNECTIONS)))
    return copied


async def drop_secondary_indexes(dsn: str) -> list[str]:
    """Drop the patterns indexes that no constraint owns; their definitions, to re-create
    them after a bulk load (much faster than maintaining them row by row)."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = 'patterns' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'patterns'::regclass)"
        )
        for row in rows:
            await connection.execute(f'DROP INDEX "{row["indexname"]}"')
        return [row["indexdef"] for row in rows]
    finally:
        await connection.close()


async def create_indexes(dsn: str, definitions: Sequence[str]) -> None:
    """Re-create indexes on two connections, the big full-text index on one of them."""
    gin = [d for d in definitions if "USING gin" in d]
    rest = [d for d in definitions if d not in gin]

    async def build(statements: Sequence[str]) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute("SET maintenance_work_mem = '512MB'")
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    await asyncio.gather(build(gin), build(rest))


async def settle(dsn: str) -> None:
    """What a live table would have had time for: statistics, the visibility map, hint
    bits; and a checkpoint now rather than during the measurement."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("VACUUM (ANALYZE) users, user_preferences, patterns")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


async def seed(dsn: str, data: DataSet, users: int, patterns: int, bulk: bool) -> dict[str, float]:
    """Add `users` users and `patterns` patterns; with `bulk`, the secondary indexes of
    patterns are dropped first and built again after. Returns the time of each step."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    user_rows, preference_rows = data.user_rows(users)
    await copy_rows(dsn, "users", USER_COLUMNS, [user_rows])
    await copy_rows(dsn, "user_preferences", PREFERENCE_COLUMNS, [preference_rows])
    timings["users"] = time.perf_counter() - started
    definitions = await drop_secondary_indexes(dsn) if bulk else []
    started = time.perf_counter()
    await copy_rows(dsn, "patterns", PATTERN_COLUMNS, data.pattern_chunks(patterns))
    timings["patterns"] = time.perf_counter() - started
    if definitions:
        started = time.perf_counter()
        await create_indexes(dsn, definitions)
        timings["indexes"] = time.perf_counter() - started
    started = time.perf_counter()
    await settle(dsn)
    timings["vacuum_analyze_checkpoint"] = time.perf_counter() - started
    return timings


async def run_extra_sql(dsn: str, statements: Sequence[str]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()
    await settle(dsn)


async def table_facts(dsn: str, search: str) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT count(*) AS patterns, "
            "count(*) FILTER (WHERE is_public AND deleted_at IS NULL) AS public_live, "
            "count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted, "
            "count(*) FILTER (WHERE is_public AND deleted_at IS NULL AND flavor = 'Salsa') "
            "AS public_salsa, "
            "count(*) FILTER (WHERE is_public AND deleted_at IS NULL AND search_vector @@ "
            "to_tsquery('simple', $1)) AS public_search_matches, "
            "pg_size_pretty(pg_total_relation_size('patterns')) AS size "
            "FROM patterns",
            f"{search.lower()}:*",
        )
        facts = dict(row) if row else {}
        facts["users"] = await connection.fetchval("SELECT count(*) FROM users")
        return facts
    finally:
        await connection.close()


# --- the listing's SQL, for EXPLAIN -------------------------------------------------------------


@dataclass(frozen=True)
class Sql:
    """A statement as the server sends it (asyncpg placeholders) and its arguments."""

    text: str
    args: tuple[Any, ...]

    def inline(self) -> str:
        """The statement with its arguments written in, to paste into psql."""

        def literal(match: re.Match[str]) -> str:
            value = self.args[int(match.group(1)) - 1]
            if isinstance(value, str):
                return "'" + value.replace("'", "''") + "'"
            return str(value)

        return re.sub(r"\$(\d+)", literal, self.text)


async def listing_sql(database_url: str, query: dict[str, str]) -> tuple[Sql, Sql]:
    """The page query and the count query (for a search: the ranking query, which also
    counts) that GET /api/patterns runs with these parameters:
    `beatmachine.patterns.service.list_patterns` is called on the bench database (empty
    in-process cache) and its statements are recorded as sent."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    statements: list[Sql] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def record(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if "FROM patterns" in statement:
            statements.append(Sql(statement, tuple(parameters or ())))

    try:
        async with AsyncSession(engine) as session:
            await service.list_patterns(
                session,
                MemoryCache(),
                PageParams(
                    page=int(query.get("page", 1)), limit=int(query.get("limit", PAGE_LIMIT))
                ),
                service.ListFilter(
                    sort=cast("SortOrder", query.get("sort", "recent")),
                    flavor=query.get("flavor"),
                    search=query.get("search"),
                ),
            )
    finally:
        await engine.dispose()
    counts = [sql for sql in statements if "count(" in sql.text]
    pages = [sql for sql in statements if "count(" not in sql.text]
    if len(counts) != 1 or len(pages) != 1:
        raise RuntimeError(f"expected a count and a page query, recorded {statements}")
    return pages[0], counts[0]


async def explain(dsn: str, sql: Sql) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql.text}", *sql.args)
        return "\n".join(row[0] for row in rows)
    finally:
        await connection.close()


async def timed_sql(dsn: str, sql: Sql, repeat: int = 5) -> float:
    """Median execution time of `sql` in ms, measured inside PostgreSQL."""
    connection = await asyncpg.connect(dsn)
    try:
        times = []
        for _ in range(repeat):
            rows = await connection.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql.text}", *sql.args)
            times.append(float(json.loads(rows[0][0])[0]["Execution Time"]))
        return statistics.median(times)
    finally:
        await connection.close()


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Result:
    key: str
    path: str
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    total: int | None = None  # pagination.total of the answers
    items: int | None = None  # patterns on the page

    @property
    def p50(self) -> float:
        return percentile(sorted(self.latencies_ms), 50)

    @property
    def p99(self) -> float:
        return percentile(sorted(self.latencies_ms), 99)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "200")

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {
            "path": self.path,
            "requests": len(ordered),
            "p50_ms": self.p50,
            "p90_ms": percentile(ordered, 90),
            "p99_ms": self.p99,
            "max_ms": ordered[-1] if ordered else None,
            "mean_ms": statistics.fmean(ordered) if ordered else None,
            "statuses": dict(self.statuses),
            "total": self.total,
            "items": self.items,
        }


def scenario_paths(search: str) -> list[tuple[str, str]]:
    return [(key, f"{LIST_PATH}?{query.format(search=search)}") for key, query in SCENARIOS]


def _send(client: httpx.Client, result: Result | None, path: str) -> None:
    started = time.perf_counter()
    try:
        response = client.get(path)
        response.read()
        status = str(response.status_code)
    except httpx.HTTPError as exc:
        response, status = None, type(exc).__name__
    elapsed = (time.perf_counter() - started) * 1000.0
    if result is None:
        return
    result.latencies_ms.append(elapsed)
    result.statuses[status] += 1
    if response is not None and response.status_code == 200 and path.startswith(LIST_PATH):
        data = response.json()["data"]
        result.total = data["pagination"]["total"]
        result.items = len(data["patterns"])


def measure_all(base_url: str, options: Options) -> dict[str, Result]:
    """Sequential requests on one keep-alive connection; the scenarios take turns in
    `rounds` blocks. /healthz is measured alongside as the floor of the stack.

    A scenario gets at most `max_seconds` of measuring (spread over the rounds) and 10 s
    of warm-up, so that a pathologically slow query cannot stretch the run to hours; it
    then has fewer than `requests` samples (the table shows how many)."""
    paths = [("healthz", "/healthz"), *scenario_paths(options.search)]
    results = {key: Result(key, path) for key, path in paths}
    sizes = [
        options.requests // options.rounds + (1 if i < options.requests % options.rounds else 0)
        for i in range(options.rounds)
    ]
    budget = options.max_seconds / options.rounds
    with httpx.Client(base_url=base_url, timeout=300.0) as client:
        for _key, path in paths:
            until = time.monotonic() + 10.0
            for _ in range(options.warmup):
                _send(client, None, path)
                if time.monotonic() > until:
                    break
        for size in sizes:
            for key, path in paths:
                until = time.monotonic() + budget
                for _ in range(size):
                    _send(client, results[key], path)
                    if time.monotonic() > until:
                        break
    return results


async def clear_cached_listings(redis_url: str, prefix: str) -> None:
    """The listing caches its totals and search rankings for 30 s; the rows were seeded
    behind the server's back, so a new size must not see those of the old one."""
    await delete_redis_keys(redis_url, prefix + "*patterns:count")
    await delete_redis_keys(redis_url, prefix + "*patterns:count:*")
    await delete_redis_keys(redis_url, prefix + "*patterns:search:*")


# --- reporting -----------------------------------------------------------------------------------


@dataclass
class Phase:
    patterns: int
    users: int
    seed_seconds: dict[str, float]
    facts: dict[str, Any]
    results: dict[str, Result]
    # The uncached count queries inside PostgreSQL; for a search, its ranking query.
    count_sql_ms: dict[str, float]
    detail_problem: str | None = None


def print_table(small: Phase, large: Phase, options: Options) -> dict[str, bool]:
    table = Table(
        title=f"GET {LIST_PATH}: {small.patterns:,} vs {large.patterns:,} patterns "
        f"(sequential, {options.requests} requests each)"
    )
    table.add_column("scenario")
    table.add_column("query")
    for phase_ in (small, large):
        label = f"{phase_.patterns:,}"
        table.add_column(f"p50 ms\n{label}", justify="right")
        table.add_column(f"p99 ms\n{label}", justify="right")
    table.add_column("p50 ratio", justify="right")
    table.add_column(f"≤ {options.target}", justify="center")
    table.add_column("total\n(large)", justify="right")
    table.add_column("requests", justify="right")
    table.add_column("errors", justify="right")
    verdicts: dict[str, bool] = {}
    for key, a in small.results.items():
        b = large.results[key]
        ratio = b.p50 / a.p50 if a.p50 else float("nan")
        target_applies = key != "healthz"
        passed = ratio <= options.target
        if target_applies:
            verdicts[key] = passed
        verdict = (
            ("[green]PASS[/green]" if passed else "[red]FAIL[/red]") if target_applies else "-"
        )
        table.add_row(
            key,
            a.path.removeprefix(LIST_PATH),
            f"{a.p50:.2f}",
            f"{a.p99:.2f}",
            f"{b.p50:.2f}",
            f"{b.p99:.2f}",
            f"{ratio:.2f}",
            verdict,
            "" if b.total is None else f"{b.total:,}",
            f"{len(a.latencies_ms)}/{len(b.latencies_ms)}",
            str(a.errors + b.errors),
        )
    console.print(table)
    return verdicts


def write_results(
    options: Options,
    phases: Sequence[Phase],
    verdicts: dict[str, bool],
    explains: dict[str, dict[str, str]],
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "benchmark": "patterns_scale",
        "time": stamp,
        "commit": git_commit(),
        "options": {
            k: v for k, v in asdict(options).items() if k not in ("admin_url", "results_dir")
        },
        "machine": machine_info(*load),
        "phases": [
            {
                "patterns": p.patterns,
                "users": p.users,
                "seed_seconds": p.seed_seconds,
                "facts": p.facts,
                "count_sql_ms": p.count_sql_ms,
                "results": {k: r.as_dict() for k, r in p.results.items()},
            }
            for p in phases
        ],
        "verdicts": verdicts,
        "explain": explains,
    }
    options.results_dir.mkdir(parents=True, exist_ok=True)
    path = options.results_dir / f"patterns_scale-{stamp}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def check_detail(base_url: str) -> str | None:
    """The seeded rows must be readable through the API: the most played pattern's page
    (its configuration is parsed on the way out)."""
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        listing = client.get(LIST_PATH, params={"sort": "popular", "limit": 1})
        pattern_id = listing.json()["data"]["patterns"][0]["id"]
        detail = client.get(f"{LIST_PATH}/{pattern_id}")
    if detail.status_code != 200:
        return f"GET {LIST_PATH}/{pattern_id}: {detail.status_code} {detail.text[:300]}"
    return None


def check_answers(phase_: Phase, options: Options) -> list[str]:
    """Every answer a 200 with a full page, and totals that match the database."""
    problems = [phase_.detail_problem] if phase_.detail_problem else []
    expected = {
        "recent": phase_.facts["public_live"],
        "popular": phase_.facts["public_live"],
        "liked": phase_.facts["public_live"],
        "page50": phase_.facts["public_live"],
        "flavor": phase_.facts["public_salsa"],
        "search": phase_.facts["public_search_matches"],
    }
    for key, result in phase_.results.items():
        if result.errors:
            problems.append(f"{key} at {phase_.patterns:,}: statuses {dict(result.statuses)}")
        if key in expected:
            if result.total != expected[key]:
                problems.append(
                    f"{key} at {phase_.patterns:,}: total {result.total}, database {expected[key]}"
                )
            if result.items != min(PAGE_LIMIT, expected[key]) and key != "page50":
                problems.append(f"{key} at {phase_.patterns:,}: {result.items} items on the page")
    return problems


# --- the run -------------------------------------------------------------------------------------


def query_of(path: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in path.partition("?")[2].split("&") if "=" in part)


def run_phase(
    env: Environment, options: Options, data: DataSet, patterns: int, users: int, bulk: bool
) -> Phase:
    dsn = asyncpg_dsn(env.database_url)
    new_patterns = patterns - data.patterns
    new_users = users - len(data.user_ids)
    with phase(f"seeding {new_users:,} users and {new_patterns:,} patterns (COPY)"):
        timings = asyncio.run(seed(dsn, data, new_users, new_patterns, bulk))
    console.print("[dim]  " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()) + "[/dim]")
    if options.extra_sql is not None and not bulk:
        text_ = options.extra_sql.read_text()
        statements = [part.strip() for part in text_.split(";") if part.strip()]
        with phase(f"running {options.extra_sql}"):
            asyncio.run(run_extra_sql(dsn, statements))
        for statement in statements:
            console.print(f"[dim]  {statement}[/dim]", highlight=False)
    facts = asyncio.run(table_facts(dsn, options.search))
    console.print(f"[dim]  {facts}[/dim]")
    asyncio.run(clear_cached_listings(env.redis_url, env.prefix))
    assert env.server is not None
    with phase(f"measuring at {patterns:,} patterns"):
        results = measure_all(env.server.base_url, options)
    count_ms = {}
    for key, path in scenario_paths(options.search):
        if key in ("recent", "flavor", "search"):  # the distinct count queries
            _page, count = asyncio.run(listing_sql(env.database_url, query_of(path)))
            count_ms[key] = asyncio.run(timed_sql(dsn, count))
    detail_problem = check_detail(env.server.base_url)
    return Phase(patterns, users, timings, facts, results, count_ms, detail_problem)


def run(options: Options) -> int:
    load_before = warn_if_busy()
    small_users = max(1, options.small // options.patterns_per_user)
    large_users = max(small_users, options.large // options.patterns_per_user)
    with (
        sigterm_as_interrupt(),
        environment(
            options.admin_url,
            options.redis_url,
            "bench_patterns",
            keep_database=options.keep_database,
        ) as env,
    ):
        server_env = env.server_env(
            options.workers, INSTALL_DEFAULT_MACHINES="true", DB_ECHO="false"
        )
        with phase("starting the server (installs the default machines)"):
            env.start_server(server_env, options.workers)
            machines = asyncio.run(wait_for_machines(asyncpg_dsn(env.database_url)))
        with phase("generating the word and configuration pools"):
            data = DataSet.create(options.seed, machines)
        small = run_phase(env, options, data, options.small, small_users, bulk=False)
        large = run_phase(env, options, data, options.large, large_users, bulk=True)
        env.server.check_alive()  # type: ignore[union-attr]

        verdicts = print_table(small, large, options)
        console.print(
            "what a cache miss costs inside PostgreSQL (ms; the listing caches totals for 30 s, "
            "a search its ranking, which also counts, for 30 s): "
            + ", ".join(
                f"{k}: {small.count_sql_ms[k]:.1f} → {large.count_sql_ms[k]:.1f}"
                for k in small.count_sql_ms
            )
        )
        problems = check_answers(small, options) + check_answers(large, options)
        for problem in problems:
            console.print(f"[red]invalid answer: {problem}[/red]")

        explains: dict[str, dict[str, str]] = {}
        dsn = asyncpg_dsn(env.database_url)
        for key, path in scenario_paths(options.search):
            if verdicts.get(key, True):
                continue
            page_sql, count_sql = asyncio.run(listing_sql(env.database_url, query_of(path)))
            explains[key] = {
                "page_sql": page_sql.inline(),
                "page_plan": asyncio.run(explain(dsn, page_sql)),
                "count_sql": count_sql.inline(),
                "count_plan": asyncio.run(explain(dsn, count_sql)),
            }
            console.rule(f"FAIL {key}: {path} at {options.large:,} patterns")
            console.print(explains[key]["page_sql"], markup=False, highlight=False)
            console.print(explains[key]["page_plan"], markup=False, highlight=False)
            console.print("-- the count, or for a search the ranking (each cached for 30 s):")
            console.print(explains[key]["count_sql"], markup=False, highlight=False)
            console.print(explains[key]["count_plan"], markup=False, highlight=False)

        load_after = os.getloadavg()
        results_path = write_results(
            options, (small, large), verdicts, explains, (load_before, load_after)
        )
        console.print(f"results: {results_path}")
    if problems:
        return 2
    return 0 if all(verdicts.values()) else 1


def main() -> None:
    try:
        sys.exit(run(parse_options()))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; cleaned up[/yellow]")
        sys.exit(130)


if __name__ == "__main__":
    main()
