"""The SSRF guard: which URLs pass, and requests pinned to the address that was checked."""

from __future__ import annotations

import ipaddress

import pytest

from switchboard_crm_sync.ssrf import IPAddress, UrlGuard, UrlRefused


def resolving_to(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in addresses]

    return resolve


async def test_a_public_name_is_pinned_to_its_checked_address() -> None:
    guard = UrlGuard(allow_private=False, resolver=resolving_to("93.184.216.34"))
    target = await guard.target("https://hooks.example.com:8443/in?x=1")
    assert target.request_url == "https://93.184.216.34:8443/in?x=1"
    assert target.host_header == "hooks.example.com:8443"
    assert target.extensions == {"sni_hostname": "hooks.example.com"}  # TLS checks the name


async def test_ipv6_addresses_are_bracketed() -> None:
    guard = UrlGuard(allow_private=False, resolver=resolving_to("2606:2800:220:1::1"))
    target = await guard.target("https://hooks.example.com/in")
    assert target.request_url == "https://[2606:2800:220:1::1]/in"


@pytest.mark.parametrize(
    "addresses",
    [
        ("127.0.0.1",),
        ("10.0.0.1",),
        ("169.254.169.254",),
        ("100.100.100.200",),
        ("fd00::1",),
        ("93.184.216.34", "192.168.1.1"),
    ],
)
async def test_a_name_with_any_private_address_is_refused(addresses: tuple[str, ...]) -> None:
    guard = UrlGuard(allow_private=False, resolver=resolving_to(*addresses))
    with pytest.raises(UrlRefused):
        await guard.target("https://hooks.example.com/in")


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com",
        "ftp://hooks.example.com",
        "https://",
        "https://a:b@x.example",
        "https://x.example/#frag",
        "https://host.internal/",
        "https://x.example:notaport/",
    ],
)
def test_forms_that_are_refused_before_any_lookup(url: str) -> None:
    with pytest.raises(UrlRefused):
        UrlGuard(allow_private=False).check_syntax(url)


async def test_dev_and_tests_may_use_http_and_loopback() -> None:
    guard = UrlGuard(allow_private=True, resolver=resolving_to("127.0.0.1"))
    target = await guard.target("http://localhost:8080/hook")
    assert target.request_url == "http://127.0.0.1:8080/hook"
    literal = await guard.target("http://127.0.0.1:9/x")
    assert literal.request_url == "http://127.0.0.1:9/x"
    assert literal.extensions == {}
