"""The router's one dispatch gives the same answers with and without middleware.

The router is covet's only dispatch: without user middleware ``Covet`` calls
it directly and it hands unhandled exceptions straight to the 500 layer (no
error-middleware coroutine per request); with middleware it is the innermost
app and answers what has an exception handler itself. Every scenario here
runs twice, once without middleware and once with a pass-through middleware,
and the messages sent, the exception reported to the server's hook and the
error log must be identical. Nothing escapes to the server on either path:
the error layer logs an unhandled exception once and answers it itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

import pytest

from covet import (
    Covet,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    Request,
    Router,
    StreamingResponse,
)
from covet.background import BackgroundTask
from covet.middleware.errors import ExceptionMiddleware, ServerErrorMiddleware
from tests.asgi import http_scope

if TYPE_CHECKING:
    from covet.types import ASGIApp, Message, Receive, Scope, Send


class PassThrough:
    """A pure ASGI middleware that changes nothing (it only forces the full stack)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class BoomError(Exception):
    """An application error nobody handles."""


class HandledError(Exception):
    """An application error with a registered handler."""


def build(*, stacked: bool, debug: bool = False) -> tuple[Covet, list[str]]:
    app = Covet(debug=debug, allowed_hosts=["testserver"])
    ran: list[str] = []

    @app.get("/ok")
    async def ok(request: Request) -> PlainTextResponse:
        return PlainTextResponse("fine", headers={"X-Route": request.scope["route"].name})

    @app.get("/items/{item_id:int}")
    def item(request: Request, item_id: int) -> dict[str, Any]:  # a sync handler, on purpose
        return {"id": item_id, "endpoint": request.scope["endpoint"].__name__}

    @app.get("/teapot")
    async def teapot(request: Request) -> None:
        raise HTTPException(418, "short and stout", headers={"X-Pot": "1"})

    @app.get("/handled")
    async def handled(request: Request) -> None:
        raise HandledError("mapped")

    @app.get("/boom")
    async def boom(request: Request) -> None:
        raise BoomError("kaput")

    @app.get("/stream-breaks")
    async def stream_breaks(request: Request) -> StreamingResponse:
        async def chunks() -> Any:
            yield b"first"
            raise BoomError("mid-stream")

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/background-fails")
    async def background_fails(request: Request) -> PlainTextResponse:
        def task() -> None:
            ran.append("task")
            raise BoomError("after the response")

        return PlainTextResponse("sent", background=BackgroundTask(task))

    @app.get("/bad-handler")
    async def bad_handler(request: Request) -> None:
        raise ValueError("the handler for this fails")

    @app.exception_handler(HandledError)
    async def on_handled(request: Request, exc: HandledError) -> JSONResponse:
        return JSONResponse({"handled": str(exc)}, status_code=409)

    @app.exception_handler(ValueError)
    async def on_value_error(request: Request, exc: ValueError) -> JSONResponse:
        raise RuntimeError("the exception handler itself broke")

    if stacked:
        app.add_middleware(PassThrough)
    return app, ran


async def serve(
    app: Covet, path: str, method: str = "GET", accept: bytes = b"*/*"
) -> tuple[list[Message], BaseException | None]:
    """Serve one request; return what was sent and the exception reported, if any.

    An exception escaping the app fails the test: the error layer must answer
    it (and report it through the scope extension) instead of re-raising it to
    the server, which would log it a second time and drop the connection.
    """
    scope = http_scope(path, method=method, headers=[(b"accept", accept)])
    reported: list[BaseException] = []
    scope["extensions"] = {"covet.errors": {"report": reported.append}}
    sent: list[Message] = []
    requested = False
    never = asyncio.Event()

    async def receive() -> Message:
        nonlocal requested
        if requested:  # the client stays connected: a disconnect watcher just waits
            await never.wait()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert len(reported) <= 1, reported
    return sent, reported[0] if reported else None


def comparable(messages: list[Message]) -> list[Any]:
    # Debug tracebacks list the frames, which differ between the two paths: compare the rest.
    result: list[Any] = []
    traced = any(b'"traceback":' in m.get("body", b"") for m in messages)
    for message in messages:
        if traced and message["type"] == "http.response.start":
            headers = [h for h in message["headers"] if h[0] != b"content-length"]
            result.append((message["status"], headers))
            continue
        body = message.get("body", b"")
        if message["type"] == "http.response.body" and b'"traceback":' in body:
            shown = json.loads(body)
            result.append(("traceback", shown["error"], shown["detail"], shown["traceback"][-1]))
        else:
            result.append(message)
    return result


