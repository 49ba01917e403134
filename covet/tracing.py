"""OpenTelemetry tracing: a span per request, with child spans for SQL statements and templates.

>>> app.add_observer(Tracing())                                       # doctest: +SKIP

:class:`Tracing` is a request observer (:meth:`covet.Covet.add_observer`). For
each HTTP request and websocket connection it starts a ``SERVER`` span that
joins the caller's trace (W3C ``traceparent``/``tracestate``, read by the
globally configured propagator) and is the current span while the request is
served, so spans started by your code, by HTTP client instrumentations and
by covet itself nest below it. Once routing has happened the span is named
``"<METHOD> <route name>"`` (``"GET item"``; never the raw path). Its attributes
follow OpenTelemetry's HTTP semantic conventions: ``http.request.method``,
``url.path``, ``url.scheme``, ``http.route`` (the path template),
``http.response.status_code``, ``server.address``/``server.port`` (from
``Host``), ``client.address``, ``user_agent.original``,
``network.protocol.version``, plus ``enduser.id`` (the authenticated user's
primary key) and ``covet.request_id``. A 5xx answer marks the span as an
error; an exception the app raised is recorded on it as an ``exception`` event.

While it exists it also makes, in this process:

* a ``CLIENT`` span per SQL statement (:func:`covet.db.querylog.observe_queries`),
  named ``"SELECT app_note"`` (operation and first table), with
  ``db.system.name``, ``db.namespace``, ``db.query.text`` (the SQL with its
  placeholders, never the parameters), ``db.operation.name``, and the server's
  address; transaction control (``BEGIN``, ``COMMIT``, savepoints) is left out;
* an ``INTERNAL`` span per template render (:func:`covet.templates.observe_renders`),
  named ``"render notes/list.html"``.

Spans go to the global ``TracerProvider``: configure the SDK and its exporters
the standard OpenTelemetry way (in code, or with ``opentelemetry-instrument``
and the ``OTEL_*`` variables). Needs ``pip install 'covet-web[otel]'``; nothing of
it is imported by ``import covet``, and an app without the observer pays nothing.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from typing import TYPE_CHECKING, cast

from covet import __version__
from covet.db.database import get_database
from covet.db.querylog import observe_queries
from covet.exceptions import ImproperlyConfigured, MissingDependencyError
from covet.middleware.errors import REPORT_EXTENSION
from covet.templates import observe_renders

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise MissingDependencyError("opentelemetry-api", extra="otel") from exc

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

    from covet._context import RequestContext
    from covet.db.database import Database
    from covet.db.querylog import CapturedQuery
    from covet.types import Scope

__all__ = ("Tracing",)

#: The methods OpenTelemetry's HTTP conventions name; any other is ``_OTHER``.
_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)
#: Where the observer keeps a request's span between its two calls.
_SCOPE_KEY = "covet.tracing"

# An identifier as SQL writes it: quoted ("x", `x`, [x]) or bare, optionally schema-qualified.
_NAME = r'(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[\w$]+)'
_TARGET = re.compile(
    rf"\b(FROM|INTO|UPDATE|TABLE|JOIN)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?({_NAME}(?:\.{_NAME})?)",
    re.IGNORECASE,
)
_OPERATION = re.compile(r"\s*(\w+)")


def _unquote(name: str) -> str:
    """Return a (possibly schema-qualified) identifier without its quotes."""
    return ".".join(part.strip('"`[]') for part in re.findall(_NAME, name))


@functools.lru_cache(maxsize=1024)
def _describe_statement(sql: str) -> tuple[str, str | None, bool]:
    """Return the operation and first table of ``sql``, and whether it names only that table.

    ``_describe_statement('SELECT "id" FROM "app_note" WHERE ...')`` is
    ``("SELECT", "app_note", True)``. The operation is the first word,
    upper-cased (``""`` for none). The tables are those named after ``FROM``,
    ``INTO``, ``UPDATE``, ``TABLE`` or ``JOIN`` outside parentheses (so
    ``EXTRACT(YEAR FROM ...)`` and subqueries are skipped), unquoted; the
    first is None when there is none (``SELECT 1``). OpenTelemetry's database
    conventions set ``db.collection.name`` only for a statement naming one
    table. Cached: an application runs a bounded set of statement shapes.
    """
    match = _OPERATION.match(sql)
    operation = match.group(1).upper() if match else ""
    tables = [
        found.group(2)
        for found in _TARGET.finditer(sql)
        if sql.count("(", 0, found.start()) == sql.count(")", 0, found.start())
    ]
    if not tables:
        return operation, None, False
    return operation, _unquote(tables[0]), len(tables) == 1


class _Served:
    """One request's span, the context token that made it current, and its error state."""

    __slots__ = ("previous", "reported", "span", "token")

    def __init__(
        self, span: Span, token: Token[Context], previous: Callable[[Exception], None] | None
    ) -> None:
        self.span = span
        self.token = token
        self.previous = previous
        self.reported = False

    def report(self, exc: Exception) -> None:
        """Record an exception the error layer answered with a 500 (``REPORT_EXTENSION``)."""
        self.reported = True
        _record_error(self.span, exc)
        if self.previous is not None:
            self.previous(exc)


