"""Read a handler's signature once, at route registration: where each parameter comes from.

:func:`inspect_handler` turns a handler (and, recursively, its dependencies)
into a :class:`Signature`: the list of :class:`Parameter` declarations with
their source (path, query, header, cookie, body, form, a dependency, the
request), wire name, type, constraints and default, plus the response
declaration. It is the one place that describes a route's inputs and output:
the binder (:mod:`covet.params.binding`) compiles it into the per-request
code, and API documentation reads it (``route.signature``).

A handler that takes only the request and its path parameters, with no
response model, is *plain*: it is called exactly as before, at no cost.

How a parameter without a marker is classified, in order:

1. annotated ``Request`` (or the first positional parameter, or one named
   ``request``, unannotated or annotated ``Any``): the request;
2. named like a path placeholder: the converted path value;
3. annotated ``BackgroundTasks``: tasks run after the response;
4. annotated ``UploadFile`` (or a list of them): a file of a multipart form;
5. annotated with a model (pydantic, msgspec, a dataclass or a TypedDict, or
   a list/union of them): the JSON body;
6. anything else: a query parameter.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, Final, Literal

from covet._utils import callable_name, is_async_callable
from covet.background import BackgroundTasks
from covet.datastructures import UploadFile
from covet.exceptions import ImproperlyConfigured
from covet.params import engines
from covet.params.markers import MISSING, Body, Depends, File, Header, Param
from covet.requests import HTTPConnection
from covet.responses import Response

if typing.TYPE_CHECKING:
    from covet.convertors import Convertor

__all__ = (
    "INFER",
    "Dependant",
    "Parameter",
    "ResponseSpec",
    "Signature",
    "inspect_handler",
)

Source = Literal[
    "request", "path", "query", "header", "cookie", "body", "form", "dependency", "background"
]


class _Infer:
    __slots__ = ()

    def __repr__(self) -> str:
        return "INFER"


#: ``response_model`` default: use the return annotation when it names a model.
INFER: Final[Any] = _Infer()

_TEXT_TYPES: Final = (Any, str, object, inspect.Parameter.empty)
_SEQUENCES: Final = (list, set, frozenset, tuple, Sequence, typing.List, typing.Set)  # noqa: UP006


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Parameter:
    """One declared input of a handler or dependency.

    Attributes:
        name: The Python parameter name.
        source: Where the value comes from: ``"path"``, ``"query"``,
            ``"header"``, ``"cookie"``, ``"body"`` (JSON), ``"form"``,
            ``"dependency"``, ``"request"`` or ``"background"``.
        alias: The name on the wire (query key, header name, body member...).
        annotation: The type to validate against, with constraint metadata
            (``Annotated[int, Field(ge=1)]``) kept and covet markers removed.
        marker: The :class:`~covet.params.Param` or ``Depends`` that declared
            it, or None when classified from the annotation alone.
        default: The default value, or :data:`~covet.params.markers.MISSING`.
        default_factory: A callable making the default, or None.
        whole: True when the value is built from the whole source: a model
            bound from the query string or form, or the (non-embedded) body.
        sequence: True when every repetition of the key is collected (``list[int]``).
        engine: ``"pydantic"`` or ``"msgspec"``; None when no validation is
            needed (a ``str`` query value, a converted path value...).
        dependency: For ``source == "dependency"``, the dependency's own declarations.
    """

    name: str
    source: Source
    alias: str
    annotation: Any
    marker: Param | Depends | None = None
    default: Any = MISSING
    default_factory: Callable[[], Any] | None = None
    whole: bool = False
    sequence: bool = False
    engine: str | None = None
    dependency: Dependant | None = None

    @property
    def required(self) -> bool:
        """Return whether the client must send a value."""
        return self.default is MISSING and self.default_factory is None

    @property
    def constraints(self) -> dict[str, Any]:
        """Return the marker's constraints (``{"ge": 1}``)."""
        return dict(self.marker.constraints) if isinstance(self.marker, Param) else {}


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Dependant:
    """A callable whose parameters covet fills in: a handler or a dependency.

    Attributes:
        call: The function.
        parameters: Its declared parameters, in signature order.
        kind: ``"async"``, ``"sync"``, ``"async_generator"`` or ``"generator"``.
        use_cache: For a dependency, whether one result serves the whole request.
        var_keyword: The name of its ``**kwargs`` parameter, if any (it
            receives the path parameters not declared otherwise).
    """

    call: Callable[..., Any]
    parameters: tuple[Parameter, ...]
    kind: str
    use_cache: bool = True
    var_keyword: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class ResponseSpec:
    """What a handler's return value is serialised as.

    Attributes:
        annotation: The response model (``Item``, ``list[Item]``...).
        engine: ``"pydantic"`` or ``"msgspec"``.
    """

    annotation: Any
    engine: str


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Signature:
    """Everything a route declares about its inputs and output.

    Attributes:
        handler: The handler and its parameters (dependencies nested inside).
        response: The response model, or None (the return value is converted
            as for plain routes).
        status_code: The status of responses built from return values
            (None: 200, or what a plain route would send).
        plain: True when the handler is called as ``handler(request,
            **path_params)`` with nothing to validate.
        embed_body: True when each body parameter is a member of the body object.
    """

    handler: Dependant
    response: ResponseSpec | None = None
    status_code: int | None = None
    plain: bool = True
    embed_body: bool = False

    def parameters(self) -> Iterator[Parameter]:
        """Yield every declared input, dependencies' included, each once (depth first)."""
        seen: set[tuple[str, str]] = set()
        stack = [iter(self.handler.parameters)]
        while stack:
            parameter = next(stack[-1], None)
            if parameter is None:
                stack.pop()
                continue
            if parameter.dependency is not None:
                stack.append(iter(parameter.dependency.parameters))
                continue
            key = (parameter.source, parameter.alias)
            if parameter.source in ("request", "background") or key in seen:
                continue
            seen.add(key)
            yield parameter

    @property
    def engines(self) -> frozenset[str]:
        """Return the validation libraries this route uses."""
        used = {p.engine for p in self.parameters() if p.engine is not None}
        if self.response is not None:
            used.add(self.response.engine)
        return frozenset(used)


