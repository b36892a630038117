"""The analytics domain at scale: the rollup and every report at 100,000 usage events and
at 11,000,000 (10,000,000 plays and 1,000,000 pattern events), in the same run.

Creates two fresh PostgreSQL databases (migrated), each with the real server
(``beatmachine serve``, default machines installed, ``ANALYTICS_CACHE_TTL=0``: every
request computes its answer) and a private Redis key prefix, and seeds both in bulk with
COPY (indexes built after the load), in the same proportions, from a fixed seed:

    users                  the accounts (35 % signed up inside the last 89 days) and an admin
    patterns               Salsa and Merengue, with configurations valid for the installed
                           machines (instruments switched on with Zipf-like popularity),
                           public, private and deleted
    analytics_events       over the last 89 days, today included, in the order they were
                           recorded: pattern_played (Zipf-like popularity of patterns),
                           pattern_created (with analytics_event_instruments rows),
                           pattern_saved, pattern_liked, user_registered
    analytics_active_days  the days each account was used, fewer week by week after its
                           sign-up (the retention cohorts)

Then, on both databases, it times ``beatmachine analytics-rollup`` (``ANALYTICS_ROLLUP_LAG=0``)
twice: the full rollup (everything is new) and, after a minute of new usage is recorded,
the incremental one. A second minute is recorded and left to the live part of the answers,
as in production, where the last minute or two are not rolled up yet. It checks every
report's answer against the raw events, and measures p50 and p99 of each (sequential
requests, the two sizes taking turns); targets: p50 under 50 ms at the large size, and at
most 1.5 times the small size's. For every miss it prints EXPLAIN (ANALYZE, BUFFERS) of the
report's slowest statements, recorded from the service on the bench database. Everything
it creates (servers, databases, Redis keys) is removed at the end, also on failure or
Ctrl-C. See bench/README.md.

    .venv/bin/python bench/analytics_scale.py [--plays 10000000] [--requests 200]
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import time
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
import httpx
from _harness import (
    BENCH_DIR,
    Environment,
    Server,
    console,
    environment,
    phase,
    run_benchmark,
    service_parser,
    warn_if_busy,
    write_run,
)
from argon2 import PasswordHasher
from patterns_scale import (
    DEFAULT_PREFERENCES,
    PATTERN_COLUMNS,
    PREFERENCE_COLUMNS,
    USER_COLUMNS,
    Result,
    Sql,
    asyncpg_dsn,
    configurations_for,
    copy_rows,
    explain,
    new_ids,
    timed_sql,
    wait_for_machines,
    zipf_cum_weights,
)
from rich.table import Table
from social_scale import PASSWORD, bearer, build_indexes, drop_bulk_indexes, login, recorded_sql
from social_scale import settle as vacuum_analyze
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics import service
from beatmachine.analytics.ranges import (
    HALF_LIFE_DAYS,
    RANGE_DAYS,
    Period,
    TimeRange,
    period_start,
    periods_between,
)
from beatmachine.core.state import AppState

API = "/api/analytics/"
DAY_SECONDS = 86_400.0
RANGE = 89  # days of usage, inside the 90-day retention of raw events
RETENTION_DAYS = 90  # the default of ANALYTICS_EVENT_RETENTION
TWO_YEARS = 730 * DAY_SECONDS
FLAVORS = ("Salsa", "Merengue")
# The proportions, the same at both sizes.
CREATED_SHARE = 0.8  # of the pattern events; the others are saves
LIKES_PER_PLAY = 0.03
USERS_PER_EVENT = 100_000 / 11_000_000
REGISTERED_SHARE = 0.35  # accounts that signed up inside the range
OLD_PATTERNS_PER_CREATED = 0.25  # patterns older than the range, still played
ANONYMOUS_SHARE = 0.3  # plays without an account
PUBLIC_SHARE = 0.85
DELETED_SHARE = 0.04
LEAVING_SHARE = 0.005  # accounts awaiting deletion: their patterns never trend
LATE_SHARE = 0.002  # events recorded a day or more after they happened
PATTERN_EXPONENT = 0.9  # Zipf exponent of the patterns' popularity
ADMIN_EMAIL = "admin@bench.example.com"
LIMIT = 10  # the reports' default limit
BULK_TABLES = ("analytics_events", "analytics_event_instruments", "analytics_active_days")
EVENT_COLUMNS = (
    "id",
    "kind",
    "day",
    "occurred_at",
    "recorded_at",
    "user_id",
    "pattern_id",
    "flavor",
    "bpm",
    "key_note",
)
INSTRUMENT_COLUMNS = ("event_id", "instrument", "day")
ACTIVE_COLUMNS = ("user_id", "day", "cohort", "recorded_at")


@dataclass(frozen=True)
class Options:
    admin_url: str
    redis_url: str
    plays: int
    pattern_events: int
    small: int
    users: int
    minute: int
    live: int
    requests: int
    warmup: int
    rounds: int
    max_seconds: float
    p50_limit_ms: float
    target: float
    cached: bool
    seed: int
    workers: int
    results_dir: Path


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = service_parser(__doc__)
    parser.add_argument("--plays", type=int, default=10_000_000, help="plays, large database")
    parser.add_argument(
        "--pattern-events",
        type=int,
        default=1_000_000,
        help="patterns created (80 %%, with their instruments) and saved, large database",
    )
    parser.add_argument(
        "--small",
        type=int,
        default=100_000,
        help="plays and pattern events of the small database (same proportions)",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=0,
        help="accounts of the large database (0: one per 110 events, 100,000 at the "
        "default size); the small one gets the same share",
    )
    parser.add_argument(
        "--minute",
        type=int,
        default=10_000,
        help="new events recorded before the incremental rollup (a busy minute)",
    )
    parser.add_argument(
        "--live",
        type=int,
        default=10_000,
        help="events recorded after the last rollup: the live part of every answer",
    )
    parser.add_argument("--requests", type=int, default=200, help="measured, per report and size")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests before")
    parser.add_argument("--rounds", type=int, default=4, help="blocks the sizes take turns in")
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="cap on measuring one report at one size"
    )
    parser.add_argument(
        "--p50-limit", type=float, default=50.0, help="max p50 (ms) at the large size"
    )
    parser.add_argument("--target", type=float, default=1.5, help="max p50(large)/p50(small)")
    parser.add_argument(
        "--no-cached",
        dest="cached",
        action="store_false",
        help="skip the second measurement with the default answer cache (10 s)",
    )
    parser.add_argument("--seed", type=int, default=20261201, help="random seed of the data")
    parser.add_argument("--workers", type=int, default=1, help="server processes (WORKERS)")
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH_DIR / "results", help="where the JSON goes"
    )
    args = parser.parse_args(argv)
    if not 0 < args.small < args.plays + args.pattern_events:
        parser.error("need 0 < --small < --plays + --pattern-events")
    if args.requests < args.rounds or args.rounds < 1:
        parser.error("need 1 <= --rounds <= --requests")
    large_events = args.plays + args.pattern_events
    return Options(
        admin_url=args.admin_url,
        redis_url=args.redis_url,
        plays=args.plays,
        pattern_events=args.pattern_events,
        small=args.small,
        users=args.users or max(100, round(large_events * USERS_PER_EVENT)),
        minute=args.minute,
        live=args.live,
        requests=args.requests,
        warmup=args.warmup,
        rounds=args.rounds,
        max_seconds=args.max_seconds,
        p50_limit_ms=args.p50_limit,
        target=args.target,
        cached=args.cached,
        seed=args.seed,
        workers=args.workers,
        results_dir=args.results_dir,
    )


# --- generating the usage ------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """What one database holds."""

    plays: int
    created: int
    saved: int
    likes: int
    users: int
    registered: int
    old_patterns: int

    @classmethod
    def of(cls, plays: int, pattern_events: int, users: int) -> Sizes:
        created = round(pattern_events * CREATED_SHARE)
        return cls(
            plays=plays,
            created=created,
            saved=pattern_events - created,
            likes=round(plays * LIKES_PER_PLAY),
            users=users,
            registered=round(users * REGISTERED_SHARE),
            old_patterns=max(10, round(created * OLD_PATTERNS_PER_CREATED)),
        )

    def scaled(self, plays_and_patterns: int) -> Sizes:
        factor = plays_and_patterns / (self.plays + self.created + self.saved)
        plays = round(self.plays * factor)
        return Sizes.of(plays, plays_and_patterns - plays, max(20, round(self.users * factor)))

    @property
    def events(self) -> int:
        return self.plays + self.created + self.saved + self.likes + self.registered


@dataclass(frozen=True)
class Machine:
    """An installed machine, its configurations and the instruments each switches on."""

    id: str
    version: int
    configurations: tuple[str, ...]
    enabled: tuple[tuple[str, ...], ...]


def machines_of(installed: dict[str, Any], seed: int) -> dict[str, Machine]:
    """Configurations valid for each installed machine; an instrument's chance to be
    switched on falls with its (random) popularity rank, Zipf-like."""
    rng = random.Random(seed)
    result = {}
    for flavor, (machine_id, version, document) in sorted(installed.items()):
        ranks = list(range(len(document.instruments)))
        rng.shuffle(ranks)

        def share(position: int, ranks: list[int] = ranks) -> float:
            return min(0.95, 0.95 / (ranks[position] + 1) ** 0.7)

        configurations = configurations_for(document, rng, share)
        enabled = tuple(
            tuple(i["id"] for i in json.loads(text)["instruments"] if i["enabled"])
            for text in configurations
        )
        result[flavor] = Machine(machine_id, version, configurations, enabled)
    return result


def _when(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass
class Usage:
    """The accounts, patterns and usage of one database, generated slice by slice (a slice
    is 24 hours; the last one ends now)."""

    sizes: Sizes
    machines: dict[str, Machine]
    now: float
    rng: random.Random
    password_hash: str
    user_ids: list[str] = field(default_factory=list)
    user_times: list[float] = field(default_factory=list)  # sign-up times, ascending
    leaving: set[int] = field(default_factory=set)
    admin_id: str = ""
    # The patterns, in the order they were created (those older than the range first).
    p_ids: list[str] = field(default_factory=list)
    p_times: list[float] = field(default_factory=list)
    p_author: list[int] = field(default_factory=list)
    p_flavor: list[str] = field(default_factory=list)
    p_bpm: list[int] = field(default_factory=list)
    p_key: list[int] = field(default_factory=list)
    p_public: list[bool] = field(default_factory=list)
    p_deleted: list[float | None] = field(default_factory=list)
    p_config: list[int] = field(default_factory=list)
    p_cum: list[float] = field(default_factory=list)  # popularity, cumulated
    next_event: int = 1
    created_log: list[tuple[int, str, int, date]] = field(default_factory=list)
    active_today: set[int] = field(default_factory=set)
    key_cum: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)

    @property
    def start(self) -> float:
        return self.now - RANGE * DAY_SECONDS

    @classmethod
    def create(cls, sizes: Sizes, machines: dict[str, Machine], now: float, seed: int) -> Usage:
        usage = cls(
            sizes=sizes,
            machines=machines,
            now=now,
            rng=random.Random(seed),
            password_hash=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD),
        )
        usage._people()
        usage._patterns()
        return usage

    def _people(self) -> None:
        rng, sizes = self.rng, self.sizes
        times = [
            self.start + rng.random() * (self.now - 120 - self.start)
            for _ in range(sizes.registered)
        ]
        times += [
            self.start - DAY_SECONDS - rng.random() * TWO_YEARS
            for _ in range(sizes.users - sizes.registered)
        ]
        self.user_times = sorted(times)
        self.user_ids = new_ids(rng, "usr", len(times))
        self.leaving = {i for i in range(len(times)) if rng.random() < LEAVING_SHARE}
        self.admin_id = new_ids(rng, "usr", 1)[0]
        for flavor in FLAVORS:  # a few keys are much more common than the rest
            keys = list(range(12))
            rng.shuffle(keys)
            self.key_cum[flavor] = (keys, zipf_cum_weights(12, 1.0))

    def _author(self, at: float) -> int:
        known = bisect_right(self.user_times, at)
        return self.rng.randrange(known) if known else 0

    def _new_pattern(self, at: float) -> int:
        rng = self.rng
        flavor = FLAVORS[0] if rng.random() < 0.75 else FLAVORS[1]
        bpm = round(rng.gauss(180, 18) if flavor == "Salsa" else rng.gauss(140, 12))
        keys, cum = self.key_cum[flavor]
        public = rng.random() < PUBLIC_SHARE
        deleted = at + rng.random() * (self.now - at) if rng.random() < DELETED_SHARE else None
        self.p_ids.append(new_ids(rng, "pat", 1)[0])
        self.p_times.append(at)
        self.p_author.append(self._author(at))
        self.p_flavor.append(flavor)
        self.p_bpm.append(min(250, max(80, bpm)))
        self.p_key.append(rng.choices(keys, cum_weights=cum)[0])
        self.p_public.append(public)
        self.p_deleted.append(deleted)
        self.p_config.append(rng.randrange(len(self.machines[flavor].configurations)))
        return len(self.p_ids) - 1

    def _patterns(self) -> None:
        rng, sizes = self.rng, self.sizes
        times = sorted(
            [self.start - rng.random() * TWO_YEARS for _ in range(sizes.old_patterns)]
            + [
                self.start + rng.random() * (self.now - 60 - self.start)
                for _ in range(sizes.created)
            ]
        )
        for at in times:
            self._new_pattern(at)
        ranks = list(range(1, len(times) + 1))
        rng.shuffle(ranks)
        # Private patterns are played by their owners only: far less.
        self.p_cum = list(
            itertools.accumulate(
                (1.0 / rank**PATTERN_EXPONENT) * (1.0 if public else 0.05)
                for rank, public in zip(ranks, self.p_public, strict=True)
            )
        )

    # --- rows -------------------------------------------------------------------------------

    def user_rows(self, first: int = 0) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The accounts from index `first` on (and the admin with the first batch)."""
        users, preferences = [], []
        people = [
            (i, self.user_ids[i], self.user_times[i]) for i in range(first, len(self.user_ids))
        ]
        if first == 0:
            people.insert(0, (-1, self.admin_id, self.now - TWO_YEARS - DAY_SECONDS))
        for index, user_id, at in people:
            created = _when(at)
            admin = index < 0
            users.append(
                (
                    user_id,
                    ADMIN_EMAIL if admin else f"user{index + 1}@bench.example.com",
                    self.password_hash,
                    "Admin" if admin else f"Dancer {index + 1}",
                    None,
                    None,
                    admin,
                    created,
                    None,
                    _when(self.now - DAY_SECONDS) if index in self.leaving else None,
                    created,
                    created,
                )
            )
            preferences.append((user_id, *DEFAULT_PREFERENCES))
        return users, preferences

    def pattern_chunks(self, first: int = 0, size: int = 25_000) -> Iterator[list[tuple[Any, ...]]]:
        for begin in range(first, len(self.p_ids), size):
            rows = []
            for j in range(begin, min(begin + size, len(self.p_ids))):
                machine = self.machines[self.p_flavor[j]]
                created = _when(self.p_times[j])
                deleted = self.p_deleted[j]
                rows.append(
                    (
                        self.p_ids[j],
                        self.user_ids[self.p_author[j]],
                        f"Groove {j + 1}",
                        "",
                        self.p_flavor[j],
                        self.p_bpm[j],
                        self.p_key[j],
                        self.p_public[j],
                        machine.configurations[self.p_config[j]],
                        None,
                        machine.id,
                        machine.version,
                        1,
                        0,
                        0,
                        0,
                        0,
                        None,
                        None if deleted is None else _when(deleted),
                        created,
                        created,
                    )
                )
            yield rows

    def event_chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        """The events of the range, one slice at a time, in the order they were recorded."""
        totals = (self.sizes.plays, self.sizes.likes, self.sizes.saved)
        for number in range(RANGE):
            begin = self.start + number * DAY_SECONDS
            end = min(begin + DAY_SECONDS, self.now)
            plays, likes, saved = (n // RANGE + (1 if number < n % RANGE else 0) for n in totals)
            yield self._slice(begin, end, plays, likes, saved)

    def _slice(
        self, begin: float, end: float, plays: int, likes: int, saved: int
    ) -> list[tuple[Any, ...]]:
        rng, now = self.rng, self.now
        random_ = rng.random
        cum, public = self.p_cum, self.p_public
        # Patterns recorded after the popularity was drawn are not played yet.
        known = max(1, min(len(cum), bisect_left(self.p_times, begin)))
        total = cum[known - 1]
        people = bisect_right(self.user_times, begin)
        span = end - begin
        pending: list[tuple[float, float, str, str | None, int | None]] = []

        def recorded(at: float) -> float:
            if random_() < LATE_SHARE:
                return min(now, at + DAY_SECONDS * (1 + 2 * random_()))
            return min(now, at + 0.2 + 2 * random_())

        for _ in range(plays):
            j = bisect_right(cum, random_() * total, 0, known - 1)
            at = begin + random_() * span
            user = (
                self.user_ids[int(random_() * people)]
                if people and random_() >= ANONYMOUS_SHARE
                else None
            )
            pending.append((recorded(at), at, "pattern_played", user, j))
        for _ in range(likes):
            for _attempt in range(5):
                j = bisect_right(cum, random_() * total, 0, known - 1)
                if public[j]:
                    break
            if not public[j] or not people:
                continue
            at = begin + random_() * span
            user = self.user_ids[int(random_() * people)]
            pending.append((recorded(at), at, "pattern_liked", user, j))
        for _ in range(saved):
            j = int(random_() * known)
            at = max(begin + random_() * span, self.p_times[j])
            pending.append((recorded(at), at, "pattern_saved", self.user_ids[self.p_author[j]], j))
        for j in range(bisect_left(self.p_times, begin), bisect_left(self.p_times, end)):
            at = self.p_times[j]
            author = self.user_ids[self.p_author[j]]
            pending.append((recorded(at), at, "pattern_created", author, j))
        for i in range(bisect_left(self.user_times, begin), bisect_left(self.user_times, end)):
            at = self.user_times[i]
            pending.append((recorded(at), at, "user_registered", self.user_ids[i], None))
        pending.sort(key=lambda event: event[0])
        return [self._event_row(*event) for event in pending]

    def _event_row(
        self, recorded: float, at: float, kind: str, user: str | None, j: int | None
    ) -> tuple[Any, ...]:
        event_id = self.next_event
        self.next_event += 1
        occurred = _when(at)
        day = occurred.date()
        if j is None:
            return (event_id, kind, day, occurred, _when(recorded), user, None, None, None, None)
        if kind in ("pattern_played", "pattern_liked"):
            settings: tuple[Any, ...] = (None, None, None)
        else:
            settings = (self.p_flavor[j], self.p_bpm[j], self.p_key[j])
        if kind == "pattern_created":
            self.created_log.append((event_id, self.p_flavor[j], self.p_config[j], day))
        return (event_id, kind, day, occurred, _when(recorded), user, self.p_ids[j], *settings)

    def instrument_chunks(self, size: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
        """The instruments of the patterns created so far (drained as they are given)."""
        log, self.created_log = self.created_log, []
        for begin in range(0, len(log), size):
            yield [
                (event_id, instrument, day)
                for event_id, flavor, config, day in log[begin : begin + size]
                for instrument in self.machines[flavor].enabled[config]
            ]

    def active_day_rows(self) -> list[tuple[Any, ...]]:
        """The days each account was used: a sign-up day always, then fewer and fewer
        (about 70 % of the week before, down to a floor), more for the engaged."""
        rng, rows = self.rng, []
        first_day = _when(self.start).date()
        today = _when(self.now).date()
        day_start = datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp()
        days = (today - first_day).days + 1
        for i, (user_id, signed_up) in enumerate(zip(self.user_ids, self.user_times, strict=True)):
            engagement = rng.random() ** 2
            signup_day = _when(signed_up).date()
            cohort = monday(signup_day)
            for n in range(days):
                day = first_day + timedelta(days=n)
                if day < signup_day:
                    continue
                weeks = (day - signup_day).days // 7
                chance = 1.0 if day == signup_day else engagement * (0.15 + 0.6 * 0.7**weeks)
                if rng.random() >= chance:
                    continue
                begins = day_start - (today - day).days * DAY_SECONDS
                begin = max(begins, signed_up)
                at = begin + rng.random() * (min(begins + DAY_SECONDS, self.now) - begin)
                rows.append((user_id, day, cohort, _when(at)))
                if day == today:
                    self.active_today.add(i)
        rows.sort(key=lambda row: row[3])
        return rows

    def minute(self, events: int, after: float) -> dict[str, list[tuple[Any, ...]]]:
        """`events` new usage events recorded in the last minute, in the proportions of the
        data, with the patterns and accounts they create and the first active days of
        the day of some accounts. All after everything generated before, and recorded
        after `after` (the last rollup's watermark), as new events are."""
        sizes, rng = self.sizes, self.rng
        begin = max(self.now, time.time() - 60.0, after)
        self.now = max(time.time(), begin + 1.0)
        span = (self.now - begin) * 0.9
        share = events / sizes.events
        first_user, first_pattern = len(self.user_ids), len(self.p_ids)
        joined = sorted(begin + rng.random() * span for _ in range(round(sizes.registered * share)))
        self.user_times += joined
        self.user_ids += new_ids(rng, "usr", len(joined))
        # In the order they were created, as the patterns before them; not played yet, so
        # the popularity stays that of the older ones.
        for at in sorted(begin + rng.random() * span for _ in range(round(sizes.created * share))):
            self._new_pattern(at)
        rows = self._slice(
            begin,
            self.now,
            round(sizes.plays * share),
            round(sizes.likes * share),
            round(sizes.saved * share),
        )
        users, preferences = self.user_rows(first_user)
        active = []
        today = _when(self.now).date()
        for i in range(first_user, len(self.user_ids)):
            self.active_today.add(i)
            active.append((self.user_ids[i], today, monday(today), _when(self.user_times[i] + 0.5)))
        wanted = max(1, events // 100)
        candidates = [i for i in range(first_user) if i not in self.active_today]
        for i in rng.sample(candidates, min(wanted, len(candidates))):
            self.active_today.add(i)
            cohort = monday(_when(self.user_times[i]).date())
            active.append((self.user_ids[i], today, cohort, _when(begin + rng.random() * span)))
        return {
            "users": users,
            "user_preferences": preferences,
            "patterns": [row for chunk in self.pattern_chunks(first_pattern) for row in chunk],
            "analytics_events": rows,
            "analytics_event_instruments": [r for c in self.instrument_chunks() for r in c],
            "analytics_active_days": active,
        }


# --- the databases ---------------------------------------------------------------------------


@dataclass
class Target:
    """One database, its server and its usage."""

    label: str
    env: Environment
    dsn: str
    server_env: dict[str, str]
    usage: Usage | None = None
    seed_seconds: dict[str, float] = field(default_factory=dict)
    rollups: dict[str, dict[str, Any]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    token: str = ""

    @property
    def server(self) -> Server:
        assert self.env.server is not None
        return self.env.server

    @property
    def data(self) -> Usage:
        assert self.usage is not None
        return self.usage


COLUMNS = {
    "users": USER_COLUMNS,
    "user_preferences": PREFERENCE_COLUMNS,
    "patterns": PATTERN_COLUMNS,
    "analytics_events": EVENT_COLUMNS,
    "analytics_event_instruments": INSTRUMENT_COLUMNS,
    "analytics_active_days": ACTIVE_COLUMNS,
}


async def seed(target: Target) -> None:
    """COPY the usage into the target, the bulk tables' indexes dropped meanwhile."""
    usage, dsn, timings = target.data, target.dsn, target.seed_seconds
    statements = await drop_bulk_indexes(dsn, (*BULK_TABLES, "patterns"))

    async def step(name: str, table: str, chunks: Any) -> None:
        started = time.perf_counter()
        await copy_rows(dsn, table, COLUMNS[table], chunks)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started

    users, preferences = usage.user_rows()
    await step("users", "users", [users])
    await step("users", "user_preferences", [preferences])
    await step("patterns", "patterns", usage.pattern_chunks())
    await step("events", "analytics_events", usage.event_chunks())
    await step("instruments", "analytics_event_instruments", usage.instrument_chunks())
    await step("active_days", "analytics_active_days", [usage.active_day_rows()])
    connection = await asyncpg.connect(dsn)
    try:  # the server's own events (none here, but) must not collide with the seeded ids
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('analytics_events', 'id'), $1)",
            usage.next_event,
        )
    finally:
        await connection.close()
    started = time.perf_counter()
    await build_indexes(dsn, statements, apart="analytics_events")
    timings["indexes"] = time.perf_counter() - started
    started = time.perf_counter()
    await vacuum_analyze(dsn)
    timings["vacuum_analyze_checkpoint"] = time.perf_counter() - started


async def record_minute(target: Target, events: int) -> int:
    """COPY a minute of new usage (recorded now); returns the events written."""
    last = max(target.rollups.values(), key=lambda run: run["upto"])
    rows = target.data.minute(events, datetime.fromisoformat(last["upto"]).timestamp())
    for table, records in rows.items():
        if records:
            await copy_rows(target.dsn, table, COLUMNS[table], [records])
    connection = await asyncpg.connect(target.dsn)
    try:
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('analytics_events', 'id'), $1)",
            target.data.next_event,
        )
    finally:
        await connection.close()
    return len(rows["analytics_events"])


