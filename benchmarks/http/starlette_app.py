"""The benchmark endpoints written with Starlette, the peer covet is measured against."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from starlette.requests import Request

ROUTES = 100


async def plaintext(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


async def json_endpoint(request: Request) -> JSONResponse:
    return JSONResponse({"message": "Hello, World!"})


def _param_route(index: int) -> Route:
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"route": index, "id": request.path_params["id"]})

    return Route(f"/r{index}/{{id:int}}", endpoint)


def _static_route(index: int) -> Route:
    body = f"static {index}"

    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(body)

    return Route(f"/static{index}", endpoint)


def build(routes: int = ROUTES) -> Any:
    return Starlette(
        routes=[
            Route("/plaintext", plaintext),
            Route("/json", json_endpoint),
            *(_param_route(i) for i in range(routes)),
            *(_static_route(i) for i in range(routes)),
        ]
    )


app = build()
