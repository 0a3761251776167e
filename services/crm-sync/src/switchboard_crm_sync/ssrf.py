"""The guard on client-supplied URLs (webhooks, Salesforce instances): no way into our network.

A URL must be `https` and every address its host resolves to must be public: not
loopback, private, link-local (cloud metadata at 169.254.169.254), shared, multicast or
reserved. The check runs when the URL is set and again before every request, and the
request then goes to the address just checked (with the name kept for TLS and `Host`),
so a DNS answer that changes in between (rebinding) cannot redirect it.
`CRM_SYNC_ALLOW_PRIVATE_URLS=true` lifts the rules for dev and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from switchboard_platform.inputs import is_public_address

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_LOCAL_NAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "instance-data"})


class UrlRefused(ValueError):
    """The URL breaks a rule above (the message names the rule, never the URL)."""


class HostUnresolved(OSError):
    """The host name did not resolve now (may be passing: retried when sending)."""


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host`."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise HostUnresolved("host name does not resolve") from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL and the address it is sent to."""

    url: str
    host: str
    address: IPAddress | None

    @property
    def request_url(self) -> str:
        """The URL with the checked address in place of the name."""
        if self.address is None:
            return self.url
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def host_header(self) -> str:
        """The `Host` header: the name (and port) the client gave."""
        return urlsplit(self.url).netloc

    @property
    def extensions(self) -> dict[str, str]:
        """httpx request extensions: TLS names and verifies the host, not the address."""
        return {"sni_hostname": self.host} if self.address is not None else {}


class UrlGuard:
    """Checks client-supplied URLs, at configuration time and before each request."""

    def __init__(self, *, allow_private: bool, resolver: Resolver = system_resolver) -> None:
        self.allow_private = allow_private
        self._resolve = resolver

    def check_syntax(self, url: str) -> SplitResult:
        """The parsed URL if its form is allowed; UrlRefused otherwise (no DNS)."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise UrlRefused("not a valid URL") from None
        schemes = ("https", "http") if self.allow_private else ("https",)
        if parts.scheme not in schemes or not host:
            raise UrlRefused(f"must be an {' or '.join(schemes)} URL with a host")
        if parts.username is not None or parts.password is not None:
            raise UrlRefused("must not carry credentials")
        if parts.fragment:
            raise UrlRefused("must not carry a fragment")
        name = host.rstrip(".").lower()
        if not self.allow_private and (name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES)):
            raise UrlRefused("must not point at a local or internal host")
        return parts

    async def target(self, url: str) -> Target:
        """The URL checked and resolved now; UrlRefused or HostUnresolved otherwise."""
        parts = self.check_syntax(url)
        host = parts.hostname or ""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = [literal] if literal is not None else await self._resolve(host, port)
        if not addresses:
            raise HostUnresolved("host name does not resolve")
        if not self.allow_private and not all(is_public_address(a) for a in addresses):
            raise UrlRefused(
                "must not point at a loopback, private, link-local or metadata address"
            )
        return Target(url=url, host=host, address=addresses[0] if literal is None else None)
