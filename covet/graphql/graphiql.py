"""GraphiQL, served offline: the page and its assets come from installed packages, never a CDN.

The JavaScript and CSS (GraphiQL, React, graphql-ws) are those shipped by
the ``graphene-django-graphiql-static`` wheel (pulled in by the ``graphql``
extra; covet reads its files and imports none of its code), and the
start-up script is covet's own ``static/graphiql-init.js``. The page has no
inline script, so it works under covet's default Content-Security-Policy.
When the app runs with ``CSRFMiddleware``, the page carries a token that
GraphiQL sends in ``X-CSRF-Token`` with every POST.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import TYPE_CHECKING

from covet.exceptions import ImproperlyConfigured
from covet.responses import HTMLResponse, Response

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from covet.requests import Request

__all__ = ("ASSET_PREFIX", "asset_response", "graphiql_page")

#: Where the assets live below the GraphQL endpoint's path.
ASSET_PREFIX = "/_graphiql/"
_VENDOR_PACKAGE = "graphene_django_graphiql_static"
_VENDOR_FILES = {
    "graphiql.min.css": "text/css",
    "style.css": "text/css",
    "react.production.min.js": "text/javascript",
    "react-dom.production.min.js": "text/javascript",
    "graphiql.min.js": "text/javascript",
    "graphql-ws.min.js": "text/javascript",
}
_OWN_FILES = {"graphiql-init.js": "text/javascript", "graphiql-page.css": "text/css"}
_STYLES = ("graphiql.min.css", "graphiql-page.css")
_SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphql-ws.min.js",
    "graphiql-init.js",
)


def _asset(name: str) -> Traversable | None:
    if name in _OWN_FILES:
        return resources.files("covet.graphql").joinpath("static", name)
    if name in _VENDOR_FILES:
        try:
            package = resources.files(_VENDOR_PACKAGE)
        except ModuleNotFoundError:
            return None
        return package.joinpath("static", _VENDOR_PACKAGE, name)
    return None


def assets_available() -> bool:
    """Return whether the GraphiQL assets are installed (the ``graphql`` extra)."""
    found = _asset("graphiql.min.js")
    return found is not None and found.is_file()


def asset_response(name: str, enabled: bool) -> Response:
    """Return one GraphiQL asset (404 for unknown names or when GraphiQL is off)."""
    found = _asset(name) if enabled else None
    if found is None or not found.is_file():
        return Response("Not Found", status_code=404, media_type="text/plain")
    media_type = _OWN_FILES.get(name) or _VENDOR_FILES[name]
    return Response(
        found.read_bytes(),
        media_type=f"{media_type}; charset=utf-8",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def graphiql_page(request: Request, *, subscriptions: bool = True) -> Response:
    """Return the GraphiQL page for the endpoint ``request`` reached.

    Raises:
        ImproperlyConfigured: The assets are not installed.
    """
    if not assets_available():
        raise ImproperlyConfigured(
            "GraphiQL needs its assets, which are not installed. "
            "Run pip install 'covet-web[graphql]'."
        )
    endpoint = request.url.path
    base = endpoint.rstrip("/") + ASSET_PREFIX
    token = ""
    if "covet.csrf" in request.scope:
        from covet.middleware.csrf import get_csrf_token

        token = get_csrf_token(request)
    styles = "".join(
        f'<link rel="stylesheet" href="{html.escape(base + name)}">' for name in _STYLES
    )
    scripts = "".join(f'<script src="{html.escape(base + name)}"></script>' for name in _SCRIPTS)
    attributes = f'data-endpoint="{html.escape(endpoint)}" data-csrf-token="{html.escape(token)}"'
    if subscriptions:
        attributes += f' data-subscriptions="{html.escape(endpoint)}"'
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>GraphiQL</title>"
        f"{styles}</head>"
        f'<body><div id="graphiql" {attributes}>Loading GraphiQL...</div>{scripts}</body></html>'
    )
    return HTMLResponse(page)
