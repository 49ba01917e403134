"""The least a framework can do and still look like one: a floor, not a peer.

Between the bare ASGI app (the ceiling) and a real framework sits this
sketch: it validates nothing but finds the Host header and looks it up in an
allowlist, finds the handler in a route table, builds a request object,
awaits a handler coroutine that builds a response object, and sends that.
No error handling, no HEAD, no limits, no middleware. ``instructions.py
--only bare,minimal,covet --paths /plaintext,/json`` measures how much of the
distance between bare ASGI and covet any framework with request and response
objects must pay anyway. Only ``/plaintext`` and ``/json`` are served.
"""

from __future__ import annotations

from typing import Any

from benchmarks.http.bare_app import dumps, serve_lifespan


class Request:
    """Only what a handler would be handed."""

    __slots__ = ("receive", "scope")

    def __init__(self, scope: dict[str, Any], receive: Any) -> None:
        self.scope = scope
        self.receive = receive


class Response:
    """A body and the two headers every response needs."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, body: bytes, media_type: bytes, status: int = 200) -> None:
        self.body = body
        self.status = status
        self.headers = [(b"content-length", b"%d" % len(body)), (b"content-type", media_type)]


async def plaintext(request: Request) -> Response:
    return Response(b"Hello, World!", b"text/plain; charset=utf-8")


async def json_endpoint(request: Request) -> Response:
    return Response(dumps({"message": "Hello, World!"}), b"application/json")


ROUTES = {"/plaintext": {"GET": plaintext}, "/json": {"GET": json_endpoint}}
HOSTS = {b"127.0.0.1", b"localhost"}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    host = b""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
    methods = ROUTES.get(scope["path"]) if host.partition(b":")[0] in HOSTS else None
    endpoint = None if methods is None else methods.get(scope["method"])
    if endpoint is None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    response = await endpoint(Request(scope, receive))
    headers = response.headers
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