SCENARIOS = [
    ("GET", "/ok"),
    ("HEAD", "/ok"),
    ("GET", "/items/7"),
    ("GET", "/items/x"),
    ("GET", "/teapot"),
    ("GET", "/handled"),
    ("GET", "/boom"),
    ("GET", "/stream-breaks"),
    ("GET", "/background-fails"),
    ("GET", "/bad-handler"),
    ("POST", "/ok"),
    ("GET", "/missing"),
]


# (debug, Accept): the error page in each format. In debug mode only JSON is compared
# (the traceback's last line): the debug HTML page lists frames, which differ.
CLIENTS = [
    (False, b"application/json"),
    (False, b"text/html,application/xhtml+xml,*/*;q=0.8"),
    (False, b"*/*"),
    (True, b"application/json"),
]


@pytest.mark.parametrize(("debug", "accept"), CLIENTS)
@pytest.mark.parametrize(("method", "path"), SCENARIOS)
async def test_direct_dispatch_matches_the_full_stack(
    method: str, path: str, debug: bool, accept: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes = []
    for stacked in (False, True):
        app, ran = build(stacked=stacked, debug=debug)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="covet.error"):
            sent, escaped = await serve(app, path, method, accept=accept)
        logged = [(r.levelname, r.getMessage()) for r in caplog.records]
        outcomes.append((comparable(sent), type(escaped), str(escaped), logged, ran))
    assert outcomes[0] == outcomes[1]


async def test_direct_dispatch_answers_as_documented() -> None:
    app, ran = build(stacked=False)
    sent, escaped = await serve(app, "/ok")
    assert escaped is None and app._stack is app.router
    assert isinstance(getattr(app.router._failed, "__self__", None), ServerErrorMiddleware)
    assert sent[0]["status"] == 200 and (b"x-route", b"ok") in sent[0]["headers"]
    assert sent[1] == {"type": "http.response.body", "body": b"fine"}

    sent, escaped = await serve(app, "/ok", "HEAD")
    assert (b"content-length", b"4") in sent[0]["headers"] and sent[1]["body"] == b""

    sent, escaped = await serve(app, "/items/7")
    assert sent[1]["body"] == b'{"id":7,"endpoint":"item"}'

    sent, escaped = await serve(app, "/teapot")
    assert sent[0]["status"] == 418 and (b"x-pot", b"1") in sent[0]["headers"]

    sent, escaped = await serve(app, "/handled")
    assert sent[0]["status"] == 409 and sent[1]["body"] == b'{"handled":"mapped"}'

    # An unhandled error: a complete 500 without internals, reported (not raised) to
    # the server, so the kept-alive connection stays usable.
    sent, escaped = await serve(app, "/boom")
    assert sent[0]["status"] == 500 and sent[1]["body"] == b"Internal Server Error"
    assert (b"connection", b"close") not in sent[0]["headers"]
    assert isinstance(escaped, BoomError)

    # Once the body started, no 500 can follow: the response is left incomplete
    # (more_body=True), so the server closes the connection.
    sent, escaped = await serve(app, "/stream-breaks")
    assert [m.get("status") for m in sent][:1] == [200]
    assert all(m.get("status") != 500 for m in sent) and isinstance(escaped, BoomError)
    assert sent[-1]["more_body"] is True

    sent, escaped = await serve(app, "/background-fails")
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"sent" and len(sent) == 2
    assert isinstance(escaped, BoomError) and ran == ["task"]

    # An exception handler that fails turns into the 500, and its own error is the one
    # reported (chained to the one it was handling), as with the two middleware stacked.
    sent, escaped = await serve(app, "/bad-handler")
    assert sent[0]["status"] == 500 and isinstance(escaped, RuntimeError)
    assert isinstance(escaped.__context__, ValueError)

    sent, escaped = await serve(app, "/ok", "POST")
    assert sent[0]["status"] == 405 and (b"allow", b"GET, HEAD") in sent[0]["headers"]


