"""The validation libraries behind typed handlers: pydantic and msgspec, loaded only when used.

An *engine* adapts one library to what the binder needs: validate a Python
value or a JSON document against a type, serialise a return value through a
response model, list a model's fields (to bind a query string or form into
it) and describe a type as JSON Schema (for API documentation).

Nothing here imports pydantic or msgspec until a route needs them: a type
can only be a pydantic model if pydantic is already imported (the user's
module did it), so detection looks in :data:`sys.modules`.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types
import typing
from typing import Annotated, Any, Final, Protocol

from covet.exceptions import MissingDependencyError

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = (
    "LIBRARIES",
    "Engine",
    "FieldShape",
    "Validator",
    "default_library",
    "encode_model",
    "get_engine",
    "is_model_type",
    "libraries_in",
)

#: The libraries covet validates with, in order of preference when a route
#: names neither (pydantic first: its error messages are what FastAPI users know).
LIBRARIES: Final = ("pydantic", "msgspec")


@dataclasses.dataclass(frozen=True, slots=True)
class FieldShape:
    """One field of a model, as bound from a query string or form.

    Attributes:
        name: The key the model validates (its alias, when it has one).
        sequence: Whether every repetition of the key is collected into a list.
    """

    name: str
    sequence: bool


class Validator(Protocol):
    """Validate values against one type; failures raise ``ValidationFailed``."""

    def python(self, value: Any) -> Any:
        """Validate a Python value (a query string, a form, decoded JSON)."""
        ...

    def json(self, data: bytes) -> Any:
        """Decode and validate a JSON document in one pass."""
        ...


class Engine(Protocol):
    """One validation library, as the binder uses it."""

    name: str

    def validator(
        self, annotation: Any, constraints: Mapping[str, Any], *, text: bool
    ) -> Validator:
        """Return a validator for ``annotation`` with marker ``constraints``.

        ``text`` says the values arrive as strings (query, headers, forms):
        the engine converts ``"5"`` to ``5``.
        """
        ...

    def serializer(self, annotation: Any) -> Callable[[Any], bytes]:
        """Return ``value -> JSON bytes`` that validates ``value`` as ``annotation``.

        Fields the model does not declare are left out, and objects (ORM
        instances) are read by attribute.
        """
        ...

    def fields(self, annotation: Any) -> list[FieldShape]:
        """Return the fields of the model ``annotation``, to bind a mapping into it."""
        ...

    def json_schema(self, annotation: Any) -> dict[str, Any]:
        """Return the JSON Schema of ``annotation``."""
        ...


def _pydantic_class(value: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not isinstance(value, type):
        return False
    return issubclass(value, pydantic.BaseModel) or "__pydantic_validator__" in value.__dict__


def _msgspec_class(value: Any) -> bool:
    msgspec = sys.modules.get("msgspec")
    return msgspec is not None and isinstance(value, type) and issubclass(value, msgspec.Struct)


def _metadata_library(item: Any) -> str | None:
    module = type(item).__module__.partition(".")[0]
    if module in ("pydantic", "pydantic_core"):
        return "pydantic"
    if module == "msgspec":
        return "msgspec"
    return None


def _walk(annotation: Any, seen: set[int]) -> typing.Iterator[Any]:
    """Yield ``annotation`` and every type and metadata object nested in it."""
    if id(annotation) in seen:
        return
    seen.add(id(annotation))
    yield annotation
    if typing.get_origin(annotation) is Annotated:
        base, *metadata = typing.get_args(annotation)
        yield from _walk(base, seen)
        yield from metadata
        return
    for arg in typing.get_args(annotation):
        yield from _walk(arg, seen)


def libraries_in(annotation: Any) -> set[str]:
    """Return the validation libraries whose types or constraints ``annotation`` uses."""
    found: set[str] = set()
    for item in _walk(annotation, set()):
        if _pydantic_class(item):
            found.add("pydantic")
        elif _msgspec_class(item):
            found.add("msgspec")
        elif not isinstance(item, type) and (library := _metadata_library(item)):
            found.add(library)
    return found


def _is_structured_class(value: Any) -> bool:
    return isinstance(value, type) and (
        _pydantic_class(value)
        or _msgspec_class(value)
        or dataclasses.is_dataclass(value)
        or _is_typeddict(value)
    )


def _is_typeddict(value: type) -> bool:
    # typing.is_typeddict() misses typing_extensions.TypedDict (which pydantic needs before 3.12).
    return (
        issubclass(value, dict)
        and hasattr(value, "__total__")
        and hasattr(value, "__required_keys__")
    )


def is_model_type(annotation: Any) -> bool:
    """Return whether ``annotation`` is (or holds) a model: the body rather than a query value.

    Models are pydantic models, msgspec Structs, dataclasses and TypedDicts;
    ``list[Item]``, ``Item | None`` and ``Annotated[Item, ...]`` hold one.
    """
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return is_model_type(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType or origin in (list, tuple, set, dict):
        return any(is_model_type(arg) for arg in typing.get_args(annotation))
    return _is_structured_class(annotation)


def default_library() -> str:
    """Return the library for values no model ties to one: pydantic if installed, else msgspec.

    Raises:
        MissingDependencyError: When neither is installed.
    """
    for name in LIBRARIES:
        try:
            importlib.import_module(name)  # needed right after: the route's validators use it
        except ImportError:
            continue
        return name
    raise MissingDependencyError("pydantic", extra="validation")


_ENGINES: dict[str, Engine] = {}


def get_engine(name: str) -> Engine:
    """Return the engine for library ``name``, importing the library on first use.

    Raises:
        MissingDependencyError: When the library is not installed.
    """
    engine = _ENGINES.get(name)
    if engine is None:
        if name not in LIBRARIES:
            raise ValueError(f"Unknown validation library {name!r}. Use one of {LIBRARIES!r}.")
        try:
            importlib.import_module(name)
        except ImportError:
            raise MissingDependencyError(name, extra="validation") from None
        module = importlib.import_module(f"covet.params.engines.{name}")
        engine = _ENGINES[name] = module.engine()
    return engine


def encode_model(value: Any) -> bytes | None:
    """Return a pydantic model or msgspec Struct instance as JSON, or None for anything else.

    A typed handler without a response model may still return a model instance.
    """
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        return value.__pydantic_serializer__.to_json(value, by_alias=True)  # type: ignore[no-any-return]
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and isinstance(value, msgspec.Struct):
        return msgspec.json.encode(value)  # type: ignore[no-any-return]
    return None
