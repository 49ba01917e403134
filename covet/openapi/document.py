"""Build the OpenAPI 3.1 document of an app from its routes and their signatures.

Everything comes from what routes already declare: the path pattern and its
converters, :attr:`covet.routing.Route.signature` (parameters, body, form,
dependencies, response model, status code), the route name (``operationId``),
the handler's docstring (``summary`` and ``description``), the route's tags,
and the installed middleware (security schemes). Nothing is declared twice.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Final

from covet.datastructures import UploadFile
from covet.openapi.schemas import SchemaRegistry, apply_constraints, convertor_schema
from covet.params.markers import MISSING, File, Param
from covet.routing import Mount, Route, Router

if TYPE_CHECKING:
    from covet.app import Covet
    from covet.openapi.config import OpenAPIConfig
    from covet.params.signature import Parameter, Signature

__all__ = ("VALIDATION_ERROR_SCHEMAS", "build_document", "iter_routes")

#: The 422 body, in FastAPI's shape (``HTTPValidationError``), which clients already parse.
VALIDATION_ERROR_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "ValidationError": {
        "title": "ValidationError",
        "type": "object",
        "properties": {
            "loc": {
                "title": "Location",
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "msg": {"title": "Message", "type": "string"},
            "type": {"title": "Error Type", "type": "string"},
            "input": {"title": "Input"},
            "ctx": {"title": "Context", "type": "object"},
        },
        "required": ["loc", "msg", "type"],
    },
    "HTTPValidationError": {
        "title": "HTTPValidationError",
        "type": "object",
        "properties": {
            "detail": {
                "title": "Detail",
                "type": "array",
                "items": {"$ref": "#/components/schemas/ValidationError"},
            }
        },
    },
}

_PLACEHOLDER: Final = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_NO_BODY_STATUSES: Final = frozenset({204, 205, 304})
#: Methods OpenAPI has a field for (HEAD is implied by GET; CONNECT has none).
_METHODS: Final = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "PATCH")

#: The attribute covet.auth's guards set on the handlers they wrap.
GUARD_ATTRIBUTE: Final = "__covet_guard__"


def iter_routes(routes: Sequence[Any], prefix: str = "") -> Iterator[tuple[str, Route]]:
    """Yield ``(full path, route)`` for every HTTP route, mounted covet routers included."""
    for route in routes:
        if isinstance(route, Route):
            yield prefix + route.path, route
        elif isinstance(route, Mount):
            inner = route.app
            inner_router = getattr(inner, "router", None)  # a mounted Covet app
            if isinstance(inner_router, Router):
                inner = inner_router
            if isinstance(inner, Router):
                yield from iter_routes(inner.routes, prefix + route.path)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _docstring(endpoint: Any) -> tuple[str | None, str | None]:
    """Return ``(summary, description)`` from the handler's docstring."""
    doc = inspect.getdoc(endpoint)
    if not doc:
        return None, None
    first, _, rest = doc.partition("\n\n")
    return " ".join(first.split()), rest.strip() or None