# --------------------------------------------------------------------------- annotations


class _Unresolved:
    """An annotation that could not be evaluated (a name imported under TYPE_CHECKING...)."""

    __slots__ = ("error", "text")

    def __init__(self, text: str, error: Exception) -> None:
        self.text = text
        self.error = error


def _function_of(call: Any) -> Any:
    while isinstance(call, functools.partial):
        call = call.func
    if inspect.isclass(call):
        return call.__init__
    if inspect.isfunction(call) or inspect.ismethod(call):
        return inspect.unwrap(call)
    method = getattr(call, "__call__", None)  # noqa: B004 - a callable object's method
    return getattr(method, "__func__", method)


def _namespaces(call: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    function = _function_of(call)
    global_ns = dict(getattr(function, "__globals__", {}))
    local_ns: dict[str, Any] = {}
    code = getattr(function, "__code__", None)
    closure = getattr(function, "__closure__", None)
    if code is not None and closure:
        for name, cell in zip(code.co_freevars, closure, strict=False):
            try:
                local_ns[name] = cell.cell_contents
            except ValueError:  # an empty cell: the name is not bound yet
                continue
    return global_ns, local_ns


def _resolve(annotation: Any, namespaces: tuple[dict[str, Any], dict[str, Any]]) -> Any:
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, *namespaces)  # noqa: S307 - the handler's own annotation text
    except Exception as exc:  # noqa: BLE001 - kept and reported only if the value is needed
        return _Unresolved(annotation, exc)


def _signature(call: Any) -> tuple[inspect.Signature, Any]:
    """Return the signature with every annotation evaluated, and the return annotation."""
    signature = inspect.signature(call)
    namespaces = _namespaces(call)
    parameters = [
        p.replace(annotation=_resolve(p.annotation, namespaces))
        for p in signature.parameters.values()
    ]
    returns = _resolve(signature.return_annotation, namespaces)
    return signature.replace(parameters=parameters), returns


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """Split ``Annotated[T, *metadata]`` into ``T`` and the metadata."""
    if typing.get_origin(annotation) is Annotated:
        base, *metadata = typing.get_args(annotation)
        return base, metadata
    return annotation, []


def _strip_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])
    if typing.get_origin(annotation) is Annotated:
        return _strip_optional(typing.get_args(annotation)[0])
    return annotation


def is_sequence(annotation: Any) -> bool:
    """Return whether ``annotation`` is a list-like type (``list[int]``, ``tuple[str, ...]``)."""
    base = _strip_optional(annotation)
    origin = typing.get_origin(base) or base
    return origin in _SEQUENCES


def _is_text(annotation: Any) -> bool:
    """Return whether a text value passes as it is (``str``, ``str | None``, ``Any``)."""
    return _strip_optional(annotation) in _TEXT_TYPES


def _is_class(annotation: Any, cls: type) -> bool:
    base = _strip_optional(annotation)
    return isinstance(base, type) and issubclass(base, cls)


