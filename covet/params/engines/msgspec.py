"""The msgspec engine: ``msgspec.json.Decoder`` for bodies, ``msgspec.convert`` for the rest.

Imported only when a route validates with msgspec. msgspec stops at the
first error of a value, so a msgspec body reports one error (the query and
header parameters beside it are still each checked). Its messages are mapped
onto pydantic's error codes (``missing``, ``int_type``, ``enum``...), so
clients parse one format whichever library the server uses.
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any

import msgspec

from covet.datastructures import UploadFile
from covet.params.engines import FieldShape
from covet.params.errors import ErrorList, ValidationFailed
from covet.params.signature import is_sequence

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ("MsgspecEngine", "engine")

_PATH = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_EXPECTED = re.compile(r"^Expected `([^`]+)`, got `([^`]+)`$")
_INSTANCE = re.compile(r"^Expected `([^`]+)`$")
_BOUND = re.compile(r"^Expected `([^`]+)` (>=|>|<=|<) (\S+)$")
_LENGTH = re.compile(r"^Expected `([^`]+)` of length (>=|<=) (\d+)$")
_FIELD = re.compile(r"^Object (missing required|contains unknown) field `([^`]+)`$")
_TYPE_CODES = {
    "int": "int_type",
    "float": "float_type",
    "str": "string_type",
    "bool": "bool_type",
    "object": "model_type",
    "array": "list_type",
    "null": "none_required",
}
_BOUND_CODES = {
    ">=": ("greater_than_equal", "ge", "greater than or equal to"),
    ">": ("greater_than", "gt", "greater than"),
    "<=": ("less_than_equal", "le", "less than or equal to"),
    "<": ("less_than", "lt", "less than"),
}


def _location(path: str) -> list[str | int]:
    loc: list[str | int] = []
    for name, index in _PATH.findall(path):
        if name:
            loc.append(name)
        else:
            loc.append(int(index) if index.isdigit() else index)
    return loc


def _number(text: str) -> int | float | str:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def translate(message: str, value: Any = msgspec.UNSET) -> ErrorList:
    """Turn one msgspec error message into a pydantic-shaped error.

    Args:
        message: The message, for example ``"Expected `int`, got `str` - at `$.price`"``.
        value: The input, when known (it is left out otherwise).

    Returns:
        A list with the one error.
    """
    text, _, where = message.partition(" - at `")
    loc = _location(where.rstrip("`")[1:]) if where else []
    error: dict[str, Any] = {"type": "value_error", "loc": loc, "msg": text}
    if match := _FIELD.match(text):
        kind, field = match.groups()
        loc.append(field)
        if kind == "missing required":
            error.update(type="missing", msg="Field required")
        else:
            error.update(type="extra_forbidden", msg="Extra inputs are not permitted")
    elif match := _EXPECTED.match(text):
        error["type"] = _TYPE_CODES.get(match.group(1), "type_error")
    elif match := _INSTANCE.match(text):  # from _dec_hook: not an instance of the class
        error.update(type="is_instance_of", ctx={"class": match.group(1)})
    elif match := _BOUND.match(text):
        code, key, words = _BOUND_CODES[match.group(2)]
        bound = _number(match.group(3))
        error.update(type=code, msg=f"Input should be {words} {bound}", ctx={key: bound})
    elif match := _LENGTH.match(text):
        kind, op, size = match.groups()
        short = op == ">="
        if kind == "str":
            code = "string_too_short" if short else "string_too_long"
        else:
            code = "too_short" if short else "too_long"
        key = "min_length" if short else "max_length"
        error.update(type=code, ctx={key: int(size)})
    elif text.startswith("Invalid enum value"):
        error["type"] = "enum"
    elif "matching regex" in text:
        error["type"] = "string_pattern_mismatch"
    elif "multiple of" in text:
        error["type"] = "multiple_of"
    if value is not msgspec.UNSET and not loc:
        error["input"] = value
    return [error]


def _dec_hook(annotation: Any, value: Any) -> Any:
    # msgspec passes through instances of unknown classes; anything else is refused.
    # TypeError, not NotImplementedError: msgspec turns only TypeError/ValueError into a
    # ValidationError (a 422); anything else escaped as a 500 (text sent for a file field).
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise TypeError(f"Expected `{getattr(annotation, '__name__', annotation)}`")


class _Validator:
    __slots__ = ("_annotation", "_decode", "_strict")

    def __init__(self, annotation: Any, *, strict: bool) -> None:
        self._annotation = annotation
        self._strict = strict
        self._decode = msgspec.json.Decoder(annotation, dec_hook=_dec_hook).decode

    def python(self, value: Any) -> Any:
        try:
            return msgspec.convert(value, self._annotation, strict=self._strict, dec_hook=_dec_hook)
        except msgspec.ValidationError as exc:
            raise ValidationFailed(translate(str(exc), value)) from None

    def json(self, data: bytes) -> Any:
        try:
            return self._decode(data)
        except msgspec.ValidationError as exc:
            raise ValidationFailed(translate(str(exc))) from None
        except msgspec.DecodeError as exc:
            error = {"type": "json_invalid", "loc": [], "msg": "JSON decode error"}
            raise ValidationFailed([{**error, "ctx": {"error": str(exc)}}]) from None


def _schema_hook(annotation: Any) -> dict[str, Any]:
    if annotation is UploadFile:
        return {"type": "string", "format": "binary"}
    raise NotImplementedError(f"No JSON Schema for {annotation!r}.")


class MsgspecEngine:
    """Validate and serialise with msgspec."""

    name = "msgspec"

    def __init__(self) -> None:
        self._encode = msgspec.json.Encoder().encode

    def validator(
        self, annotation: Any, constraints: Mapping[str, Any], *, text: bool
    ) -> _Validator:
        """Return a validator; ``text`` values (query, headers, forms) are parsed from strings."""
        if constraints:
            annotation = Annotated[annotation, msgspec.Meta(**constraints)]
        return _Validator(annotation, strict=not text)

    def serializer(self, annotation: Any) -> Callable[[Any], bytes]:
        """Return ``value -> JSON``: converted to ``annotation`` (attributes read), then encoded.

        Conversion builds a new object of the declared type, so the fields of a
        subclass or of an ORM instance that the model does not declare are left out.
        """
        encode = self._encode
        exact = annotation if isinstance(annotation, type) else None

        def serialize(value: Any) -> bytes:
            if type(value) is not exact:
                try:
                    value = msgspec.convert(value, annotation, from_attributes=True)
                except msgspec.ValidationError as exc:
                    raise ValidationFailed(translate(str(exc))) from None
            return encode(value)

        return serialize

    def fields(self, annotation: Any) -> list[FieldShape]:
        """Return the fields of a Struct, dataclass or TypedDict."""
        if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
            return [
                FieldShape(field.encode_name, is_sequence(field.type))
                for field in msgspec.structs.fields(annotation)
            ]
        hints = typing.get_type_hints(annotation)
        return [FieldShape(name, is_sequence(hint)) for name, hint in hints.items()]

    def json_schema(self, annotation: Any) -> dict[str, Any]:
        """Return the JSON Schema msgspec generates for ``annotation``."""
        return msgspec.json.schema(annotation, schema_hook=_schema_hook)


def engine() -> MsgspecEngine:
    """Return a new msgspec engine (the registry in :mod:`covet.params.engines` keeps one)."""
    return MsgspecEngine()
