"""Refusing model URLs that reach into the service's own network (server-side request forgery).

An organisation may register a model by URL; the service then makes requests to that URL from
inside its network. Unless the deployment allows it, such a URL must name a public host: not
loopback, a private range, link-local (169.254.169.254 is the cloud metadata service), or any
other address that is not globally routable, however it is written (IPv4-mapped IPv6, a name
resolving there). Names are resolved again before every request, so that a name that changes
its address after the first check (DNS rebinding) is caught at that request.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import trio

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: inside someone's network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 addresses seen through a NAT64 gateway
_KINDS = (
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local", lambda ip: ip.is_link_local),
    ("unspecified", lambda ip: ip.is_unspecified),
    ("multicast", lambda ip: ip.is_multicast),
    ("reserved", lambda ip: ip.is_reserved),
    ("private", lambda ip: ip.is_private),
    ("shared (CGNAT)", lambda ip: ip in _SHARED),
    ("not globally routable", lambda ip: not ip.is_global),
)
RESOLVE_TIMEOUT = 5.0  # seconds; a name that takes longer is refused


class UnsafeModelURL(ValueError):
    """A model URL the service will not request, and why."""


def non_public_kind(ip: IPAddress) -> str | None:
    """What makes `ip` unfit for outbound requests ("loopback", ...), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            kind = non_public_kind(embedded)
            return None if kind is None else f"{kind} ({embedded} inside IPv6)"
    for kind, applies in _KINDS:
        if applies(ip):
            return kind
    return None


def check_url_form(url: str, *, allow_private: bool = False) -> str:
    """The URL's host, once the checks that need no DNS have passed; else UnsafeModelURL.

    The URL is not quoted back: it may carry credentials.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeModelURL(f"a model URL must be http:// or https://, not {parts.scheme!r}")
    if parts.username is not None or parts.password is not None:
        raise UnsafeModelURL("a model URL must not carry credentials; give the key separately")
    try:
        parts.port  # noqa: B018 - it raises for a port that is not a number in range
    except ValueError as e:
        raise UnsafeModelURL(f"the model URL's port is invalid: {e}") from None
    host = parts.hostname
    if not host:
        raise UnsafeModelURL("a model URL must name a host")
    ip = _literal(host)
    if ip is not None and not allow_private:
        _refuse_non_public(host, ip)
    return host


async def check_public_url(url: str, *, allow_private: bool = False) -> None:
    """Raise UnsafeModelURL unless `url` is http(s), has no credentials, and its host is public.

    A name must resolve, and to public addresses only. `allow_private` (a deployment whose
    models run on its own network) keeps the form checks and skips the address ones.
    """
    host = check_url_form(url, allow_private=allow_private)
    if allow_private or _literal(host) is not None:
        return
    with trio.move_on_after(RESOLVE_TIMEOUT):
        try:
            found = await trio.socket.getaddrinfo(host, None, type=trio.socket.SOCK_STREAM)
        except (OSError, ValueError) as e:  # gaierror is an OSError; a bad IDNA name a ValueError
            raise UnsafeModelURL(f"the model host {host!r} does not resolve: {e}") from None
        if not found:
            raise UnsafeModelURL(f"the model host {host!r} resolves to no address")
        for *_, address in found:
            _refuse_non_public(host, ipaddress.ip_address(address[0]))
        return
    raise UnsafeModelURL(f"the model host {host!r} did not resolve within {RESOLVE_TIMEOUT:g}s")


def _refuse_non_public(host: str, ip: IPAddress) -> None:
    kind = non_public_kind(ip)
    if kind is not None:
        where = str(ip) if host == str(ip) else f"{host!r} ({ip})"
        raise UnsafeModelURL(f"the model host {where} is not public ({kind})")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
