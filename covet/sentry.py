"""Report unhandled errors to Sentry, with covet's request context (``covet-web[sentry]``).

>>> import sentry_sdk                                                  # doctest: +SKIP
>>> from covet.sentry import CovetIntegration                          # doctest: +SKIP
>>> sentry_sdk.init(dsn=..., integrations=[CovetIntegration(app)])    # doctest: +SKIP

:class:`CovetIntegration` wires sentry-sdk into a :class:`~covet.Covet` app:

* its ASGI integration, as :class:`SentryMiddleware`: each request and
  websocket runs in its own Sentry isolation scope (breadcrumbs of one request
  never reach another's event), continues incoming ``sentry-trace`` headers
  and, with ``traces_sample_rate``, records a transaction named after the
  route (its name, else its path template; never the raw path);
* an error reporter (:meth:`covet.Covet.add_error_reporter`) that sends one
  event per unhandled exception, captured inside the request's scope, with
  the transaction set to the route name, the user set to ``{"id": user pk}``,
  a ``request_id`` tag (the id of ``X-Request-ID`` and of the log records),
  and the request data of :class:`covet.errorreports.ErrorReport`: headers,
  query string, cookies and form with covet's secrets masked. Frame locals
  are masked by the same rule as on the debug page.

One event per error: the ASGI middleware does not capture exceptions itself
(covet's error layer reports them, including those it never re-raises, such
as failures of background tasks), and the ``covet.error`` log record of an
unhandled exception is not sent as a second event by sentry-sdk's logging
integration. What covet does not report (``HTTPException``, the 503 of a
database outage, a client that left) sends nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from covet._redact import (
    MASK,
    hide_secrets,
    masked_cookies,
    masked_headers,
    masked_query,
    masked_url,
    path_secrets,
    sensitive,
)
from covet.exceptions import ImproperlyConfigured, MissingDependencyError
from covet.middleware.errors import UNHANDLED_LOG_MESSAGE

try:
    import sentry_sdk
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise MissingDependencyError("sentry-sdk", extra="sentry") from exc
if not sentry_sdk.VERSION.startswith("2."):
    # sentry-sdk 3 renamed or removed what this module builds on (its tracing names, the
    # ASGI middleware's transaction_style, DedupeIntegration's reset).
    raise ImproperlyConfigured(
        f"covet.sentry works with sentry-sdk 2.x, and sentry-sdk {sentry_sdk.VERSION} is "
        "installed. Install a 2.x release: pip install 'sentry-sdk>=2,<3' (or "
        "'covet-web[sentry]', which asks for it)."
    )

try:
    from sentry_sdk.integrations import Integration
    from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
    from sentry_sdk.integrations.dedupe import DedupeIntegration
    from sentry_sdk.scope import add_global_event_processor, use_isolation_scope, use_scope
    from sentry_sdk.tracing import TransactionSource
    from sentry_sdk.utils import event_from_exception
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise MissingDependencyError("sentry-sdk", extra="sentry") from exc

if TYPE_CHECKING:
    from sentry_sdk._types import Event, Hint
    from sentry_sdk.tracing import Span

    from covet.app import Covet
    from covet.errorreports import ErrorReport
    from covet.types import ASGIApp, Receive, Scope, Send

__all__ = ("SCOPES_KEY", "CovetIntegration", "SentryMiddleware", "capture_error")

#: The ASGI scope key under which :class:`SentryMiddleware` leaves the request's
#: Sentry scopes (isolation, current) and transaction for the reporter, which runs
#: after the middleware returned: the event carries the request's breadcrumbs and trace.
SCOPES_KEY = "covet.sentry.scopes"

_MECHANISM = "covet"
# Sensitive path parameter values shorter than this are not searched for in texts.
_MIN_SECRET = 4
_ORIGIN = "auto.http.covet"
# Apps already wired: a second sentry_sdk.init() with a new CovetIntegration(app) adds nothing.
_wired: weakref.WeakSet[Covet] = weakref.WeakSet()


class CovetIntegration(Integration):
    """The sentry-sdk integration for covet apps: pass it to ``sentry_sdk.init()``.

    Creating it wires each app given (once per app): :class:`SentryMiddleware`
    is added as middleware and :func:`capture_error` as error reporter. Create
    it before adding your own middleware, so that the request's Sentry scope
    covers them too, and before the app starts serving.

    Args:
        *apps: The covet apps to report errors of (at least one).
        middleware: Add :class:`SentryMiddleware`. Without it a request costs
            nothing until it fails (sentry-sdk's middleware costs tens of
            microseconds per request even with tracing off), but there are no
            transactions, no trace continued from the caller, and events carry
            no breadcrumbs (they would mix those of concurrent requests).
        timeout: Seconds the reporter may take per error (see
            :meth:`covet.Covet.add_error_reporter`); capturing only queues the
            event, which sentry-sdk sends from a thread of its own.

    Raises:
        ImproperlyConfigured: Without an app, or for an app that already serves.
    """

    identifier = "covet"
    origin = _ORIGIN

    def __init__(self, *apps: Covet, middleware: bool = True, timeout: float | None = None) -> None:
        if not apps:
            raise ImproperlyConfigured(
                "CovetIntegration() needs the app to report errors of. Pass it: "
                "CovetIntegration(app)."
            )
        for app in apps:
            if app in _wired:
                continue
            if middleware:
                app.add_middleware(SentryMiddleware)
            app.add_error_reporter(capture_error, timeout=timeout)
            _wired.add(app)

    @staticmethod
    def setup_once() -> None:
        """Keep the ``covet.error`` record of an unhandled exception from becoming a 2nd event."""
        add_global_event_processor(_drop_logged_duplicate)


def _drop_logged_duplicate(event: Event, hint: Hint | None) -> Event | None:
    """Drop the logging integration's event for covet's "Unhandled ..." log record.

    :func:`capture_error` sends that exception as an event of its own, with the
    request context. The record is logged before the reporter runs, so the
    dedupe integration has already marked the exception as seen: the mark is
    cleared, or it would drop the reporter's event instead.
    """
    record = hint.get("log_record") if hint else None
    if (
        record is not None
        and record.name == "covet.error"
        and record.msg is UNHANDLED_LOG_MESSAGE
        and sentry_sdk.get_client().get_integration(CovetIntegration) is not None
    ):
        DedupeIntegration.reset_last_seen()
        return None
    return event


class SentryMiddleware(SentryAsgiMiddleware):
    """sentry-sdk's ASGI middleware, adapted to covet.

    It opens the request's isolation scope and transaction as usual, names the
    transaction after the matched route once the request is over, and leaves
    the capture of exceptions to covet's error reporter (:func:`capture_error`),
    which also sees the exceptions covet answers without re-raising them.

    Args:
        app: The ASGI app to wrap (the rest of the middleware stack).
    """

    __slots__ = ()

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(
            _RouteNamer(app),
            transaction_style="url",
            mechanism_type=_MECHANISM,
            span_origin=_ORIGIN,
        )

    def _capture_request_exception(self, exc: Exception) -> None:
        # sentry-sdk's hook for integrations that capture elsewhere: covet's
        # error layer reports every unhandled exception once, through capture_error().
        return None


class _RouteNamer:
    """The app inside :class:`SentryMiddleware`: keeps the scope, names the transaction."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        isolation = sentry_sdk.get_isolation_scope()
        # After the ASGI middleware's own processor: covet's masked request data wins.
        isolation.add_event_processor(partial(_mask_request, asgi_scope=scope))
        scope[SCOPES_KEY] = (
            isolation,
            sentry_sdk.get_current_scope(),
            sentry_sdk.get_current_span(),  # the request's transaction
        )
        try:
            await self.app(scope, receive, send)
        finally:
            named = _transaction_name(scope)
            if named is not None:
                sentry_sdk.get_current_scope().set_transaction_name(*named)


