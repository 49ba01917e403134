"""Tests for covet.testing.TestClient with raw ASGI applications."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import httpx
import pytest

from covet.exceptions import WebSocketDisconnect
from covet.testing import TestClient

if TYPE_CHECKING:
    from covet.types import Message, Receive, Scope, Send


async def read_body(receive: Receive) -> tuple[bytes, int]:
    body, messages = b"", 0
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        body += message.get("body", b"")
        messages += 1
        if not message.get("more_body", False):
            return body, messages


async def send_json(send: Send, data: Any, status: int = 200, headers: Any = ()) -> None:
    body = json.dumps(data).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def scope_summary(scope: Scope) -> dict[str, Any]:
    return {
        "type": scope["type"],
        "asgi": scope["asgi"],
        "http_version": scope["http_version"],
        "method": scope.get("method"),
        "scheme": scope["scheme"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode(),
        "root_path": scope["root_path"],
        "query_string": scope["query_string"].decode(),
        "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
        "client": list(scope["client"]),
        "server": list(scope["server"]),
        # The one extension: the hook through which covet's error layer reports errors.
        "extensions": sorted(scope["extensions"]),
    }


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo the scope, the body and its chunking back as JSON."""
    assert scope["type"] == "http"
    body, messages = await read_body(receive)
    await send_json(
        send,
        {"scope": scope_summary(scope), "body": body.decode("latin-1"), "messages": messages},
    )


def test_get_builds_a_complete_asgi_scope() -> None:
    with TestClient(echo_app) as client:
        data = client.get("/a%20b/c", params={"q": "x y"}).json()
    scope = data["scope"]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/a b/c"
    assert scope["raw_path"] == "/a%20b/c"
    assert scope["root_path"] == ""
    assert scope["query_string"] == "q=x+y"
    assert scope["client"] == ["testclient", 50000]
    assert scope["server"] == ["testserver", 80]
    assert scope["extensions"] == ["covet.errors"]
    headers = dict(scope["headers"])
    assert headers["host"] == "testserver"
    assert headers["user-agent"] == "testclient"
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert data["body"] == ""


def test_https_base_url_and_custom_client_address() -> None:
    client = TestClient(echo_app, base_url="https://example.org:8443", client=("10.0.0.1", 1234))
    with client:
        scope = client.get("/").json()["scope"]
    assert scope["scheme"] == "https"
    assert scope["server"] == ["example.org", 8443]
    assert scope["client"] == ["10.0.0.1", 1234]
    assert dict(scope["headers"])["host"] == "example.org:8443"


def test_query_params_reach_the_query_string() -> None:
    with TestClient(echo_app) as client:
        in_url = client.get("/search?a=1&a=%C3%A9").json()["scope"]
        as_params = client.get("/search", params={"b": ["2", "3"]}).json()["scope"]
    assert parse_qsl(in_url["query_string"]) == [("a", "1"), ("a", "é")]
    assert parse_qsl(as_params["query_string"]) == [("b", "2"), ("b", "3")]


def test_post_json_body_and_headers() -> None:
    with TestClient(echo_app, headers={"X-Default": "yes"}) as client:
        data = client.post("/items", json={"name": "ünï"}, headers={"X-Extra": "1"}).json()
    headers = dict(data["scope"]["headers"])
    assert data["scope"]["method"] == "POST"
    assert json.loads(data["body"].encode("latin-1")) == {"name": "ünï"}
    assert headers["content-type"] == "application/json"
    assert headers["x-default"] == "yes"
    assert headers["x-extra"] == "1"


