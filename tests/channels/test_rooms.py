"""Websocket rooms: join, broadcast, presence, per-user channels, auth and slow sockets."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet, Request, WebSocket, WebSocketDisconnect
from covet.channels import Channels, Member
from covet.testing import TestClient

if TYPE_CHECKING:
    from covet.types import ASGIApp, Receive, Scope, Send


class User:
    is_authenticated = True

    def __init__(self, pk: int) -> None:
        self.pk = pk


class Anonymous:
    is_authenticated = False
    pk = None


class QueryUserMiddleware:
    """Stand-in for AuthenticationMiddleware: ``?user=7`` logs user 7 in."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = dict(
            part.split("=", 1) for part in scope["query_string"].decode().split("&") if "=" in part
        )
        scope["user"] = User(int(query["user"])) if "user" in query else Anonymous()
        await self.app(scope, receive, send)


def chat_app(channels: Channels, **socket_options: Any) -> Covet:
    app = Covet()
    app.add_middleware(QueryUserMiddleware)

    @app.websocket("/rooms/{room}")
    async def room(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        last_id = websocket.query_params.get("last_id")
        name = websocket.query_params.get("name", "anon")
        async with channels.socket(websocket, presence={"name": name}, **socket_options) as sock:
            await sock.join(room, last_id=None if last_id is None else int(last_id))
            await websocket.send_json({"type": "joined", "rooms": sorted(sock.rooms)})
            async for command in websocket.iter_json():
                if command == "burst":
                    for n in range(20):
                        await channels.publish(room, n)
                else:
                    await channels.publish(room, {"from": name, "text": command})

    @app.post("/rooms/{room}")
    async def broadcast(request: Request, room: str) -> dict[str, int]:
        return {"id": await channels.publish(room, await request.json())}

    @app.get("/rooms/{room}/members")
    async def members(request: Request, room: str) -> list[dict[str, Any]]:
        return [member.info for member in await channels.presence(room)]

    @app.post("/users/{pk:int}")
    async def notify(request: Request, pk: int) -> dict[str, int]:
        return {"id": await channels.notify_user(pk, await request.json())}

    return app


def test_broadcast_reaches_every_socket_in_the_room_and_presence_follows() -> None:
    channels = Channels()
    client = TestClient(chat_app(channels))
    with (
        client.websocket_connect("/rooms/lobby?name=ann") as ann,
        client.websocket_connect("/rooms/lobby?name=bob") as bob,
        client.websocket_connect("/rooms/other?name=cy") as cy,
    ):
        for ws in (ann, bob, cy):
            assert ws.receive_json()["type"] == "joined"
        names = sorted(m["name"] for m in client.get("/rooms/lobby/members").json())
        assert names == ["ann", "bob"]
        # From a request handler ...
        assert client.post("/rooms/lobby", json={"text": "hello"}).json() == {"id": 1}
        # ... and from a socket.
        ann.send_json("hi bob")
        for ws in (ann, bob):
            assert ws.receive_json() == {
                "type": "message",
                "channel": "lobby",
                "id": 1,
                "data": {"text": "hello"},
            }
            assert ws.receive_json()["data"] == {"from": "ann", "text": "hi bob"}
        cy.send_json("only here")
        assert cy.receive_json()["channel"] == "other"
        bob.close()
        deadline = time.monotonic() + 5
        while len(client.get("/rooms/lobby/members").json()) != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get("/rooms/lobby/members").json() == [{"name": "ann"}]


def test_a_joining_socket_resumes_from_its_last_id() -> None:
    channels = Channels(history=5)
    client = TestClient(chat_app(channels))
    for n in range(1, 4):
        client.post("/rooms/news", json=n)
    with client.websocket_connect("/rooms/news?last_id=1") as ws:
        assert ws.receive_json()["type"] == "joined"
        assert [ws.receive_json()["data"] for _ in range(2)] == [2, 3]


def test_a_logged_in_socket_gets_its_user_channel() -> None:
    channels = Channels()
    client = TestClient(chat_app(channels))
    with (
        client.websocket_connect("/rooms/lobby?user=7") as mine,
        client.websocket_connect("/rooms/lobby") as anonymous,
    ):
        assert mine.receive_json()["rooms"] == ["lobby"]
        anonymous.receive_json()
        client.post("/users/7", json={"note": "you have mail"})
        client.post("/rooms/lobby", json="everyone")
        assert mine.receive_json() == {
            "type": "message",
            "channel": "user:7",
            "id": 1,
            "data": {"note": "you have mail"},
        }
        assert mine.receive_json()["data"] == "everyone"
        assert anonymous.receive_json()["data"] == "everyone"  # no user:7 message first


def test_login_required_refuses_an_anonymous_socket_with_1008() -> None:
    client = TestClient(chat_app(Channels(), login_required=True))
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/rooms/lobby") as ws,
    ):
        ws.receive_json()
    assert refused.value.code == 1008
    with client.websocket_connect("/rooms/lobby?user=1") as ws:
        assert ws.receive_json()["type"] == "joined"


def test_a_socket_too_slow_under_disconnect_is_closed_with_1013() -> None:
    channels = Channels()
    client = TestClient(chat_app(channels, max_queue=4, on_overflow="disconnect"))
    with client.websocket_connect("/rooms/fast") as ws:
        ws.receive_json()
        ws.send_json("burst")  # 20 messages published before the socket can send one
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
        assert closed.value.code == 1013


def test_a_slow_socket_under_drop_oldest_gets_a_gap_message() -> None:
    channels = Channels()
    client = TestClient(chat_app(channels, max_queue=4))
    with client.websocket_connect("/rooms/fast") as ws:
        ws.receive_json()
        ws.send_json("burst")
        first = ws.receive_json()
        assert first == {
            "type": "gap",
            "channel": "fast",
            "after": 0,
            "missed": 16,
            "reason": "overflow",
        }
        assert [ws.receive_json()["data"] for _ in range(4)] == [16, 17, 18, 19]


async def test_presence_expires_when_a_worker_stops_refreshing(make_channels) -> None:
    worker = make_channels(presence_ttl=0.6)
    # Another process sees the same records; memory:// is one process.
    observer = worker if make_channels.backend == "memory" else make_channels(presence_ttl=0.6)
    keeper = worker.presence_keeper()
    await keeper.add("room", "alive", b'{"name":"ann"}')
    await keeper.add("room", "dying", b'{"name":"bob"}')
    assert sorted(m.id for m in await observer.presence("room")) == ["alive", "dying"]
    # "dying" stops being refreshed, as when its worker is killed; "alive" is kept.
    keeper.records.pop(("room", "dying"))
    await asyncio.sleep(1.5)
    assert await observer.presence("room") == [Member("alive", {"name": "ann"})]
    await keeper.remove("room", "alive")
    assert await observer.presence("room") == []
