"""The outbound-HTTP guard: which URLs and addresses it refuses, and how it talks to a real
server on loopback (User-Agent, no redirects, timeouts, a bounded body)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from beatmachine.core.config import Settings
from beatmachine.core.outbound import (
    OutboundClient,
    OutboundConnectionError,
    OutboundRefused,
    OutboundTimeout,
    address_allowed,
    check_url,
    parse_networks,
    resolve,
)
from tests.http_receiver import (  # noqa: F401  (the receiver fixture)
    Answer,
    Receiver,
    receiver_fixture,
)
from tests.smtp_server import free_port

USER_AGENT = "BeatMachine-Test/1.0"
LOOPBACK = parse_networks(["127.0.0.0/8"])

REFUSED_HOSTS = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "127.0.0.1",
    "127.1.2.3",
    "169.254.169.254",
    "0.0.0.0",  # noqa: S104 (a URL refused, nothing bound)
    "100.64.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:10.0.0.1]",
    "[::127.0.0.1]",
    "[fe80::1]",
    "[fc00::1]",
    "[ff02::1]",
    "[2002:7f00:1::1]",
    "[64:ff9b::a00:1]",
    "[2001:db8::1]",
]


def client(**options: Any) -> OutboundClient:
    values: dict[str, Any] = {
        "user_agent": USER_AGENT,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        **options,
    }
    return OutboundClient(**values)


@pytest.fixture
async def allowed() -> AsyncIterator[OutboundClient]:
    """A client that may reach loopback (as the tests' setting allows)."""
    outbound = client(allowed_networks=LOOPBACK)
    yield outbound
    await outbound.aclose()


@pytest.fixture
async def strict() -> AsyncIterator[OutboundClient]:
    """A client with the defaults: public addresses only."""
    outbound = client()
    yield outbound
    await outbound.aclose()


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_a_url_with_a_literal_private_or_reserved_address_is_refused(host: str) -> None:
    with pytest.raises(OutboundRefused):
        check_url(f"http://{host}/hook")


@pytest.mark.parametrize("host", ["93.184.216.34", "[2606:2800:220:1:248:1893:25c8:1946]"])
def test_a_url_with_a_literal_public_address_passes(host: str) -> None:
    assert check_url(f"https://{host}/hook").scheme == "https"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "https:///hook",
        "https://user:secret@example.com/hook",
        "https://user@example.com/hook",
        "https://example.com:0/hook",
        "https://example.com:99999/hook",
        "example.com/hook",
    ],
)
def test_a_url_that_is_not_plain_http_to_a_host_is_refused(url: str) -> None:
    with pytest.raises(OutboundRefused):
        check_url(url)


def test_the_allowed_networks_let_loopback_through_in_either_form() -> None:
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), LOOPBACK)
    assert address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"), LOOPBACK)
    assert not address_allowed(ipaddress.ip_address("10.0.0.1"), LOOPBACK)


async def test_a_name_is_resolved_off_the_loop_and_every_address_checked() -> None:
    with pytest.raises(OutboundRefused, match=r"127\.0\.0\.1"):
        await resolve("localhost", 80)


async def test_a_name_that_does_not_resolve_is_a_connection_error() -> None:
    with pytest.raises(OutboundConnectionError):
        await resolve("no-such-host.invalid", 80)


async def test_a_host_name_that_resolves_to_loopback_is_refused_before_connecting(
    strict: OutboundClient, receiver: Receiver
) -> None:
    with pytest.raises(OutboundRefused):
        await strict.request("POST", f"http://localhost:{receiver.port}/hooks", max_body=100)

    # The refusal comes before a connection; one made would have been answered first.
    assert receiver.requests == []


async def test_ipv6_loopback_is_refused(strict: OutboundClient) -> None:
    with pytest.raises(OutboundRefused):
        await strict.request("GET", f"http://[::1]:{free_port()}/", max_body=100)


async def test_ipv4_mapped_loopback_is_refused(strict: OutboundClient, receiver: Receiver) -> None:
    with pytest.raises(OutboundRefused):
        await strict.request("GET", f"http://[::ffff:127.0.0.1]:{receiver.port}/", max_body=100)
    assert receiver.requests == []


async def test_an_allowed_request_reaches_the_server_with_the_fixed_user_agent(
    allowed: OutboundClient, receiver: Receiver
) -> None:
    response = await allowed.request(
        "POST", f"http://localhost:{receiver.port}/hooks", content=b"{}", max_body=100
    )

    assert response.status == 200
    assert response.body == b"ok"
    [request] = receiver.requests
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.body == b"{}"


async def test_a_redirect_is_not_followed(allowed: OutboundClient, receiver: Receiver) -> None:
    receiver.answer(302, b"", headers={"Location": f"http://127.0.0.1:{receiver.port}/next"})

    response = await allowed.request("POST", receiver.url, content=b"{}", max_body=100)

    assert response.status == 302
    assert [r.path for r in receiver.requests] == ["/hooks"]


async def test_a_server_that_does_not_answer_times_out(receiver: Receiver) -> None:
    receiver.answer(hold=True)
    outbound = client(allowed_networks=LOOPBACK, read_timeout=0.2)
    try:
        with pytest.raises(OutboundTimeout):
            await outbound.request("POST", receiver.url, content=b"{}", max_body=100)
    finally:
        await outbound.aclose()


async def test_only_the_first_bytes_of_a_long_answer_are_read(
    allowed: OutboundClient, receiver: Receiver
) -> None:
    receiver.answer_next(Answer(200, b"x" * 100_000))

    response = await allowed.request("POST", receiver.url, content=b"{}", max_body=64)

    assert response.body == b"x" * 64
    assert response.truncated is True


async def test_a_closed_port_is_a_connection_error(allowed: OutboundClient) -> None:
    with pytest.raises(OutboundConnectionError):
        await allowed.request("POST", f"http://127.0.0.1:{free_port()}/", max_body=64)


async def test_the_connection_goes_to_the_address_that_was_checked(
    allowed: OutboundClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A resolver that answers loopback once and a refused address after (rebinding):
    # the one answer checked is the one connected to, so the second is never asked for.
    answers = iter(["127.0.0.1", "10.0.0.1"])

    async def rebinding(host: str, port: int, **_kwargs: Any) -> list[Any]:
        address = next(answers)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", rebinding)

    response = await allowed.request(
        "POST", f"http://rebind.test:{receiver.port}/hooks", content=b"{}", max_body=64
    )

    assert response.status == 200
    assert receiver.requests[0].headers["Host"] == f"rebind.test:{receiver.port}"
    assert next(answers) == "10.0.0.1"


def test_a_bad_cidr_in_the_allowed_networks_setting_is_refused_at_start(tmp_path: Any) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, VAR_DIR=tmp_path, OUTBOUND_ALLOWED_NETWORKS="10.0.0.0/8,nope")  # type: ignore[call-arg]


def test_the_allowed_networks_setting_reads_comma_separated_cidrs(tmp_path: Any) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, VAR_DIR=tmp_path, OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8, ::1/128"
    )

    assert parse_networks(settings.outbound_allowed_networks) == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
