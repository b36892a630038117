"""Comment text is plain text, 1-5000 characters: tags are removed so it can never run
as markup, what reads as text stays as typed, and control characters are refused."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.factories import Account, assert_error
from tests.social.helpers import comment, listed, post


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("<b>Great</b> tumbao", "Great tumbao"),
        ('<img src=x onerror="alert(1)">Nice', "Nice"),
        ("<script>alert(1)</script>Clave", "Clave"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;ok", "ok"),
        ("<3 this groove", "<3 this groove"),
        ("a < b and b > c", "a < b and b > c"),
        ("Tom & Jerry", "Tom & Jerry"),
        ("line one\nline two\twith a tab", "line one\nline two\twith a tab"),
        ("windows\r\nline ends", "windows\nline ends"),
        ("  padded  ", "padded"),
    ],
)
async def test_comment_text_is_stored_as_plain_text(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any], typed: str, stored: str
) -> None:
    posted = await comment(client, fan, public["id"], typed)

    assert posted["text"] == stored
    [shown] = (await listed(client, public["id"]))["comments"]
    assert shown["text"] == stored


async def test_longest_comment_is_accepted(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"], "a" * 5000)

    assert len(posted["text"]) == 5000


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"text": ""}, "empty"),
        ({"text": "   "}, "blank"),
        ({"text": "<b></b>"}, "only markup"),
        ({"text": "a" * 5001}, "too long"),
        ({"text": "nul\x00here"}, "NUL"),
        ({"text": "bell\x07"}, "control character"),
        ({"text": "lone\rreturn"}, "carriage return alone"),
        ({"text": "c1\x85"}, "C1 control"),
        ({"text": "\ud800"}, "lone surrogate"),
        ({"text": "a&#1;b"}, "C0 control as a reference"),
        ({"text": "x&#x7f;y"}, "DEL as a reference"),
        ({"text": "a&#x81;b"}, "C1 control as a reference"),
        ({"text": "page&#12;break"}, "form feed as a reference"),
        ({"text": "a&#x1b;[31m"}, "terminal escape as a reference"),
        ({"text": 42}, "not a string"),
        ({"text": None}, "null"),
        ({}, "missing"),
        ({"text": "hi", "author": "usr_x"}, "unknown field"),
        ({"text": "hi", "parentId": 7}, "parent id not a string"),
    ],
)
async def test_bad_comment_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any], body: Any, why: str
) -> None:
    response = await client.post(
        f"/api/patterns/{public['id']}/comments",
        # Escaped as JSON allows, so a lone surrogate travels as `\ud800`.
        content=json.dumps(body).encode(),
        headers={**fan.headers, "Content-Type": "application/json"},
    )

    assert_error(response, 422, "VALIDATION_ERROR")
    assert (await listed(client, public["id"]))["comments"] == [], why


async def test_bad_edit_is_refused_and_keeps_the_text(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"], "kept")

    response = await client.put(
        f"/api/comments/{posted['id']}", json={"text": "bad\x00"}, headers=fan.headers
    )

    assert_error(response, 422, "VALIDATION_ERROR")
    [shown] = (await listed(client, public["id"]))["comments"]
    assert (shown["text"], shown["editedAt"]) == ("kept", None)


async def test_validation_error_names_the_text_field(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    response = await post(client, fan, public["id"], "bell\x07")

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["text"]
