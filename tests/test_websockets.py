"""Tests for covet.websockets.WebSocket, driven through covet.testing.TestClient."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

import covet.exceptions
from covet.exceptions import WebSocketDisconnect, WebSocketException
from covet.testing import TestClient
from covet.websockets import (
    DEFAULT_MAX_MESSAGE_SIZE,
    WebSocket,
    WebSocketClose,
    WebSocketState,
)
from covet.websockets import WebSocketDisconnect as ReexportedDisconnect

if TYPE_CHECKING:
    from covet.types import Receive, Scope, Send

Handler = Callable[[WebSocket], Awaitable[None]]


def make_app(handler: Handler, events: list[Any] | None = None, **options: Any) -> Any:
    """Wrap a handler the way the router does: WebSocketException closes with its code."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        websocket = WebSocket(scope, receive, send, **options)
        try:
            await handler(websocket)
        except WebSocketException as exc:
            if events is not None:
                events.append(("exception", exc.code))
            await websocket.close(exc.code, exc.reason)
        except WebSocketDisconnect as exc:
            if events is not None:
                events.append(("disconnect", exc.code))
        else:
            if events is not None:
                events.append("returned")

    return app


def test_disconnect_is_reexported() -> None:
    assert ReexportedDisconnect is covet.exceptions.WebSocketDisconnect
    assert DEFAULT_MAX_MESSAGE_SIZE == 1_048_576


def test_echo_text_with_iter_text_ends_cleanly() -> None:
    events: list[Any] = []

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text.upper())
        events.append(websocket.client_state)

    client = TestClient(make_app(echo, events))
    with client.websocket_connect("/ws") as session:
        session.send_text("hello")
        assert session.receive_text() == "HELLO"
        session.send_text("ünïcode ✓")
        assert session.receive_text() == "ÜNÏCODE ✓"
    assert events == [WebSocketState.DISCONNECTED, "returned"]


def test_echo_bytes_with_iter_bytes() -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for data in websocket.iter_bytes():
            await websocket.send_bytes(data[::-1])

    with TestClient(make_app(echo)).websocket_connect("/ws") as session:
        session.send_bytes(b"\x00\x01\xff")
        assert session.receive_bytes() == b"\xff\x01\x00"


@pytest.mark.parametrize("mode", ["text", "binary"])
def test_echo_json_in_both_modes(mode: Any) -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for data in websocket.iter_json(mode):
            await websocket.send_json({"got": data}, mode=mode)

    with TestClient(make_app(echo)).websocket_connect("/ws") as session:
        session.send_json({"a": [1, "é"]}, mode=mode)
        assert session.receive_json(mode=mode) == {"got": {"a": [1, "é"]}}
        session.send_json(None, mode=mode)
        message = session.receive()
        if mode == "text":
            assert message["text"] == '{"got":null}'
        else:
            assert message["bytes"] == b'{"got":null}'


def test_send_json_is_compact_utf8() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"name": "Zoë", "n": [1, 2]})
        await websocket.send_json({"b": True}, mode="binary")

    with TestClient(make_app(handler)).websocket_connect("/ws") as session:
        assert session.receive_text() == '{"name":"Zoë","n":[1,2]}'
        assert session.receive_bytes() == b'{"b":true}'


def test_subprotocol_and_accept_headers() -> None:
    async def handler(websocket: WebSocket) -> None:
        assert websocket.scope["subprotocols"] == ["chat.v2", "chat.v1"]
        await websocket.accept(subprotocol="chat.v1", headers={"X-Server": "covet"})
        await websocket.send_text("ok")

    client = TestClient(make_app(handler))
    with client.websocket_connect("/ws", subprotocols=["chat.v2", "chat.v1"]) as session:
        assert session.accepted_subprotocol == "chat.v1"
        assert (b"x-server", b"covet") in session.extra_headers
        assert session.receive_text() == "ok"


def test_accept_with_raw_header_pairs() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept(headers=[(b"X-Raw", b"1")])

    with TestClient(make_app(handler)).websocket_connect("/ws") as session:
        assert session.extra_headers == [(b"x-raw", b"1")]
        assert session.accepted_subprotocol is None


def test_accepting_a_subprotocol_the_client_did_not_offer_is_an_error() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="graphql-ws")

    client = TestClient(make_app(handler))
    with pytest.raises(ValueError, match="'graphql-ws' was not offered"):  # noqa: SIM117
        with client.websocket_connect("/ws", subprotocols=["chat"]):
            pass


def test_close_before_accept_rejects_with_code() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.close(code=4403, reason="forbidden")

    client = TestClient(make_app(handler))
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws"):
        pytest.fail("the connection must not open")
    assert info.value.code == 4403
    assert info.value.reason == "forbidden"


