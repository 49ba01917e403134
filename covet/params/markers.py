"""Markers saying where a handler parameter comes from: ``Query()``, ``Body()``, ``Depends()``...

A marker goes in the parameter's ``Annotated`` metadata (or, FastAPI-style, in
its default)::

    async def list_items(
        page: Annotated[int, Query(ge=1)] = 1,
        size: Annotated[int, Query(alias="page-size", le=100)] = 20,
        agent: Annotated[str | None, Header()] = None,
    ): ...

Markers hold no validation code: they are read once, when the route is
registered (see :mod:`covet.params.signature`), and the chosen validation
library (pydantic or msgspec) enforces their constraints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Final

from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "MISSING",
    "Body",
    "Cookie",
    "Depends",
    "File",
    "Form",
    "Header",
    "Param",
    "Path",
    "Query",
)


class _Missing:
    """The type of :data:`MISSING`: no default, the parameter is required."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: "No default": the parameter is required. ``None`` is a legitimate default.
MISSING: Final[Any] = _Missing()

#: The constraint keywords a marker accepts, in the vocabulary both pydantic
#: (``Field``) and msgspec (``Meta``) understand.
CONSTRAINTS: Final = (
    "gt",
    "ge",
    "lt",
    "le",
    "multiple_of",
    "min_length",
    "max_length",
    "pattern",
)


class Param:
    """Where a parameter's value is read from, its wire name and its constraints.

    Use a subclass: :class:`Path`, :class:`Query`, :class:`Header`,
    :class:`Cookie`, :class:`Body`, :class:`Form` or :class:`File`.

    Args:
        default: The value when the client sends none; without one the
            parameter is required. (With ``Annotated``, prefer a plain Python
            default: ``page: Annotated[int, Query()] = 1``.)
        default_factory: A zero-argument callable making the default, for
            mutable defaults.
        alias: The name on the wire (``"page-size"``) when it differs from the
            Python parameter name.
        title: A short title, for the API documentation.
        description: What the parameter means, for the API documentation.
        examples: Example values, for the API documentation.
        deprecated: Mark the parameter deprecated in the API documentation.
        include_in_schema: Leave the parameter out of the API documentation
            when false (it is still read and validated).
        gt: The value must be greater than this.
        ge: The value must be greater than or equal to this.
        lt: The value must be less than this.
        le: The value must be less than or equal to this.
        multiple_of: The value must be a multiple of this.
        min_length: Strings and sequences must be at least this long.
        max_length: Strings and sequences must be at most this long.
        pattern: Strings must match this regular expression (searched, as
            pydantic and msgspec both do; anchor it with ``^...$``).

    Raises:
        ImproperlyConfigured: For both a default and a default factory.
    """

    #: The source name used in error locations: ``["query", "page"]``.
    source: ClassVar[str] = ""

    __slots__ = (
        "alias",
        "constraints",
        "default",
        "default_factory",
        "deprecated",
        "description",
        "examples",
        "include_in_schema",
        "title",
    )

    def __init__(
        self,
        default: Any = MISSING,
        *,
        default_factory: Callable[[], Any] | None = None,
        alias: str | None = None,
        title: str | None = None,
        description: str | None = None,
        examples: list[Any] | None = None,
        deprecated: bool = False,
        include_in_schema: bool = True,
        gt: float | None = None,
        ge: float | None = None,
        lt: float | None = None,
        le: float | None = None,
        multiple_of: float | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
    ) -> None:
        if default is not MISSING and default_factory is not None:
            raise ImproperlyConfigured(
                f"{type(self).__name__}() got both default={default!r} and default_factory. "
                "Pass one of them."
            )
        if default is Ellipsis:  # FastAPI's spelling of "required"
            default = MISSING
        given: object = alias  # callers may be untyped: check the runtime type
        if given is not None and (not isinstance(given, str) or not given):
            raise ImproperlyConfigured(
                f"{type(self).__name__}(alias={alias!r}) must be a non-empty string."
            )
        self.default = default
        self.default_factory = default_factory
        self.alias = alias
        self.title = title
        self.description = description
        self.examples = examples
        self.deprecated = deprecated
        self.include_in_schema = include_in_schema
        given = {
            "gt": gt,
            "ge": ge,
            "lt": lt,
            "le": le,
            "multiple_of": multiple_of,
            "min_length": min_length,
            "max_length": max_length,
            "pattern": pattern,
        }
        #: The constraints that were set, by keyword (``{"ge": 1}``).
        self.constraints: dict[str, Any] = {k: v for k, v in given.items() if v is not None}

    def __repr__(self) -> str:
        parts = [] if self.default is MISSING else [repr(self.default)]
        if self.alias is not None:
            parts.append(f"alias={self.alias!r}")
        parts.extend(f"{key}={value!r}" for key, value in self.constraints.items())
        return f"{type(self).__name__}({', '.join(parts)})"


