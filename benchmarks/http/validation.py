"""A validated JSON POST: covet (pydantic, msgspec), FastAPI (pydantic), Litestar (msgspec).

Every app serves the same two endpoints, called in-process through its ASGI
callable with the scope uvicorn builds (as ``inprocess.py`` does, so no server
or network noise):

- ``POST /items``: a JSON body validated into a model (a nested object, a list,
  a constrained number), echoed back through the response model;
- ``GET /ping``: no validation, the framework's floor.

The POST minus the GET is what body reading, validation and serialisation
cost each framework: the figure the issue asks to compare ("covet's overhead
on a validated JSON POST no worse than Litestar's"). Rounds are interleaved
(every app once per round, in shuffled order) and medians reported, so drift
in background load hits every app alike.

FastAPI and Litestar are not covet dependencies; install them beside covet in
a separate environment (Litestar pulls in a ``multipart`` package that would
shadow python-multipart's old import name in covet's own)::

    python -m venv /tmp/peers && /tmp/peers/bin/pip install -e '.[validation]' fastapi litestar
    PYTHONPATH=. /tmp/peers/bin/python benchmarks/http/validation.py

Apps whose framework is missing are skipped, with a note.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Annotated, Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

PAYLOAD = {
    "name": "Desk lamp",
    "price": 25.5,
    "quantity": 3,
    "tags": ["home", "office", "light"],
    "dimensions": {"width": 12.5, "height": 40.0, "depth": 12.5},
}
BODY = json.dumps(PAYLOAD).encode()


class Dimensions(BaseModel):
    width: float
    height: float
    depth: float


class Item(BaseModel):
    name: str = Field(max_length=100)
    price: float = Field(gt=0)
    quantity: int = Field(ge=1)
    tags: list[str] = []
    dimensions: Dimensions


class SDimensions(msgspec.Struct):
    width: float
    height: float
    depth: float


class SItem(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(max_length=100)]
    price: Annotated[float, msgspec.Meta(gt=0)]
    quantity: Annotated[int, msgspec.Meta(ge=1)]
    dimensions: SDimensions
    tags: list[str] = []


def covet_app(model: type) -> Any:
    from covet import Covet, PlainTextResponse, Request

    app = Covet(allowed_hosts=["127.0.0.1"])

    async def create(item: Any) -> Any:
        return item

    create.__annotations__ = {"item": model, "return": model}
    app.add_route("/items", create, methods=["POST"])

    @app.get("/ping")
    async def ping(request: Request) -> PlainTextResponse:
        return PlainTextResponse("pong")

    return app


def fastapi_app() -> Any:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse as FastAPIText

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    @app.get("/ping", response_class=FastAPIText)
    async def ping() -> str:
        return "pong"

    return app


def litestar_app() -> Any:
    from litestar import Litestar, MediaType, get, post

    @post("/items", status_code=200)
    async def create(data: SItem) -> SItem:
        return data

    @get("/ping", media_type=MediaType.TEXT)
    async def ping() -> str:
        return "pong"

    return Litestar(route_handlers=[create, ping], openapi_config=None, logging_config=None)


BUILDERS = {
    "covet-pydantic": lambda: covet_app(Item),
    "covet-msgspec": lambda: covet_app(SItem),
    "fastapi": fastapi_app,
    "litestar": litestar_app,
}


def scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    """Return the scope uvicorn's httptools protocol builds for this request."""
    headers = [(b"host", b"127.0.0.1:8000")]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "state": {},
    }


async def serve(app: Any, method: str, path: str, body: bytes, count: int) -> tuple[float, bytes]:
    """Serve ``count`` requests; return CPU seconds per request and the last body sent."""
    message = {"type": "http.request", "body": body, "more_body": False}
    sent: list[bytes] = []
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return message

    async def send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            statuses.add(msg["status"])
        elif msg["type"] == "http.response.body":
            sent.append(msg.get("body", b""))

    start = time.thread_time()
    for _ in range(count):
        sent.clear()
        await app(scope(method, path, body), receive, send)
    elapsed = time.thread_time() - start
    if statuses != {200}:
        raise SystemExit(f"{path}: unexpected statuses {sorted(statuses)}")
    return elapsed / count, b"".join(sent)


#: The lifespan tasks of the started apps (kept referenced while the benchmark runs).
LIFESPANS: list[asyncio.Future[Any]] = []


async def start(app: Any) -> None:
    """Run the app's lifespan startup (Litestar and FastAPI build things there)."""
    started = asyncio.Event()
    messages = [{"type": "lifespan.startup"}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # never shut down: the process exits instead
        return {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()

    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}}
    LIFESPANS.append(asyncio.ensure_future(app(lifespan, receive, send)))
    await started.wait()


async def measure(names: list[str], rounds: int, count: int) -> dict[str, dict[str, float]]:
    apps = {}
    for name in names:
        try:
            apps[name] = BUILDERS[name]()
        except ImportError as exc:
            print(f"skipped {name}: {exc}")
    for app in apps.values():
        await start(app)
    expected = msgspec.json.decode(BODY)
    for name, app in apps.items():  # warm up, and check every app answers the same
        _, echoed = await serve(app, "POST", "/items", BODY, 200)
        if msgspec.json.decode(echoed) != expected:
            raise SystemExit(f"{name} answered {echoed!r}")
        await serve(app, "GET", "/ping", b"", 200)
    samples: dict[str, dict[str, list[float]]] = {n: {"post": [], "get": []} for n in apps}
    for _ in range(rounds):
        order = list(apps)
        random.shuffle(order)
        for name in order:
            post, _ = await serve(apps[name], "POST", "/items", BODY, count)
            get, _ = await serve(apps[name], "GET", "/ping", b"", count)
            samples[name]["post"].append(post)
            samples[name]["get"].append(get)
    return {
        name: {kind: statistics.median(values) * 1e6 for kind, values in by_kind.items()}
        for name, by_kind in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median kept)")
    parser.add_argument("--requests", type=int, default=5000, help="requests per app per round")
    parser.add_argument("--only", default=",".join(BUILDERS), help="comma-separated apps")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BUILDERS))
    if unknown:
        parser.error(f"unknown app(s) {unknown}; choose from {', '.join(BUILDERS)}")
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    results = runner(measure(names, args.rounds, args.requests))
    print(f"CPU microseconds per request, median of {args.rounds} x {args.requests:,} requests")
    print(f"{'app':<16}{'POST /items':>13}{'GET /ping':>11}{'validation':>12}")
    for name, row in results.items():
        overhead = row["post"] - row["get"]
        print(f"{name:<16}{row['post']:>13.2f}{row['get']:>11.2f}{overhead:>12.2f}")
    pairs = [
        ("covet-pydantic", "fastapi"),
        ("covet-msgspec", "litestar"),
        ("covet-pydantic", "litestar"),
    ]
    for mine, peer in pairs:
        if mine in results and peer in results:
            post = results[mine]["post"] / results[peer]["post"]
            extra = (results[mine]["post"] - results[mine]["get"]) / (
                results[peer]["post"] - results[peer]["get"]
            )
            print(f"{mine} / {peer}: POST {post:.2f}x, validation overhead {extra:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
