from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet, HTTPException, JSONResponse, PlainTextResponse, Request, WebSocket
from covet.exceptions import ImproperlyConfigured, WebSocketDisconnect, WebSocketException
from covet.middleware.errors import ExceptionMiddleware, ServerErrorMiddleware
from covet.requests import ClientDisconnect
from covet.testing import TestClient

if TYPE_CHECKING:
    from covet.types import Message, Receive, Scope, Send


class PaymentError(Exception):
    pass


class CardDeclinedError(PaymentError):
    pass


class Passthrough:
    """A do-nothing user middleware: with it, the error layers are separate."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(autouse=True, params=["fused", "layered"])
def stack_shape(request: pytest.FixtureRequest) -> str:
    """Run every test with and without user middleware between the error layers."""
    STACK["shape"] = request.param
    return str(request.param)


STACK = {"shape": "fused"}


def new_app(**options: Any) -> Covet:
    app = Covet(**options)
    if STACK["shape"] == "layered":
        app.add_middleware(Passthrough)
    return app


def failing_app(**options: Any) -> Covet:
    app = new_app(**options)

    @app.get("/boom")
    async def boom(request: Request) -> str:
        raise ValueError("secret <script>alert(1)</script> detail")

    @app.get("/declined")
    async def declined(request: Request) -> str:
        raise CardDeclinedError("card 4242 declined")

    @app.get("/teapot")
    async def teapot(request: Request) -> str:
        raise HTTPException(418, "I am a teapot", headers={"X-Brew": "no"})

    @app.get("/gone")
    async def gone(request: Request) -> str:
        raise HTTPException(410)

    @app.get("/not-modified")
    async def not_modified(request: Request) -> str:
        raise HTTPException(304)

    return app


# ------------------------------------------------------------------- production


def test_production_500_has_no_internals_and_is_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="covet.error"):  # noqa: SIM117
        with TestClient(failing_app(), raise_server_exceptions=False) as client:
            response = client.get("/boom?x=1", headers={"accept": "*/*"})
            as_json = client.get("/boom", headers={"accept": "application/json"})
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert (as_json.status_code, as_json.json()) == (500, {"detail": "Internal Server Error"})
    [record, _] = [r for r in caplog.records if r.name == "covet.error"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "Unhandled ValueError while serving GET '/boom'"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)


def test_exception_reaches_the_test_client(caplog):
    # Not re-raised to the server, but reported through the scope extension the
    # test client installs: raise_server_exceptions still raises it in the test.
    with caplog.at_level(logging.ERROR, logger="covet.error"):  # noqa: SIM117
        with TestClient(failing_app()) as client, pytest.raises(ValueError, match="secret"):
            client.get("/boom")
    assert len([r for r in caplog.records if r.name == "covet.error"]) == 1


def test_the_connection_serves_more_requests_after_a_500():
    with TestClient(failing_app(), raise_server_exceptions=False) as client:
        response = client.get("/boom")
        assert response.status_code == 500
        assert "connection" not in response.headers
        assert client.get("/teapot").status_code == 418


def test_log_message_escapes_control_characters_in_path(caplog):
    with caplog.at_level(logging.ERROR, logger="covet.error"):  # noqa: SIM117
        with TestClient(failing_app(), raise_server_exceptions=False) as client:
            client.get("/boom%0AFAKE LOG LINE")
    # The path had no route: nothing was logged, and no newline was injected.
    assert all("\nFAKE" not in r.getMessage() for r in caplog.records)


def test_custom_500_handler_outside_debug():
    app = failing_app()

    @app.exception_handler(500)
    async def oops(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "oops", "type": type(exc).__name__}, status_code=500)

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": "oops", "type": "ValueError"}


def test_exception_class_handler_for_everything_still_logs(caplog):
    app = failing_app()
    app.add_exception_handler(Exception, lambda request, exc: PlainTextResponse("sorry", 500))
    with caplog.at_level(logging.ERROR, logger="covet.error"):  # noqa: SIM117
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/boom")
            assert client.get("/teapot").status_code == 418
    assert (response.status_code, response.text) == (500, "sorry")
    assert any(r.name == "covet.error" for r in caplog.records)


def test_failing_500_handler_falls_back_to_generic_response(caplog):
    app = failing_app()

    @app.exception_handler(500)
    def broken(request: Request, exc: Exception) -> str:
        raise RuntimeError("handler bug")

    with caplog.at_level(logging.ERROR, logger="covet.error"):  # noqa: SIM117
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/boom")
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert any("500 handler" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------- debug


def test_debug_page_html_is_escaped():
    with TestClient(failing_app(debug=True), raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"accept": "text/html,*/*"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    body = response.text
    assert "ValueError: secret &lt;script&gt;alert(1)&lt;/script&gt; detail" in body
    assert "<script>" not in body
    assert "Traceback (most recent call last)" in body
    assert "GET /boom" in body
    assert "in boom" in body


def test_debug_page_json_for_api_clients():
    with TestClient(failing_app(debug=True), raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"accept": "application/json"})
    assert response.status_code == 500
    data = response.json()
    assert data["error"] == "ValueError"
    assert data["detail"] == "secret <script>alert(1)</script> detail"
    assert data["traceback"][0] == "Traceback (most recent call last):"
    assert data["traceback"][-1].startswith("ValueError: secret")


def test_debug_head_request_has_no_body():
    with TestClient(failing_app(debug=True), raise_server_exceptions=False) as client:
        response = client.head("/boom")
    assert response.status_code == 500
    assert response.content == b""


# -------------------------------------------------------------------- handlers


def test_http_exception_default_response_text_and_json():
    with TestClient(failing_app()) as client:
        response = client.get("/teapot")
        assert (response.status_code, response.text) == (418, "I am a teapot")
        assert response.headers["x-brew"] == "no"
        response = client.get("/teapot", headers={"accept": "application/json"})
        assert response.json() == {"detail": "I am a teapot"}
        assert response.headers["x-brew"] == "no"
        assert client.get("/gone").text == "Gone"
        response = client.get("/nowhere", headers={"accept": "application/problem+json"})
        assert response.json() == {"detail": "Not Found"}


def test_http_exception_without_body_statuses():
    with TestClient(failing_app()) as client:
        response = client.get("/not-modified")
    assert response.status_code == 304
    assert response.content == b""


def test_handler_by_class_uses_the_mro():
    app = failing_app()

    @app.exception_handler(PaymentError)
    async def payment(request: Request, exc: PaymentError) -> JSONResponse:
        return JSONResponse({"payment": str(exc)}, status_code=402)

    with TestClient(app) as client:
        response = client.get("/declined")
    assert response.status_code == 402
    assert response.json() == {"payment": "card 4242 declined"}


def test_handler_by_status_code_and_sync_handler():
    app = failing_app()

    @app.exception_handler(404)
    def not_found(request: Request, exc: HTTPException) -> dict[str, str]:
        return {"missing": request.url.path}

    app.add_exception_handler(418, lambda request, exc: PlainTextResponse("short", 418))
    with TestClient(app) as client:
        response = client.get("/nope")
        assert response.status_code == 200  # the handler chose to return a plain dict
        assert response.json() == {"missing": "/nope"}
        assert client.get("/teapot").text == "short"


def test_status_handler_for_405_keeps_control():
    app = failing_app()

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc: HTTPException) -> PlainTextResponse:
        return PlainTextResponse("no", status_code=405, headers=exc.headers)

    with TestClient(app) as client:
        response = client.post("/boom")
    assert (response.status_code, response.text, response.headers["allow"]) == (
        405,
        "no",
        "GET, HEAD",
    )


def test_handler_registration_validation():
    app = new_app()
    with pytest.raises(ImproperlyConfigured, match="not an HTTP status"):
        app.add_exception_handler(42, lambda r, e: None)
    with pytest.raises(ImproperlyConfigured, match="neither an exception class"):
        app.add_exception_handler("oops", lambda r, e: None)  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="not callable"):
        app.add_exception_handler(ValueError, "handler")  # type: ignore[arg-type]


def test_handlers_in_constructor():
    app = failing_app(exception_handlers={ValueError: lambda request, exc: "handled"})
    with TestClient(app) as client:
        assert client.get("/boom").text == "handled"


# -------------------------------------------------------------------- websockets


def websocket_app() -> Covet:
    app = new_app()

    @app.websocket("/deny")
    async def deny(websocket: WebSocket) -> None:
        raise WebSocketException(4001, "go away")

    @app.websocket("/forbidden")
    async def forbidden(websocket: WebSocket) -> None:
        raise HTTPException(403, "no entry")

    @app.websocket("/crash")
    async def crash(websocket: WebSocket) -> None:
        await websocket.accept()
        raise RuntimeError("crash")

    @app.websocket("/leave")
    async def leave(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()

    return app


def test_websocket_exception_closes_with_its_code():
    with TestClient(websocket_app()) as client:
        with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/deny"):
            pass
        assert info.value.code == 4001
        with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/forbidden"):
            pass
        assert info.value.code == 1008


def test_websocket_crash_closes_1011_and_logs(caplog):
    with caplog.at_level(logging.ERROR, logger="covet.error"):  # noqa: SIM117
        with TestClient(websocket_app(), raise_server_exceptions=False) as client:
            with client.websocket_connect("/crash") as session:
                with pytest.raises(WebSocketDisconnect) as info:
                    session.receive_text()
    assert info.value.code == 1011
    assert any("WEBSOCKET '/crash'" in r.getMessage() for r in caplog.records)


def test_websocket_crash_is_raised_in_the_test_and_logged_once(caplog):
    with caplog.at_level(logging.ERROR, logger="covet.error"):  # noqa: SIM117
        with TestClient(websocket_app()) as client:
            with pytest.raises(RuntimeError, match="crash"):
                with client.websocket_connect("/crash") as session:
                    with pytest.raises(WebSocketDisconnect) as info:
                        session.receive_text()
    assert info.value.code == 1011
    assert len([r for r in caplog.records if r.name == "covet.error"]) == 1


def test_websocket_client_leaving_is_a_normal_end(caplog):
    with caplog.at_level(logging.ERROR, logger="covet.error"):  # noqa: SIM117
        with TestClient(websocket_app()) as client:
            with client.websocket_connect("/leave") as session:
                session.close()
    assert not [r for r in caplog.records if r.name == "covet.error"]


# -------------------------------------------------------------- raw middleware


def scope_for(path: str = "/", method: str = "GET") -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [],
        "query_string": b"",
        "root_path": "",
    }


async def collect(app: Any, scope: Scope) -> tuple[list[Message], list[BaseException]]:
    """Run ``app`` like a server would; return what it sent and what it reported."""
    sent: list[Message] = []
    reported: list[BaseException] = []
    scope["extensions"] = {"covet.errors": {"report": reported.append}}
    requested = asyncio.Event()

    async def receive() -> Message:
        if requested.is_set():  # the client stays connected: a disconnect watcher waits
            await asyncio.Event().wait()
        requested.set()
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)  # nothing escapes to the server
    return sent, reported


async def test_unhandled_error_is_answered_logged_once_and_not_reraised(caplog):
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("kaput")

    with caplog.at_level(logging.ERROR):
        sent, reported = await collect(ServerErrorMiddleware(broken), scope_for("/x"))
    # A complete 500, without Connection: close: the kept-alive connection stays usable.
    assert sent[0]["status"] == 500 and (b"connection", b"close") not in sent[0]["headers"]
    assert sent[1].get("more_body", False) is False
    [record] = caplog.records
    assert record.getMessage() == "Unhandled RuntimeError while serving GET '/x'"
    [exc] = reported
    assert isinstance(exc, RuntimeError) and str(exc) == "kaput"


async def test_unhandled_error_without_a_report_hook():
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("kaput")

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    # A server without the extension (uvicorn): the 500 is sent, nothing is raised.
    await ServerErrorMiddleware(broken)(scope_for(), receive, send)
    assert sent[0]["status"] == 500


async def test_error_after_response_started_leaves_it_incomplete(caplog):
    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("mid-stream")

    with caplog.at_level(logging.ERROR, logger="covet.error"):
        sent, reported = await collect(ServerErrorMiddleware(half), scope_for("/stream"))
    # No 500 was attempted on top of it, and the response stays incomplete: the
    # server closes the connection rather than reuse it after a truncated body.
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[-1]["more_body"] is True
    assert [r.getMessage() for r in caplog.records] == [
        "Unhandled RuntimeError while serving GET '/stream'"
    ]
    assert [type(e) for e in reported] == [RuntimeError]


async def test_failing_500_response_is_logged_and_leaves_the_response_incomplete(caplog):
    from covet import StreamingResponse

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("kaput")

    def breaks_midway(request: Request, exc: Exception) -> StreamingResponse:
        async def chunks() -> Any:
            yield b"sorry"
            raise OSError("the 500 page broke too")

        return StreamingResponse(chunks(), status_code=500)

    with caplog.at_level(logging.ERROR, logger="covet.error"):
        sent, reported = await collect(
            ServerErrorMiddleware(broken, handler=breaks_midway), scope_for("/x")
        )
    assert sent[0]["status"] == 500 and sent[-1]["more_body"] is True
    assert [r.getMessage() for r in caplog.records] == [
        "Unhandled RuntimeError while serving GET '/x'",
        "The error response for GET '/x' failed too",
    ]
    assert [type(e) for e in reported] == [RuntimeError]


async def test_handled_exception_after_start_is_not_handled_twice():
    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise HTTPException(400)

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    # ExceptionMiddleware alone re-raises: ServerErrorMiddleware, outside it, logs.
    with pytest.raises(HTTPException):
        await ExceptionMiddleware(half)(scope_for(), receive, send)
    assert [m["type"] for m in sent] == ["http.response.start"]


async def test_middleware_passes_other_scope_types_through():
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {}

    async def send(message: Message) -> None:
        return None

    await ServerErrorMiddleware(ExceptionMiddleware(inner))({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]


async def test_client_disconnect_outside_exception_middleware_is_quiet(caplog):
    async def reads_body(scope: Scope, receive: Receive, send: Send) -> None:
        raise ClientDisconnect("gone")

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    with caplog.at_level(logging.ERROR, logger="covet.error"):
        await ServerErrorMiddleware(reads_body)(scope_for(), receive, send)
    assert sent == []
    assert not caplog.records


def test_failing_exception_handler_becomes_a_logged_500(caplog):
    app = failing_app()

    @app.exception_handler(PaymentError)
    async def payment(request: Request, exc: PaymentError) -> str:
        raise RuntimeError("the handler broke")

    with caplog.at_level(logging.ERROR, logger="covet.error"):  # noqa: SIM117
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/declined")
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    [record] = [r for r in caplog.records if r.name == "covet.error"]
    assert record.getMessage() == "Unhandled RuntimeError while serving GET '/declined'"
