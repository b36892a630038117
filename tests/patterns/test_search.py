"""GET /patterns?search=: full-text search over title and description (PostgreSQL
tsvector, SQLite FTS5), its ranking, its filters, its safety with any input, and that
the index follows updates, deletes and privacy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.patterns.service import _listing as listing
from tests.factories import Account, validation_fields
from tests.patterns.helpers import (
    PATTERN_OVERRIDES,
    create_pattern,
    merengue_configuration,
    pattern_count,
)
from tests.waiting import eventually

EMPTY = {"patterns": [], "pagination": {"page": 1, "limit": 20, "total": 0, "pages": 0}}

HOSTILE_QUERIES = [
    pytest.param('"', id="double-quote"),
    pytest.param('"tumbao', id="unbalanced-quote"),
    pytest.param("'", id="single-quote"),
    pytest.param("*", id="star"),
    pytest.param("tumbao*", id="trailing-star"),
    pytest.param("OR", id="or"),
    pytest.param("tumbao OR montuno", id="or-between-words"),
    pytest.param("AND NOT", id="and-not"),
    pytest.param("NEAR(", id="near-open"),
    pytest.param("NEAR(tumbao montuno, 2)", id="near-call"),
    pytest.param("-tumbao", id="minus"),
    pytest.param("title:tumbao", id="column-filter"),
    pytest.param(":", id="colon"),
    pytest.param("tumbao & montuno", id="ampersand"),
    pytest.param("tumbao | montuno", id="pipe"),
    pytest.param("!tumbao", id="bang"),
    pytest.param("tumbao <-> montuno", id="followed-by"),
    pytest.param("^tumbao", id="caret"),
    pytest.param("(tumbao", id="open-paren"),
    pytest.param("{title description}: tumbao", id="column-set"),
    pytest.param("'; DROP TABLE patterns; --", id="sql-injection"),
    pytest.param("1' OR '1'='1", id="sql-tautology"),
    pytest.param("\\", id="backslash"),
    pytest.param("%_%", id="like-wildcards"),
    pytest.param("café", id="accented"),
    pytest.param("🎺🥁 tumbao", id="emoji"),
    pytest.param("日本語", id="cjk"),
    pytest.param("x²", id="superscript"),
    pytest.param("a" * 200, id="200-chars"),
    pytest.param(" ".join(["tumbao"] * 40)[:200], id="many-words"),
    pytest.param("   ", id="blank"),
]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**PATTERN_OVERRIDES, "RATE_LIMIT_ANONYMOUS": 10_000}


async def search(
    client: httpx.AsyncClient,
    query: str,
    account: Account | None = None,
    path: str = "/api/patterns",
    **params: Any,
) -> dict[str, Any]:
    response = await client.get(
        path, params={"search": query, **params}, headers=account.headers if account else {}
    )
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    data: dict[str, Any] = response.json()["data"]
    return data


def ids(data: dict[str, Any]) -> list[str]:
    return [item["id"] for item in data["patterns"]]


async def make(
    client: httpx.AsyncClient, account: Account, title: str, description: str = "", **fields: Any
) -> str:
    created = await create_pattern(client, account, title=title, description=description, **fields)
    return str(created["id"])


# --- what matches ---------------------------------------------------------------------------


async def test_search_finds_a_word_of_the_title(client: httpx.AsyncClient, owner: Account) -> None:
    wanted = await make(client, owner, "Tumbao groove", "Steady")
    await make(client, owner, "Cha cha", "Steady")

    data = await search(client, "tumbao")

    assert ids(data) == [wanted]
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 1, "pages": 1}


async def test_search_finds_a_word_of_the_description(
    client: httpx.AsyncClient, owner: Account
) -> None:
    wanted = await make(client, owner, "Montuno", "A slow tumbao for beginners")
    await make(client, owner, "Cha cha", "Steady")

    assert ids(await search(client, "tumbao")) == [wanted]


async def test_search_is_case_insensitive(client: httpx.AsyncClient, owner: Account) -> None:
    wanted = await make(client, owner, "TuMbAo Groove", "Steady")

    assert ids(await search(client, "tumbao")) == [wanted]
    assert ids(await search(client, "TUMBAO")) == [wanted]
    assert ids(await search(client, "groove")) == [wanted]


async def test_search_matches_a_word_prefix(client: httpx.AsyncClient, owner: Account) -> None:
    wanted = await make(client, owner, "Tumbao groove", "Steady")
    described = await make(client, owner, "Other", "guaguancó rhythm")
    await make(client, owner, "Cha cha", "Steady")

    assert ids(await search(client, "tumb")) == [wanted]
    assert ids(await search(client, "guagua")) == [described]


async def test_search_requires_every_word(client: httpx.AsyncClient, owner: Account) -> None:
    both = await make(client, owner, "Tumbao practice", "With the clave")
    await make(client, owner, "Tumbao only", "Steady")
    await make(client, owner, "Clave only", "Steady")

    data = await search(client, "tumbao clave")

    assert ids(data) == [both]
    assert data["pagination"]["total"] == 1


async def test_search_ignores_punctuation_around_words(
    client: httpx.AsyncClient, owner: Account
) -> None:
    wanted = await make(client, owner, "Tumbao practice", "With the clave")

    assert ids(await search(client, '"tumbao", (clave)!')) == [wanted]


async def test_search_finds_accented_words(client: httpx.AsyncClient, owner: Account) -> None:
    wanted = await make(client, owner, "Café con leche", "Güiro and piano")
    await make(client, owner, "Cha cha", "Steady")

    assert ids(await search(client, "café")) == [wanted]
    assert ids(await search(client, "GÜIRO")) == [wanted]


async def test_search_without_a_match_is_empty(client: httpx.AsyncClient, owner: Account) -> None:
    await make(client, owner, "Tumbao groove", "Steady")

    assert await search(client, "mambo") == EMPTY


async def test_search_with_only_punctuation_is_empty(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await make(client, owner, "Tumbao groove", "Steady")

    assert await search(client, "!!! --- *** \"'()") == EMPTY


# --- ranking --------------------------------------------------------------------------------


async def test_stronger_match_comes_first(client: httpx.AsyncClient, owner: Account) -> None:
    # Same lengths; the strong one holds the word in its title and twice in its description.
    strong = await make(client, owner, "Tumbao", "tumbao tumbao practice")
    # Created last, so newest-first order alone would put it on top.
    weak = await make(client, owner, "Groove", "tumbao slow practice")

    assert ids(await search(client, "tumbao")) == [strong, weak]


async def test_title_match_ranks_above_description_match(
    client: httpx.AsyncClient, owner: Account
) -> None:
    in_title = await make(client, owner, "Mambo night", "Horns and piano")
    # Created last, so newest-first order alone would put it on top.
    in_description = await make(client, owner, "Horns night", "Mambo and piano")

    assert ids(await search(client, "mambo")) == [in_title, in_description]


# --- combined with filters and sort ---------------------------------------------------------


async def test_search_combines_with_flavor_filter(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await make(client, owner, "Tumbao salsa", "Steady")
    merengue = await make(
        client,
        owner,
        "Tumbao merengue",
        "Steady",
        flavor="Merengue",
        configuration=merengue_configuration(),
    )
    await make(
        client, owner, "Other", "Steady", flavor="Merengue", configuration=merengue_configuration()
    )

    data = await search(client, "tumbao", flavor="Merengue")

    assert ids(data) == [merengue]
    assert data["pagination"]["total"] == 1


async def test_search_combines_with_user_id_filter(
    client: httpx.AsyncClient, owner: Account, other: Account
) -> None:
    mine = await make(client, owner, "Tumbao uno", "Steady")
    await make(client, other, "Tumbao dos", "Steady")

    data = await search(client, "tumbao", userId=owner.id)

    assert ids(data) == [mine]


async def test_search_with_sort_popular_orders_equal_matches_by_plays(
    client: httpx.AsyncClient, owner: Account
) -> None:
    played = await make(client, owner, "Tumbao uno", "Practice")
    newer = await make(client, owner, "Tumbao dos", "Practice")
    await make(client, owner, "Cha cha", "Practice")
    for _ in range(2):
        response = await client.post(f"/api/patterns/{played}/play")
        assert response.status_code == 200, response.text

    assert ids(await search(client, "tumbao", sort="recent")) == [newer, played]
    assert ids(await search(client, "tumbao", sort="popular")) == [played, newer]


async def test_search_with_sort_liked_orders_equal_matches_by_likes(
    client: httpx.AsyncClient, owner: Account, other: Account
) -> None:
    liked = await make(client, owner, "Tumbao uno", "Practice")
    newer = await make(client, owner, "Tumbao dos", "Practice")
    response = await client.post(f"/api/patterns/{liked}/like", headers=other.headers)
    assert response.status_code == 200, response.text

    assert ids(await search(client, "tumbao", sort="liked")) == [liked, newer]


async def test_search_paginates(client: httpx.AsyncClient, owner: Account) -> None:
    for number in ("uno", "dos", "tres"):
        await make(client, owner, f"Tumbao {number}", "Practice")
    await make(client, owner, "Cha cha", "Practice")

    first = await search(client, "tumbao", limit=2)
    second = await search(client, "tumbao", limit=2, page=2)

    assert first["pagination"] == {"page": 1, "limit": 2, "total": 3, "pages": 2}
    assert second["pagination"] == {"page": 2, "limit": 2, "total": 3, "pages": 2}
    assert len(set(ids(first) + ids(second))) == 3


async def test_my_patterns_can_be_searched(client: httpx.AsyncClient, owner: Account) -> None:
    private = await make(client, owner, "Secret tumbao", "Steady", isPublic=False)
    await make(client, owner, "Cha cha", "Steady", isPublic=False)

    data = await search(client, "tumbao", owner, "/api/patterns/me")

    assert ids(data) == [private]
    assert data["pagination"]["total"] == 1


# --- safe with any input --------------------------------------------------------------------


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
async def test_search_is_safe_with_any_input(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession, query: str
) -> None:
    tumbao = await make(client, owner, "Tumbao montuno", "Café con leche")
    await make(client, owner, "Cha cha", "Steady")

    response = await client.get("/api/patterns", params={"search": query})

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert set(data) == {"patterns", "pagination"}
    assert data["pagination"]["total"] == len(data["patterns"])
    assert set(ids(data)) <= {tumbao}
    assert await pattern_count(db) == 2
    assert len(ids(await search(client, "tumbao"))) == 1


@pytest.mark.parametrize(
    "query",
    [
        pytest.param('"tumbao', id="unbalanced-quote"),
        pytest.param("NEAR(tumbao montuno, 2)", id="near-call"),
        pytest.param("tumbao & !montuno | (", id="tsquery-operators"),
        pytest.param("'; DROP TABLE patterns; --", id="sql-injection"),
        pytest.param("tumbao 🥁", id="emoji"),
    ],
)
async def test_search_of_my_patterns_is_safe_with_any_input(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession, query: str
) -> None:
    await make(client, owner, "Tumbao montuno", "Café con leche", isPublic=False)

    data = await search(client, query, owner, "/api/patterns/me")

    assert data["pagination"]["total"] == len(data["patterns"])
    assert await pattern_count(db) == 1


async def test_search_with_bytes_that_are_not_utf8_is_safe(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    await make(client, owner, "Tumbao montuno", "Steady")

    response = await client.get("/api/patterns?search=%FF%FE%00tumbao")

    assert response.status_code in (200, 422), response.text
    assert response.json()["success"] is (response.status_code == 200)
    assert await pattern_count(db) == 1


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"flavor": "'; DROP TABLE patterns; --"}, id="flavor-injection"),
        pytest.param({"userId": "' OR 1=1 --"}, id="user-id-injection"),
        pytest.param({"flavor": "%"}, id="flavor-wildcard"),
    ],
)
async def test_filters_are_safe_with_any_input(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession, params: dict[str, str]
) -> None:
    await make(client, owner, "Tumbao montuno", "Steady")

    response = await client.get("/api/patterns", params=params)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == EMPTY
    assert await pattern_count(db) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        # NUL anywhere in the URL is refused before routing (no database stores it).
        pytest.param({"flavor": "Salsa\x00"}, "url", id="flavor-nul"),
        pytest.param({"userId": "usr_\x00"}, "url", id="user-id-nul"),
        pytest.param({"search": "tumbao\x00montuno"}, "url", id="search-nul"),
        pytest.param({"flavor": "Sal\nsa"}, "query.flavor", id="flavor-newline"),
    ],
)
async def test_filter_with_a_control_character_is_refused(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession, params: dict[str, str], field: str
) -> None:
    await make(client, owner, "Tumbao montuno", "Steady")

    response = await client.get("/api/patterns", params=params)

    assert validation_fields(response) == {field}
    assert await pattern_count(db) == 1


async def test_search_longer_than_200_characters_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/patterns", params={"search": "a" * 201})

    assert validation_fields(response) == {"query.search"}


# --- the index follows privacy, updates and deletes ------------------------------------------


async def test_private_pattern_is_not_found_by_others(
    client: httpx.AsyncClient, owner: Account, other: Account
) -> None:
    await make(client, owner, "Secret tumbao", "Hidden", isPublic=False)

    assert await search(client, "tumbao") == EMPTY
    assert await search(client, "tumbao", other) == EMPTY
    assert await search(client, "tumbao", other, userId=owner.id) == EMPTY
    assert await search(client, "tumbao", other, "/api/patterns/me") == EMPTY


async def test_pattern_made_private_is_no_longer_found(
    client: httpx.AsyncClient, owner: Account
) -> None:
    pattern_id = await make(client, owner, "Tumbao groove", "Steady")
    assert ids(await search(client, "tumbao")) == [pattern_id]

    response = await client.put(
        f"/api/patterns/{pattern_id}", json={"isPublic": False}, headers=owner.headers
    )
    assert response.status_code == 200, response.text

    assert await search(client, "tumbao") == EMPTY


async def test_updated_title_is_found_by_its_new_words(
    client: httpx.AsyncClient, owner: Account
) -> None:
    pattern_id = await make(client, owner, "Tumbao groove", "Steady")

    response = await client.put(
        f"/api/patterns/{pattern_id}", json={"title": "Guaguancó night"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text

    assert ids(await search(client, "guaguancó")) == [pattern_id]
    assert ids(await search(client, "night")) == [pattern_id]
    assert await search(client, "tumbao") == EMPTY


async def test_updated_description_is_found_by_its_new_words(
    client: httpx.AsyncClient, owner: Account
) -> None:
    pattern_id = await make(client, owner, "Groove", "Tumbao practice")

    response = await client.put(
        f"/api/patterns/{pattern_id}", json={"description": "Mambo horns"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text

    assert ids(await search(client, "mambo")) == [pattern_id]
    assert await search(client, "tumbao") == EMPTY


async def test_update_of_other_fields_keeps_the_pattern_findable(
    client: httpx.AsyncClient, owner: Account
) -> None:
    pattern_id = await make(client, owner, "Tumbao groove", "Steady")

    response = await client.put(
        f"/api/patterns/{pattern_id}", json={"bpm": 99}, headers=owner.headers
    )
    assert response.status_code == 200, response.text

    assert ids(await search(client, "tumbao")) == [pattern_id]


async def test_deleted_pattern_is_not_found(client: httpx.AsyncClient, owner: Account) -> None:
    pattern_id = await make(client, owner, "Tumbao groove", "Steady")
    kept = await make(client, owner, "Tumbao kept", "Steady")

    response = await client.delete(f"/api/patterns/{pattern_id}", headers=owner.headers)
    assert response.status_code == 200, response.text

    data = await search(client, "tumbao")
    assert ids(data) == [kept]
    assert data["pagination"]["total"] == 1
    assert ids(await search(client, "tumbao", owner, "/api/patterns/me")) == [kept]


# --- cached rankings: shared for a while, never showing what was removed -------------------


async def test_deleted_pattern_leaves_a_cached_search_at_once(
    client: httpx.AsyncClient, owner: Account
) -> None:
    gone = await make(client, owner, "Tumbao groove", "Steady")
    kept = await make(client, owner, "Tumbao kept", "Steady")
    assert set(ids(await search(client, "tumbao"))) == {gone, kept}

    response = await client.delete(f"/api/patterns/{gone}", headers=owner.headers)
    assert response.status_code == 200, response.text

    data = await search(client, "tumbao")
    assert ids(data) == [kept]
    assert data["pagination"]["total"] == 1


async def test_edited_title_leaves_a_cached_search_at_once(
    client: httpx.AsyncClient, owner: Account
) -> None:
    pattern_id = await make(client, owner, "Tumbao groove", "Steady")
    assert ids(await search(client, "tumbao")) == [pattern_id]

    response = await client.put(
        f"/api/patterns/{pattern_id}", json={"title": "Mambo night"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text

    assert await search(client, "tumbao") == EMPTY


async def test_new_pattern_joins_a_cached_search_when_the_ranking_expires(
    client: httpx.AsyncClient, owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "SEARCH_CACHE_TTL", 1)
    first = await make(client, owner, "Tumbao groove", "Steady")
    assert ids(await search(client, "tumbao")) == [first]

    second = await make(client, owner, "Tumbao again", "Steady")

    assert ids(await search(client, "tumbao")) == [first]  # the shared ranking
    await eventually(lambda: _finds(client, "tumbao", {first, second}))


async def _finds(client: httpx.AsyncClient, query: str, wanted: set[str]) -> bool:
    data = await search(client, query)
    return set(ids(data)) == wanted and data["pagination"]["total"] == len(wanted)


async def test_my_own_search_sees_a_new_pattern_at_once(
    client: httpx.AsyncClient, owner: Account
) -> None:
    first = await make(client, owner, "Tumbao groove", "Steady", isPublic=False)
    assert ids(await search(client, "tumbao", owner, "/api/patterns/me")) == [first]

    second = await make(client, owner, "Tumbao again", "Steady", isPublic=False)

    data = await search(client, "tumbao", owner, "/api/patterns/me")
    assert set(ids(data)) == {first, second}


async def test_page_beyond_the_ranking_window_comes_from_the_database(
    client: httpx.AsyncClient, owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "SEARCH_WINDOW", 2)
    made = {await make(client, owner, f"Tumbao {n}", "Practice") for n in ("uno", "dos", "tres")}

    first = await search(client, "tumbao", limit=2)
    beyond = await search(client, "tumbao", limit=2, page=2)

    assert first["pagination"] == {"page": 1, "limit": 2, "total": 3, "pages": 2}
    assert beyond["pagination"] == {"page": 2, "limit": 2, "total": 3, "pages": 2}
    assert set(ids(first)) | set(ids(beyond)) == made
    assert len(ids(beyond)) == 1