async def table_facts(dsn: str) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        facts: dict[str, Any] = {}
        for table in (
            "users",
            "patterns",
            "analytics_events",
            "analytics_event_instruments",
            "analytics_active_days",
            "analytics",
            "analytics_trending",
        ):
            facts[table] = await connection.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
        facts["kinds"] = {
            row["kind"]: row["n"]
            for row in await connection.fetch(
                "SELECT kind, count(*) AS n FROM analytics_events GROUP BY kind ORDER BY kind"
            )
        }
        facts["size"] = await connection.fetchval(
            "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c "
            "WHERE c.relkind = 'r' AND c.relname LIKE 'analytics%'"
        )
        return facts
    finally:
        await connection.close()


def roll_up(target: Target, name: str) -> dict[str, Any]:
    """Time `beatmachine analytics-rollup` (a process of its own, as an operator runs it)
    against the target; what it did and how long it took."""
    env = {**target.server_env, "ANALYTICS_ROLLUP_LAG": "0"}
    started = time.perf_counter()
    output = target.env.cli(env, "analytics-rollup", "--json")
    wall = time.perf_counter() - started
    line = next(ln for ln in reversed(output.splitlines()) if ln.startswith("{"))
    report: dict[str, Any] = json.loads(line)
    result = {
        "seconds": report["seconds"],
        "wall_seconds": wall,
        "days": len(report["days"]),
        "upto": report["upto"],
    }
    target.rollups[name] = result
    return result