def test_form_and_file_uploads_reach_the_app() -> None:
    with TestClient(echo_app) as client:
        form = client.post("/form", data={"a": "1", "b": "two"}).json()
        upload = client.post(
            "/upload", data={"title": "t"}, files={"doc": ("a.txt", b"hello", "text/plain")}
        ).json()
    assert form["body"] == "a=1&b=two"
    assert dict(form["scope"]["headers"])["content-type"] == "application/x-www-form-urlencoded"
    content_type = dict(upload["scope"]["headers"])["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    assert 'filename="a.txt"' in upload["body"]
    assert "hello" in upload["body"]


def test_large_bodies_are_streamed_in_chunks() -> None:
    payload = b"x" * 200_000
    with TestClient(echo_app) as client:
        data = client.put("/big", content=payload).json()
    assert len(data["body"]) == len(payload)
    assert data["messages"] >= 4


def test_streamed_generator_body_is_streamed() -> None:
    def gen() -> Any:
        yield b"one,"
        yield b""
        yield b"two"

    with TestClient(echo_app) as client:
        data = client.post("/gen", content=gen()).json()
    assert data["body"] == "one,two"
    assert data["messages"] == 2


async def chunked_response_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"1")]})
    for part in (b"a", b"b", b"c"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def test_response_body_is_collected_across_messages() -> None:
    with TestClient(chunked_response_app) as client:
        response = client.get("/")
    assert response.status_code == 201
    assert response.content == b"abc"
    assert response.headers["x-a"] == "1"
    # The transport does not invent a Content-Length the app did not send.
    assert "content-length" not in response.headers


async def disconnect_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await read_body(receive)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})
    assert (await receive())["type"] == "http.disconnect"


def test_receive_after_the_response_reports_disconnect() -> None:
    with TestClient(disconnect_app) as client:
        assert client.get("/").text == "done"


async def cookie_app(scope: Scope, receive: Receive, send: Send) -> None:
    headers = dict(scope["headers"])
    if scope["path"] == "/login":
        await send_json(send, {}, headers=[(b"set-cookie", b"session=abc; Path=/")])
    else:
        await send_json(send, {"cookie": headers.get(b"cookie", b"").decode()})


def test_cookies_persist_across_requests() -> None:
    with TestClient(cookie_app, cookies={"theme": "dark"}) as client:
        assert client.get("/me").json() == {"cookie": "theme=dark"}
        client.get("/login")
        cookie = client.get("/me").json()["cookie"]
    assert sorted(cookie.split("; ")) == ["session=abc", "theme=dark"]


async def redirect_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/old":
        await send(
            {"type": "http.response.start", "status": 307, "headers": [(b"location", b"/new")]}
        )
        await send({"type": "http.response.body", "body": b""})
    else:
        await send_json(send, {"path": scope["path"]})


def test_redirects_are_followed_by_default() -> None:
    with TestClient(redirect_app) as client:
        response = client.get("/old")
        assert response.json() == {"path": "/new"}
        assert [r.status_code for r in response.history] == [307]
        not_followed = client.get("/old", follow_redirects=False)
    assert not_followed.status_code == 307
    assert not_followed.headers["location"] == "/new"


def test_follow_redirects_can_be_disabled_per_client() -> None:
    with TestClient(redirect_app, follow_redirects=False) as client:
        assert client.get("/old").status_code == 307


def test_root_path_is_prefixed_like_uvicorn() -> None:
    with TestClient(echo_app, root_path="/api") as client:
        scope = client.get("/items/1").json()["scope"]
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/items/1"
    assert scope["raw_path"] == "/api/items/1"
    assert client.root_path == "/api"


class BoomError(Exception):
    pass


async def failing_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/after-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
    raise BoomError("kaboom")


def test_server_exceptions_are_raised_in_the_test() -> None:
    with TestClient(failing_app) as client, pytest.raises(BoomError, match="kaboom"):
        client.get("/")


def test_server_exceptions_become_500_when_not_raised() -> None:
    with TestClient(failing_app, raise_server_exceptions=False) as client:
        response = client.get("/")
        assert response.status_code == 500
        assert response.content == b""
        partial = client.get("/after-start")
    assert partial.status_code == 200


