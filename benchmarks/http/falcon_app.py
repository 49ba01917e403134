"""The benchmark endpoints written with Falcon's ASGI app, a peer compiled with Cython.

Falcon is not a covet dependency: see ``run.py``'s ``EXTRA_PEERS`` for how to
install the peers. JSON goes through orjson, as covet's does, with Falcon's own
media handler setting for it.
"""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi
import falcon.media
import orjson

ROUTES = 100


class PlainText:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "Hello, World!"


class Json:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"message": "Hello, World!"}


class Param:
    def __init__(self, index: int) -> None:
        self.index = index

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, id: int) -> None:
        resp.media = {"route": self.index, "id": id}


class Static:
    def __init__(self, index: int) -> None:
        self.body = f"static {index}"

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = self.body


def build(routes: int = ROUTES) -> Any:
    app = falcon.asgi.App()
    handler = falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = handler
    app.req_options.media_handlers[falcon.MEDIA_JSON] = handler
    app.add_route("/plaintext", PlainText())
    app.add_route("/json", Json())
    for index in range(routes):
        app.add_route(f"/r{index}/{{id:int}}", Param(index))
        app.add_route(f"/static{index}", Static(index))
    return app


app = build()