# --- the reports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """One request of the benchmark: a report with its parameters."""

    key: str
    query: str
    kind: str  # instruments, patterns, tempo, keys, active, series, retention
    time_range: TimeRange = TimeRange.WEEK
    period: Period = Period.DAY
    bucket: int = 1
    flavor: str | None = None
    name: str = ""  # of a series
    weeks: int = 8

    @property
    def admin(self) -> bool:
        return self.kind in ("active", "series", "retention")

    @property
    def path(self) -> str:
        return API + self.query


def _reports() -> tuple[Report, ...]:
    week, year, all_, month = TimeRange.WEEK, TimeRange.YEAR, TimeRange.ALL, TimeRange.MONTH
    reports = []
    for time_range in (week, year, all_):
        reports.append(
            Report(
                f"instruments-{time_range}",
                f"popular-instruments?timeRange={time_range}",
                "instruments",
                time_range,
            )
        )
    for time_range in (week, all_):
        reports.append(
            Report(
                f"patterns-{time_range}",
                f"popular-patterns?timeRange={time_range}",
                "patterns",
                time_range,
            )
        )
    for time_range in (week, year, all_):
        reports.append(
            Report(
                f"tempo-{time_range}",
                f"tempo-distribution?timeRange={time_range}",
                "tempo",
                time_range,
            )
        )
    reports += [
        Report(
            "tempo-all-b10", "tempo-distribution?timeRange=all&bucket=10", "tempo", all_, bucket=10
        ),
        Report(
            "tempo-all-salsa",
            "tempo-distribution?timeRange=all&flavor=Salsa",
            "tempo",
            all_,
            flavor="Salsa",
        ),
    ]
    for time_range in (week, year, all_):
        reports.append(
            Report(
                f"keys-{time_range}", f"key-distribution?timeRange={time_range}", "keys", time_range
            )
        )
    reports += [
        Report("active-month-day", "active-users?timeRange=month&period=day", "active", month),
        Report("active-all-day", "active-users?timeRange=all&period=day", "active", all_),
        Report(
            "active-year-month",
            "active-users?timeRange=year&period=month",
            "active",
            year,
            Period.MONTH,
        ),
        Report(
            "active-all-week", "active-users?timeRange=all&period=week", "active", all_, Period.WEEK
        ),
        Report("signups-month", "signups?timeRange=month", "series", month, name="signups"),
        Report(
            "signups-all-week",
            "signups?timeRange=all&period=week",
            "series",
            all_,
            Period.WEEK,
            name="signups",
        ),
        Report("plays-month", "plays?timeRange=month", "series", month, name="plays"),
        Report(
            "plays-all-week",
            "plays?timeRange=all&period=week",
            "series",
            all_,
            Period.WEEK,
            name="plays",
        ),
        Report("retention-8", "retention?weeks=8", "retention", weeks=8),
        Report("retention-12", "retention?weeks=12", "retention", weeks=12),
    ]
    return tuple(reports)


