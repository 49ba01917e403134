"""Value fields: numbers, decimals, booleans, text, dates and times, UUID, JSON, bytes, enums.

Date-times are always timezone-aware: a naive ``datetime`` is rejected with a
:class:`~covet.db.exceptions.ValidationError` naming the field, because
guessing a zone silently corrupts data. Aware values are stored in UTC and
come back in UTC.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from covet.db.exceptions import ValidationError
from covet.db.fields.base import Converter, Field
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.db.models import Model


__all__ = (
    "AutoField",
    "BigIntegerField",
    "BinaryField",
    "BooleanField",
    "CharField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "EnumField",
    "FloatField",
    "IntegerField",
    "JSONField",
    "SmallIntegerField",
    "TextField",
    "TimeField",
    "UUIDField",
    "parse_decimal",
)

_V = TypeVar("_V")
E = TypeVar("E", bound=enum.Enum)


class _IntegerBase(Field[_V]):
    internal_type = "int"
    min_value: int = -(2**31)
    max_value: int = 2**31 - 1

    def to_python(self, value: Any) -> Any:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
                return int(value)
            raise ValueError(f"Value {value!r} is not an integer.")
        return value

    def check_value(self, value: Any) -> list[str]:
        """Return the problems with an already canonical value."""
        if not self.min_value <= value <= self.max_value:
            return [f"Value {value!r} is out of range [{self.min_value}, {self.max_value}]."]
        return []


class IntegerField(_IntegerBase[_V]):
    """A 32-bit signed integer."""

    @overload
    def __init__(
        self: IntegerField[int], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: IntegerField[int | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)


class BigIntegerField(_IntegerBase[_V]):
    """A 64-bit signed integer."""

    @overload
    def __init__(
        self: BigIntegerField[int], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: BigIntegerField[int | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    min_value = -(2**63)
    max_value = 2**63 - 1


class SmallIntegerField(_IntegerBase[_V]):
    """A 16-bit signed integer."""

    @overload
    def __init__(
        self: SmallIntegerField[int], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: SmallIntegerField[int | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    min_value = -(2**15)
    max_value = 2**15 - 1


class AutoField(BigIntegerField[int]):
    """The automatic 64-bit auto-increment primary key every model gets as ``id``."""

    auto_created = True

    def __init__(self) -> None:
        super().__init__(primary_key=True)


class FloatField(Field[_V]):
    """A double-precision floating point number."""

    @overload
    def __init__(
        self: FloatField[float], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: FloatField[float | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    internal_type = "float"

    def to_python(self, value: Any) -> float:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            raise ValueError(f"Value {value!r} is not a number.")
        return float(value)


def parse_decimal(value: Any) -> decimal.Decimal:
    """Return ``value`` (a number or numeric text) as a finite ``Decimal``, or raise ``ValueError``.

    A float goes through its shortest ``repr`` (``0.1`` becomes ``Decimal("0.1")``,
    not the binary expansion); booleans, NaN and infinities are refused.
    """
    if isinstance(value, bool):
        raise ValueError(f"Value {value!r} is not a decimal number.")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = decimal.Decimal(value)
    except (decimal.InvalidOperation, TypeError):
        raise ValueError(f"Value {value!r} is not a decimal number.") from None
    if not result.is_finite():
        raise ValueError(f"Value {value!r} is not a finite decimal number.")
    return result


class DecimalField(Field[_V]):
    """A fixed-precision decimal number.

    Args:
        max_digits: Total number of digits.
        decimal_places: Digits after the decimal point; values are quantized to it.
    """

    internal_type = "decimal"
    finishes = True

    @overload
    def __init__(
        self: DecimalField[decimal.Decimal],
        *,
        max_digits: int,
        decimal_places: int,
        null: Literal[False] = ...,
        **options: Any,
    ) -> None: ...
    @overload
    def __init__(
        self: DecimalField[decimal.Decimal | None],
        *,
        max_digits: int,
        decimal_places: int,
        null: Literal[True],
        **options: Any,
    ) -> None: ...
    def __init__(self, *, max_digits: int, decimal_places: int, **options: Any) -> None:
        if max_digits < 1 or not 0 <= decimal_places <= max_digits:
            raise ImproperlyConfigured(
                f"Invalid DecimalField(max_digits={max_digits!r}, "
                f"decimal_places={decimal_places!r}). Need max_digits >= decimal_places >= 0."
            )
        super().__init__(**options)
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        self._quantum = decimal.Decimal(1).scaleb(-decimal_places)
        self._context = decimal.Context(prec=max_digits + 2)

    def to_python(self, value: Any) -> decimal.Decimal:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        return parse_decimal(value)

    def _too_large(self, value: decimal.Decimal) -> str | None:
        """Say what is wrong with a value that has too many digits before the point, else None."""
        whole = self.max_digits - self.decimal_places
        # adjusted() is the exponent of the leading digit: no arithmetic, so 1E+30 is
        # caught here instead of overflowing a quantize().
        if value and value.adjusted() >= whole:
            return f"Value {value!r} has more than {whole} digits before the decimal point."
        return None

    def check_value(self, value: Any) -> list[str]:
        """Return the problems with an already canonical value."""
        too_large = self._too_large(value)
        if too_large is not None:
            return [too_large]
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # noqa: S101 - internal invariant
        # Within range, the quantized value has at most max_digits + 1 digits (after a carry).
        if -exponent > self.decimal_places and value != value.quantize(
            self._quantum, context=self._context
        ):
            return [f"Value {value!r} has more than {self.decimal_places} decimal places."]
        return []

    def pre_save(self, instance: Model, add: bool) -> Any:
        """Return the value to save, refusing one beyond the column's range even unvalidated.

        :meth:`get_prep_value` turns such a value into the bound just past the
        range, which is right for a comparison but would be a silently changed
        row if written (SQLite does not enforce ``max_digits``), so a write
        with ``validate=False`` still raises.

        Raises:
            ValidationError: The value has more digits before the decimal point
                than ``max_digits - decimal_places``.
        """
        value = super().pre_save(instance, add)
        if isinstance(value, decimal.Decimal) and value.is_finite():
            too_large = self._too_large(value)
            if too_large is not None:
                raise ValidationError({self.name or "value": [too_large]})
        return value

    def get_prep_value(self, value: Any) -> Any:
        """Return the canonical value for a query parameter, quantized to ``decimal_places``.

        A value with more digits before the decimal point than the column holds
        (``Decimal("1e20")`` for ``max_digits=20, decimal_places=6``) is beyond
        every value the column stores, so a comparison with it has a known answer.
        It becomes the bound just past the column's range, ``±10**(max_digits -
        decimal_places)``, which gives every lookup (``exact``, ``lt``,
        ``gte``, ``in``, ``range``...) the same result, and which every backend
        binds exactly however large the value was. Writes validate first and
        refuse such a value with a ValidationError naming the field.

        Raises:
            ValidationError: The value is not a decimal number.
        """
        result = super().get_prep_value(value)
        if not isinstance(result, decimal.Decimal):
            return result
        if self._too_large(result) is not None:
            whole = self.max_digits - self.decimal_places
            return decimal.Decimal((int(result.is_signed()), (1,), whole))
        # In range, so at most max_digits + 1 digits (after a carry): the context holds it.
        return result.quantize(self._quantum, context=self._context)

    def from_db_value(self, value: Any) -> decimal.Decimal:
        """Finish a value read from the database."""
        if not isinstance(value, decimal.Decimal):
            value = decimal.Decimal(str(value))
        result: decimal.Decimal = value.quantize(self._quantum, context=self._context)
        return result


class BooleanField(Field[_V]):
    """A true/false value."""

    @overload
    def __init__(
        self: BooleanField[bool], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: BooleanField[bool | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    internal_type = "bool"

    def to_python(self, value: Any) -> bool:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"Value {value!r} is not a boolean.")


class CharField(Field[_V]):
    """A string with a maximum length (in characters), stored as ``VARCHAR``.

    Args:
        max_length: The maximum number of characters; longer values are rejected,
            never truncated.
    """

    @overload
    def __init__(
        self: CharField[str], *, max_length: int, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: CharField[str | None], *, max_length: int, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, *, max_length: int, **options: Any) -> None:
        if max_length < 1:
            raise ImproperlyConfigured(f"Invalid CharField max_length {max_length!r}. Use >= 1.")
        super().__init__(**options)
        self.max_length = max_length

    def to_python(self, value: Any) -> str:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if not isinstance(value, str):
            raise ValueError(f"Value {value!r} is not a string.")
        return value

    def check_value(self, value: Any) -> list[str]:
        """Return the problems with an already canonical value."""
        if len(value) > self.max_length:
            return [
                f"Ensure this value has at most {self.max_length} characters (it has {len(value)})."
            ]
        return []


class TextField(Field[_V]):
    """An unbounded string."""

    @overload
    def __init__(self: TextField[str], *, null: Literal[False] = ..., **options: Any) -> None: ...
    @overload
    def __init__(self: TextField[str | None], *, null: Literal[True], **options: Any) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    def to_python(self, value: Any) -> str:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if not isinstance(value, str):
            raise ValueError(f"Value {value!r} is not a string.")
        return value


class DateField(Field[_V]):
    """A calendar date."""

    @overload
    def __init__(
        self: DateField[datetime.date], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: DateField[datetime.date | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    internal_type = "date"

    def to_python(self, value: Any) -> datetime.date:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
            if isinstance(value, str):
                return datetime.date.fromisoformat(value)
            raise ValueError(f"Value {value!r} is not a date.")
        return value


class TimeField(Field[_V]):
    """A time of day, without a time zone."""

    @overload
    def __init__(
        self: TimeField[datetime.time], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: TimeField[datetime.time | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    internal_type = "time"

    def to_python(self, value: Any) -> datetime.time:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, str):
            value = datetime.time.fromisoformat(value)
        if not isinstance(value, datetime.time):
            raise ValueError(f"Value {value!r} is not a time.")
        if value.tzinfo is not None:
            raise ValueError(f"Time {value!r} has a time zone. Use a naive time of day.")
        return value


class DateTimeField(Field[_V]):
    """A timezone-aware date and time, stored in UTC (naive values are rejected).

    Args:
        auto_now: Set to the current time on every save.
        auto_now_add: Set to the current time when the row is inserted.
    """

    internal_type = "datetime"
    finishes = True

    @overload
    def __init__(
        self: DateTimeField[datetime.datetime],
        *,
        auto_now: bool = ...,
        auto_now_add: bool = ...,
        null: Literal[False] = ...,
        **options: Any,
    ) -> None: ...
    @overload
    def __init__(
        self: DateTimeField[datetime.datetime | None],
        *,
        auto_now: bool = ...,
        auto_now_add: bool = ...,
        null: Literal[True],
        **options: Any,
    ) -> None: ...
    def __init__(
        self, *, auto_now: bool = False, auto_now_add: bool = False, **options: Any
    ) -> None:
        super().__init__(**options)
        self.auto_now = auto_now
        self.auto_now_add = auto_now_add

    def to_python(self, value: Any) -> datetime.datetime:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value)
        if not isinstance(value, datetime.datetime):
            raise ValueError(f"Value {value!r} is not a datetime.")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"Datetime {value!r} is naive. Pass an aware datetime, "
                "e.g. datetime.now(timezone.utc)."
            )
        return value.astimezone(datetime.UTC)

    def pre_save(self, instance: Model, add: bool) -> Any:
        """Return the value to save, stamping the current time when configured."""
        if self.auto_now or (self.auto_now_add and add):
            now = datetime.datetime.now(datetime.UTC)
            instance.__dict__[self.attname] = now
            return now
        return super().pre_save(instance, add)

    def from_db_converter(self, ops: Any) -> Converter | None:
        """Return the backend's converter alone when it already yields aware UTC datetimes."""
        if getattr(ops, "datetime_converter_returns_utc", False):
            backend: Converter | None = ops.get_converter(self.internal_type)
            if backend is not None:
                return backend
        return super().from_db_converter(ops)

    def from_db_value(self, value: Any) -> datetime.datetime:
        """Finish a value read from the database."""
        tz = value.tzinfo
        if tz is datetime.UTC:
            return value  # type: ignore[no-any-return]
        if tz is None:
            return value.replace(tzinfo=datetime.UTC)  # type: ignore[no-any-return]
        return value.astimezone(datetime.UTC)  # type: ignore[no-any-return]


