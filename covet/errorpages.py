"""Error responses shaped for the client: an HTML page, JSON or plain text.

:func:`error_response` builds the answer covet sends for an
:class:`~covet.exceptions.HTTPException` (404, 403, 405, 429...) and for the
production ``500``. The client's ``Accept`` header picks the format:

- a browser (``Accept`` prefers ``text/html``) gets a small HTML page;
- an API client (``application/json`` or a ``+json`` type preferred) gets
  ``{"detail": ...}``;
- anyone else (``curl``'s ``*/*``, no ``Accept``) gets the detail as plain text.

The HTML page is the project's template when it has one: with
``Covet(error_templates=templates)`` (a :class:`covet.templates.Templates`),
``errors/<status>.html`` is rendered, else ``errors/default.html``, with
``status_code``, ``title`` (the status phrase), ``detail`` and ``message`` in
the context. Without such a template, or when the template itself fails (the
failure is logged on ``covet.error``), covet's built-in page is sent: one
self-contained document with inline CSS, no external assets, everything
HTML-escaped and nothing about the server's internals.
"""

from __future__ import annotations

import base64
import hashlib
import http
import logging
from typing import TYPE_CHECKING, Any

from covet.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

if TYPE_CHECKING:
    from collections.abc import Mapping

    from covet.requests import HTTPConnection
    from covet.templates import Templates
    from covet.types import Scope

__all__ = ("error_response", "preferred_format")

logger = logging.getLogger("covet.error")

# What the page says when the detail is only the status phrase: a sentence a
# visitor can act on, never anything about the server.
_MESSAGES = {
    400: "The request could not be understood.",
    401: "You need to log in to see this page.",
    403: "You do not have permission to see this page.",
    404: "The page you asked for does not exist. Check the address, or start again from the "
    "home page.",
    405: "This address does not accept that kind of request.",
    410: "This page was removed and will not come back.",
    413: "What you sent is too large.",
    429: "Too many requests. Wait a moment, then try again.",
    500: "Something went wrong on our side. It was logged and will be looked at; try again later.",
    503: "The site is unavailable for a moment. Try again shortly.",
}

