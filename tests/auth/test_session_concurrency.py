"""Concurrent requests of one user: no lost session writes, no CSRF token races (issue 16).

What covet guarantees with a server-side store (MemoryStore, RedisStore,
DatabaseStore): each response merges only the keys its request set or deleted
into the stored session, in one atomic step, so concurrent requests that
change different keys all keep their changes, and a request that only read the
session (an idle-timeout touch included) writes no data at all. Two requests
setting the same key: the last response wins. The cookie store cannot merge
(the browser keeps the last cookie): it is out of scope here.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet, JSONResponse, Request
from covet.middleware import CSRFMiddleware, SessionMiddleware, csrf_exempt
from covet.sessions import DatabaseStore, MemoryStore, RedisStore
from tests.auth.conftest import client_for

if TYPE_CHECKING:
    from covet.db import Database
    from covet.sessions import SessionStore

REDIS_URL = os.environ.get("COVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "s" * 40


def make_app(store: SessionStore, seed: int = 16) -> Covet:
    """An app whose handlers pause at random between loading and saving the session."""
    rng = random.Random(seed)
    app = Covet()
    app.add_middleware(SessionMiddleware, secret_key=SECRET, store=store, idle_timeout=3600)
    app.add_middleware(CSRFMiddleware)

    async def pause() -> None:
        await asyncio.sleep(rng.random() * 0.02)

    @app.post("/start")
    @csrf_exempt
    async def start(request: Request) -> str:
        request.session["started"] = True
        return "ok"

    @app.get("/set/{key}")
    async def set_key(request: Request, key: str) -> str:
        await pause()
        request.session[key] = key
        await pause()
        return "ok"

    @app.get("/del/{key}")
    async def del_key(request: Request, key: str) -> str:
        await pause()
        request.session.pop(key, None)
        await pause()
        return "ok"

    @app.get("/read")
    async def read(request: Request) -> dict[str, Any]:
        await pause()
        data = dict(request.session)
        await pause()
        return data

    @app.get("/form")
    async def form(request: Request) -> dict[str, str]:
        from covet.middleware.csrf import get_csrf_token

        await pause()
        return {"token": get_csrf_token(request)}

    @app.post("/submit")
    async def submit(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return app


async def _exercise(store: SessionStore) -> None:
    app = make_app(store)
    async with client_for(app) as client:
        assert (await client.post("/start")).status_code == 200
        # 30 writers of different keys, interleaved with 30 readers (each reader's
        # response touches the session: idle_timeout is set).
        responses = await asyncio.gather(
            *(client.get(f"/set/k{i}") for i in range(30)),
            *(client.get("/read") for _ in range(30)),
        )
        assert {r.status_code for r in responses} == {200}
        data = (await client.get("/read")).json()
        assert data == {"started": True, **{f"k{i}": f"k{i}" for i in range(30)}}
        # Deletions and additions at once.
        await asyncio.gather(
            *(client.get(f"/del/k{i}") for i in range(10)),
            *(client.get(f"/set/n{i}") for i in range(10)),
        )
        data = (await client.get("/read")).json()
        expected = {f"k{i}": f"k{i}" for i in range(10, 30)} | {f"n{i}": f"n{i}" for i in range(10)}
        assert data == {"started": True, **expected}
        # CSRF: the secret is created by one request while others write the session;
        # no later response may drop it, and every token handed out stays valid.
        first, *_ = await asyncio.gather(
            client.get("/form"), *(client.get(f"/set/c{i}") for i in range(10))
        )
        tokens = [first.json()["token"]]
        pages = await asyncio.gather(
            *(client.get("/form") for _ in range(10)),
            *(client.get(f"/set/d{i}") for i in range(10)),
        )
        tokens += [p.json()["token"] for p in pages[:10]]
        posts = await asyncio.gather(
            *(client.post("/submit", headers={"x-csrf-token": t}) for t in tokens)
        )
        assert [p.status_code for p in posts] == [200] * len(tokens), [p.text for p in posts]


async def test_memory_store_keeps_concurrent_writes() -> None:
    await _exercise(MemoryStore())


async def test_redis_store_keeps_concurrent_writes() -> None:
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis_asyncio.RedisError) as exc:
        if os.environ.get("COVET_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"Redis at {REDIS_URL} is required (COVET_TEST_REQUIRE_ALL=1): {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()
    store = RedisStore(REDIS_URL, prefix=f"covet-test:{uuid.uuid4().hex}:")
    try:
        await _exercise(store)
    finally:
        await store.aclose()


async def test_database_store_keeps_concurrent_writes(db: Database) -> None:
    await _exercise(DatabaseStore())


async def test_a_read_only_request_does_not_write_back_stale_data() -> None:
    # The touch of a request that only read the session (idle_timeout) used to
    # store the data it had loaded, undoing a change another request saved meanwhile.
    store = MemoryStore()
    app = Covet()
    app.add_middleware(SessionMiddleware, secret_key=SECRET, store=store, idle_timeout=60)
    loaded = asyncio.Event()
    written = asyncio.Event()

    @app.get("/start")
    async def start(request: Request) -> str:
        request.session["a"] = 1
        return "ok"

    @app.get("/slow-read")
    async def slow_read(request: Request) -> str:
        loaded.set()
        await written.wait()
        return "read"

    @app.get("/write")
    async def write(request: Request) -> str:
        await loaded.wait()
        request.session["b"] = 2
        return "wrote"

    @app.get("/show")
    async def show(request: Request) -> dict[str, Any]:
        return dict(request.session)

    async with client_for(app) as client:
        await client.get("/start")
        reader = asyncio.create_task(client.get("/slow-read"))
        await client.get("/write")
        written.set()
        await reader
        assert (await client.get("/show")).json() == {"a": 1, "b": 2}
