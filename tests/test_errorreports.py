"""app.add_error_reporter(): once per unhandled exception, with the request, secrets masked.

Every HTTP scenario runs on the app's direct dispatch path, under a stacked
middleware and in debug mode: the reporter must see the same thing on each.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from covet import Covet, HTTPException, PlainTextResponse, Request, WebSocket
from covet.background import BackgroundTask
from covet.db import DatabaseUnavailableError
from covet.exceptions import ImproperlyConfigured
from covet.middleware import RequestIDMiddleware
from covet.testing import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator

    from covet.errorreports import ErrorReport
    from covet.types import ASGIApp, Receive, Scope, Send

MODES = ["direct", "stacked", "debug"]


class BoomError(Exception):
    """An application error nobody handles."""


class HandledError(Exception):
    """An application error with a handler of the app's own."""


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


class Reports:
    """A reporter collecting what it is handed."""

    def __init__(self) -> None:
        self.calls: list[tuple[BaseException, ErrorReport]] = []

    async def __call__(self, exc: BaseException, report: ErrorReport) -> None:
        self.calls.append((exc, report))

    @property
    def one(self) -> tuple[BaseException, ErrorReport]:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


def build(mode: str, reports: Reports) -> Covet:
    app = Covet(debug=mode == "debug", allowed_hosts=["testserver"])
    if mode != "direct":
        app.add_middleware(FakeAuth)
    app.add_error_reporter(reports)

    @app.post("/boom/{token}", name="boom")
    async def boom(request: Request, token: str) -> None:
        await request.form()
        raise BoomError("kaput")

    @app.get("/background", name="background")
    async def background(request: Request) -> PlainTextResponse:
        async def fails() -> None:
            raise BoomError("after the response")

        return PlainTextResponse("sent", background=BackgroundTask(fails))

    @app.get("/teapot")
    async def teapot(request: Request) -> None:
        raise HTTPException(418)

    @app.get("/handled")
    async def handled(request: Request) -> None:
        raise HandledError

    @app.exception_handler(HandledError)
    async def on_handled(request: Request, exc: HandledError) -> PlainTextResponse:
        return PlainTextResponse("handled", status_code=409)

    @app.get("/outage")
    async def outage(request: Request) -> None:
        raise DatabaseUnavailableError("connection refused")

    @app.websocket("/ws/{room}", name="room")
    async def room(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise BoomError("in the websocket")

    return app


@pytest.fixture
def quiet_errors() -> Iterator[None]:
    # The 500s these tests provoke log a traceback each: keep them off the console.
    logger = logging.getLogger("covet.error")
    previous = logger.propagate
    logger.propagate = False
    yield
    logger.propagate = previous


pytestmark = pytest.mark.usefixtures("quiet_errors")

SECRETS = (
    "bearer-secret",
    "cookie-secret",
    "csrf-secret",
    "session-secret",
    "query-secret",
    "form-secret",
    "path-secret",
)


@pytest.mark.parametrize("mode", MODES)
def test_unhandled_http_error_is_reported_once_with_its_request(mode: str) -> None:
    reports = Reports()
    with TestClient(build(mode, reports), raise_server_exceptions=False) as client:
        response = client.post(
            "/boom/path-secret?api_key=query-secret&page=2",
            data={"title": "hello", "password": "form-secret"},
            headers={
                "Authorization": "Bearer bearer-secret",
                "Cookie": "sessionid=cookie-secret; theme=dark",
                "X-CSRF-Token": "csrf-secret",
                "X-Session": "session-secret",
                "Accept": "application/json",
            },
        )
    assert response.status_code == 500
    exc, report = reports.one
    assert isinstance(exc, BoomError)
    assert report.kind == "http" and report.method == "POST"
    assert report.route_name == "boom"
    assert report.path == "/boom/********"
    assert report.url == "http://testserver/boom/********"
    assert report.client == "testclient"
    assert report.response_started is False
    assert len(report.request_id) == 32
    headers = dict(report.headers)
    assert headers["authorization"] == headers["cookie"] == "********"
    assert headers["x-csrf-token"] == headers["x-session"] == "********"
    assert headers["accept"] == "application/json"
    assert report.query == (("api_key", "********"), ("page", "2"))
    assert report.path_params == (("token", "********"),)
    assert report.cookies == {"sessionid": "********", "theme": "********"}
    assert report.form == (("title", "hello"), ("password", "********"))
    data = report.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert [secret for secret in SECRETS if secret in json.dumps(data) + repr(report)] == []
    assert report.scope["path"] == "/boom/path-secret"  # the raw scope, for integrations


def test_form_is_none_when_the_handler_did_not_read_it() -> None:
    reports = Reports()
    app = Covet(allowed_hosts=["testserver"])
    app.add_error_reporter(reports)

    @app.post("/unread")
    async def unread(request: Request) -> None:
        raise BoomError

    with TestClient(app, raise_server_exceptions=False) as client:
        client.post("/unread", data={"password": "never-read"})
    assert reports.one[1].form is None
    assert reports.one[1].route_name == "unread"


@pytest.mark.parametrize("mode", ["stacked", "debug"])
def test_report_names_the_user_and_the_request_id_the_client_got(mode: str) -> None:
    reports = Reports()
    app = build(mode, reports)
    app.add_middleware(RequestIDMiddleware)
    with TestClient(app, raise_server_exceptions=False) as client:
        # A background task fails after a response that went through RequestIDMiddleware.
        response = client.get("/background", headers={"X-User": "7"})
    assert response.status_code == 200
    report = reports.one[1]
    assert report.user_id == "7"
    assert report.request_id == response.headers["X-Request-ID"]


def test_report_takes_the_request_id_of_the_observed_request() -> None:
    seen: list[str] = []

    class Observer:
        def request_started(self, context: Any) -> None:
            pass

        def request_finished(self, context: Any) -> None:
            seen.append(context.request_id)

    reports = Reports()
    app = build("direct", reports)
    app.add_observer(Observer())
    with TestClient(app, raise_server_exceptions=False) as client:
        client.post("/boom/x")
    assert [reports.one[1].request_id] == seen


@pytest.mark.parametrize("mode", MODES)
def test_background_task_error_is_reported_with_its_request(mode: str) -> None:
    reports = Reports()
    with TestClient(build(mode, reports), raise_server_exceptions=False) as client:
        response = client.get("/background")
    assert response.status_code == 200 and response.text == "sent"
    exc, report = reports.one
    assert str(exc) == "after the response"
    assert report.route_name == "background" and report.path == "/background"
    assert report.response_started is True


@pytest.mark.parametrize("mode", MODES)
def test_websocket_error_is_reported(mode: str) -> None:
    reports = Reports()
    with (
        TestClient(build(mode, reports), raise_server_exceptions=False) as client,
        client.websocket_connect("/ws/lobby?token=query-secret") as session,
    ):
        session.send_text("hi")
        message = session.receive()
    assert message["type"] == "websocket.close" and message["code"] == 1011
    exc, report = reports.one
    assert str(exc) == "in the websocket"
    assert report.kind == "websocket" and report.method == "WEBSOCKET"
    assert report.route_name == "room" and report.path == "/ws/lobby"
    assert report.query == (("token", "********"),)
    assert report.response_started is True


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("path", "status"), [("/teapot", 418), ("/handled", 409), ("/outage", 503), ("/nowhere", 404)]
)
def test_errors_the_app_answers_are_not_reported(mode: str, path: str, status: int) -> None:
    reports = Reports()
    with TestClient(build(mode, reports), raise_server_exceptions=False) as client:
        assert client.get(path).status_code == status
    assert reports.calls == []