REPORTS = _reports()


def service_call(report: Report) -> Callable[[AsyncSession], Awaitable[Any]]:
    """The service function behind the report, as the route calls it (no answer cache)."""
    state = cast("AppState", SimpleNamespace(settings=SimpleNamespace(analytics_cache_ttl=0)))
    r = report
    calls: dict[str, Callable[[AsyncSession], Awaitable[Any]]] = {
        "instruments": lambda s: service.popular_instruments(s, state, r.time_range, LIMIT),
        "patterns": lambda s: service.popular_patterns(s, state, r.time_range, LIMIT),
        "tempo": lambda s: service.tempo_distribution(s, state, r.time_range, r.bucket, r.flavor),
        "keys": lambda s: service.key_distribution(s, state, r.time_range, r.flavor),
        "active": lambda s: service.active_users(s, state, r.time_range, r.period),
        "series": lambda s: service.series(s, state, r.name, r.time_range, r.period),
        "retention": lambda s: service.retention(s, state, r.weeks),
    }
    return calls[r.kind]


# --- the answers, checked against the raw events ----------------------------------------------


@dataclass(frozen=True)
class Context:
    today: date
    first_all: date  # the first day of `all`: the first day rolled up
    retained_from: date

    def first(self, time_range: TimeRange) -> date:
        days = RANGE_DAYS[time_range]
        return self.first_all if days is None else self.today - timedelta(days=days - 1)


