"""A database that cannot be reached answers 503 with Retry-After, not 500 (issue 23).

The error layer reads ``status_code`` and ``retry_after`` from the exception
class (duck-typed), so the web core never imports ``covet.db``: these tests
raise :class:`covet.db.DatabaseUnavailableError` the way a backend does, and
a non-database covet error declaring its own status the way another battery
may.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet, JSONResponse, Request, WebSocket
from covet.db import DatabaseUnavailableError, OperationalError, PoolTimeout
from covet.exceptions import CovetError
from covet.testing import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator

    from covet.types import Receive, Scope, Send

MESSAGE = (
    "Cannot connect to PostgreSQL at db.internal:5432: connection refused. Start the "
    "database server, or fix the host and port in the database URL (DATABASE_URL)."
)


class QueueFullError(CovetError):
    """Another battery's temporary condition, declaring its own status."""

    status_code = 429
    retry_after = 7.2


class Passthrough:
    """A do-nothing user middleware: with it, the error layers are separate."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(params=["fused", "layered"])
def app(request: pytest.FixtureRequest) -> Covet:
    app = Covet()
    if request.param == "layered":
        app.add_middleware(Passthrough)

    @app.get("/down")
    async def down(request: Request) -> str:
        raise DatabaseUnavailableError(MESSAGE)

    @app.get("/pool")
    async def pool(request: Request) -> str:
        raise PoolTimeout("No connection to test became free within 5s")

    @app.get("/login")
    async def login(request: Request) -> str:
        raise OperationalError("PostgreSQL refused the login of user 'app'")

    @app.get("/queue")
    async def queue(request: Request) -> str:
        raise QueueFullError("the job queue is full")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        raise DatabaseUnavailableError(MESSAGE)

    return app


@pytest.fixture
def retry_after() -> Iterator[None]:
    before = DatabaseUnavailableError.retry_after
    yield
    DatabaseUnavailableError.retry_after = before


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "covet.error"]


def test_unavailable_database_is_503_with_retry_after_and_one_log_line(
    app: Covet, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="covet.error"), TestClient(app) as client:
        text = client.get("/down", headers={"accept": "*/*"})
        as_json = client.get("/down", headers={"accept": "application/json"})
        page = client.get("/down", headers={"accept": "text/html"})
        # The kept-alive connection serves the next request.
        assert client.get("/down").status_code == 503
    assert (text.status_code, text.text) == (503, "Service Unavailable")
    assert text.headers["retry-after"] == "2"
    assert (as_json.status_code, as_json.json()) == (503, {"detail": "Service Unavailable"})
    assert as_json.headers["retry-after"] == "2"
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "Service Unavailable" in page.text
    # Nothing about the server (host names, users) reaches the client.
    for response in (text, as_json, page):
        assert "db.internal" not in response.text
    records = _records(caplog)
    assert len(records) == 4
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in records)
    assert records[0].getMessage() == (
        f"DatabaseUnavailableError while serving GET '/down': {MESSAGE}; answered 503"
    )


def test_pool_timeout_is_unavailable_too(app: Covet) -> None:
    with TestClient(app) as client:
        response = client.get("/pool")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"


def test_a_permanent_database_error_stays_a_500(app: Covet) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/login")
    assert response.status_code == 500
    assert "retry-after" not in response.headers


def test_retry_after_is_configurable(app: Covet, retry_after: None) -> None:
    DatabaseUnavailableError.retry_after = 5
    with TestClient(app) as client:
        assert client.get("/down").headers["retry-after"] == "5"


def test_other_covet_errors_declare_their_own_status(app: Covet) -> None:
    with TestClient(app) as client:
        response = client.get("/queue")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "8"  # rounded up to whole seconds


def test_a_handler_for_the_class_takes_precedence(app: Covet) -> None:
    @app.exception_handler(DatabaseUnavailableError)
    async def maintenance(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"maintenance": True}, status_code=503, headers={"Retry-After": "60"})

    with TestClient(app) as client:
        response = client.get("/down")
        pool = client.get("/pool")
    assert (response.status_code, response.json()) == (503, {"maintenance": True})
    assert response.headers["retry-after"] == "60"
    assert pool.json() == {"maintenance": True}


def test_a_handler_for_503_takes_precedence(app: Covet) -> None:
    @app.exception_handler(503)
    async def busy(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"busy": type(exc).__name__}, status_code=503)

    with TestClient(app) as client:
        response = client.get("/down")
    assert (response.status_code, response.json()) == (503, {"busy": "DatabaseUnavailableError"})
    assert "retry-after" not in response.headers


def test_a_websocket_is_closed_1011(app: Covet) -> None:
    with (
        TestClient(app, raise_server_exceptions=False) as client,
        client.websocket_connect("/ws") as ws,
    ):
        message = ws.receive()
    assert message == {"type": "websocket.close", "code": 1011, "reason": ""}


class DownBeforeTheApp:
    """A middleware reading the database before the app runs (a session or token lookup)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") == "/mw-before":
            raise DatabaseUnavailableError(MESSAGE)
        await self.app(scope, receive, send)


class DownAtResponseStart:
    """A middleware writing to the database as the response starts (a session save)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def saving_send(message: Any) -> None:
            if message["type"] == "http.response.start" and scope.get("path") == "/mw-save":
                raise PoolTimeout("No connection to test became free within 5s")
            await send(message)

        await self.app(scope, receive, saving_send)


@pytest.mark.parametrize("path", ["/mw-before", "/mw-save"])
def test_unavailable_database_in_a_middleware_is_503_not_500(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 16: under a database restart, the scaffold's session and bearer-token
    # middleware raised DatabaseUnavailableError outside the exception layer and
    # the client got a 500 with a traceback in the log.
    app = Covet()
    app.add_middleware(DownBeforeTheApp)
    app.add_middleware(DownAtResponseStart)

    @app.get("/mw-before")
    @app.get("/mw-save")
    async def ok(request: Request) -> str:
        return "ok"

    with caplog.at_level(logging.INFO, logger="covet.error"), TestClient(app) as client:
        response = client.get(path, headers={"accept": "application/json"})
        assert client.get(path).status_code == 503  # the connection is kept
    assert (response.status_code, response.json()) == (503, {"detail": "Service Unavailable"})
    assert response.headers["retry-after"] == "2"
    records = _records(caplog)
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in records), records
