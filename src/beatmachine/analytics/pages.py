"""The admin analytics dashboard: server-rendered HTML pages at `/admin/analytics`, with
SVG charts drawn on the server, CSV downloads, a sign-in page and its own cookie session.

The page's session is an ordinary session of the account (it shows in the session list
and a logout or revocation ends it), carried in a cookie that is Secure, HttpOnly,
SameSite=Strict, limited to `/admin` and as short-lived as an access token. Forms carry a
CSRF token: on the sign-in page one that matches a cookie (double submit), afterwards one
derived from the session; a form from another origin is refused. Pages load nothing from
elsewhere and forbid everything else by their Content-Security-Policy: no script runs.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
from html import escape
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beatmachine.analytics.charts import Bar, HeatRow, bar_chart, heat_map, horizontal_bars
from beatmachine.analytics.ranges import TimeRange
from beatmachine.analytics.service import CHARTS, Dashboard, chart_rows, dashboard
from beatmachine.auth import service as auth_service
from beatmachine.auth.service import Authenticated, Client
from beatmachine.core.db import SessionDep
from beatmachine.core.errors import AppError
from beatmachine.core.middleware import client_ip
from beatmachine.core.state import AppState, StateDep
from beatmachine.users import service as users_service

router = APIRouter(prefix="/admin/analytics", include_in_schema=False)

BASE = "/admin/analytics"
SESSION_COOKIE = "bm_dashboard"
CSRF_COOKIE = "bm_dashboard_csrf"
COOKIE_PATH = "/admin"
FORM_TYPE = "application/x-www-form-urlencoded"
# Paths whose POST bodies are forms, not JSON (for the body guard).
FORM_PATHS = (f"{BASE}/login", f"{BASE}/logout")
MAX_FORM_BYTES = 4096
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
RANGE_LABELS = {
    TimeRange.DAY: "Today",
    TimeRange.WEEK: "Last 7 days",
    TimeRange.MONTH: "Last 30 days",
    TimeRange.YEAR: "Last 365 days",
    TimeRange.ALL: "All time",
}
RangeQuery = Annotated[TimeRange, Query(alias="range")]


# --- responses ---------------------------------------------------------------------------


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · Beat Machine</title>"
        f'<link rel="stylesheet" href="{BASE}/static/dashboard.css">'
        f'<link rel="icon" href="{BASE}/static/icon.svg" type="image/svg+xml"></head>'
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_headers())


def _redirect(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=303, headers=_headers())


def _refused(status: int, message: str) -> HTMLResponse:
    return _page(
        "Not allowed",
        f'<main class="narrow"><h1>Not allowed</h1><p class="error">{escape(message)}</p>'
        f'<p><a href="{BASE}/login">Sign in with another account</a></p></main>',
        status,
    )


# --- who is looking ------------------------------------------------------------------------


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return request.cookies.get(SESSION_COOKIE)


async def _viewer(request: Request, session: SessionDep, state: AppState) -> Authenticated | None:
    token = _token(request)
    if token is None:
        return None
    try:
        return await auth_service.authenticate(session, state, token)
    except AppError:
        return None  # expired, revoked or not a token: sign in again


def _session_csrf(state: AppState, auth: Authenticated) -> str:
    key = hashlib.sha256(b"dashboard-csrf:" + state.jwt_secret.encode()).digest()
    return hmac.new(key, auth.session.id.encode(), hashlib.sha256).hexdigest()


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Browsers send Origin on every cross-site POST; without one, SameSite=Strict and
        # the CSRF token are the guard.
        return origin is None
    return origin.rstrip("/") == f"{request.url.scheme}://{request.url.netloc}"


async def _form(request: Request) -> dict[str, str] | None:
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        return None
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return None
    return {name: values[0] for name, values in fields.items() if values}


# --- sign in and out -------------------------------------------------------------------------


def _login_page(csrf: str, error: str = "", status: int = 200, email: str = "") -> HTMLResponse:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    response = _page(
        "Sign in",
        '<main class="narrow"><h1>Beat Machine analytics</h1>'
        "<p>Sign in with an administrator's account.</p>"
        f"{message}"
        f'<form method="post" action="{BASE}/login" class="signin">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        '<label>E-mail <input type="email" name="email" required autocomplete="username" '
        f'value="{escape(email)}"></label>'
        '<label>Password <input type="password" name="password" required '
        'autocomplete="current-password"></label>'
        '<button type="submit">Sign in</button></form></main>',
        status,
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=3600,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/login")
async def login_page() -> HTMLResponse:
    """The sign-in form."""
    return _login_page(secrets.token_urlsafe(32))


@router.post("/login")
async def login(request: Request, session: SessionDep, state: StateDep) -> Response:
    """Sign in: an administrator gets the page's session cookie and the dashboard."""
    form = await _form(request)
    expected = request.cookies.get(CSRF_COOKIE, "")
    sent = "" if form is None else form.get("csrf", "")
    if not _same_origin(request) or not expected or not hmac.compare_digest(sent, expected):
        return _refused(403, "The form has expired or came from another site. Try again.")
    assert form is not None  # a token matched, so the form was read
    email = form.get("email", "")[:320]
    client = Client(
        ip=client_ip(request.scope, state.settings.trusted_proxies),
        user_agent=request.headers.get("user-agent"),
    )
    try:
        user, tokens = await auth_service.login(
            session, state, email=email, password=form.get("password", ""), client=client
        )
    except AppError as exc:
        return _login_page(secrets.token_urlsafe(32), exc.message, exc.status, email)
    if not users_service.is_admin(user, state.settings):
        signed_in = await auth_service.authenticate(session, state, tokens.access_token)
        await auth_service.logout(session, signed_in)
        return _refused(403, "This account is not an administrator's.")
    response = _redirect(BASE)
    response.set_cookie(
        SESSION_COOKIE,
        tokens.access_token,
        max_age=tokens.expires_in,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(CSRF_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep, state: StateDep) -> Response:
    """Sign out: the page's session ends (in every process) and its cookie goes."""
    auth = await _viewer(request, session, state)
    form = await _form(request)
    if auth is not None:
        sent = "" if form is None else form.get("csrf", "")
        if not _same_origin(request) or not hmac.compare_digest(sent, _session_csrf(state, auth)):
            return _refused(403, "The form has expired or came from another site. Try again.")
        await auth_service.logout(session, auth)
    response = _redirect(f"{BASE}/login")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


# --- the dashboard -----------------------------------------------------------------------------


async def _admin(
    request: Request, session: SessionDep, state: AppState
) -> Authenticated | Response:
    auth = await _viewer(request, session, state)
    if auth is None:
        return _redirect(f"{BASE}/login")
    if not users_service.is_admin(auth.user, state.settings):
        return _refused(403, "Only administrators may see the analytics.")
    return auth


@router.get("")
async def dashboard_page(
    request: Request,
    session: SessionDep,
    state: StateDep,
    time_range: RangeQuery = TimeRange.MONTH,
) -> Response:
    """The dashboard: every chart for the range picked."""
    auth = await _admin(request, session, state)
    if isinstance(auth, Response):
        return auth
    board = await dashboard(session, state, time_range)
    return _page("Analytics", _render(board, auth, _session_csrf(state, auth)))


@router.get("/{chart}.csv")
async def chart_csv(
    chart: str,
    request: Request,
    session: SessionDep,
    state: StateDep,
    time_range: RangeQuery = TimeRange.MONTH,
) -> Response:
    """One chart's data as CSV."""
    auth = await _admin(request, session, state)
    if isinstance(auth, Response):
        return auth
    if chart not in CHARTS:
        return _page("Not found", '<main class="narrow"><h1>No such chart</h1></main>', 404)
    header, rows = await chart_rows(session, state, time_range, chart)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[_cell(value) for value in row] for row in rows])
    filename = f"beatmachine-{chart}-{time_range.value}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={**_headers(), "Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _cell(value: str) -> str:
    # A cell a spreadsheet would run as a formula (a title like "=HYPERLINK(…)") is
    # written as text.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@router.get("/static/dashboard.css")
