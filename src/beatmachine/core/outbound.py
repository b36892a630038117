"""Outgoing HTTP requests to addresses that users or admins chose (webhook endpoints,
avatar URLs): a guard against server-side request forgery.

- Only `http` and `https` URLs with a host and no credentials in them.
- Private, loopback, link-local, multicast, unspecified and reserved addresses are refused,
  also when written in another form (IPv4-mapped `::ffff:127.0.0.1`, 6to4, NAT64,
  IPv4-compatible), unless they fall in the `allowed_networks` (`OUTBOUND_ALLOWED_NETWORKS`).
- The host name is resolved once, with the event loop's `getaddrinfo`; every address it
  resolves to must pass, and the connection is made to the address that was checked (a
  network backend of httpcore does both), so a DNS answer that changes between the check
  and the connection (rebinding) cannot get around the guard. TLS still verifies the
  certificate against the host name of the URL.
- Connect and read timeouts, and a deadline for the whole request; no proxies from the
  environment; redirects never followed (a 3xx is handed back as it is); at most
  `max_body` bytes of the answer are read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# NAT64's well-known prefix: the last 32 bits are an IPv4 address (RFC 6052).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# The deprecated IPv4-compatible form `::a.b.c.d` (RFC 4291 2.5.5.1).
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
SCHEMES = ("http", "https")


class OutboundError(Exception):
    """A request that could not be made or answered; `kind` says why (`refused`,
    `timeout`, `connection`)."""

    kind = "connection"


class OutboundRefused(OutboundError):
    """The destination is not allowed (its URL, or an address its host resolves to)."""

    kind = "refused"


class OutboundTimeout(OutboundError):
    kind = "timeout"


class OutboundConnectionError(OutboundError):
    kind = "connection"


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (`127.0.0.0/8`, `::1/128`) as networks; a bad one raises `ValueError`."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is written as one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _public(address: IPAddress) -> bool:
    if (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or not address.is_global
    ):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return _public(embedded)
    return True


def address_allowed(address: IPAddress, allowed_networks: Sequence[IPNetwork] = ()) -> bool:
    """Whether a request may go to `address`: a public address, or one inside
    `allowed_networks` (in any of its written forms)."""
    forms: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            forms.append(embedded)
    if any(form in network for form in forms for network in allowed_networks):
        return True
    return _public(address)


def literal_address(host: str) -> IPAddress | None:
    """The IP address `host` is written as (`10.0.0.1`, `::1`, `[::1]`), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: str, allowed_networks: Sequence[IPNetwork] = ()) -> SplitResult:
    """Parse an outgoing URL, or raise `OutboundRefused` saying what is wrong with it:
    not http(s), no host, credentials in it, a bad port, or a literal IP address that is
    not allowed. Names are resolved (and checked) only when a request is made."""
    if any(char.isspace() or not char.isprintable() for char in url):
        raise OutboundRefused("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise OutboundRefused("must be a valid URL") from None
    if parts.scheme not in SCHEMES:
        raise OutboundRefused("must be an http or https URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise OutboundRefused("must not hold credentials")
    host = parts.hostname
    if not host:
        raise OutboundRefused("must name a host")
    if port == 0:
        raise OutboundRefused("must not use port 0")
    address = literal_address(host)
    if address is not None and not address_allowed(address, allowed_networks):
        raise OutboundRefused("must not point to a private, loopback or reserved address")
    return parts


async def resolve(
    host: str, port: int, allowed_networks: Sequence[IPNetwork] = ()
) -> list[IPAddress]:
    """The addresses `host` resolves to (without blocking the event loop), every one of
    them allowed; otherwise `OutboundRefused` (or `OutboundConnectionError` when the name
    does not resolve)."""
    literal = literal_address(host)
    if literal is not None:
        found = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OutboundConnectionError(f"cannot resolve {host!r}: {exc}") from None
        found = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in found:
                found.append(address)
    refused = [str(a) for a in found if not address_allowed(a, allowed_networks)]
    if refused or not found:
        raise OutboundRefused(
            f"{host!r} resolves to an address that is not allowed ({', '.join(refused)})"
        )
    return found


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the guard in front of every connection: the host
    is resolved and checked here, and the connection goes to the address checked."""

    def __init__(self, allowed_networks: Sequence[IPNetwork]) -> None:
        self._allowed = tuple(allowed_networks)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve(host, port, self._allowed)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host!r} took too long") from None
        last: Exception | None = None
        for address in addresses:
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
            try:
                return await self._inner.connect_tcp(
                    str(address), port, left, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, allowed_networks: Sequence[IPNetwork]) -> None:
        super().__init__(retries=0, http2=False)
        # The pool httpx made, again with the guarded backend (httpx takes no backend).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            retries=0,
            network_backend=_GuardedBackend(allowed_networks),
        )


@dataclass(frozen=True)
class OutboundResponse:
    """What came back: the status, the headers, the first `max_body` bytes of the body
    (`truncated` when there was more) and how long the request took."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool
    duration_ms: int


class OutboundClient:
    """Guarded outgoing requests (see the module's docstring); one per process, closed
    with `aclose`."""

    def __init__(
        self,
        *,
        user_agent: str,
        connect_timeout: float,
        read_timeout: float,
        allowed_networks: Sequence[IPNetwork] = (),
    ) -> None:
        self.allowed_networks = tuple(allowed_networks)
        self._deadline = connect_timeout + read_timeout
        self._client = httpx.AsyncClient(
            transport=_GuardedTransport(self.allowed_networks),
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=read_timeout
            ),
            # identity: the bounded read below counts the bytes as they come, not inflated.
            headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
            follow_redirects=False,
            trust_env=False,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        max_body: int,
    ) -> OutboundResponse:
        """Send one request; any answer (a 3xx or 5xx too) comes back as a response, a
        refused destination, a timeout or a connection failure raises an `OutboundError`."""
        check_url(url, self.allowed_networks)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._deadline):
                return await self._send(method, url, content, headers, max_body, started)
        except TimeoutError:
            raise OutboundTimeout(f"no answer within {self._deadline:g} s") from None
        except httpx.TimeoutException as exc:
            raise OutboundTimeout(f"timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise OutboundConnectionError(f"{type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise OutboundConnectionError(f"{type(exc).__name__}: {exc}") from None

    async def _send(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        max_body: int,
        started: float,
    ) -> OutboundResponse:
        try:
            request = self._client.build_request(method, url, content=content, headers=headers)
        except httpx.InvalidURL:
            raise OutboundRefused("must be a valid URL") from None
        response = await self._client.send(request, stream=True)
        try:
            body = bytearray()
            truncated = False
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > max_body:
                    truncated = True
                    del body[max_body:]
                    break
        finally:
            await response.aclose()
        return OutboundResponse(
            status=response.status_code,
            headers=dict(response.headers),
            body=bytes(body),
            truncated=truncated,
            duration_ms=round((time.monotonic() - started) * 1000),
        )

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
