"""Error reporting: each unhandled exception, with its request, handed to your reporters.

Register a reporter on the app; it is called once per unhandled exception,
after the exception was logged and the error response sent::

    async def report(exc: BaseException, report: ErrorReport) -> None:
        await alerts.send(f"{report.method} {report.route_name}: {exc!r}", report.as_dict())

    app.add_error_reporter(report)

"Unhandled" means what covet logs as such on the ``covet.error`` logger and
answers with a 500 (or a websocket close 1011): an exception no handler
dealt with, raised by a handler, a middleware, a streaming body or a
background task, on the app's direct path, under middleware and in debug
mode alike. An :class:`~covet.exceptions.HTTPException` (a 404, a 403...), an
exception with a handler of yours, a covet error answered with its own
status (the ``503`` of :class:`covet.db.DatabaseUnavailableError`) and a
client that went away are not errors of the app and are not reported.

The :class:`ErrorReport` describes the request with its secrets masked by the
rule of the debug page (:mod:`covet._redact`): sensitive headers, query
parameters, form fields and path parameters show ``********``, cookies only
their names. The raw ASGI scope is there too, for integrations (it is not
masked: never send it anywhere as it is).

A reporter may be sync (run in a worker thread) or async. Each runs under a
time limit (``timeout=``, 5 seconds by default; several reporters run
concurrently), and one that raises or runs out of time is logged on
``covet.error`` and forgotten: the error response has been sent already, and
a broken reporter never breaks the app. The sentry-sdk integration,
:mod:`covet.sentry`, is one such reporter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from covet._context import RequestContext
from covet._redact import (
    masked_cookies,
    masked_form,
    masked_headers,
    masked_path,
    masked_path_params,
    masked_query,
    masked_url,
    parsed_form,
)
from covet._utils import call_maybe_async, callable_name

if TYPE_CHECKING:
    from covet.types import Scope

__all__ = ("DEFAULT_TIMEOUT", "ErrorReport", "ErrorReporter", "report_error")

#: ``reporter(exc, report)``: a plain function (run in a worker thread) or an
#: ``async def`` (awaited); what it returns is ignored.
ErrorReporter = Callable[[BaseException, "ErrorReport"], Awaitable[None] | None]

#: Seconds a reporter may take before it is cancelled (and the overrun logged).
DEFAULT_TIMEOUT = 5.0

logger = logging.getLogger("covet.error")


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorReport:
    """The request an unhandled exception interrupted, secrets masked.

    Attributes:
        kind: ``"http"`` or ``"websocket"``.
        method: The HTTP method, ``"WEBSOCKET"`` for a websocket.
        url: Scheme, host and :attr:`path`, without the query string.
        path: The request path, with the values of sensitive path parameters
            (``/reset/{token}``) masked.
        route_name: The matched route's name (else its path template), or
            None when the request matched no route.
        request_id: The request id: the one ``RequestIDMiddleware`` sent back
            in ``X-Request-ID`` and log records carry, else one made for this report.
        user_id: The primary key of the authenticated ``request.user``, or None.
        client: The client address, or None when the server does not know it.
        headers: ``(name, value)`` pairs, sensitive values masked.
        query: Query parameters as ``(name, value)`` pairs, sensitive values masked.
        path_params: Matched path parameters as ``(name, repr)`` pairs, sensitive ones masked.
        cookies: Cookie names, each mapped to ``"********"``.
        form: The form fields as ``(name, value)`` pairs when the handler had
            parsed the form (the body is never read for a report), else None.
        response_started: True when the response (or, for a websocket, the
            connection) had started before the failure: the client got a
            truncated response or a close 1011 rather than a 500. Exceptions of
            background tasks, which run after the response, have it True.
        scope: The raw ASGI scope, unmasked, for integrations.
    """

    kind: Literal["http", "websocket"]
    method: str
    url: str
    path: str
    route_name: str | None
    request_id: str
    user_id: str | None
    client: str | None
    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]
    path_params: tuple[tuple[str, str], ...]
    cookies: Mapping[str, str]
    form: tuple[tuple[str, str], ...] | None
    response_started: bool
    scope: Scope = field(repr=False, compare=False)

    @classmethod
    def from_scope(
        cls, scope: Scope, exc: BaseException, *, response_started: bool = False
    ) -> ErrorReport:
        """Describe the request of ``scope``, which ``exc`` interrupted.

        Args:
            scope: The ASGI ``http`` or ``websocket`` scope.
            exc: The exception; its traceback is searched for a form the
                handler parsed.
            response_started: Whether the response had started before the failure.

        Returns:
            The report.
        """
        context = scope.get("covet.context")
        if not isinstance(context, RequestContext):
            # Not observed (no access log or observer): a context of its own, which
            # takes RequestIDMiddleware's id when there is one.
            context = RequestContext(scope)
        websocket = scope.get("type") == "websocket"
        form = parsed_form(scope, exc)
        return cls(
            kind="websocket" if websocket else "http",
            method="WEBSOCKET" if websocket else str(scope.get("method", "")),
            url=masked_url(scope),
            path=masked_path(scope),
            route_name=context.route_name,
            request_id=context.request_id,
            user_id=context.user_id,
            client=context.client,
            headers=tuple(masked_headers(scope)),
            query=tuple(masked_query(scope)),
            path_params=tuple(masked_path_params(scope)),
            cookies=masked_cookies(scope),
            form=None if form is None else tuple(masked_form(form)),
            response_started=response_started,
            scope=scope,
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (everything but the raw scope).

        Pairs become lists of ``[name, value]`` lists, so repeated names survive.
        """
        return {
            "kind": self.kind,
            "method": self.method,
            "url": self.url,
            "path": self.path,
            "route_name": self.route_name,
            "request_id": self.request_id,
            "user_id": self.user_id,
            "client": self.client,
            "headers": [list(pair) for pair in self.headers],
            "query": [list(pair) for pair in self.query],
            "path_params": [list(pair) for pair in self.path_params],
            "cookies": dict(self.cookies),
            "form": None if self.form is None else [list(pair) for pair in self.form],
            "response_started": self.response_started,
        }