class _Builder:
    def __init__(self, app: Covet, config: OpenAPIConfig) -> None:
        self.app = app
        self.config = config
        self.registry = SchemaRegistry()
        self.operation_ids: set[str] = set()
        self.tags: dict[str, None] = {}
        self.schemes = _security_schemes(app)
        self.uses_validation_errors = False

    def document(self) -> dict[str, Any]:
        config = self.config
        info: dict[str, Any] = {"title": config.title, "version": config.version}
        for key, value in (
            ("summary", config.summary),
            ("description", config.description),
            ("termsOfService", config.terms_of_service),
            ("contact", config.contact),
            ("license", config.license),
        ):
            if value is not None:
                info[key] = dict(value) if isinstance(value, Mapping) else value
        paths: dict[str, dict[str, Any]] = {}
        for path, route in iter_routes(self.app.routes):
            if not route.include_in_schema:
                continue
            item = paths.setdefault(_PLACEHOLDER.sub(r"{\1}", path), {})
            methods = [m for m in _METHODS if m in route.methods]
            for method in methods:
                item[method.lower()] = self.operation(route, method, len(methods) > 1)
        document: dict[str, Any] = {"openapi": "3.1.0", "info": info}
        if config.servers:
            document["servers"] = [dict(server) for server in config.servers]
        document["paths"] = paths
        components: dict[str, Any] = {}
        schemas = dict(self.registry.components)
        if self.uses_validation_errors:
            schemas.update(VALIDATION_ERROR_SCHEMAS)
        if schemas:
            components["schemas"] = dict(sorted(schemas.items()))
        if self.schemes:
            components["securitySchemes"] = self.schemes
        if components:
            document["components"] = components
        tags = [dict(tag) for tag in config.tags]
        listed = {tag["name"] for tag in tags}
        tags.extend({"name": name} for name in self.tags if name not in listed)
        if tags:
            document["tags"] = tags
        return document

    def operation_id(self, route: Route, method: str, several: bool) -> str:
        base = f"{route.name}_{method.lower()}" if several else str(route.name)
        candidate, number = base, 1
        while candidate in self.operation_ids:
            number += 1
            candidate = f"{base}_{number}"
        self.operation_ids.add(candidate)
        return candidate

    def operation(self, route: Route, method: str, several: bool) -> dict[str, Any]:
        operation: dict[str, Any] = {}
        if route.tags:
            operation["tags"] = list(route.tags)
            self.tags.update(dict.fromkeys(route.tags))
        summary, description = _docstring(route.endpoint)
        if summary:
            operation["summary"] = summary
        if description:
            operation["description"] = description
        operation["operationId"] = self.operation_id(route, method, several)
        signature = route.signature
        parameters = self.parameters(route, signature)
        if parameters:
            operation["parameters"] = parameters
        body = self.request_body(signature) if method not in ("GET", "OPTIONS") else None
        if body is not None:
            operation["requestBody"] = body
        validated = not signature.plain and any(
            p.source in ("query", "header", "cookie", "body", "form")
            or (p.source == "path" and p.engine is not None)
            for p in signature.parameters()
        )
        operation["responses"] = self.responses(route, signature, validated, body is not None)
        guard = getattr(route.endpoint, GUARD_ATTRIBUTE, None)
        if guard is not None and self.schemes:
            operation["security"] = [{name: []} for name in self.schemes]
        return operation

    # ------------------------------------------------------------------ parameters

    def parameters(self, route: Route, signature: Signature) -> list[dict[str, Any]]:
        pattern = route._pattern
        convertors = dict(zip(pattern.param_names, pattern.convertors, strict=True))
        result: list[dict[str, Any]] = []
        declared: dict[str, Parameter] = {}
        for parameter in signature.parameters():
            if parameter.source == "path":
                declared[parameter.name] = parameter
        for name, convertor in convertors.items():
            schema = convertor_schema(convertor)
            entry: dict[str, Any] = {"name": name, "in": "path", "required": True}
            found = declared.get(name)
            if found is not None:
                schema = apply_constraints(schema, found.constraints)
                entry.update(_marker_fields(found.marker, schema))
            entry["schema"] = schema
            result.append(entry)
        for parameter in signature.parameters():
            if parameter.source not in ("query", "header", "cookie"):
                continue
            if isinstance(parameter.marker, Param) and not parameter.marker.include_in_schema:
                continue
            if parameter.whole:
                result.extend(self.model_parameters(parameter))
                continue
            schema = self.value_schema(parameter)
            entry = {"name": parameter.alias, "in": parameter.source}
            if parameter.required:
                entry["required"] = True
            entry.update(_marker_fields(parameter.marker, schema))
            entry["schema"] = schema
            result.append(entry)
        return result

    def value_schema(self, parameter: Parameter) -> dict[str, Any]:
        """Return the schema of one query/header/cookie/form value."""
        engine = parameter.engine is not None
        if parameter.engine is not None:
            schema = self.registry.schema(parameter.annotation, parameter.engine)
        elif parameter.sequence:
            schema = {"type": "array", "items": {"type": "string"}}
        else:
            schema = {"type": "string"}
        schema = apply_constraints(schema, parameter.constraints)
        default = parameter.default
        if default is not MISSING and _jsonable(default) and (default is not None or engine):
            schema = {**schema, "default": default}
        return schema

    def model_parameters(self, parameter: Parameter) -> list[dict[str, Any]]:
        """Spread a model bound from the query string (or headers, cookies) into parameters."""
        assert parameter.engine is not None  # noqa: S101 - models always have an engine
        schema = self.registry.resolve(self.registry.schema(parameter.annotation, parameter.engine))
        required = set(schema.get("required", ()))
        result = []
        for name, field in schema.get("properties", {}).items():
            entry: dict[str, Any] = {"name": name, "in": parameter.source}
            if name in required:
                entry["required"] = True
            entry["schema"] = field
            result.append(entry)
        return result

    # ------------------------------------------------------------------ bodies

    def request_body(self, signature: Signature) -> dict[str, Any] | None:
        bodies = [p for p in signature.parameters() if p.source == "body"]
        forms = [p for p in signature.parameters() if p.source == "form"]
        if bodies:
            if signature.embed_body:
                schema: dict[str, Any] = {
                    "type": "object",
                    "properties": {p.alias: self.body_schema(p) for p in bodies},
                }
                required = [p.alias for p in bodies if p.required]
                if required:
                    schema["required"] = required
                needed = bool(required)
            else:
                schema = self.body_schema(bodies[0])
                needed = bodies[0].required
            return {"required": needed, "content": {"application/json": {"schema": schema}}}
        if forms:
            return self.form_body(forms)
        return None

    def body_schema(self, parameter: Parameter) -> dict[str, Any]:
        assert parameter.engine is not None  # noqa: S101 - a body always has an engine
        schema = self.registry.schema(parameter.annotation, parameter.engine)
        schema = apply_constraints(schema, parameter.constraints)
        extra = _marker_fields(parameter.marker, schema)
        if "description" in extra:
            schema = {**schema, "description": extra["description"]}
        return schema

    def form_body(self, forms: list[Parameter]) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        files = False
        for parameter in forms:
            upload = parameter.engine is None and _is_file(parameter)
            if upload:
                files = True
                # OpenAPI 3.1 names binary content by media type (3.0's format: binary).
                binary = {"type": "string", "contentMediaType": "application/octet-stream"}
                schema = {"type": "array", "items": binary} if parameter.sequence else binary
            elif parameter.whole:
                assert parameter.engine is not None  # noqa: S101 - models have an engine
                model = self.registry.resolve(
                    self.registry.schema(parameter.annotation, parameter.engine)
                )
                wanted = model.get("required", ())
                for name, field in model.get("properties", {}).items():
                    properties[name] = _non_empty(field) if name in wanted else field
                required.extend(wanted)
                continue
            else:
                schema = self.value_schema(parameter)
            if parameter.required:
                schema = schema if upload else _non_empty(schema)
                required.append(parameter.alias)
            properties[parameter.alias] = schema
        schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = list(dict.fromkeys(required))
        media = "multipart/form-data" if files else "application/x-www-form-urlencoded"
        return {"required": bool(required), "content": {media: {"schema": schema}}}

    # ------------------------------------------------------------------ responses

    def responses(
        self, route: Route, signature: Signature, validated: bool, has_body: bool
    ) -> dict[str, Any]:
        status = signature.status_code or 200
        success: dict[str, Any] = {"description": "Successful Response"}
        if signature.response is not None and status not in _NO_BODY_STATUSES:
            schema = self.registry.schema(
                signature.response.annotation, signature.response.engine, "serialization"
            )
            success["content"] = {"application/json": {"schema": schema}}
        responses: dict[str, Any] = {str(status): success}
        if has_body:
            responses["400"] = {"description": "Malformed body"}
            responses["413"] = {"description": "Body larger than the route's limit"}
            responses["415"] = {"description": "Unsupported Content-Type"}
        if route._pattern.param_names:
            responses["404"] = {"description": "Not found"}
        if getattr(route.endpoint, GUARD_ATTRIBUTE, None) is not None:
            responses["401"] = {"description": "Authentication required"}
            if getattr(route.endpoint, GUARD_ATTRIBUTE) != "login":
                responses["403"] = {"description": "Permission denied"}
        if validated:
            self.uses_validation_errors = True
            responses["422"] = {
                "description": "Validation Error",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
                    }
                },
            }
        return dict(sorted(responses.items()))


