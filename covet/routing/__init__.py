"""URL routing: map request paths to handlers, and names back to paths.

A :class:`Router` holds three kinds of routes:

- :class:`Route` - an HTTP handler for one path pattern and a set of methods;
- :class:`WebSocketRoute` - a websocket handler for one path pattern;
- :class:`Mount` - any ASGI application served below a path prefix.

Path patterns use ``{name}`` or ``{name:converter}`` placeholders (see
:mod:`covet.convertors`). Matching is indexed so its cost does not grow with
the number of routes:

1. paths without placeholders are one dictionary lookup;
2. other patterns are grouped by their first path segment when it is
   literal (``/users/{id}`` is in group ``users``), and each group is
   compiled into a single regular expression, so one ``fullmatch`` call
   finds the route;
3. patterns whose first segment holds a placeholder (``/{lang}/about``) form
   one last group, tried when nothing more specific matched.

Within a group, routes are tried in registration order.

The package holds one concept per module: ``patterns`` (path patterns and
converters), ``routes`` (the route kinds), ``index`` (the lookup index),
``decorators`` (the decorator sugar) and ``router`` (the :class:`Router`).
"""

from __future__ import annotations

from covet.routing.decorators import RouteDecorators
from covet.routing.index import _Group as _Group
from covet.routing.patterns import NoMatchFound
from covet.routing.router import Router
from covet.routing.routes import HTTP_METHODS, Mount, Route, WebSocketRoute
from covet.routing.routes import BaseRoute as BaseRoute

__all__ = (
    "HTTP_METHODS",
    "Mount",
    "NoMatchFound",
    "Route",
    "RouteDecorators",
    "Router",
    "WebSocketRoute",
)
