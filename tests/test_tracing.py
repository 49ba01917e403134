"""covet.tracing: request, query and template spans with OpenTelemetry's in-memory exporter.

The statement spans of every backend are checked in ``tests/db/test_tracing.py``.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from covet import Covet, PlainTextResponse, Request, WebSocket
from covet.db import Database
from covet.exceptions import ImproperlyConfigured, MissingDependencyError
from covet.middleware import RequestIDMiddleware
from covet.templates import Templates, observe_renders
from covet.testing import TestClient
from covet.tracing import Tracing, _describe_statement
from tests.asgi import http_scope
from tests.traced import PARENT_ID, TRACE_ID, Traced, parent_id

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def traced() -> Iterator[Traced]:
    found = Traced()
    yield found
    found.tracing.close()


def _app(traced: Traced, tmp_path: Path) -> Covet:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "list.html").write_text("{% for n in notes %}<p>{{ n }}</p>{% endfor %}")
    templates = Templates(tmp_path)
    database = Database(f"sqlite:///{tmp_path / 'notes.sqlite3'}", alias="tracing_notes")
    app = Covet(allowed_hosts=["testserver"])
    app.on_startup(database.connect)
    app.on_shutdown(database.disconnect)
    app.add_observer(traced.tracing)

    @app.get("/notes/{note_id:int}", name="note")
    async def note(request: Request, note_id: int) -> Any:
        with traced.provider.get_tracer("mine").start_as_current_span("my work"):
            value = await database.fetch_val("SELECT :v", {"v": note_id})
        return templates.render(request, "notes/list.html", {"notes": [value]})

    @app.get("/boom")
    async def boom(request: Request) -> None:
        raise RuntimeError("kaput")

    @app.get("/unavailable")
    async def unavailable(request: Request) -> PlainTextResponse:
        return PlainTextResponse("later", status_code=503)

    @app.get("/teapot")
    async def teapot(request: Request) -> PlainTextResponse:
        return PlainTextResponse("no", status_code=418)

    @app.websocket("/ws", name="echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await database.fetch_val("SELECT :v", {"v": text})
        await websocket.send_text(text)
        await websocket.close()

    return app


def test_request_span_is_named_after_the_route_with_http_attributes(
    traced: Traced, tmp_path: Path
) -> None:
    with TestClient(_app(traced, tmp_path), base_url="http://testserver:8000") as client:
        response = client.get("/notes/7?secret=1", headers={"user-agent": "probe/1.0"})
    assert response.text == "<p>7</p>"
    span = traced.named("GET note")
    assert span.kind == SpanKind.SERVER
    assert span.parent is None
    assert span.status.status_code == StatusCode.UNSET
    attributes = dict(span.attributes or {})
    request_id = attributes.pop("covet.request_id")
    assert isinstance(request_id, str)
    assert len(request_id) == 32
    assert attributes == {
        "http.request.method": "GET",
        "url.path": "/notes/7",
        "url.scheme": "http",
        "http.route": "/notes/{note_id:int}",
        "http.response.status_code": 200,
        "network.protocol.version": "1.1",
        "server.address": "testserver",
        "server.port": 8000,
        "client.address": "testclient",
        "user_agent.original": "probe/1.0",
    }


def test_query_template_and_user_spans_nest_below_the_request(
    traced: Traced, tmp_path: Path
) -> None:
    with TestClient(_app(traced, tmp_path)) as client:
        client.get("/notes/7")
    request = traced.named("GET note")
    mine = traced.named("my work")
    query = traced.named("SELECT")
    render = traced.named("render notes/list.html")
    assert parent_id(mine) == request.context.span_id
    assert parent_id(query) == mine.context.span_id
    assert parent_id(render) == request.context.span_id
    assert {span.context.trace_id for span in (request, mine, query, render)} == {
        request.context.trace_id
    }
    assert query.kind == SpanKind.CLIENT
    assert dict(query.attributes or {}) == {
        "db.system.name": "sqlite",
        "db.system": "sqlite",
        "db.namespace": str(tmp_path / "notes.sqlite3"),
        "db.query.text": "SELECT ?",
        "db.operation.name": "SELECT",
        "covet.database": "tracing_notes",
    }
    assert render.kind == SpanKind.INTERNAL
    assert dict(render.attributes or {}) == {"covet.template.name": "notes/list.html"}
    # Spans end in order: children before their parents, within the request's time.
    assert request.start_time is not None and request.end_time is not None
    assert query.start_time is not None and query.end_time is not None
    assert request.start_time <= query.start_time <= query.end_time <= request.end_time


def test_incoming_traceparent_is_joined(traced: Traced, tmp_path: Path) -> None:
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    with TestClient(_app(traced, tmp_path)) as client:
        client.get("/notes/1", headers={"traceparent": traceparent, "tracestate": "vendor=x"})
    span = traced.named("GET note")
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert span.parent.is_remote
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.context.trace_state.get("vendor") == "x"
    assert format(traced.named("SELECT").context.trace_id, "032x") == TRACE_ID


def test_malformed_traceparent_starts_a_new_trace(traced: Traced, tmp_path: Path) -> None:
    with TestClient(_app(traced, tmp_path)) as client:
        client.get("/notes/1", headers={"traceparent": "00-nonsense-01"})
    span = traced.named("GET note")
    assert span.parent is None
    assert span.status.status_code == StatusCode.UNSET


def test_unhandled_exception_is_recorded_and_marks_an_error(traced: Traced, tmp_path: Path) -> None:
    with TestClient(_app(traced, tmp_path)) as client, pytest.raises(RuntimeError, match="kaput"):
        # The test client's own report hook still gets the exception.
        client.get("/boom")
    span = traced.named("GET boom")
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "RuntimeError: kaput"
    attributes = span.attributes or {}
    assert attributes["http.response.status_code"] == 500
    assert attributes["error.type"] == "RuntimeError"
    [event] = span.events
    assert event.name == "exception"
    assert (event.attributes or {})["exception.type"] == "RuntimeError"
    assert (event.attributes or {})["exception.message"] == "kaput"


def test_5xx_answer_is_an_error_and_4xx_is_not(traced: Traced, tmp_path: Path) -> None:
    with TestClient(_app(traced, tmp_path)) as client:
        client.get("/unavailable")
        client.get("/teapot")
        client.get("/nowhere/42")
    unavailable = traced.named("GET unavailable")
    assert unavailable.status.status_code == StatusCode.ERROR
    assert (unavailable.attributes or {})["error.type"] == "503"
    assert unavailable.events == ()
    teapot = traced.named("GET teapot")
    assert teapot.status.status_code == StatusCode.UNSET
    assert "error.type" not in (teapot.attributes or {})
    # No route matched: the span keeps the method alone, never the raw path.
    unmatched = traced.named("GET")
    assert (unmatched.attributes or {})["http.response.status_code"] == 404
    assert "http.route" not in (unmatched.attributes or {})


@pytest.mark.parametrize(
    ("host", "address", "port"),
    [
        (b"[::1]:8000", "::1", 8000),
        (b"[::1]", "::1", None),
        (b"example.com", "example.com", None),
        (b"example.com:\xb2", "example.com", None),
    ],
)
async def test_host_header_gives_server_address(
    traced: Traced, host: bytes, address: str, port: int | None
) -> None:
    app = Covet(allowed_hosts=["example.com", "::1"])
    app.add_observer(traced.tracing)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    scope = http_scope("/")
    scope["headers"] = [(b"host", host)]
    await app(scope, receive, send)
    attributes = traced.named("GET").attributes or {}
    assert attributes["server.address"] == address
    assert attributes.get("server.port") == port


def test_unknown_method_is_other(traced: Traced, tmp_path: Path) -> None:
    with TestClient(_app(traced, tmp_path)) as client:
        client.request("PROPFIND", "/notes/1")
    span = traced.named("HTTP")  # 405: no route matched
    attributes = span.attributes or {}
    assert attributes["http.request.method"] == "_OTHER"
    assert attributes["http.request.method_original"] == "PROPFIND"
    assert attributes["http.response.status_code"] == 405


def test_websocket_connection_span(traced: Traced, tmp_path: Path) -> None:
    with TestClient(_app(traced, tmp_path)) as client, client.websocket_connect("/ws") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "hi"
    span = traced.named("WEBSOCKET echo")
    assert span.kind == SpanKind.SERVER
    attributes = span.attributes or {}
    assert attributes["url.scheme"] == "ws"
    assert attributes["http.route"] == "/ws"
    assert attributes["http.response.status_code"] == 101
    assert parent_id(traced.named("SELECT")) == span.context.span_id


def test_request_id_and_user_are_attributes(traced: Traced) -> None:
    class User:
        is_authenticated = True
        pk = 42

    class FakeAuthentication:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            scope["user"] = User()
            await self.app(scope, receive, send)

    app = Covet(allowed_hosts=["testserver"])
    app.add_middleware(RequestIDMiddleware)
    app.add_middleware(FakeAuthentication)
    app.add_observer(traced.tracing)

    @app.get("/me")
    async def me(request: Request) -> str:
        return "me"

    with TestClient(app) as client:
        response = client.get("/me")
    attributes = traced.named("GET me").attributes or {}
    assert attributes["covet.request_id"] == response.headers["x-request-id"]
    assert attributes["enduser.id"] == "42"


async def test_cancelled_request_ends_its_span_and_restores_the_context(
    traced: Traced, caplog: pytest.LogCaptureFixture
) -> None:
    entered = asyncio.Event()
    app = Covet(allowed_hosts=["testserver"])
    app.add_observer(traced.tracing)

    @app.get("/wait")
    async def wait(request: Request) -> str:
        entered.set()
        await asyncio.sleep(60)
        return "never"

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    before = otel_context.get_current()

    async def serve() -> Any:
        await app(http_scope("/wait"), receive, send)

    with caplog.at_level(logging.ERROR, logger="opentelemetry.context"):
        task = asyncio.create_task(serve())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # The task detached its context in the same task that attached it: no OTel complaint.
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]
    assert otel_context.get_current() == before
    span = traced.named("GET wait")
    assert span.end_time is not None
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "asyncio.exceptions.CancelledError"
    assert [event.name for event in span.events] == ["exception"]


async def test_client_disconnect_mid_body_ends_the_span_quietly(traced: Traced) -> None:
    app = Covet(allowed_hosts=["testserver"])
    app.add_observer(traced.tracing)

    @app.post("/upload")
    async def upload(request: Request) -> str:
        return str(len(await request.body()))

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        raise AssertionError("nothing is sent to a client that left")

    await app(http_scope("/upload", method="POST"), receive, send)
    span = traced.named("POST upload")
    assert span.status.status_code == StatusCode.UNSET
    assert "http.response.status_code" not in (span.attributes or {})
    assert span.events == ()


def test_nothing_is_traced_without_the_observer(traced: Traced, tmp_path: Path) -> None:
    app = Covet(allowed_hosts=["testserver"])

    @app.get("/plain")
    async def plain(request: Request) -> str:
        return "plain"

    traced.tracing.close()  # no statement or render spans either
    templates = Templates(tmp_path)
    (tmp_path / "t.html").write_text("x")
    with TestClient(app) as client:
        assert client.get("/plain").text == "plain"
        templates.render(Request(http_scope("/")), "t.html")
    assert traced.spans == []
    assert app._observe is None


def test_no_spans_for_queries_or_templates_when_switched_off(tmp_path: Path) -> None:
    off = Traced(queries=False, templates=False)
    try:
        with TestClient(_app(off, tmp_path)) as client:
            client.get("/notes/3")
    finally:
        off.tracing.close()
    assert sorted(span.name for span in off.spans) == ["GET note", "my work"]


def test_render_hooks_nest_and_can_be_removed(tmp_path: Path) -> None:
    (tmp_path / "t.html").write_text("{{ 1 / 0 }}")
    seen: list[str] = []

    class Hook:
        def __init__(self, label: str, name: str) -> None:
            self.label, self.name = label, name

        def __enter__(self) -> None:
            seen.append(f"enter {self.label} {self.name}")

        def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
            seen.append(f"exit {self.label} {kind.__name__ if kind else None}")

    remove_a = observe_renders(lambda name: Hook("a", name))
    remove_b = observe_renders(lambda name: Hook("b", name))
    try:
        with pytest.raises(ZeroDivisionError):
            Templates(tmp_path).render(Request(http_scope("/")), "t.html")
    finally:
        remove_a()
        remove_b()
    assert seen == [
        "enter a t.html",
        "enter b t.html",
        "exit b ZeroDivisionError",
        "exit a ZeroDivisionError",
    ]


async def test_render_async_span_covers_the_render(traced: Traced, tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("{{ missing_function() }}")
    with pytest.raises(Exception, match="undefined"):
        await Templates(tmp_path).render_async(Request(http_scope("/")), "page.html")
    span = traced.named("render page.html")
    assert span.status.status_code == StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('SELECT "a"."id" FROM "app_note" AS "a" WHERE "a"."id" = ?', ("SELECT", "app_note", True)),
        ("select id from `shop`.`orders` where id = %s", ("SELECT", "shop.orders", True)),
        ('INSERT INTO "app_note" ("title") VALUES ($1)', ("INSERT", "app_note", True)),
        ('UPDATE "app_note" SET "n" = "n" + 1', ("UPDATE", "app_note", True)),
        (
            'DELETE FROM "app_note" WHERE "id" IN (SELECT "id" FROM "x")',
            ("DELETE", "app_note", True),
        ),
        (
            'SELECT EXTRACT(YEAR FROM "d") FROM "posts" INNER JOIN "authors" ON 1=1',
            ("SELECT", "posts", False),
        ),
        ("CREATE TABLE IF NOT EXISTS t (x INTEGER)", ("CREATE", "t", True)),
        ("SELECT 1", ("SELECT", None, False)),
        ("", ("", None, False)),
    ],
)
def test_describe_statement(sql: str, expected: tuple[str, str | None, bool]) -> None:
    assert _describe_statement(sql) == expected


def test_tracer_provider_must_be_one() -> None:
    with pytest.raises(ImproperlyConfigured, match="not a tracer provider"):
        Tracing(tracer_provider="console")  # type: ignore[arg-type]


def test_uses_the_global_provider_even_when_set_later(tmp_path: Path) -> None:
    # A process sets its global provider once: checked in a fresh interpreter. The
    # observer is made before the provider is configured (as an app module may be).
    code = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from covet import Covet
from covet.testing import TestClient
from covet.tracing import Tracing

app = Covet(allowed_hosts=["testserver"])
app.add_observer(Tracing())

@app.get("/hello")
async def hello(request):
    return "hello"

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
with TestClient(app) as client:
    client.get("/hello")
print([span.name for span in exporter.get_finished_spans()])
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.stdout.strip() == "['GET hello']", result.stderr


def test_without_an_sdk_the_caller_trace_still_propagates() -> None:
    tracing = Tracing(tracer_provider=trace.NoOpTracerProvider(), queries=False, templates=False)
    app = Covet(allowed_hosts=["testserver"])
    app.add_observer(tracing)

    @app.get("/current")
    async def current(request: Request) -> dict[str, Any]:
        span = trace.get_current_span()
        return {
            "trace": f"{span.get_span_context().trace_id:032x}",
            "recording": span.is_recording(),
        }

    with TestClient(app) as client:
        answer = client.get("/current", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert answer.json() == {"trace": TRACE_ID, "recording": False}


def test_missing_package_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "try:\n"
        "    import covet.tracing\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == (
        "MissingDependencyError The 'opentelemetry-api' package is required for this feature. "
        "Run: pip install 'covet-web[otel]'"
    )
    assert issubclass(MissingDependencyError, ImportError)
