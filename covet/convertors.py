"""Path parameter converters: ``{name}``, ``{name:int}``, ``{name:path}`` and friends.

A converter turns one captured piece of the URL path into a Python value for
the handler (``"42"`` -> ``42``) and back again for reverse routing
(``url_path_for("item", item_id=42)`` -> ``"/items/42"``). Each converter
owns a regular expression that decides which text it accepts; a value that
the expression rejects (``/items/abc`` for ``int``) simply does not match
the route, so the client gets a 404 rather than a 500.

Register your own with :func:`register_convertor`::

    class HexConvertor(Convertor[int]):
        regex = "[0-9a-f]+"

        def convert(self, value: str) -> int:
            return int(value, 16)

        def to_string(self, value: int) -> str:
            return format(value, "x")

    register_convertor("hex", HexConvertor())
"""

from __future__ import annotations

import decimal
import math
import re
import uuid
from typing import Any, ClassVar, Generic, TypeVar

from covet.exceptions import ImproperlyConfigured

__all__ = (
    "CONVERTOR_TYPES",
    "Convertor",
    "FloatConvertor",
    "IntegerConvertor",
    "PathConvertor",
    "SlugConvertor",
    "StringConvertor",
    "UUIDConvertor",
    "register_convertor",
)

T = TypeVar("T")

# Python refuses int() on strings longer than 4300 digits (CVE-2020-10735
# mitigation, sys.int_info.default_max_str_digits); capping the pattern keeps
# such a request a clean 404 instead of a ValueError deep in the router.
_MAX_DIGITS = 4300


class Convertor(Generic[T]):
    """Convert one path segment between its URL text and a Python value.

    Subclasses set :attr:`regex` and implement :meth:`convert` and
    :meth:`to_string`. The regular expression must not contain capturing
    groups (use ``(?:...)``), because the router combines many route
    patterns into one expression.
    """

    regex: ClassVar[str] = ""

    def convert(self, value: str) -> T:
        """Turn the matched URL text into the value passed to the handler.

        Args:
            value: The text matched by :attr:`regex` (already percent-decoded).

        Returns:
            The converted value.

        Raises:
            ValueError: If the text cannot be converted; the route then does not match.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement convert().")

    def to_string(self, value: T) -> str:
        """Turn a value back into URL text for reverse routing.

        Args:
            value: The value given to ``url_path_for()``.

        Returns:
            The text to put in the path; it must match :attr:`regex`.

        Raises:
            ValueError: If the value cannot be represented by this converter.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement to_string().")