class UUIDField(Field[_V]):
    """A UUID (native on PostgreSQL, ``CHAR(36)`` elsewhere)."""

    @overload
    def __init__(
        self: UUIDField[uuid.UUID], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: UUIDField[uuid.UUID | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    internal_type = "uuid"

    def to_python(self, value: Any) -> uuid.UUID:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, str):
            return uuid.UUID(value)
        raise ValueError(f"Value {value!r} is not a UUID.")


class JSONField(Field[Any]):
    """Any JSON value: dicts, lists, strings, numbers, booleans (SQL NULL for ``None``)."""

    internal_type = "json"


class BinaryField(Field[_V]):
    """Raw bytes."""

    @overload
    def __init__(
        self: BinaryField[bytes], *, null: Literal[False] = ..., **options: Any
    ) -> None: ...
    @overload
    def __init__(
        self: BinaryField[bytes | None], *, null: Literal[True], **options: Any
    ) -> None: ...
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    internal_type = "bytes"
    finishes = True

    def to_python(self, value: Any) -> bytes:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        raise ValueError(f"Value {value!r} is not bytes.")

    def from_db_value(self, value: Any) -> bytes:
        """Finish a value read from the database."""
        return bytes(value)


class EnumField(Field[_V]):
    """An :class:`enum.Enum` member, stored as its value (all values str, or all int).

    Args:
        enum_cls: The enum class; its values decide the column type.
        max_length: Column length for str values (default: the longest value).
    """

    finishes = True

    @overload
    def __init__(
        self: EnumField[E],
        enum_cls: type[E],
        *,
        max_length: int | None = ...,
        null: Literal[False] = ...,
        **options: Any,
    ) -> None: ...
    @overload
    def __init__(
        self: EnumField[E | None],
        enum_cls: type[E],
        *,
        max_length: int | None = ...,
        null: Literal[True],
        **options: Any,
    ) -> None: ...
    def __init__(
        self, enum_cls: type[Any], *, max_length: int | None = None, **options: Any
    ) -> None:
        values = [member.value for member in enum_cls]
        if values and all(isinstance(v, str) for v in values):
            self.internal_type = "str"
            self.max_length: int | None = max_length or max(len(v) for v in values)
        elif values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            self.internal_type = "int"
            self.max_length = None
        else:
            raise ImproperlyConfigured(
                f"EnumField needs an enum whose values are all str or all int, got {enum_cls!r}."
            )
        super().__init__(**options)
        self.enum_cls = enum_cls

    def to_python(self, value: Any) -> Any:
        """Return ``value`` as this field's canonical Python type, or raise ``ValueError``."""
        if isinstance(value, self.enum_cls):
            return value
        try:
            return self.enum_cls(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in self.enum_cls)
            raise ValueError(
                f"Value {value!r} is not a valid {self.enum_cls.__name__}. Use one of: {allowed}."
            ) from None

    def _choice_key(self, value: Any) -> Any:
        return value.value if value in self.choices_members() else value

    def choices_members(self) -> tuple[Any, ...]:
        """Return the configured choices as enum members."""
        return tuple(
            self.enum_cls(c) if not isinstance(c, enum.Enum) else c for c in self.choices or ()
        )

    def get_prep_value(self, value: Any) -> Any:
        """Return the canonical value for a query parameter."""
        result = super().get_prep_value(value)
        return None if result is None else result.value

    def from_db_value(self, value: Any) -> Any:
        """Finish a value read from the database."""
        return self.enum_cls(value)