async def context(connection: asyncpg.Connection) -> Context:
    today = datetime.now(UTC).date()
    first_all = await connection.fetchval(
        "SELECT min(period_start) FROM analytics WHERE period = 'day'"
    )
    return Context(today, min(first_all, today), today - timedelta(days=RETENTION_DAYS))


def answer_of(report: Report, data: dict[str, Any]) -> Any:
    """What the check compares of an answer."""
    if report.kind == "instruments":
        return (data["patternsCreated"], [(i["id"], i["usageCount"]) for i in data["instruments"]])
    if report.kind == "patterns":
        return [(p["id"], p["plays"], p["likes"], p["score"]) for p in data["patterns"]]
    if report.kind == "tempo":
        return [(d["bpm"], d["count"]) for d in data["distribution"]]
    if report.kind == "keys":
        return [(d["keyNote"], d["count"]) for d in data["distribution"]]
    if report.kind in ("active", "series"):
        return [(p["periodStart"], p["value"]) for p in data["series"]]
    return [(c["week"], c["size"], c["active"]) for c in data["cohorts"]]


def _trunc(period: Period) -> str:
    return {Period.WEEK: "week", Period.MONTH: "month"}[period]


async def expected(connection: asyncpg.Connection, report: Report, ctx: Context) -> Any:
    """The answer computed from the raw events, independently of the rollup."""
    first, today = ctx.first(report.time_range), ctx.today
    created = "kind = 'pattern_created' AND day BETWEEN $1 AND $2"
    if report.kind == "instruments":
        count = await connection.fetchval(
            f"SELECT count(*) FROM analytics_events WHERE {created}",  # noqa: S608
            first,
            today,
        )
        rows = await connection.fetch(
            "SELECT instrument, count(*) AS n FROM analytics_event_instruments "
            "WHERE day BETWEEN $1 AND $2 GROUP BY instrument ORDER BY n DESC, instrument LIMIT $3",
            first,
            today,
            LIMIT,
        )
        return (count, [(row[0], row[1]) for row in rows])
    if report.kind == "tempo":
        rows = await connection.fetch(
            "SELECT bpm - bpm % $3 AS b, count(*) FROM analytics_events "  # noqa: S608
            f"WHERE {created} AND bpm IS NOT NULL AND ($4::text IS NULL OR flavor = $4) "
            "GROUP BY b ORDER BY b",
            first,
            today,
            report.bucket,
            report.flavor,
        )
        return [(row[0], row[1]) for row in rows]
    if report.kind == "keys":
        rows = await connection.fetch(
            f"SELECT key_note, count(*) FROM analytics_events WHERE {created} "  # noqa: S608
            "GROUP BY key_note",
            first,
            today,
        )
        counts = {row[0]: row[1] for row in rows}
        return [(note, counts.get(note, 0)) for note in range(12)]
    if report.kind == "patterns":
        return await _expected_trending(connection, report, first, today)
    if report.kind == "series":
        return await _expected_series(connection, report, first, today)
    if report.kind == "active":
        return await _expected_active(connection, report, ctx, first)
    return await _expected_retention(connection, report, ctx)


