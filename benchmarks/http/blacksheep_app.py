"""The benchmark endpoints written with BlackSheep, a peer compiled with Cython.

BlackSheep is not a covet dependency: see ``run.py``'s ``EXTRA_PEERS`` for how to
install the peers. JSON goes through orjson, as covet's does, with BlackSheep's own
setting for it.
"""

from __future__ import annotations

from typing import Any

import orjson
from blacksheep import Application, json, text
from blacksheep.settings.json import json_settings

ROUTES = 100

json_settings.use(loads=orjson.loads, dumps=lambda value: orjson.dumps(value).decode())


def _param_route(app: Application, index: int) -> None:
    async def endpoint(id: int) -> Any:
        return json({"route": index, "id": id})

    app.router.get(f"/r{index}/{{int:id}}")(endpoint)


def _static_route(app: Application, index: int) -> None:
    body = f"static {index}"

    async def endpoint() -> Any:
        return text(body)

    app.router.get(f"/static{index}")(endpoint)


async def plaintext() -> Any:
    return text("Hello, World!")


async def json_endpoint() -> Any:
    return json({"message": "Hello, World!"})


def build(routes: int = ROUTES) -> Any:
    app = Application()
    app.router.get("/plaintext")(plaintext)
    app.router.get("/json")(json_endpoint)
    for index in range(routes):
        _param_route(app, index)
        _static_route(app, index)
    return app


app = build()