def test_a_sync_reporter_runs_in_a_worker_thread() -> None:
    threads: list[int] = []
    app = build("direct", Reports())
    app.add_error_reporter(lambda exc, report: threads.append(threading.get_ident()))
    with TestClient(app, raise_server_exceptions=False) as client:
        client.post("/boom/x")
    assert len(threads) == 1 and threads[0] != threading.get_ident()


def test_the_test_client_still_raises_after_the_reporters_ran() -> None:
    reports = Reports()
    with TestClient(build("direct", reports)) as client, pytest.raises(BoomError):
        client.post("/boom/x")
    assert len(reports.calls) == 1


@pytest.mark.parametrize("mode", MODES)
def test_failing_and_hanging_reporters_are_logged_and_change_nothing(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def raises(exc: BaseException, report: ErrorReport) -> None:
        raise RuntimeError("reporter bug")

    async def hangs(exc: BaseException, report: ErrorReport) -> None:
        await asyncio.Event().wait()

    def blocks(exc: BaseException, report: ErrorReport) -> None:
        release.wait(10)

    reports = Reports()
    app = build(mode, reports)
    app.add_error_reporter(raises)
    app.add_error_reporter(hangs, timeout=0.05)
    app.add_error_reporter(blocks, timeout=0.05)
    caplog.set_level(logging.ERROR, "covet.error")
    with TestClient(app, raise_server_exceptions=False) as client:
        try:
            response = client.post("/boom/x", headers={"Accept": "application/json"})
            assert response.status_code == 500
            assert response.json() == {"detail": "Internal Server Error"} or mode == "debug"
            assert client.get("/teapot").status_code == 418  # the app goes on serving
        finally:
            release.set()  # the thread cannot be stopped: let it end before the loop closes
    assert len(reports.calls) == 1  # the well-behaved reporter still got it
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "Unhandled BoomError while serving POST '/boom/x'"
    failed = [m for m in messages if m.startswith("Error reporter")]
    assert len(failed) == 3, messages
    assert any("raises failed while reporting BoomError" in m for m in failed)
    assert any("hangs took longer than 0.05 s" in m for m in failed)
    assert any("blocks took longer than 0.05 s" in m for m in failed)
    bug = next(r for r in caplog.records if "raises failed" in r.getMessage())
    assert bug.exc_info is not None and str(bug.exc_info[1]) == "reporter bug"


def test_registration_is_checked() -> None:
    app = Covet()
    with pytest.raises(ImproperlyConfigured, match=r"reporter\(exc, report\)"):
        app.add_error_reporter(len)  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match=r"reporter\(exc, report\)"):
        app.add_error_reporter("not callable")  # type: ignore[arg-type]
    for bad in (0, -1, float("nan"), True, "5"):
        with pytest.raises(ImproperlyConfigured, match="positive number of seconds"):
            app.add_error_reporter(Reports(), timeout=bad)  # type: ignore[arg-type]
    with TestClient(app):
        pass
    with pytest.raises(ImproperlyConfigured, match="Cannot add error reporter"):
        app.add_error_reporter(Reports())


def test_an_app_without_reporters_never_loads_the_module() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from covet import Covet\n"
        "from covet.testing import TestClient\n"
        "app = Covet(allowed_hosts=['testserver'])\n"
        "@app.get('/boom')\n"
        "async def boom(request):\n"
        "    raise ValueError\n"
        "import logging; logging.getLogger('covet.error').propagate = False\n"
        "with TestClient(app, raise_server_exceptions=False) as client:\n"
        "    assert client.get('/boom').status_code == 500\n"
        "print('covet.errorreports' in sys.modules, 'covet._redact' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert result.stdout.split() == ["False", "False"]
