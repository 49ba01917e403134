"""Cookies: the one place a ``Set-Cookie`` header is built and checked.

:meth:`covet.responses.Response.set_cookie` adds one to a response;
middleware that writes raw ASGI headers (sessions, CSRF) calls
:func:`cookie_header`. Either way the name, value and attributes pass the same
RFC 6265 checks, and combinations browsers reject are refused up front.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Literal

__all__ = ("cookie_header", "format_cookie")

# Expires of a deleted cookie.
_COOKIE_EPOCH = datetime.fromtimestamp(0, tz=UTC)


_COOKIE_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COOKIE_VALUE_RE = re.compile(
    r'[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*|"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"'
)
_COOKIE_ATTR_FORBIDDEN_RE = re.compile(r"[\x00-\x1f\x7f;]")
_SAMESITE_VALUES = {"lax": "Lax", "strict": "Strict", "none": "None"}


def format_cookie(
    key: str,
    value: str = "",
    *,
    max_age: int | None = None,
    expires: datetime | float | None = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = True,
    samesite: Literal["lax", "strict", "none"] | None = "lax",
    partitioned: bool = False,
) -> str:
    """Return the value of a ``Set-Cookie`` header, validated.

    :meth:`Response.set_cookie` adds it to a response; middleware that writes
    raw ASGI headers (sessions, CSRF) uses it directly, so every cookie covet
    sets is checked by the same rules.

    Args:
        key: The cookie name, an RFC 6265 token.
        value: The value; characters outside RFC 6265 ``cookie-octet`` (space, comma,
            semicolon, backslash, double quote, non-ASCII) are refused, so encode the
            value first (URL-encoding or base64).
        max_age: Lifetime in seconds (``Max-Age``); ``0`` expires it now.
        expires: When it expires: an aware ``datetime`` (naive ones are taken as
            UTC), or a number of seconds from now.
        path: The ``Path`` attribute; ``None`` leaves it out.
        domain: The ``Domain`` attribute; ``None`` leaves it out (host-only cookie).
        secure: Send only over HTTPS (``Secure``).
        httponly: Hide from JavaScript (``HttpOnly``); on by default.
        samesite: ``"lax"`` (default), ``"strict"``, ``"none"`` or ``None`` to omit.
        partitioned: Add ``Partitioned`` (CHIPS); requires ``secure=True``.

    Returns:
        The header value, for example ``"sid=abc; Path=/; HttpOnly; SameSite=lax"``.

    Raises:
        ValueError: If the name, value or an attribute is invalid, or the
            combination is one browsers reject.
    """
    if not _COOKIE_NAME_RE.fullmatch(key):
        raise ValueError(
            f"Invalid cookie name {key!r}. Use letters, digits and !#$%&'*+-.^_`|~ only."
        )
    if not _COOKIE_VALUE_RE.fullmatch(value):
        raise ValueError(
            f"Invalid cookie value {value!r}: spaces, commas, semicolons, backslashes, "
            "double quotes, control and non-ASCII characters are not allowed. "
            "Encode the value first, e.g. with urllib.parse.quote() or base64."
        )
    samesite_value: str | None = None
    if samesite is not None:
        samesite_value = _SAMESITE_VALUES.get(str(samesite).lower())
        if samesite_value is None:
            raise ValueError(
                f"Invalid samesite value {samesite!r}. Use 'lax', 'strict', 'none' or None."
            )
        if samesite_value == "None" and not secure:
            raise ValueError(
                f"Cookie {key!r} has samesite='none' without secure=True, which browsers "
                "reject. Pass secure=True."
            )
    if partitioned and not secure:
        raise ValueError(
            f"Cookie {key!r} is partitioned without secure=True, which browsers reject. "
            "Pass secure=True."
        )
    if key.startswith("__Secure-") and not secure:
        raise ValueError(f"Cookie {key!r} has the __Secure- prefix and needs secure=True.")
    if key.startswith("__Host-") and (not secure or path != "/" or domain is not None):
        raise ValueError(
            f"Cookie {key!r} has the __Host- prefix and needs secure=True, path='/' and no domain."
        )
    parts = [f"{key}={value}"]
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if expires is not None:
        parts.append(f"Expires={_cookie_date(expires)}")
    for name, attribute in (("Path", path), ("Domain", domain)):
        if attribute is None:
            continue
        if _COOKIE_ATTR_FORBIDDEN_RE.search(attribute):
            raise ValueError(
                f"Invalid cookie {name.lower()} {attribute!r}: control characters and "
                "semicolons are not allowed. Remove them."
            )
        parts.append(f"{name}={attribute}")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite_value is not None:
        parts.append(f"SameSite={samesite_value}")
    if partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)


def cookie_header(
    key: str,
    value: str,
    *,
    max_age: int | None,
    path: str | None,
    domain: str | None,
    secure: bool,
    httponly: bool,
    samesite: Literal["lax", "strict", "none"] | None,
) -> tuple[bytes, bytes]:
    """Return a validated ``Set-Cookie`` header as a raw ASGI pair.

    For middleware that writes raw headers (sessions, CSRF). ``max_age=0``
    deletes the cookie the way :meth:`Response.delete_cookie` does.
    """
    expires = _COOKIE_EPOCH if max_age == 0 else None
    text = format_cookie(
        key,
        "" if max_age == 0 else value,
        max_age=max_age,
        expires=expires,
        path=path,
        domain=domain,
        secure=secure,
        httponly=httponly,
        samesite=samesite,
    )
    return b"set-cookie", text.encode("latin-1")


def _cookie_date(expires: datetime | float) -> str:
    import email.utils  # imported late (~5 ms): only dates need it

    if isinstance(expires, datetime):
        moment = expires if expires.tzinfo is not None else expires.replace(tzinfo=UTC)
        return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)
    return email.utils.formatdate(time.time() + float(expires), usegmt=True)
