from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet, JSONResponse, Request, Response, Router, WebSocket
from covet.app import Middleware
from covet.exceptions import ImproperlyConfigured, WebSocketDisconnect
from covet.requests import DEFAULT_LIMITS, RequestLimits
from covet.testing import TestClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.types import ASGIApp, Message, Receive, Scope, Send


def http_scope(path: str = "/", *, headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")] if headers is None else headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


async def run_http(app: ASGIApp, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def run_lifespan(app: ASGIApp, *, scope_state: dict[str, Any] | None = None) -> list[Message]:
    """Run startup then shutdown; return what the app sent."""
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []
    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    if scope_state is not None:
        scope["state"] = scope_state

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    with contextlib.suppress(Exception):
        await app(scope, receive, send)
    return sent


# ---------------------------------------------------------------------- lifespan


def test_startup_and_shutdown_hooks_sync_and_async():
    events: list[str] = []
    app = Covet(on_startup=[lambda: events.append("ctor-start")])

    @app.on_startup
    async def start() -> None:
        events.append("async-start")

    @app.on_startup
    def start_sync() -> None:
        events.append("sync-start")

    @app.on_shutdown
    async def stop() -> None:
        events.append("async-stop")

    app.on_shutdown(lambda: events.append("sync-stop"))
    with TestClient(app):
        assert events == ["ctor-start", "async-start", "sync-start"]
    assert events[3:] == ["async-stop", "sync-stop"]


def test_lifespan_context_manager_and_yielded_state():
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Covet) -> AsyncIterator[dict[str, Any]]:
        events.append("enter")
        app.state.ready = True
        yield {"pool": "the-pool"}
        events.append("exit")

    app = Covet(lifespan=lifespan, on_startup=[lambda: events.append("hook")])

    @app.get("/")
    async def index(request: Request) -> dict[str, Any]:
        return {"pool": request.state.pool, "ready": request.app.state.ready}

    with TestClient(app) as client:
        assert events == ["hook", "enter"]
        assert client.get("/").json() == {"pool": "the-pool", "ready": True}
    assert events == ["hook", "enter", "exit"]


async def test_lifespan_state_goes_into_server_state():
    @contextlib.asynccontextmanager
    async def lifespan(app: Covet) -> AsyncIterator[dict[str, Any]]:
        yield {"answer": 42}

    server_state: dict[str, Any] = {}
    sent = await run_lifespan(Covet(lifespan=lifespan), scope_state=server_state)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert server_state == {"answer": 42}


async def test_failed_startup_sends_the_message():
    app = Covet()

    @app.on_startup
    async def broken() -> None:
        raise RuntimeError("database is down")

    sent = await run_lifespan(app)
    assert sent == [
        {"type": "lifespan.startup.failed", "message": "RuntimeError: database is down"}
    ]


def test_failed_startup_raises_in_test_client():
    app = Covet()

    @app.on_startup
    def broken() -> None:
        raise RuntimeError("database is down")

    with pytest.raises(RuntimeError, match="database is down"), TestClient(app):
        pass


async def test_failed_shutdown_sends_the_message():
    @contextlib.asynccontextmanager
    async def lifespan(app: Covet) -> AsyncIterator[None]:
        yield
        raise ValueError("flush failed")

    sent = await run_lifespan(Covet(lifespan=lifespan))
    assert sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.failed", "message": "ValueError: flush failed"},
    ]


async def test_lifespan_must_be_a_context_manager():
    async def not_wrapped(app: Covet) -> AsyncIterator[None]:
        yield

    sent = await run_lifespan(Covet(lifespan=not_wrapped))  # type: ignore[arg-type]
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "asynccontextmanager" in sent[0]["message"]


async def test_lifespan_must_yield_a_mapping():
    @contextlib.asynccontextmanager
    async def lifespan(app: Covet) -> AsyncIterator[Any]:
        yield 42

    sent = await run_lifespan(Covet(lifespan=lifespan))
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "Yield a mapping" in sent[0]["message"]


# ----------------------------------------------------------------------- freezing


def test_registration_is_frozen_after_startup():
    app = Covet()
    with TestClient(app):
        pass
    with pytest.raises(ImproperlyConfigured, match="lifespan startup ran"):
        app.add_route("/late", lambda request: "late")
    with pytest.raises(ImproperlyConfigured, match="started"):
        app.add_middleware(Passthrough)
    with pytest.raises(ImproperlyConfigured, match="started"):
        app.add_exception_handler(404, lambda request, exc: "x")
    with pytest.raises(ImproperlyConfigured, match="started"):
        app.on_startup(lambda: None)
    with pytest.raises(ImproperlyConfigured, match="started"):
        app.mount("/m", Passthrough(app))
    with pytest.raises(ImproperlyConfigured, match="started"):
        app.include_router(Router())