def test_raise_server_exceptions_can_be_toggled() -> None:
    client = TestClient(failing_app)
    assert client.raise_server_exceptions is True
    client.raise_server_exceptions = False
    with client:
        assert client.get("/").status_code == 500


async def silent_app(scope: Scope, receive: Receive, send: Send) -> None:
    return None


def test_app_that_sends_no_response_is_an_error() -> None:
    with TestClient(silent_app) as client:
        with pytest.raises(RuntimeError, match="without sending a response"):
            client.get("/nothing")
        client.raise_server_exceptions = False
        assert client.get("/nothing").status_code == 500


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"type": "http.response.body", "body": b""}], "before 'http.response.start'"),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.start", "status": 200},
            ],
            "twice",
        ),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.body", "body": b""},
                {"type": "http.response.body", "body": b"late"},
            ],
            "after the response was complete",
        ),
        ([{"type": "http.response.push"}], "Unexpected ASGI message type"),
    ],
)
def test_protocol_violations_are_reported(messages: list[Message], error: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        for message in messages:
            await send(message)

    with TestClient(app) as client, pytest.raises(RuntimeError, match=error):
        client.get("/")


def make_lifespan_app(events: list[str], *, fail: str | None = None) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if fail == "startup":
                        await send({"type": "lifespan.startup.failed", "message": "no database"})
                        return
                    events.append("startup")
                    scope["state"]["loop"] = id(asyncio.get_running_loop())
                    scope["state"]["greeting"] = "hi"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    events.append("shutdown")
                    if fail == "shutdown":
                        await send({"type": "lifespan.shutdown.failed", "message": "stuck"})
                    else:
                        await send({"type": "lifespan.shutdown.complete"})
                    return
        await read_body(receive)
        await send_json(
            send,
            {
                "loop": id(asyncio.get_running_loop()),
                "thread": threading.get_ident(),
                "state": {k: v for k, v in scope["state"].items() if k != "loop"},
            },
        )

    return app


def test_lifespan_runs_in_the_context_manager() -> None:
    events: list[str] = []
    client = TestClient(make_lifespan_app(events))
    assert events == []
    with client:
        assert events == ["startup"]
        assert client.get("/").json()["state"] == {"greeting": "hi"}
    assert events == ["startup", "shutdown"]


def test_the_same_event_loop_serves_every_request() -> None:
    events: list[str] = []
    with TestClient(make_lifespan_app(events)) as client:
        startup_loop = client.app_state["loop"]
        first, second = client.get("/").json(), client.get("/").json()
    assert first["loop"] == second["loop"] == startup_loop
    assert first["thread"] == second["thread"] != threading.get_ident()


def test_requests_without_context_manager_skip_lifespan() -> None:
    events: list[str] = []
    client = TestClient(make_lifespan_app(events))
    try:
        first, second = client.get("/").json(), client.get("/").json()
    finally:
        client.close()
    assert events == []
    assert first["loop"] == second["loop"]
    with pytest.raises(RuntimeError, match="closed"):
        client.get("/")


def test_failed_startup_raises_with_its_message() -> None:
    events: list[str] = []
    with pytest.raises(RuntimeError, match="failed to start: no database"):  # noqa: SIM117
        with TestClient(make_lifespan_app(events, fail="startup")):
            pytest.fail("the body must not run")


def test_failed_shutdown_raises_with_its_message() -> None:
    events: list[str] = []
    with pytest.raises(RuntimeError, match="failed to shut down: stuck"):  # noqa: SIM117
        with TestClient(make_lifespan_app(events, fail="shutdown")):
            pass
    assert events == ["startup", "shutdown"]


def test_exception_during_startup_is_reraised() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise BoomError("pool unavailable")

    with pytest.raises(BoomError, match="pool unavailable"), TestClient(app):
        pytest.fail("the body must not run")


def test_app_without_lifespan_support_is_tolerated() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"unsupported scope {scope['type']!r}")
        await send_json(send, {"ok": True})

    with TestClient(app) as client:
        assert client.get("/").json() == {"ok": True}


