"""covet.sentry: sentry-sdk wired into the app, one event per unhandled error, no network.

Events go to an in-memory transport (a ``sentry_sdk.transport.Transport``
subclass keeping every envelope); sentry-sdk's default integrations stay on, so
its logging and dedupe integrations take part as they would in production.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from covet import Covet, HTTPException, PlainTextResponse, Request, WebSocket
from covet.background import BackgroundTask
from covet.db import DatabaseUnavailableError
from covet.exceptions import ImproperlyConfigured
from covet.middleware import RequestIDMiddleware
from covet.sentry import CovetIntegration
from covet.testing import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sentry_sdk.envelope import Envelope

    from covet.types import ASGIApp, Receive, Scope, Send

# Made at run time, so that no source line sentry-sdk shows as context holds them.
SECRET = {
    name: f"{name}-{uuid.uuid4().hex}"
    for name in ("bearer", "cookie", "csrf", "query", "form", "local", "dsn", "path")
}


class MemoryTransport(Transport):
    """Keeps every envelope sentry-sdk would send."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def items(self, kind: str) -> list[dict[str, Any]]:
        return [
            item.payload.json
            for envelope in self.envelopes
            for item in envelope.items
            if item.type == kind and item.payload.json is not None
        ]

    def text(self) -> str:
        return "\n".join(
            json.dumps(item.payload.json)
            for envelope in self.envelopes
            for item in envelope.items
            if item.payload.json is not None
        )


class BoomError(Exception):
    """An application error nobody handles."""


class User:
    is_authenticated = True

    def __init__(self, pk: int) -> None:
        self.pk = pk


