"""CapabilityPolicy: what a capability executor may reach on an agent's behalf.

The policy is a frozen value the host builds; the executor consults it before every attempt
and again when it opens a connection::

    policy = CapabilityPolicy(hosts={"api.example.com", "*.wikipedia.org"},
                              secrets={"api.example.com": {"Authorization": "Bearer ..."}})

Rules, in the order ``check_url`` applies them:

1. the URL parses and has a host; its scheme is in ``schemes`` (default ``{"https"}``);
2. the host is in ``hosts``: an exact name (case-insensitive), an IP literal, or a pattern
   ``*.example.com`` matching any name below ``example.com`` (not ``example.com`` itself).
   An empty ``hosts`` denies everything;
3. an IP-literal host must be a public address (see rule 4).

Rule 4, after DNS resolution (``resolve``): EVERY address the name resolves to must be a
public unicast address. Loopback, private, link-local, multicast, reserved, unspecified
and shared (CGNAT) ranges, and IPv6 forms embedding them (IPv4-mapped, NAT64 is not
special-cased), are denied unless ``allow_private=True`` or the address itself is written
in ``hosts`` as an IP literal (``hosts={"127.0.0.1"}`` allows a test server; a name that
resolves to 127.0.0.1, such as ``localhost``, is still denied). The executor then connects
to one of the checked addresses, never to a fresh resolution, which defeats DNS rebinding.

Secrets: ``secrets`` maps an exact host name to headers the executor adds (replacing any
header of the same name the agent wrote) when it sends a request to that host. They live
only in the policy: never in a request, pending, response, error or status file. The policy
``repr`` hides them. Out of scope: a server that echoes a secret back in its response body
or headers; such a response is shown to the agent as it arrived.

Thread safety: a CapabilityPolicy is immutable and may be shared freely.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from typing import Final

import attrs
import httpx
import trio

from ..errors import FsError, InvalidArgument, PermissionDenied

__all__ = ["CapabilityPolicy", "is_public_address", "url_origin", "valid_header"]

Secrets = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


def _lower_set(values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise InvalidArgument(f"expected a set of names, not the str {values!r}")
    return frozenset(v.strip().lower().rstrip(".") for v in values)


def _secrets(value: Mapping[str, Mapping[str, str]] | Secrets) -> Secrets:
    items = value.items() if isinstance(value, Mapping) else value
    out: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for host, headers in items:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        checked: list[tuple[str, str]] = []
        for name, val in pairs:
            if not isinstance(name, str) or not isinstance(val, str):
                raise InvalidArgument(f"secret headers for {host!r} must be str: str")
            if not valid_header(name, val):  # the value is not shown: it is a secret
                raise InvalidArgument(f"secret header {name!r} for {host!r} is not a valid "
                                      "HTTP header (name a token, value without CR LF NUL)")
            checked.append((name, val))
        out.append((host.strip().lower().rstrip("."), tuple(checked)))
    return tuple(sorted(out))


_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE: Final = re.compile(r"[\r\n\x00]")


def valid_header(name: str, value: str) -> bool:
    """Whether ``name: value`` is a header httpx will send as it is."""
    return _TOKEN.fullmatch(name) is not None and _BAD_VALUE.search(value) is None


def _positive(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value <= 0:
        raise InvalidArgument(f"{attribute.name} must be positive, not {value!r}")


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``ip`` is a public unicast address (see the module docstring, rule 4)."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return is_public_address(mapped)
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                or ip.is_reserved or ip.is_unspecified
                or (isinstance(ip, ipaddress.IPv4Address)
                    and ip in ipaddress.IPv4Network("100.64.0.0/10")))


@functools.lru_cache(maxsize=4096)
def url_origin(url: str) -> tuple[str, str]:
    """``(scheme, host)`` of ``url``, lower-case (cached: every attempt checks the URL).

    Raises:
        InvalidArgument: ``url`` does not parse.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as e:
        raise InvalidArgument(f"invalid URL {url!r}: {e}") from None
    return parsed.scheme.lower(), parsed.host.lower()