def test_websocket_close_app_rejects() -> None:
    client = TestClient(WebSocketClose(4001, "go away"))
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws"):
        pytest.fail("the connection must not open")
    assert (info.value.code, info.value.reason) == (4001, "go away")


def test_server_close_is_seen_by_the_client() -> None:
    events: list[Any] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("bye soon")
        await websocket.close(4000, "done")
        events.append(websocket.application_state)

    with TestClient(make_app(handler, events)).websocket_connect("/ws") as session:
        assert session.receive_text() == "bye soon"
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
        assert (info.value.code, info.value.reason) == (4000, "done")
        # Every later receive reports the same close.
        with pytest.raises(WebSocketDisconnect):
            session.receive_bytes()
    assert events == [WebSocketState.DISCONNECTED, "returned"]


def test_client_disconnect_mid_handler_ends_it_cleanly() -> None:
    events: list[Any] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        events.append(await websocket.receive_text())
        await websocket.receive_text()  # raises WebSocketDisconnect when the client leaves
        events.append("unreachable")

    with TestClient(make_app(handler, events)).websocket_connect("/ws") as session:
        session.send_text("first")
        session.close(1001)
    assert events == ["first", ("disconnect", 1001)]


def test_disconnect_escaping_a_raw_handler_is_a_normal_end() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        while True:
            await websocket.receive_text()

    with TestClient(app).websocket_connect("/ws") as session:
        session.send_text("x")
    # Leaving the block closed the connection; nothing was raised.


def test_sending_after_the_client_left_raises_disconnect() -> None:
    events: list[Any] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        assert (await websocket.receive())["type"] == "websocket.disconnect"
        try:
            await websocket.send_text("anyone?")
        except WebSocketDisconnect as exc:
            events.append(exc.code)
            raise

    with TestClient(make_app(handler, events)).websocket_connect("/ws") as session:
        session.send_text("hi")
        session.close()
    assert events == [1006, ("disconnect", 1006)]


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("x" * 11, "text"),
        ("é" * 6, "text"),  # 6 characters, 12 UTF-8 bytes
        (b"x" * 11, "bytes"),
    ],
)
def test_oversized_message_closes_with_1009(message: Any, kind: str) -> None:
    events: list[Any] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        async for _ in websocket.iter_text() if kind == "text" else websocket.iter_bytes():
            await websocket.send_text("fits")

    client = TestClient(make_app(handler, events, max_message_size=10))
    with client.websocket_connect("/ws") as session:
        if kind == "text":
            session.send_text(message[:10] if message[0] == "x" else "é" * 5)
            assert session.receive_text() == "fits"
            session.send_text(message)
        else:
            session.send_bytes(message[:10])
            assert session.receive_text() == "fits"
            session.send_bytes(message)
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert info.value.code == 1009
    assert "larger than 10 bytes" in info.value.reason
    assert events == ["returned"]


def test_wrong_message_kind_closes_with_1003() -> None:
    events: list[Any] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()

    with TestClient(make_app(handler, events)).websocket_connect("/ws") as session:
        session.send_bytes(b"binary")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert info.value.code == 1003
    assert info.value.reason == "Expected a text message, got a binary one."
    assert events == [("exception", 1003)]


def test_bytes_expected_text_received_closes_with_1003() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_bytes()

    with TestClient(make_app(handler)).websocket_connect("/ws") as session:
        session.send_text("text")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_bytes()
    assert info.value.code == 1003


@pytest.mark.parametrize("payload", ["{not json", "NaN", "[1,"])
def test_invalid_json_closes_with_1007(payload: str) -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_json()

    with TestClient(make_app(handler)).websocket_connect("/ws") as session:
        session.send_text(payload)
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert info.value.code == 1007
    assert info.value.reason.startswith("Invalid JSON message")


def test_invalid_json_mode_is_rejected() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        with pytest.raises(ValueError, match="Unsupported JSON mode 'xml'"):
            await websocket.send_json({}, mode="xml")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="Unsupported JSON mode 'xml'"):
            await websocket.receive_json(mode="xml")  # type: ignore[arg-type]
        await websocket.send_text("checked")

    with TestClient(make_app(handler)).websocket_connect("/ws") as session:
        assert session.receive_text() == "checked"


def states(websocket: WebSocket) -> tuple[WebSocketState, WebSocketState]:
    return websocket.client_state, websocket.application_state