class StringConvertor(Convertor[str]):
    """Match one non-empty path segment (no ``/``); the default converter."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        """Return the segment unchanged."""
        return value

    def to_string(self, value: str) -> str:
        """Return ``value`` as text, refusing empty values and ``/``."""
        text = str(value)
        if not text or "/" in text:
            raise ValueError(
                f"A 'str' path parameter must be non-empty and contain no '/', got {value!r}. "
                "Use the 'path' converter for values that span segments."
            )
        return text


class PathConvertor(Convertor[str]):
    """Match the rest of the path, ``/`` included (possibly empty)."""

    regex = ".*"

    def convert(self, value: str) -> str:
        """Return the matched text unchanged."""
        return value

    def to_string(self, value: str) -> str:
        """Return ``value`` as text."""
        return str(value)


class IntegerConvertor(Convertor[int]):
    """Match a non-negative decimal integer (``0``, ``42``)."""

    regex = f"[0-9]{{1,{_MAX_DIGITS}}}"

    def convert(self, value: str) -> int:
        """Return the integer value of the digits."""
        return int(value)

    def to_string(self, value: int) -> str:
        """Return the decimal digits of a non-negative integer."""
        given: object = value  # callers are untyped: check the runtime type
        if isinstance(given, bool) or not isinstance(given, int) or given < 0:
            raise ValueError(
                f"An 'int' path parameter must be a non-negative integer, got {value!r}."
            )
        return str(value)


class FloatConvertor(Convertor[float]):
    """Match a non-negative decimal number (``3``, ``2.5``); no exponent, NaN or infinity."""

    regex = f"[0-9]{{1,{_MAX_DIGITS}}}(?:\\.[0-9]{{1,{_MAX_DIGITS}}})?"

    def convert(self, value: str) -> float:
        """Return the float value of the text."""
        result = float(value)
        if math.isinf(result):
            # "9" * 400 parses as inf: not a value a handler can use.
            raise ValueError(f"Path parameter {value!r} is too large for a float.")
        return result

    def to_string(self, value: float) -> str:
        """Return the shortest decimal text that round-trips to ``value``."""
        given: object = value  # callers are untyped: check the runtime type
        if isinstance(given, bool) or not isinstance(given, int | float):
            raise ValueError(f"A 'float' path parameter must be a number, got {value!r}.")
        number = float(given)
        if not math.isfinite(number) or number < 0:
            raise ValueError(
                f"A 'float' path parameter must be finite and non-negative, got {value!r}."
            )
        if number.is_integer():
            return str(int(number))
        # repr() is the shortest round-tripping form but may use an exponent
        # ("1e-07"), which the regex has no room for; Decimal spells it out.
        return format(decimal.Decimal(repr(number)), "f")


class UUIDConvertor(Convertor[uuid.UUID]):
    """Match a UUID in its canonical hyphenated form, in either case."""

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def convert(self, value: str) -> uuid.UUID:
        """Return the :class:`uuid.UUID` for the text."""
        return uuid.UUID(value)

    def to_string(self, value: uuid.UUID | str) -> str:
        """Return the canonical lowercase hyphenated form of a UUID (or UUID string)."""
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, str):
            return str(uuid.UUID(value))
        raise ValueError(f"A 'uuid' path parameter must be a UUID, got {value!r}.")


class SlugConvertor(Convertor[str]):
    """Match a slug: ASCII letters, digits, hyphens and underscores."""

    regex = "[-a-zA-Z0-9_]+"
    _full: ClassVar[re.Pattern[str]] = re.compile(regex)

    def convert(self, value: str) -> str:
        """Return the slug unchanged."""
        return value

    def to_string(self, value: str) -> str:
        """Return ``value``, refusing text that is not a slug."""
        text = str(value)
        if self._full.fullmatch(text) is None:
            raise ValueError(
                f"A 'slug' path parameter may only contain ASCII letters, digits, '-' and '_', "
                f"got {value!r}."
            )
        return text


CONVERTOR_TYPES: dict[str, Convertor[Any]] = {
    "str": StringConvertor(),
    "path": PathConvertor(),
    "int": IntegerConvertor(),
    "float": FloatConvertor(),
    "uuid": UUIDConvertor(),
    "slug": SlugConvertor(),
}

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def register_convertor(name: str, convertor: Convertor[Any]) -> None:
    """Make ``convertor`` available as ``{param:name}`` in route paths.

    Register converters before the routes that use them; routes resolve their
    converters when they are added.

    Args:
        name: The name used after the colon, for example ``"hex"``.
        convertor: An instance of a :class:`Convertor` subclass.

    Raises:
        ImproperlyConfigured: If the name is not an identifier, or the
            converter's regular expression is empty, invalid or has
            capturing groups.
    """
    if _NAME_RE.fullmatch(name) is None:
        raise ImproperlyConfigured(
            f"Converter name {name!r} is not a valid identifier. "
            "Use letters, digits and underscores, for example 'hex'."
        )
    if not isinstance(convertor, Convertor):
        raise ImproperlyConfigured(
            f"Converter {convertor!r} registered as {name!r} is not a Convertor instance. "
            "Subclass covet.convertors.Convertor and pass an instance."
        )
    try:
        compiled = re.compile(convertor.regex)
    except re.error as exc:
        raise ImproperlyConfigured(
            f"Converter {name!r} has an invalid regex {convertor.regex!r}: {exc}. Fix the pattern."
        ) from exc
    if not convertor.regex or compiled.groups:
        raise ImproperlyConfigured(
            f"Converter {name!r} regex {convertor.regex!r} must be non-empty and have no "
            "capturing groups. Use (?:...) for grouping."
        )
    CONVERTOR_TYPES[name] = convertor