async def test_middleware_wraps_the_same_router() -> None:
    # With middleware the router is still the innermost app, and it answers the
    # exceptions that have handlers itself: there is no ExceptionMiddleware layer.
    app, _ = build(stacked=True)
    sent, _ = await serve(app, "/ok")
    assert sent[0]["status"] == 200 and isinstance(app._stack, ServerErrorMiddleware)
    layer = app._stack.app
    assert isinstance(layer, PassThrough) and layer.app is app.router
    assert isinstance(getattr(app.router._failed, "__self__", None), ExceptionMiddleware)


async def test_direct_dispatch_builds_the_request_as_request_init_does() -> None:
    # The app builds the Request without calling the class (cheaper per request): it must
    # hold exactly what Request(scope, receive) holds, plus the instance-level _form.
    app = Covet(allowed_hosts=["testserver"])
    seen: list[Request] = []

    @app.get("/r/{number:int}")
    async def capture(request: Request, number: int) -> str:
        seen.append(request)
        return "ok"

    for _ in range(2):  # the first request builds the stack (and takes it)
        sent, escaped = await serve(app, "/r/3")
        assert escaped is None and sent[0]["status"] == 200 and app._stack is app.router
    request = seen[-1]
    assert type(request) is Request
    expected = Request(request.scope, request.receive)
    assert vars(request) == {**vars(expected), "_form": None}
    assert request.path_params == {"number": 3}


@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_request_limits_come_from_the_matched_route(prefix: str) -> None:
    from covet.requests import DEFAULT_LIMITS, RequestLimits
    from covet.routing import Router

    small = RequestLimits(max_body_size=10)
    app = Covet(allowed_hosts=["testserver"], limits=RequestLimits(max_body_size=20))
    router = Router(prefix=prefix)

    @router.get("/own", limits=small)
    async def own(request: Request) -> dict[str, int]:
        return {"max": request.limits.max_body_size}

    @router.get("/app")
    async def inherited(request: Request) -> dict[str, int]:
        return {"max": request.limits.max_body_size}

    app.include_router(router)
    for stacked in (False, True):
        if stacked:
            app = Covet(allowed_hosts=["testserver"], limits=RequestLimits(max_body_size=20))
            app.include_router(router)
            app.add_middleware(PassThrough)
        sent, _ = await serve(app, f"{prefix}/own")
        assert json.loads(sent[1]["body"]) == {"max": 10}
        sent, _ = await serve(app, f"{prefix}/app")
        assert json.loads(sent[1]["body"]) == {"max": 20}
    # Outside any route (and without an override in the scope): the defaults.
    assert Request(http_scope("/")).limits is DEFAULT_LIMITS


async def test_direct_dispatch_keeps_parameters_matched_outside_the_app() -> None:
    # A router outside the app (a Host pattern, say) may have matched parameters
    # without changing root_path: they stay in scope["path_params"] beside the route's
    # own, while the handler is called with its own only.
    for stacked in (False, True):
        app, _ = build(stacked=stacked)
        for _ in range(2):  # the first request builds the stack (and takes it)
            scope = http_scope("/items/7")
            scope["path_params"] = {"subdomain": "shop"}
            seen: list[Message] = []

            async def receive() -> Message:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: Message, seen: list[Message] = seen) -> None:
                seen.append(message)

            await app(scope, receive, send)
            assert seen[1]["body"] == b'{"id":7,"endpoint":"item"}'
            assert scope["path_params"] == {"subdomain": "shop", "item_id": 7}