def _transaction_name(scope: Mapping[str, Any]) -> tuple[str, str] | None:
    """Return the route's name (else path template) and its transaction source, or None."""
    route = scope.get("route")
    if route is None:
        return None
    name = getattr(route, "name", None)
    if name:
        return str(name), TransactionSource.COMPONENT
    path = getattr(route, "path", None)
    return (str(path), TransactionSource.ROUTE) if path else None


async def capture_error(exc: BaseException, report: ErrorReport) -> None:
    """Send ``exc`` to Sentry as one event carrying ``report``'s request context.

    The error reporter :class:`CovetIntegration` registers; it does nothing
    while the Sentry client in use has no :class:`CovetIntegration`.

    Args:
        exc: The unhandled exception.
        report: Its request, secrets masked.
    """
    client = sentry_sdk.get_client()
    if client.get_integration(CovetIntegration) is None:
        return
    with _request_isolation(report.scope) as span, sentry_sdk.new_scope() as scope:
        # The request's transaction has ended and its scope went back to the span
        # before it: put it back, so the event joins the request's trace.
        scope.span = span
        named = _transaction_name(report.scope)
        if named is not None:
            scope.set_transaction_name(*named)
        if report.user_id is not None:
            scope.set_user({"id": report.user_id})
        scope.set_tag("request_id", report.request_id)
        scope.set_context(
            "covet",
            {"route_name": report.route_name, "response_started": report.response_started},
        )
        # Added to the innermost scope, so it runs after the ASGI middleware's
        # processor and its masked request data is what the event keeps.
        logged = UNHANDLED_LOG_MESSAGE % (type(exc).__name__, report.method, report.scope["path"])
        scope.add_event_processor(lambda event, hint: _apply_report(event, report, logged))
        event, hint = event_from_exception(
            exc,
            client_options=client.options,
            mechanism={"type": _MECHANISM, "handled": False},
        )
        sentry_sdk.capture_event(event, hint=hint)