def _parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


@attrs.frozen
class CapabilityPolicy:
    """The network allowlist, limits and injected secrets of an agent's capabilities.

    ``max_request_bytes`` caps a request body, ``max_response_bytes`` a (decoded) response
    body, ``max_connections`` the simultaneous requests of an executor using this policy.
    """

    schemes: frozenset[str] = attrs.field(default=frozenset({"https"}), converter=_lower_set)
    hosts: frozenset[str] = attrs.field(default=frozenset(), converter=_lower_set)
    allow_private: bool = False
    max_request_bytes: int = attrs.field(default=10 << 20, validator=_positive)
    max_response_bytes: int = attrs.field(default=10 << 20, validator=_positive)
    max_connections: int = attrs.field(default=10, validator=_positive)
    secrets: Secrets = attrs.field(default=(), converter=_secrets, repr=False)

    # -- names ----------------------------------------------------------------------------

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` matches ``hosts`` (rule 2); addresses are not checked here."""
        host = host.lower().rstrip(".")
        if host in self.hosts:
            return True
        return any(p.startswith("*.") and host.endswith(p[1:]) and len(host) > len(p) - 1
                   for p in self.hosts)

    def check_url(self, url: str) -> None:
        """Check rules 1-3 for ``url``.

        Raises:
            PermissionDenied: naming ``url`` and the rule it breaks.
        """
        try:
            scheme, host = url_origin(url)
        except InvalidArgument as e:
            raise PermissionDenied(url, str(e)) from None
        if not host:
            raise PermissionDenied(url, f"URL {url!r} has no host")
        if scheme not in self.schemes:
            allowed = ", ".join(sorted(self.schemes)) or "none"
            raise PermissionDenied(
                url, f"scheme {scheme!r} of {url!r} is not allowed (allowed: {allowed})")
        if not self.host_allowed(host):
            raise PermissionDenied(url, f"host {host!r} of {url!r} is not in the allowlist")
        ip = _parse_ip(host)
        if ip is not None:
            self.check_address(host, ip, url)

    # -- addresses ------------------------------------------------------------------------

    def check_address(self, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
                      url: str | None = None) -> None:
        """Check rule 4 for one address ``ip`` that ``host`` resolved to.

        Raises:
            PermissionDenied: a non-public address that is neither allowed by
                ``allow_private`` nor written in ``hosts`` as an IP literal.
        """
        if self.allow_private or is_public_address(ip) or str(ip) in self.hosts:
            return
        what = f"host {host!r}" + (f" of {url!r}" if url else "")
        raise PermissionDenied(url or host,
                               f"{what} resolves to the non-public address {ip}, which is "
                               "denied (allow_private is off and the address is not allowed "
                               "by IP)")

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` (under trio) and check every address it gives (rule 4).

        Returns the addresses, in resolver order, to connect to instead of ``host``.

        Raises:
            PermissionDenied: ``host`` is not allowed, or one of its addresses is denied.
            FsError: ``host`` does not resolve (EIO; a transient failure, worth a retry).
        """
        if not self.host_allowed(host):
            raise PermissionDenied(host, f"host {host!r} is not in the allowlist")
        try:
            infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise FsError(host, f"cannot resolve host {host!r}: {e}") from None
        addresses: list[str] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            self.check_address(host, ip)
            if str(sockaddr[0]) not in addresses:
                addresses.append(str(sockaddr[0]))
        if not addresses:
            raise PermissionDenied(host, f"host {host!r} resolves to no address")
        return addresses

    # -- secrets ----------------------------------------------------------------------------

    def secret_headers(self, host: str) -> dict[str, str]:
        """The headers to inject into a request to ``host`` (exact name match)."""
        host = host.lower().rstrip(".")
        for name, headers in self.secrets:
            if name == host:
                return dict(headers)
        return {}