_STYLE = (
    ":root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--bg:#f6f8fa;--card:#fff;"
    "--line:#d1d9e0;--accent:#2f6f4f}"
    "@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;"
    "--card:#151b23;--line:#3d444d;--accent:#56b487}}"
    "*{box-sizing:border-box}"
    "body{margin:0;min-height:100vh;display:grid;place-items:center;padding:1.5rem;"
    "font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);"
    "background:var(--bg)}"
    "main{max-width:34rem;width:100%;padding:2rem 2.25rem;background:var(--card);"
    "border:1px solid var(--line);border-radius:12px}"
    ".status{margin:0;font-size:.875rem;font-weight:600;letter-spacing:.08em;"
    "color:var(--accent)}"
    "h1{margin:.25rem 0 .75rem;font-size:1.625rem;line-height:1.25}"
    "p{margin:0 0 1rem;color:var(--muted);overflow-wrap:anywhere}"
    "a{color:var(--accent)}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# The page's own policy: nothing loads, only its inline stylesheet applies.
# (SecurityHeadersMiddleware keeps a policy the response already has.)
_PAGE_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{status} {title}</title>
<style>{style}</style>
</head>
<body>
<main>
<p class="status">Error {status}</p>
<h1>{title}</h1>
<p>{message}</p>
<p><a href="{home}">Go to the home page</a></p>
</main>
</body>
</html>
"""

_NO_BODY = (204, 304)


def _accept_quality(scope: Scope) -> tuple[float, float]:
    """Return the client's preference (q) for HTML and for JSON, from ``Accept``."""
    html_q = json_q = 0.0
    for name, value in scope.get("headers", ()):
        if name != b"accept":
            continue
        for item in value.decode("latin-1").lower().split(","):
            media, _, params = item.partition(";")
            media = media.strip()
            quality = 1.0
            for param in params.split(";"):
                key, _, number = param.partition("=")
                if key.strip() == "q":
                    try:
                        quality = min(max(float(number), 0.0), 1.0)
                    except ValueError:
                        quality = 0.0  # RFC 9110 12.4.2: an invalid weight; ignore the type
            if media in ("text/html", "application/xhtml+xml"):
                html_q = max(html_q, quality)
            elif media == "application/json" or media.endswith("+json"):
                json_q = max(json_q, quality)
    return html_q, json_q


def preferred_format(scope: Scope) -> str:
    """Return the error format the client prefers: ``"html"``, ``"json"`` or ``"text"``.

    HTML when ``Accept`` names ``text/html`` (or XHTML) with a weight at least
    that of any JSON type, as browsers do for a page; JSON when a JSON type
    (``application/json``, ``application/problem+json``...) is preferred; text
    for everything else, including ``*/*`` alone (curl, scripts).

    Args:
        scope: The request scope.

    Returns:
        ``"html"``, ``"json"`` or ``"text"``.
    """
    html_q, json_q = _accept_quality(scope)
    if html_q > 0 and html_q >= json_q:
        return "html"
    if json_q > 0:
        return "json"
    return "text"


def _title(status_code: int) -> str:
    try:
        return http.HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def _builtin_page(
    status_code: int,
    detail: str | None = None,
    *,
    home: str = "/",
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Return covet's built-in HTML error page.

    Args:
        status_code: The response status.
        detail: The sentence to show; by default a generic one for the status.
        home: The link back to the site (the app's root path).
        headers: Extra response headers.

    Returns:
        The page, with a ``Content-Security-Policy`` that allows only its inline style.
    """
    import html  # imported late: ``import covet`` stays light (tests/test_hotpath.py)

    title = _title(status_code)
    if detail is None or detail == title:
        detail = _MESSAGES.get(status_code, title + ".")
    page = _PAGE.format(
        status=status_code,
        title=html.escape(title),
        message=html.escape(detail),
        home=html.escape(home),
        style=_STYLE,
    )
    merged = dict(headers or {})
    if not any(name.lower() == "content-security-policy" for name in merged):
        merged["Content-Security-Policy"] = _PAGE_CSP
    return HTMLResponse(page, status_code=status_code, headers=merged)


async def _template_page(
    request: HTTPConnection,
    status_code: int,
    detail: Any,
    headers: Mapping[str, str] | None,
) -> HTMLResponse | None:
    """Render the project's error template, or return None to use the built-in page."""
    templates: Templates | None = getattr(request.scope.get("app"), "error_templates", None)
    if templates is None:
        return None
    import jinja2  # only projects with error templates get here, and they have jinja2

    title = _title(status_code)
    context = {
        "status_code": status_code,
        "title": title,
        "detail": detail,
        "message": _MESSAGES.get(status_code, title + ".") if detail == title else str(detail),
    }
    for name in (f"errors/{status_code}.html", "errors/default.html"):
        try:
            # render_async(): the project's context processors may be async.
            return await templates.render_async(
                request, name, context, status_code=status_code, headers=headers
            )
        except jinja2.TemplateNotFound as exc:
            if exc.name == name:
                continue  # no such template: try the next one, then the built-in page
            failure: Exception = exc  # a template it extends or includes is missing
        except Exception as exc:  # noqa: BLE001 - logged; the built-in page is the answer
            failure = exc
        # A broken error template must not turn the error into a 500 (or, on a 500,
        # into a second one): log it and let the built-in page answer.
        logger.error(
            "The error template %r failed; the built-in %d page was sent instead",
            name,
            status_code,
            exc_info=failure,
        )
        return None
    return None


async def error_response(
    request: HTTPConnection,
    status_code: int,
    detail: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build the error response for ``status_code`` in the format the client prefers.

    Use it in your own exception handlers to answer like covet does.

    Args:
        request: The request being answered.
        status_code: The HTTP status, for example ``404``.
        detail: What went wrong, for the client; defaults to the status phrase.
            It is sent as ``{"detail": ...}`` to JSON clients, as text to
            others, and shown (escaped) on the HTML page.
        headers: Extra response headers (``Allow``, ``Retry-After``...).

    Returns:
        The response; ``204``, ``304`` and ``1xx`` statuses get no body.
    """
    if status_code in _NO_BODY or status_code < 200:
        return Response(status_code=status_code, headers=headers)
    if detail is None:
        detail = _title(status_code)
    kind = preferred_format(request.scope)
    if kind == "json":
        return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)
    if kind == "text":
        return PlainTextResponse(str(detail), status_code=status_code, headers=headers)
    page = await _template_page(request, status_code, detail, headers)
    if page is not None:
        return page
    home = (request.scope.get("root_path") or "") + "/"
    return _builtin_page(status_code, str(detail), home=home, headers=headers)