def _error_type(exc: BaseException) -> str:
    """Return ``error.type`` for ``exc``: its fully qualified class name."""
    kind = type(exc)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _record_error(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_attribute("error.type", _error_type(exc))
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def _split_host(value: str) -> tuple[str, int | None]:
    """Split a ``Host`` header into the name and the port (``[::1]:8000`` included)."""
    host, colon, port = value.rpartition(":")
    if not colon or "]" in port:  # no port, or the colons of a bare IPv6 address
        return value.strip("[]"), None
    # isascii(): str.isdigit() also accepts digits such as "²", which int() refuses.
    return host.strip("[]"), int(port) if port.isascii() and port.isdigit() else None


class Tracing:
    """Trace each request, statement and template render with OpenTelemetry.

    Add it with :meth:`covet.Covet.add_observer`. From its creation it also
    traces the SQL statements and template renders of this process, as
    children of the current span (a request's, or one your code started;
    statements run outside any span start traces of their own). Create one
    per process; :meth:`close` stops the statement and render spans.

    Args:
        tracer_provider: Where spans go; the global provider by default
            (``opentelemetry.trace.set_tracer_provider()``, or what
            ``opentelemetry-instrument`` configured).
        queries: Make a span per SQL statement.
        templates: Make a span per template render.

    Raises:
        ImproperlyConfigured: When ``tracer_provider`` is not a tracer provider.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        queries: bool = True,
        templates: bool = True,
    ) -> None:
        if tracer_provider is not None and not callable(getattr(tracer_provider, "get_tracer", 0)):
            raise ImproperlyConfigured(
                f"Tracing got tracer_provider={tracer_provider!r}, which is not a tracer "
                "provider. Pass an opentelemetry.sdk.trace.TracerProvider, or None for the "
                "global one."
            )
        self.tracer: Tracer = trace.get_tracer("covet", __version__, tracer_provider)
        self._propagator: TextMapPropagator | None = None
        self._fields: frozenset[bytes] = frozenset()
        self._databases: dict[str, tuple[Database, str, dict[str, AttributeValue]]] = {}
        self._stops: list[Callable[[], None]] = []
        if queries:
            self._stops.append(observe_queries(self._query_finished))
        if templates:
            self._stops.append(observe_renders(self._render))

    def close(self) -> None:
        """Stop making statement and render spans (request spans go on while observed)."""
        while self._stops:
            self._stops.pop()()

    # -- RequestObserver -----------------------------------------------------------------------

    def request_started(self, context: RequestContext) -> None:
        """Start ``context``'s span, as a child of the caller's, and make it current."""
        scope = context.scope
        websocket = scope["type"] == "websocket"
        method = scope.get("method", "GET")
        attributes: dict[str, AttributeValue] = {
            "url.path": scope.get("path", ""),
            "url.scheme": scope.get("scheme", "ws" if websocket else "http"),
        }
        if method in _METHODS:
            attributes["http.request.method"] = method
            name = "WEBSOCKET" if websocket else method
        else:
            attributes["http.request.method"] = "_OTHER"
            attributes["http.request.method_original"] = method
            name = "HTTP"
        version = scope.get("http_version")
        if version:
            attributes["network.protocol.version"] = version
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        carrier = self._read_headers(scope, attributes)
        parent = otel_context.get_current()
        if carrier:
            assert self._propagator is not None  # noqa: S101 - set by _read_headers()
            parent = self._propagator.extract(carrier, context=parent)
        span = self.tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        # The error layer hands an exception it answered with a 500 to this hook, in
        # this task, before request_finished(): the one place the exception is seen.
        extensions = scope.get("extensions")
        if extensions is None:
            extensions = scope["extensions"] = {}
        previous = extensions.get(REPORT_EXTENSION)
        served = _Served(span, token, None if previous is None else previous["report"])
        extensions[REPORT_EXTENSION] = {"report": served.report}
        scope[_SCOPE_KEY] = served

    def _read_headers(
        self, scope: Scope, attributes: dict[str, AttributeValue]
    ) -> dict[str, list[str]]:
        """Put ``Host`` and ``User-Agent`` in ``attributes``; return the propagator's headers."""
        propagator = propagate.get_global_textmap()
        if propagator is not self._propagator:
            # Read once per propagator: a composite one builds its field set on each access.
            self._propagator = propagator
            self._fields = frozenset(field.lower().encode("latin-1") for field in propagator.fields)
        fields = self._fields
        carrier: dict[str, list[str]] = {}
        for name, value in scope.get("headers", ()):
            if name in fields:
                carrier.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
            elif name == b"host":
                host, port = _split_host(value.decode("latin-1"))
                attributes["server.address"] = host
                if port is not None:
                    attributes["server.port"] = port
            elif name == b"user-agent":
                attributes["user_agent.original"] = value.decode("latin-1")
        return carrier

    def request_finished(self, context: RequestContext) -> None:
        """Name ``context``'s span after its route, set the outcome, end it, restore the context."""
        served: _Served | None = context.scope.get(_SCOPE_KEY)
        if served is None:
            return
        span = served.span
        try:
            if span.is_recording():
                self._finish(span, served, context)
            span.end()
        finally:
            otel_context.detach(served.token)

    def _finish(self, span: Span, served: _Served, context: RequestContext) -> None:
        scope = context.scope
        attributes: dict[str, AttributeValue] = {"covet.request_id": context.request_id}
        route = scope.get("route")
        if route is not None:
            template = getattr(route, "path", None)
            if template:
                attributes["http.route"] = template
            route_name = context.route_name
            if route_name:
                span.update_name(f"{span.name} {route_name}")  # type: ignore[attr-defined]
        status = context.status
        if status:
            attributes["http.response.status_code"] = status
        user_id = context.user_id
        if user_id is not None:
            attributes["enduser.id"] = user_id
        span.set_attributes(attributes)
        if served.reported:
            return
        # Called in the finally clause of the app's call: an exception escaping the app
        # (a cancelled request, a KeyboardInterrupt) is the one being raised.
        escaping = sys.exception()
        if escaping is not None:
            _record_error(span, escaping)
        elif status >= 500:
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR))

    # -- statements and templates -------------------------------------------------------------

    def _query_finished(self, query: CapturedQuery) -> None:
        """Record ``query`` as a finished span (it is reported once it has run)."""
        if query.transaction:
            return
        end = time.time_ns()
        operation, table, single = _describe_statement(query.sql)
        attributes = dict(self._database_attributes(query.database))
        attributes["db.query.text"] = query.sql
        if query.many and len(query.params) > 1:
            # The conventions' spelling for one statement run for several parameter sets.
            operation = f"BATCH {operation}"
            attributes["db.operation.batch.size"] = len(query.params)
        if operation:
            attributes["db.operation.name"] = operation
        if single:
            attributes["db.collection.name"] = table
        # A join names no single collection; its span still names the first table.
        name = f"{operation} {table}" if table else operation or str(attributes["db.system.name"])
        span = self.tracer.start_span(
            name,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=end - int(query.duration * 1e9),
        )
        if query.failed:
            # Reported from the connection's finally clause: the exception is in flight.
            escaping = sys.exception()
            if escaping is not None:
                _record_error(span, escaping)
            else:
                span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)

    def _database_attributes(self, alias: str) -> dict[str, AttributeValue]:
        """Return the attributes every span of database ``alias`` carries (cached)."""
        try:
            database = get_database(alias)
        except ImproperlyConfigured:  # disconnected since the statement ran
            return {
                "db.system.name": "other_sql",
                "db.system": "other_sql",
                "covet.database": alias,
            }
        system = database.ops.telemetry_name
        cached = self._databases.get(alias)
        if cached is not None and cached[0] is database and cached[1] == system:
            return cached[2]
        url = database.url
        attributes: dict[str, AttributeValue] = {
            "db.system.name": system,
            # The name before the conventions' 1.26 rename, which most backends still read.
            "db.system": system,
            "db.namespace": url.database,
            "covet.database": alias,
        }
        if url.host:
            attributes["server.address"] = url.host
        if url.port:
            attributes["server.port"] = url.port
        self._databases[alias] = (database, system, attributes)
        return attributes

    def _render(self, name: str) -> AbstractContextManager[object]:
        """Return the span context manager around one render of template ``name``."""
        # Typed as an iterator by the API (its decorator is untyped); it is a context manager.
        return cast(
            "AbstractContextManager[object]",
            self.tracer.start_as_current_span(
                f"render {name}", attributes={"covet.template.name": name}
            ),
        )