async def _expected_trending(
    connection: asyncpg.Connection, report: Report, first: date, today: date
) -> list[tuple[str, int, int, float]]:
    half_life = HALF_LIFE_DAYS[report.time_range]
    rows = await connection.fetch(
        "SELECT d.pattern_id, sum(d.plays) AS plays, sum(d.likes) AS likes, "
        "sum((d.plays + 3 * d.likes) * power(2.0, -($2::date - d.day)::float8 / $3)) AS score "
        "FROM (SELECT pattern_id, day, count(*) FILTER (WHERE kind = 'pattern_played') AS plays, "
        "count(*) FILTER (WHERE kind = 'pattern_liked') AS likes FROM analytics_events "
        "WHERE kind IN ('pattern_played', 'pattern_liked') AND day BETWEEN $1 AND $2 "
        "GROUP BY pattern_id, day) d "
        "JOIN patterns p ON p.id = d.pattern_id JOIN users u ON u.id = p.user_id "
        "WHERE p.is_public AND p.deleted_at IS NULL AND u.deletion_scheduled_at IS NULL "
        "GROUP BY d.pattern_id ORDER BY score DESC, plays DESC, d.pattern_id LIMIT $4",
        first,
        today,
        # No decay inside one day: an infinite half-life.
        half_life if half_life is not None else math.inf,
        LIMIT,
    )
    return [(row[0], int(row[1]), int(row[2]), float(row[3])) for row in rows]


async def _expected_series(
    connection: asyncpg.Connection, report: Report, first: date, today: date
) -> list[tuple[str, int]]:
    kind = {"plays": "pattern_played", "signups": "user_registered"}[report.name]
    starts = periods_between(report.period, first, today)
    rows = await connection.fetch(
        "SELECT day, count(*) FROM analytics_events WHERE kind = $1 AND day BETWEEN $2 AND $3 "
        "GROUP BY day",
        kind,
        starts[0],
        today,
    )
    values: dict[date, int] = defaultdict(int)
    for day, count in rows:
        values[period_start(report.period, day)] += count
    return [(start.isoformat(), values[start]) for start in starts]


async def _expected_active(
    connection: asyncpg.Connection, report: Report, ctx: Context, first: date
) -> list[tuple[str, int]]:
    starts = periods_between(report.period, first, ctx.today)
    if report.period is Period.DAY:
        rows = await connection.fetch(
            "SELECT day, count(*) FROM analytics_active_days WHERE day BETWEEN $1 AND $2 "
            "GROUP BY day",
            starts[0],
            ctx.today,
        )
    else:
        rows = await connection.fetch(
            f"SELECT date_trunc('{_trunc(report.period)}', day)::date AS start, "  # noqa: S608
            "count(DISTINCT user_id) FROM analytics_active_days WHERE day BETWEEN $1 AND $2 "
            "GROUP BY start",
            starts[0],
            ctx.today,
        )
    values = {row[0]: row[1] for row in rows}
    points = []
    for start in starts:
        value = values.get(start, 0)
        # Distinct counts of a week or month are taken from the raw active days, so a
        # first rollup leaves out those that began before the retention of raw events
        # (in steady operation they were counted while they were kept).
        if report.period is not Period.DAY and start < ctx.retained_from:
            value = 0
        points.append((start.isoformat(), value))
    return points


