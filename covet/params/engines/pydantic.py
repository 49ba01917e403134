"""The pydantic (v2) engine: ``TypeAdapter`` validation, JSON parsed and validated in one pass.

Imported only when a route validates with pydantic.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Any

import pydantic
from pydantic import TypeAdapter, ValidationError

from covet.params.engines import FieldShape
from covet.params.errors import ErrorList, ValidationFailed
from covet.params.signature import is_sequence

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ("PydanticEngine", "engine")


def _errors(exc: ValidationError) -> ErrorList:
    errors: ErrorList = []
    for error in exc.errors(include_url=False):
        item: dict[str, Any] = {
            "type": error["type"],
            "loc": list(error["loc"]),
            "msg": error["msg"],
            "input": error.get("input"),
        }
        if "ctx" in error:
            item["ctx"] = error["ctx"]
        errors.append(item)
    return errors


class _Validator:
    __slots__ = ("_json", "_python")

    def __init__(self, adapter: TypeAdapter[Any]) -> None:
        self._python = adapter.validate_python
        self._json = adapter.validate_json

    def python(self, value: Any) -> Any:
        try:
            return self._python(value)
        except ValidationError as exc:
            raise ValidationFailed(_errors(exc)) from None

    def json(self, data: bytes) -> Any:
        try:
            return self._json(data)
        except ValidationError as exc:
            raise ValidationFailed(_errors(exc)) from None


class PydanticEngine:
    """Validate and serialise with pydantic ``TypeAdapter`` objects, built once per type."""

    name = "pydantic"

    def __init__(self) -> None:
        self._adapters: dict[Any, TypeAdapter[Any]] = {}

    def adapter(self, annotation: Any) -> TypeAdapter[Any]:
        """Return the (cached) ``TypeAdapter`` of ``annotation``."""
        try:
            adapter = self._adapters.get(annotation)
        except TypeError:  # an unhashable annotation: build it each time (registration only)
            return TypeAdapter(annotation)
        if adapter is None:
            adapter = self._adapters[annotation] = TypeAdapter(annotation)
        return adapter

    def validator(
        self, annotation: Any, constraints: Mapping[str, Any], *, text: bool
    ) -> _Validator:
        """Return a validator for ``annotation`` and ``constraints`` (pydantic is lax already)."""
        if constraints:
            annotation = Annotated[annotation, pydantic.Field(**constraints)]
        return _Validator(self.adapter(annotation))

    def serializer(self, annotation: Any) -> Callable[[Any], bytes]:
        """Return ``value -> JSON``: validated as ``annotation`` (attributes read), then dumped.

        A value that already is an instance of the model class is not validated
        again; dumping through the model's schema still leaves out the fields of
        a subclass (``UserInDB`` returned for ``User``).
        """
        adapter = self.adapter(annotation)
        validate = adapter.validate_python
        dump = adapter.dump_json
        exact = annotation if isinstance(annotation, type) else None

        def serialize(value: Any) -> bytes:
            if type(value) is not exact:
                try:
                    value = validate(value, from_attributes=True)
                except ValidationError as exc:
                    raise ValidationFailed(_errors(exc)) from None
            return dump(value, by_alias=True)

        return serialize

    def fields(self, annotation: Any) -> list[FieldShape]:
        """Return the fields of a pydantic model, dataclass or TypedDict."""
        model_fields = getattr(annotation, "model_fields", None)
        if isinstance(model_fields, dict):
            shapes = []
            for name, info in model_fields.items():
                alias = info.validation_alias if isinstance(info.validation_alias, str) else None
                shapes.append(FieldShape(alias or info.alias or name, is_sequence(info.annotation)))
            return shapes
        if dataclasses.is_dataclass(annotation):
            hints = typing.get_type_hints(annotation)
            return [
                FieldShape(f.name, is_sequence(hints.get(f.name)))
                for f in dataclasses.fields(annotation)
            ]
        hints = typing.get_type_hints(annotation)
        return [FieldShape(name, is_sequence(hint)) for name, hint in hints.items()]

    def json_schema(self, annotation: Any) -> dict[str, Any]:
        """Return the JSON Schema pydantic generates for ``annotation``."""
        return self.adapter(annotation).json_schema()


def engine() -> PydanticEngine:
    """Return a new pydantic engine (the registry in :mod:`covet.params.engines` keeps one)."""
    return PydanticEngine()
