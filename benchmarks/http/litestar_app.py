"""The benchmark endpoints written with Litestar (msgspec serialises its JSON).

Litestar is not a covet dependency: see ``run.py``'s ``EXTRA_PEERS`` for how to
install the peers.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, MediaType, get

ROUTES = 100


@get("/plaintext", media_type=MediaType.TEXT)
async def plaintext() -> str:
    return "Hello, World!"


@get("/json")
async def json_endpoint() -> dict[str, str]:
    return {"message": "Hello, World!"}


def _param_route(index: int) -> Any:
    async def endpoint(id: int) -> dict[str, int]:
        return {"route": index, "id": id}

    return get(f"/r{index}/{{id:int}}", name=f"r{index}")(endpoint)


def _static_route(index: int) -> Any:
    body = f"static {index}"

    async def endpoint() -> str:
        return body

    return get(f"/static{index}", media_type=MediaType.TEXT, name=f"static{index}")(endpoint)


def build(routes: int = ROUTES) -> Any:
    return Litestar(
        route_handlers=[
            plaintext,
            json_endpoint,
            *(_param_route(i) for i in range(routes)),
            *(_static_route(i) for i in range(routes)),
        ]
    )


app = build()