async def _expected_retention(
    connection: asyncpg.Connection, report: Report, ctx: Context
) -> list[tuple[str, int, list[int]]]:
    this_week = monday(ctx.today)
    first = this_week - timedelta(weeks=report.weeks - 1)
    sizes = {
        row[0]: row[1]
        for row in await connection.fetch(
            "SELECT date_trunc('week', day)::date AS week, count(*) FROM analytics_events "
            "WHERE kind = 'user_registered' AND day >= $1 GROUP BY week",
            first,
        )
    }
    active = {
        (row[0], row[1]): row[2]
        for row in await connection.fetch(
            "SELECT cohort, date_trunc('week', day)::date AS week, count(DISTINCT user_id) "
            "FROM analytics_active_days WHERE cohort >= $1 AND day >= $1 GROUP BY cohort, week",
            first,
        )
    }
    cohorts = []
    for n in range(report.weeks):
        cohort = first + timedelta(weeks=n)
        counts = []
        for k in range((this_week - cohort).days // 7 + 1):
            week = cohort + timedelta(weeks=k)
            counts.append(0 if week < ctx.retained_from else active.get((cohort, week), 0))
        cohorts.append((cohort.isoformat(), sizes.get(cohort, 0), counts))
    return cohorts


def same(report: Report, got: Any, want: Any) -> bool:
    if report.kind != "patterns":
        return bool(got == want)
    # Scores are sums of floats added up in another order, rounded to 4 decimals.
    return len(got) == len(want) and all(
        g[:3] == w[:3] and math.isclose(g[3], w[3], rel_tol=1e-6, abs_tol=2e-4)
        for g, w in zip(got, want, strict=True)
    )


async def check_answers(target: Target) -> tuple[list[str], dict[str, Any]]:
    """Every report's answer against the raw tables; the problems, and the answers'
    sizes (for the results)."""
    problems: list[str] = []
    shapes: dict[str, Any] = {}
    connection = await asyncpg.connect(target.dsn)
    try:
        ctx = await context(connection)
        async with httpx.AsyncClient(base_url=target.server.base_url, timeout=300.0) as client:
            for report in REPORTS:
                headers = bearer(target.token) if report.admin else {}
                response = await client.get(report.path, headers=headers)
                if response.status_code != 200:
                    problems.append(f"{target.label} {report.key}: {response.status_code}")
                    continue
                got = answer_of(report, response.json()["data"])
                want = await expected(connection, report, ctx)
                shapes[report.key] = got if report.kind != "patterns" else got[:3]
                if not same(report, got, want):
                    problems.append(
                        f"{target.label} {report.key}: the answer differs from the raw events:"
                        f"\n  answer   {str(got)[:600]}\n  expected {str(want)[:600]}"
                    )
                listed = got[1] if report.kind == "instruments" else got
                if report.kind in ("instruments", "patterns") and len(listed) < LIMIT:
                    problems.append(f"{target.label} {report.key}: {len(listed)} entries listed")
    finally:
        await connection.close()
    return problems, shapes


# --- measuring ----------------------------------------------------------------------------------


def _send(client: httpx.Client, path: str, headers: dict[str, str], into: Result | None) -> None:
    started = time.perf_counter()
    try:
        response = client.get(path, headers=headers)
        status = str(response.status_code)
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    if into is not None:
        into.latencies_ms.append((time.perf_counter() - started) * 1000.0)
        into.statuses[status] += 1


def measure_all(
    targets: Sequence[Target], options: Options, what: str
) -> dict[str, dict[str, Result]]:
    """Sequential requests on one keep-alive connection per server; every report, then
    the next, in `rounds` blocks, the two sizes taking turns (the order reversed every
    other block). /healthz is measured alongside as the floor of the stack."""
    reports = [("healthz", "/healthz", False), *((r.key, r.path, r.admin) for r in REPORTS)]
    results = {t.label: {key: Result(key, path) for key, path, _ in reports} for t in targets}
    sizes = [
        options.requests // options.rounds + (1 if i < options.requests % options.rounds else 0)
        for i in range(options.rounds)
    ]
    budget = options.max_seconds / options.rounds
    clients = {t.label: httpx.Client(base_url=t.server.base_url, timeout=300.0) for t in targets}
    try:
        headers = {t.label: bearer(t.token) for t in targets}
        with phase(f"{what}: warming up"):
            for target, (_key, path, admin) in itertools.product(targets, reports):
                for _ in range(options.warmup):
                    _send(clients[target.label], path, headers[target.label] if admin else {}, None)
        for number, size in enumerate(sizes, start=1):
            ordered = list(targets) if number % 2 else list(reversed(targets))
            with phase(f"{what}: round {number}/{len(sizes)}, {size} requests per report and size"):
                for (key, path, admin), target in itertools.product(reports, ordered):
                    until = time.monotonic() + budget
                    into = results[target.label][key]
                    for _ in range(size):
                        _send(
                            clients[target.label],
                            path,
                            headers[target.label] if admin else {},
                            into,
                        )
                        if time.monotonic() > until:
                            break
    finally:
        for client in clients.values():
            client.close()
    return results


async def report_sql(target: Target, report: Report) -> list[tuple[Sql, float]]:
    """The report's statements, as the service sends them on the target, each with its
    median execution time inside PostgreSQL (ms)."""
    statements = await recorded_sql(target.env.database_url, service_call(report), "")
    timed = []
    for sql in statements:
        try:
            timed.append((sql, await timed_sql(target.dsn, sql, repeat=3)))
        except asyncpg.PostgresError:
            timed.append((sql, math.nan))
    return timed


# --- reporting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    key: str
    small_p50: float
    small_p99: float
    large_p50: float
    large_p99: float
    limit_ms: float
    target: float

    @property
    def ratio(self) -> float:
        return self.large_p50 / self.small_p50 if self.small_p50 else math.nan

    @property
    def fast(self) -> bool:
        return self.large_p50 < self.limit_ms

    @property
    def scales(self) -> bool:
        return self.ratio <= self.target

    @property
    def passed(self) -> bool:
        return self.fast and self.scales

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ratio": self.ratio,
            "fast": self.fast,
            "scales": self.scales,
            "passed": self.passed,
        }


def verdicts_of(results: dict[str, dict[str, Result]], options: Options) -> list[Verdict]:
    small, large = results["small"], results["large"]
    return [
        Verdict(
            key,
            small[key].p50,
            small[key].p99,
            large[key].p50,
            large[key].p99,
            options.p50_limit_ms,
            options.target,
        )
        for key in small
    ]


def render(
    verdicts: Sequence[Verdict],
    results: dict[str, dict[str, Result]],
    sql_ms: dict[str, dict[str, float]],
    title: str,
) -> Table:
    table = Table(title=title)
    table.add_column("report")
    for column in ("p50 small", "p99 small", "p50 large", "p99 large", "ratio"):
        table.add_column(column + ("" if column == "ratio" else " ms"), justify="right")
    table.add_column("verdict", justify="center")
    table.add_column("SQL ms\nsmall/large", justify="right")
    table.add_column("requests", justify="right")
    table.add_column("errors", justify="right")
    paths = {r.key: r.query for r in REPORTS}
    for v in verdicts:
        if v.key == "healthz":
            verdict = "-"
        elif v.passed:
            verdict = "[green]PASS[/green]"
        else:
            misses = [word for word, ok in (("slow", v.fast), ("grows", v.scales)) if not ok]
            verdict = f"[red]{' '.join(misses)}[/red]"
        sql = sql_ms.get(v.key)
        table.add_row(
            f"{v.key}\n[dim]{paths.get(v.key, '/healthz')}[/dim]",
            f"{v.small_p50:.2f}",
            f"{v.small_p99:.2f}",
            f"{v.large_p50:.2f}",
            f"{v.large_p99:.2f}",
            f"{v.ratio:.2f}",
            verdict,
            f"{sql['small']:.1f}/{sql['large']:.1f}" if sql else "",
            f"{len(results['small'][v.key].latencies_ms)}/{len(results['large'][v.key].latencies_ms)}",
            str(results["small"][v.key].errors + results["large"][v.key].errors),
        )
    return table


def render_rollups(targets: Sequence[Target], options: Options) -> Table:
    table = Table(title="The rollup (beatmachine analytics-rollup, ANALYTICS_ROLLUP_LAG=0)")
    for column in ("database", "events", "full s", "days", "incremental s", "new events", "days"):
        table.add_column(column, justify="left" if column == "database" else "right")
    for t in targets:
        full, incremental = t.rollups["full"], t.rollups["incremental"]
        table.add_row(
            t.label,
            f"{t.facts['seeded']['analytics_events']:,}",
            f"{full['seconds']:.2f}",
            str(full["days"]),
            f"{incremental['seconds']:.2f}",
            f"{incremental['events']:,}",
            str(incremental["days"]),
        )
    return table


# --- the run --------------------------------------------------------------------------------------


def start(env: Environment, options: Options, label: str, *, cached: bool = False) -> Target:
    extra = {
        "INSTALL_DEFAULT_MACHINES": "true",
        "JWT_EXPIRES_IN": "14400",
        "ADMIN_EMAILS": ADMIN_EMAIL,
    }
    if not cached:
        extra["ANALYTICS_CACHE_TTL"] = "0"
    server_env = env.server_env(options.workers, **extra)
    env.start_server(server_env, options.workers)
    return Target(label, env, asyncpg_dsn(env.database_url), server_env)


def restart(target: Target, options: Options, *, cached: bool) -> None:
    """The same database's server again, with or without the answer cache."""
    target.env.stop_server()
    fresh = start(target.env, options, target.label, cached=cached)
    target.server_env = fresh.server_env
    target.token = login(target.server.base_url, ADMIN_EMAIL)


