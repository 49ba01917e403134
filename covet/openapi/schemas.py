"""JSON Schemas for the OpenAPI document: types described once, shared through ``components``.

Each validation library describes a type with its nested models under
``$defs``; the document keeps one copy of each model in
``components.schemas`` and points at it with ``$ref``. Two different models
with one name (``Item`` in two modules) get distinct names (``Item``,
``Item2``), so neither is lost.
"""

from __future__ import annotations

import copy
import re
import typing
import uuid
from typing import Any, Final, Literal

from covet.convertors import (
    Convertor,
    FloatConvertor,
    IntegerConvertor,
    PathConvertor,
    StringConvertor,
    UUIDConvertor,
)
from covet.params.engines import get_engine

__all__ = ("SchemaRegistry", "apply_constraints", "convertor_schema")

Mode = Literal["validation", "serialization"]

_REF_PREFIX: Final = "#/components/schemas/"
_DEFS_REF: Final = re.compile(r"^#/\$defs/(.+)$")

#: Marker constraint -> JSON Schema keyword (``min_length`` depends on the type).
_NUMERIC: Final = {
    "gt": "exclusiveMinimum",
    "ge": "minimum",
    "lt": "exclusiveMaximum",
    "le": "maximum",
    "multiple_of": "multipleOf",
}


def _rewrite(schema: Any, names: dict[str, str]) -> Any:
    """Return ``schema`` with every ``#/$defs/X`` reference pointing into components."""
    if isinstance(schema, dict):
        result = {}
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str) and (match := _DEFS_REF.match(value)):
                found = match.group(1)
                result[key] = _REF_PREFIX + names.get(found, found)
            else:
                result[key] = _rewrite(value, names)
        return result
    if isinstance(schema, list):
        return [_rewrite(item, names) for item in schema]
    return schema


class SchemaRegistry:
    """Collect the schemas of one document; models land in :attr:`components`."""

    def __init__(self) -> None:
        #: ``components.schemas``: model name -> schema.
        self.components: dict[str, dict[str, Any]] = {}

    def schema(self, annotation: Any, engine: str, mode: Mode = "validation") -> dict[str, Any]:
        """Return the schema of ``annotation``, a ``$ref`` when it is a named model.

        Args:
            annotation: The type (``Item``, ``list[Item]``, ``Annotated[int, ...]``).
            engine: ``"pydantic"`` or ``"msgspec"``: the library that validates it.
            mode: ``"serialization"`` for responses (pydantic describes computed
                fields and serialisers there), ``"validation"`` for inputs.
        """
        raw = _library_schema(annotation, engine, mode)
        defs = raw.pop("$defs", {})
        names: dict[str, str] = {}
        for name in defs:
            names[name] = name
        for name, definition in defs.items():
            names[name] = self._claim(name, _rewrite(definition, names))
        top: dict[str, Any] = _rewrite(raw, names)
        model = typing.get_origin(annotation) is None and isinstance(annotation, type)
        if model and top.get("type") == "object" and "$ref" not in top:
            # pydantic inlines the top-level model: share it like the nested ones.
            name = self._claim(annotation.__name__, top)
            return {"$ref": _REF_PREFIX + name}
        return top

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Return the schema a top-level ``$ref`` points to (``schema`` itself otherwise)."""
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            return self.components.get(ref.removeprefix(_REF_PREFIX), schema)
        return schema

    def _claim(self, name: str, schema: dict[str, Any]) -> str:
        """Store ``schema`` under ``name`` (or a free variant of it); return the name used."""
        candidate, number = name, 1
        while candidate in self.components:
            if self.components[candidate] == schema:
                return candidate
            number += 1
            candidate = f"{name}{number}"
        self.components[candidate] = schema
        return candidate


def _library_schema(annotation: Any, engine: str, mode: Mode) -> dict[str, Any]:
    library = get_engine(engine)
    if engine == "pydantic" and mode == "serialization":
        adapter = library.adapter(annotation)  # type: ignore[attr-defined]
        schema: dict[str, Any] = adapter.json_schema(mode="serialization")
        return copy.deepcopy(schema)
    return copy.deepcopy(library.json_schema(annotation))


def apply_constraints(schema: dict[str, Any], constraints: dict[str, Any]) -> dict[str, Any]:
    """Return ``schema`` with a marker's constraints (``{"ge": 1}``) as JSON Schema keywords."""
    if not constraints:
        return schema
    result = dict(schema)
    array = result.get("type") == "array"
    for key, value in constraints.items():
        if key in _NUMERIC:
            result[_NUMERIC[key]] = value
        elif key == "min_length":
            result["minItems" if array else "minLength"] = value
        elif key == "max_length":
            result["maxItems" if array else "maxLength"] = value
        elif key == "pattern":
            result["pattern"] = value
    return result


def convertor_schema(convertor: Convertor[Any]) -> dict[str, Any]:
    """Return the schema of the values a path converter matches (``{id:int}`` -> integer)."""
    if isinstance(convertor, IntegerConvertor):
        return {"type": "integer", "minimum": 0}  # digits only: no sign
    if isinstance(convertor, FloatConvertor):
        return {"type": "number", "minimum": 0}
    if isinstance(convertor, UUIDConvertor):
        return {"type": "string", "format": "uuid"}
    if isinstance(convertor, PathConvertor):
        return {"type": "string"}
    if type(convertor) is StringConvertor:
        return {"type": "string", "pattern": "^[^/]+$"}
    given = getattr(type(convertor), "__orig_bases__", ())
    kind = typing.get_args(given[0])[0] if given and typing.get_args(given[0]) else str
    if kind is int:
        return {"type": "integer"}
    if kind is float:
        return {"type": "number"}
    if kind is uuid.UUID:
        return {"type": "string", "format": "uuid"}
    return {"type": "string", "pattern": f"^(?:{convertor.regex})$"}