async def stylesheet() -> Response:
    """The dashboard's only stylesheet, served by the app itself."""
    return Response(
        STYLESHEET,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/static/icon.svg")
async def icon() -> Response:
    """The pages' icon (without one a browser asks for /favicon.ico, which is not here)."""
    return Response(
        ICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


def _figure(chart: str, title: str, svg: str, time_range: TimeRange) -> str:
    link = f"{BASE}/{chart}.csv?{urlencode({'range': time_range.value})}"
    return (
        f'<figure class="panel" id="chart-{chart}" data-chart="{chart}">'
        f'<figcaption><h2>{escape(title)}</h2><a class="csv" href="{escape(link)}" '
        f"download>CSV</a></figcaption>{svg}</figure>"
    )


def _label_every(count: int) -> int:
    return max(1, count // 8)


def _series_bars(board: Dashboard, chart: str) -> list[Bar]:
    points = {"active-users": board.active_users, "signups": board.signups}.get(chart, board.plays)
    return [Bar(point.period_start.isoformat(), point.value) for point in points.series]


def _render(board: Dashboard, auth: Authenticated, csrf: str) -> str:
    time_range = board.time_range
    period = board.plays.period
    options = "".join(
        f'<option value="{r.value}"{" selected" if r is time_range else ""}>'
        f"{escape(label)}</option>"
        for r, label in RANGE_LABELS.items()
    )
    panels: list[tuple[str, str, str]] = []
    for chart, title in (
        ("active-users", f"Active users per {period}"),
        ("signups", f"Sign-ups per {period}"),
        ("plays", f"Plays per {period}"),
    ):
        bars = _series_bars(board, chart)
        panels.append((chart, title, bar_chart(title, bars, label_every=_label_every(len(bars)))))
    instruments = [
        Bar(i.title, i.usage_count, f"{i.usage_count} ({i.percentage:g} %)")
        for i in board.instruments.instruments
    ]
    created = board.instruments.patterns_created
    panels.append(
        (
            "instruments",
            f"Popular instruments (of {created} patterns created)",
            horizontal_bars("Popular instruments", instruments),
        )
    )
    tempo = [Bar(str(t.bpm), t.count) for t in board.tempo.distribution]
    panels.append(
        (
            "tempo",
            f"Tempo distribution ({board.tempo.bucket} bpm buckets)",
            bar_chart("Tempo distribution", tempo, label_every=_label_every(len(tempo))),
        )
    )
    keys = [Bar(k.name, k.count, f"{k.name}: {k.count}") for k in board.keys.distribution]
    panels.append(("keys", "Key usage", bar_chart("Key usage", keys)))
    cohorts = board.retention.cohorts
    weeks = max((len(c.retention) for c in cohorts), default=0)
    rows = [HeatRow(f"{c.week.isoformat()} ({c.size})", c.retention) for c in cohorts if c.size > 0]
    panels.append(
        (
            "retention",
            "Weekly retention by sign-up week (cohort size)",
            heat_map("Retention cohorts", rows, [f"W{n}" for n in range(weeks)]),
        )
    )
    trending = [
        Bar(p.title, p.score, f"{p.plays} plays, {p.likes} likes, score {p.score:g}")
        for p in board.trending.patterns
    ]
    panels.append(
        ("trending", "Trending patterns (score)", horizontal_bars("Trending patterns", trending))
    )
    figures = [_figure(chart, title, svg, time_range) for chart, title, svg in panels]
    return (
        '<header class="top"><h1>Beat Machine analytics</h1>'
        f'<form method="get" action="{BASE}" class="range">'
        f'<label>Range <select name="range">{options}</select></label>'
        '<button type="submit">Show</button></form>'
        f'<form method="post" action="{BASE}/logout" class="signout">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f"<span>{escape(auth.user.display_name)}</span>"
        '<button type="submit">Sign out</button></form></header>'
        f'<main class="grid" data-range="{time_range.value}">' + "".join(figures) + "</main>"
    )


ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#2b2350"/>'
    '<rect x="3" y="8" width="2" height="5" fill="#fff"/><rect x="7" y="4" width="2" '
    'height="9" fill="#fff"/><rect x="11" y="6" width="2" height="7" fill="#fff"/></svg>'
)
STYLESHEET = """
:root { color-scheme: light; font-family: system-ui, sans-serif; color: #1d1d28; }
body { margin: 0; background: #f4f3f8; }
header.top { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center;
  padding: .75rem 1.5rem; background: #2b2350; color: #fff; }
header.top h1 { font-size: 1.2rem; margin: 0 auto 0 0; }
header.top form { display: flex; gap: .5rem; align-items: center; }
main.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(660px, 1fr));
  gap: 1rem; padding: 1rem 1.5rem; }
main.narrow { max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem;
  border-radius: .5rem; }
figure.panel { margin: 0; background: #fff; border-radius: .5rem; padding: .75rem 1rem; }
figcaption { display: flex; justify-content: space-between; align-items: baseline; }
figcaption h2 { font-size: 1rem; margin: 0 0 .5rem; }
a.csv { font-size: .85rem; }
svg.chart { max-width: 100%; height: auto; }
svg .bar { fill: #6c4ee0; }
svg .cell { fill: #d9402b; }
svg .axis { stroke: #999; }
svg .tick, svg .label, svg .value, svg .cell-value, svg .empty { font-size: 11px; fill: #333; }
form.signin { display: grid; gap: .75rem; }
form.signin input { display: block; width: 100%; padding: .4rem; box-sizing: border-box; }
.error { color: #b00020; }
button { padding: .35rem .8rem; }
"""