async def wait_for_active_day(dsn: str, user_id: str, seconds: float = 30.0) -> None:
    """The sign-in's active day is written by a listener job: wait for it, so that the
    checks and the measurements see the same data."""
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await connection.fetchval(
                "SELECT count(*) FROM analytics_active_days WHERE user_id = $1", user_id
            ):
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("the admin's sign-in was not recorded as an active day")
    finally:
        await connection.close()


def explain_misses(
    target: Target, missed: Sequence[Report], statements: dict[str, list[tuple[Sql, float]]]
) -> dict[str, list[dict[str, Any]]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the two slowest statements of each missed report."""
    found: dict[str, list[dict[str, Any]]] = {}
    for report in missed:
        timed = sorted(
            statements[report.key], key=lambda item: 0.0 if math.isnan(item[1]) else -item[1]
        )
        found[report.key] = []
        for sql, ms in timed[:2]:
            plan = asyncio.run(explain(target.dsn, sql))
            found[report.key].append({"sql": sql.inline(), "ms": ms, "plan": plan})
            console.rule(f"{report.key} at {target.label}: {ms:.1f} ms")
            console.print(sql.inline(), markup=False, highlight=False)
            console.print(plan, markup=False, highlight=False)
    return found


def run(options: Options) -> int:
    load_before = warn_if_busy()
    large_sizes = Sizes.of(options.plays, options.pattern_events, options.users)
    sizes = {"small": large_sizes.scaled(options.small), "large": large_sizes}
    try:
        with ExitStack() as stack:
            envs = [
                stack.enter_context(environment(options.admin_url, options.redis_url, name))
                for name in ("bench_analytics_small", "bench_analytics_large")
            ]
            with phase("starting both servers (they install the default machines)"):
                targets = [
                    start(env, options, label) for env, label in zip(envs, sizes, strict=True)
                ]
                installed = [asyncio.run(wait_for_machines(t.dsn)) for t in targets]
            now = time.time()
            for target, machines in zip(targets, installed, strict=True):
                s = sizes[target.label]
                with phase(
                    f"generating and seeding the {target.label} database: {s.events:,} events "
                    f"({s.plays:,} plays, {s.created + s.saved:,} pattern events), {s.users:,} "
                    f"accounts, {s.created + s.old_patterns:,} patterns"
                ):
                    target.usage = Usage.create(
                        s, machines_of(machines, options.seed), now, options.seed
                    )
                    asyncio.run(seed(target))
                    target.facts["seeded"] = asyncio.run(table_facts(target.dsn))
                console.print(
                    f"[dim]  {target.label}: "
                    + ", ".join(f"{k} {v:.1f}s" for k, v in target.seed_seconds.items())
                    + f"; {target.facts['seeded']}[/dim]"
                )
            for target in targets:
                with phase(f"full rollup of the {target.label} database"):
                    roll_up(target, "full")
                with phase(f"VACUUM (ANALYZE) of the {target.label} database after it"):
                    asyncio.run(vacuum_analyze(target.dsn))
            for target in targets:
                with phase(f"a minute of usage, then the incremental rollup ({target.label})"):
                    events = asyncio.run(record_minute(target, options.minute))
                    roll_up(target, "incremental")["events"] = events
            for target in targets:
                target.facts["live_events"] = asyncio.run(record_minute(target, options.live))
                target.token = login(target.server.base_url, ADMIN_EMAIL)
                asyncio.run(wait_for_active_day(target.dsn, target.data.admin_id))
                target.facts["measured"] = asyncio.run(table_facts(target.dsn))
            console.print(render_rollups(targets, options))

            problems: list[str] = []
            shapes: dict[str, Any] = {}
            with phase("checking every answer against the raw events"):
                for target in targets:
                    found, shapes[target.label] = asyncio.run(check_answers(target))
                    problems += found
            for problem in problems:
                console.print(f"[red]invalid answer: {problem}[/red]", highlight=False)

            results = measure_all(targets, options, "no answer cache")
            verdicts = verdicts_of(results, options)
            with phase("timing each report's SQL inside PostgreSQL"):
                statements = {
                    t.label: {r.key: asyncio.run(report_sql(t, r)) for r in REPORTS}
                    for t in targets
                }
            sql_ms = {
                r.key: {t.label: sum(ms for _, ms in statements[t.label][r.key]) for t in targets}
                for r in REPORTS
            }
            console.print(
                render(
                    verdicts,
                    results,
                    sql_ms,
                    f"Analytics reports, ANALYTICS_CACHE_TTL=0: {sizes['small'].events:,} vs "
                    f"{sizes['large'].events:,} events, sequential requests; targets p50 < "
                    f"{options.p50_limit_ms:g} ms at the large size and ≤ {options.target:g} times "
                    "the small size's",
                )
            )
            missed = [r for r in REPORTS if not next(v for v in verdicts if v.key == r.key).passed]
            explains = explain_misses(targets[1], missed, statements["large"])

            cached_results: dict[str, dict[str, Result]] = {}
            if options.cached:
                for target in targets:
                    restart(target, options, cached=True)
                cached_results = measure_all(targets, options, "default answer cache")
                console.print(
                    render(
                        verdicts_of(cached_results, options),
                        cached_results,
                        {},
                        "The same with the default answer cache (ANALYTICS_CACHE_TTL=10): "
                        "one request in 10 s per report computes it",
                    )
                )

            path = write_run(
                options.results_dir,
                "analytics_scale",
                asdict(options),
                {
                    "sizes": {k: asdict(v) for k, v in sizes.items()},
                    "facts": {t.label: t.facts for t in targets},
                    "seed_seconds": {t.label: t.seed_seconds for t in targets},
                    "rollups": {t.label: t.rollups for t in targets},
                    "verdicts": [v.as_dict() for v in verdicts],
                    "results": {
                        label: {k: m.as_dict() for k, m in by_key.items()}
                        for label, by_key in results.items()
                    },
                    "cached_results": {
                        label: {k: m.as_dict() for k, m in by_key.items()}
                        for label, by_key in cached_results.items()
                    },
                    "sql_ms": sql_ms,
                    "statements": {
                        label: {
                            key: [{"sql": s.inline(), "ms": ms} for s, ms in timed]
                            for key, timed in by_key.items()
                        }
                        for label, by_key in statements.items()
                    },
                    "answers": shapes,
                    "explain": explains,
                    "problems": problems,
                },
                load_before,
            )
            console.print(f"results: {path}")
            errors = sum(m.errors for by_key in results.values() for m in by_key.values())
            if problems or errors:
                console.print("[red]invalid answers or errors: the run is invalid[/red]")
                return 1
            if missed:
                console.print(f"[red]missed: {', '.join(r.key for r in missed)}[/red]")
                return 2
            return 0
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; cleaned up[/yellow]")
        return 130


def main() -> None:
    run_benchmark(parse_options, run)


if __name__ == "__main__":
    main()
