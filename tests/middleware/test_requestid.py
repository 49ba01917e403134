from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import pytest

from covet.datastructures import State
from covet.exceptions import ImproperlyConfigured
from covet.middleware import RequestIDMiddleware
from covet.middleware.requestid import RequestIDLogFilter, get_request_id
from covet.requests import Request
from covet.testing import TestClient

if TYPE_CHECKING:
    from covet.types import Message, Scope


async def unused_receive() -> Message:
    raise AssertionError("the middleware must not read the request here")


async def unused_send(message: Message) -> None:
    raise AssertionError(f"the middleware must not send {message!r} here")


logger = logging.getLogger("tests.requestid")


async def endpoint(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"x-extra", b"1")]})
        await send({"type": "websocket.send", "text": get_request_id()})
        await send({"type": "websocket.close", "code": 1000})
        return
    request = Request(scope, receive)
    logger.warning("handling %s", scope["path"])
    body = f"{request.state.request_id}|{scope['covet.request_id']}|{get_request_id()}"
    headers = [(b"content-type", b"text/plain")]
    if scope["path"] == "/own":
        headers.append((b"x-request-id", b"set-by-app"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})


def client(**options) -> TestClient:
    return TestClient(RequestIDMiddleware(endpoint, **options))


def test_generated_id_is_shared_by_header_state_scope_and_context():
    response = client().get("/")
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    int(request_id, 16)
    assert response.text == f"{request_id}|{request_id}|{request_id}"


def test_ids_are_unique_and_context_is_reset():
    c = client()
    ids = {c.get("/").headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20
    assert get_request_id() is None


def test_incoming_id_is_ignored_unless_trusted():
    response = client().get("/", headers={"X-Request-ID": "from-proxy-123"})
    assert response.headers["x-request-id"] != "from-proxy-123"


def test_trusted_incoming_without_header_generates_one():
    response = client(trust_incoming=True).get("/")
    assert len(response.headers["x-request-id"]) == 32


def test_trusted_incoming_id_is_reused():
    response = client(trust_incoming=True).get("/", headers={"X-Request-ID": "from-proxy.123_A"})
    assert response.headers["x-request-id"] == "from-proxy.123_A"
    assert response.text.startswith("from-proxy.123_A|")


@pytest.mark.parametrize(
    "incoming",
    ["has space", "new\\nline", 'quote"d', "x" * 201, "", "caf\u00e9", "a;b", "<script>"],
)
def test_malformed_incoming_id_is_replaced(incoming):
    c = client(trust_incoming=True)
    response = c.get("/", headers=[(b"x-request-id", incoming.encode("latin-1"))])
    assert response.headers["x-request-id"] != incoming
    assert len(response.headers["x-request-id"]) == 32


def test_custom_header_and_generator():
    counter = iter(range(100))
    c = client(header_name="Trace-Id", generator=lambda: f"req-{next(counter)}")
    response = c.get("/")
    assert response.headers["trace-id"] == "req-0"
    assert "x-request-id" not in response.headers
    assert c.get("/").headers["trace-id"] == "req-1"


def test_app_set_header_is_kept():
    response = client().get("/own")
    assert response.headers.get_list("x-request-id") == ["set-by-app"]


def test_websocket_gets_id_in_accept_headers_and_context():
    with client().websocket_connect("/ws") as ws:
        headers = dict(ws.extra_headers)
        assert headers[b"x-extra"] == b"1"
        assert ws.receive_text() == headers[b"x-request-id"].decode()


async def test_state_object_and_missing_state_are_supported():
    async def app(scope, receive, send):
        pass

    middleware = RequestIDMiddleware(app, generator=lambda: "fixed")
    with_object: Scope = {"type": "http", "headers": [], "state": State()}
    await middleware(with_object, unused_receive, unused_send)
    assert with_object["state"].request_id == "fixed"
    without: Scope = {"type": "http", "headers": []}
    await middleware(without, unused_receive, unused_send)
    assert without["state"] == {"request_id": "fixed"}
    lifespan: Scope = {"type": "lifespan"}
    await middleware(lifespan, unused_receive, unused_send)
    assert "covet.request_id" not in lifespan


async def test_concurrent_requests_keep_their_own_id():
    seen: dict[str, str | None] = {}

    async def app(scope, receive, send):
        await asyncio.sleep(0.01)
        seen[scope["covet.request_id"]] = get_request_id()

    ids = iter(["a", "b", "c"])
    middleware = RequestIDMiddleware(app, generator=lambda: next(ids))
    await asyncio.gather(
        *(
            middleware({"type": "http", "headers": []}, unused_receive, unused_send)
            for _ in range(3)
        )
    )
    assert seen == {"a": "a", "b": "b", "c": "c"}


def test_log_filter_adds_the_id(caplog):
    log_filter = RequestIDLogFilter()
    caplog.handler.addFilter(log_filter)
    try:
        with caplog.at_level(logging.WARNING, logger="tests.requestid"):
            response = client().get("/logged")
            logger.warning("outside")
    finally:
        caplog.handler.removeFilter(log_filter)
    inside, outside = caplog.records
    assert inside.request_id == response.headers["x-request-id"]
    assert outside.request_id == "-"


def test_log_filter_default_and_formatting():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "msg", None, None)
    assert RequestIDLogFilter(default="none").filter(record) is True
    assert logging.Formatter("%(request_id)s %(message)s").format(record) == "none msg"


@pytest.mark.parametrize("name", ["", "X Request", "X-Request-ID:", "caf\u00e9"])
def test_bad_header_name_is_refused(name):
    with pytest.raises(ImproperlyConfigured, match="header_name"):
        RequestIDMiddleware(endpoint, header_name=name)


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_a_500_carries_the_request_id_of_its_report(debug: bool) -> None:
    from covet import Covet

    app = Covet(allowed_hosts=["testserver"], debug=debug)
    app.add_middleware(RequestIDMiddleware, header_name="X-Trace")
    seen: list[str] = []
    app.add_error_reporter(lambda exc, report: seen.append(report.request_id))

    @app.get("/boom")
    async def boom(request: Request) -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/boom")
    assert response.status_code == 500
    # The error layer answers outside the middleware, and still names the request.
    assert response.headers["x-trace"] == seen[0]
    assert len(seen[0]) == 32
