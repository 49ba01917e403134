"""Turn exceptions into responses: the two middleware every covet app wraps itself in.

:class:`ServerErrorMiddleware` is the outermost layer. It catches whatever
nothing else handled, logs it once on the ``covet.error`` logger with the
method and path, and answers ``500``: a traceback page in debug mode, an error
page (HTML, JSON or text, as the client prefers) otherwise. The exception is
*not* re-raised to the server: the 500 is a complete response, so the
connection stays usable (a server seeing the exception would log a second
traceback and drop a kept-alive connection). A server, or the test client,
that wants the exception registers a ``report(exc)`` callable in the scope
extension ``scope["extensions"]["covet.errors"]["report"]`` (see
:data:`REPORT_EXTENSION`).

:class:`ExceptionMiddleware` sits just outside the router. It dispatches
exceptions to the handlers registered with ``app.add_exception_handler()``:
by status code for :class:`~covet.exceptions.HTTPException`, then by class
along the exception's MRO.

:mod:`covet.app` imports this module directly; ``covet.middleware`` loads its
other middleware lazily, so ``import covet`` does not pay for them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from covet._utils import call_maybe_async, callable_name, to_response
from covet.errorpages import error_response
from covet.exceptions import (
    CovetError,
    HTTPException,
    ImproperlyConfigured,
    WebSocketDisconnect,
    WebSocketException,
)
from covet.requests import ClientDisconnect, Request
from covet.websockets import WebSocket

if TYPE_CHECKING:
    from collections.abc import Sequence

    from covet.errorreports import ErrorReporter
    from covet.responses import Response
    from covet.types import ASGIApp, Message, Receive, Scope, Send

__all__ = (
    "REPORT_EXTENSION",
    "REQUEST_ID_HEADER",
    "UNHANDLED_LOG_MESSAGE",
    "ExceptionHandler",
    "ExceptionMiddleware",
    "ServerErrorMiddleware",
    "TrackedSend",
    "check_exception_handler",
    "debug_response",
    "http_exception_handler",
    "status_of",
    "temporary_error_handler",
    "websocket_exception_handler",
)

#: ``handler(request_or_websocket, exc)``, sync or async, returning a response
#: (or anything a route handler may return); websocket handlers return None.
ExceptionHandler = Callable[[Any, Any], Any]

logger = logging.getLogger("covet.error")

#: The scope extension through which the error layer hands an exception it
#: dealt with to whoever serves the app: ``scope["extensions"][REPORT_EXTENSION]``
#: is ``{"report": report}``, and ``report(exc)`` is called once per unhandled
#: exception, after it was logged and answered. The test client installs it to
#: raise the exception in the test (``raise_server_exceptions``).
REPORT_EXTENSION = "covet.errors"

#: Scope key where :class:`~covet.middleware.RequestIDMiddleware` leaves its response
#: header as ``(name, value)``, so a 500 answered outside it carries the request id too.
REQUEST_ID_HEADER = "covet.request_id_header"

#: The format of the one ``covet.error`` record logged per unhandled exception
#: (type, method, path). Integrations that report the exception themselves
#: recognise the record by it (``record.msg is UNHANDLED_LOG_MESSAGE``).
UNHANDLED_LOG_MESSAGE = "Unhandled %s while serving %s %r"

# RFC 6455 section 5.5: a close frame's payload is at most 125 bytes, two of
# which carry the code, leaving 123 bytes of UTF-8 for the reason.
_MAX_CLOSE_REASON = 123


def _close_reason(text: str) -> str:
    encoded = text.encode("utf-8")[:_MAX_CLOSE_REASON]
    return encoded.decode("utf-8", errors="ignore")


async def http_exception_handler(request: Request, exc: HTTPException) -> Response:
    """Answer an :class:`HTTPException` with its status, detail and headers.

    The format follows the client's ``Accept`` header (see
    :func:`covet.errorpages.error_response`): an HTML error page for
    browsers (the project's ``errors/<status>.html`` template when the app
    has ``error_templates``), ``{"detail": ...}`` JSON for API clients, the
    detail as plain text otherwise. ``204`` and ``304`` get no body at all.

    Args:
        request: The request being served.
        exc: The exception raised.

    Returns:
        The error response.
    """
    return await error_response(request, exc.status_code, exc.detail, headers=exc.headers)


async def websocket_exception_handler(websocket: WebSocket, exc: Exception) -> None:
    """Close a websocket for a :class:`WebSocketException` or :class:`HTTPException`.

    ``WebSocketException`` closes with its own code and reason. An
    ``HTTPException`` (say a 403 from an auth check) closes with 1008
    (policy violation) and its detail as the reason; before the handshake
    was accepted, the server turns any close into an HTTP 403.

    Args:
        websocket: The connection.
        exc: The exception raised.
    """
    if isinstance(exc, WebSocketException):
        code, reason = exc.code, exc.reason
    else:
        code, reason = 1008, str(getattr(exc, "detail", ""))
    await websocket.send({"type": "websocket.close", "code": code, "reason": _close_reason(reason)})


def status_of(exc: BaseException) -> int | None:
    """Return the HTTP status a covet error declares for itself, or None.

    A :class:`~covet.exceptions.CovetError` subclass with an integer class
    attribute ``status_code`` (and optionally ``retry_after``, in seconds)
    asks the error layer to answer with that status rather than a 500, e.g.
    :class:`covet.db.DatabaseUnavailableError` (``503``). The attributes are
    read duck-typed, so the web core never imports the battery raising it.
    """
    if isinstance(exc, HTTPException) or not isinstance(exc, CovetError):
        return None
    status = getattr(type(exc), "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
        return status
    return None


async def temporary_error_handler(request: Request, exc: Exception) -> Response:
    """Answer a covet error that declares its HTTP status (see :func:`status_of`).

    The default for, e.g., :class:`covet.db.DatabaseUnavailableError`: the
    error page of :func:`covet.errorpages.error_response` with the declared
    status (``503``) and a ``Retry-After`` header from the exception's
    ``retry_after``. The condition is logged as one warning line on the
    ``covet.error`` logger, without a traceback: a database outage answered
    for every request must not flood the log. The exception's message is not
    sent to the client (it may name hosts and users).
    """
    status = status_of(exc) or 500
    method, path = _describe(request.scope)
    logger.warning(
        "%s while serving %s %r: %s; answered %d",
        type(exc).__name__,
        method,
        path,
        str(exc).replace("\r", " ").replace("\n", " "),
        status,
    )
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, (int, float)) and not isinstance(retry_after, bool):
        headers["Retry-After"] = str(max(0, math.ceil(retry_after)))
    return await error_response(request, status, headers=headers)


def check_exception_handler(key: object, handler: object) -> None:
    """Validate an exception handler registration.

    Args:
        key: An exception class, or an HTTP status code from 100 to 599.
        handler: The handler; it must be callable.

    Raises:
        ImproperlyConfigured: For an invalid key or a handler that is not callable.
    """
    if not callable(handler):
        raise ImproperlyConfigured(
            f"Exception handler {handler!r} for {key!r} is not callable. Pass a function "
            "handler(request, exc)."
        )
    if isinstance(key, int) and not isinstance(key, bool):
        if not 100 <= key <= 599:
            raise ImproperlyConfigured(
                f"Exception handler status code {key!r} is not an HTTP status. "
                "Use a code from 100 to 599."
            )
    elif not (isinstance(key, type) and issubclass(key, BaseException)):
        raise ImproperlyConfigured(
            f"Exception handler key {key!r} is neither an exception class nor a status "
            "code. Pass for example ValueError or 404."
        )


def _describe(scope: Scope) -> tuple[str, str]:
    method = scope.get("method", "WEBSOCKET") if scope["type"] != "websocket" else "WEBSOCKET"
    return str(method), str(scope.get("path", ""))


class TrackedSend:
    """An ASGI ``send`` that remembers whether the response started.

    For HTTP, "started" means the status line is out; for a websocket, that
    it was accepted. "closed" matters for websockets only.
    """

    __slots__ = ("closed", "send", "started")

    def __init__(self, send: Send, started: bool = False, closed: bool = False) -> None:
        self.send = send
        self.started = started
        self.closed = closed

    def __call__(self, message: Message) -> Awaitable[None]:
        """Note whether ``message`` starts (or closes) the response, and send it."""
        # A plain method returning send()'s awaitable: no coroutine of its own per message.
        if not self.started:
            message_type = message["type"]
            self.started = (
                message_type == "http.response.start" or message_type == "websocket.accept"
            )
        elif message["type"] == "websocket.close":
            self.closed = True
        return self.send(message)


class ExceptionMiddleware:
    """Dispatch exceptions raised below it to the registered handlers.

    Lookup order: for an :class:`HTTPException`, a handler registered for its
    status code; then a handler for the exception's class or the nearest
    base class. :class:`HTTPException` and :class:`WebSocketException` have
    default handlers. An exception without a handler propagates to
    :class:`ServerErrorMiddleware`.

    A client that disconnected while its request body was read
    (:class:`~covet.requests.ClientDisconnect`) and a websocket client that
    went away (:class:`~covet.exceptions.WebSocketDisconnect`) end the
    connection quietly: nobody is left to answer.

    Args:
        app: The ASGI app to wrap (the router).
        handlers: Handlers keyed by exception class or status code.
        debug: Whether the app runs in debug mode (kept for custom subclasses).

    Raises:
        ImproperlyConfigured: For a key that is neither an exception class
            nor an HTTP status code, or a handler that is not callable.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        handlers: Mapping[Any, ExceptionHandler] | None = None,
        debug: bool = False,
    ) -> None:
        self.app = app
        self.debug = debug
        self._status_handlers: dict[int, ExceptionHandler] = {}
        self._exception_handlers: dict[type[BaseException], ExceptionHandler] = {
            HTTPException: http_exception_handler,
            WebSocketException: websocket_exception_handler,
        }
        for key, handler in (handlers or {}).items():
            self.add_handler(key, handler)

    def add_handler(self, key: type[BaseException] | int, handler: ExceptionHandler) -> None:
        """Register ``handler`` for an exception class or an HTTP status code.

        Raises:
            ImproperlyConfigured: For an invalid key or handler.
        """
        check_exception_handler(key, handler)
        if isinstance(key, int):
            self._status_handlers[key] = handler
        else:
            self._exception_handlers[key] = handler

    def lookup(self, exc: BaseException) -> ExceptionHandler | None:
        """Return the handler for ``exc``, or None when it has none.

        An exception with an HTTP status (an :class:`HTTPException`, or a
        covet error declaring one, see :func:`status_of`) first looks for a
        handler registered for that status; then every exception looks for
        one registered for its class or the nearest base class. A covet error
        declaring a status that has no handler gets
        :func:`temporary_error_handler`.
        """
        status = exc.status_code if isinstance(exc, HTTPException) else status_of(exc)
        if status is not None:
            handler = self._status_handlers.get(status)
            if handler is not None:
                return handler
        for cls in type(exc).__mro__:
            handler = self._exception_handlers.get(cls)
            if handler is not None:
                return handler
        if status is not None and not isinstance(exc, HTTPException):
            return temporary_error_handler
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app and turn handled exceptions into responses."""
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            response_started = tracked.started and kind == "http"
            if not await self.handle(exc, scope, receive, send, response_started=response_started):
                raise

    async def failed(
        self,
        exc: Exception,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        started: bool,
        closed: bool = False,
    ) -> None:
        """Answer ``exc`` with its registered handler, or re-raise it.

        The router of an app with middleware hands its routes' exceptions to
        this (see :meth:`covet.Router.handle_errors`): what has a handler is
        answered there, below the middleware, as this middleware would; the
        rest goes up through the middleware to :class:`ServerErrorMiddleware`.

        Args:
            exc: The exception a route raised.
            scope: The connection scope.
            receive: The ASGI receive callable.
            send: The ASGI send callable.
            started: Whether the response started (HTTP) or the websocket was accepted.
            closed: Whether an accepted websocket was already closed (unused here).

        Raises:
            Exception: ``exc`` when it has no handler, or has one but the response
                already started; whatever the handler raises.
        """
        response_started = started and scope["type"] == "http"
        if not await self.handle(exc, scope, receive, send, response_started=response_started):
            raise exc

    async def handle(
        self,
        exc: Exception,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        response_started: bool,
    ) -> bool:
        """Answer ``exc`` with its registered handler.

        Args:
            exc: The exception raised by the wrapped app.
            scope: The connection scope.
            receive: The ASGI receive callable.
            send: The ASGI send callable for the handler's response.
            response_started: Whether ``http.response.start`` was already sent.

        Returns:
            True when the exception was dealt with (answered, or a client
            disconnect that needs no answer); False when it has no handler.

        Raises:
            Exception: ``exc`` itself when it has a handler but the response
                already started, and whatever the handler raises.
        """
        kind = scope["type"]
        if isinstance(exc, ClientDisconnect) or (
            isinstance(exc, WebSocketDisconnect) and kind == "websocket"
        ):
            return True
        handler = self.lookup(exc)
        if handler is None:
            return False
        if response_started:
            # Headers are out: a handler's response cannot be sent any more.
            raise exc
        if kind == "websocket":
            if handler is temporary_error_handler:
                # No status to send over a websocket: the 1011 close of ServerErrorMiddleware.
                return False
            if handler is http_exception_handler:
                # The default HTTP answer cannot travel over a websocket.
                handler = websocket_exception_handler
            await call_maybe_async(handler, WebSocket(scope, receive, send), exc)
            return True
        result = await call_maybe_async(handler, Request(scope, receive), exc)
        response = to_response(result, handler)
        await response(scope, receive, send)
        return True


class ServerErrorMiddleware:
    """Log unhandled exceptions and answer ``500 Internal Server Error``.

    In debug mode the response shows the traceback: an HTML page for
    browsers, JSON (``{"error", "detail", "traceback"}``) for clients sending
    ``Accept: application/json``; everything from the exception is
    HTML-escaped. Otherwise nothing about the failure reaches the client: the
    error page of :func:`covet.errorpages.error_response` (HTML for browsers,
    ``{"detail": "Internal Server Error"}`` for JSON clients, plain text
    otherwise), unless ``handler`` (a handler registered for ``500`` or
    ``Exception``) builds another response.

    The error is logged once on the ``covet.error`` logger with the method
    and path, handed to the app's error reporters (see
    :mod:`covet.errorreports`) and to the scope's :data:`REPORT_EXTENSION`
    hook if the server installed one; it is not re-raised, so the server neither logs it
    a second time nor drops the kept-alive connection after the complete 500.
    When the response had already started, no 500 can be sent: the middleware
    returns with the response incomplete, and the server closes the
    connection (the client sees a truncated response, not a wrong one). A
    websocket that was accepted is closed with code 1011; one that was not
    is refused by the server.

    Args:
        app: The ASGI app to wrap.
        debug: Show tracebacks to the client. Never enable it in production.
        handler: An optional ``handler(request, exc)`` for the 500 response,
            used outside debug mode.
        exceptions: An :class:`ExceptionMiddleware` whose handlers to apply
            first, in this same layer. The app passes it when there is no user
            middleware between the two, saving one wrapper per request; the
            behaviour is that of ``ServerErrorMiddleware(ExceptionMiddleware(app))``.
        reporters: ``(reporter, timeout)`` pairs called with each unhandled
            exception (``app.add_error_reporter()`` registers them).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        debug: bool = False,
        handler: ExceptionHandler | None = None,
        exceptions: ExceptionMiddleware | None = None,
        reporters: Sequence[tuple[ErrorReporter, float]] = (),
    ) -> None:
        self.app = app
        self.debug = debug
        self.handler = handler
        self.exceptions = exceptions
        self.reporters = tuple(reporters)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app, answering 500 for any exception that escapes it."""
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:  # noqa: BLE001 - failed() logs and answers it
            await self.failed(
                exc, scope, receive, send, started=tracked.started, closed=tracked.closed
            )

    async def failed(
        self,
        exc: Exception,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        started: bool,
        closed: bool = False,
    ) -> None:
        """Deal with ``exc``, which escaped the app while serving ``scope``.

        A client disconnect ends quietly and an exception with a registered
        handler gets that handler's response. Anything else is logged, answered
        with a 500 (or, once the response has started, a websocket close 1011
        or nothing), and reported to the app's error reporters and the
        :data:`REPORT_EXTENSION` hook; it is not re-raised. An app without
        middleware has its router call this directly (see
        :meth:`covet.Router.handle_errors`), so that no wrapper of this layer
        runs per request.

        Args:
            exc: The exception.
            scope: The connection scope.
            receive: The ASGI receive callable.
            send: The server's ASGI send callable.
            started: Whether the response started (HTTP) or the websocket was accepted.
            closed: Whether an accepted websocket was already closed.
        """
        if isinstance(exc, ClientDisconnect):
            # The client left mid-body (seen by middleware outside the
            # exception middleware): there is nobody to answer and no bug.
            return
        kind = scope["type"]
        reported = exc
        if self.exceptions is not None:
            # Tracked like the app's own send: no 500 once a handler's response started.
            handler_send = TrackedSend(send, started, closed)
            try:
                if await self.exceptions.handle(
                    exc,
                    scope,
                    receive,
                    handler_send,
                    response_started=started and kind == "http",
                ):
                    return
            except Exception as handler_exc:  # noqa: BLE001 - reported as the 500 below
                reported = handler_exc
                started, closed = handler_send.started, handler_send.closed
        method, path = _describe(scope)
        # %r keeps CR/LF from a decoded path out of the log (log injection).
        # This is the one place the error is logged: it is not re-raised, so the
        # server does not log it again.
        logger.error(
            UNHANDLED_LOG_MESSAGE,
            type(reported).__name__,
            method,
            path,
            exc_info=reported,
        )
        try:
            if kind == "websocket":
                if started and not closed:
                    await send({"type": "websocket.close", "code": 1011, "reason": ""})
            elif not started:
                response = await self._error_response(scope, receive, reported)
                request_id_header = scope.get(REQUEST_ID_HEADER)
                if request_id_header is not None and request_id_header[0] not in response.headers:
                    # RequestIDMiddleware sits inside this layer, so its header would miss
                    # the 500: the id the report and the logs carry is what support asks for.
                    response.headers[request_id_header[0]] = request_id_header[1]
                await response(scope, receive, send)
        except Exception as send_exc:
            # The 500 could not be sent in full (a custom 500 response that
            # fails, a send to a broken connection): returning with the
            # response incomplete makes the server close the connection.
            logger.error("The error response for %s %r failed too", method, path, exc_info=send_exc)
        if self.reporters:
            # Imported with the first error to report: apps without reporters never load it.
            from covet.errorreports import report_error

            await report_error(self.reporters, scope, reported, response_started=started)
        _report(scope, reported)

    async def _error_response(self, scope: Scope, receive: Receive, exc: Exception) -> Response:
        if self.debug:
            return debug_response(scope, exc)
        request = Request(scope, receive)
        if self.handler is not None:
            try:
                result = await call_maybe_async(self.handler, request, exc)
                return to_response(result, self.handler)
            except Exception as handler_exc:
                logger.error(
                    "The 500 handler %r failed too",
                    callable_name(self.handler),
                    exc_info=handler_exc,
                )
        return await error_response(request, 500)


def _report(scope: Scope, exc: Exception) -> None:
    """Hand ``exc`` to the server's :data:`REPORT_EXTENSION` hook, if it installed one."""
    extensions = scope.get("extensions")
    if extensions:
        hook = extensions.get(REPORT_EXTENSION)
        if hook is not None:
            hook["report"](exc)


def debug_response(scope: Scope, exc: BaseException) -> Response:
    """Build the debug-mode 500 response showing ``exc``, the request and the SQL it ran.

    Args:
        scope: The request scope (its ``Accept`` header picks JSON or HTML).
        exc: The exception to show.

    Returns:
        A 500 :class:`HTMLResponse` or :class:`JSONResponse` (see :mod:`covet._debug`).
    """
    from covet._debug import debug_page  # imported late: only debug mode needs it

    return debug_page(scope, exc)