async def test_registration_is_frozen_after_first_request():
    app = Covet()
    router_before = app.router
    await run_http(app, http_scope())
    with pytest.raises(ImproperlyConfigured, match="serving requests"):

        @app.get("/late")
        async def late(request: Request) -> str:
            return "late"

    with pytest.raises(ImproperlyConfigured, match="serving requests"):
        router_before.add_route("/late", late_handler)


async def late_handler(request: Request) -> str:
    return "late"


# --------------------------------------------------------------------- middleware


class Passthrough:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class Tagging:
    """Append a tag to a response header, to observe ordering."""

    def __init__(self, app: ASGIApp, *, tag: str) -> None:
        self.app = app
        self.tag = tag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("order", []).append(self.tag)

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-tag", self.tag.encode())]
            await send(message)

        await self.app(scope, receive, tagged)


def test_middleware_order_first_added_is_outermost():
    app = Covet(middleware=[Middleware(Tagging, tag="ctor")])
    app.add_middleware(Tagging, tag="outer")
    app.add_middleware(Tagging, tag="inner")

    @app.get("/")
    async def index(request: Request) -> list[str]:
        order: list[str] = request.scope["order"]
        return order

    with TestClient(app) as client:
        response = client.get("/")
    assert response.json() == ["ctor", "outer", "inner"]
    # Responses travel back out: the innermost middleware tags first.
    assert response.headers.get_list("x-tag") == ["inner", "outer", "ctor"]


def test_middleware_sees_errors_turned_into_responses():
    app = Covet()
    app.add_middleware(Tagging, tag="mw")
    with TestClient(app) as client:
        response = client.get("/missing")
    assert response.status_code == 404
    assert response.headers["x-tag"] == "mw"


def test_middleware_argument_validation():
    with pytest.raises(ImproperlyConfigured, match="Wrap each class in Middleware"):
        Covet(middleware=[Tagging])  # type: ignore[list-item]
    with pytest.raises(ImproperlyConfigured, match="not callable"):
        Middleware(42)  # type: ignore[arg-type]
    assert repr(Middleware(Tagging, tag="a")) == "Middleware(Tagging, tag='a')"


# ------------------------------------------------------------------ return values


def conversion_app() -> Covet:
    app = Covet()

    @app.get("/dict")
    async def as_dict(request: Request) -> dict[str, int]:
        return {"a": 1}

    @app.get("/list")
    async def as_list(request: Request) -> list[int]:
        return [1, 2]

    @app.get("/str")
    async def as_str(request: Request) -> str:
        return "caf\u00e9"

    @app.get("/bytes")
    async def as_bytes(request: Request) -> bytes:
        return b"\x00\x01"

    @app.get("/none")
    async def as_none(request: Request) -> None:
        return None

    @app.get("/response")
    async def as_response(request: Request) -> Response:
        return JSONResponse({"created": True}, status_code=201, headers={"X-A": "b"})

    @app.get("/bad")
    async def as_int(request: Request) -> int:
        return 42

    return app


@pytest.mark.parametrize(
    ("path", "status", "content_type", "body"),
    [
        ("/dict", 200, "application/json", b'{"a":1}'),
        ("/list", 200, "application/json", b"[1,2]"),
        ("/str", 200, "text/plain; charset=utf-8", "caf\u00e9".encode()),
        ("/bytes", 200, "application/octet-stream", b"\x00\x01"),
        ("/none", 204, None, b""),
        ("/response", 201, "application/json", b'{"created":true}'),
    ],
)
def test_return_value_conversion(path, status, content_type, body):
    with TestClient(conversion_app()) as client:
        response = client.get(path)
    assert response.status_code == status
    assert response.headers.get("content-type") == content_type
    assert response.content == body


def test_unsupported_return_value_is_a_server_error():
    with (
        TestClient(conversion_app()) as client,
        pytest.raises(TypeError, match="as_int' returned 42 of type 'int'"),
    ):
        client.get("/bad")


def test_sync_handler_runs_in_a_worker_thread():
    app = Covet()
    loop_thread: list[int] = []

    @app.get("/async")
    async def in_loop(request: Request) -> None:
        loop_thread.append(threading.get_ident())

    @app.get("/sync/{n:int}")
    def blocking(request: Request, n: int) -> dict[str, Any]:
        return {"thread": threading.get_ident(), "n": n, "path": request.url.path}

    with TestClient(app) as client:
        client.get("/async")
        data = client.get("/sync/3").json()
    assert data["n"] == 3
    assert data["path"] == "/sync/3"
    assert data["thread"] != loop_thread[0]


