"""The benchmark endpoints written with FastAPI, as its documentation writes them.

FastAPI is not a covet dependency: see ``run.py``'s ``EXTRA_PEERS`` for how to
install the peers.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

ROUTES = 100


def _param_route(app: FastAPI, index: int) -> None:
    @app.get(f"/r{index}/{{id}}")
    async def endpoint(id: int) -> dict[str, int]:
        return {"route": index, "id": id}


def _static_route(app: FastAPI, index: int) -> None:
    body = f"static {index}"

    @app.get(f"/static{index}", response_class=PlainTextResponse)
    async def endpoint() -> str:
        return body


def build(routes: int = ROUTES) -> Any:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/plaintext", response_class=PlainTextResponse)
    async def plaintext() -> str:
        return "Hello, World!"

    @app.get("/json")
    async def json_endpoint() -> dict[str, str]:
        return {"message": "Hello, World!"}

    for index in range(routes):
        _param_route(app, index)
        _static_route(app, index)
    return app


app = build()
