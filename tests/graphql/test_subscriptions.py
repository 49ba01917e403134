"""Subscriptions over graphql-transport-ws fed by covet.channels (memory; Redis across workers)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from typing import TYPE_CHECKING, Any

import pytest

from covet.channels import Channels
from tests.graphql.conftest import Data, client_for, gql
from tests.graphql.example import PASSWORD, make_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

REDIS_URL = os.environ.get("COVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SUBSCRIBE = (
    "subscription($id: ID!) { commentAdded(postId: $id) { body post { title } author { name } } }"
)
ADD_COMMENT = 'mutation($id: ID!) { addComment(postId: $id, body: "live") { body } }'


class Socket:
    """A websocket client driving an ASGI app in the test's own event loop."""

    def __init__(self, app: Any, subprotocols: list[str]) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": "ws",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver")],
            "subprotocols": subprotocols,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        self.task = asyncio.create_task(app(scope, self.inbox.get, self.outbox.put))

    async def handshake(self) -> dict[str, Any]:
        await self.inbox.put({"type": "websocket.connect"})
        return await self.next_event()

    async def next_event(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.outbox.get(), 10)

    async def send(self, message: dict[str, Any]) -> None:
        await self.inbox.put({"type": "websocket.receive", "text": json.dumps(message)})

    async def receive(self) -> dict[str, Any]:
        event = await self.next_event()
        assert event["type"] == "websocket.send", event
        message: dict[str, Any] = json.loads(event["text"])
        return message

    async def close(self) -> None:
        await self.inbox.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 10)


async def connected(app: Any, params: dict[str, Any] | None = None) -> Socket:
    socket = Socket(app, ["graphql-transport-ws"])
    accepted = await socket.handshake()
    assert accepted["type"] == "websocket.accept"
    assert accepted["subprotocol"] == "graphql-transport-ws"
    await socket.send({"type": "connection_init", "payload": params or {}})
    assert await socket.receive() == {"type": "connection_ack"}
    return socket


async def test_protocol_rules() -> None:
    app = make_app(connection_init_timeout=0.1)
    refused = Socket(app, ["graphql-ws"])
    assert (await refused.handshake())["code"] == 4406
    slow = Socket(app, ["graphql-transport-ws"])
    assert (await slow.handshake())["type"] == "websocket.accept"
    assert (await slow.next_event())["code"] == 4408
    early = Socket(app, ["graphql-transport-ws"])
    await early.handshake()
    await early.send({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}})
    assert (await early.next_event())["code"] == 4401
    twice = await connected(app)
    await twice.send({"type": "connection_init"})
    assert (await twice.next_event())["code"] == 4429
    garbage = await connected(app)
    await garbage.send({"nope": 1})
    assert (await garbage.next_event())["code"] == 4400
    duplicate = await connected(make_app(channels=Channels("memory://")))
    watch = {"query": SUBSCRIBE, "variables": {"id": "1"}}
    await duplicate.send({"id": "same", "type": "subscribe", "payload": watch})
    await duplicate.send({"id": "same", "type": "subscribe", "payload": watch})
    assert (await duplicate.next_event())["code"] == 4409


async def test_ping_queries_and_errors_over_the_socket() -> None:
    socket = await connected(make_app())
    await socket.send({"type": "ping"})
    assert await socket.receive() == {"type": "pong"}
    await socket.send({"id": "q", "type": "subscribe", "payload": {"query": "{ __typename }"}})
    assert await socket.receive() == {
        "id": "q",
        "type": "next",
        "payload": {"data": {"__typename": "Query"}},
    }
    assert await socket.receive() == {"id": "q", "type": "complete"}
    await socket.send({"id": "bad", "type": "subscribe", "payload": {"query": "{ nope }"}})
    error = await socket.receive()
    assert error["type"] == "error" and error["id"] == "bad"
    assert "nope" in error["payload"][0]["message"]
    await socket.close()


async def test_connection_init_payload_reaches_the_context() -> None:
    socket = await connected(make_app(), {"token": "abc"})
    query = '{ connectionParam(key: "token") }'
    await socket.send({"id": "p", "type": "subscribe", "payload": {"query": query}})
    assert await socket.receive() == {
        "id": "p",
        "type": "next",
        "payload": {"data": {"connectionParam": "abc"}},
    }
    await socket.close()


@pytest.fixture(params=["memory", "redis"])
async def channel_pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Channels, Channels]]:
    """Two Channels instances (two workers) on one broker; memory is one process's pair."""
    if request.param == "memory":
        shared = Channels("memory://")
        yield shared, shared
        await shared.close()
        return
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis_asyncio.RedisError) as exc:
        if os.environ.get("COVET_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"Redis not reachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    prefix = f"gqltest{secrets.token_hex(5)}:"
    first, second = Channels(REDIS_URL, prefix=prefix), Channels(REDIS_URL, prefix=prefix)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_subscription_gets_events_published_by_another_worker(
    data: Data, channel_pair: tuple[Channels, Channels]
) -> None:
    listening, publishing = channel_pair
    worker_a = make_app(channels=listening)
    worker_b = make_app(channels=publishing)
    post = data.posts[3]
    socket = await connected(worker_a)
    await socket.send(
        {
            "id": "s1",
            "type": "subscribe",
            "payload": {"query": SUBSCRIBE, "variables": {"id": str(post.id)}},
        }
    )
    await asyncio.sleep(0.3)  # let the subscription reach the broker before publishing
    async with client_for(worker_b) as client:
        await client.post("/login", json={"email": "reader@example.com", "password": PASSWORD})
        added = await gql(client, ADD_COMMENT, {"id": str(post.id)})
        assert added.json() == {"data": {"addComment": {"body": "live"}}}
    event = await socket.receive()
    assert event == {
        "id": "s1",
        "type": "next",
        "payload": {
            "data": {
                "commentAdded": {
                    "body": "live",
                    "post": {"title": "Post 03"},
                    "author": {"name": "reader@example.com"},
                }
            }
        },
    }
    await socket.send({"id": "s1", "type": "complete"})
    await socket.send({"type": "ping"})
    assert await socket.receive() == {"type": "pong"}  # still open after the client's complete
    await socket.close()


async def test_closing_the_socket_ends_its_subscriptions(data: Data) -> None:
    channels = Channels("memory://")
    socket = await connected(make_app(channels=channels))
    await socket.send(
        {"id": "s", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"id": "1"}}}
    )
    await asyncio.sleep(0.05)
    await socket.close()
    assert socket.task.done()
    await channels.close()