def _is_upload(annotation: Any) -> bool:
    base = _strip_optional(annotation)
    if is_sequence(base):
        args = typing.get_args(base)
        return bool(args) and _is_class(args[0], UploadFile)
    return _is_class(base, UploadFile)


def _convertor_type(convertor: Convertor[Any]) -> Any:
    for base in getattr(type(convertor), "__orig_bases__", ()):
        args = typing.get_args(base)
        if args and isinstance(args[0], type):
            return args[0]
    return None


# --------------------------------------------------------------------------- inspection

#: A parameter that needs validation by whichever library the route uses.
_ANY_ENGINE: Final = "*"


def _dependant_kind(call: Any) -> str:
    function = _function_of(call)
    if inspect.isasyncgenfunction(function):
        return "async_generator"
    if inspect.isgeneratorfunction(function):
        return "generator"
    return "async" if is_async_callable(call) else "sync"


class _Inspector:
    """Inspect one route's handler and its dependencies (one instance per registration)."""

    def __init__(self, path: str, convertors: dict[str, Convertor[Any]], endpoint: Any) -> None:
        self.path = path
        self.convertors = convertors
        self.endpoint = endpoint

    def fail(self, call: Any, message: str) -> ImproperlyConfigured:
        where = callable_name(call)
        if call is not self.endpoint:
            where = f"dependency {where!r} of {callable_name(self.endpoint)}"
        return ImproperlyConfigured(f"Route {self.path!r}, {where}: {message}")

    def dependant(
        self,
        call: Any,
        signature: inspect.Signature,
        *,
        handler: bool,
        use_cache: bool = True,
        chain: tuple[Any, ...] = (),
    ) -> Dependant:
        parameters: list[Parameter] = []
        var_keyword = None
        first = handler
        for parameter in signature.parameters.values():
            kind = parameter.kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                var_keyword = parameter.name
                continue
            if kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            positional = kind in (
                inspect.Parameter.POSITIONAL_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
            )
            parameters.append(
                self.parameter(call, parameter, first=first and positional, chain=chain)
            )
            if positional:
                first = False
        return Dependant(call, tuple(parameters), _dependant_kind(call), use_cache, var_keyword)

    def depends(self, call: Any, marker: Depends, chain: tuple[Any, ...]) -> Dependant:
        target = marker.dependency
        if target in chain or target is call:
            names = " -> ".join(callable_name(c) for c in (*chain, call, target))
            raise self.fail(call, f"its dependencies form a cycle ({names}). Break it.")
        try:
            signature, _ = _signature(target)
        except (TypeError, ValueError) as exc:
            raise self.fail(
                call, f"dependency {target!r} has no readable signature ({exc})."
            ) from None
        return self.dependant(
            target, signature, handler=False, use_cache=marker.use_cache, chain=(*chain, call)
        )

    def parameter(
        self, call: Any, parameter: inspect.Parameter, *, first: bool, chain: tuple[Any, ...]
    ) -> Parameter:
        name = parameter.name
        base, metadata = _split(parameter.annotation)
        markers = [m for m in metadata if isinstance(m, Param | Depends)]
        rest = [m for m in metadata if not isinstance(m, Param | Depends)]
        if len(markers) > 1:
            raise self.fail(call, f"parameter {name!r} has several markers {markers!r}. Keep one.")
        marker: Param | Depends | None = markers[0] if markers else None
        default = parameter.default
        if isinstance(default, Param | Depends):
            if marker is not None:
                raise self.fail(
                    call, f"parameter {name!r} has a marker both in Annotated and as its default."
                )
            marker, default = default, MISSING
        if default is inspect.Parameter.empty:
            default = MISSING
        factory = None
        if isinstance(marker, Param) and (
            marker.default is not MISSING or marker.default_factory is not None
        ):
            if default is not MISSING:
                raise self.fail(
                    call,
                    f"parameter {name!r} has a default both in {marker!r} and after '='. "
                    "Keep the one after '='.",
                )
            default, factory = marker.default, marker.default_factory
        if isinstance(base, _Unresolved):
            # Tolerated only where the value needs no type: a path value, or the request
            # (``request: Request`` with Request imported under TYPE_CHECKING).
            request_like = first and any(word in base.text for word in ("Request", "Connection"))
            if not (request_like or name in self.convertors) or isinstance(marker, Param | Depends):
                raise self.fail(
                    call,
                    f"the annotation {base.text!r} of parameter {name!r} cannot be evaluated "
                    f"({base.error}). Import the type at run time (not under TYPE_CHECKING) "
                    "and define it at module level.",
                )
            base = inspect.Parameter.empty  # the request, or a converted path value: not needed
        annotation = Annotated[(base, *rest)] if rest else base
        if marker is None:
            # A type may say how it is injected (covet.forms.HTMLForm[Model] reads the form,
            # valid or not): ``__covet_depends__(annotation)`` returns the Depends to use.
            inject = getattr(typing.get_origin(base) or base, "__covet_depends__", None)
            if callable(inject):
                marker = inject(base)
        if isinstance(marker, Depends):
            return Parameter(
                name,
                "dependency",
                name,
                annotation,
                marker,
                default,
                factory,
                dependency=self.depends(call, marker, chain),
            )
        source: Source = marker.source if marker is not None else self.classify(name, base, first)  # type: ignore[assignment]
        alias = name
        if marker is not None and marker.alias is not None:
            alias = marker.alias
        elif isinstance(marker, Header) and marker.convert_underscores:
            alias = name.replace("_", "-")
        if source == "header":
            alias = alias.lower()
        whole, sequence, engine = self.shape(call, name, source, base, annotation, marker, default)
        return Parameter(
            name, source, alias, annotation, marker, default, factory, whole, sequence, engine
        )

    def classify(self, name: str, base: Any, first: bool) -> str:
        if _is_class(base, HTTPConnection):
            return "request"
        if name in self.convertors:
            return "path"
        if (base is inspect.Parameter.empty or base is Any) and (first or name == "request"):
            return "request"  # handler(request, ...): the calling convention of plain routes
        if _is_class(base, BackgroundTasks):
            return "background"
        if _is_upload(base):
            return "form"
        if engines.is_model_type(base):
            return "body"
        return "query"

    def library(self, call: Any, name: str, annotation: Any) -> str:
        found = engines.libraries_in(annotation)
        if len(found) > 1:
            raise self.fail(
                call,
                f"parameter {name!r} mixes pydantic and msgspec types in {annotation!r}. "
                "Use one library per value.",
            )
        return next(iter(found), _ANY_ENGINE)

    def shape(
        self,
        call: Any,
        name: str,
        source: str,
        base: Any,
        annotation: Any,
        marker: Param | None,
        default: Any,
    ) -> tuple[bool, bool, str | None]:
        """Return ``(whole, sequence, engine)`` for a parameter read from ``source``."""
        constrained = marker is not None and bool(marker.constraints)
        metadata = annotation is not base
        if source in ("request", "background"):
            return False, False, None
        if source == "path":
            self.check_path(call, name, base, default)
            needed = constrained or metadata
            return False, False, self.library(call, name, annotation) if needed else None
        if source == "body":
            return False, False, self.library(call, name, annotation)
        is_file = _is_upload(base) or (isinstance(marker, File) and _strip_optional(base) is bytes)
        if source == "form" and is_file:
            return False, is_sequence(base), None
        if engines.is_model_type(base) and not is_sequence(base):
            return True, False, self.library(call, name, annotation)  # a model bound from a mapping
        sequence = is_sequence(base)
        item = typing.get_args(_strip_optional(base)) if sequence else (base,)
        text = _is_text(item[0] if item else Any)
        needed = constrained or metadata or not text
        return False, sequence, self.library(call, name, annotation) if needed else None

    def check_path(self, call: Any, name: str, base: Any, default: Any) -> None:
        if name not in self.convertors:
            raise self.fail(
                call,
                f"parameter {name!r} is marked Path() but the path has no {{{name}}} "
                "placeholder. Add it to the path, or use Query().",
            )
        if default is not MISSING:
            raise self.fail(call, f"path parameter {name!r} cannot have a default. Remove it.")
        expected = _convertor_type(self.convertors[name])
        given = _strip_optional(base)
        if (
            expected is not None
            and given in (int, float, str, uuid.UUID)
            and given is not expected
            and not (given is float and expected is int)
        ):
            placeholder = {int: "int", float: "float", uuid.UUID: "uuid"}.get(given, "str")
            raise self.fail(
                call,
                f"path parameter {name!r} is annotated {given.__name__} but its converter "
                f"gives {expected.__name__}. Write '{{{name}:{placeholder}}}' in the path.",
            )


