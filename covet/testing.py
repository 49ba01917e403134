"""A synchronous test client that drives an ASGI application in-process.

:class:`TestClient` is an :class:`httpx.Client` whose transport calls the
application directly instead of opening sockets. The application runs on an
asyncio event loop that lives in a background thread for the whole life of the
client, so objects created at startup (database pools, caches) keep working
across requests. Scopes mirror what uvicorn sends, including ``root_path``
being prefixed to ``path``.

Used as a context manager, the client also runs the ASGI lifespan protocol::

    with TestClient(app) as client:        # startup runs here
        assert client.get("/").status_code == 200
    # shutdown ran here

``client.websocket_connect(path)`` opens a :class:`WebSocketTestSession`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

from covet.exceptions import MissingDependencyError, WebSocketDisconnect
from covet.middleware.errors import REPORT_EXTENSION

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    # TestClient is built on httpx; say which extra installs it rather than
    # leaving a bare ModuleNotFoundError.
    raise MissingDependencyError("httpx", extra="testing") from exc

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
    from types import TracebackType

    from covet.types import ASGIApp, Message, Scope

__all__ = ("TestClient", "WebSocketTestSession")

_T = TypeVar("_T")

# Request bodies reach the application in pieces of at most this size, the way
# a server hands over what it read from the socket.
_CHUNK_SIZE = 65_536
# How long a websocket handler may keep running after the test closed the
# connection before the session gives up on it and cancels it.
_WEBSOCKET_CLOSE_TIMEOUT = 10.0
_ASGI = {"version": "3.0"}
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class _ClientDisconnectedError(OSError):
    """Raised by ``send()`` once the test has closed the connection (ASGI spec 2.4)."""


@dataclass(slots=True)
class _Finished:
    """Queue marker: the application coroutine returned or raised."""

    exc: BaseException | None
    received: bool = False


class _EventLoopThread:
    """An asyncio event loop running forever in a daemon thread.

    The loop starts on first use and lives until :meth:`close`, which cancels
    leftover tasks and closes the loop from inside its own thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError(
                    "The TestClient is closed. Create a new TestClient to send more requests."
                )
            if self._loop is None:
                loop = asyncio.new_event_loop()
                started = threading.Event()
                thread = threading.Thread(
                    target=self._run_loop,
                    args=(loop, started),
                    name="covet-testclient-loop",
                    daemon=True,
                )
                thread.start()
                started.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            try:
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def run(self, func: Callable[..., Coroutine[Any, Any, _T]], *args: Any) -> _T:
        """Run ``func(*args)`` on the loop and block until it returns its result."""
        loop = self._ensure_started()
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "The TestClient was called from inside the application it drives. "
                "Call the client only from test code."
            )
        future = asyncio.run_coroutine_threadsafe(func(*args), loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        """Stop the loop, cancel its remaining tasks and join the thread."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not threading.current_thread():
            thread.join()


def _install_report_hook(scope: Scope) -> list[Exception]:
    """Collect the exceptions covet's error layer reports for this connection.

    The error layer logs and answers an unhandled exception instead of
    re-raising it to the server; through this scope extension it still hands
    the exception over, so that the test can see it.
    """
    reported: list[Exception] = []
    scope["extensions"][REPORT_EXTENSION] = {"report": reported.append}
    return reported


def _body_chunks(stream: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in stream:
        for start in range(0, len(chunk), _CHUNK_SIZE):
            yield chunk[start : start + _CHUNK_SIZE]


def _build_scope(
    kind: Literal["http", "websocket"],
    request: httpx.Request,
    *,
    root_path: str,
    client: tuple[str, int],
    state: dict[str, Any],
) -> Scope:
    url = request.url
    scheme = url.scheme
    if kind == "websocket":
        scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    raw_path = url.raw_path.partition(b"?")[0]
    scope: Scope = {
        "type": kind,
        "asgi": dict(_ASGI),
        "http_version": "1.1",
        "scheme": scheme,
        # Like uvicorn: the path the proxy forwarded, prefixed with root_path.
        "path": root_path + url.path,
        "raw_path": root_path.encode("ascii") + raw_path,
        "root_path": root_path,
        "query_string": url.query,
        "headers": [(name.lower(), value) for name, value in request.headers.raw],
        "client": client,
        "server": (url.host, url.port or _DEFAULT_PORTS.get(scheme, 80)),
        "extensions": {},
        "state": dict(state),
    }
    if kind == "http":
        scope["method"] = request.method
    return scope


class _HTTPExchange:
    """One HTTP request/response cycle between the transport and the app."""

    def __init__(self, request: httpx.Request) -> None:
        self._chunks = _body_chunks(request.stream)  # type: ignore[arg-type]
        self._next_chunk: bytes | None = next(self._chunks, None)
        self._request_complete = False
        self.response_complete = asyncio.Event()
        self.status_code: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()

    async def receive(self) -> Message:
        if self._request_complete:
            # After the body, a server only reports the disconnect, which for
            # this client happens once the response has been read.
            await self.response_complete.wait()
            return {"type": "http.disconnect"}
        chunk, self._next_chunk = self._next_chunk, None
        if chunk is not None:
            self._next_chunk = next(self._chunks, None)
        more_body = self._next_chunk is not None
        self._request_complete = not more_body
        return {"type": "http.request", "body": chunk or b"", "more_body": more_body}

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if self.response_complete.is_set():
            raise RuntimeError(
                f"Unexpected ASGI message {kind!r} sent after the response was complete. "
                "Send nothing once 'more_body' was false."
            )
        if kind == "http.response.start":
            if self.status_code is not None:
                raise RuntimeError(
                    "The application sent 'http.response.start' twice. Start a response only once."
                )
            self.status_code = int(message["status"])
            self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif kind == "http.response.body":
            if self.status_code is None:
                raise RuntimeError(
                    "The application sent 'http.response.body' before 'http.response.start'. "
                    "Send the start message first."
                )
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                self.response_complete.set()
        else:
            raise RuntimeError(
                f"Unexpected ASGI message type {kind!r} for an HTTP request. "
                "Send 'http.response.start' then 'http.response.body'."
            )


class _TestClientTransport(httpx.BaseTransport):
    """Hand httpx requests to an ASGI application on the client's event loop."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        portal: _EventLoopThread,
        raise_server_exceptions: bool,
        root_path: str,
        client: tuple[str, int],
        state: dict[str, Any],
    ) -> None:
        self.app = app
        self.portal = portal
        self.raise_server_exceptions = raise_server_exceptions
        self.root_path = root_path
        self.client = client
        self.state = state

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Run the application for ``request`` and return its complete response."""
        scope = _build_scope(
            "http", request, root_path=self.root_path, client=self.client, state=self.state
        )
        exchange = self.portal.run(self._call_app, scope, request)
        if exchange.status_code is None:
            # Only reachable with raise_server_exceptions=False: report what a
            # server would, a bare 500.
            return httpx.Response(
                500,
                headers=[(b"content-length", b"0")],
                stream=httpx.ByteStream(b""),
                request=request,
            )
        return httpx.Response(
            exchange.status_code,
            headers=exchange.headers,
            stream=httpx.ByteStream(bytes(exchange.body)),
            request=request,
        )

    async def _call_app(self, scope: Scope, request: httpx.Request) -> _HTTPExchange:
        exchange = _HTTPExchange(request)
        reported = _install_report_hook(scope)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception:
            if self.raise_server_exceptions:
                raise
            return exchange
        finally:
            exchange.response_complete.set()
        if reported and self.raise_server_exceptions:
            # covet's error layer answered (and logged) the exception without
            # re-raising it, as it does under a real server: raise it here.
            raise reported[0]
        if exchange.status_code is None and self.raise_server_exceptions:
            raise RuntimeError(
                f"The application returned without sending a response for "
                f"{request.method} {request.url.path!r}. Send 'http.response.start' and "
                "'http.response.body' messages."
            )
        return exchange

    def close(self) -> None:
        """Stop the client's event loop."""
        self.portal.close()