def test_state_machine_errors() -> None:
    events: list[str] = []

    async def handler(websocket: WebSocket) -> None:
        connecting = WebSocketState.CONNECTING
        assert states(websocket) == (connecting, connecting)
        with pytest.raises(RuntimeError, match="Call accept\\(\\) first"):
            await websocket.send_text("too early")
        with pytest.raises(RuntimeError, match="Call accept\\(\\) before receiving"):
            await websocket.receive_text()
        await websocket.accept()
        connected = WebSocketState.CONNECTED
        assert states(websocket) == (connected, connected)
        with pytest.raises(RuntimeError, match=r"Cannot send 'websocket\.accept'"):
            await websocket.accept()
        assert await websocket.receive_text() == "ping"
        await websocket.close()
        with pytest.raises(RuntimeError, match="after the connection was closed"):
            await websocket.send_text("too late")
        message = await websocket.receive()
        assert message["type"] == "websocket.disconnect"
        with pytest.raises(RuntimeError, match="once the client has disconnected"):
            await websocket.receive()
        events.append("checked")

    with TestClient(make_app(handler)).websocket_connect("/ws") as session:
        session.send_text("ping")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
        assert info.value.code == 1000
    assert events == ["checked"]


def test_websocket_requires_a_websocket_scope() -> None:
    async def receive() -> Any:
        return {}

    async def send(message: Any) -> None:
        return None

    with pytest.raises(ValueError, match="'websocket' scope, got type 'http'"):
        WebSocket({"type": "http"}, receive, send)


def test_handler_exception_is_raised_in_the_test() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        raise KeyError("broken")

    with pytest.raises(KeyError, match="broken"):  # noqa: SIM117
        with TestClient(make_app(handler)).websocket_connect("/ws") as session:
            session.receive_text()


def test_handler_exception_closes_with_1011_when_not_raised() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        raise KeyError("broken")

    client = TestClient(make_app(handler), raise_server_exceptions=False)
    with client.websocket_connect("/ws") as session:
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
        assert info.value.code == 1011


def test_scope_carries_path_query_headers_and_cookies() -> None:
    seen: dict[str, Any] = {}

    async def handler(websocket: WebSocket) -> None:
        scope = websocket.scope
        seen.update(
            scheme=scope["scheme"],
            path=scope["path"],
            query=scope["query_string"],
            headers=dict(scope["headers"]),
            asgi=scope["asgi"],
        )
        await websocket.accept()

    client = TestClient(make_app(handler), cookies={"sid": "abc"})
    with client.websocket_connect("/chat/room?x=1", headers={"Origin": "http://testserver"}):
        pass
    assert seen["scheme"] == "ws"
    assert seen["path"] == "/chat/room"
    assert seen["query"] == b"x=1"
    assert seen["asgi"] == {"version": "3.0"}
    headers = seen["headers"]
    assert headers[b"host"] == b"testserver"
    assert headers[b"origin"] == b"http://testserver"
    assert headers[b"cookie"] == b"sid=abc"
    assert headers[b"upgrade"] == b"websocket"
    assert headers[b"sec-websocket-version"] == b"13"


# -- through covet.Covet ----------------------------------------------------------------


def make_covet_app(events: list[Any]) -> Any:
    from covet import Covet

    app = Covet()

    @app.websocket("/rooms/{room}", name="room")
    async def room(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        await websocket.send_json(
            {
                "room": room,
                "path_params": websocket.path_params,
                "token": websocket.query_params.get("token"),
                "cookie": websocket.cookies.get("sid"),
                "url": str(websocket.url),
                "self": str(websocket.url_for("room", room="lobby")),
            }
        )
        try:
            async for text in websocket.iter_text():
                await websocket.send_text(f"{room}: {text}")
        finally:
            events.append("room ended")

    @app.websocket("/strict")
    async def strict(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            # A client disconnect raises WebSocketDisconnect out of the handler.
            events.append(await websocket.receive_text())

    return app


def test_covet_route_exposes_connection_details() -> None:
    events: list[Any] = []
    client = TestClient(make_covet_app(events), cookies={"sid": "s1"})
    with client, client.websocket_connect("/rooms/blue?token=t") as session:
        info = session.receive_json()
        session.send_text("hi")
        assert session.receive_text() == "blue: hi"
    assert info == {
        "room": "blue",
        "path_params": {"room": "blue"},
        "token": "t",
        "cookie": "s1",
        "url": "ws://testserver/rooms/blue?token=t",
        "self": "ws://testserver/rooms/lobby",
    }
    assert events == ["room ended"]


def test_covet_treats_escaping_disconnect_as_a_normal_end() -> None:
    events: list[Any] = []
    with TestClient(make_covet_app(events)) as client:
        with client.websocket_connect("/strict") as session:
            session.send_text("one")
            session.close(1001)
        # The app is still healthy afterwards.
        with client.websocket_connect("/strict") as session:
            session.send_text("two")
    assert events == ["one", "two"]


def test_covet_closes_with_the_code_of_a_websocket_exception() -> None:
    events: list[Any] = []
    client = TestClient(make_covet_app(events))
    with client, client.websocket_connect("/strict") as session:
        session.send_bytes(b"not text")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert info.value.code == 1003


def test_covet_unknown_websocket_path_is_rejected() -> None:
    client = TestClient(make_covet_app([]))
    with client, pytest.raises(WebSocketDisconnect), client.websocket_connect("/nope"):
        pass