def _response_annotation(returns: Any, response_model: Any) -> Any:
    """Return the response model: ``response_model``, else a return annotation naming a model."""
    if response_model is not INFER:
        return response_model
    if isinstance(returns, _Unresolved) or returns is inspect.Signature.empty:
        return None  # under TYPE_CHECKING, say: nothing to act on
    base, _ = _split(returns)
    if _is_class(base, Response) or not engines.is_model_type(base):
        return None
    return returns


def _walk(dependant: Dependant) -> Iterator[Parameter]:
    for parameter in dependant.parameters:
        yield parameter
        if parameter.dependency is not None:
            yield from _walk(parameter.dependency)


def _finish(dependant: Dependant, engine: str, embed: bool) -> Dependant:
    """Give every parameter needing validation ``engine``, and mark the single body whole."""
    parameters = []
    for parameter in dependant.parameters:
        changes: dict[str, Any] = {}
        if parameter.engine == _ANY_ENGINE:
            changes["engine"] = engine
        if parameter.source == "body" and not embed:
            changes["whole"] = True
        if parameter.dependency is not None:
            changes["dependency"] = _finish(parameter.dependency, engine, embed)
        parameters.append(dataclasses.replace(parameter, **changes) if changes else parameter)
    return dataclasses.replace(dependant, parameters=tuple(parameters))