async def test_request_state_without_server_state() -> None:
    # A server without lifespan state sends no scope["state"]: request.state still
    # works, and state the lifespan yielded reaches every request.
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Covet) -> Any:
        yield {"pool": "ready"}

    app = Covet(allowed_hosts=["testserver"], lifespan=lifespan)

    @app.get("/state")
    async def state(request: Request) -> dict[str, Any]:
        request.state.seen = True
        return {"pool": request.state.pool}

    lifespan_messages = iter([{"type": "lifespan.startup"}])
    lifespan_sent: list[Message] = []

    async def lifespan_receive() -> Message:
        try:
            return next(lifespan_messages)
        except StopIteration:
            await asyncio.Event().wait()
            raise

    async def lifespan_send(message: Message) -> None:
        lifespan_sent.append(message)

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, lifespan_receive, lifespan_send)
    )
    while not lifespan_sent:
        await asyncio.sleep(0)
    assert lifespan_sent[0]["type"] == "lifespan.startup.complete"
    for _ in range(2):
        sent, escaped = await serve(app, "/state")
        assert escaped is None and json.loads(sent[1]["body"]) == {"pool": "ready"}
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(("method", "path"), [("GET", "/ok"), ("GET", "/items/7"), ("POST", "/ok")])
async def test_direct_dispatch_below_a_root_path(
    method: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Behind a proxy (uvicorn --root-path) the full path arrives with the prefix in
    # root_path: routes match the rest, with and without middleware.
    answers: list[list[Message]] = []
    for stacked in (False, True):
        app, _ = build(stacked=stacked)
        sent: list[Message] = []
        for attempt in range(2):  # the first request builds the stack (and takes it)
            scope = http_scope("/prefix" + path, method=method)
            scope["root_path"] = "/prefix"
            sent = []

            async def receive() -> Message:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: Message, sent: list[Message] = sent) -> None:
                sent.append(message)

            if not stacked and attempt == 1:
                # From the second request on, the router serves it without an error-layer
                # wrapper (the 405 is answered through the error layer's failed()).
                monkeypatch.setattr(ServerErrorMiddleware, "__call__", _refuse_wrapper)
                monkeypatch.setattr(ExceptionMiddleware, "__call__", _refuse_wrapper)
            await app(scope, receive, send)
            monkeypatch.undo()
        answers.append(sent)
    assert answers[0] == answers[1]
    assert answers[0][0]["status"] == (405 if method == "POST" else 200)


async def _refuse_wrapper(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the request went through an error-layer wrapper")


async def test_mounted_app_keeps_the_outer_parameters() -> None:
    inner = Covet(allowed_hosts=["testserver"])

    @inner.get("/items/{item_id:int}")
    async def item(request: Request, item_id: int) -> dict[str, Any]:
        return {"kwarg": item_id, "params": request.path_params}

    outer = Covet(allowed_hosts=["testserver"])
    outer.mount("/shops/{shop}", inner)
    for _ in range(2):
        sent, escaped = await serve(outer, "/shops/north/items/3")
        assert escaped is None
        assert json.loads(sent[1]["body"]) == {
            "kwarg": 3,
            "params": {"shop": "north", "item_id": 3},
        }


async def test_app_without_middleware_awaits_the_handler_itself() -> None:
    # Covet.__call__ is the router's dispatch function: once the app is built, the
    # handler's caller is the app's own __call__ frame, with no router coroutine between.
    app = Covet(allowed_hosts=["testserver"])
    callers: list[tuple[object, object]] = []

    @app.get("/who")
    async def who(request: Request) -> str:
        caller = sys._getframe(1)
        callers.append((caller.f_code, caller.f_locals.get("self")))
        return "ok"

    for _ in range(2):  # the first request builds the stack (through the general path)
        sent, escaped = await serve(app, "/who")
        assert escaped is None and sent[0]["status"] == 200
    assert type(app).__call__ is Router.__call__
    code, owner = callers[-1]
    assert code is Router.__call__.__code__ and owner is app

    stacked, _ = build(stacked=True)  # with middleware the router is its own app below it
    stacked.add_route("/who", who)
    for _ in range(2):
        sent, _ = await serve(stacked, "/who")
        assert sent[0]["status"] == 200
    code, owner = callers[-1]
    assert code is Router.__call__.__code__ and owner is stacked.router


async def test_observed_request_runs_an_overridden_call_once() -> None:
    # The observed path serves the connection itself instead of calling the app
    # again, so a subclass wrapping __call__ runs once per request.
    calls: list[str] = []

    class Counting(Covet):
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            calls.append(scope["type"])
            await super().__call__(scope, receive, send)

    class Observer:
        def request_started(self, context: object) -> None:
            calls.append("started")

        def request_finished(self, context: object) -> None:
            calls.append("finished")

    app = Counting(allowed_hosts=["testserver"])
    app.add_observer(Observer())

    @app.get("/ok")
    async def ok(request: Request) -> str:
        return "ok"

    sent, escaped = await serve(app, "/ok")
    assert escaped is None and sent[0]["status"] == 200
    assert calls == ["http", "started", "finished"]