class FakeAuth:
    """Sets ``scope["user"]`` from an ``X-User`` header (what AuthenticationMiddleware does)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope.get("headers", ()):
            if name == b"x-user":
                scope["user"] = User(int(value))
        await self.app(scope, receive, send)


@pytest.fixture
def transport() -> Iterator[MemoryTransport]:
    memory = MemoryTransport()
    yield memory
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


@pytest.fixture(autouse=True)
def quiet_errors() -> Iterator[None]:
    # Keep the tracebacks of the provoked 500s off the console (sentry still sees them).
    logger = logging.getLogger("covet.error")
    previous = logger.propagate
    logger.propagate = False
    yield
    logger.propagate = previous


def make_app(transport: MemoryTransport, *, debug: bool = False, middleware: bool = True) -> Covet:
    app = Covet(debug=debug, allowed_hosts=["testserver"])
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",  # never dialled: the transport keeps the envelopes
        transport=transport,
        integrations=[CovetIntegration(app, middleware=middleware)],
        auto_enabling_integrations=False,
        traces_sample_rate=1.0,
    )
    app.add_middleware(FakeAuth)
    app.add_middleware(RequestIDMiddleware, trust_incoming=True)

    @app.post("/boom/{token}", name="boom")
    async def boom(request: Request, token: str) -> None:
        await request.form()
        api_token = request.headers["x-api-token"]  # a local with a secret name
        database_url = f"postgresql://app:{request.headers['x-db-password']}@db/app"
        logging.getLogger("shop").warning("about to fail, %s", f"api_key={api_token}")
        raise BoomError(f"kaput at {database_url} with {len(api_token)}")

    @app.get("/items/{item_id:int}", name="item")
    async def item(request: Request, item_id: int) -> dict[str, int]:
        logging.getLogger("shop").warning("looked at item %d", item_id)
        return {"id": item_id}

    @app.get("/background", name="background")
    async def background(request: Request) -> PlainTextResponse:
        async def fails() -> None:
            raise BoomError("after the response")

        return PlainTextResponse("sent", background=BackgroundTask(fails))

    @app.get("/teapot")
    async def teapot(request: Request) -> None:
        raise HTTPException(418)

    @app.get("/outage")
    async def outage(request: Request) -> None:
        raise DatabaseUnavailableError("connection refused")

    @app.websocket("/ws/{room}", name="room")
    async def room(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise BoomError("in the websocket")

    return app


def post_boom(client: TestClient) -> Any:
    return client.post(
        f"/boom/{SECRET['path']}?api_key={SECRET['query']}&page=2",
        data={"title": "hello", "password": SECRET["form"]},
        headers={
            "Authorization": f"Bearer {SECRET['bearer']}",
            "Cookie": f"sessionid={SECRET['cookie']}; theme=dark",
            "X-CSRF-Token": SECRET["csrf"],
            "X-Api-Token": SECRET["local"],
            "X-DB-Password": SECRET["dsn"],
            "X-Request-ID": "req-0001",
            "X-User": "7",
        },
    )


@pytest.mark.parametrize("debug", [False, True])
def test_one_event_per_error_with_route_user_request_id_and_masked_data(
    transport: MemoryTransport, debug: bool
) -> None:
    with TestClient(make_app(transport, debug=debug), raise_server_exceptions=False) as client:
        assert post_boom(client).status_code == 500
    sentry_sdk.flush()
    [event] = transport.items("event")  # not a second one from the covet.error log record
    [exception] = event["exception"]["values"]
    assert exception["type"] == "BoomError"
    assert exception["mechanism"] == {"type": "covet", "handled": False}
    assert event["transaction"] == "boom"
    assert event["transaction_info"] == {"source": "component"}
    assert event["user"] == {"id": "7"}
    assert event["tags"]["request_id"] == "req-0001"
    assert event["contexts"]["covet"] == {"route_name": "boom", "response_started": False}
    request = event["request"]
    assert request["url"] == "http://testserver/boom/********"
    assert request["method"] == "POST"
    assert request["query_string"] == "api_key=********&page=2"
    assert request["headers"]["authorization"] != f"Bearer {SECRET['bearer']}"
    assert request["headers"]["x-request-id"] == "req-0001"
    assert set(request["cookies"]) == {"sessionid", "theme"}
    assert request["data"]["title"] == "hello"
    frame = exception["stacktrace"]["frames"][-1]
    assert frame["function"] == "boom"
    assert frame["vars"]["api_token"] == "********"
    assert "postgresql://app:********@db/app" in frame["vars"]["database_url"]
    assert "kaput at postgresql://app:********@db/app" in exception["value"]
    # The request's own breadcrumbs, nobody else's.
    crumbs = [crumb.get("message") for crumb in event["breadcrumbs"]["values"]]
    assert "about to fail, api_key=********" in crumbs
    # No secret anywhere in what would have been sent, transactions included.
    text = transport.text()
    assert [name for name, secret in SECRET.items() if secret in text] == []
    # The request's transaction, named after the route, shares the event's trace.
    [transaction] = transport.items("transaction")
    assert transaction["transaction"] == "boom"
    assert event["contexts"]["trace"]["trace_id"] == transaction["contexts"]["trace"]["trace_id"]
    assert event["contexts"]["trace"]["span_id"] == transaction["contexts"]["trace"]["span_id"]


def test_breadcrumbs_of_other_requests_stay_out(transport: MemoryTransport) -> None:
    with TestClient(make_app(transport), raise_server_exceptions=False) as client:
        assert client.get("/items/3").status_code == 200
        assert post_boom(client).status_code == 500
    sentry_sdk.flush()
    [event] = transport.items("event")
    crumbs = [crumb.get("message") for crumb in event["breadcrumbs"]["values"]]
    assert "looked at item %d" not in crumbs


def test_transactions_are_named_after_the_route_not_the_path(transport: MemoryTransport) -> None:
    with TestClient(make_app(transport), raise_server_exceptions=False) as client:
        client.get(f"/items/1?token={SECRET['query']}")
        client.get("/items/2")
    sentry_sdk.flush()
    transactions = transport.items("transaction")
    assert [t["transaction"] for t in transactions] == ["item", "item"]
    assert transactions[0]["request"]["query_string"] == "token=********"
    assert transport.items("event") == []
    assert SECRET["query"] not in transport.text()


def test_without_the_middleware_events_keep_the_request_but_no_breadcrumbs(
    transport: MemoryTransport,
) -> None:
    with TestClient(make_app(transport, middleware=False), raise_server_exceptions=False) as c:
        assert c.get("/items/3").status_code == 200
        assert post_boom(c).status_code == 500
    sentry_sdk.flush()
    [event] = transport.items("event")
    assert event["transaction"] == "boom"
    assert event["user"] == {"id": "7"}
    assert event["tags"]["request_id"] == "req-0001"
    assert event["request"]["query_string"] == "api_key=********&page=2"
    assert event["request"]["data"]["title"] == "hello"
    assert event["request"]["method"] == "POST"
    assert "breadcrumbs" not in event or event["breadcrumbs"]["values"] == []
    assert transport.items("transaction") == []
    text = transport.text()
    assert [name for name, secret in SECRET.items() if secret in text] == []


def test_background_task_error_is_one_event_with_the_request(transport: MemoryTransport) -> None:
    with TestClient(make_app(transport), raise_server_exceptions=False) as client:
        response = client.get("/background", headers={"X-User": "3", "X-Request-ID": "req-0002"})
    assert response.status_code == 200
    sentry_sdk.flush()
    [event] = transport.items("event")
    assert event["exception"]["values"][0]["value"] == "after the response"
    assert event["transaction"] == "background"
    assert event["user"] == {"id": "3"}
    assert event["tags"]["request_id"] == "req-0002"
    assert event["contexts"]["covet"]["response_started"] is True


def test_websocket_error_is_one_event(transport: MemoryTransport) -> None:
    with (
        TestClient(make_app(transport), raise_server_exceptions=False) as client,
        client.websocket_connect("/ws/lobby", headers={"X-User": "5"}) as session,
    ):
        session.send_text("hi")
        assert session.receive()["code"] == 1011
    sentry_sdk.flush()
    [event] = transport.items("event")
    assert event["exception"]["values"][0]["value"] == "in the websocket"
    assert event["transaction"] == "room"
    assert event["user"] == {"id": "5"}
    assert event["request"]["url"] == "ws://testserver/ws/lobby"


@pytest.mark.parametrize(("path", "status"), [("/teapot", 418), ("/outage", 503), ("/no", 404)])
def test_errors_the_app_answers_send_no_event(
    transport: MemoryTransport, path: str, status: int
) -> None:
    with TestClient(make_app(transport), raise_server_exceptions=False) as client:
        assert client.get(path).status_code == status
    sentry_sdk.flush()
    assert transport.items("event") == []


def test_other_covet_error_records_still_reach_sentry(transport: MemoryTransport) -> None:
    make_app(transport)
    try:
        raise RuntimeError("a startup problem")
    except RuntimeError as exc:
        logging.getLogger("covet.error").error("Application startup failed", exc_info=exc)
    sentry_sdk.flush()
    [event] = transport.items("event")
    assert event["exception"]["values"][0]["mechanism"]["type"] == "logging"


def test_wiring_is_once_per_app_and_needs_an_app(transport: MemoryTransport) -> None:
    app = make_app(transport)
    # A second init() (a test fixture, a reload) must not wire the app twice.
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",
        transport=transport,
        integrations=[CovetIntegration(app)],
        auto_enabling_integrations=False,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        post_boom(client)
    sentry_sdk.flush()
    assert len(transport.items("event")) == 1
    with pytest.raises(ImproperlyConfigured, match=r"CovetIntegration\(app\)"):
        CovetIntegration()


def test_nothing_is_sent_once_the_client_lacks_the_integration(transport: MemoryTransport) -> None:
    app = make_app(transport)
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",
        transport=transport,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        assert post_boom(client).status_code == 500
    sentry_sdk.flush()
    assert transport.items("event") == []


def test_a_sentry_sdk_3_install_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    # sentry-sdk 3 dropped names covet.sentry uses: importing it must say which release to
    # install, not fail on a missing name (or report the package as not installed at all).
    import importlib
    import sys

    monkeypatch.setattr(sentry_sdk, "VERSION", "3.0.0")
    monkeypatch.delitem(sys.modules, "covet.sentry")
    with pytest.raises(ImproperlyConfigured, match=r"sentry-sdk>=2,<3"):
        importlib.import_module("covet.sentry")
