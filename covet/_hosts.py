"""Parse and check ``Host`` header values.

The ``Host`` header is client input that frameworks feed into absolute URLs,
password-reset links and cache keys, so covet validates it against a strict
grammar before trusting it (RFC 3986 section 3.2.2 / RFC 9110 section 7.2),
then against an allowlist of patterns in the style of Django's
``ALLOWED_HOSTS``.

Both functions run on every request, so the grammar is one precompiled
regular expression and pattern lists compile once into a :class:`HostPatterns`
with an O(1) exact-match set plus a short suffix tuple.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import TYPE_CHECKING

from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from covet.types import Scope, Send

__all__ = (
    "INVALID_HOST",
    "HostGuard",
    "HostPatterns",
    "find_host",
    "host_allowed",
    "reject_host",
    "split_host",
)

# RFC 1035 limits a full domain name to 255 octets; a port adds at most ":65535".
_MAX_HOST_LENGTH = 255
_MAX_VALUE_LENGTH = _MAX_HOST_LENGTH + 6

# A DNS label: letters, digits and inner hyphens, at most 63 characters
# (RFC 1123 section 2.1). "_" is tolerated because real internal names
# (Docker service names, SRV-style hosts) use it and it carries no syntax.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_RE = re.compile(
    r"(?:"
    rf"(?P<name>{_LABEL}(?:\.{_LABEL})*\.?)"  # reg-name or IPv4, optional root dot
    r"|\[(?P<ipv6>[0-9a-f:.]+)\]"  # bracketed IPv6 literal (no zone id, RFC 6874)
    r")"
    r"(?::(?P<port>[0-9]{1,5}))?",
    # ASCII: without it IGNORECASE lets [a-z] match U+212A KELVIN SIGN and friends.
    re.IGNORECASE | re.ASCII,
)
# WHATWG URL "ends in a number": a name whose last label is numeric is parsed
# as IPv4 by browsers, so it must be a valid dotted quad or it is rejected.
_NUMERIC_LABEL_RE = re.compile(r"(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)$", re.ASCII)


@functools.lru_cache(maxsize=1024)
def split_host(value: str) -> tuple[str, int | None] | None:
    """Split a ``Host`` header value into a lowercase host and an optional port.

    The host is a DNS name (``example.com``; a trailing root dot is removed),
    a dotted-quad IPv4 address, or a bracketed IPv6 literal, returned in its
    canonical compressed form with brackets (``[::1]``). The port, when
    present, is 1-65535 written with digits only.

    Args:
        value: The raw header value, for example ``"Example.COM:8000"``.

    Returns:
        ``(host, port)`` such as ``("example.com", 8000)``, or ``None`` when the
        value is not a valid ``host[:port]``: empty, too long, with userinfo,
        a path, a query, whitespace, or an out-of-range port.
    """
    if not value or len(value) > _MAX_VALUE_LENGTH:
        return None
    match = _HOST_RE.fullmatch(value)
    if match is None:
        return None
    name, ipv6, port_text = match.group("name", "ipv6", "port")
    port: int | None = None
    if port_text is not None:
        port = int(port_text)
        if not 0 < port <= 65535:
            return None
    if ipv6 is not None:
        try:
            address = ipaddress.IPv6Address(ipv6)
        except ValueError:
            return None
        return f"[{address.compressed}]", port
    host = name.lower().removesuffix(".")
    if not host or len(host) > _MAX_HOST_LENGTH:
        return None
    if _NUMERIC_LABEL_RE.search(host) is not None:
        try:
            host = str(ipaddress.IPv4Address(host))
        except ValueError:
            return None
    return host, port


def _compile_pattern(pattern: str) -> tuple[str, str]:
    """Split ``pattern`` into its wildcard prefix and a host in split_host() form.

    Returns:
        ``("*", "")`` for any host, otherwise ``(prefix, host)`` where prefix
        is ``""`` (exact), ``"."`` (domain and subdomains) or ``"*."``
        (subdomains only).
    """
    text = pattern.strip()
    if text == "*":
        return "*", ""
    prefix = next((p for p in ("*.", ".") if text.startswith(p)), "")
    rest = text[len(prefix) :]
    if ":" in rest and not rest.startswith("["):
        rest = f"[{rest}]"  # an IPv6 address written without brackets
    parsed = split_host(rest)
    if parsed is None or parsed[1] is not None or (prefix and parsed[0].startswith("[")):
        raise ImproperlyConfigured(
            f"Allowed host pattern {pattern!r} is not supported. Use a host without port "
            "or scheme ('example.com', '127.0.0.1', '[::1]'), a subdomain wildcard "
            "('*.example.com' or '.example.com'), or '*' for any host."
        )
    return prefix, parsed[0]


class HostPatterns:
    """A compiled allowlist of host patterns.

    Patterns follow Django's ``ALLOWED_HOSTS``:

    - ``"example.com"`` matches exactly that host;
    - ``".example.com"`` matches ``example.com`` and every subdomain;
    - ``"*.example.com"`` matches every subdomain but not ``example.com``;
    - ``"*"`` matches any host.

    Matching is case-insensitive and ignores a trailing root dot. IPv6
    patterns may be written with or without brackets.

    Args:
        patterns: The patterns to allow.

    Raises:
        ImproperlyConfigured: If a pattern is not a valid host, carries a port
            or scheme, or uses ``*`` anywhere but as the whole pattern or a
            leading ``*.`` label.
    """

    __slots__ = ("_any", "_exact", "_suffixes", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        if isinstance(patterns, str):
            raise ImproperlyConfigured(
                f"Allowed hosts must be a sequence of patterns, not the string {patterns!r}. "
                f"Wrap it in a list: [{patterns!r}]."
            )
        self.patterns: tuple[str, ...] = tuple(patterns)
        exact: set[str] = set()
        suffixes: list[str] = []
        match_any = False
        for pattern in self.patterns:
            prefix, host = _compile_pattern(pattern)
            if prefix == "*":
                match_any = True
            elif prefix == "*.":
                suffixes.append("." + host)
            elif prefix == ".":
                exact.add(host)
                suffixes.append("." + host)
            else:
                exact.add(host)
        self._any = match_any
        self._exact = frozenset(exact)
        # str.endswith() with a tuple checks every suffix in one C call.
        self._suffixes = tuple(suffixes)

    @property
    def allows_any(self) -> bool:
        """Return whether the patterns include ``*``, which allows every host."""
        return self._any

    def match(self, host: str) -> bool:
        """Return whether ``host`` is allowed.

        Args:
            host: A host as returned by :func:`split_host` (lowercase, no port).
                Other spellings are normalised first, which costs a little more.

        Returns:
            ``True`` when one of the patterns matches ``host``.
        """
        if self._any:
            return True
        if host in self._exact:
            return True
        if not host.islower() or host.endswith("."):
            host = host.lower().removesuffix(".")
            if host in self._exact:
                return True
        return bool(self._suffixes) and host.endswith(self._suffixes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.patterns)!r})"


@functools.lru_cache(maxsize=64)
def _compile(patterns: tuple[str, ...]) -> HostPatterns:
    return HostPatterns(patterns)


def host_allowed(host: str, patterns: Sequence[str] | HostPatterns) -> bool:
    """Return whether ``host`` matches one of ``patterns``.

    The pattern list is compiled once and cached, so calling this on every
    request is cheap. Code that holds its own configuration can build a
    :class:`HostPatterns` once and call :meth:`HostPatterns.match` instead.

    Args:
        host: A host as returned by :func:`split_host`, for example ``"example.com"``.
        patterns: Allowed host patterns (see :class:`HostPatterns`), or an
            already compiled :class:`HostPatterns`.

    Returns:
        ``True`` when the host is allowed.

    Raises:
        ImproperlyConfigured: If a pattern is malformed.
    """
    if isinstance(patterns, HostPatterns):
        return patterns.match(host)
    return _compile(tuple(patterns)).match(host)


#: What a refused Host gets: the same words from the app and the middleware.
INVALID_HOST = b"Invalid Host header"


def find_host(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes | None, bool]:
    """Return the one ``Host`` header value of a request (None when absent).

    Returns:
        ``(value, duplicated)``: ``duplicated`` is True when the request carries
        more than one ``Host`` header, which RFC 9112 section 3.2 answers with 400.
    """
    host: bytes | None = None
    for name, value in headers:
        if name == b"host":
            if host is not None:
                return host, True
            host = value
    return host, False


class HostGuard:
    """Decide whether a request's ``Host`` is acceptable, remembering accepted values.

    Used by :class:`covet.Covet` (``allowed_hosts=``) and by
    :class:`~covet.middleware.TrustedHostMiddleware`, so both apply the same
    grammar, the same allowlist rules and the same answer.

    Args:
        patterns: The allowlist, or ``None`` to accept any well-formed host.
    """

    __slots__ = ("accepted", "patterns")

    #: Accepted values remembered; the bound keeps a flood of distinct
    #: (wildcard-matching) hosts from growing memory.
    CACHE_SIZE = 512

    def __init__(self, patterns: HostPatterns | None) -> None:
        self.patterns = patterns
        # Hot path: callers test `value in guard.accepted` before calling allows().
        self.accepted: set[bytes | None] = set()

    def allows(self, value: bytes | None) -> bool:
        """Decide on one Host header value (None when absent); remember it when accepted.

        Refused values are not remembered: a flood of distinct bogus hosts must
        not evict the real ones, and each refusal is cheap to decide again.
        """
        patterns = self.patterns
        if value is None:
            # HTTP/1.0 may omit Host: acceptable unless an allowlist must be checked.
            verdict = patterns is None or patterns.allows_any
        else:
            parsed = split_host(value.decode("latin-1"))
            verdict = parsed is not None and (patterns is None or patterns.match(parsed[0]))
        if verdict:
            if len(self.accepted) >= self.CACHE_SIZE:
                self.accepted.clear()
            self.accepted.add(value)
        return verdict


async def reject_host(scope: Scope, send: Send) -> None:
    """Answer a request whose Host header is malformed, repeated or not allowed.

    HTTP gets ``400 Invalid Host header``; a websocket handshake is closed
    before accept (code 1008), which makes the server refuse it with 403.
    """
    if scope["type"] == "websocket":
        await send(
            {"type": "websocket.close", "code": 1008, "reason": INVALID_HOST.decode("ascii")}
        )
        return
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(INVALID_HOST)),
            ],
        }
    )
    body = b"" if scope.get("method") == "HEAD" else INVALID_HOST
    await send({"type": "http.response.body", "body": body})
