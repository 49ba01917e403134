"""Serve the document (``/openapi.json``) and the API reference UI (``/docs``), offline.

The UI is Swagger UI (``swagger-ui-dist``, Apache-2.0; its licence and notice
ship beside it in ``covet/openapi/static/``), vendored so that ``/docs``
needs no CDN: it works on an air-gapped network and leaks no visit to a
third party. The page carries no inline script, so its Content-Security-Policy
allows scripts from the app's own origin only; Swagger UI sets inline
``style`` attributes, which ``style-src 'unsafe-inline'`` permits (styles
cannot run code). The assets have versioned URLs and are cached for a year.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from covet.exceptions import HTTPException
from covet.responses import HTMLResponse, JSONResponse, Response
from covet.routing import Route

if TYPE_CHECKING:
    from collections.abc import Callable

    from covet.app import Covet
    from covet.openapi.config import OpenAPIConfig
    from covet.requests import Request

__all__ = ("DOCS_CSP", "SWAGGER_UI_VERSION", "add_docs_routes", "docs_endpoints")

#: The vendored ``swagger-ui-dist`` release (npm), named in asset URLs for caching.
SWAGGER_UI_VERSION: Final = "5.36.0"

#: The policy of the ``/docs`` page: nothing but the app's own origin.
DOCS_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_STATIC: Final = Path(__file__).parent / "static"
#: The files ``/docs/assets/<name>`` serves, and their media types (nothing else is reachable).
_ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-init.js": "text/javascript; charset=utf-8",
}
_IMMUTABLE: Final = "public, max-age=31536000, immutable"

_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css?v={version}">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{url}"></div>
<script src="{assets}/swagger-ui-bundle.js?v={version}"></script>
<script src="{assets}/swagger-init.js?v={version}"></script>
</body>
</html>
"""


def docs_endpoints(
    config: OpenAPIConfig, document: Callable[[], dict[str, Any]]
) -> dict[str, Callable[..., Any]]:
    """Return the handlers to register: ``{path: handler}``.

    Args:
        config: Where to serve (``config.path``, ``config.docs_path``).
        document: Returns the (cached) document; called per request to
            ``config.path``.
    """
    endpoints: dict[str, Callable[..., Any]] = {}
    if config.path is None:
        return endpoints
    json_path = config.path

    async def openapi_json(request: Request) -> Response:
        """Serve the OpenAPI document; under a root_path it names that path as its server."""
        result = document()
        root = request.scope.get("root_path", "")
        if root and "servers" not in result:
            result = {**result, "servers": [{"url": root}]}
        return JSONResponse(result)

    endpoints[json_path] = openapi_json
    if config.docs_path is None:
        return endpoints
    docs_path = config.docs_path
    cache: dict[str, bytes] = {}

    async def docs_page(request: Request) -> Response:
        """Serve the API reference page, pointing at the document below the same root."""
        root = request.scope.get("root_path", "")
        page = _PAGE.format(
            title=html.escape(f"{config.title} - API reference"),
            assets=html.escape(f"{root}{docs_path}/assets"),
            version=SWAGGER_UI_VERSION,
            url=html.escape(f"{root}{json_path}"),
        )
        return HTMLResponse(
            page,
            headers={"content-security-policy": DOCS_CSP, "cache-control": "no-cache"},
        )

    async def docs_asset(request: Request, name: str) -> Response:
        """Serve one vendored UI file, cached for a year (its URL carries the version)."""
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404)
        body = cache.get(name)
        if body is None:
            body = cache[name] = (_STATIC / name).read_bytes()
        return Response(
            body,
            media_type=media_type,
            headers={"cache-control": _IMMUTABLE, "x-content-type-options": "nosniff"},
        )

    endpoints[docs_path] = docs_page
    endpoints[docs_path + "/assets/{name}"] = docs_asset
    return endpoints


def add_docs_routes(app: Covet, config: OpenAPIConfig) -> None:
    """Register the document and UI routes on ``app``, when it starts.

    A route of the app's own at one of those paths wins (with or without a
    trailing slash: an app's ``/docs/`` page keeps its ``/docs`` redirect);
    covet's route, and for the page its assets, are not added.
    """
    taken = {
        route.path.rstrip("/") or "/" for route in app.router.routes if isinstance(route, Route)
    }
    endpoints = docs_endpoints(config, app.openapi)
    if config.docs_path in taken:
        endpoints = {path: e for path, e in endpoints.items() if path == config.path}
    for path, endpoint in endpoints.items():
        if path not in taken:
            app.router.add_route(path, endpoint, include_in_schema=False)