class Path(Param):
    """A path parameter, for constraints: ``Annotated[int, Path(ge=1)]``.

    The value comes from the route's ``{name:converter}`` placeholder, already
    converted; ``Path()`` only adds checks (a path parameter is never optional).
    """

    source = "path"
    __slots__ = ()


class Query(Param):
    """A query string parameter (``?page=2``); the default for scalar annotations.

    A ``list[...]`` annotation collects every repetition (``?tag=a&tag=b``). A
    model annotation (``Annotated[Filters, Query()]``) binds the whole query
    string into the model, under the model's own extra-field policy.
    """

    source = "query"
    __slots__ = ()


class Header(Param):
    """A request header; ``user_agent`` reads ``User-Agent``.

    Args:
        default: See :class:`Param`.
        convert_underscores: Read ``x_token`` from the ``x-token`` header
            (default); set it false to use the name as it is. An ``alias`` is
            always used as it is.
        **options: The other :class:`Param` options.
    """

    source = "header"
    __slots__ = ("convert_underscores",)

    def __init__(
        self, default: Any = MISSING, *, convert_underscores: bool = True, **options: Any
    ) -> None:
        super().__init__(default, **options)
        self.convert_underscores = convert_underscores


class Cookie(Param):
    """A request cookie, by name."""

    source = "cookie"
    __slots__ = ()


class Body(Param):
    """The JSON request body, or one member of it.

    A parameter annotated with a model (pydantic, msgspec, a dataclass or a
    TypedDict) is the body without saying so. With several body parameters,
    or ``embed=True``, each is read from the body object's member of its name:
    ``{"item": {...}, "importance": 5}``.

    Args:
        default: See :class:`Param`.
        embed: Read the value from ``body[alias]`` even when it is the only
            body parameter.
        media_type: The media type documented for the body.
        **options: The other :class:`Param` options.
    """

    source = "body"
    __slots__ = ("embed", "media_type")

    #: The media type documented when none is given.
    default_media_type: ClassVar[str] = "application/json"

    def __init__(
        self,
        default: Any = MISSING,
        *,
        embed: bool = False,
        media_type: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(default, **options)
        self.embed = embed
        self.media_type = media_type or self.default_media_type


class Form(Body):
    """A field of an urlencoded or multipart form, or (with a model) the whole form.

    Text fields arrive as strings and are converted to the annotation; an empty
    field counts as absent, as browsers send ``""`` for an empty input.
    """

    source = "form"
    __slots__ = ()
    default_media_type = "application/x-www-form-urlencoded"


class File(Form):
    """An uploaded file of a multipart form.

    Annotate it :class:`~covet.datastructures.UploadFile` (read it with
    ``await file.read()``), ``list[UploadFile]`` for several, or ``bytes`` for
    the whole content.
    """

    source = "form"
    __slots__ = ()
    default_media_type = "multipart/form-data"


class Depends:
    """Inject the result of ``dependency`` into the parameter, once per request.

    ``dependency`` takes typed parameters exactly as a handler does (query,
    headers, the body, other dependencies, the request) and may be:

    - a plain function (run in a worker thread) or an ``async def``;
    - a generator (``yield`` the value): the code after ``yield`` runs once the
      response has been sent, and also when the handler raises (the exception
      is raised at the ``yield``, so ``try``/``finally`` sees it).

    Args:
        dependency: The callable to call.
        use_cache: Reuse the result when the same dependency appears again in
            the same request (default); false calls it every time.

    Raises:
        ImproperlyConfigured: If ``dependency`` is not callable.
    """

    __slots__ = ("dependency", "use_cache")

    def __init__(self, dependency: Callable[..., Any], *, use_cache: bool = True) -> None:
        if not callable(dependency):
            raise ImproperlyConfigured(
                f"Depends() got {dependency!r}, which is not callable. Pass the function itself: "
                "Depends(get_db), not Depends(get_db())."
            )
        self.dependency = dependency
        self.use_cache = use_cache

    def __repr__(self) -> str:
        name = getattr(self.dependency, "__qualname__", repr(self.dependency))
        return f"Depends({name})"