class WebSocketTestSession:
    """The test side of one websocket connection; use it as a context manager.

    Entering performs the handshake: it returns once the application accepted
    the connection, and raises :class:`~covet.exceptions.WebSocketDisconnect`
    with the close code if the application closed it first. Leaving closes
    the connection (code 1000) unless the test already did, waits for the
    handler to return and re-raises any error it raised.
    """

    def __init__(
        self,
        app: ASGIApp,
        scope: Scope,
        portal: _EventLoopThread,
        *,
        raise_server_exceptions: bool,
        owner: object = None,
    ) -> None:
        # Holding the owning client keeps its event loop alive for as long as
        # the session is, even in ``TestClient(app).websocket_connect(...)``.
        self._owner = owner
        self._app = app
        self._scope = scope
        self._portal = portal
        self._raise_server_exceptions = raise_server_exceptions
        # Queues bind to the running loop on first use (Python 3.10+), so they
        # may be created here in the test thread.
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message | _Finished] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._disconnect: Message | None = None
        self._client_closed = False
        self._accepted = False
        self._close_message: Message | None = None
        self._finished: _Finished | None = None
        self._exception_reported = False
        self.accepted_subprotocol: str | None = None
        self.extra_headers: list[tuple[bytes, bytes]] = []

    def __enter__(self) -> Self:
        self._portal.run(self._start)
        message = self.receive()
        if message["type"] == "websocket.accept":
            self._accepted = True
            self.accepted_subprotocol = message.get("subprotocol")
            self.extra_headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
            return self
        # Rejected: the application closed (or ended) before accepting.
        self._wait_for_app()
        raise WebSocketDisconnect(int(message.get("code", 1000)), message.get("reason") or None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(1000)
        self._wait_for_app()

    # -- event loop side ------------------------------------------------------

    async def _start(self) -> None:
        self._to_app.put_nowait({"type": "websocket.connect"})
        self._task = asyncio.create_task(self._run_app())

    async def _run_app(self) -> None:
        reported = _install_report_hook(self._scope)
        try:
            await self._app(self._scope, self._asgi_receive, self._asgi_send)
        except asyncio.CancelledError as exc:
            self._from_app.put_nowait(_Finished(exc))
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the test thread, re-raised there
            self._from_app.put_nowait(_Finished(exc))
        else:
            # An error covet's error layer answered (close 1011) is reported, not raised.
            self._from_app.put_nowait(_Finished(reported[0] if reported else None))

    async def _asgi_receive(self) -> Message:
        if self._to_app.empty() and self._disconnect is not None:
            return dict(self._disconnect)
        return await self._to_app.get()

    async def _asgi_send(self, message: Message) -> None:
        kind = message.get("type")
        if kind not in ("websocket.accept", "websocket.send", "websocket.close"):
            raise RuntimeError(
                f"Unexpected ASGI message type {kind!r} for a websocket. "
                "Send 'websocket.accept', 'websocket.send' or 'websocket.close'."
            )
        if self._disconnect is not None:
            raise _ClientDisconnectedError("The websocket client has closed the connection.")
        if kind == "websocket.close" and self._disconnect is None:
            # The server answers a close frame with a close frame, so the next
            # receive() of the handler reports the disconnect.
            self._disconnect = {
                "type": "websocket.disconnect",
                "code": int(message.get("code", 1000)),
                "reason": message.get("reason") or "",
            }
        self._from_app.put_nowait(dict(message))

    async def _put(self, message: Message) -> None:
        if message.get("type") == "websocket.disconnect" and self._disconnect is None:
            # Set on the loop before the app can see the message, so that a
            # send() right after receiving the disconnect fails as on a server.
            self._disconnect = message
        self._to_app.put_nowait(message)

    async def _get(self) -> Message | _Finished:
        return await self._from_app.get()

    async def _wait_task(self, grace: float) -> bool:
        if self._task is None:
            return True
        done, _ = await asyncio.wait({self._task}, timeout=grace)
        if done:
            return True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return False

    # -- test side --------------------------------------------------------------

    def _wait_for_app(self) -> None:
        if self._task is None:
            return
        if not self._portal.run(self._wait_task, _WEBSOCKET_CLOSE_TIMEOUT):
            raise RuntimeError(
                f"The websocket handler for {self._scope['path']!r} was still running "
                f"{_WEBSOCKET_CLOSE_TIMEOUT:g}s after the client closed the connection, so it "
                "was cancelled. Return from the handler when receive() raises "
                "WebSocketDisconnect."
            )
        while self._finished is None:
            item = self._portal.run(self._get)
            if isinstance(item, _Finished):
                self._finished = item
        self._raise_app_exception()

    def _raise_app_exception(self) -> None:
        finished = self._finished
        if finished is None or finished.exc is None or self._exception_reported:
            return
        self._exception_reported = True
        exc = finished.exc
        if isinstance(exc, WebSocketDisconnect | _ClientDisconnectedError | asyncio.CancelledError):
            # The handler ended because the connection closed (or the session
            # cancelled it and already reported that): a normal end here.
            return
        if self._raise_server_exceptions:
            raise exc

    def send(self, message: Message) -> None:
        """Send a raw ASGI message (``websocket.receive``/``websocket.disconnect``) to the app."""
        self._portal.run(self._put, dict(message))

    def send_text(self, data: str) -> None:
        """Send a text message."""
        self.send({"type": "websocket.receive", "text": data})

    def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        self.send({"type": "websocket.receive", "bytes": bytes(data)})

    def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        """Send ``data`` encoded as compact JSON, as a text or a binary message."""
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if mode == "text":
            self.send_text(text)
        elif mode == "binary":
            self.send_bytes(text.encode("utf-8"))
        else:
            raise ValueError(f"Unsupported JSON mode {mode!r}. Use 'text' or 'binary'.")

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection from the client side with ``code``."""
        if self._client_closed:
            return
        self._client_closed = True
        self.send({"type": "websocket.disconnect", "code": code, "reason": reason or ""})

    def receive(self) -> Message:
        """Return the next raw ASGI message the application sent.

        Once the application closed the connection this returns its
        ``websocket.close`` message on every call. If the handler raised, the
        error is re-raised here (with ``raise_server_exceptions``) or reported
        as a close with code 1011.
        """
        if self._close_message is not None:
            return dict(self._close_message)
        item = self._portal.run(self._get)
        if isinstance(item, _Finished):
            self._finished = item
            self._raise_app_exception()
            # A server closes the socket when the handler ends: cleanly after a
            # normal return, with 1011 (internal error) after an exception.
            code, reason = (1000, "") if item.exc is None else (1011, "")
            if not self._accepted:
                # uvicorn answers such a handshake with HTTP 403 or 500; the
                # client sees an abnormal closure (1006).
                code, reason = 1006, "The application ended without accepting the connection."
            item_message: Message = {"type": "websocket.close", "code": code, "reason": reason}
            self._close_message = item_message
            return dict(item_message)
        if item["type"] == "websocket.close":
            self._close_message = item
        return item

    def _receive_data(self) -> Message:
        message = self.receive()
        if message["type"] == "websocket.close":
            raise WebSocketDisconnect(int(message.get("code", 1000)), message.get("reason") or None)
        if message["type"] != "websocket.send":
            raise RuntimeError(
                f"Expected a 'websocket.send' message from the application, got {message!r}."
            )
        return message

    def receive_text(self) -> str:
        """Return the next text message; raise ``WebSocketDisconnect`` if the app closed."""
        message = self._receive_data()
        text = message.get("text")
        if text is None:
            raise TypeError(
                f"Expected a text message from the application, got binary data "
                f"{message.get('bytes')!r}. Use receive_bytes() for binary messages."
            )
        return str(text)

    def receive_bytes(self) -> bytes:
        """Return the next binary message; raise ``WebSocketDisconnect`` if the app closed."""
        message = self._receive_data()
        data = message.get("bytes")
        if data is None:
            raise TypeError(
                f"Expected a binary message from the application, got text "
                f"{message.get('text')!r}. Use receive_text() for text messages."
            )
        return bytes(data)

    def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        """Return the next message decoded from JSON (text or binary mode)."""
        if mode == "text":
            return json.loads(self.receive_text())
        if mode == "binary":
            return json.loads(self.receive_bytes())
        raise ValueError(f"Unsupported JSON mode {mode!r}. Use 'text' or 'binary'.")


class TestClient(httpx.Client):
    """An ``httpx.Client`` that sends its requests straight to an ASGI app.

    Args:
        app: The ASGI application to test, for example a ``Covet`` instance.
        base_url: The URL requests are relative to; its host becomes the
            ``Host`` header and its scheme the ASGI ``scheme``.
        raise_server_exceptions: Re-raise exceptions escaping the app in the
            test (the default). When false, such a request returns the 500 a
            server would send.
        root_path: The ASGI ``root_path``, as if behind a proxy that strips
            this prefix; it is prepended to ``path`` as uvicorn does.
        cookies: Initial cookies; cookies set by responses persist.
        headers: Default headers for every request.
        follow_redirects: Follow redirects (the default) like a browser.
        client: The ``(host, port)`` reported as the ASGI ``client``.
    """

    __test__ = False  # Not a test class, although pytest sees the "Test" prefix.

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = True,
        root_path: str = "",
        cookies: httpx.Cookies | dict[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = True,
        client: tuple[str, int] = ("testclient", 50000),
    ) -> None:
        self.app = app
        self.app_state: dict[str, Any] = {}
        self._portal = _EventLoopThread()
        self._lifespan_task: asyncio.Task[None] | None = None
        self._lifespan_receive: asyncio.Queue[Message] = asyncio.Queue()
        self._lifespan_send: asyncio.Queue[Message | _Finished] = asyncio.Queue()
        self._transport_impl = _TestClientTransport(
            app,
            portal=self._portal,
            raise_server_exceptions=raise_server_exceptions,
            root_path=root_path,
            client=client,
            state=self.app_state,
        )
        default_headers = {"user-agent": "testclient"}
        default_headers.update(headers or {})
        super().__init__(
            base_url=base_url,
            headers=default_headers,
            cookies=cookies,
            follow_redirects=follow_redirects,
            transport=self._transport_impl,
        )
        # Stop the loop thread if the client is garbage-collected unclosed.
        weakref.finalize(self, self._portal.close)

    @property
    def raise_server_exceptions(self) -> bool:
        """Whether exceptions escaping the app are re-raised in the test."""
        return self._transport_impl.raise_server_exceptions

    @raise_server_exceptions.setter
    def raise_server_exceptions(self, value: bool) -> None:
        self._transport_impl.raise_server_exceptions = value

    @property
    def root_path(self) -> str:
        """The ASGI ``root_path`` sent with every request."""
        return self._transport_impl.root_path

    def websocket_connect(
        self,
        url: str,
        subprotocols: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> WebSocketTestSession:
        """Return a websocket session for ``url``; enter it with ``with`` to connect.

        Args:
            url: The path (or absolute URL) to connect to, resolved against
                ``base_url``; the client's cookies and default headers are sent.
            subprotocols: Subprotocols to offer, in order of preference.
            headers: Extra handshake headers.

        Returns:
            An unconnected session; ``with`` performs the handshake.
        """
        request = self.build_request("GET", url, headers=headers)
        request.headers.update(
            {
                "connection": "upgrade",
                "upgrade": "websocket",
                "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
                "sec-websocket-version": "13",
            }
        )
        if subprotocols:
            request.headers["sec-websocket-protocol"] = ", ".join(subprotocols)
        scope = _build_scope(
            "websocket",
            request,
            root_path=self.root_path,
            client=self._transport_impl.client,
            state=self.app_state,
        )
        scope["subprotocols"] = list(subprotocols or [])
        return WebSocketTestSession(
            self.app,
            scope,
            self._portal,
            raise_server_exceptions=self.raise_server_exceptions,
            owner=self,
        )

    # -- lifespan -----------------------------------------------------------------

    def __enter__(self) -> Self:
        super().__enter__()
        try:
            self._portal.run(self._lifespan_startup)
        except BaseException:
            super().__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        try:
            if self._lifespan_task is not None:
                self._portal.run(self._lifespan_shutdown)
        finally:
            super().__exit__(exc_type, exc_value, traceback)

    async def _lifespan_main(self) -> None:
        receive_queue, send_queue = self._lifespan_receive, self._lifespan_send
        received = False

        async def receive() -> Message:
            nonlocal received
            received = True
            return await receive_queue.get()

        async def send(message: Message) -> None:
            send_queue.put_nowait(dict(message))

        scope: Scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.app_state,
        }
        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - handed to the test thread, re-raised there
            send_queue.put_nowait(_Finished(exc, received))
        else:
            send_queue.put_nowait(_Finished(None, received))

    async def _lifespan_finished(self) -> _Finished:
        while True:
            item = await self._lifespan_send.get()
            if isinstance(item, _Finished):
                return item

    async def _lifespan_startup(self) -> None:
        self._lifespan_receive.put_nowait({"type": "lifespan.startup"})
        task = asyncio.create_task(self._lifespan_main())
        item = await self._lifespan_send.get()
        if isinstance(item, _Finished):
            # Like uvicorn's lifespan="auto": an app that returns, or raises
            # before reading the startup event, does not speak the protocol.
            if item.exc is not None and item.received:
                raise item.exc
            return
        kind = item.get("type")
        if kind == "lifespan.startup.complete":
            self._lifespan_task = task
            return
        if kind == "lifespan.startup.failed":
            finished = await self._lifespan_finished()
            if finished.exc is not None:
                raise finished.exc
            raise RuntimeError(f"The application failed to start: {item.get('message', '')}")
        task.cancel()
        raise RuntimeError(
            f"Unexpected ASGI message {kind!r} during lifespan startup. Send "
            "'lifespan.startup.complete' or 'lifespan.startup.failed'."
        )

    async def _lifespan_shutdown(self) -> None:
        self._lifespan_task = None
        self._lifespan_receive.put_nowait({"type": "lifespan.shutdown"})
        item = await self._lifespan_send.get()
        if isinstance(item, _Finished):
            if item.exc is not None:
                raise item.exc
            return
        finished = await self._lifespan_finished()
        if finished.exc is not None:
            raise finished.exc
        kind = item.get("type")
        if kind == "lifespan.shutdown.failed":
            raise RuntimeError(f"The application failed to shut down: {item.get('message', '')}")
        if kind != "lifespan.shutdown.complete":
            raise RuntimeError(
                f"Unexpected ASGI message {kind!r} during lifespan shutdown. Send "
                "'lifespan.shutdown.complete' or 'lifespan.shutdown.failed'."
            )
