"""Server-sent events from a channel: framing, keep-alive, Last-Event-ID resume."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet, Request
from covet.channels import Channels, EventSourceResponse, InvalidEventIdError
from covet.testing import TestClient

if TYPE_CHECKING:
    from collections.abc import MutableMapping


def events_app(channels: Channels, names: list[str], **options: Any) -> Covet:
    app = Covet()

    @app.get("/events")
    async def events(request: Request) -> EventSourceResponse:
        return channels.event_stream(request, names, **options)

    return app


async def read_stream(
    app: Covet, *, events: int, headers: dict[str, str] | None = None, query: str = ""
) -> tuple[dict[str, str], list[str]]:
    """Run GET /events until ``events`` blank-line-separated blocks arrived, then disconnect."""
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    raw_headers.append((b"host", b"testserver"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/events",
        "raw_path": b"/events",
        "query_string": query.encode(),
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    enough = asyncio.Event()
    started: dict[str, str] = {}
    body = bytearray()
    sent_request = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await enough.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started["status"] = str(message["status"])
            started.update({k.decode(): v.decode() for k, v in message["headers"]})
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if body.count(b"\n\n") >= events:
                enough.set()

    await asyncio.wait_for(app(scope, receive, send), 10)
    blocks = body.decode().split("\n\n")
    return started, [block for block in blocks if block][:events]


def message_block(id_: int, channel: str, data: Any) -> str:
    envelope = {"type": "message", "channel": channel, "id": id_, "data": data}
    return f"id: {id_}\nevent: message\ndata: {json.dumps(envelope, separators=(',', ':'))}"


async def test_messages_are_framed_as_events_with_ids() -> None:
    channels = Channels()
    app = events_app(channels, ["news"])

    async def publish_soon() -> None:
        await asyncio.sleep(0.05)
        await channels.publish("news", {"title": "one"})
        await channels.publish("news", "two\nlines")

    publisher = asyncio.ensure_future(publish_soon())
    headers, blocks = await read_stream(app, events=3)
    await publisher
    assert headers["status"] == "200"
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    assert blocks == [
        "retry: 3000",
        message_block(1, "news", {"title": "one"}),
        message_block(2, "news", "two\nlines"),  # JSON keeps the event on one data line
    ]
    assert channels.hub().states == {}  # the disconnect ended the subscription


async def test_an_idle_stream_sends_keep_alive_comments() -> None:
    app = events_app(Channels(), ["quiet"], keepalive=0.05)
    _, blocks = await read_stream(app, events=3)
    assert blocks == ["retry: 3000", ": keep-alive", ": keep-alive"]


async def test_last_event_id_resumes_from_history() -> None:
    channels = Channels(history=10)
    for n in range(1, 5):
        await channels.publish("news", n)
    app = events_app(channels, ["news"])
    _, blocks = await read_stream(app, events=3, headers={"Last-Event-ID": "2"})
    assert blocks[1:] == [message_block(3, "news", 3), message_block(4, "news", 4)]
    # A client that cannot set headers passes the id in the query string.
    _, blocks = await read_stream(app, events=2, query="last_event_id=3")
    assert blocks[1:] == [message_block(4, "news", 4)]


async def test_resuming_past_the_history_sends_a_gap_event() -> None:
    channels = Channels(history=1)
    for n in range(1, 5):
        await channels.publish("news", n)
    app = events_app(channels, ["news"])
    _, blocks = await read_stream(app, events=3, headers={"Last-Event-ID": "1"})
    gap = {"type": "gap", "channel": "news", "after": 1, "missed": 2, "reason": "unavailable"}
    assert blocks[1:] == [
        f"event: gap\ndata: {json.dumps(gap, separators=(',', ':'))}",
        message_block(4, "news", 4),
    ]


async def test_a_stream_of_several_channels_carries_every_position() -> None:
    channels = Channels(history=10)
    await channels.publish("a", "a1")
    await channels.publish("b", "b1")
    await channels.publish("b", "b2")
    app = events_app(channels, ["a", "b"])
    _, blocks = await read_stream(app, events=3, headers={"Last-Event-ID": "a=0&b=1"})
    assert [block.splitlines()[0] for block in blocks[1:]] == ["id: a=1&b=1", "id: a=1&b=2"]


def test_an_id_this_stream_never_issued_is_a_400() -> None:
    client = TestClient(events_app(Channels(), ["news"]))
    for bad in ("abc", "-1", "1e3", "99999999999999999999"):
        response = client.get(
            "/events", headers={"Last-Event-ID": bad, "Accept": "application/json"}
        )
        assert response.status_code == 400, bad
        assert "is not an id of this event stream" in response.json()["detail"]
    multi = TestClient(events_app(Channels(), ["a", "b"]))
    response = multi.get("/events", headers={"Last-Event-ID": "c=1"})
    assert response.status_code == 400
    with pytest.raises(InvalidEventIdError):
        EventSourceResponse(Channels(), "news", last_event_id="x")
