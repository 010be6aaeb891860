"""The URL guard: only public http(s) hosts, whatever form the address takes.

No test here reaches a non-loopback address: literal IPs need no DNS, "localhost" resolves
from /etc/hosts, and the .invalid top-level domain never resolves (RFC 6761).
"""

from __future__ import annotations

import ipaddress

import pytest
import trio

from conversation_service.adapters.llm.url_guard import (
    UnsafeModelURL,
    check_public_url,
    check_url_form,
    non_public_kind,
)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.254", "shared (CGNAT)"),
        ("::ffff:127.0.0.1", "loopback (127.0.0.1 inside IPv6)"),
        ("::ffff:169.254.169.254", "link-local (169.254.169.254 inside IPv6)"),
        ("::ffff:10.0.0.1", "private (10.0.0.1 inside IPv6)"),
        ("2002:7f00:1::", "loopback (127.0.0.1 inside IPv6)"),  # 6to4
        ("64:ff9b::a00:1", "private (10.0.0.1 inside IPv6)"),  # NAT64
    ],
)
def test_non_public_addresses_are_classified(address, kind):
    assert non_public_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111"]
)
def test_public_addresses_pass(address):
    assert non_public_kind(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1",
        "http://169.254.169.254/latest/meta-data/",
        "https://[::1]/v1",
        "https://[::ffff:10.0.0.1]/v1",
        "http://10.0.0.5/",
        "http://100.64.1.1/",
    ],
)
async def test_urls_with_non_public_literal_addresses_are_refused(url):
    with trio.fail_after(5), pytest.raises(UnsafeModelURL, match="is not public"):
        await check_public_url(url)


async def test_a_public_literal_address_passes_without_dns():
    with trio.fail_after(5):
        await check_public_url("https://8.8.8.8/v1")  # nothing is sent to it


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "must be http:// or https://"),
        ("file:///etc/passwd", "must be http:// or https://"),
        ("https://user:sk-secret@example.com/v1", "must not carry credentials"),
        ("https:///v1", "must name a host"),
        ("https://example.com:99999/", "port is invalid"),
    ],
)
async def test_malformed_urls_are_refused_without_quoting_them(url, reason):
    with trio.fail_after(5), pytest.raises(UnsafeModelURL, match=reason) as info:
        await check_public_url(url, allow_private=True)  # form checks hold even then

    assert "sk-secret" not in str(info.value)


@pytest.mark.parametrize("url", ["http://localhost:11434/v1", "http://127.0.0.1:11434/v1"])
async def test_loopback_hosts_are_refused(url):
    with trio.fail_after(5), pytest.raises(UnsafeModelURL, match="loopback"):
        await check_public_url(url)


async def test_a_name_is_judged_by_the_addresses_it_resolves_to():
    with trio.fail_after(5), pytest.raises(UnsafeModelURL) as info:
        await check_public_url("http://localhost/v1")

    assert "'localhost' (127.0.0.1) is not public (loopback)" in str(info.value)


async def test_a_name_that_does_not_resolve_is_refused():
    with trio.fail_after(10), pytest.raises(UnsafeModelURL, match="does not resolve"):
        await check_public_url("https://does-not-exist.invalid/v1")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/v1", "http://localhost:8000/v1"])
async def test_allow_private_lets_loopback_through(url):
    with trio.fail_after(5):
        await check_public_url(url, allow_private=True)


def test_the_form_check_needs_no_dns_and_returns_the_host():
    assert check_url_form("https://API.example.com/v1") == "api.example.com"
    with pytest.raises(UnsafeModelURL, match="link-local"):
        check_url_form("http://169.254.169.254/")


def test_unsafe_model_url_is_a_value_error():
    assert issubclass(UnsafeModelURL, ValueError)
