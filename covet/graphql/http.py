"""Serve a strawberry schema over HTTP, following the GraphQL-over-HTTP specification.

::

    app.mount("/graphql", GraphQL(schema))          # serves /graphql/ (and its websocket)
    GraphQL(schema).add_to(app, "/graphql")         # or exact routes at /graphql

What the specification asks, and what this module does:

- Media types: responses are ``application/graphql-response+json`` or
  ``application/json``, whichever ranks first in ``Accept`` (no ``Accept``:
  the former, as the spec says from 2025 on); an ``Accept`` naming neither is
  ``406 Not Acceptable``.
- POST bodies must be ``application/json`` in UTF-8 (else ``415``); GET reads
  ``query``, ``operationName``, ``variables`` and ``extensions`` from the query
  string, and runs queries only: a mutation over GET is ``405`` with
  ``Allow: POST``, so a link or an image tag can never change data (and CSRF
  protection, which checks unsafe methods, always sees mutations).
- Status codes: a malformed request (bad JSON, missing ``query``, variables
  not an object) is ``400``. A document that does not parse or validate, an
  unknown operation, variables that do not coerce, or a request over a limit
  (:mod:`covet.graphql.limits`) is ``400`` with
  ``application/graphql-response+json`` and ``200`` with ``application/json``
  (legacy clients trust only 2xx bodies). An executed operation is ``200``,
  field errors and all.

Parsed and validated documents are cached by query text (validation is the
expensive part of a small query), bounded to ``document_cache_size`` entries.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSyntaxError,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values
from graphql.language import FragmentDefinitionNode, OperationDefinitionNode

from covet import _json
from covet.db.exceptions import ValidationError as ModelValidationError
from covet.exceptions import HTTPException, ImproperlyConfigured
from covet.graphql.context import GraphQLContext
from covet.graphql.graphiql import ASSET_PREFIX, asset_response, graphiql_page
from covet.graphql.limits import GraphQLLimits, check_limits
from covet.requests import Request
from covet.responses import Response

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import strawberry
    from graphql import GraphQLSchema

    from covet.requests import HTTPConnection
    from covet.types import Receive, Scope, Send

__all__ = ("GRAPHQL_RESPONSE_JSON", "GraphQL")

logger = logging.getLogger("covet.graphql")

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
_JSON = "application/json"
_SUPPORTED = (GRAPHQL_RESPONSE_JSON, _JSON)
# Exceptions whose message is meant for the client; others are masked outside debug.
_CLIENT_ERRORS = (GraphQLError, ValueError, PermissionError, ModelValidationError)
_INTERNAL_MESSAGE = "Internal server error."


class _RequestError(Exception):
    """A request the server refuses before execution: ``status`` when using graphql-response+json.

    ``legacy_ok`` marks the errors the spec answers with ``200`` under
    ``application/json`` (a well-formed request whose document fails).
    """

    def __init__(
        self,
        message: str,
        status: int = 400,
        *,
        errors: list[GraphQLError] | None = None,
        legacy_ok: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or [GraphQLError(message)]
        self.legacy_ok = legacy_ok
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class _Document:
    document: DocumentNode
    errors: list[GraphQLError]
    fragments: dict[str, FragmentDefinitionNode]


def _parse_accept(header: str | None) -> list[str]:
    """Return the media types of an ``Accept`` header, most preferred first (q=0 dropped)."""
    if header is None or not header.strip():
        return [GRAPHQL_RESPONSE_JSON]
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        parts = [part.strip() for part in item.split(";")]
        media = parts[0].lower()
        quality = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            ranked.append((-quality, position, media))
    return [media for _, _, media in sorted(ranked)]


def _choose_media_type(accepted: list[str]) -> str | None:
    for media in accepted:
        if media in _SUPPORTED:
            return media
        if media in ("*/*", "application/*"):
            return GRAPHQL_RESPONSE_JSON
    return None


class GraphQL:
    """An ASGI app (and route handlers) serving a strawberry schema on a covet app.

    Args:
        schema: The strawberry schema.
        graphiql: Serve GraphiQL to browsers (``GET`` asking for HTML, no
            query); default: when the app runs in debug.
        introspection: Allow ``__schema``/``__type``; default: in debug only.
        limits: Depth, cost, alias, batch and time bounds (:class:`GraphQLLimits`).
        allow_get: Run queries sent with ``GET`` (mutations never run over GET).
        batch: Accept a JSON list of operations in one POST (outside the spec).
        persisted_queries: SHA-256 hex digest -> query text. A request may send
            ``extensions: {"persistedQuery": {"version": 1, "sha256Hash": ...}}``
            instead of the text.
        persisted_queries_only: Refuse any query not in ``persisted_queries``
            (an allow-list: clients can only run the operations you shipped).
        context_getter: ``(request) -> context`` (sync or async); default
            :class:`GraphQLContext`. Return a GraphQLContext subclass to keep
            the batched loaders working.
        subscriptions: Accept graphql-transport-ws websockets on the same path.
        connection_init_timeout: Seconds a websocket may wait before ``connection_init``.
        document_cache_size: Parsed and validated documents kept.
    """

    def __init__(
        self,
        schema: strawberry.Schema,
        *,
        graphiql: bool | None = None,
        introspection: bool | None = None,
        limits: GraphQLLimits | None = None,
        allow_get: bool = True,
        batch: bool = False,
        persisted_queries: Mapping[str, str] | None = None,
        persisted_queries_only: bool = False,
        context_getter: Callable[[HTTPConnection], Any] | None = None,
        subscriptions: bool = True,
        connection_init_timeout: float = 10.0,
        document_cache_size: int = 512,
    ) -> None:
        graphql_schema = getattr(schema, "_schema", None)
        if graphql_schema is None:
            raise ImproperlyConfigured(
                f"GraphQL() takes a strawberry.Schema, got {schema!r}. "
                "Build one with strawberry.Schema(query=Query)."
            )
        if persisted_queries_only and not persisted_queries:
            raise ImproperlyConfigured(
                "GraphQL(persisted_queries_only=True) needs persisted_queries={sha256: query}."
            )
        self.schema = schema
        self.graphql_schema: GraphQLSchema = graphql_schema
        self.graphiql = graphiql
        self.introspection = introspection
        self.limits = limits or GraphQLLimits()
        self.allow_get = allow_get
        self.batch = batch
        self.persisted_queries = dict(persisted_queries or {})
        self.persisted_queries_only = persisted_queries_only
        self.context_getter = context_getter
        self.subscriptions = subscriptions
        self.connection_init_timeout = connection_init_timeout
        self._documents: OrderedDict[str, _Document] = OrderedDict()
        self._document_cache_size = document_cache_size
        for digest, query in self.persisted_queries.items():
            if hashlib.sha256(query.encode()).hexdigest() != digest:
                raise ImproperlyConfigured(
                    f"persisted_queries key {digest!r} is not the SHA-256 of its query. "
                    "Key each query by hashlib.sha256(query.encode()).hexdigest()."
                )

    # --- ASGI and routes -------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve HTTP (queries, mutations, GraphiQL assets) and websockets (subscriptions)."""
        if scope["type"] == "websocket":
            from covet.graphql.subscriptions import serve_websocket
            from covet.websockets import WebSocket

            await serve_websocket(self, WebSocket(scope, receive, send))
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        tail = scope["path"][len(scope.get("root_path", "")) :]
        if tail.startswith(ASSET_PREFIX):
            response = asset_response(tail[len(ASSET_PREFIX) :], self.graphiql_enabled(request))
        elif tail not in ("", "/"):
            response = Response("Not Found", status_code=404, media_type="text/plain")
        else:
            try:
                response = await self.handle_http(request)
            except HTTPException as exc:
                response = self._error_response(
                    _RequestError(str(exc.detail), exc.status_code, headers=exc.headers),
                    GRAPHQL_RESPONSE_JSON,
                )
        await response(scope, receive, send)

    def add_to(self, app: Any, path: str = "/graphql", *, name: str = "graphql") -> None:
        """Register this endpoint on ``app`` at exactly ``path`` (HTTP, websocket, GraphiQL assets).

        Args:
            app: A :class:`~covet.Covet` app or :class:`~covet.Router`.
            path: The endpoint's path.
            name: The route name (``url_path_for(name)``).
        """

        async def asset(request: Request, asset_name: str) -> Response:
            return asset_response(asset_name, self.graphiql_enabled(request))

        app.add_route(
            path, self.handle_http, methods=["GET", "POST"], name=name, include_in_schema=False
        )
        app.add_route(
            f"{path}{ASSET_PREFIX}{{asset_name}}",
            asset,
            methods=["GET"],
            name=f"{name}_asset",
            include_in_schema=False,
        )
        if self.subscriptions:
            from covet.graphql.subscriptions import serve_websocket

            async def websocket_endpoint(websocket: Any) -> None:
                await serve_websocket(self, websocket)

            app.add_websocket_route(path, websocket_endpoint, name=f"{name}_ws")

    def _debug(self, connection: HTTPConnection) -> bool:
        return bool(getattr(connection.scope.get("app"), "debug", False))

    def graphiql_enabled(self, connection: HTTPConnection) -> bool:
        """Return whether GraphiQL (page and assets) is served for this request."""
        return self.graphiql if self.graphiql is not None else self._debug(connection)

    def introspection_allowed(self, connection: HTTPConnection) -> bool:
        """Return whether ``__schema``/``__type`` may run for this request."""
        if self.introspection is not None:
            return self.introspection
        return self._debug(connection)

    async def make_context(self, connection: HTTPConnection) -> Any:
        """Return the resolver context for ``connection`` (``context_getter`` or GraphQLContext)."""
        if self.context_getter is None:
            return GraphQLContext(request=connection)
        context = self.context_getter(connection)
        if asyncio.iscoroutine(context):
            context = await context
        return context

    # --- HTTP ------------------------------------------------------------------------------

    async def handle_http(self, request: Request) -> Response:
        """Answer one GraphQL-over-HTTP request (a route handler: ``GET`` and ``POST``)."""
        method = request.method
        if method == "HEAD":
            # HEAD is GET without the body (RFC 9110 9.3.2): the same rules, the server drops it.
            method = "GET"
        if method not in ("GET", "POST"):
            return self._error_response(
                _RequestError(
                    f"Method {method} is not allowed: send GraphQL with GET (queries) or POST.",
                    405,
                    headers={"Allow": "GET, HEAD, POST"},
                ),
                GRAPHQL_RESPONSE_JSON,
            )
        accepted = _parse_accept(request.headers.get("accept"))
        if (
            method == "GET"
            and "query" not in request.query_params
            and self._wants_graphiql(request, accepted)
        ):
            return graphiql_page(request, subscriptions=self.subscriptions)
        media_type = _choose_media_type(accepted)
        if media_type is None:
            return self._error_response(
                _RequestError(
                    f"None of the media types in Accept ({request.headers.get('accept')!r}) "
                    f"can be served. Accept {GRAPHQL_RESPONSE_JSON} or {_JSON}.",
                    406,
                ),
                _JSON,
            )
        try:
            if method == "GET":
                if not self.allow_get:
                    raise _RequestError(
                        "GraphQL over GET is disabled on this server. Send a POST.",
                        405,
                        headers={"Allow": "POST"},
                    )
                params: Any = self._get_params(request)
            else:
                params = await self._post_params(request)
            if isinstance(params, list):
                results = [await self._run_in_batch(request, item, method) for item in params]
                return self._json_response(results, 200, media_type)
            result = await self.run(request, params, method=method)
        except _RequestError as exc:
            return self._error_response(exc, media_type)
        return self._json_response(self._format(result, request), 200, media_type)

    def _wants_graphiql(self, request: Request, accepted: list[str]) -> bool:
        if not self.graphiql_enabled(request) or "text/html" not in accepted:
            return False
        # A browser ranks HTML above JSON; a client asking for JSON first gets JSON.
        return accepted.index("text/html") < min(
            (accepted.index(m) for m in _SUPPORTED if m in accepted), default=len(accepted)
        )

    def _get_params(self, request: Request) -> dict[str, Any]:
        query_params = request.query_params
        params: dict[str, Any] = {}
        for key in ("query", "operationName"):
            values = query_params.getlist(key)
            if len(values) > 1:
                raise _RequestError(f"The {key!r} query parameter is given more than once.")
            if values:
                params[key] = values[0]
        for key in ("variables", "extensions"):
            raw = query_params.get(key)
            if raw is not None and raw != "":
                try:
                    params[key] = _json.loads(raw)
                except ValueError:
                    raise _RequestError(
                        f"The {key!r} query parameter is not valid JSON. Send a JSON object."
                    ) from None
        return params

    async def _post_params(self, request: Request) -> Any:
        content_type = request.headers.get("content-type")
        if content_type is None:
            raise _RequestError(
                f"A GraphQL POST needs Content-Type: {_JSON}.", 415, headers={"Accept-Post": _JSON}
            )
        media, *options = (part.strip() for part in content_type.split(";"))
        charset = next(
            (
                o.split("=", 1)[1].strip().strip('"').lower()
                for o in options
                if "=" in o and o.split("=", 1)[0].strip().lower() == "charset"
            ),
            "utf-8",
        )
        if media.lower() != _JSON or charset not in ("utf-8", "utf8"):
            raise _RequestError(
                f"Content-Type {content_type!r} is not supported. Send {_JSON} in UTF-8.",
                415,
                headers={"Accept-Post": _JSON},
            )
        body = await request.body()
        try:
            params = _json.loads(body)
        except ValueError:
            raise _RequestError(
                "The request body is not valid JSON. Send a JSON object with 'query'."
            ) from None
        if isinstance(params, list):
            if not self.batch:
                raise _RequestError(
                    "Batched operations (a JSON list) are not accepted. Send one JSON object, "
                    "or enable GraphQL(batch=True)."
                )
            if not params or len(params) > self.limits.max_batch_size:
                raise _RequestError(
                    f"A batch holds between 1 and {self.limits.max_batch_size} operations, "
                    f"got {len(params)}."
                )
        return params

    async def _run_in_batch(self, request: Request, params: Any, method: str) -> dict[str, Any]:
        try:
            return self._format(await self.run(request, params, method=method), request)
        except _RequestError as exc:
            return {"errors": [self._format_error(e, request) for e in exc.errors]}

    # --- the pipeline ----------------------------------------------------------------------

    def _query_of(self, params: Any) -> str:
        if not isinstance(params, dict):
            raise _RequestError("A GraphQL request is a JSON object with 'query'.")
        query = params.get("query")
        extensions = params.get("extensions")
        if extensions is not None and not isinstance(extensions, dict):
            raise _RequestError("'extensions' must be a JSON object.")
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is not None:
            digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
            if not isinstance(digest, str):
                raise _RequestError("'extensions.persistedQuery.sha256Hash' must be a string.")
            known = self.persisted_queries.get(digest)
            if known is None:
                raise _RequestError(
                    f"Persisted query {digest!r} is not known to this server.",
                    errors=[
                        GraphQLError(
                            "PersistedQueryNotFound",
                            extensions={"code": "PERSISTED_QUERY_NOT_FOUND"},
                        )
                    ],
                )
            if query is not None and query != known:
                raise _RequestError("'query' does not match the persisted query's hash.")
            return known
        if self.persisted_queries_only:
            raise _RequestError(
                "This server only runs persisted queries. Send "
                "extensions.persistedQuery.sha256Hash of a registered query.",
                errors=[
                    GraphQLError(
                        "PersistedQueryRequired", extensions={"code": "PERSISTED_QUERY_REQUIRED"}
                    )
                ],
            )
        if not isinstance(query, str):
            raise _RequestError("The request has no 'query' string. Send the GraphQL document.")
        return query

    def document(self, query: str) -> _Document:
        """Return ``query`` parsed and validated (cached); raise ``_RequestError`` when it fails."""
        cached = self._documents.get(query)
        if cached is not None:
            self._documents.move_to_end(query)
            return cached
        max_length = self.limits.max_query_length
        if max_length is not None and len(query) > max_length:
            raise _RequestError(
                f"The query is {len(query)} characters long, over the limit of {max_length}.",
                legacy_ok=True,
            )
        try:
            document = parse(query)
        except GraphQLSyntaxError as exc:
            raise _RequestError(exc.message, errors=[exc], legacy_ok=True) from None
        errors = validate(self.graphql_schema, document)
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        entry = _Document(document, errors, fragments)
        self._documents[query] = entry
        if len(self._documents) > self._document_cache_size:
            self._documents.popitem(last=False)
        return entry

    def prepare(
        self, params: Any, connection: HTTPConnection, *, method: str
    ) -> tuple[_Document, OperationDefinitionNode, dict[str, Any]]:
        """Check one request up to execution: the document, its operation, variables and limits.

        Raises:
            _RequestError: The request cannot run (with the status the spec gives).
        """
        query = self._query_of(params)
        operation_name = params.get("operationName")
        if operation_name is not None and not isinstance(operation_name, str):
            raise _RequestError("'operationName' must be a string or null.")
        variables = params.get("variables")
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            raise _RequestError("'variables' must be a JSON object (a map of names to values).")
        entry = self.document(query)
        if entry.errors:
            raise _RequestError("Validation failed.", errors=entry.errors, legacy_ok=True)
        operation = get_operation_ast(entry.document, operation_name)
        if operation is None:
            message = (
                f"Unknown operation named {operation_name!r}."
                if operation_name
                else "The document has several operations: pass 'operationName'."
            )
            raise _RequestError(message, legacy_ok=True)
        if method == "GET" and operation.operation is not OperationType.QUERY:
            raise _RequestError(
                f"A {operation.operation.value} cannot be sent with GET. Use POST.",
                405,
                headers={"Allow": "POST"},
            )
        if operation.operation is OperationType.SUBSCRIPTION and method != "WEBSOCKET":
            raise _RequestError(
                "Subscriptions are served over a websocket (graphql-transport-ws), not HTTP.",
                legacy_ok=True,
            )
        limit_errors = check_limits(
            self.graphql_schema,
            operation,
            entry.fragments,
            variables,
            self.limits,
            introspection=self.introspection_allowed(connection),
        )
        if limit_errors:
            raise _RequestError("Limits exceeded.", errors=limit_errors, legacy_ok=True)
        coerced = get_variable_values(
            self.graphql_schema, operation.variable_definitions or (), variables
        )
        if isinstance(coerced, list):
            raise _RequestError("Variables do not coerce.", errors=coerced, legacy_ok=True)
        return entry, operation, variables

    async def run(
        self, request: HTTPConnection, params: Any, *, method: str, context: Any = None
    ) -> ExecutionResult:
        """Run one query or mutation; raise ``_RequestError`` for requests that cannot run.

        Args:
            request: The request (or websocket) the operation came on.
            params: The GraphQL-over-HTTP parameters (``query``, ``variables``...).
            method: ``GET``, ``POST`` or ``WEBSOCKET`` (GET runs queries only).
            context: The resolver context; default: :meth:`make_context`.
        """
        entry, operation, variables = self.prepare(params, request, method=method)
        if context is None:
            context = await self.make_context(request)
        operation_name = operation.name.value if operation.name else None
        try:
            async with asyncio.timeout(self.limits.timeout):
                result = execute(
                    self.graphql_schema,
                    entry.document,
                    context_value=context,
                    variable_values=variables,
                    operation_name=operation_name,
                )
                if not isinstance(result, ExecutionResult):
                    result = await result
        except TimeoutError:
            return ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        f"The operation ran longer than {self.limits.timeout} s and was "
                        "cancelled. Ask for less, or raise GraphQLLimits(timeout=...).",
                        extensions={"code": "TIMEOUT"},
                    )
                ],
            )
        return result

    # --- responses -------------------------------------------------------------------------

    def _format_error(self, error: GraphQLError, connection: HTTPConnection) -> dict[str, Any]:
        original = error.original_error
        if original is not None and not isinstance(original, _CLIENT_ERRORS):
            logger.error(
                "GraphQL resolver error at %s",
                error.path,
                exc_info=(type(original), original, original.__traceback__),
            )
            if not self._debug(connection):
                masked = GraphQLError(
                    _INTERNAL_MESSAGE,
                    nodes=error.nodes,
                    path=error.path,
                    extensions={"code": "INTERNAL_SERVER_ERROR"},
                )
                return dict(masked.formatted)
        return dict(error.formatted)

    def _format(self, result: ExecutionResult, connection: HTTPConnection) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [self._format_error(e, connection) for e in result.errors]
        body["data"] = result.data
        if result.extensions:
            body["extensions"] = result.extensions
        return body

    def _json_response(self, body: Any, status: int, media_type: str) -> Response:
        return Response(
            _json.dumps(body),
            status_code=status,
            media_type=f"{media_type}; charset=utf-8",
            headers={"Vary": "Accept"},
        )

    def _error_response(self, exc: _RequestError, media_type: str) -> Response:
        status = exc.status
        if media_type == _JSON and exc.legacy_ok:
            status = 200
        body = {"errors": [dict(e.formatted) for e in exc.errors]}
        response = self._json_response(body, status, media_type)
        for key, value in exc.headers.items():
            response.headers[key] = value
        return response
