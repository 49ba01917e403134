r"""JSON encoding and decoding with one output, whether or not orjson is installed.

covet serialises with `orjson <https://github.com/ijl/orjson>`_ when it is
importable (the ``fast`` extra) and with a small encoder over the standard
library otherwise. Both paths produce byte-for-byte identical output, so a
test suite run without orjson says something about production with it:

* compact separators, UTF-8 with no ``\u`` escapes for non-ASCII text;
* floats in orjson's shortest round-trip format (``1e-7``, ``0.00001``,
  ``1e+16``); ``NaN`` and the infinities become ``null`` on both paths;
* ``datetime``/``date``/``time`` as ISO 8601 (``isoformat()``), ``UUID`` and
  ``Decimal`` as strings, an ``Enum`` by its value, a dataclass as an object
  of its fields, tuples (named or not) as arrays;
* dict keys may be ``str``, ``int``, ``float``, ``bool``, ``None``, an
  ``Enum``, a ``UUID`` or a date/time; they are written as strings;
* integers beyond 64 bits are written exactly (orjson refuses them, so such
  a value is encoded by the standard-library path, with the same output);
* nesting deeper than 254 containers and strings holding lone surrogates
  raise :class:`TypeError`, and so does any other type, naming it.

:func:`loads` accepts what orjson accepts on both paths: strict UTF-8 without
a byte order mark, no ``NaN``/``Infinity`` literals, no number that overflows
to infinity; integers outside the 64-bit range are read as floats. Every
malformed input raises :class:`json.JSONDecodeError`, a :class:`ValueError`.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("dumps", "loads")

try:  # pragma: no cover - exercised by whichever environment runs the tests
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

#: Serialise with orjson when it is importable. Tests flip this to compare paths.
USE_ORJSON: bool = _orjson is not None

# orjson refuses containers nested deeper than this; the stdlib path matches it.
_MAX_DEPTH = 254
_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1

_DEPTH_MESSAGE = (
    f"Data nested deeper than {_MAX_DEPTH} levels cannot be serialised to JSON. "
    "Flatten the structure, and check it has no reference cycles."
)
_SURROGATE_MESSAGE = (
    "A string holding a lone surrogate is not valid UTF-8 and cannot be serialised to JSON. "
    "Decode the text with errors='replace' first."
)


def _type_error(obj: object) -> TypeError:
    name = type(obj).__qualname__
    return TypeError(
        f"Object of type {name!r} is not JSON serializable. "
        "Convert it to a dict, list, str, int, float, bool or None first."
    )


def _key_error(key: object) -> TypeError:
    return TypeError(
        f"Dict key {key!r} of type {type(key).__qualname__!r} cannot be a JSON object key. "
        "Use str, int, float, bool, None, an Enum, a UUID or a date/time as keys."
    )


def _default(obj: Any) -> Any:
    """Convert a value the encoders do not handle natively (shared by both paths)."""
    if isinstance(obj, datetime.date | datetime.time):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, tuple):
        return list(obj)
    if isinstance(obj, float):
        return float(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
    raise _type_error(obj)


# -- the standard-library path --------------------------------------------------------------------

# json.encoder.encode_basestring is the C-accelerated, non-ASCII-preserving string
# escaper behind json.dumps(ensure_ascii=False); its escapes match orjson's exactly.
_encode_str: Callable[[str], str] = json.encoder.encode_basestring


def _format_float(value: float) -> str:
    """Format a float exactly as orjson does: shortest round-trip digits."""
    if not math.isfinite(value):
        return "null"
    text = repr(value)
    mantissa, sep, exponent = text.partition("e")
    if not sep:
        return text
    power = int(exponent)
    if power > 0:
        return text  # "1e+16": same as orjson.
    if power == -5:
        # orjson keeps fixed notation down to 1e-5, where repr() switches at 1e-4.
        sign, digits = ("-", mantissa[1:]) if mantissa.startswith("-") else ("", mantissa)
        return f"{sign}0.0000{digits.replace('.', '')}"
    return f"{mantissa}e{power}"  # "1e-07" -> "1e-7".


def _format_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, enum.Enum):
        return _format_key(key.value)
    if isinstance(key, int):
        return str(int(key))
    if isinstance(key, float):
        return _format_float(key)
    if isinstance(key, uuid.UUID | datetime.date | datetime.time):
        return str(_default(key))
    raise _key_error(key)


def _encode(obj: Any, parts: list[str], depth: int) -> None:
    if isinstance(obj, str):
        parts.append(_encode_str(obj))
    elif obj is None:
        parts.append("null")
    elif obj is True:
        parts.append("true")
    elif obj is False:
        parts.append("false")
    elif isinstance(obj, int) and not isinstance(obj, enum.Enum):
        parts.append(int.__repr__(obj))
    elif type(obj) is float:
        parts.append(_format_float(obj))
    elif isinstance(obj, dict):
        if depth >= _MAX_DEPTH:
            raise TypeError(_DEPTH_MESSAGE)
        if not obj:
            parts.append("{}")
            return
        separator = "{"
        for key, value in obj.items():
            parts.append(separator)
            parts.append(_encode_str(_format_key(key)))
            parts.append(":")
            _encode(value, parts, depth + 1)
            separator = ","
        parts.append("}")
    elif isinstance(obj, list) or type(obj) is tuple:
        if depth >= _MAX_DEPTH:
            raise TypeError(_DEPTH_MESSAGE)
        if not obj:
            parts.append("[]")
            return
        separator = "["
        for item in obj:
            parts.append(separator)
            _encode(item, parts, depth + 1)
            separator = ","
        parts.append("]")
    else:
        _encode(_default(obj), parts, depth)


def _stdlib_dumps(obj: Any) -> bytes:
    parts: list[str] = []
    _encode(obj, parts, 0)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        raise TypeError(_SURROGATE_MESSAGE) from None


# -- the orjson path ------------------------------------------------------------------------------

if _orjson is not None:  # pragma: no branch
    # Datetimes and dataclasses go through _default so both paths format them identically.
    _OPTIONS = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS
    _OPTIONS_NON_STR_KEYS = _OPTIONS | _orjson.OPT_NON_STR_KEYS


def _orjson_retry(obj: Any, exc: TypeError) -> bytes:
    """Encode ``obj`` after orjson refused it with ``exc`` under the default options."""
    if str(exc).startswith("Dict key must be str"):
        try:
            return _orjson.dumps(obj, default=_default, option=_OPTIONS_NON_STR_KEYS)
        except _orjson.JSONEncodeError as retry_exc:
            exc = retry_exc
    if isinstance(exc.__cause__, TypeError):
        raise exc.__cause__ from None  # Our own message from _default().
    # Anything orjson refuses but the standard-library path handles (integers beyond
    # 64 bits) or reports with covet's wording goes through that path.
    return _stdlib_dumps(obj)


def dumps(obj: Any) -> bytes:
    """Serialise ``obj`` to compact UTF-8 JSON.

    Args:
        obj: The value to serialise; see the module documentation for the types accepted.

    Returns:
        The JSON document as bytes.

    Raises:
        TypeError: If ``obj`` holds a value of a type that has no JSON form, a dict key of
            an unsupported type, a lone surrogate, or nesting deeper than 254 levels.
    """
    if USE_ORJSON:
        # The orjson call is inline (not in a helper) as every JSONResponse runs it.
        try:
            # Plain str keys are the common case and ~25% faster without OPT_NON_STR_KEYS.
            return _orjson.dumps(obj, default=_default, option=_OPTIONS)
        except _orjson.JSONEncodeError as exc:
            return _orjson_retry(obj, exc)
    return _stdlib_dumps(obj)


# -- decoding -------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"Number {text[:40]!r} is infinity when parsed as a double")
    return value


def _parse_int(text: str) -> int | float:
    value = int(text)
    # orjson reads integers outside the 64-bit range as floats; so does this path.
    if _I64_MIN <= value <= _U64_MAX:
        return value
    return float(value)


def _stdlib_loads(data: bytes | bytearray | memoryview | str) -> Any:
    if isinstance(data, str):
        text = data
    else:
        raw = bytes(data)
        if raw.startswith(b"\xef\xbb\xbf"):
            raise json.JSONDecodeError("UTF-8 byte order mark (BOM) is not supported", "", 0)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError(f"Invalid UTF-8: {exc.reason}", "", exc.start) from None
    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc), text, 0) from None


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse a JSON document.

    Args:
        data: The document, as UTF-8 bytes or as text.

    Returns:
        The parsed value: dicts, lists, str, int, float, bool and None.

    Raises:
        json.JSONDecodeError: If ``data`` is not valid JSON (a :class:`ValueError`).
    """
    if USE_ORJSON:
        return _orjson.loads(data)
    return _stdlib_loads(data)
