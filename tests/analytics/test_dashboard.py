"""The admin dashboard over HTTP: who may open it, its sign-in and cookie session
(Secure, HttpOnly, SameSite=Strict, short-lived, ended by logout), CSRF, its strict
Content-Security-Policy, and each chart's CSV."""

from __future__ import annotations

import csv
import io
import re
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from beatmachine.core.state import AppState
from tests.analytics.helpers import Usage, play
from tests.factories import ADMIN_EMAIL, PASSWORD, Account, assert_error
from tests.jobs import settle
from tests.patterns.helpers import create_pattern

BASE = "/admin/analytics"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    jar: dict[str, SimpleCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            jar[name] = cookie
    return jar


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, html
    return match.group(1)


async def _sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    """Open the sign-in page and post its form, as a browser would."""
    page = await client.get(f"{BASE}/login")
    csrf_cookie = _cookies(page)["bm_dashboard_csrf"]["bm_dashboard_csrf"].value
    return await client.post(
        f"{BASE}/login",
        content=f"csrf={_csrf(page.text)}&email={email}&password={password}",
        headers={**FORM, "Cookie": f"bm_dashboard_csrf={csrf_cookie}"},
    )


def _session_cookie(response: httpx.Response) -> str:
    return _cookies(response)["bm_dashboard"]["bm_dashboard"].value


async def test_an_anonymous_visitor_is_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get(BASE)

    assert response.status_code == 303
    assert response.headers["location"] == f"{BASE}/login"


async def test_a_user_who_is_not_an_admin_gets_403(
    client: httpx.AsyncClient, other: Account
) -> None:
    response = await client.get(BASE, headers=other.headers)

    assert response.status_code == 403
    assert "Only administrators" in response.text


@pytest.mark.usefixtures("usage")
async def test_an_admins_bearer_token_opens_the_dashboard_with_a_strict_csp(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await client.get(BASE, headers=admin.headers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # nothing may run
    assert "frame-ancestors 'none'" in csp
    assert response.headers["cache-control"] == "no-store"
    for chart in ("active-users", "signups", "plays", "instruments", "tempo", "keys"):
        assert f'id="chart-{chart}"' in response.text
    assert "<script" not in response.text
    assert re.findall(r'(?:src|href)="(https?:)?//', response.text) == []


async def test_signing_in_sets_a_secure_httponly_strict_short_lived_cookie(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await _sign_in(client, ADMIN_EMAIL)

    assert response.status_code == 303
    assert response.headers["location"] == BASE
    cookie = _cookies(response)["bm_dashboard"]["bm_dashboard"]
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "strict"
    assert cookie["path"] == "/admin"
    assert 0 < int(cookie["max-age"]) <= 3600
    page = await client.get(BASE, headers={"Cookie": f"bm_dashboard={cookie.value}"})
    assert page.status_code == 200
    assert "Sign out" in page.text


async def test_signing_out_ends_the_pages_session(
    client: httpx.AsyncClient, admin: Account
) -> None:
    token = _session_cookie(await _sign_in(client, ADMIN_EMAIL))
    cookie = {"Cookie": f"bm_dashboard={token}"}
    page = await client.get(BASE, headers=cookie)

    response = await client.post(
        f"{BASE}/logout", content=f"csrf={_csrf(page.text)}", headers={**FORM, **cookie}
    )

    assert response.status_code == 303
    assert response.headers["location"] == f"{BASE}/login"
    assert (await client.get(BASE, headers=cookie)).status_code == 303
    # The same session for the API: revoked too.
    api = await client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401


async def test_a_sign_out_without_the_pages_csrf_token_is_refused(
    client: httpx.AsyncClient, admin: Account
) -> None:
    token = _session_cookie(await _sign_in(client, ADMIN_EMAIL))
    cookie = {"Cookie": f"bm_dashboard={token}"}

    response = await client.post(
        f"{BASE}/logout", content="csrf=forged", headers={**FORM, **cookie}
    )

    assert response.status_code == 403
    assert (await client.get(BASE, headers=cookie)).status_code == 200


async def test_a_sign_in_without_the_matching_csrf_cookie_is_refused(
    client: httpx.AsyncClient, admin: Account
) -> None:
    page = await client.get(f"{BASE}/login")

    response = await client.post(
        f"{BASE}/login",
        content=f"csrf={_csrf(page.text)}&email={ADMIN_EMAIL}&password={PASSWORD}",
        headers=FORM,
    )

    assert response.status_code == 403
    assert "bm_dashboard" not in _cookies(response)


async def test_a_sign_in_posted_from_another_origin_is_refused(
    client: httpx.AsyncClient, admin: Account
) -> None:
    page = await client.get(f"{BASE}/login")
    csrf_cookie = _cookies(page)["bm_dashboard_csrf"]["bm_dashboard_csrf"].value

    response = await client.post(
        f"{BASE}/login",
        content=f"csrf={_csrf(page.text)}&email={ADMIN_EMAIL}&password={PASSWORD}",
        headers={
            **FORM,
            "Cookie": f"bm_dashboard_csrf={csrf_cookie}",
            "Origin": "https://evil.example",
        },
    )

    assert response.status_code == 403


async def test_a_wrong_password_shows_the_form_again_with_401(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await _sign_in(client, ADMIN_EMAIL, "not-the-password")

    assert response.status_code == 401
    assert 'role="alert"' in response.text
    assert "bm_dashboard" not in _cookies(response)


async def test_a_user_who_is_not_an_admin_cannot_sign_in(
    client: httpx.AsyncClient, other: Account
) -> None:
    response = await _sign_in(client, other.email)

    assert response.status_code == 403
    assert "bm_dashboard" not in _cookies(response)
    sessions = await client.get("/api/auth/sessions", headers=other.headers)
    assert sessions.status_code == 200, sessions.text
    assert len(sessions.json()["data"]["sessions"]) == 1  # only the one of registering


async def test_the_stylesheet_is_served_by_the_app(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{BASE}/static/dashboard.css")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")


async def test_each_chart_downloads_as_csv(
    client: httpx.AsyncClient, admin: Account, usage: Usage
) -> None:
    response = await client.get(f"{BASE}/instruments.csv?range=week", headers=admin.headers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [
        ["id", "title", "usageCount", "percentage"],
        ["clave", "Clave", "2", "66.67"],
        ["cowbell", "Cowbell", "1", "33.33"],
        ["guira", "Güira", "1", "33.33"],
        ["tambora", "Tambora", "1", "33.33"],
    ]


CSV_HEADERS = {
    "active-users": ["periodStart", "active_users"],
    "signups": ["periodStart", "signups"],
    "plays": ["periodStart", "plays"],
    "instruments": ["id", "title", "usageCount", "percentage"],
    "tempo": ["bpm", "count"],
    "keys": ["keyNote", "name", "count", "percentage"],
    # A month covers five weekly cohorts.
    "retention": ["week", "size", "week0", "week1", "week2", "week3", "week4"],
    "trending": ["id", "title", "authorId", "author", "plays", "likes", "score"],
}


@pytest.mark.parametrize("chart", CSV_HEADERS)
async def test_every_chart_has_its_csv_header(
    client: httpx.AsyncClient, admin: Account, usage: Usage, chart: str
) -> None:
    response = await client.get(f"{BASE}/{chart}.csv?range=month", headers=admin.headers)

    assert response.status_code == 200
    assert next(csv.reader(io.StringIO(response.text))) == CSV_HEADERS[chart]


async def test_a_chart_csv_computes_only_its_own_report(
    client: httpx.AsyncClient, state: AppState, admin: Account, usage: Usage
) -> None:
    # Active users and retention read the active days; popular patterns the trending.
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "analytics_active_days" in statement or "analytics_trending" in statement:
            statements.append(statement)

    event.listen(state.engine.sync_engine, "before_cursor_execute", count)
    try:
        response = await client.get(f"{BASE}/tempo.csv?range=week", headers=admin.headers)
    finally:
        event.remove(state.engine.sync_engine, "before_cursor_execute", count)

    assert response.status_code == 200
    assert statements == []


async def test_a_title_a_spreadsheet_would_run_is_written_as_text(
    client: httpx.AsyncClient, state: AppState, admin: Account, owner: Account
) -> None:
    pattern = await create_pattern(client, owner, title="=HYPERLINK(1)")
    await play(client, pattern["id"], None)
    await settle(state)

    response = await client.get(f"{BASE}/trending.csv?range=day", headers=admin.headers)

    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[1][1] == "'=HYPERLINK(1)"


async def test_an_unknown_chart_is_404(client: httpx.AsyncClient, admin: Account) -> None:
    response = await client.get(f"{BASE}/nothing.csv", headers=admin.headers)

    assert response.status_code == 404


@pytest.mark.parametrize("path", ["", "/instruments.csv"])
async def test_an_unknown_range_is_refused(
    client: httpx.AsyncClient, admin: Account, path: str
) -> None:
    response = await client.get(f"{BASE}{path}?range=decade", headers=admin.headers)

    assert_error(response, 422, "VALIDATION_ERROR")
