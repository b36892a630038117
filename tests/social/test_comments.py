"""Comments on patterns: list, post, edit, delete, and one level of replies."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.events import Delivered
from beatmachine.core.state import AppState
from beatmachine.social.events import CommentCreated
from tests.factories import Account, assert_error
from tests.jobs import settle
from tests.patterns.helpers import create_pattern
from tests.social.helpers import comment, listed, post, reply
from tests.users.helpers import ISO_Z


async def test_posting_a_comment_answers_201_with_the_comment(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    response = await post(client, fan, public["id"], "Great montuno")

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert set(data) == {"id", "text", "parentId", "author", "createdAt"}
    assert data["id"].startswith("cmt_")
    assert data["text"] == "Great montuno"
    assert data["parentId"] is None
    assert data["author"] == {"id": fan.id, "displayName": "Fan"}
    assert ISO_Z.match(data["createdAt"])


async def test_listed_comment_carries_its_author_and_times(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"], "Great montuno")

    data = await listed(client, public["id"])

    assert data["pagination"] == {"page": 1, "limit": 20, "total": 1, "pages": 1}
    [shown] = data["comments"]
    assert shown == {
        "id": posted["id"],
        "text": "Great montuno",
        "parentId": None,
        "author": {"id": fan.id, "displayName": "Fan", "avatar": None},
        "createdAt": posted["createdAt"],
        "updatedAt": posted["createdAt"],
        "editedAt": None,
    }


async def test_comments_are_listed_oldest_first(
    client: httpx.AsyncClient, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    first = await comment(client, fan, public["id"], "one")
    second = await comment(client, owner, public["id"], "two")
    third = await comment(client, fan, public["id"], "three")

    data = await listed(client, public["id"])

    assert [c["id"] for c in data["comments"]] == [first["id"], second["id"], third["id"]]


async def test_sort_newest_lists_the_latest_first(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    first = await comment(client, fan, public["id"], "one")
    second = await comment(client, fan, public["id"], "two")

    data = await listed(client, public["id"], query="?sort=newest")

    assert [c["id"] for c in data["comments"]] == [second["id"], first["id"]]


async def test_comments_are_paginated(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    posted = [await comment(client, fan, public["id"], f"take {n}") for n in range(5)]

    data = await listed(client, public["id"], query="?page=2&limit=2")

    assert [c["id"] for c in data["comments"]] == [posted[2]["id"], posted[3]["id"]]
    assert data["pagination"] == {"page": 2, "limit": 2, "total": 5, "pages": 3}


async def test_unknown_sort_is_a_validation_error(
    client: httpx.AsyncClient, public: dict[str, Any]
) -> None:
    response = await client.get(f"/api/patterns/{public['id']}/comments?sort=best")

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["details"]["fields"][0]["field"] == "query.sort"


async def test_anyone_may_read_the_comments_of_a_public_pattern(
    client: httpx.AsyncClient, fan: Account, stranger: Account, public: dict[str, Any]
) -> None:
    await comment(client, fan, public["id"])

    anonymous = await listed(client, public["id"])
    signed_in = await listed(client, public["id"], stranger)

    assert len(anonymous["comments"]) == len(signed_in["comments"]) == 1


async def test_comments_of_someone_elses_private_pattern_are_not_found(
    client: httpx.AsyncClient, stranger: Account, private: dict[str, Any]
) -> None:
    anonymous = await client.get(f"/api/patterns/{private['id']}/comments")
    signed_in = await client.get(
        f"/api/patterns/{private['id']}/comments", headers=stranger.headers
    )

    assert_error(anonymous, 404, "PATTERN_NOT_FOUND")
    assert_error(signed_in, 404, "PATTERN_NOT_FOUND")


async def test_the_owner_comments_on_and_reads_their_private_pattern(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> None:
    await comment(client, owner, private["id"], "note to self")

    data = await listed(client, private["id"], owner)

    assert [c["text"] for c in data["comments"]] == ["note to self"]


async def test_commenting_on_someone_elses_private_pattern_is_not_found(
    client: httpx.AsyncClient, stranger: Account, owner: Account, private: dict[str, Any]
) -> None:
    response = await post(client, stranger, private["id"], "let me in")

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert (await listed(client, private["id"], owner))["comments"] == []


async def test_commenting_on_an_unknown_pattern_is_not_found(
    client: httpx.AsyncClient, fan: Account
) -> None:
    response = await post(client, fan, "pat_missing", "hello")

    assert_error(response, 404, "PATTERN_NOT_FOUND")


async def test_commenting_needs_a_token(client: httpx.AsyncClient, public: dict[str, Any]) -> None:
    response = await client.post(f"/api/patterns/{public['id']}/comments", json={"text": "hi"})

    assert_error(response, 401, "AUTH_REQUIRED")
    assert (await listed(client, public["id"]))["comments"] == []


# --- edit --------------------------------------------------------------------------------


async def test_the_author_edits_a_comment_and_it_shows_when(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"], "Grat montuno")

    response = await client.put(
        f"/api/comments/{posted['id']}", json={"text": "Great montuno"}, headers=fan.headers
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["text"] == "Great montuno"
    assert data["editedAt"] is not None and ISO_Z.match(data["editedAt"])
    assert data["updatedAt"] == data["editedAt"]
    assert data["createdAt"] == posted["createdAt"]
    [shown] = (await listed(client, public["id"]))["comments"]
    assert shown == data


async def test_an_edit_to_the_same_text_does_not_mark_it_edited(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"], "Same")

    response = await client.put(
        f"/api/comments/{posted['id']}", json={"text": "Same"}, headers=fan.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["editedAt"] is None


async def test_only_the_author_may_edit_a_comment(
    client: httpx.AsyncClient, fan: Account, owner: Account, admin: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"], "mine")

    by_owner = await client.put(
        f"/api/comments/{posted['id']}", json={"text": "owner's"}, headers=owner.headers
    )
    by_admin = await client.put(
        f"/api/comments/{posted['id']}", json={"text": "admin's"}, headers=admin.headers
    )

    assert_error(by_owner, 403, "UNAUTHORIZED")
    assert_error(by_admin, 403, "UNAUTHORIZED")
    assert [c["text"] for c in (await listed(client, public["id"]))["comments"]] == ["mine"]


async def test_editing_an_unknown_comment_is_not_found(
    client: httpx.AsyncClient, fan: Account
) -> None:
    response = await client.put(
        "/api/comments/cmt_missing", json={"text": "hello"}, headers=fan.headers
    )

    assert_error(response, 404, "COMMENT_NOT_FOUND")


async def test_editing_needs_a_token(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"])

    response = await client.put(f"/api/comments/{posted['id']}", json={"text": "x"})

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_a_comment_on_a_pattern_made_private_is_out_of_its_authors_reach(
    client: httpx.AsyncClient, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"], "before")
    hidden = await client.put(
        f"/api/patterns/{public['id']}", json={"isPublic": False}, headers=owner.headers
    )
    assert hidden.status_code == 200, hidden.text

    response = await client.put(
        f"/api/comments/{posted['id']}", json={"text": "after"}, headers=fan.headers
    )

    assert_error(response, 404, "PATTERN_NOT_FOUND")


# --- delete ------------------------------------------------------------------------------


async def test_the_author_deletes_their_comment(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"])

    response = await client.delete(f"/api/comments/{posted['id']}", headers=fan.headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "data": {"message": "Comment deleted."}}
    assert (await listed(client, public["id"]))["comments"] == []


async def test_the_patterns_owner_deletes_a_comment_on_it(
    client: httpx.AsyncClient, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"])

    response = await client.delete(f"/api/comments/{posted['id']}", headers=owner.headers)

    assert response.status_code == 200, response.text
    assert (await listed(client, public["id"]))["comments"] == []


async def test_an_admin_deletes_any_comment(
    client: httpx.AsyncClient, fan: Account, admin: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"])

    response = await client.delete(f"/api/comments/{posted['id']}", headers=admin.headers)

    assert response.status_code == 200, response.text
    assert (await listed(client, public["id"]))["comments"] == []


async def test_an_admin_deletes_a_comment_on_a_private_pattern(
    client: httpx.AsyncClient, owner: Account, admin: Account, private: dict[str, Any]
) -> None:
    posted = await comment(client, owner, private["id"])

    response = await client.delete(f"/api/comments/{posted['id']}", headers=admin.headers)

    assert response.status_code == 200, response.text
    assert (await listed(client, private["id"], owner))["comments"] == []


async def test_anyone_else_may_not_delete_a_comment(
    client: httpx.AsyncClient, fan: Account, stranger: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"])

    response = await client.delete(f"/api/comments/{posted['id']}", headers=stranger.headers)

    assert_error(response, 403, "UNAUTHORIZED")
    assert len((await listed(client, public["id"]))["comments"]) == 1


async def test_deleting_an_unknown_comment_is_not_found(
    client: httpx.AsyncClient, fan: Account
) -> None:
    response = await client.delete("/api/comments/cmt_missing", headers=fan.headers)

    assert_error(response, 404, "COMMENT_NOT_FOUND")


async def test_a_deleted_comment_is_not_found_again(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"])
    await client.delete(f"/api/comments/{posted['id']}", headers=fan.headers)

    again = await client.delete(f"/api/comments/{posted['id']}", headers=fan.headers)

    assert_error(again, 404, "COMMENT_NOT_FOUND")


# --- replies -----------------------------------------------------------------------------


async def test_a_reply_names_the_comment_it_answers(
    client: httpx.AsyncClient, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    first = await comment(client, fan, public["id"], "How do you play this?")

    answer = await reply(client, owner, public["id"], first["id"], "Clave 2-3")

    assert answer["parentId"] == first["id"]
    shown = (await listed(client, public["id"]))["comments"]
    assert [(c["id"], c["parentId"]) for c in shown] == [
        (first["id"], None),
        (answer["id"], first["id"]),
    ]


async def test_a_reply_to_a_reply_joins_the_same_thread(
    client: httpx.AsyncClient, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    first = await comment(client, fan, public["id"], "question")
    answer = await reply(client, owner, public["id"], first["id"], "answer")

    follow_up = await reply(client, fan, public["id"], answer["id"], "thanks")

    assert follow_up["parentId"] == first["id"]


async def test_replying_to_a_comment_of_another_pattern_is_not_found(
    client: httpx.AsyncClient, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    elsewhere = await create_pattern(client, owner, isPublic=True)
    there = await comment(client, fan, elsewhere["id"], "over there")

    response = await post(client, fan, public["id"], "here", parentId=there["id"])

    assert_error(response, 404, "COMMENT_NOT_FOUND")
    assert (await listed(client, public["id"]))["comments"] == []


async def test_replying_to_an_unknown_comment_is_not_found(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    response = await post(client, fan, public["id"], "hello?", parentId="cmt_missing")

    assert_error(response, 404, "COMMENT_NOT_FOUND")
    assert (await listed(client, public["id"]))["comments"] == []


async def test_deleting_a_threads_first_comment_deletes_its_replies(
    client: httpx.AsyncClient, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    first = await comment(client, fan, public["id"], "question")
    await reply(client, owner, public["id"], first["id"], "answer")
    await reply(client, fan, public["id"], first["id"], "thanks")
    other = await comment(client, owner, public["id"], "unrelated")

    response = await client.delete(f"/api/comments/{first['id']}", headers=fan.headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["message"] == "Comment and 2 replies deleted."
    assert [c["id"] for c in (await listed(client, public["id"]))["comments"]] == [other["id"]]


async def test_deleting_a_reply_keeps_its_thread(
    client: httpx.AsyncClient, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    first = await comment(client, fan, public["id"], "question")
    answer = await reply(client, owner, public["id"], first["id"], "answer")

    response = await client.delete(f"/api/comments/{answer['id']}", headers=owner.headers)

    assert response.status_code == 200, response.text
    assert [c["id"] for c in (await listed(client, public["id"]))["comments"]] == [first["id"]]


async def test_deleting_a_thread_with_one_reply_says_so(
    client: httpx.AsyncClient, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    first = await comment(client, fan, public["id"], "question")
    await reply(client, owner, public["id"], first["id"], "answer")

    response = await client.delete(f"/api/comments/{first['id']}", headers=fan.headers)

    assert response.json()["data"]["message"] == "Comment and 1 reply deleted."


async def test_a_reply_to_a_reply_names_the_comment_it_answers_in_its_event(
    client: httpx.AsyncClient, state: AppState, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    heard: list[CommentCreated] = []

    async def keep(_session: AsyncSession, delivered: Delivered[CommentCreated]) -> None:
        heard.append(delivered.event)

    state.events.listen(CommentCreated, "test.replies", keep)
    first = await comment(client, fan, public["id"], "question")
    answer = await reply(client, owner, public["id"], first["id"], "answer")
    await settle(state)

    follow_up = await reply(client, fan, public["id"], answer["id"], "thanks")

    await settle(state)
    [event] = [e for e in heard if e.comment_id == follow_up["id"]]
    assert (event.parent_id, event.parent_author_id) == (first["id"], fan.id)
    assert (event.replied_to_id, event.replied_to_author_id) == (answer["id"], owner.id)


async def test_comment_routes_of_a_deleted_pattern_are_not_found(
    client: httpx.AsyncClient, fan: Account, owner: Account, admin: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"])
    await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)

    new = await post(client, fan, public["id"], "still there?")
    by_author = await client.delete(f"/api/comments/{posted['id']}", headers=fan.headers)
    by_admin = await client.delete(f"/api/comments/{posted['id']}", headers=admin.headers)

    assert_error(new, 404, "PATTERN_NOT_FOUND")
    assert_error(by_author, 404, "PATTERN_NOT_FOUND")
    assert_error(by_admin, 404, "PATTERN_NOT_FOUND")
