"""``covet routes``: list every route of the application, mounts included."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import click

from covet.cli._common import echo, import_app, project_settings
from covet.routing import Mount, Route, WebSocketRoute

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("RouteInfo", "collect_routes", "routes_command")


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One row of the ``covet routes`` table.

    Attributes:
        methods: The HTTP methods (``HEAD`` is implied by ``GET`` and left
            out), ``"WS"`` for a websocket route, or ``"*"`` for a mounted app.
        path: The full path pattern, prefixes of enclosing mounts included.
        name: The reverse-routing name (``"mount:route"`` inside a named mount).
        handler: The dotted name of the handler or mounted application.
    """

    methods: str
    path: str
    name: str
    handler: str


def _dotted(obj: Any) -> str:
    target = obj
    if not hasattr(target, "__qualname__"):
        target = type(obj)
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", repr(target))
    return f"{module}.{qualname}" if module else qualname


def collect_routes(routes: Any, prefix: str = "", name_prefix: str = "") -> Iterator[RouteInfo]:
    """Yield a :class:`RouteInfo` for every route, descending into mounts.

    A mounted covet app or router contributes its own routes under the
    mount's prefix; any other mounted ASGI app (static files, say) is one
    row whose path ends in ``/{path}``.

    Args:
        routes: The routes (``app.routes``).
        prefix: The path prefix of the enclosing mounts.
        name_prefix: The name prefix of the enclosing named mounts (``"api:"``).
    """
    for route in routes:
        if isinstance(route, Route):
            methods = set(route.methods)
            if "GET" in methods:
                methods.discard("HEAD")
            yield RouteInfo(
                ",".join(sorted(methods)),
                prefix + route.path,
                name_prefix + (route.name or ""),
                _dotted(route.endpoint),
            )
        elif isinstance(route, WebSocketRoute):
            yield RouteInfo(
                "WS", prefix + route.path, name_prefix + (route.name or ""), _dotted(route.endpoint)
            )
        elif isinstance(route, Mount):
            children = route.routes
            child_names = f"{name_prefix}{route.name}:" if route.name else name_prefix
            if children:
                yield from collect_routes(children, prefix + route.path, child_names)
            else:
                yield RouteInfo(
                    "*",
                    f"{prefix}{route.path}/{{path}}",
                    name_prefix + (route.name or ""),
                    _dotted(route.app),
                )


@click.command("routes")
@click.option(
    "--app",
    "app_path",
    metavar="MODULE:ATTR",
    help="The application to inspect; defaults to [tool.covet] app.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def routes_command(app_path: str | None, as_json: bool) -> None:
    """List every route: methods, path, name and handler."""
    settings = project_settings(app_path)
    _, app = import_app(app_path, settings)
    routes = getattr(app, "routes", None)
    if routes is None:
        echo(f"{app!r} has no routes to list.")
        return
    rows = list(collect_routes(routes))
    if as_json:
        echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    header = RouteInfo("METHODS", "PATH", "NAME", "HANDLER")
    widths = [
        max(len(getattr(row, column)) for row in [header, *rows])
        for column in ("methods", "path", "name")
    ]

    def line(row: RouteInfo) -> str:
        cells = (row.methods, row.path, row.name)
        padded = "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return f"{padded}  {row.handler}"

    click.secho(line(header), bold=True)
    for row in rows:
        echo(line(row))