# -------------------------------------------------------------------------- scope


def test_scope_has_app_state_and_path_params():
    app = Covet()

    @app.get("/items/{item_id:int}")
    async def item(request: Request, item_id: int) -> dict[str, Any]:
        before = dict(request.scope["state"])
        request.state.seen = item_id
        return {
            "app": request.scope["app"] is app,
            "state_before": before,
            "path_params": request.path_params,
        }

    with TestClient(app) as client:
        assert client.get("/items/5").json() == {
            "app": True,
            "state_before": {},
            "path_params": {"item_id": 5},
        }
        # Request state does not leak into the next request.
        assert client.get("/items/6").json()["state_before"] == {}


def test_limits_in_scope_route_then_app_then_default():
    route_limits = RequestLimits(max_multipart_size=50_000_000)
    app_limits = RequestLimits(max_body_size=1234)

    def report(request: Request) -> dict[str, int]:
        limits = request.limits
        return {"body": limits.max_body_size, "multipart": limits.max_multipart_size}

    app = Covet(limits=app_limits)
    app.add_route("/upload", report, methods=["POST"], limits=route_limits)
    app.add_route("/plain", report)
    default_app = Covet()
    default_app.add_route("/plain", report)
    with TestClient(app) as client:
        assert client.post("/upload").json() == {
            "body": DEFAULT_LIMITS.max_body_size,
            "multipart": 50_000_000,
        }
        assert client.get("/plain").json() == {
            "body": 1234,
            "multipart": DEFAULT_LIMITS.max_multipart_size,
        }
    with TestClient(default_app) as client:
        assert client.get("/plain").json()["body"] == DEFAULT_LIMITS.max_body_size


def test_per_route_limit_is_enforced():
    app = Covet()

    @app.post("/small", limits=RequestLimits(max_body_size=4))
    async def small(request: Request) -> str:
        return str(len(await request.body()))

    @app.post("/big")
    async def big(request: Request) -> str:
        return str(len(await request.body()))

    with TestClient(app) as client:
        assert client.post("/small", content=b"12345").status_code == 413
        assert client.post("/big", content=b"12345").text == "5"


# ---------------------------------------------------------------------- host check


@pytest.mark.parametrize(
    "host",
    [
        b"evil.com/path",
        b"user@example.com",
        b"example.com:notaport",
        b"example.com:70000",
        b"exa mple.com",
        b"example.com?x",
        b"example.com#x",
        b"",
        b"[::1",
    ],
)
async def test_malformed_host_is_400(host):
    app = Covet(debug=True)
    app.add_route("/", late_handler)
    sent = await run_http(app, http_scope(headers=[(b"host", host)]))
    assert sent[0]["status"] == 400
    assert sent[1]["body"] == b"Invalid Host header"


async def test_repeated_host_header_is_400():
    app = Covet(debug=True)
    app.add_route("/", late_handler)
    sent = await run_http(app, http_scope(headers=[(b"host", b"a.com"), (b"host", b"b.com")]))
    assert sent[0]["status"] == 400


async def test_missing_host_is_accepted_without_allowlist_only():
    app = Covet(debug=True)
    app.add_route("/", late_handler)
    assert (await run_http(app, http_scope(headers=[])))[0]["status"] == 200
    strict = Covet(allowed_hosts=["example.com"])
    strict.add_route("/", late_handler)
    assert (await run_http(strict, http_scope(headers=[])))[0]["status"] == 400


def test_allowed_hosts():
    app = Covet(allowed_hosts=["example.com", "*.example.org"])
    app.add_route("/", late_handler)
    with TestClient(app, base_url="http://example.com") as client:
        assert client.get("/").status_code == 200
        assert client.get("/", headers={"host": "EXAMPLE.com:8000"}).status_code == 200
        assert client.get("/", headers={"host": "api.example.org"}).status_code == 200
        response = client.get("/", headers={"host": "evil.com"})
        assert response.status_code == 400
        assert response.text == "Invalid Host header"
        assert client.get("/", headers={"host": "example.org"}).status_code == 400
        assert client.head("/", headers={"host": "evil.com"}).content == b""


def test_bad_host_on_websocket_is_refused():
    app = Covet(allowed_hosts=["example.com"])

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()

    with TestClient(app) as client, pytest.raises(WebSocketDisconnect) as info:  # noqa: SIM117
        with client.websocket_connect("/ws", headers={"host": "evil.com"}):
            pass
    assert info.value.code == 1008