def test_closing_the_client_stops_its_thread() -> None:
    client = TestClient(echo_app)
    client.get("/")
    thread = client._portal._thread
    assert thread is not None
    assert thread.is_alive()
    client.close()
    assert not thread.is_alive()


def test_is_an_httpx_client() -> None:
    with TestClient(echo_app) as client:
        assert isinstance(client, httpx.Client)
        assert client.request("HEAD", "/").status_code == 200
        assert client.options("/").json()["scope"]["method"] == "OPTIONS"


# -- websocket sessions with raw ASGI apps ------------------------------------------


async def raw_ws_echo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        data = {key: message[key] for key in ("text", "bytes") if key in message}
        await send({"type": "websocket.send", **data})


def test_websocket_session_round_trip_with_raw_app() -> None:
    with TestClient(raw_ws_echo) as client, client.websocket_connect("/ws") as session:
        session.send_text("a")
        assert session.receive_text() == "a"
        session.send_bytes(b"b")
        assert session.receive_bytes() == b"b"
        session.send_json({"c": 1})
        assert session.receive_json() == {"c": 1}
        session.send_json([2], mode="binary")
        assert session.receive_json(mode="binary") == [2]
        session.send_text("x")
        with pytest.raises(TypeError, match="Use receive_text"):
            session.receive_bytes()
        session.send_bytes(b"y")
        with pytest.raises(TypeError, match="Use receive_bytes"):
            session.receive_text()
        with pytest.raises(ValueError, match="Unsupported JSON mode"):
            session.send_json({}, mode="yaml")  # type: ignore[arg-type]


def test_websocket_scope_uses_ws_schemes_and_root_path() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await send({"type": "websocket.close", "code": 1000})

    client = TestClient(app, base_url="https://secure.test", root_path="/sub")
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws?token=1"):
        pass
    scope = seen[0]
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "wss"
    assert scope["path"] == "/sub/ws"
    assert scope["root_path"] == "/sub"
    assert scope["query_string"] == b"token=1"
    assert scope["subprotocols"] == []
    assert scope["server"] == ("secure.test", 443)
    assert "method" not in scope


def test_app_returning_without_accepting_is_a_rejection() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    with pytest.raises(WebSocketDisconnect) as info, TestClient(app).websocket_connect("/"):
        pass
    assert info.value.code == 1006


def test_app_returning_after_accept_closes_normally() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "only"})

    with TestClient(app).websocket_connect("/") as session:
        assert session.receive_text() == "only"
        assert session.receive() == {"type": "websocket.close", "code": 1000, "reason": ""}
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert info.value.code == 1000


def test_websocket_exception_before_accept_is_raised() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise BoomError("handshake")

    with pytest.raises(BoomError, match="handshake"), TestClient(app).websocket_connect("/"):
        pass


def test_websocket_bad_message_type_from_app_is_reported() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})

    with (
        pytest.raises(RuntimeError, match="for a websocket"),
        TestClient(app).websocket_connect("/"),
    ):
        pass


def test_handler_that_ignores_the_close_is_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    import covet.testing

    monkeypatch.setattr(covet.testing, "_WEBSOCKET_CLOSE_TIMEOUT", 0.1)
    cancelled: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(RuntimeError, match="still running"):  # noqa: SIM117
        with TestClient(app).websocket_connect("/"):
            pass
    assert cancelled == [True]


def test_websocket_uses_the_clients_event_loop() -> None:
    events: list[str] = []
    loops: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await make_lifespan_app(events)(scope, receive, send)
            return
        loops.append(id(asyncio.get_running_loop()))
        await send({"type": "websocket.close"})

    with TestClient(app) as client:
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/"):
            pass
        assert loops == [client.app_state["loop"]]