@contextmanager
def _request_isolation(scope: Scope) -> Iterator[Span | None]:
    """Enter the request's Sentry scopes, else fresh ones: no breadcrumbs, a trace of its own.

    Yields:
        The request's transaction, or None.
    """
    scopes = scope.get(SCOPES_KEY)
    if isinstance(scopes, tuple) and len(scopes) == 3:
        isolation, current, span = scopes
        with use_isolation_scope(isolation), use_scope(current):
            yield span
        return
    # Without SentryMiddleware, or raised outside it (in middleware added before the
    # integration): no breadcrumbs rather than those of whatever ran before in this process.
    with sentry_sdk.isolation_scope() as fresh:
        fresh.clear_breadcrumbs()
        sentry_sdk.get_current_scope().set_new_propagation_context()
        yield None


def _mask_request(event: Event, hint: Hint, asgi_scope: Scope) -> Event:
    """Replace the request data of any event of this request by covet's masked one.

    sentry-sdk's own filter drops ``Authorization`` and ``Cookie`` but keeps the
    query string, other headers and the path as they are; transactions carry them too.
    """
    if "request" in event:
        _put_request(
            event,
            url=masked_url(asgi_scope),
            method=None,  # sentry-sdk's processor set it already
            headers=masked_headers(asgi_scope),
            query=masked_query(asgi_scope),
            cookies=masked_cookies(asgi_scope),
            form=None,
        )
    _mask_breadcrumbs(event, hide_secrets, None)
    return event


def _apply_report(event: Event, report: ErrorReport, logged: str) -> Event:
    """Put the masked request of ``report`` into ``event`` and mask its locals and messages.

    Beyond the request data: the exception's message, frame locals (already
    reprs, dicts and lists) and breadcrumb messages lose URL passwords,
    ``token=...`` pairs and the values of sensitive path parameters (a
    ``{token}`` of ``/reset/{token}`` shows up in ``scope["path"]`` of every
    frame). The breadcrumb of covet's own log record of this error
    (``logged``) is dropped: the event says the same.
    """
    _put_request(
        event,
        url=report.url,
        method=report.method if report.kind == "http" else None,
        headers=report.headers,
        query=report.query,
        cookies=report.cookies,
        form=report.form,
    )
    scrub = _scrubber(path_secrets(report.scope))
    for value in (event.get("exception") or {}).get("values") or ():
        if isinstance(value.get("value"), str):
            value["value"] = scrub(value["value"])
        for frame in (value.get("stacktrace") or {}).get("frames") or ():
            if "vars" in frame:
                frame["vars"] = _masked(frame["vars"], scrub)
    _mask_breadcrumbs(event, scrub, logged)
    return event


def _scrubber(secrets: tuple[str, ...]) -> Callable[[str], str]:
    """Return a function hiding ``secrets`` and what :func:`hide_secrets` hides in a text."""
    # Shorter values would mask unrelated text (every "7" of an event).
    secrets = tuple(secret for secret in secrets if len(secret) >= _MIN_SECRET)

    def scrub(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, MASK)
        return hide_secrets(text)

    return scrub


def _mask_breadcrumbs(event: Event, scrub: Callable[[str], str], logged: str | None) -> None:
    """Hide secrets in breadcrumb messages; drop the one of the ``logged`` message."""
    breadcrumbs = event.get("breadcrumbs")
    if not isinstance(breadcrumbs, dict) or not breadcrumbs.get("values"):
        return
    values = breadcrumbs["values"]
    kept = []
    for crumb in values:
        message = crumb.get("message")
        if logged is not None and message == logged and crumb.get("category") == "covet.error":
            continue
        if isinstance(message, str):
            crumb["message"] = scrub(message)
        kept.append(crumb)
    breadcrumbs["values"] = kept


def _put_request(
    event: Event,
    *,
    url: str,
    method: str | None,
    headers: Iterable[tuple[str, str]],
    query: Iterable[tuple[str, str]],
    cookies: Mapping[str, str],
    form: Iterable[tuple[str, str]] | None,
) -> None:
    request: dict[str, Any] = dict(event.get("request") or {})
    request["url"] = url
    if method is not None:
        request["method"] = method
    joined: dict[str, str] = {}
    for name, value in headers:
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    request["headers"] = joined
    request["query_string"] = urlencode(list(query), safe="*")
    request["cookies"] = dict(cookies)
    request.pop("data", None)
    if form is not None:
        data: dict[str, Any] = {}
        for name, value in form:
            previous = data.get(name)
            data[name] = value if previous is None else [*_as_list(previous), value]
        request["data"] = data
    event["request"] = request


def _masked(value: Any, scrub: Callable[[str], str]) -> Any:
    """Mask secrets in locals sentry-sdk has already turned into reprs, dicts and lists."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {
            key: MASK if sensitive(key) else _masked(item, scrub) for key, item in value.items()
        }
    if isinstance(value, list):
        if len(value) == 2 and isinstance(value[0], str) and sensitive(value[0]):
            return [value[0], MASK]  # a (name, value) pair: a raw header, a query item
        return [_masked(item, scrub) for item in value]
    return value


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
