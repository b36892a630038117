"""`/api/admin/jobs`: administrators list the jobs that failed for good and send one again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from beatmachine.core.state import AppState
from tests.factories import ADMIN_OVERRIDES, Account, assert_error, register
from tests.jobs import settle
from tests.users.helpers import ISO_Z

RETRIES = 2


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        **ADMIN_OVERRIDES,
        "JOB_RETRIES": RETRIES,
        "JOB_RETRY_BASE_DELAY": 0.01,
        "JOB_RETRY_MAX_DELAY": 0.02,
    }


class Sometimes:
    """A job that fails while `broken` is set."""

    def __init__(self) -> None:
        self.broken = True
        self.done: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> None:
        if self.broken:
            raise ConnectionError("the far side is down")
        self.done.append(kwargs)


@pytest.fixture
async def flaky(state: AppState) -> Sometimes:
    job = Sometimes()
    state.jobs.register("test.deliver", job)
    return job


async def fail_one(state: AppState, **kwargs: Any) -> None:
    await state.jobs.submit("test.deliver", **kwargs)
    await settle(state)


async def listed(client: httpx.AsyncClient, admin: Account, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/api/admin/jobs{query}", headers=admin.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_a_failed_job_is_listed_with_its_last_error(
    client: httpx.AsyncClient, state: AppState, admin: Account, flaky: Sometimes
) -> None:
    await fail_one(state, recipient="ana@example.com")

    data = await listed(client, admin)

    [job] = data["jobs"]
    assert set(job) == {
        "id",
        "name",
        "status",
        "attempts",
        "error",
        "firstFailedAt",
        "failedAt",
        "retriedAt",
    }
    assert job["id"].startswith("fjb_")
    assert job["name"] == "test.deliver"
    assert job["status"] == "failed"
    assert job["attempts"] == RETRIES
    assert job["error"] == "ConnectionError: the far side is down"
    assert ISO_Z.match(job["failedAt"]) and ISO_Z.match(job["firstFailedAt"])
    assert job["retriedAt"] is None
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 1, "pages": 1}


async def test_the_listing_never_shows_a_jobs_arguments(
    client: httpx.AsyncClient, state: AppState, admin: Account, flaky: Sometimes
) -> None:
    await fail_one(state, secret_link="https://app/reset-password?token=abc")

    response = await client.get("/api/admin/jobs", headers=admin.headers)

    assert "reset-password" not in response.text


async def test_one_failed_job_is_shown_by_id(
    client: httpx.AsyncClient, state: AppState, admin: Account, flaky: Sometimes
) -> None:
    await fail_one(state)
    [job] = (await listed(client, admin))["jobs"]

    response = await client.get(f"/api/admin/jobs/{job['id']}", headers=admin.headers)

    assert response.status_code == 200
    assert response.json() == {"success": True, "data": job}


async def test_an_unknown_failed_job_is_job_not_found(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await client.get("/api/admin/jobs/fjb_0000000000000000", headers=admin.headers)

    assert_error(response, 404, "JOB_NOT_FOUND")


async def test_a_retried_job_runs_again_and_leaves_the_list_once_it_succeeds(
    client: httpx.AsyncClient, state: AppState, admin: Account, flaky: Sometimes
) -> None:
    await fail_one(state, recipient="ana@example.com")
    [job] = (await listed(client, admin))["jobs"]
    flaky.broken = False

    response = await client.post(f"/api/admin/jobs/{job['id']}/retry", headers=admin.headers)

    assert response.status_code == 202, response.text
    retried = response.json()["data"]["job"]
    assert retried["id"] == job["id"]
    assert retried["status"] == "retrying"
    assert ISO_Z.match(retried["retriedAt"])
    await settle(state)
    assert flaky.done == [{"recipient": "ana@example.com"}]
    assert (await listed(client, admin))["jobs"] == []


async def test_a_retried_job_that_fails_again_is_failed_with_its_attempts_added_up(
    client: httpx.AsyncClient, state: AppState, admin: Account, flaky: Sometimes
) -> None:
    await fail_one(state)
    [job] = (await listed(client, admin))["jobs"]

    await client.post(f"/api/admin/jobs/{job['id']}/retry", headers=admin.headers)
    await settle(state)

    [again] = (await listed(client, admin))["jobs"]
    assert again["id"] == job["id"]
    assert again["status"] == "failed"
    assert again["attempts"] == 2 * RETRIES
    assert again["firstFailedAt"] == job["firstFailedAt"]


async def test_a_job_already_sent_again_is_a_conflict(
    client: httpx.AsyncClient, state: AppState, admin: Account, flaky: Sometimes
) -> None:
    await fail_one(state)
    [job] = (await listed(client, admin))["jobs"]
    await state.jobs.stop_worker()  # keeps the retried job waiting in the queue

    first = await client.post(f"/api/admin/jobs/{job['id']}/retry", headers=admin.headers)
    second = await client.post(f"/api/admin/jobs/{job['id']}/retry", headers=admin.headers)

    assert first.status_code == 202
    assert_error(second, 409, "CONFLICT")


async def test_the_list_is_narrowed_by_status(
    client: httpx.AsyncClient, state: AppState, admin: Account, flaky: Sometimes
) -> None:
    await fail_one(state, number=1)
    await fail_one(state, number=2)
    newest = (await listed(client, admin))["jobs"][0]
    await state.jobs.stop_worker()
    await client.post(f"/api/admin/jobs/{newest['id']}/retry", headers=admin.headers)

    retrying = await listed(client, admin, "?status=retrying")
    failed = await listed(client, admin, "?status=failed")

    assert [job["id"] for job in retrying["jobs"]] == [newest["id"]]
    assert len(failed["jobs"]) == 1 and failed["jobs"][0]["id"] != newest["id"]


async def test_an_unknown_status_is_a_validation_error(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await client.get("/api/admin/jobs?status=lost", headers=admin.headers)

    assert_error(response, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/admin/jobs"),
        ("GET", "/api/admin/jobs/fjb_0000000000000000"),
        ("POST", "/api/admin/jobs/fjb_0000000000000000/retry"),
    ],
)
async def test_someone_who_is_not_an_admin_is_refused(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    dancer = await register(client)

    anonymous = await client.request(method, path)
    signed_in = await client.request(method, path, headers=dancer.headers)

    assert_error(anonymous, 401, "AUTH_REQUIRED")
    assert_error(signed_in, 403, "UNAUTHORIZED")


async def test_the_admin_jobs_endpoints_are_documented(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/openapi.json")).json()["paths"]

    assert set(paths["/api/admin/jobs"]) == {"get"}
    assert set(paths["/api/admin/jobs/{job_id}"]) == {"get"}
    retry = paths["/api/admin/jobs/{job_id}/retry"]["post"]
    assert {"202", "401", "403", "404", "409"} <= set(retry["responses"])