def inspect_handler(
    endpoint: Callable[..., Any],
    path: str,
    convertors: dict[str, Convertor[Any]],
    *,
    response_model: Any = INFER,
    status_code: int | None = None,
) -> Signature:
    """Read what ``endpoint`` declares, once, when its route is registered.

    Args:
        endpoint: The handler.
        path: The route path, for error messages.
        convertors: The path placeholders and their converters.
        response_model: The response model; :data:`INFER` reads the return
            annotation, None turns it off.
        status_code: The status for responses built from return values.

    Returns:
        The route's :class:`Signature`.

    Raises:
        ImproperlyConfigured: For a parameter covet cannot read.
        covet.exceptions.MissingDependencyError: When validation is needed and
            neither pydantic nor msgspec is installed.
    """
    inspector = _Inspector(path, convertors, endpoint)
    try:
        signature, returns = _signature(endpoint)
    except (TypeError, ValueError):
        # Builtins and some C callables have no signature: call them the plain way.
        return Signature(Dependant(endpoint, (), _dependant_kind(endpoint)))
    handler = inspector.dependant(endpoint, signature, handler=True)
    response_annotation = _response_annotation(returns, response_model)
    parameters = list(_walk(handler))
    consumed = {p.name for p in parameters if p.source == "path"}
    if handler.var_keyword is None:
        missing = [name for name in convertors if name not in consumed]
        if missing:
            raise ImproperlyConfigured(
                f"Handler {callable_name(endpoint)!r} for path {path!r} does not accept the path "
                f"parameter(s) {', '.join(map(repr, missing))}. Add them to its signature."
            )
    # Plain: callable as handler(request, **path_params) with nothing to validate.
    kinds = [p.kind for p in signature.parameters.values()]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    declared = list(handler.parameters)
    takes_request = bool(kinds) and kinds[0] is inspect.Parameter.VAR_POSITIONAL  # handler(*args)
    if kinds and kinds[0] in positional and declared and declared[0].source == "request":
        declared = declared[1:]  # the request, first and positional
        takes_request = True
    plain = (
        takes_request
        and response_annotation is None
        and status_code is None
        and all(p.source == "path" and p.engine is None for p in declared)
    )
    if plain:
        return Signature(handler)
    used = {p.engine for p in parameters if p.engine not in (None, _ANY_ENGINE)}
    response_library = None
    if response_annotation is not None:
        response_library = inspector.library(endpoint, "return value", response_annotation)
        if response_library != _ANY_ENGINE:
            used.add(response_library)
    default = None
    if any(p.engine == _ANY_ENGINE for p in parameters) or response_library == _ANY_ENGINE:
        # Values without a model (an int query parameter) use the route's own library.
        default = next(iter(used)) if len(used) == 1 else engines.default_library()
    bodies = [p for p in parameters if p.source == "body"]
    forms = [p for p in parameters if p.source == "form"]
    if bodies and forms:
        raise inspector.fail(
            endpoint,
            f"it reads both a JSON body ({bodies[0].name!r}) and form fields "
            f"({forms[0].name!r}). A request has one body: use Body() or Form(), not both.",
        )
    embed = len({p.alias for p in bodies}) > 1 or any(
        isinstance(p.marker, Body) and p.marker.embed for p in bodies
    )
    handler = _finish(handler, default or _ANY_ENGINE, embed)
    response = None
    if response_annotation is not None:
        chosen = response_library if response_library != _ANY_ENGINE else default
        assert chosen is not None  # noqa: S101 - set above whenever a library is needed
        response = ResponseSpec(response_annotation, chosen)
    return Signature(handler, response, status_code, plain=False, embed_body=embed)