async def report_error(
    reporters: Sequence[tuple[ErrorReporter, float]],
    scope: Scope,
    exc: BaseException,
    *,
    response_started: bool,
) -> None:
    """Hand ``exc`` and its :class:`ErrorReport` to each reporter; never raise.

    The error layer (:class:`~covet.middleware.errors.ServerErrorMiddleware`)
    calls this once per unhandled exception, after logging and answering it.

    Args:
        reporters: ``(reporter, timeout)`` pairs, as ``app.add_error_reporter()`` keeps them.
        scope: The scope of the failed request.
        exc: The unhandled exception.
        response_started: Whether the response had started before the failure.
    """
    try:
        report = ErrorReport.from_scope(scope, exc, response_started=response_started)
    except Exception as build_exc:  # reporting must not break the app
        logger.error(
            "Could not describe the request for the error reporters of %s",
            type(exc).__name__,
            exc_info=build_exc,
        )
        return
    if len(reporters) == 1:
        reporter, seconds = reporters[0]
        await _call(reporter, seconds, exc, report)
    else:
        # Concurrently: a slow reporter delays the others by nothing.
        await asyncio.gather(*(_call(r, seconds, exc, report) for r, seconds in reporters))


async def _call(
    reporter: ErrorReporter, seconds: float, exc: BaseException, report: ErrorReport
) -> None:
    limit = asyncio.timeout(seconds)
    try:
        async with limit:
            await call_maybe_async(reporter, exc, report)
    except Exception as reporter_exc:  # logged; the app goes on
        name = callable_name(reporter)
        if limit.expired():
            # A sync reporter's thread cannot be stopped; it is only no longer waited for.
            logger.error(
                "Error reporter %s took longer than %g s to report %s and was cancelled. "
                "Make it faster, or pass a larger timeout= to add_error_reporter().",
                name,
                seconds,
                type(exc).__name__,
            )
        else:
            logger.error(
                "Error reporter %s failed while reporting %s. Fix the reporter: it must not raise.",
                name,
                type(exc).__name__,
                exc_info=reporter_exc,
            )
