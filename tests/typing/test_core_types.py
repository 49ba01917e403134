"""Static type pins for the core's public API (checked by mypy; nothing runs under pytest)."""

from __future__ import annotations

from typing import Any, assert_type

import httpx

from covet import Covet, JSONResponse, Request, Response, Router, WebSocket
from covet.datastructures import URL, FormData, Headers, QueryParams
from covet.middleware import CORSMiddleware, GZipMiddleware
from covet.routing import Route
from covet.staticfiles import StaticFiles
from covet.testing import TestClient

app = Covet()
api = Router(prefix="/api")


@app.get("/items/{item_id:int}", name="item")
async def item(request: Request, item_id: int) -> dict[str, int]:
    return {"id": item_id}


@api.post("/items")
async def create(request: Request) -> JSONResponse:
    return JSONResponse(await request.json(), status_code=201)


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()


def sync_handler(request: Request) -> str:
    return "plain"


async def _pins(request: Request, websocket: WebSocket) -> None:
    # Route decorators hand back the function unchanged, so handlers stay callable in tests.
    assert_type(await item(request, 3), dict[str, int])
    assert_type(app.get("/sync")(sync_handler)(request), str)
    assert_type(app.url_path_for("item", item_id=3), str)
    assert_type(app.add_route("/sync", sync_handler), Route)
    assert_type(request.url, URL)
    assert_type(request.headers, Headers)
    assert_type(request.query_params, QueryParams)
    assert_type(request.path_params, dict[str, Any])
    assert_type(await request.body(), bytes)
    assert_type(await request.json(), Any)
    assert_type(await request.form(), FormData)
    assert_type(request.url_for("item", item_id=3), URL)
    assert_type(await websocket.receive_text(), str)
    assert_type(JSONResponse({"a": 1}).body, bytes)
    app.add_middleware(CORSMiddleware, allow_origins=["https://example.com"])
    app.add_middleware(GZipMiddleware, minimum_size=1000)
    app.mount("/static", StaticFiles(directory="static"), name="static")
    app.include_router(api)


def _client_pins() -> None:
    with TestClient(app) as client:
        assert_type(client, TestClient)
        assert_type(client.get("/items/3"), httpx.Response)


def _response_pins(response: Response) -> None:
    assert_type(response.status_code, int)
