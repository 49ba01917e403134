"""OpenAPI 3.1 for covet apps: ``app.openapi()``, ``/openapi.json`` and an offline ``/docs``.

::

    from covet import Covet
    from covet.openapi import OpenAPIConfig

    app = Covet(openapi=OpenAPIConfig(title="Shop", version="1.2.0"))
    document = app.openapi()          # a dict, cached once the app has started

The document is generated from the routes: path converters, typed
parameters, bodies and forms, response models, status codes, route names
(``operationId``), docstrings (``summary``/``description``), tags, and the
security schemes the installed middleware accepts. ``include_in_schema=False``
on a route, a router or ``include_router()`` leaves routes out. The builder
(:mod:`covet.openapi.document`) and the UI (:mod:`covet.openapi.views`) load
only when the document is first built or served.
"""

from __future__ import annotations

from covet.openapi.config import OpenAPIConfig

__all__ = ("OpenAPIConfig",)
