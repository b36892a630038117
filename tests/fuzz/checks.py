"""Checks of the fuzz run beyond schemathesis' own: what the contract says of every
response, whatever the operation."""

from __future__ import annotations

from typing import Any

from schemathesis import Case, CheckContext, Response

ERROR_KEYS = {"success", "error"}
ERROR_DETAIL_KEYS = {"code", "message", "details"}


def error_envelope(_ctx: CheckContext, response: Response, _case: Case) -> bool | None:
    """Every error answers `{"success": false, "error": {"code", "message", "details"?}}`
    as JSON."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), (
        f"error {response.status_code} is {content_type or 'untyped'}, not JSON"
    )
    body: Any = response.json()
    assert isinstance(body, dict) and set(body) == ERROR_KEYS, f"not the envelope: {body!r}"
    assert body["success"] is False, "an error envelope says success: false"
    error = body["error"]
    assert isinstance(error, dict) and {"code", "message"} <= set(error) <= ERROR_DETAIL_KEYS
    assert isinstance(error["code"], str) and error["code"].isupper(), error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error.get("details", {}), dict), error
    return None


def private_answers_not_stored(_ctx: CheckContext, response: Response, _case: Case) -> bool | None:
    """A success answered to a request with credentials is the caller's own: `no-store`,
    unless it is a public document (`public`); an answer holding a token is `no-store`."""
    if not 200 <= response.status_code < 300:
        return None
    cache_control = ",".join(response.headers.get("cache-control", [])).lower()
    directives = {part.strip().split("=")[0] for part in cache_control.split(",") if part}
    if "authorization" in response.request.headers:
        assert directives & {"no-store", "public"}, (
            f"an answer to a request with credentials has Cache-Control {cache_control!r}"
        )
    if _holds_token(response):
        assert "no-store" in directives, f"an answer with a token has {cache_control!r}"
    return None


def _holds_token(response: Response) -> bool:
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith("application/json") or not response.content:
        return False
    body: Any = response.json()
    data = body.get("data") if isinstance(body, dict) else None
    return isinstance(data, dict) and bool({"token", "refreshToken"} & set(data))
