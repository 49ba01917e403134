"""Security response headers with safe defaults (OWASP ASVS 3.4, Django's SecurityMiddleware).

``SecurityHeadersMiddleware`` adds, to every HTTP response that does not set
them itself:

- ``Content-Security-Policy``: ``default-src 'self'; object-src 'none';
  base-uri 'none'; frame-ancestors 'none'``;
- ``X-Content-Type-Options: nosniff``;
- ``X-Frame-Options: DENY``;
- ``Referrer-Policy: same-origin``;
- ``Cross-Origin-Opener-Policy: same-origin``;
- ``Strict-Transport-Security: max-age=31536000``, on HTTPS responses only;
- ``Permissions-Policy``, when configured.

Pass ``None`` for an option to leave that header out.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from covet.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ("SecurityHeadersMiddleware",)

DEFAULT_CSP = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
_FORBIDDEN = re.compile(r"[\r\n\x00]")


def _header_value(option: str, value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str) or _FORBIDDEN.search(value) or not value.strip():
        raise ImproperlyConfigured(
            f"SecurityHeadersMiddleware got {option}={value!r}. Pass a non-empty header value "
            "without CR, LF or NUL, or None to leave the header out."
        )
    try:
        return value.encode("ascii")
    except UnicodeEncodeError:
        raise ImproperlyConfigured(
            f"SecurityHeadersMiddleware got {option}={value!r}, which is not ASCII. "
            "Use ASCII in header values."
        ) from None


def _non_negative_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class SecurityHeadersMiddleware:
    """Add security headers to every HTTP response, unless the response set them.

    Args:
        app: The ASGI app to wrap.
        content_security_policy: The ``Content-Security-Policy`` value.
        frame_options: ``X-Frame-Options``: ``"DENY"`` or ``"SAMEORIGIN"``.
        referrer_policy: The ``Referrer-Policy`` value.
        cross_origin_opener_policy: The ``Cross-Origin-Opener-Policy`` value.
        hsts_max_age: ``Strict-Transport-Security`` max-age in seconds, sent
            on HTTPS only. Start low (300) when first enabling HTTPS.
        hsts_include_subdomains: Add ``includeSubDomains`` (every subdomain
            must then serve HTTPS).
        hsts_preload: Add ``preload`` (submit the domain to browsers' preload
            lists; hard to undo).
        content_type_options: Send ``X-Content-Type-Options: nosniff``.
        permissions_policy: The ``Permissions-Policy`` value, for example
            ``"geolocation=(), camera=()"``.

    Raises:
        ImproperlyConfigured: For an invalid value.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        content_security_policy: str | None = DEFAULT_CSP,
        frame_options: str | None = "DENY",
        referrer_policy: str | None = "same-origin",
        cross_origin_opener_policy: str | None = "same-origin",
        hsts_max_age: int | None = 31_536_000,
        hsts_include_subdomains: bool = False,
        hsts_preload: bool = False,
        content_type_options: bool = True,
        permissions_policy: str | None = None,
    ) -> None:
        self.app = app
        if frame_options is not None and frame_options.upper() not in ("DENY", "SAMEORIGIN"):
            raise ImproperlyConfigured(
                f"SecurityHeadersMiddleware got frame_options={frame_options!r}. "
                "Use 'DENY', 'SAMEORIGIN' or None."
            )
        candidates: list[tuple[bytes, bytes | None]] = [
            (
                b"content-security-policy",
                _header_value("content_security_policy", content_security_policy),
            ),
            (b"x-content-type-options", b"nosniff" if content_type_options else None),
            (
                b"x-frame-options",
                _header_value("frame_options", frame_options and frame_options.upper()),
            ),
            (b"referrer-policy", _header_value("referrer_policy", referrer_policy)),
            (
                b"cross-origin-opener-policy",
                _header_value("cross_origin_opener_policy", cross_origin_opener_policy),
            ),
            (b"permissions-policy", _header_value("permissions_policy", permissions_policy)),
        ]
        self.headers = [(name, value) for name, value in candidates if value is not None]
        self.hsts: bytes | None = None
        if hsts_max_age is not None:
            if not _non_negative_int(hsts_max_age):
                raise ImproperlyConfigured(
                    f"SecurityHeadersMiddleware got hsts_max_age={hsts_max_age!r}. "
                    "Pass a number of seconds >= 0, or None to send no HSTS header."
                )
            if hsts_preload and (hsts_max_age < 31_536_000 or not hsts_include_subdomains):
                raise ImproperlyConfigured(
                    "HSTS preload requires hsts_max_age >= 31536000 and "
                    "hsts_include_subdomains=True (https://hstspreload.org). Set both."
                )
            value = f"max-age={hsts_max_age}"
            if hsts_include_subdomains:
                value += "; includeSubDomains"
            if hsts_preload:
                value += "; preload"
            self.hsts = value.encode("latin-1")

        # What each response gets, built once: the headers in order, and their names.
        self._plain_extra = tuple(self.headers)
        self._https_extra = (
            self._plain_extra
            if self.hsts is None
            else (*self._plain_extra, (b"strict-transport-security", self.hsts))
        )
        self._names = frozenset(name for name, _ in self._https_extra)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """Run the app, adding the missing security headers to its response.

        A plain method handing back the app's awaitable: this layer needs no
        coroutine of its own, and its ``send`` wrapper none per message.
        """
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        extra = self._https_extra if scope.get("scheme") == "https" else self._plain_extra
        names = self._names

        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                if type(headers) is not list:
                    headers = list(headers)  # any iterable, read twice below
                for name, _ in headers:
                    if name.lower() in names:
                        # The app set one of them itself: keep its value, add the others.
                        present = {name.lower() for name, _ in headers}
                        message["headers"] = [
                            *headers,
                            *(item for item in extra if item[0] not in present),
                        ]
                        break
                else:
                    message["headers"] = [*headers, *extra]
            return send(message)

        return self.app(scope, receive, send_with_headers)
