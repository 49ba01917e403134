"""Call a typed handler: read and validate its parameters, run its dependencies, render the result.

:class:`Invoker` is compiled once per route from its
:class:`~covet.params.signature.Signature`; per request it only looks values
up and calls the validators built at registration. Every parameter is checked
before a 422 is raised, so the client sees all its errors at once. The body is
read under the route's :class:`~covet.requests.RequestLimits` before anything
parses it (a body past the limit is a 413, never parsed).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from covet._json import loads
from covet._utils import callable_name, to_response
from covet.background import BackgroundTasks
from covet.datastructures import UploadFile
from covet.exceptions import HTTPException, ImproperlyConfigured, MissingDependencyError
from covet.params.engines import Engine, encode_model, get_engine
from covet.params.errors import (
    ErrorList,
    RequestValidationError,
    ResponseValidationError,
    ValidationFailed,
)
from covet.params.markers import MISSING, File
from covet.params.signature import Dependant, Parameter, Signature, _strip_optional
from covet.requests import check_json_items
from covet.responses import Response

if TYPE_CHECKING:
    from collections.abc import Callable

    from covet.requests import Request
    from covet.types import Receive, Scope, Send

__all__ = ("Invoker",)

_BOM = b"\xef\xbb\xbf"
#: A parameter whose value is invalid or missing: left out of the call, which never happens.
_INVALID: Any = object()
_JSON_TYPES = ("application/json",)
_JSON_INVALID = {"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error", "input": {}}


class _JSONBytes(Response):
    """Already-encoded JSON (from the validation library's own encoder)."""

    media_type = "application/json"


class _Context:
    """What one request's resolution shares: errors, the dependency cache, cleanups."""

    __slots__ = ("background", "body", "cache", "errors", "exits", "form", "params", "request")

    def __init__(self, request: Request, params: dict[str, Any]) -> None:
        self.request = request
        self.params = params
        self.errors: ErrorList = []
        self.cache: dict[Any, Any] = {}
        self.exits: list[Any] = []
        self.background: BackgroundTasks | None = None
        self.body: Any = MISSING  # the decoded JSON object, for embedded body members
        self.form: Any = None

    def fail(self, loc: tuple[Any, ...], errors: ErrorList) -> Any:
        for error in errors:
            error["loc"] = [*loc, *error["loc"]]
            self.errors.append(error)
        return _INVALID

    def missing(self, parameter: Parameter, loc: tuple[Any, ...]) -> Any:
        if parameter.default_factory is not None:
            return parameter.default_factory()
        if parameter.default is not MISSING:
            return parameter.default
        self.errors.append(
            {"type": "missing", "loc": list(loc), "msg": "Field required", "input": None}
        )
        return _INVALID


def _content_type(request: Request) -> str | None:
    for name, value in request.scope["headers"]:
        if name == b"content-type":
            media_type: str = value.decode("latin-1").partition(";")[0].strip().lower()
            return media_type
    return None


def _json_error(body: bytes) -> dict[str, Any] | None:
    """Describe malformed JSON as FastAPI does (``loc``: ``["body", position]``), else None."""
    try:
        loads(body)
    except RecursionError:
        return dict(_JSON_INVALID)
    except ValueError as exc:
        return {
            "type": "json_invalid",
            "loc": ["body", getattr(exc, "pos", 0)],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": str(getattr(exc, "msg", exc))},
        }
    return None


async def _read_json_body(request: Request) -> bytes:
    content_type = _content_type(request)
    if content_type is not None and not (
        content_type in _JSON_TYPES or content_type.endswith("+json")
    ):
        raise HTTPException(
            415,
            f"This endpoint reads a JSON body, not Content-Type {content_type!r}. "
            "Send application/json.",
        )
    limits = request.limits
    # The body read of request.json(), without decoding it: the engine parses and
    # validates in one pass. Past max_json_size this is a 413 before any parsing.
    body = await request._read(limits.max_json_size, "max_json_size")
    check_json_items(body, limits.max_json_items)
    return body[3:] if body.startswith(_BOM) else body


class _Step:
    """Resolve one parameter; ``resolve(ctx)`` returns its value or ``_INVALID``."""

    __slots__ = ("is_async", "name", "resolve")

    def __init__(self, name: str, resolve: Callable[[_Context], Any], is_async: bool) -> None:
        self.name = name
        self.resolve = resolve
        self.is_async = is_async


def _validator(parameter: Parameter, *, text: bool) -> Any:
    if parameter.engine is None:
        return None
    engine = get_engine(parameter.engine)
    return engine.validator(parameter.annotation, parameter.constraints, text=text)


def _engine(parameter: Parameter) -> Engine:
    assert parameter.engine is not None  # noqa: S101 - whole models always have one
    return get_engine(parameter.engine)


def _mapping_step(parameter: Parameter) -> Callable[[_Context], Any]:
    """A query, header or cookie value (or a model bound from all of them)."""
    source, alias, sequence = parameter.source, parameter.alias, parameter.sequence
    loc = (source, alias)
    validator = _validator(parameter, text=True)

    def lookup(ctx: _Context) -> Any:
        request = ctx.request
        if source == "query":
            return request.query_params
        if source == "header":
            return request.headers
        return request.cookies

    if parameter.whole:
        shapes = _engine(parameter).fields(parameter.annotation)
        header = source == "header"

        def resolve_model(ctx: _Context) -> Any:
            values = lookup(ctx)
            data: dict[str, Any] = {}
            for shape in shapes:
                key = shape.name.replace("_", "-").lower() if header else shape.name
                if shape.sequence and hasattr(values, "getlist"):
                    found = values.getlist(key)
                    if found:
                        data[shape.name] = found
                elif (value := values.get(key)) is not None:
                    data[shape.name] = value
            if not header:  # the model's extra-field policy sees every key sent
                for key in values:
                    data.setdefault(key, values[key])
            try:
                return validator.python(data)
            except ValidationFailed as failed:
                return ctx.fail((source,), failed.errors)

        return resolve_model

    def resolve(ctx: _Context) -> Any:
        values = lookup(ctx)
        if sequence and source != "cookie":
            raw: Any = values.getlist(alias)
            if not raw:
                return ctx.missing(parameter, loc)
        else:
            raw = values.get(alias)
            if raw is None:
                return ctx.missing(parameter, loc)
        if validator is None:
            return raw
        try:
            return validator.python(raw)
        except ValidationFailed as failed:
            return ctx.fail(loc, failed.errors)

    return resolve


def _path_step(parameter: Parameter) -> Callable[[_Context], Any]:
    name, alias = parameter.name, parameter.alias
    validator = _validator(parameter, text=True)

    def resolve(ctx: _Context) -> Any:
        value = ctx.params[name]
        if validator is None:
            return value
        try:
            return validator.python(value)
        except ValidationFailed as failed:
            return ctx.fail(("path", alias), failed.errors)

    return resolve


def _body_step(parameter: Parameter) -> Callable[[_Context], Any]:
    validator = _validator(parameter, text=False)
    assert validator is not None  # noqa: S101 - bodies always validate
    alias = parameter.alias

    if parameter.whole:

        async def resolve_whole(ctx: _Context) -> Any:
            body = await _read_json_body(ctx.request)
            if not body.strip():
                return ctx.missing(parameter, ("body",))
            try:
                return validator.json(body)
            except ValidationFailed as failed:
                # A library may report a type error before it sees the document is malformed
                # (msgspec reads "[" as an array): on this error path only, check the syntax.
                malformed = _json_error(body)
                if malformed is not None:
                    ctx.errors.append(malformed)
                    return _INVALID
                return ctx.fail(("body",), failed.errors)

        return resolve_whole

    async def resolve_member(ctx: _Context) -> Any:
        if ctx.body is MISSING:
            body = await _read_json_body(ctx.request)
            if not body.strip():
                ctx.body = {}
            else:
                try:
                    ctx.body = loads(body)
                except (ValueError, RecursionError):
                    ctx.body = _INVALID
                    ctx.errors.append(_json_error(body) or dict(_JSON_INVALID))
        document = ctx.body
        if document is _INVALID:
            return _INVALID  # malformed, or not an object: reported once
        if not isinstance(document, dict):  # a JSON null too, which is not "malformed"
            ctx.body = _INVALID
            ctx.errors.append(
                {
                    "type": "dict_type",
                    "loc": ["body"],
                    "msg": "Input should be a valid dictionary",
                    "input": document,
                }
            )
            return _INVALID
        if alias not in document:
            return ctx.missing(parameter, ("body", alias))
        try:
            return validator.python(document[alias])
        except ValidationFailed as failed:
            return ctx.fail(("body", alias), failed.errors)

    return resolve_member


async def _form(ctx: _Context) -> Any:
    if ctx.form is None:
        ctx.form = await ctx.request.form()  # 415 for other types, 413 and 400 as usual
    return ctx.form


def _form_step(parameter: Parameter) -> Callable[[_Context], Any]:
    alias, sequence = parameter.alias, parameter.sequence
    loc = ("body", alias)
    base = _strip_optional(parameter.annotation)
    is_file = parameter.engine is None and (
        base is UploadFile
        or (sequence and UploadFile in getattr(base, "__args__", ()))
        or (isinstance(parameter.marker, File) and base is bytes)
    )

    if parameter.whole:
        validator = _validator(parameter, text=True)
        shapes = _engine(parameter).fields(parameter.annotation)

        async def resolve_model(ctx: _Context) -> Any:
            form = await _form(ctx)
            data: dict[str, Any] = {}
            for shape in shapes:
                found = [v for v in form.getlist(shape.name) if v != ""]
                if found:
                    data[shape.name] = found if shape.sequence else found[-1]
            for key in form:
                if key not in data and form[key] != "":
                    data[key] = form[key]
            try:
                return validator.python(data)
            except ValidationFailed as failed:
                return ctx.fail(("body",), failed.errors)

        return resolve_model

    validator = None if is_file else _validator(parameter, text=True)

    async def resolve(ctx: _Context) -> Any:
        form = await _form(ctx)
        found = [v for v in form.getlist(alias) if v != ""]  # an empty input is absent
        if not found:
            return ctx.missing(parameter, loc)
        raw: Any = found if sequence else found[-1]
        if is_file:
            files = found if sequence else [raw]
            for item in files:
                if not isinstance(item, UploadFile):
                    error = {"type": "value_error", "loc": list(loc), "input": item}
                    ctx.errors.append({**error, "msg": "Expected a file upload, got a text field"})
                    return _INVALID
            if base is bytes:
                return await raw.read()
            return raw
        if validator is None:
            return raw
        try:
            return validator.python(raw)
        except ValidationFailed as failed:
            return ctx.fail(loc, failed.errors)

    return resolve


def _background_step(ctx: _Context) -> Any:
    if ctx.background is None:
        ctx.background = BackgroundTasks()
    return ctx.background


def _request_step(ctx: _Context) -> Any:
    return ctx.request


class _Call:
    """A compiled handler or dependency: its parameter steps and how to call it."""

    __slots__ = ("call", "kind", "steps", "use_cache", "var_keyword")

    def __init__(self, dependant: Dependant, path_names: tuple[str, ...]) -> None:
        self.call = dependant.call
        self.kind = dependant.kind
        self.use_cache = dependant.use_cache
        declared = {p.name for p in dependant.parameters if p.source == "path"}
        #: Path parameters passed through ``**kwargs``.
        self.var_keyword = (
            tuple(name for name in path_names if name not in declared)
            if dependant.var_keyword is not None
            else ()
        )
        self.steps = tuple(self._checked_step(p, path_names) for p in dependant.parameters)

    def _checked_step(self, parameter: Parameter, path_names: tuple[str, ...]) -> _Step:
        try:
            return self._step(parameter, path_names)
        except (ImproperlyConfigured, MissingDependencyError):
            raise
        except Exception as exc:
            raise ImproperlyConfigured(
                f"{parameter.engine} cannot validate parameter {parameter.name!r} of "
                f"{callable_name(self.call)!r} ({parameter.annotation!r}): {exc}"
            ) from exc

    @staticmethod
    def _step(parameter: Parameter, path_names: tuple[str, ...]) -> _Step:
        source = parameter.source
        if source == "request":
            return _Step(parameter.name, _request_step, False)
        if source == "background":
            return _Step(parameter.name, _background_step, False)
        if source == "path":
            return _Step(parameter.name, _path_step(parameter), False)
        if source in ("query", "header", "cookie"):
            return _Step(parameter.name, _mapping_step(parameter), False)
        if source == "body":
            return _Step(parameter.name, _body_step(parameter), True)
        if source == "form":
            return _Step(parameter.name, _form_step(parameter), True)
        assert parameter.dependency is not None  # noqa: S101 - the only other source
        return _Step(
            parameter.name, _dependency_step(_Call(parameter.dependency, path_names)), True
        )

    async def arguments(self, ctx: _Context) -> dict[str, Any] | None:
        """Resolve every parameter; None when any of them (or a dependency) is invalid."""
        before = len(ctx.errors)
        kwargs: dict[str, Any] = {}
        for step in self.steps:
            value = await step.resolve(ctx) if step.is_async else step.resolve(ctx)
            if value is not _INVALID:
                kwargs[step.name] = value
        for name in self.var_keyword:
            kwargs[name] = ctx.params[name]
        return kwargs if len(ctx.errors) == before else None

    async def run(self, ctx: _Context, kwargs: dict[str, Any]) -> Any:
        """Call the function; a generator's value is what it yields, its rest runs later."""
        kind = self.kind
        if kind == "async":
            return await self.call(**kwargs)
        if kind == "sync":
            # Plain functions run in a worker thread, like plain handlers (contextvars copied).
            return await asyncio.to_thread(self.call, **kwargs)
        if kind == "async_generator":
            generator = self.call(**kwargs)
            ctx.exits.append(generator)
            try:
                return await generator.__anext__()
            except StopAsyncIteration:
                ctx.exits.pop()
                raise RuntimeError(_no_yield(self.call)) from None
        generator = await asyncio.to_thread(self.call, **kwargs)
        ctx.exits.append(generator)
        value = await asyncio.to_thread(next, generator, _INVALID)
        if value is _INVALID:
            ctx.exits.pop()
            raise RuntimeError(_no_yield(self.call))
        return value


def _no_yield(call: Any) -> str:
    return f"Dependency {callable_name(call)!r} returned without yielding. Yield the value once."


def _dependency_step(compiled: _Call) -> Callable[[_Context], Any]:
    key = compiled.call

    async def resolve(ctx: _Context) -> Any:
        if compiled.use_cache and key in ctx.cache:
            return ctx.cache[key]
        kwargs = await compiled.arguments(ctx)
        if kwargs is None:
            return _INVALID  # its own parameters are invalid: not called
        value = await compiled.run(ctx, kwargs)
        if compiled.use_cache:
            ctx.cache[key] = value
        return value

    return resolve


def _resume(generator: Any, error: BaseException | None) -> Any:
    """Run a sync generator past its ``yield`` (in a worker thread); ``_INVALID`` once finished.

    StopIteration must not cross into the event loop: a future cannot hold it.
    """
    try:
        return next(generator) if error is None else generator.throw(error)
    except StopIteration:
        return _INVALID


async def _close(ctx: _Context, exc: BaseException | None) -> None:
    """Finish the generator dependencies, last entered first; ``exc`` is raised at their yield.

    An exception a cleanup raises replaces ``exc`` (chained to it) and the
    remaining cleanups still run; it is raised at the end.
    """
    error = exc
    while ctx.exits:
        generator = ctx.exits.pop()
        try:
            if hasattr(generator, "__anext__"):
                if error is None:
                    await generator.__anext__()
                else:
                    await generator.athrow(error)
            elif await asyncio.to_thread(_resume, generator, error) is _INVALID:
                continue  # finished
        except StopAsyncIteration:
            continue
        except BaseException as raised:  # noqa: BLE001 - re-raised below, after the others
            if raised is not error:
                raised.__context__ = raised.__context__ or error
                error = raised
            continue
        error = RuntimeError(
            f"Dependency generator {generator!r} yielded more than once. Yield exactly once."
        )
    if error is not None and error is not exc:
        raise error


class _CleanupResponse(Response):
    """Send the handler's response, then finish the generator dependencies."""

    def __init__(self, response: Response, ctx: _Context) -> None:
        self.response = response
        self.context = ctx

    def __getattr__(self, name: str) -> Any:
        return getattr(self.response, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response; the cleanups run even when sending fails."""
        try:
            await self.response(scope, receive, send)
        except BaseException as exc:
            await _close(self.context, exc)
            raise
        await _close(self.context, None)


class Invoker:
    """The per-request code of a typed route, compiled from its signature once.

    Args:
        signature: The route's :class:`~covet.params.signature.Signature`.
        path_names: The route's path parameter names.
    """

    __slots__ = ("_handler", "_name", "_serialize", "_status", "endpoint")

    def __init__(self, signature: Signature, path_names: tuple[str, ...]) -> None:
        self.endpoint = signature.handler.call
        self._name = callable_name(self.endpoint)
        self._handler = _Call(signature.handler, path_names)
        self._status = signature.status_code
        response = signature.response
        self._serialize = None
        if response is not None:
            try:
                self._serialize = get_engine(response.engine).serializer(response.annotation)
            except (ImproperlyConfigured, MissingDependencyError):
                raise
            except Exception as exc:
                raise ImproperlyConfigured(
                    f"{response.engine} cannot serialise the response model "
                    f"{response.annotation!r} of {self._name!r}: {exc}"
                ) from exc

    async def __call__(self, request: Request, params: dict[str, Any]) -> Response:
        """Serve one request: validate, call the handler and build its response.

        Raises:
            RequestValidationError: Listing every invalid or missing value.
        """
        ctx = _Context(request, params)
        try:
            kwargs = await self._handler.arguments(ctx)
            if kwargs is None:
                raise RequestValidationError(ctx.errors)
            result = await self._handler.run(ctx, kwargs)
            response = self._render(result)
            if ctx.background is not None and ctx.background.tasks:
                current = response.background
                response.background = (
                    ctx.background
                    if current is None
                    else BackgroundTasks([current, ctx.background])
                )
        except BaseException as exc:
            if ctx.exits:
                await _close(ctx, exc)
            raise
        return _CleanupResponse(response, ctx) if ctx.exits else response

    def _render(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        status = self._status
        if self._serialize is not None:
            try:
                body = self._serialize(result)
            except ValidationFailed as failed:
                raise ResponseValidationError(self._name, failed.errors) from None
            return _JSONBytes(body) if status is None else _JSONBytes(body, status_code=status)
        encoded = encode_model(result)
        if encoded is not None:
            return _JSONBytes(encoded, status_code=status or 200)
        response = to_response(result, self.endpoint)
        if status is not None:
            response.status_code = status
        return response