def _non_empty(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a required form field's schema: covet reads an empty form value as absent."""
    if schema.get("type") == "string" and "format" not in schema and not schema.get("minLength"):
        return {**schema, "minLength": 1}
    return schema


def _is_file(parameter: Parameter) -> bool:
    """Return whether a form parameter is an uploaded file (``UploadFile``, or ``File()`` bytes)."""
    if isinstance(parameter.marker, File):
        return True
    annotation = parameter.annotation
    for _ in range(3):  # Annotated[...], X | None, list[X]
        if typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
        arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
        if arguments:
            annotation = arguments[0]
    return isinstance(annotation, type) and issubclass(annotation, UploadFile)


def _marker_fields(marker: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """Return a parameter object's documentation fields from its marker."""
    if not isinstance(marker, Param):
        return {}
    fields: dict[str, Any] = {}
    if marker.description:
        fields["description"] = marker.description
    if marker.deprecated:
        fields["deprecated"] = True
    if marker.examples:
        examples = [e for e in marker.examples if _jsonable(e)]
        if examples:
            fields["examples"] = {f"example{i}": {"value": e} for i, e in enumerate(examples, 1)}
    if marker.title:
        schema["title"] = marker.title
    return fields


def _security_schemes(app: Covet) -> dict[str, Any]:
    """Return the security schemes the installed middleware accepts.

    Detected, not declared: a ``SessionMiddleware`` means a session cookie,
    an ``AuthenticationMiddleware`` with bearer tokens means ``Authorization:
    Bearer``. The modules are looked up in :data:`sys.modules` (an app using
    them has imported them), so the web core never imports the batteries.
    """
    schemes: dict[str, Any] = {}
    sessions = sys.modules.get("covet.sessions.middleware")
    auth = sys.modules.get("covet.auth.middleware")
    for item in app._middleware:
        if sessions is not None and item.cls is getattr(sessions, "SessionMiddleware", None):
            name = item.kwargs.get("cookie_name") or "session"
            schemes["sessionCookie"] = {
                "type": "apiKey",
                "in": "cookie",
                "name": name,
                "description": "The session cookie set at login (named __Host-session on "
                "HTTPS unless cookie_name is set).",
            }
        if auth is not None and item.cls is getattr(auth, "AuthenticationMiddleware", None):
            bearer_class: type = auth.BearerTokenBackend
            backends: Any = item.kwargs.get("backends")
            bearer = (
                item.kwargs.get("token_model") is not None
                if backends is None
                else any(isinstance(b, bearer_class) for b in backends)
            )
            if bearer:
                schemes["bearerAuth"] = {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token: Authorization: Bearer <token>.",
                }
    return schemes


def build_document(app: Covet, config: OpenAPIConfig | None = None) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of ``app`` described by ``config`` (or ``OpenAPIConfig()``).

    Raises:
        covet.exceptions.MissingDependencyError: When a route's models need a
            validation library that is not installed.
    """
    from covet.openapi.config import OpenAPIConfig

    return _Builder(app, config or OpenAPIConfig()).document()