def test_host_verdicts_are_cached_and_bounded():
    app = Covet(debug=True)
    app.add_route("/", late_handler)
    with TestClient(app) as client:
        for number in range(600):
            client.get("/", headers={"host": f"h{number}.example"})
    assert 0 < len(app._host_guard.accepted) <= 512


def test_production_without_allowlist_warns_once(caplog):
    app = Covet()
    app.add_route("/", late_handler)
    with caplog.at_level(logging.WARNING, logger="covet"), TestClient(app) as client:
        client.get("/")
        client.get("/")
    warnings = [r for r in caplog.records if "allowed_hosts" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].name == "covet"


@pytest.mark.parametrize("options", [{"debug": True}, {"allowed_hosts": ["testserver"]}])
def test_no_host_warning_in_debug_or_with_allowlist(caplog, options):
    app = Covet(**options)
    with caplog.at_level(logging.WARNING, logger="covet"), TestClient(app):
        pass
    assert not [r for r in caplog.records if "allowed_hosts" in r.getMessage()]


def test_bad_allowed_hosts_pattern():
    with pytest.raises(ImproperlyConfigured):
        Covet(allowed_hosts="example.com")


# ------------------------------------------------------------- client disconnect


async def test_client_disconnect_while_reading_body_sends_nothing():
    app = Covet()

    @app.post("/upload")
    async def upload(request: Request) -> str:
        await request.body()
        return "never"

    scope = http_scope("/upload")
    scope["method"] = "POST"
    messages: list[Message] = [
        {"type": "http.request", "body": b"part", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent == []


def _origin_verdict(app: Covet, origin: str | None, host: str = "testserver") -> int | str:
    """Open a websocket on ``app`` with ``Origin``; return the message or the close code."""
    headers = {"host": host}
    if origin is not None:
        headers["origin"] = origin
    try:
        with TestClient(app) as client, client.websocket_connect("/ws", headers=headers) as ws:
            return ws.receive_text()
    except WebSocketDisconnect as exc:
        return exc.code


def _websocket_app(**options: Any) -> Covet:
    app = Covet(debug=True, **options)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("connected")
        await websocket.close()

    return app


def test_websocket_from_another_site_is_refused():
    # Cross-site websocket hijacking: a page on evil.example opens a websocket to us and
    # the browser attaches our cookies. Only the Origin header tells the two apart.
    app = _websocket_app()
    assert _origin_verdict(app, "https://evil.example") == 1008
    assert _origin_verdict(app, "https://testserver.evil.example") == 1008
    assert _origin_verdict(app, "null") == 1008  # sandboxed iframes, file:// pages
    assert _origin_verdict(app, "not an origin") == 1008
    assert _origin_verdict(app, "ftp://testserver") == 1008
    # The same host (any scheme or port: TLS may end at a proxy) and non-browsers connect.
    assert _origin_verdict(app, "http://testserver") == "connected"
    assert _origin_verdict(app, "https://TESTSERVER:8443") == "connected"
    assert _origin_verdict(app, None) == "connected"
    # Plain HTTP requests are not affected by the Origin check.
    with TestClient(app) as client:
        assert client.get("/nothing", headers={"origin": "https://evil.example"}).status_code == 404


def test_websocket_origins_from_allowed_hosts_and_the_option():
    app = _websocket_app(allowed_hosts=["api.example.com", "*.example.com"])
    assert _origin_verdict(app, "https://www.example.com", host="api.example.com") == "connected"
    assert _origin_verdict(app, "https://evil.example", host="api.example.com") == 1008
    app = _websocket_app(websocket_origins=["https://app.example.net", "HTTP://Other.example:8080"])
    assert _origin_verdict(app, "https://app.example.net") == "connected"
    assert _origin_verdict(app, "http://other.example:8080") == "connected"
    assert _origin_verdict(app, "http://app.example.net") == 1008  # another scheme: other origin
    assert _origin_verdict(app, "http://other.example:8081") == 1008
    app = _websocket_app(websocket_origins=["*"])
    assert _origin_verdict(app, "https://anyone.example") == "connected"


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        ("https://app.example.com", "is a string"),
        (["app.example.com"], "is not an origin"),
        (["https://app.example.com/path"], "is not an origin"),
        (["ws://app.example.com"], "is not an origin"),
    ],
)
def test_websocket_origins_validation(origins: Any, message: str):
    with pytest.raises(ImproperlyConfigured, match=message):
        Covet(websocket_origins=origins)
