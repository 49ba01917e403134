"""A hand-written ASGI app: the ceiling any framework on uvicorn can reach.

It does the minimum a real app must: dispatch on the path, parse the integer
parameter, and send a complete response with content type and length.
"""

from __future__ import annotations

from typing import Any

try:  # the fastest serializer available, as covet itself uses (covet._json)
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - orjson is the "fast" extra
    import json

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


ROUTES = 100
_PLAIN = b"Hello, World!"
_PLAIN_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"13")]
_JSON_HEADERS = [(b"content-type", b"application/json")]
_STATIC = {f"/static{i}": f"static {i}".encode() for i in range(ROUTES)}


async def _respond(send: Any, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def serve_lifespan(receive: Any, send: Any) -> None:
    """Answer the server's lifespan startup and shutdown (there is nothing to set up)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    path = scope["path"]
    if path == "/plaintext":
        await _respond(send, _PLAIN, _PLAIN_HEADERS)
        return
    if path == "/json":
        body = dumps({"message": "Hello, World!"})
        headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        await _respond(send, body, headers)
        return
    static = _STATIC.get(path)
    if static is not None:
        await _respond(
            send, static, [_PLAIN_HEADERS[0], (b"content-length", str(len(static)).encode())]
        )
        return
    prefix, _, tail = path[1:].partition("/")
    if prefix.startswith("r") and tail.isdigit() and prefix[1:].isdigit():
        body = dumps({"route": int(prefix[1:]), "id": int(tail)})
        headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        await _respond(send, body, headers)
        return
    await send(
        {"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})
